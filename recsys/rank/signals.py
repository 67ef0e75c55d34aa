"""The one scoring path of re-ranking, shared by the batch (recsys.rank.rerank) and the service.

``ReleaseSignals`` is what a release gives re-ranking: its segment trends ({segment: trend}, from
``Release.trend_file``) and its push-time customer scores (a ``ScoreIndex`` of
``Release.scores_file``; empty when the release has no customer model). ``rank_rows`` looks every
candidate row up in both, the trend of its segment (NaN: a segment the release does not know) and
the probability of its (user, item) pair (NaN: a pair the release did not score, which falls back
to the segment trend), then blends them with the rows' base_score by ``recsys.rank.blend.blend``. The
share of segment trends is ``trend_weight``: the config's ``rerank.weight`` when the user set one, else the
weight the release chose on its validation week (``registry.TREND_WEIGHT_KEY``), else 0.
The batch calls it with every list of a file, the service with one list per request, so a list gets
the same order, final scores and signals from both. No model runs: TensorFlow is never imported.

    python -c "import numpy as np; from recsys.rank.signals import ReleaseSignals, rank_rows; \
print(rank_rows(ReleaseSignals({'up': .5}), np.zeros(2, int), ['u', 'u'], ['a', 'b'], ['up', 'x'], \
np.array([1., 2.]), .3, 1.))"
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from pipeline.tables import read_trends
from recsys import registry
from recsys.rank.blend import Blended, blend
from recsys.rank.blend import unknown_segments as count_unknown
from recsys.rank.scores import ScoreIndex

log = logging.getLogger(__name__)


class SignalsError(TrendrecError):
    """A release has no trend table to re-rank with."""


@dataclass(frozen=True)
class ReleaseSignals:
    """A release's segment trends and push-time customer scores; ``version`` None for hand-made ones."""

    trends: Mapping[object, float]
    scores: ScoreIndex = field(default_factory=ScoreIndex.empty)
    version: str | None = None
    chosen_weight: float | None = None  # segment-trend weight the release chose on validation; None: none chosen

    @classmethod
    def load(cls, release: registry.Release, users: Iterable[object] | None = None) -> ReleaseSignals:
        """Read ``release``'s trend table and score table (only ``users`` of it, when given)."""
        if release.trend_file is None:
            raise SignalsError(f"model version {release.version} at {release.path} has no "
                               f"{registry.TREND_FILE}: push the model again")
        trends = trend_map(read_trends(release.trend_file))
        chosen = (release.metadata.get(registry.TREND_WEIGHT_KEY) or {}).get("weight")
        return cls(trends, version=release.version,
                   chosen_weight=None if chosen is None else float(chosen)).for_users(release, users)

    def for_users(self, release: registry.Release, users: Iterable[object] | None) -> ReleaseSignals:
        """These trends with ``release``'s push-time scores of ``users`` only (None: all): the batch
        rerank loads the trends once and the scores batch by batch."""
        path = release.scores_file
        return dataclasses.replace(self, scores=ScoreIndex.load(path, users) if path is not None
                                   else ScoreIndex.empty())

    @classmethod
    def of(cls, trends: pd.DataFrame, scores: pd.DataFrame | ScoreIndex | None = None) -> ReleaseSignals:
        """Signals from frames: (segment, trend), and (user_id, item_id, score) or a ScoreIndex."""
        index = scores if isinstance(scores, ScoreIndex) else (
            ScoreIndex.empty() if scores is None else ScoreIndex.from_frame(scores))
        return cls(trend_map(trends), index)

    def trend_of(self, segments: Sequence[object]) -> np.ndarray:
        """Each row's segment trend; NaN for a segment the trend table does not know (or none)."""
        get, nan = self.trends.get, math.nan
        return np.fromiter((get(seg, nan) for seg in segments), np.float64, len(segments))

    def unknown_segments(self, segments: Sequence[object], trend: np.ndarray) -> dict[str, int]:
        """{segment: rows} of the rows whose ``trend`` is NaN (blend.unknown_segments names them)."""
        rows = np.flatnonzero(np.isnan(trend))
        return count_unknown((segments[k] for k in rows.tolist()), self.trends)


def trend_weight(configured: float | None, signals: ReleaseSignals) -> float:
    """The share of segment trends in the blend: ``configured`` (rerank.weight) when set, else the release's
    choice, else 0 (a release pushed before weights were chosen, or hand-made signals)."""
    if configured is not None:
        return float(configured)
    return 0.0 if signals.chosen_weight is None else signals.chosen_weight


def trend_map(trends: pd.DataFrame) -> dict[object, float]:
    """{segment: trend} of a checked trend table."""
    return dict(zip(trends[s.SEGMENT].tolist(), trends[s.TREND].astype(float).tolist()))


class Ranked(NamedTuple):
    trend: np.ndarray  # per input row: the segment's trend, NaN when unknown
    score: np.ndarray  # per input row: the release's probability, NaN when it did not score the pair
    blended: Blended  # final, signal, order, rank (recsys.rank.blend)


def rank_rows(signals: ReleaseSignals, codes: np.ndarray, users: Sequence[object] | str | None,
              items: Sequence[object], segments: Sequence[object], base: np.ndarray, weight: float,
              customer_weight: float) -> Ranked:
    """Look every row up in ``signals`` and blend; ``codes`` number the lists 0.. in first-appearance order.

    ``users`` (one per row, or one id for all rows) and ``items`` are compared with the score table's
    ids as they are (strings).
    """
    trend = signals.trend_of(segments)
    score = signals.scores.probabilities(users, items)
    return Ranked(trend, score, blend(codes, base, trend, score, weight, customer_weight))
