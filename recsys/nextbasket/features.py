"""Model inputs of (customer, candidate item) pairs at a cut-off: weekly sequences and repeat-cycle statics.

A wholesale customer re-buys an item on a rhythm: every week, every three weeks... The recurrent layer
reads the last ``seq_weeks`` weeks of five counts (oldest first): the customer's purchases of the item,
of its segment and of anything, and the crowd's sales of the item and of its segment. The statics
summarise the whole lookback and make the rhythm explicit, so the network need not find it in a
sequence: weeks since the customer last bought the item, how many weeks they bought it, their typical
(median) interval between those weeks and how far past due they are, the segment trend (0 when the
forecaster's trend is not given) and the item's recent popularity and its growth. Raw counts come out
here; the model log1p-scales them and normalises with statistics of its training cut-offs only.
Built with NumPy on the batch's integer codes (``Histories.codes``): the per-customer, per-item and
per-(customer, item) tables are computed once per batch (``FeatureTables``), then every pair is an
index into them, so memory follows the batch and the pairs asked for, not the number of customers.

    python -c "from datetime import date; from recsys.nextbasket.histories import *; \
from recsys.nextbasket.retrieval import retrieve; from recsys.nextbasket.features import build_features; \
h = next(iter_histories(open_store('/tmp/cust-store'), date(2011, 12, 3))); print(build_features(h, retrieve(h))[1][:3])"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import CAND_RANK
from recsys.nextbasket.retrieval import group_starts, item_growth
from recsys.nextbasket.histories import Codes, Histories, code

SEQ_CHANNELS = ("user_item", "user_segment", "user_any", "crowd_item", "crowd_segment")
STATIC_FEATURES = (
    "weeks_since_last",  # weeks since the customer's last purchase of the item (lookback if never)
    "weeks_bought",  # weeks in the lookback in which they bought it
    "lines_bought",  # purchase lines of the item in the lookback
    "interval",  # median weeks between those weeks (lookback when bought in under 2 weeks)
    "weeks_since_due",  # (weeks_since_last + 1) - interval: > 0 overdue in the target week, 0 due
    "due_ratio",  # (weeks_since_last + 1) / interval
    "segment_trend",  # the segment forecaster's trend score; 0 when absent
    "item_growth",  # log1p(crowd sales, last recent_weeks) - log1p(the recent_weeks before)
    "item_recent",  # crowd purchase lines of the item in the last recent_weeks
    "user_weeks",  # weeks in which the customer bought anything
    "repeat_share",  # weeks_bought / user_weeks
    "user_since_last",  # weeks since the customer bought anything
    "segment_share",  # the customer's share of purchases in the item's segment
    "cand_rank",  # position in the candidate list (past items by frequency first)
    "decayed_weeks",  # sum over the weeks they bought it of DECAY ** week (TIFU-kNN's personal part)
    "decayed_share",  # decayed_weeks / the same sum over the weeks they bought anything
    "item_buyers",  # known customers who bought the item in the lookback
    "item_repeat_rate",  # share of them who bought it in two weeks or more (a staple vs a one-off)
)
DECAY = 0.9  # per-week decay of decayed_weeks (TIFU-kNN's r_b on Instacart and Dunnhumby)



def build_features(hist: Histories, pairs: pd.DataFrame, cfg: CustomerModelConfig = CustomerModelConfig(),
                   trend: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sequences (P, seq_weeks, 5), statics (P, len(STATIC_FEATURES))) float32 for pairs of this batch.

    ``pairs`` has user_id, item_id, segment and cand_rank (as retrieve returns); a user, item or
    segment outside the batch's histories gets the features of no history.
    """
    c = hist.codes
    return FeatureTables.build(c, cfg).pairs(
        code(pairs[s.USER_ID], c.users), code(pairs[s.ITEM_ID], c.items), code(pairs[s.SEGMENT], c.segments),
        pairs[CAND_RANK].to_numpy(np.float64), _pair_trend(pairs[s.SEGMENT], trend))


def segment_trend(names: list[str], rows: np.ndarray, trend: dict[str, float] | None) -> np.ndarray:
    """The trend of ``names[row]`` for each row (-1 and names the trend does not know: 0)."""
    if not trend:
        return np.zeros(len(rows))
    values = np.array([trend.get(v, np.nan) for v in names] + [np.nan], np.float64)[rows]
    return np.where(np.isnan(values), 0.0, values)


