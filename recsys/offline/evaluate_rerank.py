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
  before the cut-off, at ``rerank.weight`` when set, else at the weight a push at the cut-off would
  choose (recsys.offline.cold_start.CutoffTrends.chosen);
- ``lstm_recommender``: the customer model (recsys.nextbasket), retrained on the weeks before it.

Then, unless ``cold_start`` is off, the cold-start section (recsys.offline.cold_start): new customers,
guest orders and the items outside each customer's scored candidates, at the same cut-offs.

Writes ``reranked/evaluation.json`` (what ``--json`` prints: ``pooled`` and ``cutoffs`` as the
protocol returns them, plus seconds per method, per method the cut-offs where it beats the best
baseline, and ``cold_start``) for ``trendrec report`` and notebook 02.

    trendrec evaluate-rerank --weeks 6 --json
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_events, write_json
from recsys.evaluation.baselines import base, g_topfreq, p_topfreq
from recsys.evaluation.coldstart import item_segments
from recsys.evaluation.protocol import EVENT_COLUMNS, SCORE, Method, last_cutoffs, run_protocol
from recsys.evaluation.tifu_knn import tifu_knn
from recsys.offline.cold_start import CutoffTrends, run_cold_start
from recsys.rank.rerank import rerank

log = logging.getLogger(__name__)

RESULT_NAME = "evaluation"  # reranked/evaluation.json
BASELINES = ("g_topfreq", "p_topfreq", "base", "tifu_knn")
METHODS = (*BASELINES, "segment_trend", "lstm_recommender")


class RerankEvaluationError(TrendrecError):
    """The store or the arguments cannot support an offline re-rank evaluation."""


def segment_trend_method(trends: CutoffTrends, cfg: Config) -> Method:
    """The base lists re-ranked by segment trends from a forecaster fitted on days before the cut-off."""
    def method(events: pd.DataFrame, cutoff: date, users: np.ndarray) -> pd.DataFrame:
        weight = cfg.rerank.weight
        weight = trends.chosen(events, cutoff)["weight"] if weight is None else weight
        table = pd.DataFrame({s.SEGMENT: list(trends.at(cutoff)), s.TREND: list(trends.at(cutoff).values())})
        lists = base(events, cutoff, users, k=cfg.rerank.eval_candidates)
        lists = lists.rename(columns={SCORE: s.BASE_SCORE})
        lists[s.SEGMENT] = lists[s.ITEM_ID].map(item_segments(events)).fillna("")
        ranked = rerank(lists[list(s.CANDIDATE_COLUMNS)], table, weight)
        return ranked.assign(**{SCORE: -ranked[s.RANK].astype(float)})[[s.USER_ID, s.ITEM_ID, SCORE]]
    return method


def lstm_method(cfg: Config) -> Method:
    """The LSTMRecommender retrained at each cut-off (no TensorBoard logs: many runs, one table)."""
    def method(events: pd.DataFrame, cutoff: date, users: np.ndarray) -> pd.DataFrame:
        from recsys.nextbasket.recommend import lstm_recommender

        return lstm_recommender(events, cutoff, users, dataclasses.replace(cfg.customers, log_dir=""))
    return method


def build_methods(cfg: Config, names: list[str], trends: CutoffTrends | None) -> dict[str, Method]:
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        raise RerankEvaluationError(f"unknown method(s) {unknown}: expected some of {', '.join(METHODS)}")
    table: dict[str, Callable[[], Method]] = {
        "g_topfreq": lambda: g_topfreq, "p_topfreq": lambda: p_topfreq, "base": lambda: base,
        "tifu_knn": lambda: tifu_knn, "segment_trend": lambda: segment_trend_method(trends, cfg),
        "lstm_recommender": lambda: lstm_method(cfg)}
    return {name: table[name]() for name in METHODS if name in names}


def run_evaluate_rerank(cfg: Config, weeks: int = 6, methods: list[str] | None = None,
                        cold_start: bool = True) -> dict[str, Any]:
    """Run the protocol (and the cold-start section) on the store; write and return reranked/evaluation.json's object."""
    store = Store(cfg.store)
    names = list(methods or METHODS)
    events = read_events(store, EVENT_COLUMNS)
    trends = CutoffTrends(read_daily(store), cfg) if "segment_trend" in names or cold_start else None
    cutoffs = last_cutoffs(events, weeks)
    seconds: dict[str, float] = {}
    methods_timed = timed(build_methods(cfg, names, trends), seconds)
    log.info("evaluate-rerank: %s at %d cut-offs %s..%s", ", ".join(methods_timed), len(cutoffs), cutoffs[0],
             cutoffs[-1])
    result = run_protocol(events, methods_timed, cutoffs)
    result |= {"k": 10, "weeks": weeks, "methods": list(methods_timed),
               "seconds": {k: round(v, 1) for k, v in seconds.items()},
               "wins_over_best_baseline": wins(result, list(methods_timed))}
    if trends is not None and cold_start:
        started = time.perf_counter()
        result["cold_start"] = run_cold_start(cfg, events, cutoffs, trends)
        result["seconds"]["cold_start"] = round(time.perf_counter() - started, 1)
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

