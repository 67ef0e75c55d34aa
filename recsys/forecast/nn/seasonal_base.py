"""The seasonal skip of the forecaster: its base (last season, or the mean / median of the last N), the
closed-day mask and the optional level adjustment, as small Keras layers registered for safe_mode loading.

The model forecasts base + learned correction, so training starts from a seasonal baseline and the
network only has to learn what the baseline misses. The layers read channel 0 (the scaled target)
of the ``history`` input; the last day of the lookback is the day before the first forecast day.

    python -c "import numpy as np; from recsys.forecast.nn.seasonal_base import *; print(SeasonalRepeat(7, 3)(np.ones((1, 7, 5))))"
"""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="trendrec")
class SeasonalRepeat(keras.layers.Layer):
    """The last ``season`` values of the scaled target (channel 0), repeated over ``horizon`` days.

    With ``seasons`` > 1, each day is the mean (or ``statistic="median"``) of the same day in the
    last ``seasons`` seasons: a smoother base than last week alone, robust to one promotion day with
    the median, and a day closed in all of them (no Saturday sales) stays 0.
    """

    def __init__(self, season: int, horizon: int, seasons: int = 1, statistic: str = "mean", **kwargs):
        super().__init__(**kwargs)
        self.season, self.horizon, self.seasons, self.statistic = season, horizon, seasons, statistic

    def call(self, history):
        last = keras.ops.reshape(history[:, -self.season * self.seasons:, 0], (-1, self.seasons, self.season))
        if self.statistic == "median":
            ordered = keras.ops.sort(keras.ops.transpose(last, (0, 2, 1)), axis=-1)  # (batch, day, seasons)
            mid = [(self.seasons - 1) // 2, self.seasons // 2]  # the same index twice when seasons is odd
            last = keras.ops.mean(keras.ops.take(ordered, mid, axis=-1), axis=-1)
        else:
            last = keras.ops.mean(last, axis=1)
        reps = -(-self.horizon // self.season)
        return keras.ops.tile(last, [1, reps])[:, : self.horizon]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon)

    def get_config(self):
        return {**super().get_config(), "season": self.season, "horizon": self.horizon,
                "seasons": self.seasons, "statistic": self.statistic}


@keras.saving.register_keras_serializable(package="trendrec")
class OpenDays(keras.layers.Layer):
    """1 for a forecast day whose weekday had any non-zero target in the lookback, else 0 (closed).

    Multiplying the forecast by it makes a shop that never opens on Saturdays forecast exactly 0 there,
    whatever the learned correction says.
    """

    def __init__(self, season: int, horizon: int, **kwargs):
        super().__init__(**kwargs)
        self.season, self.horizon = season, horizon

    def call(self, history):
        seasons = history.shape[1] // self.season
        past = keras.ops.reshape(history[:, -seasons * self.season:, 0], (-1, seasons, self.season))
        is_open = keras.ops.cast(keras.ops.max(keras.ops.abs(past), axis=1) > 0, history.dtype)
        reps = -(-self.horizon // self.season)
        return keras.ops.tile(is_open, [1, reps])[:, : self.horizon]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.horizon)

    def get_config(self):
        return {**super().get_config(), "season": self.season, "horizon": self.horizon}


LEVEL_RATIO_RANGE = (0.25, 4.0)  # the level ratio is clipped here: an empty or a record week moves the base 4x at most


@keras.saving.register_keras_serializable(package="trendrec")
class LevelAdjust(keras.layers.Layer):
    """The seasonal base scaled towards the current level: ``base * ratio ** exponent``.

    ``ratio`` is the last ``season`` days' total of the scaled target (channel 0 of ``history``)
    over one season of ``base`` (the median of the last weeks lags a rising or falling level by
    weeks; last week alone is noisy), clipped to LEVEL_RATIO_RANGE, and 1 when the base is empty.
    ``exponent`` (batch, 1) is per segment: 0 keeps the median base, 1 moves it fully to last week's
    level, values between damp the move. Inputs ``[base, history, exponent]``.
    """

    def __init__(self, season: int, **kwargs):
        super().__init__(**kwargs)
        self.season = season

    def call(self, inputs):
        base, history, exponent = inputs
        recent = keras.ops.sum(history[:, -self.season:, 0], axis=1)
        typical = keras.ops.sum(base[:, : self.season], axis=1)
        ratio = keras.ops.where(typical > 1e-6, recent / keras.ops.maximum(typical, 1e-6), 1.0)
        ratio = keras.ops.clip(ratio, *LEVEL_RATIO_RANGE)
        return base * keras.ops.power(keras.ops.expand_dims(ratio, 1), exponent)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "season": self.season}


def select_level_exponents(base: np.ndarray, history: np.ndarray, y: np.ndarray, segment: np.ndarray,
                           n_segments: int, candidates: tuple[float, ...], season: int) -> np.ndarray:
    """Per segment, the candidate exponent whose adjusted base has the lowest MAE on the given windows.

    ``base`` (n, horizon) is the seasonal base of the windows, ``y`` their targets. Ties and segments
    without a window get the smallest candidate. Returns float32 (n_segments,).
    """
    layer = LevelAdjust(season)
    counts = np.bincount(segment, minlength=n_segments)
    errors = np.full((len(candidates), n_segments), np.inf)
    for i, exponent in enumerate(candidates):
        adjusted = np.asarray(layer([base, history, np.full((len(base), 1), exponent, "float32")]))
        sums = np.bincount(segment, weights=np.mean(np.abs(adjusted - y), axis=1), minlength=n_segments)
        errors[i] = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    best = np.argmin(errors, axis=0)  # the first (smallest) candidate on ties
    best[~np.isfinite(errors.min(axis=0))] = 0
    return np.asarray(candidates, dtype=np.float32)[best]
