"""Model inputs of (customer, candidate item) pairs at a cut-off: weekly sequences and repeat-cycle statics.

A wholesale customer re-buys an item on a rhythm: every week, every three weeks... The recurrent layer
reads the last ``seq_weeks`` weeks of five counts (oldest first): the customer's purchases of the item,
of its segment and of anything, and the crowd's sales of the item and of its segment. The statics
summarise the whole lookback and make the rhythm explicit, so the network need not find it in a
sequence: weeks since the customer last bought the item, how many weeks they bought it, their typical
(median) interval between those weeks and how far past due they are, the segment trend (0 when the
forecaster's trend is not given) and the item's recent popularity and its growth. Raw counts come out
here; the model log1p-scales them and normalises with statistics of its training cut-offs only.

    python -c "from datetime import date; from recsys.customers.histories import *; \
from recsys.customers.candidates import build_candidates; from recsys.customers.features import build_features; \
h = next(iter_histories(open_store('/tmp/cust-store'), date(2011, 12, 3))); print(build_features(h, build_candidates(h))[1][:3])"
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import CAND_RANK, PURCHASES, WEEK
from recsys.customers.candidates import item_growth
from recsys.customers.histories import BUYERS, REPEAT_RATE, Histories

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

    ``pairs`` has user_id, item_id, segment and cand_rank (as build_candidates returns).
    """
    t = cfg.seq_weeks
    user_any = hist.user_segment.groupby([s.USER_ID, WEEK], as_index=False)[PURCHASES].sum()
    seq = np.stack([_weekly(hist.user_item, [s.USER_ID, s.ITEM_ID], pairs, t),
                    _weekly(hist.user_segment, [s.USER_ID, s.SEGMENT], pairs, t),
                    _weekly(user_any, [s.USER_ID], pairs, t),
                    _weekly(hist.crowd_item, [s.ITEM_ID], pairs, t),
                    _weekly(hist.crowd_segment, [s.SEGMENT], pairs, t)], axis=-1)
    return seq, _statics(hist, pairs, cfg, trend or {}, user_any)


def _weekly(long: pd.DataFrame, keys: list[str], pairs: pd.DataFrame, t: int) -> np.ndarray:
    """(len(pairs), t) counts of each pair's keys per week, oldest week first; zeros where none."""
    code = pairs.groupby(keys, sort=False).ngroup().to_numpy()
    uniq = pairs[keys].assign(_code=code).drop_duplicates("_code")
    m = long[long[WEEK] < t].merge(uniq, on=keys)
    dense = np.zeros((len(uniq), t), np.float32)
    dense[m["_code"].to_numpy(), t - 1 - m[WEEK].to_numpy()] = m[PURCHASES].to_numpy()
    return dense[code]


def _repeat_stats(hist: Histories) -> pd.DataFrame:
    ui = hist.user_item.sort_values([s.USER_ID, s.ITEM_ID, WEEK])
    gap = ui[WEEK].diff().where(ui.duplicated([s.USER_ID, s.ITEM_ID]))
    g = ui.assign(_gap=gap, _decay=DECAY ** ui[WEEK].to_numpy(np.float64)).groupby([s.USER_ID, s.ITEM_ID])
    return g.agg(weeks_since_last=(WEEK, "min"), weeks_bought=(WEEK, "size"), lines_bought=(PURCHASES, "sum"),
                 interval=("_gap", "median"), decayed_weeks=("_decay", "sum")).reset_index()


def _user_stats(hist: Histories, user_any: pd.DataFrame) -> pd.DataFrame:
    decay = user_any.assign(_decay=DECAY ** user_any[WEEK].to_numpy(np.float64))
    users = decay.groupby(s.USER_ID).agg(user_weeks=(WEEK, "size"), user_since_last=(WEEK, "min"),
                                         _total=(PURCHASES, "sum"), _decay_total=("_decay", "sum"))
    return users.reset_index()


def _statics(hist: Histories, pairs: pd.DataFrame, cfg: CustomerModelConfig, trend: dict[str, float],
             user_any: pd.DataFrame) -> np.ndarray:
    lb = float(cfg.lookback_weeks)
    x = pairs[[s.USER_ID, s.ITEM_ID, s.SEGMENT, CAND_RANK]].merge(
        _repeat_stats(hist), on=[s.USER_ID, s.ITEM_ID], how="left")
    x = x.merge(_user_stats(hist, user_any), on=s.USER_ID, how="left")
    seg = hist.user_segment.groupby([s.USER_ID, s.SEGMENT], as_index=False)[PURCHASES].sum()
    x = x.merge(seg.rename(columns={PURCHASES: "_seg"}), on=[s.USER_ID, s.SEGMENT], how="left")
    growth = item_growth(hist, cfg)[[s.ITEM_ID, "recent", "prev"]]
    x = x.merge(growth, on=s.ITEM_ID, how="left").merge(hist.item_repeat, on=s.ITEM_ID, how="left")
    x = x.fillna({BUYERS: 0.0, REPEAT_RATE: 0.0, "recent": 0.0, "prev": 0.0, "_seg": 0.0,
                  "weeks_bought": 0.0, "lines_bought": 0.0, "decayed_weeks": 0.0})
    x["weeks_since_last"] = x["weeks_since_last"].fillna(lb)
    x["interval"] = x["interval"].fillna(lb)
    x["weeks_since_due"] = x["weeks_since_last"] + 1.0 - x["interval"]
    x["due_ratio"] = (x["weeks_since_last"] + 1.0) / x["interval"].clip(lower=1.0)
    x["segment_trend"] = x[s.SEGMENT].map(trend).fillna(0.0) if trend else 0.0
    x["item_growth"] = np.log1p(x["recent"]) - np.log1p(x["prev"])
    x["item_recent"] = x["recent"]
    x["user_weeks"] = x["user_weeks"].fillna(0.0)
    x["user_since_last"] = x["user_since_last"].fillna(lb)
    x["repeat_share"] = x["weeks_bought"] / x["user_weeks"].clip(lower=1.0)
    x["segment_share"] = x["_seg"] / x["_total"].fillna(0.0).clip(lower=1.0)
    x["item_buyers"], x["item_repeat_rate"] = x[BUYERS], x[REPEAT_RATE]
    x["decayed_share"] = x["decayed_weeks"] / x["_decay_total"].fillna(0.0).clip(lower=1e-9)
    return x[list(STATIC_FEATURES)].to_numpy(np.float32)
