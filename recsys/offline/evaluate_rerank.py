"""``trendrec evaluate-rerank``: does trendrec's ranking beat the strongest simple baselines, leak-free?

Runs the next-basket protocol (recsys.evaluation.protocol) on the store's events: ``weeks`` weekly cut-offs
ending at the last full week of the log; at each, every method sees only the events before it and
is retrained there; targets are the distinct items each customer buys in the 7 days from the
cut-off; customers count when they bought in the 28 days before it and buy in the target week; a
target a method never returns is a miss (the whole catalogue counts). Methods, side by side:

- ``g_topfreq``, ``p_topfreq``, ``base``, ``tifu_knn`` (tuned on the week before each cut-off):
  recsys.evaluation.baselines and recsys.evaluation.tifu_knn;
- ``segment_trend``: today's segment re-ranking: the base lists re-ranked by the blend rule with the
  trend of the published segment forecast (the per-segment combination) refitted on the daily table
  before the cut-off;
- ``lstm_recommender``: the customer model (recsys.nextbasket), retrained on the weeks before it.

Writes ``reranked/evaluation.json`` (what ``--json`` prints: ``pooled`` and ``cutoffs`` as the
protocol returns them, plus seconds per method and, per method, the cut-offs where it beats the
best baseline) for ``trendrec report`` and notebook 02.

    trendrec evaluate-rerank --weeks 6 --json
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_events, write_json
from recsys.evaluation.baselines import base, g_topfreq, p_topfreq
from recsys.evaluation.protocol import EVENT_COLUMNS, SCORE, Method, last_cutoffs, run_protocol
from recsys.rank.rerank import rerank
from recsys.evaluation.tifu_knn import tifu_knn

log = logging.getLogger(__name__)

RESULT_NAME = "evaluation"  # reranked/evaluation.json
BASELINES = ("g_topfreq", "p_topfreq", "base", "tifu_knn")
METHODS = (*BASELINES, "segment_trend", "lstm_recommender")


class RerankEvaluationError(TrendrecError):
    """The store or the arguments cannot support an offline re-rank evaluation."""


def segment_trend_method(daily: pd.DataFrame, cfg: Config) -> Method:
    """The base lists re-ranked by segment trends from a forecaster fitted on days before the cut-off."""
    def method(events: pd.DataFrame, cutoff: date, users: np.ndarray) -> pd.DataFrame:
        from recsys.forecast.combination import fit_combination  # TensorFlow: only when this method runs
        from recsys.forecast.trends import compute_trend_scores

        seen = daily[daily[s.DATE] < cutoff].reset_index(drop=True)
        forecaster, _ = fit_combination(seen, cfg.model, cfg.combination, cfg.evaluate.season)
        trends = compute_trend_scores(forecaster, seen, cutoff - timedelta(days=1))
        lists = base(events, cutoff, users, k=cfg.rerank.eval_candidates)
        lists = lists.rename(columns={SCORE: s.BASE_SCORE})
        lists[s.SEGMENT] = lists[s.ITEM_ID].map(_item_segments(events)).fillna("")
        ranked = rerank(lists[list(s.CANDIDATE_COLUMNS)], trends, cfg.rerank.weight)
        return ranked.assign(**{SCORE: -ranked[s.RANK].astype(float)})[[s.USER_ID, s.ITEM_ID, SCORE]]
    return method


def lstm_method(cfg: Config) -> Method:
    """The LSTMRecommender retrained at each cut-off (no TensorBoard logs: many runs, one table)."""
    def method(events: pd.DataFrame, cutoff: date, users: np.ndarray) -> pd.DataFrame:
        from recsys.nextbasket.recommend import lstm_recommender

        return lstm_recommender(events, cutoff, users, dataclasses.replace(cfg.customers, log_dir=""))
    return method


def build_methods(cfg: Config, names: list[str], daily: pd.DataFrame | None) -> dict[str, Method]:
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        raise RerankEvaluationError(f"unknown method(s) {unknown}: expected some of {', '.join(METHODS)}")
    table: dict[str, Callable[[], Method]] = {
        "g_topfreq": lambda: g_topfreq, "p_topfreq": lambda: p_topfreq, "base": lambda: base,
        "tifu_knn": lambda: tifu_knn, "segment_trend": lambda: segment_trend_method(daily, cfg),
        "lstm_recommender": lambda: lstm_method(cfg)}
    return {name: table[name]() for name in METHODS if name in names}


def run_evaluate_rerank(cfg: Config, weeks: int = 6, methods: list[str] | None = None) -> dict[str, Any]:
    """Run the protocol on the store; write and return reranked/evaluation.json's object."""
    store = Store(cfg.store)
    names = list(methods or METHODS)
    events = read_events(store, EVENT_COLUMNS)
    daily = read_daily(store) if "segment_trend" in names else None
    cutoffs = last_cutoffs(events, weeks)
    seconds: dict[str, float] = {}
    methods_timed = timed(build_methods(cfg, names, daily), seconds)
    log.info("evaluate-rerank: %s at %d cut-offs %s..%s", ", ".join(methods_timed), len(cutoffs), cutoffs[0],
             cutoffs[-1])
    result = run_protocol(events, methods_timed, cutoffs)
    result |= {"k": 10, "weeks": weeks, "methods": list(methods_timed),
               "seconds": {k: round(v, 1) for k, v in seconds.items()},
               "wins_over_best_baseline": wins(result, list(methods_timed))}
    path = write_json(result, store.reranked / f"{RESULT_NAME}.json")
    log.info("re-rank evaluation over %d cut-offs written to %s", len(result["cutoffs"]), path)
    return result | {"output": str(path)}


def wins(result: dict[str, Any], names: list[str], metric: str = "recall@10") -> dict[str, int]:
    """Per non-baseline method: the cut-offs where it beats every baseline that ran."""
    baselines = [b for b in BASELINES if b in names]
    out = {}
    for name in (n for n in names if n not in BASELINES):
        out[name] = sum(row[name][metric] > max(row[b][metric] for b in baselines)
                        for row in result["cutoffs"] if baselines and name in row)
    return out


def timed(methods: dict[str, Method], seconds: dict[str, float]) -> dict[str, Method]:
    """The same methods, adding each call's wall time to ``seconds[name]``."""
    def wrap(name: str, method: Method) -> Method:
        def run(events: pd.DataFrame, cutoff: date, users: np.ndarray) -> pd.DataFrame:
            started = time.perf_counter()
            try:
                return method(events, cutoff, users)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        return run
    return {name: wrap(name, method) for name, method in methods.items()}


def _item_segments(events: pd.DataFrame) -> pd.Series:
    """item_id -> its most frequent segment in the events (ties: the first in sort order)."""
    counts = events.groupby([s.ITEM_ID, s.SEGMENT], observed=True).size().reset_index(name="_n")
    counts = counts.sort_values([s.ITEM_ID, "_n", s.SEGMENT], ascending=[True, False, True])
    return counts.drop_duplicates(s.ITEM_ID).set_index(s.ITEM_ID)[s.SEGMENT]
