"""The offline next-basket protocol: weekly cut-offs, one population, every method scored alike.

Why: a trend-aware model is only worth shipping if it beats the strong simple baselines (personal
top-frequency, TIFU-kNN) on the same customers, weeks and metric (Li et al., TOIS 2023). This module
fixes that protocol once so every method, present or future, plugs into it through one signature
(``Method``) and cannot see the week it is scored on.

- Cut-offs: ``weeks`` weekly dates ending at the last full week of the log (the last cut-off c is the
  latest date with c + 7 days <= the day after the last event).
- At a cut-off a method is given only the events dated before it (``event_date < cutoff``).
- Targets: the distinct items each customer buys (quantity > 0) in [cutoff, cutoff + 7). A customer
  counts when they bought in the 28 days before the cut-off AND buy in the target week; guests (null
  user_id) never count. A target the method does not return is a miss: the whole catalogue counts.
- Metrics (``recsys.evaluation.metrics``): Recall@k, NDCG@k, PHR@k, repeat_recall@k, explore_recall@k.
  Pooled figures weigh every customer of every cut-off the same.

    python benchmarks/nbr_baselines.py --store /tmp/nbr-store --weeks 6
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from recsys.evaluation import metrics

log = logging.getLogger(__name__)

K = metrics.K
TARGET_DAYS = 7  # the target week after a cut-off
ACTIVE_DAYS = 28  # a customer counts only when they bought in these days before the cut-off
SCORE = "score"  # a method's score column: higher is better
RESULT_KEYS = ("recall", "ndcg", "phr", "repeat_recall", "explore_recall")
# What a protocol run reads of the raw log (recsys.nextbasket.judge and .evaluation): a Method sees these columns.
EVENT_COLUMNS = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE, s.ORDER_ID]

Method = Callable[[pd.DataFrame, date, np.ndarray], pd.DataFrame]
"""A next-basket recommender under the protocol: ``method(events, cutoff, users) -> recommendations``.

- ``events``: the raw event log (RAW_SCHEMA columns, at least user_id, item_id, segment, quantity,
  event_date; order_id when the reader kept it) with ``event_date < cutoff`` only. It still holds
  returns (quantity <= 0) and guest rows (null user_id): filter them as the method sees fit
  (``known_purchases`` keeps purchases by known customers).
- ``cutoff``: the first day the method must not know about (a ``datetime.date``).
- ``users``: sorted user ids (object array of str) to recommend for.
- returns a DataFrame with columns user_id, item_id, score (float, higher is better), at most one
  row per (user_id, item_id). The protocol ranks by score, ties by item_id, keeps the top k per
  user and ignores users it did not ask for. A user without rows gets an empty list (all misses).
"""


class ProtocolError(TrendrecError):
    """A method's output or the arguments break the next-basket protocol."""


def purchases(events: pd.DataFrame, start: date, days: int = TARGET_DAYS) -> pd.DataFrame:
    """Distinct (user_id, item_id) bought (quantity > 0, known user) in [start, start + days)."""
    day = pd.to_datetime(events[s.EVENT_DATE])
    keep = ((day >= pd.Timestamp(start)) & (day < pd.Timestamp(start + timedelta(days=days)))
            & (events[s.QUANTITY] > 0) & events[s.USER_ID].notna())
    return events.loc[keep, [s.USER_ID, s.ITEM_ID]].drop_duplicates().reset_index(drop=True)


def weekly_cutoffs(last_day: date, weeks: int) -> list[date]:
    """``weeks`` cut-offs, oldest first; the last one leaves exactly one target week of data."""
    if weeks < 1:
        raise ProtocolError(f"weeks must be >= 1, got {weeks}")
    end = last_day + timedelta(days=1)
    return [end - timedelta(days=TARGET_DAYS * i) for i in range(weeks, 0, -1)]


def known_purchases(events: pd.DataFrame) -> pd.DataFrame:
    """The purchase rows (quantity > 0) of known customers (non-null user_id); a new frame."""
    return events[(events[s.QUANTITY] > 0) & events[s.USER_ID].notna()].copy()


def last_cutoffs(events: pd.DataFrame, weeks: int = 6) -> list[date]:
    """``weeks`` weekly cut-offs, oldest first; the last leaves exactly one full target week."""
    if events.empty:
        raise ProtocolError("the event log is empty: no cut-off can be placed")
    return weekly_cutoffs(pd.to_datetime(events[s.EVENT_DATE]).max().date(), weeks)


