"""Strong simple next-basket baselines under the protocol's ``Method`` signature.

Why: Li et al. (TOIS 2023) found that most neural next-basket models do not beat personal
top-frequency once repeat purchases are separated from new ones; any model trendrec ships must be
reported next to these, on the same customers and weeks (``recsys.evaluation.protocol``).

- ``g_topfreq``: the k items bought by the most distinct known customers in the 28 days before the
  cut-off (distinct buyers, not units, so one wholesale order does not dominate); same list for all.
- ``p_topfreq``: the customer's own items by the number of distinct baskets containing them over the
  whole history before the cut-off, ties broken by the latest purchase day, then by g_topfreq's
  count (items of one basket tie on both counts; on Online Retail breaking those by popularity
  rather than item id is worth +0.009 Recall@10), then item id; filled up to k with g_topfreq's items.
- ``base``: the demo's candidate builder (``recsys.evaluation.candidates.build_candidates``), asked for the
  evaluation's 50 candidates and cut to the top k by base_score: its pool (own top n plus popular top
  n) grows with n, so asking for only k would rank a smaller pool.

Baskets (``basket_table``) are orders (order_id) when the events carry them, else days. TIFU-kNN
lives in ``recsys.evaluation.tifu_knn``.

    python -c "from recsys.evaluation.baselines import p_topfreq; help(p_topfreq)"
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s
from recsys.evaluation.candidates import build_candidates
from recsys.evaluation.protocol import ACTIVE_DAYS, K, SCORE, before, known_purchases

DAY = "_day"  # days since 1970-01-01 of a basket (its first event)
SEQ = "_seq"  # a user's baskets numbered 0, 1, ... oldest first
_KEY = "_basket"
_OUT = [s.USER_ID, s.ITEM_ID, SCORE]
BASE_CANDIDATES = 50  # list length asked of build_candidates: the re-rank evaluation's default


def basket_table(events: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_id, item_id, _day, _seq) of known customers' purchases, one row per basket item.

    A basket is an order (order_id) when the column is there and filled, else the customer's day
    (key ``"@<day>"``). Baskets are numbered per customer by first day, then basket key: deterministic.
    The grouping runs on integer codes ranked as the ids and keys sort, so no id becomes a Python object.
    """
    buys = events[(events[s.QUANTITY] > 0) & events[s.USER_ID].notna()]  # known_purchases, no copy
    day = pd.Series(pd.to_datetime(buys[s.EVENT_DATE]).to_numpy("datetime64[D]").astype(np.int64),
                    index=buys.index)
    key = "@" + day.astype("str")
    if s.ORDER_ID in buys.columns:
        key = buys[s.ORDER_ID].where(buys[s.ORDER_ID].notna(), key)
    codes = pd.DataFrame({"u": pd.factorize(buys[s.USER_ID], sort=True)[0],
                          "b": pd.factorize(key, sort=True)[0],
                          "i": pd.factorize(buys[s.ITEM_ID])[0], DAY: day.to_numpy()})
    codes[DAY] = codes.groupby(["u", "b"], sort=False)[DAY].transform("min")
    codes = codes.drop_duplicates(["u", "b", "i"])
    order = codes[["u", DAY, "b"]].drop_duplicates().sort_values(["u", DAY, "b"], kind="mergesort")
    order[SEQ] = order.groupby("u", sort=False).cumcount()
    seq = codes.merge(order, on=["u", DAY, "b"], how="left")[SEQ].to_numpy()
    kept = codes.index.to_numpy()
    return pd.DataFrame({s.USER_ID: _ids(buys[s.USER_ID], kept), s.ITEM_ID: _ids(buys[s.ITEM_ID], kept),
                         DAY: codes[DAY].to_numpy(), SEQ: seq})


