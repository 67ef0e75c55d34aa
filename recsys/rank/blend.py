"""The blend rule: how trendrec's signals and the shop's ``base_score`` become one order per list.

A shop's ``base_score`` can be anything its recommender emits: a probability, a logit, a dot
product, negative or in the millions. Multiplying it by a trend factor inverts the trend for a
negative score, so the blend uses only the *order* of base_score inside each list:

    base_pct   = average rank of base_score within the list / list length   (1 = the best item)
    signal_pct = the same percentile of the signal key within the list
    final      = (1 - w) * base_pct + w * signal_pct

The result is the same for ``base_score``, ``base_score + c`` and ``k * base_score`` (k > 0).
Ties in ``final`` go to the higher base_pct, then to the input order. The signal key of an item:

- ``customer_model`` — the customer model scored (user, item) at push time: key = 2 + probability,
  so every scored item is above every unscored one in signal, ordered by the model's probability;
- ``segment_trend`` — otherwise, its segment's trend t in [-1, 1]: key = the trend-path blend
  (1 - weight) * base_pct + weight * trend_pct, the order an unknown customer gets;
- ``base`` — its segment is not in the production trend table (or missing): trend 0, neutral; such
  segments are counted (``unknown_segments``, the same naming for the batch and the service).

``w`` is ``rerank.customer_weight`` (default 1: the model's probability orders the list, base_score
breaks ties) for a customer the model scored, and for anyone else the segment-trend weight
(recsys.rank.signals.trend_weight: ``rerank.weight`` when set, else the weight the release chose on its
validation week, 0 where trends did not help there).
With w = 0 the list keeps the shop's order. Items of one segment keep their base order on the
trend path, since they share a trend.

    python -c "import numpy as np; from recsys.rank.blend import blend; \
print(blend(np.zeros(3, int), np.array([-5., -1., -3.]), np.array([0., .5, -.5]), np.full(3, np.nan), .3, 1.))"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable
from typing import NamedTuple

import numpy as np

SIGNALS = ("base", "segment_trend", "customer_model")  # codes 0, 1, 2 of Blended.signal
NULL_SEGMENT = "<null>"  # how a candidate without a segment is named among the unknown ones
_SCORED = 2.0  # offset of a scored item's key above any trend-path key (which lies in [0, 1])


class Blended(NamedTuple):
    final: np.ndarray  # final score per input row, in [0, 1]
    signal: np.ndarray  # int8 code per row into SIGNALS
    order: np.ndarray  # row order: lists in first-appearance order, best first
    rank: np.ndarray  # 1-based rank per row of ``order``


def blend(codes: np.ndarray, base: np.ndarray, trend: np.ndarray, prob: np.ndarray, weight: float,
          customer_weight: float) -> Blended:
    """Blend per list; ``codes`` number the lists 0.. in first-appearance order (pd.factorize).

    ``trend`` is NaN where the segment is unknown (treated as 0); ``prob`` is NaN where the
    customer model did not score the pair. Every array has one entry per candidate row.
    """
    base = np.asarray(base, float)
    known = ~np.isnan(trend)
    scored = ~np.isnan(prob)
    base_pct = _pct(codes, base)
    trend_path = (1.0 - weight) * base_pct + weight * _pct(codes, np.where(known, trend, 0.0))
    key = np.where(scored, _SCORED + np.nan_to_num(prob), trend_path)
    list_scored = np.bincount(codes, weights=scored, minlength=int(codes.max(initial=-1)) + 1)[codes] > 0
    w = np.where(list_scored, customer_weight, weight)
    final = np.where(list_scored, (1.0 - w) * base_pct + w * _pct(codes, key), trend_path)
    signal = np.where(scored, 2, np.where(known, 1, 0)).astype(np.int8)
    order = np.lexsort((np.arange(len(codes)), -base_pct, -final, codes))
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)])) + 1
    return Blended(final, signal, order, rank)


def blend_one(base: np.ndarray, trend: np.ndarray, prob: np.ndarray, weight: float,
              customer_weight: float) -> Blended:
    """``blend`` for a single list (the service's path): the same numbers, no grouping."""
    return blend(np.zeros(len(base), np.int64), base, trend, prob, weight, customer_weight)


def _pct(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Average rank of each value within its list / list length: 1 for the largest, ties share.

    One lexsort over (list, value) in C, no per-list Python work: the service calls it per request.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0)
    order = np.lexsort((values, codes))
    c, v = codes[order], values[order]
    new_list = np.r_[True, c[1:] != c[:-1]]
    new_value = new_list | np.r_[True, v[1:] != v[:-1]]
    list_start = np.maximum.accumulate(np.where(new_list, np.arange(n), 0))
    tie_start = np.flatnonzero(new_value)
    tie_end = np.r_[tie_start[1:], n]
    tie = np.cumsum(new_value) - 1
    avg = (tie_start + tie_end + 1) / 2.0  # 1-based mean position of each run of equal values
    sizes = np.bincount(codes)
    out = np.empty(n)
    out[order] = (avg[tie] - list_start) / sizes[c]
    return out


def unknown_segments(segments: Iterable[object], known: Container[str]) -> dict[str, int]:
    """{segment: occurrences} of the ``segments`` not in ``known``, sorted by name; a missing segment
    (None or NaN) is named NULL_SEGMENT. Only unknown values are looked at twice, so a caller may
    pass a whole list (the service) or only the rows a vectorised check found unknown (the batch)."""
    counts = Counter(_segment_name(seg) for seg in segments if not (isinstance(seg, str) and seg in known))
    return dict(sorted(counts.items()))


def _segment_name(seg: object) -> str:
    if isinstance(seg, str):
        return seg
    try:
        missing = seg is None or bool(seg != seg)  # noqa: PLR0124 - NaN is the one value unequal to itself
    except TypeError:  # pd.NA: its comparisons have no truth value
        missing = True
    return NULL_SEGMENT if missing else str(seg)
