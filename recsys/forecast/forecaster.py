"""The trend forecaster: one global recurrent model over all segments, multi-horizon output.

Each segment (a category, a country...) has its own daily series of the target measure. Rather
than one model per segment, a single LSTM/GRU reads the last ``lookback`` days of any segment
(scaled by that segment's training mean, or by its seasonal-naive error so that the MAE loss is
MASE-like) with their calendar, learns which segment it is reading through an embedding, and is
told the calendar of the ``horizon`` days ahead; it outputs all ``horizon`` days at once, as a
correction to a seasonal base (recsys.forecast.nn.seasonal_base: the median of the same weekday over the last weeks).
Where the training part holds a year back, every lookback and forecast day also carries its value 364
days earlier (recsys.forecast.nn.windows: year-ago inputs); the feature set is saved with the model.
Small segments borrow strength from big ones, and the forecast of the next days, compared with the
recent past, is what re-ranking calls the segment's trend.

The recurrent layers are LSTM (default), GRU or a peephole LSTM (recsys.forecast.nn.cells; not fused on GPU).
With ``quantiles`` the head forecasts, per day, ordered quantiles around the median
(recsys.forecast.nn.quantiles) and re-ranking gets a trend band; training callbacks live in recsys.forecast.nn.callbacks.

    python -c "from recsys.forecast.forecaster import SegmentForecaster; help(SegmentForecaster.fit)"
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ModelConfig
from recsys.forecast.nn import callbacks as cb
from recsys.forecast.nn import quantiles as q
from recsys.forecast.nn import windows as w
from recsys.forecast.nn.network import LEVEL_EXPONENT, ModelError, base_seasons, build_model
from recsys.forecast.nn.seasonal_base import SeasonalRepeat, select_level_exponents

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
META_FILE = "recommender.json"
CHECKPOINT_FILE = cb.CHECKPOINT_FILE
FORMAT_VERSION = 1
# How models saved before these options existed were trained (their recommender.json lacks the keys).
PRE_BACKTEST_OPTIONS = {"base_seasons": 1, "base_statistic": "mean", "closed_days": False, "scaling": "mean",
                        "loss": "huber", "ensemble": 1, "level_exponents": ()}


class SegmentForecaster:
    """Forecasts each segment's target for the next ``horizon`` days; the basis of trend scores.

    ``config`` (the constructor argument) is saved with the model, together with the segment
    vocabulary and the per-segment scales learned in :meth:`fit`.
    """

    def __init__(self, config: ModelConfig):
        self.config = config
        self.segments: list[str] = []
        self.scales: dict[str, float] = {}
        self.level_exponents: dict[str, float] = {}
        self.year_ago = False  # the inputs carry the year-ago channels (decided in fit, saved as "features")
        self.model: keras.Model | None = None

    def fit(self, daily: pd.DataFrame, *, log_dir: Path | None = None, checkpoint_dir: Path | None = None,
            backup_dir: Path | None = None, trial_id: str | None = None, verbose: int = 0,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Train on ``daily`` (the training part only); the last ``val_days`` dates drive early stopping.

        ``log_dir`` receives the TensorBoard logs and the HParams of this run (``trial_id`` names it,
        default the directory name); ``backup_dir`` holds a BackupAndRestore backup written every
        epoch: a fit killed half-way and started again with the same directory resumes after the last
        backed-up epoch. fit() deletes the backup when it ends (callers remove it after committing).
        With ``ensemble`` > 1 each member trains with seed ``seed + m`` and logs, checkpoints and backs
        up in ``member_<m>/`` of those directories; the saved model averages the members' forecasts.
        ``progress`` gets one line per epoch (else the epochs are logged at INFO).

        Returns ``{"history": {metric: [per epoch run now]}, "epochs_run" (including epochs before a
        resume), "initial_epoch" (0 unless resumed), "best_val_loss", "best_val_mae", "train_windows",
        "val_windows", "val_start", "member_val_loss"}`` (history and best: member 0's). Raises
        ModelError if there is too little data or the loss is NaN.
        """
        cfg = self.config
        keras.utils.set_random_seed(cfg.seed)
        train, val, val_start = self._prepare(daily)
        log.info("training on %d windows, validating on %d (from %s), %d segments",
                 len(train), len(val), val_start, len(self.segments))
        if log_dir is not None:
            cb.write_hparams(Path(log_dir), cfg, trial_id)
        preview = cb.preview_windows(val, self.segments, self.scales)
        exponents = self._select_level_exponents(val)
        members, histories, initial = [], [], 0
        for m in range(cfg.ensemble):
            if m:  # member 0 keeps the run's seed, so ensemble = 1 trains exactly as before
                keras.utils.set_random_seed(cfg.seed + m)
            sub = (lambda d: d) if cfg.ensemble == 1 else (lambda d: d and Path(d) / f"member_{m}")
            model = build_model(cfg, len(self.segments), self.year_ago)
            if exponents is not None:
                model.get_layer(LEVEL_EXPONENT).set_weights([exponents[:, None]])
            callbacks = cb.make_callbacks(cfg, log_dir=sub(log_dir), checkpoint_dir=sub(checkpoint_dir),
                                          backup_dir=sub(backup_dir), preview=preview, progress=progress,
                                          member=(m + 1, cfg.ensemble))
            hist = model.fit(train.inputs(), train.y, validation_data=(val.inputs(), val.y), epochs=cfg.epochs,
                             batch_size=cfg.batch_size, shuffle=True, verbose=verbose, callbacks=callbacks)
            histories.append(_checked_history(hist.history))
            initial = initial or int(model._initial_epoch or 0)  # set by BackupAndRestore when it resumed
            members.append(model)
        self.model = members[0] if cfg.ensemble == 1 else _average(members)
        history = histories[0]
        i = int(np.nanargmin(history["val_loss"]))
        best = {"best_val_loss": float(history["val_loss"][i]),
                "best_val_mae": float(history.get("val_mae", [math.nan] * (i + 1))[i])}
        if log_dir is not None:
            cb.write_best(Path(log_dir), best, step=initial + len(history["loss"]))
        return {"history": history, "epochs_run": initial + len(history["loss"]), "initial_epoch": initial,
                **best, "train_windows": len(train), "val_windows": len(val), "val_start": str(val_start),
                "member_val_loss": [float(np.nanmin(h["val_loss"])) for h in histories]}

    def _select_level_exponents(self, val: w.Windows) -> np.ndarray | None:
        """Per segment, the level exponent whose adjusted base did best on the validation windows.

        The most recent weeks say whether a series currently follows last week's level (a smooth,
        rising series) or its median weeks (a noisy one). The choice is made on the validation
        windows, which are inside the training data: the hold-out never takes part.
        """
        cfg = self.config
        if not (cfg.season_skip and cfg.level_exponents):
            self.level_exponents = {}
            return None
        base = np.asarray(SeasonalRepeat(cfg.season_skip, cfg.horizon, base_seasons(cfg),
                                         cfg.base_statistic)(val.history))
        exponents = select_level_exponents(base, val.history, val.y, val.segment, len(self.segments),
                                           tuple(sorted(cfg.level_exponents)), cfg.season_skip)
        self.level_exponents = {seg: float(e) for seg, e in zip(self.segments, exponents)}
        log.info("level exponents per segment: %s", self.level_exponents)
        return exponents

    def _prepare(self, daily: pd.DataFrame) -> tuple[w.Windows, w.Windows, datetime.date]:
        """Vocabulary, then scales and the chronological split (recsys.forecast.nn.windows.split_windows)."""
        cfg = self.config
        _check_finite(daily, cfg.target)
        self.segments = sorted(daily[s.SEGMENT].astype(str).unique().tolist())
        split = w.split_windows(daily, cfg, self.segments)
        self.scales, self.year_ago = split.scales, split.year_ago
        if len(split.train) == 0 or len(split.val) == 0:
            raise _fail(f"too little data: {len(split.train)} training and {len(split.val)} validation "
                        f"windows (each needs lookback {cfg.lookback} + horizon {cfg.horizon} days; "
                        f"val_days {cfg.val_days} must be >= horizon; data {daily[s.DATE].min()}.."
                        f"{daily[s.DATE].max()})")
        return split.train, split.val, split.val_start

    def predict(self, daily: pd.DataFrame, cutoff: datetime.date | None = None) -> pd.DataFrame:
        """Columns [segment, date, forecast, p10, p50, ...]: each segment's ``horizon`` days after ``cutoff``.

        Only the ``lookback`` days ending at ``cutoff`` (default: the last date in ``daily``) are
        read; missing days count as 0. Forecasts are on the original scale and never negative.
        With ``config.quantiles`` there is one column per quantile (recsys.forecast.nn.quantiles.column_names)
        and ``forecast`` is the median; without, only ``forecast``.
        """
        if self.model is None:
            raise ModelError("the model is not trained: call fit() or SegmentForecaster.load() first")
        cfg = self.config
        cutoff = pd.to_datetime(daily[s.DATE]).max().date() if cutoff is None else pd.Timestamp(cutoff).date()
        inputs = w.latest_inputs(daily, cfg.target, cfg.lookback, cfg.horizon, self.segments, self.scales,
                                 cutoff, self.year_ago)
        scaled = np.asarray(self.model.predict(inputs, verbose=0), dtype=np.float64)
        scale = np.array([self.scales[seg] for seg in self.segments])
        # clipping at 0 keeps the quantiles ordered: it is monotone
        forecast = np.clip(scaled * scale.reshape((-1,) + (1,) * (scaled.ndim - 1)), 0.0, None)
        days = [cutoff + datetime.timedelta(days=h) for h in range(1, cfg.horizon + 1)]
        frame = {s.SEGMENT: np.repeat(self.segments, cfg.horizon), s.DATE: days * len(self.segments)}
        if not cfg.quantiles:
            return pd.DataFrame(frame | {s.FORECAST: forecast.reshape(-1)})
        flat = forecast.reshape(-1, len(cfg.quantiles))
        columns = dict(zip(q.column_names(cfg.quantiles), flat.T))
        return pd.DataFrame(frame | {s.FORECAST: flat[:, q.median_index(cfg.quantiles)]} | columns)

    def save(self, directory: Path) -> None:
        """Write ``model.keras`` and ``recommender.json`` into ``directory`` (the caller renames dirs)."""
        if self.model is None:
            raise ModelError("nothing to save: the model is not trained")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {"format_version": FORMAT_VERSION, "config": dataclasses.asdict(self.config),
                "segments": self.segments, "scales": self.scales, "level_exponents": self.level_exponents,
                "features": {k: list(v) for k, v in w.feature_names(self.year_ago).items()}}
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        (directory / META_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> SegmentForecaster:
        """Read a directory written by :meth:`save`; ModelError if a file is missing or corrupt."""
        directory = Path(directory)
        meta = _read_meta(directory / META_FILE)
        try:
            config = ModelConfig.from_json(PRE_BACKTEST_OPTIONS | meta["config"])
            segments = [str(x) for x in meta["segments"]]
            scales = {str(k): float(v) for k, v in meta["scales"].items()}
            year_ago = _year_ago_of(meta.get("features"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _fail(f"{directory / META_FILE} is malformed: {exc!r}") from exc
        path = directory / MODEL_FILE
        if not path.is_file():
            raise _fail(f"{path} not found: expected a directory written by SegmentForecaster.save")
        try:
            model = keras.saving.load_model(path, safe_mode=True)
        except Exception as exc:  # keras raises zipfile, OSError, ValueError... for a damaged file
            raise _fail(f"{path} cannot be loaded (corrupt or truncated?): {exc!r}") from exc
        expected = (None, config.horizon) + ((len(config.quantiles),) if config.quantiles else ())
        if tuple(model.output_shape) != expected or set(scales) != set(segments):
            raise _fail(f"{directory}: model output {model.output_shape} or scales do not match {META_FILE}")
        channels = {name: len(v) for name, v in w.feature_names(year_ago).items()}
        if {t.name.split(":")[0]: t.shape[-1] for t in model.inputs if t.name.split(":")[0] in channels} != channels:
            raise _fail(f"{directory}: the model's inputs {model.input_shape} do not match the features of {META_FILE}")
        rec = cls(config)
        rec.segments, rec.scales, rec.model, rec.year_ago = segments, scales, model, year_ago
        rec.level_exponents = {str(k): float(v) for k, v in meta.get("level_exponents", {}).items()}
        return rec

    def export_savedmodel(self, directory: Path) -> None:
        """Export a TF SavedModel (inputs history, future, segment) for TF Serving."""
        if self.model is None:
            raise ModelError("nothing to export: the model is not trained")
        self.model.export(str(directory), format="tf_saved_model", verbose=False)


def _checked_history(raw: dict) -> dict[str, list[float]]:
    history = {k: [float(v) for v in vals] for k, vals in raw.items()}
    if not history.get("loss") or any(not math.isfinite(v) for v in history["loss"]):
        raise ModelError(f"training diverged (loss {history.get('loss')}); try a lower learning_rate")
    return history


def _average(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' forecasts (saved and loaded as one file)."""
    inputs = {t.name.split(":")[0]: keras.Input(t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0])
              for t in members[0].inputs}
    renamed = [keras.Model(m.inputs, m.outputs[0], name=f"member_{i}") for i, m in enumerate(members)]
    out = keras.layers.Average(name="forecast")([m(inputs) for m in renamed])
    return keras.Model(inputs, out, name="trendrec_ensemble")


def _check_finite(daily: pd.DataFrame, target: str) -> None:
    bad = daily.loc[~np.isfinite(daily[target].to_numpy(dtype=np.float64)), [s.SEGMENT, s.DATE, target]]
    if len(bad):
        row = bad.iloc[0]
        raise _fail(f"{len(bad)} non-finite {target} value(s), first at segment {row[s.SEGMENT]!r}, "
                    f"date {row[s.DATE]}: {row[target]!r}; expected finite numbers")


def _year_ago_of(features: dict | None) -> bool:
    """Whether saved features hold the year-ago pair; models saved before it have none (or no "features")."""
    if features is None:
        return False
    for year_ago in (False, True):
        if {k: tuple(v) for k, v in features.items()} == w.feature_names(year_ago):
            return year_ago
    raise ValueError(f"unknown features {features}; expected {w.feature_names(False)} or {w.feature_names(True)}")


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _fail(f"{path} not found: expected a directory written by SegmentForecaster.save")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(f"{path} is not valid JSON (truncated?): {exc}") from exc


def _fail(message: str) -> ModelError:
    return ModelError(message)