@dataclass(frozen=True)
class FeatureTables:
    """What the features of any pair of one batch read, one row per key; the last row of every table is
    the "no history" row that a code of -1 indexes."""

    cfg: CustomerModelConfig
    n_items: int
    n_segments: int
    user_item_keys: np.ndarray  # user * n_items + item of the customers' (user, item) pairs, sorted
    user_item: dict[str, np.ndarray]  # their weekly counts ("seq") and repeat statistics
    user_segment_keys: np.ndarray  # user * n_segments + segment, sorted
    user_segment: dict[str, np.ndarray]  # weekly counts and total purchases
    user: dict[str, np.ndarray]  # per user code: weekly counts of anything and its statistics
    item: dict[str, np.ndarray]  # per item code: crowd weekly counts, recent, prev, buyers, repeat rate
    segment_seq: np.ndarray  # per segment code: crowd weekly counts

    @classmethod
    def build(cls, c: Codes, cfg: CustomerModelConfig) -> FeatureTables:
        t, lb = cfg.seq_weeks, float(cfg.lookback_weeks)
        ui_keys, user_item = _user_item(c, t, lb)
        us_keys, user_segment = _user_segment(c, t)
        item_seq = _dense(c.crowd_item[0], *c.crowd_item[1:], len(c.items), t)
        recent, prev, _ = item_growth(c, cfg)
        item = {"seq": item_seq, "recent": _pad(recent, 0), "prev": _pad(prev, 0),
                "buyers": _pad(c.item_buyers, 0), "repeat_rate": _pad(c.item_repeat_rate, 0)}
        segment_seq = _dense(c.crowd_segment[0], *c.crowd_segment[1:], len(c.segments), t)
        return cls(cfg, len(c.items), len(c.segments), ui_keys, user_item, us_keys, user_segment,
                   _user(c, t, lb), item, segment_seq)

    def pairs(self, user: np.ndarray, item: np.ndarray, segment: np.ndarray, cand_rank: np.ndarray,
              trend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sequences, statics) of the pairs given as codes (-1: not in the batch) with their cand_rank
        and segment trend."""
        ui = _lookup(self.user_item_keys, user, item, self.n_items)
        us = _lookup(self.user_segment_keys, user, segment, self.n_segments)
        seq = np.empty((len(user), self.cfg.seq_weeks, len(SEQ_CHANNELS)), np.float32)
        for k, (table, rows) in enumerate(((self.user_item["seq"], ui), (self.user_segment["seq"], us),
                                           (self.user["seq"], user), (self.item["seq"], item),
                                           (self.segment_seq, segment))):
            seq[:, :, k] = table[rows]
        return seq, self._statics(ui, us, user, item, cand_rank, trend)

    def _statics(self, ui: np.ndarray, us: np.ndarray, user: np.ndarray, item: np.ndarray,
                 cand_rank: np.ndarray, trend: np.ndarray) -> np.ndarray:
        p, u, i = {k: v[ui] for k, v in self.user_item.items() if k != "seq"}, self.user, self.item
        recent, prev, user_weeks = i["recent"][item], i["prev"][item], u["weeks"][user]
        x = {**p, "segment_trend": trend, "item_recent": recent, "user_weeks": user_weeks, "cand_rank": cand_rank,
             "weeks_since_due": p["weeks_since_last"] + 1.0 - p["interval"],
             "due_ratio": (p["weeks_since_last"] + 1.0) / np.maximum(p["interval"], 1.0),
             "item_growth": np.log1p(recent) - np.log1p(prev),
             "repeat_share": p["weeks_bought"] / np.maximum(user_weeks, 1.0),
             "user_since_last": u["since_last"][user],
             "segment_share": self.user_segment["total"][us] / np.maximum(u["total"][user], np.float32(1.0)),
             "decayed_share": p["decayed_weeks"] / np.maximum(u["decayed"][user], 1e-9),
             "item_buyers": i["buyers"][item], "item_repeat_rate": i["repeat_rate"][item]}
        out = np.empty((len(ui), len(STATIC_FEATURES)), np.float32)
        for k, name in enumerate(STATIC_FEATURES):
            out[:, k] = x[name]
        return out


def _pair_trend(segments: pd.Series, trend: dict[str, float] | None) -> np.ndarray:
    if not trend:
        return np.zeros(len(segments))
    names = pc.unique(pa.array(segments).drop_null())
    return segment_trend(names.to_pylist(), code(segments, names), trend)


def _lookup(keys: np.ndarray, a: np.ndarray, b: np.ndarray, n_b: int) -> np.ndarray:
    """Row of (a, b) in sorted ``keys`` = a * n_b + b; -1 where absent or a code is -1."""
    if not len(keys):
        return np.full(len(a), -1)
    key = a.astype(np.int64) * n_b + b
    row = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
    return np.where((a >= 0) & (b >= 0) & (keys[row] == key), row, -1)


def _pad(values: np.ndarray, default: float) -> np.ndarray:
    """``values`` with the "no history" row (index -1) appended."""
    return np.concatenate([values, np.full((1, *values.shape[1:]), default, values.dtype)])


def _dense(rows: np.ndarray, week: np.ndarray, purchases: np.ndarray, n: int, t: int) -> np.ndarray:
    """(n + 1, t) counts of each row key per week, oldest of the last t weeks first; the last row zeros."""
    dense = np.zeros((n + 1, t), np.float32)
    recent = week < t
    dense[rows[recent], t - 1 - week[recent]] = purchases[recent]
    return dense


def _decayed(group: np.ndarray, week: np.ndarray, n: int) -> np.ndarray:
    """Per group: the sum of DECAY ** week (float64). pandas' groupby sum may differ in the last bit of
    the float64 (its own summation); the float32 feature is the same but for about 1 value in 10^8."""
    return np.bincount(group, weights=DECAY ** week.astype(np.float64), minlength=n)


def _user_item(c: Codes, t: int, lb: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Keys and per-(user, item) sequences and repeat statistics (weeks ascending within a pair)."""
    user, item, week, purchases = c.user_item
    starts = group_starts(user, item)
    first, n_rows = starts[:-1], np.diff(starts)
    group = np.repeat(np.arange(len(first)), n_rows)
    stats = {"seq": _dense(group, week, purchases, len(first), t),
             "weeks_since_last": _pad(week[first].astype(np.float64), lb),
             "weeks_bought": _pad(n_rows.astype(np.float64), 0.0),
             "lines_bought": _pad(np.add.reduceat(purchases, first) if len(first) else purchases, 0.0),
             "interval": _pad(_median_gaps(group, week, len(first), lb), lb),
             "decayed_weeks": _pad(_decayed(group, week, len(first)), 0.0)}
    return user[first].astype(np.int64) * len(c.items) + item[first], stats


