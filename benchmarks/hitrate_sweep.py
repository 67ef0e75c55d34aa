"""The HitRate@10 sweep of blend weights that benchmarks/rerank_ceiling.py measured (kept for its figures).

``trendrec evaluate-rerank`` now runs the next-basket protocol (recsys.offline.evaluate_rerank); this module
keeps the earlier HitRate / NDCG sweep over lists of the base recommender so the ceiling benchmark
reproduces. Pure functions of tables.

    PYTHONPATH=. .venv/bin/python benchmarks/rerank_ceiling.py --store /tmp/nbr-store
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import RerankConfig
from recsys.evaluation.candidates import build_candidates
from recsys.evaluation.protocol import TARGET_DAYS, purchases, weekly_cutoffs  # noqa: F401 (re-exported)
from recsys.rank.rerank import rerank

log = logging.getLogger(__name__)

K = 10
RECENT_DAYS = 28


# --- metrics: pure functions of tables --------------------------------------------------------------
def score_lists(ranked: pd.DataFrame, targets: pd.DataFrame, k: int = K) -> dict[str, float]:
    """HitRate@k, NDCG@k (sums and means) and coverage of ranked lists (user_id, item_id, rank).

    Users without a target are left out of HitRate and NDCG; a target item that is not in the list
    still counts in the ideal DCG (the list could not reach it, and that is part of the score).
    Coverage is over every list: distinct items in any top k / distinct items in any list.
    """
    n_targets = targets.groupby(s.USER_ID).size().rename("n_targets")
    lists = ranked[ranked[s.USER_ID].isin(n_targets.index)]
    top = lists[lists[s.RANK] <= k]
    rel = top.merge(targets.assign(_rel=1.0), on=[s.USER_ID, s.ITEM_ID], how="left")["_rel"].fillna(0.0)
    gain = rel.to_numpy() / np.log2(top[s.RANK].to_numpy(float) + 1.0)
    per_user = pd.DataFrame({s.USER_ID: top[s.USER_ID].to_numpy(), "hit": rel.to_numpy(), "dcg": gain})
    per_user = per_user.groupby(s.USER_ID).agg(hit=("hit", "max"), dcg=("dcg", "sum"))
    discounts = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    ideal = discounts[np.minimum(n_targets.reindex(per_user.index).to_numpy(), k) - 1]
    users, hits = len(per_user), float(per_user["hit"].sum())
    ndcg_sum = float((per_user["dcg"] / ideal).sum())
    all_items, top_all = ranked[s.ITEM_ID].nunique(), ranked.loc[ranked[s.RANK] <= k, s.ITEM_ID]
    return {"users": users, "hits": hits, "ndcg_sum": ndcg_sum,
            "hit_rate": hits / users if users else math.nan, "ndcg": ndcg_sum / users if users else math.nan,
            "coverage": top_all.nunique() / all_items if all_items else math.nan}


# --- the evaluation loop ------------------------------------------------------------------------------
def evaluate_rerank(events: pd.DataFrame, trend_at: Callable[[date], pd.DataFrame], cutoffs: list[date],
                    weights: list[float], n: int = RerankConfig.eval_candidates, k: int = K) -> pd.DataFrame:
    """One row per cut-off x weight: cutoff, weight, users, hits, ndcg_sum, hit_rate, ndcg, coverage.

    ``trend_at(cutoff)`` returns the trend table (segment, trend) known at the cut-off. Weight 0 is
    the base ranking and is always included.
    """
    weights = sorted({0.0, *map(float, weights)})
    rows = []
    for cutoff in cutoffs:
        lists = build_candidates(events, cutoff, n=n, recent_days=RECENT_DAYS)
        targets = purchases(events, cutoff)
        trends = trend_at(cutoff)
        for weight in weights:
            ranked = rerank(lists, trends, weight)
            rows.append({"cutoff": cutoff, "weight": weight, **score_lists(ranked, targets, k)})
        log.info("cut-off %s: %d lists, %d buyers, base HitRate@%d %.4f", cutoff,
                 lists[s.USER_ID].nunique(), targets[s.USER_ID].nunique(), k, rows[-len(weights)]["hit_rate"])
    return pd.DataFrame(rows)


def pool(table: pd.DataFrame) -> pd.DataFrame:
    """Per weight over the given cut-offs: every user counted once per cut-off; lift vs weight 0."""
    agg = table.groupby("weight", sort=True).agg(users=("users", "sum"), hits=("hits", "sum"),
                                                 ndcg_sum=("ndcg_sum", "sum"), coverage=("coverage", "mean"))
    agg["hit_rate"], agg["ndcg"] = agg["hits"] / agg["users"], agg["ndcg_sum"] / agg["users"]
    base = agg.loc[0.0]
    agg["hit_rate_lift"] = agg["hit_rate"] / base["hit_rate"] - 1.0
    agg["ndcg_lift"] = agg["ndcg"] / base["ndcg"] - 1.0
    columns = ["weight", "users", "hit_rate", "ndcg", "coverage", "hit_rate_lift", "ndcg_lift"]
    return agg.reset_index()[columns]
