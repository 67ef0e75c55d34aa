"""The cold-start section of ``trendrec evaluate-rerank``: every cold-start population, method and cut-off.

At each weekly cut-off c of the next-basket protocol, the lists of recsys.evaluation.coldstart (new
customers, guest orders, known customers' items outside the customer model's retrieved candidates) get,
side by side:

- ``popularity`` (g_topfreq's distinct buyers; guest orders count), ``rising`` (item-level growth);
- ``trend_chosen``: popularity's top ``eval_candidates`` (for a known customer: of the items outside their
  scored candidates) re-ranked by segment trends at the weight the release rule picks, chosen as
  a push would on the week before c ([c - 7, c), trends as known at c - 7): what a version pushed at c
  would do; ``trend@w`` the same at each fixed weight w of the grid (the shape, not tuned on c's week);
- ``base`` (the demo's candidate builder) for the known customers' lists, minus their scored candidates
  (the builder has no list for a new customer or a guest).

Segment trends are **fitted leak-free at each date**: the published combination (recsys.forecast) refitted
on the daily table before the date, its trend taken on the day before (``CutoffTrends``, one fit per date,
shared with the ``segment_trend`` method). The candidates of ``outside_candidates`` are what the customer
model retrieves at c (recsys.nextbasket.recommend.retrieved_pairs).

    trendrec evaluate-rerank --weeks 6 --methods g_topfreq --json
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from recsys.evaluation.baselines import base
from recsys.evaluation.coldstart import (
    GRID,
    POPULATIONS,
    choose_weight,
    item_segments,
    popularity,
    population_targets,
    rising,
    score_lists,
    score_ranking,
    summary,
    trend_scorer,
)
from recsys.evaluation.protocol import SCORE, before, eligible_targets

log = logging.getLogger(__name__)

FIXED = tuple(w for w in GRID if w > 0)
METHODS = ("popularity", "rising", "trend_chosen", *(f"trend@{w:g}" for w in FIXED), "base")


class CutoffTrends:
    """{segment: trend} as known before a date: the combination refitted on the daily table before it."""

    def __init__(self, daily: pd.DataFrame, cfg: Config):
        self.daily, self.cfg, self._fits, self._weights = daily, cfg, {}, {}

    def at(self, day: date) -> dict[object, float]:
        if day not in self._fits:
            from recsys.forecast.combination import fit_combination  # TensorFlow: only when trends are asked for
            from recsys.forecast.trends import compute_trend_scores

            seen = self.daily[self.daily[s.DATE] < day].reset_index(drop=True)
            forecaster, _ = fit_combination(seen, self.cfg.model, self.cfg.combination, self.cfg.evaluate.season)
            table = compute_trend_scores(forecaster, seen, day - timedelta(days=1))
            self._fits[day] = dict(zip(table[s.SEGMENT].tolist(), table[s.TREND].astype(float).tolist()))
        return self._fits[day]

    def chosen(self, events: pd.DataFrame, cutoff: date) -> dict[str, Any]:
        """The release rule's choice for a version pushed at ``cutoff``: on the week before it."""
        if cutoff not in self._weights:
            week = cutoff - timedelta(days=7)
            seen = before(events, cutoff)
            self._weights[cutoff] = choose_weight(seen, week, self.at(week), _candidates(seen, week, self.cfg),
                                                  self.cfg.rerank.eval_candidates)
        return self._weights[cutoff]


def run_cold_start(cfg: Config, events: pd.DataFrame, cutoffs: list[date], trends: CutoffTrends) -> dict[str, Any]:
    """{"methods", "populations", "trends", "pooled": {population: {method: figures}}, "cutoffs": [...],
    "release_choice"}: the last is the weight a push after the last target week would choose, on that week."""
    per: dict[str, dict[str, list[pd.DataFrame]]] = {p: {m: [] for m in METHODS} for p in POPULATIONS}
    rows = []
    for cutoff in sorted(cutoffs):
        seen = before(events, cutoff)
        candidates = _candidates(events, cutoff, cfg)
        targets = population_targets(events, cutoff, candidates)
        choice = trends.chosen(events, cutoff)
        score = _scorer(seen, cutoff, trends.at(cutoff), choice["weight"], cfg.rerank.eval_candidates)
        row: dict[str, Any] = {"cutoff": cutoff.isoformat(), "chosen_weight": choice["weight"], "chosen": choice}
        for population, target in targets.items():
            if target is None or not len(target):
                continue
            exclude = candidates if population == "outside_candidates" else None
            scored = score(target, exclude)
            if population == "outside_candidates":
                users = target[s.USER_ID].unique()
                lists = base(seen, cutoff, users, k=cfg.rerank.eval_candidates)
                scored["base"] = score_lists(lists[[s.USER_ID, s.ITEM_ID, SCORE]], target, exclude)
            row[population] = {name: summary([rows_]) for name, rows_ in scored.items()}
            for name, rows_ in scored.items():
                per[population][name].append(rows_)
        rows.append(row)
        log.info("cold start at %s: weight %s; %s", cutoff, choice["weight"],
                 {p: (row.get(p) or {}).get("popularity", {}).get("lists") for p in POPULATIONS})
    pooled = {p: {m: summary(frames) for m, frames in by.items() if frames} for p, by in per.items()}
    last = max(cutoffs) + timedelta(days=7)  # a push after the last target week chooses on that week
    return {"methods": list(METHODS), "populations": list(POPULATIONS),
            "trends": "the segment forecaster refitted on the days before each date (leak-free)",
            "pooled": {p: v for p, v in pooled.items() if v}, "cutoffs": rows,
            "release_choice": trends.chosen(events, last)}


def _scorer(seen: pd.DataFrame, cutoff: date, trend: dict[object, float], weight: float,
            n: int) -> Callable[[pd.DataFrame, pd.DataFrame | None], dict[str, pd.DataFrame]]:
    """(targets, exclude) -> {method: score_users rows} for every method but ``base``, at one cut-off."""
    popular, segments = popularity(seen, cutoff), item_segments(seen)
    shared = {"popularity": popular, "rising": rising(seen, cutoff)}
    weights = {"trend_chosen": weight} | {f"trend@{w:g}": w for w in FIXED}

    def score(targets: pd.DataFrame, exclude: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
        out = {name: score_ranking(ranking, targets, exclude) for name, ranking in shared.items()}
        by_weight = trend_scorer(popular, segments, trend, targets, exclude, n)
        return out | {name: by_weight(w) for name, w in weights.items()}
    return score


def _candidates(events: pd.DataFrame, cutoff: date, cfg: Config) -> pd.DataFrame | None:
    """The customer model's retrieved (user_id, item_id) for the customers the protocol counts at ``cutoff``."""
    from recsys.nextbasket.recommend import retrieved_pairs  # DuckDB histories: only when this section runs

    users = np.asarray(eligible_targets(events, cutoff)[s.USER_ID].unique(), dtype=object)
    return retrieved_pairs(events, cutoff, users, cfg.customers) if len(users) else None
