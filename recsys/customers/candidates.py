"""Candidate items per customer when the shop gives none: their past items, risers, popular items.

A next-week basket is mostly repurchases (60 % of next week's distinct items on Online Retail), so a
customer's own past items come first, most often bought first. A share of the list (``EXPLORE_SHARE``)
is kept for items they never bought: items rising in the customer's segments (recent sales growth of
the item over ``recent_weeks``, segments ordered by the customer's purchases there, boosted by the
segment forecaster's trend when one is passed in), then the crowd's recently popular items. Built with
pandas group-bys over one batch of histories, no Python loop over customers.

    python -c "from datetime import date; from recsys.customers.histories import *; \
from recsys.customers.candidates import build_candidates; con = open_store('/tmp/cust-store'); \
print(build_candidates(next(iter_histories(con, date(2011, 12, 3)))).head(12))"
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import CAND_RANK, PURCHASES, SOURCE, WEEK
from recsys.customers.histories import Histories

log = logging.getLogger(__name__)

SOURCES = ("past", "rising", "popular")  # candidate generators, in list order
EXPLORE_SHARE = 0.2  # share of the list kept for never-bought items when a customer has many past items
TOP_SEGMENTS = 3  # a customer's segments searched for rising items
_TIER, _KEY = "_tier", "_key"


def build_candidates(hist: Histories, cfg: CustomerModelConfig = CustomerModelConfig(),
                     trend: dict[str, float] | None = None) -> pd.DataFrame:
    """Up to ``n_candidates`` (user_id, item_id, segment, source, cand_rank) per customer of the batch."""
    n = cfg.n_candidates
    past = _past(hist)
    explore = pd.concat([_rising(hist, cfg, trend or {}, n), _popular(hist, cfg, n)], ignore_index=True)
    both = pd.concat([past, explore], ignore_index=True).sort_values([s.USER_ID, _TIER, _KEY], kind="stable")
    both = both.drop_duplicates([s.USER_ID, s.ITEM_ID], keep="first")
    both = both[(both[_TIER] > 0) | (both.groupby([s.USER_ID, _TIER]).cumcount() < n - int(n * EXPLORE_SHARE))]
    both = both.sort_values([s.USER_ID, _TIER, _KEY], kind="stable")
    both[CAND_RANK] = both.groupby(s.USER_ID).cumcount()
    out = both[both[CAND_RANK] < n].merge(hist.item_segment, on=s.ITEM_ID, how="left")
    out[SOURCE] = np.asarray(SOURCES)[out["_src"].to_numpy()]
    log.debug("candidates at %s: %d pairs for %d customers", hist.cutoff, len(out), out[s.USER_ID].nunique())
    return out[[s.USER_ID, s.ITEM_ID, s.SEGMENT, SOURCE, CAND_RANK]].reset_index(drop=True)


def item_growth(hist: Histories, cfg: CustomerModelConfig) -> pd.DataFrame:
    """Per item: crowd purchases in the last ``recent_weeks`` (recent) and the ``recent_weeks`` before (prev)."""
    ci = hist.crowd_item
    recent = ci[ci[WEEK] < cfg.recent_weeks].groupby(s.ITEM_ID)[PURCHASES].sum().rename("recent")
    prev = ci[(ci[WEEK] >= cfg.recent_weeks) & (ci[WEEK] < 2 * cfg.recent_weeks)]
    prev = prev.groupby(s.ITEM_ID)[PURCHASES].sum().rename("prev")
    out = pd.concat([recent, prev], axis=1).fillna(0.0).rename_axis(s.ITEM_ID).reset_index()
    return out.merge(hist.item_segment, on=s.ITEM_ID, how="left")


def _past(hist: Histories) -> pd.DataFrame:
    g = hist.user_item.groupby([s.USER_ID, s.ITEM_ID]).agg(n=(WEEK, "size"), last=(WEEK, "min")).reset_index()
    # most weeks bought first, then most recently bought
    return g.assign(**{_TIER: 0, _KEY: -g["n"] * 1000.0 + g["last"], "_src": 0})[
        [s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]


def _rising(hist: Histories, cfg: CustomerModelConfig, trend: dict[str, float], n: int) -> pd.DataFrame:
    growth = item_growth(hist, cfg)
    growth = growth.assign(rise=growth["recent"] - growth["prev"]).query("rise > 0")
    growth = growth.sort_values(["rise", s.ITEM_ID], ascending=[False, True])
    growth["_irank"] = growth.groupby(s.SEGMENT).cumcount()
    growth = growth[growth["_irank"] < n]
    seg = hist.user_segment.groupby([s.USER_ID, s.SEGMENT])[PURCHASES].sum().reset_index()
    seg["w"] = seg[PURCHASES] * (1.0 + seg[s.SEGMENT].map(trend).fillna(0.0).clip(lower=-0.9))
    seg = seg.sort_values([s.USER_ID, "w"], ascending=[True, False])
    seg["_srank"] = seg.groupby(s.USER_ID).cumcount()
    seg = seg[seg["_srank"] < TOP_SEGMENTS]
    out = seg[[s.USER_ID, s.SEGMENT, "_srank"]].merge(growth[[s.SEGMENT, s.ITEM_ID, "_irank"]], on=s.SEGMENT)
    out = out.assign(**{_TIER: 1, _KEY: out["_irank"] * TOP_SEGMENTS + out["_srank"], "_src": 1})
    return out[[s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]


def _popular(hist: Histories, cfg: CustomerModelConfig, n: int) -> pd.DataFrame:
    top = item_growth(hist, cfg).sort_values(["recent", s.ITEM_ID], ascending=[False, True]).head(n)
    users = pd.DataFrame({s.USER_ID: hist.users})
    out = users.merge(pd.DataFrame({s.ITEM_ID: top[s.ITEM_ID].to_numpy(), "_prank": np.arange(len(top))}),
                      how="cross")
    # after the risers of the same list position: 10_000 keeps popular behind every rising key
    out = out.assign(**{_TIER: 1, _KEY: 10_000 + out["_prank"], "_src": 2})
    return out[[s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]
