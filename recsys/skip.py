"""The seasonal skip of the forecaster: its base (last season, or the mean / median of the last N) and
the closed-day mask, as small Keras layers registered for safe_mode loading.

The model forecasts base + learned correction, so training starts from a seasonal baseline and the
network only has to learn what the baseline misses. Both layers read channel 0 (the scaled target)
of the ``history`` input; the last day of the lookback is the day before the first forecast day.

    python -c "import numpy as np; from recsys.skip import *; print(SeasonalRepeat(7, 3)(np.ones((1, 7, 5))))"
"""

from __future__ import annotations

import keras


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
