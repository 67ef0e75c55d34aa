"""Offline evaluation of re-ranking: does the trend blend put next week's purchases higher?

At each of ``weeks`` weekly cut-offs at the end of the event log, the simple base recommender
(recsys.rank.candidates.build_candidates: recent popularity plus the customer's own history) builds a
list of ``rerank.eval_candidates`` items (default 50) for every customer active in the 28 days
before the cut-off, from events before it only. The targets are the items each customer buys in the
7 days from the cut-off. Each list is scored as the base ranks it (weight 0) and re-ranked with
every swept weight, using the trend known at the cut-off: the production model's forecast from the
daily table truncated at the day before the cut-off. Only customers with a list and at least one
purchase in the target week count.

Metrics at k = 10, binary relevance: HitRate@10 = share of customers with a bought item in their
top 10; NDCG@10 = DCG / ideal DCG with DCG = sum over top-10 hits of 1 / log2(rank + 1) and the
ideal placing min(10, items bought) hits first; coverage = distinct items in any top 10 / distinct
items in any list. Pooled figures weight every customer of every cut-off equally.

Leakage, stated plainly: the trend inputs never see the target week, but the production model's
weights were fitted on data up to its training cutoff (metadata "cutoff"). Cut-offs on or before it
are marked ``leak_free: false`` (the model has seen their target week in training); the summary
reports the pooled figures over all cut-offs and over the leak-free ones. Retraining per cut-off
would remove this and is left to a later run (it costs one training per week).

Writes ``reranked/evaluation.parquet`` (one row per cut-off x weight) and ``reranked/evaluation.json``
(the same rows plus the pooled summary), for notebooks and ``trendrec report``.

    trendrec evaluate-rerank --weights 0,0.1,0.3,0.5,1 --weeks 6 --json
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config, RerankConfig
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_events, write_json, write_parquet
from recsys.rank.candidates import EVENT_COLUMNS, build_candidates
from recsys.forecast.trends import compute_trend_scores
from recsys.rank.rerank import rerank

log = logging.getLogger(__name__)

K = 10  # metrics look at the top 10
TARGET_DAYS = 7  # the target window after each cut-off
RECENT_DAYS = 28  # customers active (and popularity counted) in these days before a cut-off
RESULT_NAME = "evaluation"  # reranked/evaluation.parquet and .json
SUMS = ("users", "hits", "ndcg_sum")


class RerankEvaluationError(TrendrecError):
    """The store or the arguments cannot support an offline re-rank evaluation."""


# --- metrics: pure functions of tables --------------------------------------------------------------
def purchases(events: pd.DataFrame, start: date, days: int = TARGET_DAYS) -> pd.DataFrame:
    """Distinct (user_id, item_id) bought (quantity > 0, known user) in [start, start + days)."""
    day = pd.to_datetime(events[s.EVENT_DATE])
    keep = ((day >= pd.Timestamp(start)) & (day < pd.Timestamp(start + timedelta(days=days)))
            & (events[s.QUANTITY] > 0) & events[s.USER_ID].notna())
    return events.loc[keep, [s.USER_ID, s.ITEM_ID]].drop_duplicates().reset_index(drop=True)


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
def weekly_cutoffs(last_day: date, weeks: int) -> list[date]:
    """``weeks`` cut-offs, oldest first; the last one leaves exactly one target week of data."""
    if weeks < 1:
        raise RerankEvaluationError(f"weeks must be >= 1, got {weeks}")
    end = last_day + timedelta(days=1)
    return [end - timedelta(days=TARGET_DAYS * i) for i in range(weeks, 0, -1)]


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


# --- run_evaluate_rerank: I/O around the pure parts -------------------------------------------------
def run_evaluate_rerank(cfg: Config, weights: list[float], weeks: int = 6) -> dict[str, Any]:
    """Evaluate on the store's events with the production model; write reranked/evaluation.*."""
    from recsys.forecast.publish import load_production  # loads Keras: not at import (the protocol imports us)


    store = Store(cfg.store)
    if any(not 0.0 <= w <= 1.0 for w in weights):
        raise RerankEvaluationError(f"weights must be in [0, 1], got {weights}")
    loaded = load_production(store)
    if loaded is None:
        raise RerankEvaluationError(f"no production model in {store.models}: run `trendrec push` first")
    model, meta = loaded
    events = read_events(store, EVENT_COLUMNS)
    daily = read_daily(store)
    cutoffs = weekly_cutoffs(pd.to_datetime(events[s.EVENT_DATE]).max().date(), weeks)
    trained_until = date.fromisoformat(str(meta["cutoff"])) if meta.get("cutoff") else None

    def trend_at(cutoff: date) -> pd.DataFrame:
        return compute_trend_scores(model, daily, cutoff - timedelta(days=1))

    n = cfg.rerank.eval_candidates
    table = evaluate_rerank(events, trend_at, cutoffs, weights, n=n)
    table["leak_free"] = [trained_until is not None and c > trained_until for c in table["cutoff"]]
    table["model_version"] = meta["version"]
    return _write(store, table, meta["version"], trained_until, cfg.rerank.weight, n)


def _write(store: Store, table: pd.DataFrame, version: str, trained_until: date | None, weight: float,
           n: int) -> dict[str, Any]:
    pooled = pool(table)
    clean = table[table["leak_free"]]
    summary = {
        "model_version": version, "model_trained_until": str(trained_until), "k": K, "list_length": n,
        "cutoffs": sorted({str(c) for c in table["cutoff"]}),
        "leak_free_cutoffs": sorted({str(c) for c in clean["cutoff"]}),
        "config_weight": weight, "pooled": _records(pooled),
        "pooled_leak_free": _records(pool(clean)) if len(clean) else [],
        "best_weight": float(pooled.loc[pooled["hit_rate"].idxmax(), "weight"]),
        "rows": _records(table.assign(cutoff=table["cutoff"].astype(str))),
    }
    parquet = store.reranked / f"{RESULT_NAME}.parquet"
    write_parquet(pa.Table.from_pandas(table.assign(cutoff=pd.to_datetime(table["cutoff"])),
                                       preserve_index=False), parquet)
    write_json(summary, store.reranked / f"{RESULT_NAME}.json")
    log.info("re-rank evaluation of %s over %d cut-offs written to %s", version, len(summary["cutoffs"]),
             parquet)
    return summary | {"output": str(parquet), "output_json": str(store.reranked / f"{RESULT_NAME}.json")}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: numpy scalars to Python, NaN to None."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out
