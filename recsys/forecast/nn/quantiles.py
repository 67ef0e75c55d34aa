"""Quantile forecasts: the pinball loss, a non-crossing quantile head and the column names.

With ``model.quantiles = [0.1, 0.5, 0.9]`` the model forecasts, for every day of the horizon, a
value it expects to undershoot 10 %, 50 % and 90 % of the time. Each is learned with the pinball
(quantile) loss, whose minimiser is exactly that quantile. The median is the point forecast that
evaluation scores; the outer quantiles give re-ranking a trend band (trend_low / trend_high).

Non-crossing by construction: the head predicts the median plus, for the others, softplus gaps
added cumulatively outwards (q90 = median + softplus(a) , q10 = median - softplus(b), ...). Sorting
the raw outputs would also give ordered values, but then a head's gradient trains whichever quantile
it happens to land on, and the ties where two outputs swap give zero-width bands; cumulative
softplus keeps every output tied to its quantile, smooth, and strictly ordered.

    python -c "from recsys.forecast.nn.quantiles import column_names; print(column_names((0.1, 0.5, 0.9)))"
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops


def column_names(quantiles: Sequence[float]) -> list[str]:
    """predict() columns: 0.1 -> "p10", 0.05 -> "p5" (what recsys.report.report's quantile_band expects)."""
    return [f"p{round(q * 100)}" for q in quantiles]


def median_index(quantiles: Sequence[float]) -> int:
    """Position of the quantile nearest 0.5 (config validation makes it exactly 0.5)."""
    return min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))


def pinball(y_true, y_pred, quantiles):
    """Mean pinball loss: y_true (batch, horizon), y_pred (batch, horizon, Q).

    For error e = y - q_hat the loss is q * e when under-forecasting (e > 0) and (q - 1) * e when
    over-forecasting, i.e. max(q * e, (q - 1) * e); averaged over batch, horizon and quantiles.
    """
    q = ops.convert_to_tensor(list(quantiles), dtype=y_pred.dtype)
    err = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred
    return ops.mean(ops.maximum(q * err, (q - 1.0) * err), axis=(-2, -1))


@keras.saving.register_keras_serializable(package="trendrec")
class PinballLoss(keras.losses.Loss):
    """The pinball (quantile) loss over the last axis of the prediction, one quantile per slot."""

    def __init__(self, quantiles: Sequence[float], name: str = "pinball", reduction="sum_over_batch_size",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        return pinball(y_true, y_pred, self.quantiles)

    def get_config(self):
        return {"quantiles": self.quantiles, "name": self.name, "reduction": self.reduction}


def _median_abs_error(y_true, y_pred, median):
    return ops.mean(ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred[..., median]), axis=-1)


@keras.saving.register_keras_serializable(package="trendrec")
class MedianAbsoluteError(keras.metrics.MeanMetricWrapper):
    """MAE of the median slot of a (batch, horizon, Q) forecast: comparable with the point model's mae."""

    def __init__(self, median: int = 0, name: str = "mae", dtype=None):
        super().__init__(fn=_median_abs_error, name=name, dtype=dtype, median=median)
        self.median = median

    def get_config(self):
        return {"median": self.median, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="trendrec")
class QuantileOffsets(keras.layers.Layer):
    """(median (batch, H), raw (batch, H, Q - 1)) -> (batch, H, Q) quantiles ordered along the last axis.

    Slot ``median`` is the median input itself; each slot above adds a softplus gap to its lower
    neighbour, each slot below subtracts one from its upper neighbour (raw[..., :median] are the
    gaps below, raw[..., median:] those above). Whatever the median
    holds (e.g. the seasonal-naive skip plus a correction) therefore shifts every quantile.
    """

    def __init__(self, n_quantiles: int, median: int, **kwargs):
        super().__init__(**kwargs)
        self.n_quantiles, self.median = n_quantiles, median

    def call(self, inputs):
        centre, raw = inputs
        gaps = ops.softplus(raw)
        up = ops.cumsum(gaps[..., self.median:], axis=-1)
        down = ops.flip(ops.cumsum(ops.flip(gaps[..., : self.median], axis=-1), axis=-1), axis=-1)
        centre = ops.expand_dims(centre, -1)
        return ops.concatenate([centre - down, centre, centre + up], axis=-1)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0], self.n_quantiles)

    def get_config(self):
        return {**super().get_config(), "n_quantiles": self.n_quantiles, "median": self.median}