def eligible_targets(events: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Distinct (user_id, item_id) targets of the customers who count at ``cutoff``, sorted."""
    active = purchases(events, cutoff - timedelta(days=ACTIVE_DAYS), ACTIVE_DAYS)[s.USER_ID].unique()
    week = purchases(events, cutoff, TARGET_DAYS)
    week = week[week[s.USER_ID].isin(active)]
    return week.sort_values([s.USER_ID, s.ITEM_ID], kind="mergesort").reset_index(drop=True)


def before(events: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """The rows dated before ``cutoff``: all a method may see."""
    return events[pd.to_datetime(events[s.EVENT_DATE]) < pd.Timestamp(cutoff)]


def recommend(method: Method, events: pd.DataFrame, cutoff: date, users: np.ndarray, k: int = K,
              name: str = "method") -> pd.DataFrame:
    """Call ``method`` on the events before ``cutoff``; its top ``k`` per user with a 1-based rank."""
    return rank_lists(method(before(events, cutoff), cutoff, users), users, cutoff, k, name)


def rank_lists(out: pd.DataFrame, users: np.ndarray, cutoff: date, k: int = K,
               name: str = "method") -> pd.DataFrame:
    """Check a method's output against the ``Method`` contract; the top ``k`` of ``users`` ranked 1.."""
    missing = {s.USER_ID, s.ITEM_ID, SCORE} - set(out.columns)
    if missing:
        raise ProtocolError(f"{name} at {cutoff}: expected columns user_id, item_id, score; "
                            f"missing {sorted(missing)} (returned {list(out.columns)})")
    out = out.loc[out[s.USER_ID].isin(users), [s.USER_ID, s.ITEM_ID, SCORE]]
    dupes = out.duplicated([s.USER_ID, s.ITEM_ID])
    if dupes.any():
        first = out[dupes].iloc[0]
        raise ProtocolError(f"{name} at {cutoff}: (user_id, item_id) must be unique; "
                            f"({first[s.USER_ID]}, {first[s.ITEM_ID]}) appears {int(dupes.sum()) + 1}+ times")
    out = out.sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True], kind="mergesort")
    out = out.groupby(s.USER_ID, sort=False).head(k).reset_index(drop=True)
    out[s.RANK] = out.groupby(s.USER_ID, sort=False).cumcount() + 1
    return out


def run_protocol(events: pd.DataFrame, methods: Mapping[str, Method], cutoffs: list[date],
                 k: int = K, population: Mapping[date, np.ndarray] | None = None) -> dict[str, Any]:
    """Score every method at every cut-off on the same customers; pooled and per cut-off figures.

    ``population``: per cut-off, the customers to score (those of them who count there), e.g. the sample a
    model was validated on; None scores every customer who counts.

    Returns ``{"pooled": {method: {"recall@k", "ndcg@k", "phr@k", "repeat_recall@k",
    "explore_recall@k", "users"}}, "cutoffs": [{"cutoff": "YYYY-MM-DD", method: {...}}, ...]}``.
    A mean over no customer (e.g. explore recall when no target is new) is None. A cut-off without an
    eligible customer is logged and skipped.
    """
    if not methods:
        raise ProtocolError("no method to evaluate")
    per_user: dict[str, list[pd.DataFrame]] = {name: [] for name in methods}
    rows = []
    for cutoff in sorted(cutoffs):
        targets = eligible_targets(events, cutoff)
        if population is not None:
            targets = targets[targets[s.USER_ID].isin(population[cutoff])].reset_index(drop=True)
        users = np.asarray(targets[s.USER_ID].unique(), dtype=object)
        if not len(users):
            log.warning("cut-off %s: no customer bought in both the %d days before and the week after",
                        cutoff, ACTIVE_DAYS)
            continue
        # only these customers' pairs split their targets into repeat and explore: the rest would be a copy
        # of nearly the whole log, held while every method runs
        history = known_purchases(before(events[events[s.USER_ID].isin(users)], cutoff))
        row: dict[str, Any] = {"cutoff": cutoff.isoformat()}
        for name, method in methods.items():
            ranked = recommend(method, events, cutoff, users, k, name)
            scored = metrics.score_users(ranked, targets, history, k)
            per_user[name].append(scored)
            row[name] = _result(scored, k)
            log.info("cut-off %s %s: %d customers, Recall@%d %.4f", cutoff, name, len(users), k,
                     row[name][f"recall@{k}"])
        rows.append(row)
    pooled = {name: _result(pd.concat(frames, ignore_index=True), k) for name, frames in per_user.items()
              if frames}
    return {"pooled": pooled, "cutoffs": rows}


def _result(per_user: pd.DataFrame, k: int) -> dict[str, float | int | None]:
    """The protocol's figures for one method: the five means (None if undefined, for JSON) and the count."""
    summary = metrics.summarise(per_user, k)
    means = {f"{key}@{k}": summary[f"{key}@{k}"] for key in RESULT_KEYS}
    return {**{key: None if math.isnan(v) else v for key, v in means.items()}, "users": summary["users"]}
