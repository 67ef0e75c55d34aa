"""Which members the published forecast combines, and with what weights: the rules, from validation errors.

Every rule reads the members' errors on validation cut-offs before the training cut-off
(recsys.forecast.combination builds them): a cell is one segment at one cut-off, its MASE the
member's MAE over the ``horizon`` days after the cut-off divided by the segment's in-sample
seasonal-naive MAE up to it. The statistical members are scored on more cut-offs than the LSTM
(they need no retraining; the LSTM only on the days its early stopping held out), so comparisons
between two members use the cut-offs both have.

- ``best`` (the default): rank the members by the shop's mean validation MASE (the mean over the
  segments, then over the cut-offs); a member scored on fewer cut-offs is placed ahead of the first
  member it beats on their shared cut-offs. Publish the best member alone, unless the combination of
  the ``top_k`` best (weights 1 / MASE ** ``power``, on their shared cut-offs) has a validation MASE
  lower than the best member's by more than ``margin`` (``[combination] min_gain``, a fraction): the
  combination must be clearly better to be used, because weights chosen on a few cut-offs and then
  judged on them look better than they are, and a close second member dilutes the best one on a
  shop it does not suit.
- ``pooled``: the ``top_k`` best by mean MASE, weights 1 / MASE ** ``power``, one set for the shop;
- ``inverse``: the same per segment; ``select``: each segment's best member.

    python -c "from recsys.forecast.choice import choose_weights; print(choose_weights({'lstm': 1, 'auto_ets': 2}, 'inverse', 2))"
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from recsys.forecast.members import MEMBERS, SEASONAL_NAIVE

DEFAULT = "__default__"  # weights of a segment without its own (unseen in training, or unscored)
RULES = ("best", "pooled", "inverse", "select")
ORIGIN, ACTUAL, SCALE = "origin", "actual", "scale"  # columns of a validation table


def choose_weights(mase: dict[str, float], rule: str, top_k: int, power: float = 1.0) -> dict[str, float]:
    """Weights summing to 1 over the best members by validation MASE (ties: the order of MEMBERS).

    "select": weight 1 on the best; "inverse": the ``top_k`` best weighted by 1 / MASE ** power (a
    member with MASE 0 takes everything). Non-finite MASEs never get a weight; {} when none is finite.
    """
    finite = sorted(((v, MEMBERS.index(m), m) for m, v in mase.items() if v is not None and math.isfinite(v)))
    kept = finite[:1 if rule == "select" else top_k]
    if not kept:
        return {}
    if kept[0][0] <= 0:
        return {kept[0][2]: 1.0}
    inverse = {m: (kept[0][0] / v) ** power for v, _, m in kept}  # relative to the best: no overflow
    total = sum(inverse.values())
    return {m: w / total for m, w in inverse.items()}


def rule_weights(validation: dict[str, dict[str, float]], rule: str, top_k: int,
                 power: float = 1.0) -> dict[str, dict[str, float]]:
    """{segment or DEFAULT: {member: weight}} under "pooled", "inverse" or "select" from {segment: {member: MASE}}.

    DEFAULT (for segments without their own weights) is chosen on the mean MASE over the segments;
    "pooled" gives every segment those weights, "inverse" and "select" choose per segment.
    """
    shared = choose_weights(mean_over_segments(validation), "inverse" if rule == "pooled" else rule, top_k,
                            power) or {SEASONAL_NAIVE: 1.0}
    if rule == "pooled":
        return {seg: dict(shared) for seg in validation} | {DEFAULT: shared}
    weights = {seg: choose_weights(v, rule, top_k, power) for seg, v in validation.items()}
    return {seg: w for seg, w in weights.items() if w} | {DEFAULT: shared}


def best_weights(table: pd.DataFrame, members: list[str], top_k: int, power: float,
                 margin: float) -> tuple[dict[str, float], dict[str, Any]]:
    """The "best" rule: ({member: weight}, what it saw) from a validation table.

    ``table``: one row per (segment, origin, date) with ACTUAL, SCALE (the segment's naive MAE up to
    the origin, finite and > 0) and one forecast column per member (NaN where a member was not scored).
    """
    per_origin = {m: shop_mase(table, table[m]) for m in members if m in table.columns}
    per_origin = {m: v for m, v in per_origin.items() if len(v)}
    if not per_origin:
        return {SEASONAL_NAIVE: 1.0}, {"rule": "best", "ranking": []}
    ranking = rank_members(per_origin)
    kept = ranking[:top_k]
    shared = sorted(set.intersection(*(set(per_origin[m].index) for m in kept)))
    means = {m: float(per_origin[m].loc[shared].mean()) for m in kept}
    weights = choose_weights(means, "inverse", top_k, power)
    combined = sum(w * table[m] for m, w in weights.items())
    on_shared = table[table[ORIGIN].isin(shared)]
    combined_mase = float(shop_mase(on_shared, combined.loc[on_shared.index]).mean())
    best = ranking[0]
    combine = len(weights) > 1 and combined_mase < means[best] * (1.0 - margin)
    seen = {"rule": "best", "ranking": ranking, "margin": margin,
            "mase": {m: round(float(v.mean()), 6) for m, v in per_origin.items()},
            "origins": {m: len(v) for m, v in per_origin.items()},
            "best_mase_shared": round(means[best], 6), "combination_mase_shared": round(combined_mase, 6),
            "combined": bool(combine)}
    return (weights if combine else {best: 1.0}), seen


def rank_members(per_origin: dict[str, pd.Series]) -> list[str]:
    """Members best first: by mean MASE over their cut-offs, a member with fewer cut-offs placed ahead of
    the first one it beats on the cut-offs both have (ties keep the order of MEMBERS)."""
    order = sorted(per_origin, key=lambda m: (-len(per_origin[m]), float(per_origin[m].mean()), MEMBERS.index(m)))
    ranking: list[str] = []
    for member in order:
        at = next((i for i, other in enumerate(ranking) if _beats(per_origin[member], per_origin[other])),
                  len(ranking))
        ranking.insert(at, member)
    return ranking


def shop_mase(table: pd.DataFrame, forecast: pd.Series) -> pd.Series:
    """Per origin, the mean over segments of the forecast's MASE (cells without a forecast left out)."""
    error = (table[ACTUAL] - forecast).abs() / table[SCALE]
    frame = pd.DataFrame({s.SEGMENT: table[s.SEGMENT], ORIGIN: table[ORIGIN], "e": error}).dropna()
    per_cell = frame.groupby([ORIGIN, s.SEGMENT], sort=True)["e"].mean()
    return per_cell.groupby(level=0).mean()


def mean_over_segments(validation: dict[str, dict[str, float]]) -> dict[str, float]:
    members = {m for v in validation.values() for m in v}
    return {m: float(np.mean([v[m] for v in validation.values() if m in v])) for m in members}


def _beats(a: pd.Series, b: pd.Series) -> bool:
    """True when ``a`` has the lower mean MASE on the cut-offs both have (and fewer of them than ``b``)."""
    shared = a.index.intersection(b.index)
    return len(a) < len(b) and len(shared) > 0 and float(a.loc[shared].mean()) < float(b.loc[shared].mean())
