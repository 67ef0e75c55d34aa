"""The segment forecaster's Keras network: recurrent encoder, segment embedding, seasonal base.

A window's ``history`` (lookback days of the scaled target and calendar features, with or without
the year-ago pair of recsys.forecast.nn.windows) goes through
stacked LSTM / GRU / peephole-LSTM layers with dropout between them; the segment's embedding and
the calendar of the ``horizon`` days ahead join it in a dense head that outputs a correction to a
seasonal base (recsys.forecast.nn.seasonal_base), or ordered quantiles around it
(recsys.forecast.nn.quantiles). Layer names are part of saved models: keep them stable.

    python -c "from pipeline.config import ModelConfig; from recsys.forecast.nn.network import build_model; build_model(ModelConfig(), n_segments=3).summary()"
"""

from __future__ import annotations

import logging
import math

import keras

from pipeline.config import ModelConfig
from pipeline.distribute import strategy_scope
from pipeline.errors import TrendrecError
from recsys.forecast.nn import quantiles as q
from recsys.forecast.nn import windows as w
from recsys.forecast.nn.cells import PeepholeLSTMCell
from recsys.forecast.nn.seasonal_base import LevelAdjust, OpenDays, SeasonalRepeat

log = logging.getLogger(__name__)

LEVEL_EXPONENT = "level_exponent"  # the non-trainable per-segment layer holding the base's level exponents


class ModelError(TrendrecError):
    """Training diverged, or saved model files are missing, corrupt or inconsistent."""


def build_model(config: ModelConfig, n_segments: int, year_ago: bool = False) -> keras.Model:
    """Functional model with inputs ``history``, ``future`` and ``segment``, compiled.

    ``year_ago``: ``history`` and ``future`` carry the two year-ago channels after their others
    (recsys.forecast.nn.windows.feature_names); the seasonal base reads channel 0 either way.

    Output (batch, horizon), or (batch, horizon, Q) with ``config.quantiles``. The LSTM/GRU layers
    keep tanh / sigmoid, ``recurrent_dropout=0`` and ``unroll=False`` so that on a GPU Keras uses
    the fused cuDNN kernel; dropout sits between layers and before the head. With
    ``distribute = "mirrored"`` the variables are created in a MirroredStrategy scope
    (pipeline.distribute), so fit() splits each batch over the machine's devices (one CPU works too).
    """
    with strategy_scope(config.distribute):
        return _build(config, n_segments, year_ago)


def _recurrent(config: ModelConfig, i: int) -> keras.layers.Layer:
    sequences, name = i < config.layers - 1, f"{config.cell}_{i}"
    if config.cell == "peephole":
        return keras.layers.RNN(PeepholeLSTMCell(config.units), return_sequences=sequences, unroll=False,
                                name=name)
    cell = keras.layers.LSTM if config.cell == "lstm" else keras.layers.GRU
    return cell(config.units, activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0,
                unroll=False, return_sequences=sequences, name=name)


def _build(config: ModelConfig, n_segments: int, year_ago: bool) -> keras.Model:
    features = w.feature_names(year_ago)
    history = keras.Input((config.lookback, len(features["history"])), name="history")
    future = keras.Input((config.horizon, len(features["future"])), name="future")
    segment = keras.Input((), dtype="int32", name="segment")
    x = history
    for i in range(config.layers):
        x = _recurrent(config, i)(x)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    emb_dim = max(2, min(16, math.ceil(math.sqrt(n_segments))))
    seg = keras.layers.Embedding(n_segments, emb_dim, name="segment_embedding")(segment)
    fut = keras.layers.Flatten(name="future_calendar")(future)
    x = keras.layers.Concatenate(name="encoded")([x, seg, fut])
    x = keras.layers.Dense(config.units, activation="relu", name="head")(x)
    out = _output(config, history, segment, n_segments, x)
    model = keras.Model({"history": history, "future": future, "segment": segment}, out, name="trendrec")
    optimizer = keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
    if config.quantiles:
        model.compile(optimizer=optimizer, loss=q.PinballLoss(config.quantiles),
                      metrics=[q.MedianAbsoluteError(q.median_index(config.quantiles), name="mae")])
    else:  # Huber or MAE on the scaled target: promotion spikes do not dominate the gradient.
        loss = keras.losses.Huber() if config.loss == "huber" else keras.losses.MeanAbsoluteError()
        model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    return model


def _output(config: ModelConfig, history, segment, n_segments: int, x):
    """The point forecast (batch, H), or the median plus ordered quantile gaps (batch, H, Q)."""
    if config.season_skip:
        # Learn a correction to the seasonal-naive forecast rather than the level itself: the residual
        # head starts at zero, so training starts from the baseline and early stopping keeps it if
        # nothing better is found. Closed days (no Saturdays in Online Retail) come for free.
        naive = SeasonalRepeat(config.season_skip, config.horizon, base_seasons(config),
                               config.base_statistic, name="seasonal_naive")(history)
        if config.level_exponents:  # per segment, picked in fit(), saved with the weights
            exponent = keras.layers.Embedding(n_segments, 1, embeddings_initializer="zeros", trainable=False,
                                              name=LEVEL_EXPONENT)(segment)
            naive = LevelAdjust(config.season_skip, name="level_adjusted")([naive, history, exponent])
        residual = keras.layers.Dense(config.horizon, kernel_initializer="zeros", name="residual")(x)
        if config.closed_days:  # a weekday never sold in the lookback keeps its base (0) exactly
            residual = keras.layers.Multiply(name="open_only")(
                [residual, OpenDays(config.season_skip, config.horizon, name="open_days")(history)])
        point = keras.layers.Add(name="forecast" if not config.quantiles else "median")([naive, residual])
    else:
        point = keras.layers.Dense(config.horizon, name="forecast" if not config.quantiles else "median")(x)
    if not config.quantiles:
        return point
    n = len(config.quantiles)
    gaps = keras.layers.Dense(config.horizon * (n - 1), name="quantile_gaps")(x)
    gaps = keras.layers.Reshape((config.horizon, n - 1))(gaps)
    return q.QuantileOffsets(n, q.median_index(config.quantiles), name="forecast")([point, gaps])


def base_seasons(config: ModelConfig) -> int:
    """base_seasons, or as many whole seasons as the lookback holds (a short lookback in a tune grid)."""
    fit = max(1, config.lookback // config.season_skip)
    if config.base_seasons > fit:
        log.warning("lookback %d holds %d seasons of %d days, not base_seasons %d: the base uses %d",
                    config.lookback, fit, config.season_skip, config.base_seasons, fit)
    return min(config.base_seasons, fit)
