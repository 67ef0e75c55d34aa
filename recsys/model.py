"""The trend forecaster: one global recurrent model over all segments, multi-horizon output.

Each segment (a category, a country...) has its own daily series of the target measure. Rather
than one model per segment, a single LSTM/GRU reads the last ``lookback`` days of any segment
(scaled by that segment's training mean, or by its seasonal-naive error so that the MAE loss is
MASE-like) with their calendar, learns which segment it is reading through an embedding, and is
told the calendar of the ``horizon`` days ahead; it outputs all ``horizon`` days at once, as a
correction to a seasonal base (recsys.skip: the median of the same weekday over the last weeks).
Small segments borrow strength from big ones, and the forecast of the next days, compared with the
recent past, is what re-ranking calls the segment's trend.

    python -c "from recsys.model import *; build_model(ModelConfig(), n_segments=3).summary()"
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ModelConfig
from pipeline.errors import TrendrecError
from recsys import windows as w
from recsys.skip import OpenDays, SeasonalRepeat

log = logging.getLogger(__name__)

FORECAST = "forecast"  # column of predict(); pipeline.schemas has no constant for it
MODEL_FILE = "model.keras"
META_FILE = "recommender.json"
CHECKPOINT_FILE = "best.keras"
FORMAT_VERSION = 1
# How models saved before these options existed were trained (their recommender.json lacks the keys).
PRE_BACKTEST_OPTIONS = {"base_seasons": 1, "base_statistic": "mean", "closed_days": False, "scaling": "mean",
                        "loss": "huber", "ensemble": 1}


class ModelError(TrendrecError):
    """Training diverged, or saved model files are missing, corrupt or inconsistent."""


def build_model(config: ModelConfig, n_segments: int) -> keras.Model:
    """Functional model with inputs ``history``, ``future`` and ``segment``; output (batch, horizon).

    The recurrent layers keep tanh / sigmoid, ``recurrent_dropout=0`` and ``unroll=False`` so that on
    a GPU Keras uses the fused cuDNN kernel; dropout sits between layers and before the head.
    """
    history = keras.Input((config.lookback, len(w.HISTORY_FEATURES)), name="history")
    future = keras.Input((config.horizon, len(w.CALENDAR_FEATURES)), name="future")
    segment = keras.Input((), dtype="int32", name="segment")
    cell = keras.layers.LSTM if config.cell == "lstm" else keras.layers.GRU
    x = history
    for i in range(config.layers):
        x = cell(config.units, activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0,
                 unroll=False, return_sequences=i < config.layers - 1, name=f"{config.cell}_{i}")(x)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    emb_dim = max(2, min(16, math.ceil(math.sqrt(n_segments))))
    seg = keras.layers.Embedding(n_segments, emb_dim, name="segment_embedding")(segment)
    fut = keras.layers.Flatten(name="future_calendar")(future)
    x = keras.layers.Concatenate(name="encoded")([x, seg, fut])
    x = keras.layers.Dense(config.units, activation="relu", name="head")(x)
    if config.season_skip:
        # Learn a correction to the seasonal-naive forecast rather than the level itself: the residual
        # head starts at zero, so training starts from the baseline and early stopping keeps it if
        # nothing better is found. Closed days (no Saturdays in Online Retail) come for free.
        naive = SeasonalRepeat(config.season_skip, config.horizon, _base_seasons(config),
                               config.base_statistic, name="seasonal_naive")(history)
        residual = keras.layers.Dense(config.horizon, kernel_initializer="zeros", name="residual")(x)
        if config.closed_days:
            residual = keras.layers.Multiply(name="open_only")(
                [residual, OpenDays(config.season_skip, config.horizon, name="open_days")(history)])
        out = keras.layers.Add(name="forecast")([naive, residual])
    else:
        out = keras.layers.Dense(config.horizon, name="forecast")(x)
    model = keras.Model({"history": history, "future": future, "segment": segment}, out, name="trendrec")
    # Huber or MAE on the scaled target: promotion spikes do not dominate the gradient.
    loss = keras.losses.Huber() if config.loss == "huber" else keras.losses.MeanAbsoluteError()
    model.compile(optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
                  loss=loss, metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    return model


def _base_seasons(config: ModelConfig) -> int:
    """base_seasons, or as many whole seasons as the lookback holds (a short lookback in a tune grid)."""
    fit = max(1, config.lookback // config.season_skip)
    if config.base_seasons > fit:
        log.warning("lookback %d holds %d seasons of %d days, not base_seasons %d: the base uses %d",
                    config.lookback, fit, config.season_skip, config.base_seasons, fit)
    return min(config.base_seasons, fit)


class LSTMRecommender:
    """Forecasts each segment's target for the next ``horizon`` days; the basis of trend scores.

    ``config`` (the constructor argument) is saved with the model, together with the segment
    vocabulary and the per-segment scales learned in :meth:`fit`.
    """

    def __init__(self, config: ModelConfig):
        self.config = config
        self.segments: list[str] = []
        self.scales: dict[str, float] = {}
        self.model: keras.Model | None = None

    def fit(self, daily: pd.DataFrame, *, log_dir: Path | None = None, checkpoint_dir: Path | None = None,
            verbose: int = 0) -> dict[str, Any]:
        """Train on ``daily`` (the training part only); the last ``val_days`` dates drive early stopping.

        Returns ``{"history": {metric: [per epoch]}, "epochs_run", "best_val_loss", "train_windows",
        "val_windows", "val_start"}``. Raises ModelError if there is too little data or the loss is NaN.
        """
        cfg = self.config
        keras.utils.set_random_seed(cfg.seed)
        train, val, val_start = self._prepare(daily)
        log.info("training on %d windows, validating on %d (from %s), %d segments",
                 len(train), len(val), val_start, len(self.segments))
        members, histories = [], []
        for i in range(cfg.ensemble):
            if i:  # member 0 keeps the run's seed, so ensemble = 1 trains exactly as before
                keras.utils.set_random_seed(cfg.seed + i)
            sub = (lambda d: d) if cfg.ensemble == 1 else (lambda d: d and Path(d) / f"member_{i}")
            model = build_model(cfg, len(self.segments))
            hist = model.fit(train.inputs(), train.y, validation_data=(val.inputs(), val.y),
                             epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=verbose,
                             callbacks=_callbacks(cfg, sub(log_dir), sub(checkpoint_dir)))
            histories.append(_checked_history(hist.history))
            members.append(model)
        self.model = members[0] if cfg.ensemble == 1 else _average(members)
        history = histories[0]
        return {"history": history, "epochs_run": len(history["loss"]),
                "best_val_loss": float(np.nanmin(history["val_loss"])), "train_windows": len(train),
                "val_windows": len(val), "val_start": str(val_start),
                "member_val_loss": [float(np.nanmin(h["val_loss"])) for h in histories]}

    def _prepare(self, daily: pd.DataFrame) -> tuple[w.Windows, w.Windows, datetime.date]:
        """Vocabulary, then scales and the chronological split (recsys.windows.split_windows)."""
        cfg = self.config
        _check_finite(daily, cfg.target)
        self.segments = sorted(daily[s.SEGMENT].astype(str).unique().tolist())
        split = w.split_windows(daily, cfg, self.segments)
        self.scales = split.scales
        if len(split.train) == 0 or len(split.val) == 0:
            raise _fail(f"too little data: {len(split.train)} training and {len(split.val)} validation "
                        f"windows (each needs lookback {cfg.lookback} + horizon {cfg.horizon} days; "
                        f"val_days {cfg.val_days} must be >= horizon; data {daily[s.DATE].min()}.."
                        f"{daily[s.DATE].max()})")
        return split.train, split.val, split.val_start

    def predict(self, daily: pd.DataFrame, cutoff: datetime.date | None = None) -> pd.DataFrame:
        """Columns [segment, date, forecast]: each known segment's ``horizon`` days after ``cutoff``.

        Only the ``lookback`` days ending at ``cutoff`` (default: the last date in ``daily``) are
        read; missing days count as 0. Forecasts are on the original scale and never negative.
        """
        if self.model is None:
            raise ModelError("the model is not trained: call fit() or LSTMRecommender.load() first")
        cfg = self.config
        cutoff = pd.to_datetime(daily[s.DATE]).max().date() if cutoff is None else pd.Timestamp(cutoff).date()
        inputs = w.latest_inputs(daily, cfg.target, cfg.lookback, cfg.horizon, self.segments, self.scales,
                                 cutoff)
        scaled = np.asarray(self.model.predict(inputs, verbose=0), dtype=np.float64)
        scale = np.array([self.scales[seg] for seg in self.segments])
        forecast = np.clip(scaled * scale[:, None], 0.0, None)
        days = [cutoff + datetime.timedelta(days=h) for h in range(1, cfg.horizon + 1)]
        return pd.DataFrame({s.SEGMENT: np.repeat(self.segments, cfg.horizon),
                             s.DATE: days * len(self.segments), FORECAST: forecast.reshape(-1)})

    def save(self, directory: Path) -> None:
        """Write ``model.keras`` and ``recommender.json`` into ``directory`` (the caller renames dirs)."""
        if self.model is None:
            raise ModelError("nothing to save: the model is not trained")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {"format_version": FORMAT_VERSION, "config": dataclasses.asdict(self.config),
                "segments": self.segments, "scales": self.scales,
                "features": {"history": list(w.HISTORY_FEATURES), "future": list(w.CALENDAR_FEATURES)}}
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        (directory / META_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> LSTMRecommender:
        """Read a directory written by :meth:`save`; ModelError if a file is missing or corrupt."""
        directory = Path(directory)
        meta = _read_meta(directory / META_FILE)
        try:
            saved = PRE_BACKTEST_OPTIONS | meta["config"]
            config = ModelConfig(**{f.name: saved[f.name] for f in dataclasses.fields(ModelConfig)
                                    if f.name in saved})
            segments = [str(x) for x in meta["segments"]]
            scales = {str(k): float(v) for k, v in meta["scales"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _fail(f"{directory / META_FILE} is malformed: {exc!r}") from exc
        path = directory / MODEL_FILE
        if not path.is_file():
            raise _fail(f"{path} not found: expected a directory written by LSTMRecommender.save")
        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except Exception as exc:  # keras raises zipfile, OSError, ValueError... for a damaged file
            raise _fail(f"{path} cannot be loaded (corrupt or truncated?): {exc!r}") from exc
        if tuple(model.output_shape) != (None, config.horizon) or set(scales) != set(segments):
            raise _fail(f"{directory}: model output {model.output_shape} or scales do not match {META_FILE}")
        rec = cls(config)
        rec.segments, rec.scales, rec.model = segments, scales, model
        return rec

    def export_savedmodel(self, directory: Path) -> None:
        """Export a TF SavedModel (inputs history, future, segment) for TF Serving."""
        if self.model is None:
            raise ModelError("nothing to export: the model is not trained")
        self.model.export(str(directory), format="tf_saved_model", verbose=False)


def _callbacks(cfg: ModelConfig, log_dir: Path | None, checkpoint_dir: Path | None) -> list:
    callbacks: list = [keras.callbacks.TerminateOnNaN(),
                       keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                     restore_best_weights=True),
                       _EpochLogger()]
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(Path(checkpoint_dir) / CHECKPOINT_FILE,
                                                         monitor="val_loss", save_best_only=True))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), profile_batch=0))
    return callbacks


def _checked_history(raw: dict) -> dict[str, list[float]]:
    history = {k: [float(v) for v in vals] for k, vals in raw.items()}
    if not history.get("loss") or any(not math.isfinite(v) for v in history["loss"]):
        log.error("training produced a non-finite loss: %s", history.get("loss"))
        raise ModelError(f"training diverged (loss {history.get('loss')}); try a lower learning_rate")
    return history


def _average(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' forecasts (saved and loaded as one file)."""
    inputs = {t.name.split(":")[0]: keras.Input(t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0])
              for t in members[0].inputs}
    renamed = [keras.Model(m.inputs, m.outputs[0], name=f"member_{i}") for i, m in enumerate(members)]
    out = keras.layers.Average(name="forecast")([m(inputs) for m in renamed])
    return keras.Model(inputs, out, name="trendrec_ensemble")


class _EpochLogger(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        log.info("epoch %d: %s", epoch + 1, ", ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items()))


def _check_finite(daily: pd.DataFrame, target: str) -> None:
    bad = daily.loc[~np.isfinite(daily[target].to_numpy(dtype=np.float64)), [s.SEGMENT, s.DATE, target]]
    if len(bad):
        row = bad.iloc[0]
        raise _fail(f"{len(bad)} non-finite {target} value(s), first at segment {row[s.SEGMENT]!r}, "
                    f"date {row[s.DATE]}: {row[target]!r}; expected finite numbers")


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _fail(f"{path} not found: expected a directory written by LSTMRecommender.save")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(f"{path} is not valid JSON (truncated?): {exc}") from exc


def _fail(message: str) -> ModelError:
    log.error("%s", message)
    return ModelError(message)
