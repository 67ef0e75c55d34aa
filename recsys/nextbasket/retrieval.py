"""Retrieval: the items the next-basket model scores for each customer: their past items, risers, popular items.

(The model's own retrieval; the shop's candidate lists are what re-ranking re-orders, recsys.rank.)

A next-week basket is mostly repurchases (60 % of next week's distinct items on Online Retail), so a
customer's own past items come first, most often bought first. A share of the list (``EXPLORE_SHARE``)
is kept for items they never bought: items rising in the customer's segments (recent sales growth of
the item over ``recent_weeks``, segments ordered by the customer's purchases there, boosted by the
segment forecaster's trend when one is passed in), then the crowd's recently popular items. Built
with NumPy index arithmetic on the batch's integer codes (``Histories.codes``): one (customers,
explore slots) matrix per batch, no pandas merge and no Python loop over customers.

    python -c "from datetime import date; from recsys.nextbasket.histories import *; \
from recsys.nextbasket.retrieval import retrieve; con = open_store('/tmp/cust-store'); \
print(retrieve(next(iter_histories(con, date(2011, 12, 3)))).head(12))"
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import CAND_RANK, SOURCE
from recsys.nextbasket.histories import Codes, Histories

log = logging.getLogger(__name__)

SOURCES = ("past", "rising", "popular")  # candidate generators, in list order
EXPLORE_SHARE = 0.2  # share of the list kept for never-bought items when a customer has many past items
TOP_SEGMENTS = 3  # a customer's segments searched for rising items


@dataclass(frozen=True)
class Retrieved:
    """The retrieved pairs of one batch as codes of ``codes``, sorted by user then rank."""

    codes: Codes
    user: np.ndarray  # user codes
    item: np.ndarray  # item codes
    source: np.ndarray  # index into SOURCES
    rank: np.ndarray  # cand_rank, 0 = first in the customer's list

    @property
    def segment(self) -> np.ndarray:
        return self.codes.item_segment[self.item]

    def frame(self) -> pd.DataFrame:
        """(user_id, item_id, segment, source, cand_rank) as retrieve returns them."""
        c = self.codes
        segments = pa.array(c.segments.to_pylist() + [None], pa.string())  # code -1: no segment
        return pd.DataFrame({s.USER_ID: c.users.take(self.user).to_pandas(),
                             s.ITEM_ID: c.items.take(self.item).to_pandas(),
                             s.SEGMENT: segments.take(np.where(self.segment < 0, len(c.segments),
                                                               self.segment)).to_pandas(),
                             SOURCE: pa.array(SOURCES).take(self.source).to_pandas(),
                             CAND_RANK: self.rank.astype(np.int64)})


def retrieve(hist: Histories, cfg: CustomerModelConfig = CustomerModelConfig(),
                     trend: dict[str, float] | None = None) -> pd.DataFrame:
    """Up to ``n_candidates`` (user_id, item_id, segment, source, cand_rank) per customer of the batch."""
    return retrieved_codes(hist, cfg, trend).frame()


def retrieved_codes(hist: Histories, cfg: CustomerModelConfig = CustomerModelConfig(),
                    trend: dict[str, float] | None = None) -> Retrieved:
    """retrieve as integer codes (push-time scoring stays in codes until the parquet writer)."""
    c, n = hist.codes, cfg.n_candidates
    past_user, past_item, past_rank = _past(c)
    keep = past_rank < n - int(n * EXPLORE_SHARE)
    explore, valid, n_rising = _explore(c, cfg, trend or {}, past_user, past_item)
    kept = np.bincount(past_user[keep], minlength=len(c.users))
    slot = np.cumsum(valid, axis=1, dtype=np.int32)
    take = valid & (slot <= (n - kept)[:, None])
    eu, ej = np.nonzero(take)
    user = np.concatenate([past_user[keep], eu])
    rank = np.concatenate([past_rank[keep], kept[eu] + slot[eu, ej] - 1])
    item = np.concatenate([past_item[keep], explore[eu, ej]])
    source = np.concatenate([np.zeros(keep.sum(), np.int64), np.where(ej < n_rising, 1, 2)])
    counts = np.bincount(user, minlength=len(c.users))
    order = np.empty(len(user), np.int64)  # ranks run 0, 1... within a customer: (user, rank) gives the row
    order[np.cumsum(counts)[user] - counts[user] + rank] = np.arange(len(user))
    log.debug("retrieved at %s: %d pairs for %d customers", hist.cutoff, len(user), np.count_nonzero(counts))
    return Retrieved(c, user[order], item[order], source[order], rank[order])


def item_growth(c: Codes, cfg: CustomerModelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item code: crowd purchases in the last ``recent_weeks`` (recent, float32), in the ``recent_weeks``
    before (prev, float32), and whether it sold in either window."""
    item, week, purchases = c.crowd_item
    n, r = len(c.items), cfg.recent_weeks
    recent, prev = week < r, (week >= r) & (week < 2 * r)
    sums = [np.bincount(item[m], weights=purchases[m], minlength=n).astype(np.float32) for m in (recent, prev)]
    return sums[0], sums[1], np.bincount(item[recent | prev], minlength=n) > 0


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """First row of each run of equal keys in rows sorted by them (with a final len(rows))."""
    change = np.zeros(len(keys[0]), bool)
    change[:1] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.r_[np.flatnonzero(change), len(keys[0])]


def rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2... within each run of equal values of a sorted ``group`` array."""
    starts = group_starts(group)
    return np.arange(len(group)) - np.repeat(starts[:-1], np.diff(starts))


def _past(c: Codes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, rank) of the customers' own items: most weeks bought first, then most recent, then item."""
    user, item, week, _ = c.user_item
    starts = group_starts(user, item)
    n_weeks, starts = np.diff(starts), starts[:-1]
    pu, pi = user[starts], item[starts]
    order = np.lexsort((pi, -n_weeks * 1000 + week[starts], pu))
    return pu[order], pi[order], rank_in_group(pu[order])


def _explore(c: Codes, cfg: CustomerModelConfig, trend: dict[str, float], past_user: np.ndarray,
             past_item: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(customers, slots) matrix of never-bought items in list order (risers, then popular), the mask of
    the slots to use (filled, not bought before, not already listed) and how many slots are risers'."""
    n = cfg.n_candidates
    recent, prev, sold = item_growth(c, cfg)
    by_segment, irank = _risers(c, recent - prev, sold, n)
    top = _top_segments(c, trend)
    rising = by_segment[top].transpose(0, 2, 1).reshape(len(c.users), -1)  # slot irank * TOP_SEGMENTS + srank
    sold_items = np.flatnonzero(sold)
    popular = sold_items[np.lexsort((sold_items, -recent[sold_items]))][:n]
    explore = np.concatenate([rising, np.broadcast_to(popular, (len(c.users), len(popular)))], axis=1)
    valid = explore >= 0
    pop_slot = np.full(len(c.items) + 1, -1, np.int64)
    pop_slot[popular] = rising.shape[1] + np.arange(len(popular))
    ru, rj = np.nonzero(valid[:, :rising.shape[1]] & (pop_slot[rising] >= 0))
    valid[ru, pop_slot[rising[ru, rj]]] = False  # a popular item already listed as a riser
    srank = np.argmax(top[past_user] == c.item_segment[past_item][:, None], axis=1)
    seen = (top[past_user, srank] == c.item_segment[past_item]) & (irank[past_item] >= 0)
    valid[past_user[seen], irank[past_item[seen]] * TOP_SEGMENTS + srank[seen]] = False
    seen = pop_slot[past_item] >= 0
    valid[past_user[seen], pop_slot[past_item[seen]]] = False
    return explore, valid, rising.shape[1]


def _risers(c: Codes, rise: np.ndarray, sold: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(segments + 1, n) item codes rising most in each segment (-1 pads; the last row is all -1) and
    each item's position in its segment's row (-1: not there)."""
    items = np.flatnonzero(sold & (rise > 0) & (c.item_segment >= 0))
    items = items[np.lexsort((items, -rise[items]))]
    items = items[np.argsort(c.item_segment[items], kind="stable")]
    segment = c.item_segment[items]
    pos = rank_in_group(segment)
    keep = pos < n
    by_segment = np.full((len(c.segments) + 1, n), -1, np.int64)
    by_segment[segment[keep], pos[keep]] = items[keep]
    irank = np.full(len(c.items), -1, np.int64)
    irank[items[keep]] = pos[keep]
    return by_segment, irank


def _top_segments(c: Codes, trend: dict[str, float]) -> np.ndarray:
    """(customers, TOP_SEGMENTS) segment codes by purchases x (1 + trend clipped at -0.9); -1 pads."""
    user, segment, _, purchases = c.user_segment
    starts = group_starts(user, segment)
    su, ss = user[starts[:-1]], segment[starts[:-1]]
    total = np.add.reduceat(purchases, starts[:-1]) if len(purchases) else purchases
    boost = np.array([trend.get(v, np.nan) for v in c.segments.to_pylist()], np.float64)
    boost = 1.0 + np.maximum(np.where(np.isnan(boost), 0.0, boost), -0.9)
    order = np.lexsort((ss, -(total.astype(np.float64) * boost[ss]), su))
    su, ss = su[order], ss[order]
    srank = rank_in_group(su)
    top = np.full((len(c.users) + 1, TOP_SEGMENTS), -1, np.int64)  # row -1: no customer
    keep = srank < TOP_SEGMENTS
    top[su[keep], srank[keep]] = ss[keep]
    return top[:-1]
