"""The distances the drift checks use, on plain arrays (no I/O): PSI and Jensen-Shannon.

Defaults follow Evidently's (0.7) data-drift preset where it has one: the Jensen-Shannon distance of a
categorical column fails above 0.1 (raised to what sampling alone reaches on a small sample,
``js_noise_floor``, widened by the shop's own week-to-week overdispersion, ``js_dispersion``; Evidently
switches to a chi-squared test below 1,000 objects for the same reason) and the PSI of a numeric one
above 0.1 ("stattest_threshold").
The PSI bins are the reference's deciles, so a rescaled column (prices in cents, quantities in dozens)
moves its mass across bins whatever the unit.

    python -c "from recsys.monitor.distances import psi; import numpy as np; print(psi(np.arange(100.), np.arange(100.) * 100))"
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats

PSI_BINS = 10  # reference deciles
NOISE_LEVEL = 0.999  # quantile of the chance distance a categorical threshold is raised to (js_noise_floor)
EPS = 1e-4  # share given to an empty bin, so the logarithm stays finite (Evidently does the same)


def decile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges: the reference's quantiles, ties merged."""
    return np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin of ``edges`` (len(edges) + 1 bins; a value on an edge goes right)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` over the reference's quantile bins."""
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if not len(reference) or not len(current):
        return float("nan")
    edges = decile_edges(reference, bins)
    p, q = np.clip(shares(reference, edges), EPS, None), np.clip(shares(current, edges), EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Mapping[str, float], current: Mapping[str, float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two categorical distributions given as
    {value: count or share}; a value missing on one side has share 0 there."""
    keys = sorted(set(reference) | set(current))
    p = np.array([reference.get(k, 0.0) for k in keys], float)
    q = np.array([current.get(k, 0.0) for k in keys], float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))
    return float(np.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


def js_noise_floor(categories: int, n_reference: int, n_current: int, level: float = NOISE_LEVEL,
                   dispersion: float = 1.0, dispersion_df: int = 0) -> float:
    """The Jensen-Shannon distance two samples of one distribution reach by chance at ``level``.

    For close distributions JSD (nats) ~ chi2 / 8 * (1/n + 1/m) with chi2 ~ chi-squared(k - 1): the
    distance (base 2) below which a difference is sampling noise. A small shop's week (a few hundred
    orders over dozens of segments) sits above Evidently's 0.1 by chance alone; a large one far below it.

    ``dispersion`` (``js_dispersion`` of the shop's own clean slices, at least 1) widens the bound for a
    shop whose weeks move more than independent draws would (overdispersion, quasi-likelihood style):
    chi2 / (k - 1) then follows dispersion x F(k - 1, ``dispersion_df``), the F distribution accounting for
    the dispersion being estimated on ``dispersion_df`` degrees of freedom (0: known, chi-squared).
    """
    if categories < 2 or n_reference < 1 or n_current < 1:
        return 0.0
    df = categories - 1
    if dispersion_df > 0:
        scaled = df * float(stats.f.ppf(level, df, dispersion_df))
    else:
        scaled = float(stats.chi2.ppf(level, df))
    chi2 = max(1.0, dispersion) * scaled
    return float(np.sqrt(chi2 * (1 / n_reference + 1 / n_current) / (8 * np.log(2))))


def js_dispersion(distance: float, categories: int, n_reference: int, n_current: int) -> float:
    """How far a Jensen-Shannon ``distance`` between two samples is from sampling noise: its chi-squared
    equivalent over the k - 1 that chi-squared averages by chance (1: independent draws; NaN when undefined)."""
    if categories < 2 or n_reference < 1 or n_current < 1 or not np.isfinite(distance):
        return float("nan")
    return float(distance ** 2 * 8 * np.log(2) / ((1 / n_reference + 1 / n_current) * (categories - 1)))


def clock_shift(reference: Mapping[str, float], current: Mapping[str, float]) -> tuple[int, float]:
    """The shift in hours (-11..12) that brings the reference's hour-of-day counts ({"0".."23": n}) closest
    to the current ones, and the Jensen-Shannon distance there; (0, distance unshifted) when no shift is
    closer. A clock or timezone change moves every order by the same hours; a change of the shop's own
    hours (an evening opening) is not explained by moving them all."""
    best = (0, js_distance(reference, current))
    for hours in range(-11, 13):
        if hours:
            moved = {str((int(h) + hours) % 24): n for h, n in reference.items()}
            value = js_distance(moved, current)
            if value < best[1]:
                best = (hours, value)
    return best