def _ids(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """The ids of ``column`` at ``rows``: a string column as is, object ids as pandas infers them."""
    picked = column.iloc[rows].reset_index(drop=True)
    return picked if picked.dtype != object else pd.Series(picked.to_numpy(object))


def popular_items(events: pd.DataFrame, cutoff: date, k: int | None = K) -> pd.Series:
    """The ``k`` (None: all) items with most distinct known buyers in the 28 days before ``cutoff``.

    Values are the buyer counts, indexed by item id, best first; ties break by item id.
    """
    recent = known_purchases(before(events, cutoff))
    start = pd.Timestamp(cutoff - timedelta(days=ACTIVE_DAYS))
    recent = recent[pd.to_datetime(recent[s.EVENT_DATE]) >= start]
    buyers = recent.drop_duplicates([s.USER_ID, s.ITEM_ID]).groupby(s.ITEM_ID).size()
    ranked = buyers.reset_index(name="_n").sort_values(["_n", s.ITEM_ID], ascending=[False, True],
                                                       kind="mergesort")
    return (ranked if k is None else ranked.head(k)).set_index(s.ITEM_ID)["_n"]


def g_topfreq(events: pd.DataFrame, cutoff: date, users: np.ndarray, *, k: int = K) -> pd.DataFrame:
    """Everyone gets the ``k`` items with most distinct buyers in the 28 days before the cut-off."""
    top = popular_items(events, cutoff, k)
    return pd.DataFrame({s.USER_ID: np.repeat(np.asarray(users, dtype=object), len(top)),
                         s.ITEM_ID: np.tile(top.index.to_numpy(object), len(users)),
                         SCORE: np.tile(top.to_numpy(float), len(users))})


def p_topfreq(events: pd.DataFrame, cutoff: date, users: np.ndarray, *, k: int = K) -> pd.DataFrame:
    """Each customer's items by distinct baskets (ties: latest day, popularity, item id), then g_topfreq.

    score = k - position (position 0 is the best), so the protocol keeps this exact order.
    """
    table = basket_table(before(events[events[s.USER_ID].isin(users)], cutoff))  # baskets are per customer
    own = table.groupby([s.USER_ID, s.ITEM_ID]).agg(_n=(SEQ, "size"), _last=(DAY, "max")).reset_index()
    popular = popular_items(events, cutoff, None)
    own["_pop"] = own[s.ITEM_ID].map(popular).fillna(0)
    own = own.sort_values([s.USER_ID, "_n", "_last", "_pop", s.ITEM_ID],
                          ascending=[True, False, False, False, True], kind="mergesort")
    own = own.groupby(s.USER_ID, sort=False).head(k)
    top = popular.index[:k].to_numpy(object)
    fill = pd.DataFrame({s.USER_ID: np.repeat(np.asarray(users, dtype=object), len(top)),
                         s.ITEM_ID: np.tile(top, len(users))})
    lists = pd.concat([own[[s.USER_ID, s.ITEM_ID]].assign(_part=0), fill.assign(_part=1)], ignore_index=True)
    lists["_pos"] = lists.groupby([s.USER_ID, "_part"], sort=False).cumcount()
    lists = lists.sort_values([s.USER_ID, "_part", "_pos"], kind="mergesort")
    lists = lists.drop_duplicates([s.USER_ID, s.ITEM_ID]).groupby(s.USER_ID, sort=False).head(k)
    lists[SCORE] = float(k) - lists.groupby(s.USER_ID, sort=False).cumcount().astype(float)
    return lists[_OUT].reset_index(drop=True)


def base(events: pd.DataFrame, cutoff: date, users: np.ndarray, *, k: int = K) -> pd.DataFrame:
    """The demo's candidate builder (own purchase lines and 28-day popularity), top ``k`` by base_score."""
    lists = build_candidates(before(events, cutoff), cutoff, n=max(k, BASE_CANDIDATES),
                             recent_days=ACTIVE_DAYS)
    lists = lists.groupby(s.USER_ID, sort=False).head(k)
    lists = lists[lists[s.USER_ID].isin(users)]
    return lists.rename(columns={s.BASE_SCORE: SCORE})[_OUT].reset_index(drop=True)
