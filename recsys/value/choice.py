"""Which customer value model is published: the ensemble only where it is no worse than BG/NBD + Gamma-Gamma.

The rule, on one validation window (figures of recsys.value.metrics, every model scored on the same
customers): a model *qualifies* when it is no worse than ``bgnbd_gg`` on all four of Spearman,
normalized Gini, top-decile capture (higher is better) and |total error| (lower is better). The
ensemble is published when it qualifies; otherwise the qualifying member with the highest Spearman;
otherwise ``bgnbd_gg`` itself. A figure that cannot be computed (NaN) for the baseline ties with
anything; a NaN for the challenger against a number for the baseline is worse.

``crossfit_blend`` gives the ensemble an honest figure on a window whose own labels chose its weights:
customers are split in two halves by a hash of their id, the weights are chosen on one half and
applied to the other.

    python -c "from recsys.value.choice import choose; \
print(choose({'bgnbd_gg': dict(spearman=.3, norm_gini=.5, top_decile_capture=.4, total_error=.1), \
'ensemble': dict(spearman=.4, norm_gini=.6, top_decile_capture=.5, total_error=-.2)}))"
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from recsys.value.ensemble import ENSEMBLE, MEMBERS, blend, blend_weights

BASELINE = "bgnbd_gg"
HIGHER = ("spearman", "norm_gini", "top_decile_capture")  # higher is better
LOWER = ("total_error",)  # compared as |total error|, lower is better
RULE_FIGURES = HIGHER + LOWER
TOLERANCE = 1e-9  # floating-point noise: equal figures (the ensemble on BG/NBD alone) tie


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def no_worse(challenger: dict[str, float], baseline: dict[str, float]) -> bool:
    """True when ``challenger`` is at least as good as ``baseline`` on each of RULE_FIGURES."""
    for name in RULE_FIGURES:
        a, b = challenger.get(name), baseline.get(name)
        if _nan(b):
            continue
        if _nan(a):
            return False
        if name in LOWER:
            a, b = -abs(a), -abs(b)
        if a < b - TOLERANCE:
            return False
    return True


def choose(figures: dict[str, dict[str, float]]) -> str:
    """The published model under the rule of the module doc (``bgnbd_gg`` when nothing else qualifies)."""
    base = figures.get(BASELINE)
    if base is None:
        return BASELINE
    if ENSEMBLE in figures and no_worse(figures[ENSEMBLE], base):
        return ENSEMBLE
    members = [m for m in MEMBERS if m != BASELINE and m in figures and no_worse(figures[m], base)]
    if not members:
        return BASELINE
    return max(members, key=lambda m: (-np.inf if _nan(figures[m].get("spearman")) else figures[m]["spearman"],
                                       -MEMBERS.index(m)))


def shipped_weights(published: str, ensemble_weights: dict[str, float]) -> dict[str, float]:
    """The blend weights that give the published model's forecast: a member alone, or the ensemble's."""
    return dict(ensemble_weights) if published == ENSEMBLE else {published: 1.0}


def halves(users: np.ndarray) -> np.ndarray:
    """True for the customers of the first half: a stable hash of the id (the same on every machine)."""
    return np.array([zlib.crc32(str(u).encode("utf-8")) % 2 == 0 for u in users], dtype=bool)


def crossfit_blend(spend: dict[str, np.ndarray], actual: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The ensemble on a window, each half blended with the weights chosen on the other half."""
    first = halves(users)
    out = np.zeros(len(actual), dtype=np.float64)
    for part in (first, ~first):
        if not part.any():
            continue
        other = ~part if (~part).any() else part
        weights = blend_weights({m: v[other] for m, v in spend.items()}, actual[other])
        out[part] = blend({m: v[part] for m, v in spend.items()}, weights)
    return out