def _median_gaps(group: np.ndarray, week: np.ndarray, n: int, lb: float) -> np.ndarray:
    """Per group: median of the gaps between its consecutive weeks; ``lb`` when it has no gap."""
    inner = np.flatnonzero(group[1:] == group[:-1]) + 1
    g, gap = group[inner], (week[inner] - week[inner - 1]).astype(np.float64)
    order = np.lexsort((gap, g))
    g, gap = g[order], gap[order]
    starts = group_starts(g) if len(g) else np.zeros(1, np.int64)
    m = np.diff(starts)
    out = np.full(n, lb)
    lo, hi = starts[:-1] + (m - 1) // 2, starts[:-1] + m // 2
    out[g[starts[:-1]]] = (gap[lo] + gap[hi]) / 2.0
    return out


def _user_segment(c: Codes, t: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    user, segment, week, purchases = c.user_segment
    starts = group_starts(user, segment)
    first = starts[:-1]
    group = np.repeat(np.arange(len(first)), np.diff(starts))
    stats = {"seq": _dense(group, week, purchases, len(first), t),
             "total": _pad(np.add.reduceat(purchases, first) if len(first) else purchases, 0.0)}
    return user[first].astype(np.int64) * len(c.segments) + segment[first], stats


def _user(c: Codes, t: int, lb: float) -> dict[str, np.ndarray]:
    """Per user code: weekly purchases of anything and the weeks, recency, total and decayed weeks."""
    user, _, week, purchases = c.user_segment
    span = int(week.max()) + 1 if len(week) else 1
    flat, inverse = np.unique(user.astype(np.int64) * span + week, return_inverse=True)
    any_user, any_week = flat // span, flat % span
    any_purchases = np.bincount(inverse, weights=purchases, minlength=len(flat)).astype(np.float32)
    n = len(c.users)
    starts = group_starts(any_user)
    first = starts[:-1]
    since = np.full(n, lb)
    since[any_user[first]] = any_week[first]
    return {"seq": _dense(any_user, any_week, any_purchases, n, t),
            "weeks": _pad(np.bincount(any_user, minlength=n).astype(np.float64), 0.0),
            "since_last": _pad(since, lb),
            "total": _pad(np.bincount(any_user, weights=any_purchases, minlength=n).astype(np.float32), 0.0),
            "decayed": _pad(_decayed(any_user, any_week, n), 0.0)}
