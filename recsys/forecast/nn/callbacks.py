"""Training callbacks: stopping, checkpoints, resume after a kill, and what TensorBoard shows.

TensorBoard gets, under ``runs/<run id>/``: ``train/`` and ``validation/`` (epoch loss and mae,
the learning rate as ``epoch_learning_rate``, weight histograms every ``histogram_freq`` epochs),
``images/`` (forecast vs actual on the last validation window of every segment, a grid of one
readable panel per segment, every ``image_freq`` epochs and once more at the end with the restored
best weights) and, in the run directory itself, the run's hyper-parameters for the HParams dashboard
(one hparams run per run or tuning trial, with the validation loss and mae as its metrics, and the
hold-out metrics that decide promotion once `trendrec evaluate` has scored the candidate).

    trendrec train --run-id demo && tensorboard --logdir trendrec-data/runs
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from pipeline.config import ModelConfig
from recsys.forecast.nn import windows as w

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "best.keras"
IMAGE_TAG = "forecast_vs_actual"
IMAGE_COLUMNS = 4  # panels per row of the forecast image; one panel per segment, biggest first
HOLDOUT_PREFIX = "holdout_"  # holdout_<metric> (the candidate), holdout_<forecaster>_<metric> (the others)
# (tag, run subdirectory) of a tuning search's HParams metrics; the best_* scalars sit in the hparams
# run itself. No holdout_* here: tuning never looks at the hold-out (a train run's HParams shows them).
HPARAM_METRICS = (("best_val_mae", None), ("best_val_loss", None), ("epoch_loss", "validation"),
                  ("epoch_mae", "validation"))


def make_callbacks(cfg: ModelConfig, *, log_dir: Path | None = None, checkpoint_dir: Path | None = None,
                   backup_dir: Path | None = None, preview: dict | None = None,
                   progress: Callable[[str], None] | None = None, member: tuple[int, int] = (1, 1)) -> list:
    """The callback list of SegmentForecaster.fit, in the order Keras must run them.

    ``progress`` gets one line per epoch from EpochLogger; ``member`` is (m, of M) of an ensemble.

    EarlyStopping comes before the image callback so the final image shows the restored best
    weights; BackupAndRestore comes last so a backup is written only after everything else ran.
    """
    callbacks: list = [keras.callbacks.TerminateOnNaN(),
                       keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                     restore_best_weights=True),
                       EpochLogger(progress, member)]
    if checkpoint_dir is not None:
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(Path(checkpoint_dir) / CHECKPOINT_FILE,
                                                         monitor="val_loss", save_best_only=True))
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), profile_batch=0,
                                                     histogram_freq=cfg.histogram_freq))
        if cfg.image_freq and preview is not None:
            callbacks.append(ForecastImage(Path(log_dir) / "images", preview, cfg.image_freq))
    if backup_dir is not None:
        # delete_checkpoint: a finished fit (early stop, last epoch or NaN) drops its backup, so a re-run
        # after a later crash trains afresh (same seed, same result) instead of resuming NaN weights.
        # double_checkpoint: a kill in the middle of writing the backup falls back to the previous epoch.
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True,
                                                          delete_checkpoint=True))
    return callbacks


class EpochLogger(keras.callbacks.Callback):
    """Reports every epoch ("epoch 3/20: loss 0.41, val_loss 0.52") and remembers the first epoch run.

    The line goes to ``progress`` when given (`trendrec train` prints it on stderr without -v, in
    place of Keras' progress bar), else to the log at INFO. first_epoch is > 0 after a resume.
    """

    def __init__(self, progress: Callable[[str], None] | None = None, member: tuple[int, int] = (1, 1)):
        super().__init__()
        self.first_epoch: int | None = None
        self.progress = progress
        self.prefix = f"member {member[0]}/{member[1]} " if member[1] > 1 else ""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            if epoch:
                log.info("resuming from the backup at epoch %d", epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = ", ".join(f"{k} {float(v):.4g}" for k, v in (logs or {}).items() if k != "learning_rate")
        line = f"{self.prefix}epoch {epoch + 1}/{self.params.get('epochs', '?')}: {shown}"
        if self.progress is not None:
            self.progress(line)
        else:
            log.info("%s", line)


def preview_windows(val: w.Windows, segments: list[str], scales: dict[str, float],
                    top: int | None = None) -> dict | None:
    """The last validation window of every segment (or the ``top`` biggest), biggest first, for ForecastImage."""
    order = sorted(range(len(segments)), key=lambda i: -scales.get(segments[i], 1.0))
    picks = []
    for i in order:
        rows = np.flatnonzero(val.segment == i)
        if len(rows):
            picks.append(rows[np.argmax(val.first_target[rows])])
        if len(picks) == top:
            break
    if not picks:
        return None
    sub = val.subset(np.array(picks))
    return {"inputs": sub.inputs(), "y": sub.y, "names": [segments[i] for i in sub.segment],
            "scale": np.array([scales.get(segments[i], 1.0) for i in sub.segment]),
            "first": [str(d) for d in sub.first_target]}


class ForecastImage(keras.callbacks.Callback):
    """Every ``every`` epochs and at the end: a PNG of history, actual and forecast as a TB image."""

    def __init__(self, log_dir: Path, preview: dict, every: int):
        super().__init__()
        self.log_dir, self.preview, self.every = Path(log_dir), preview, every
        self._writer = None
        self._last_epoch = -1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._last_epoch = epoch
        if (epoch + 1) % self.every == 0:
            self._write(epoch, f"after epoch {epoch + 1}")

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._last_epoch >= 0:  # the restored best weights, one step after the last epoch
            done = self._last_epoch + 1
            self._write(done, f"end of training (best weights of {done} epochs)")
        if self._writer is not None:
            self._writer.close()

    def _write(self, step: int, title: str) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        forecast = keras.ops.convert_to_numpy(self.model(self.preview["inputs"], training=False))
        png = forecast_png(self.preview, np.asarray(forecast), title)
        with self._writer.as_default():
            tf.summary.image(IMAGE_TAG, tf.image.decode_png(png, channels=4)[None], step=step)
        self._writer.flush()


def forecast_png(preview: dict, forecast: np.ndarray, title: str) -> bytes:
    """A grid of one panel per segment on the original scale (Agg canvas, no pyplot state), as PNG.

    Each panel is 4 x 3 inches at 80 dpi (320 x 240 px), so titles and ticks stay readable however
    many segments there are; the image grows by rows of IMAGE_COLUMNS panels.
    """
    from matplotlib.figure import Figure

    n = len(preview["names"])
    cols = min(IMAGE_COLUMNS, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows + 0.4), dpi=80)
    grid = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in grid[n:]:
        ax.set_visible(False)
    axes = grid[:n]
    history = preview["inputs"]["history"][:, :, 0]
    for k, ax in enumerate(axes):
        scale = preview["scale"][k]
        lb, h = history.shape[1], preview["y"].shape[1]
        ax.plot(np.arange(-lb, 0), history[k] * scale, color="0.6", lw=1, label="history")
        ax.plot(np.arange(h), preview["y"][k] * scale, color="k", lw=1.2, label="actual")
        if forecast.ndim == 3:  # quantiles: band between the outermost, line at the middle one
            mid = forecast.shape[2] // 2
            ax.fill_between(np.arange(h), forecast[k, :, 0] * scale, forecast[k, :, -1] * scale,
                            color="tab:blue", alpha=0.25, lw=0)
            ax.plot(np.arange(h), forecast[k, :, mid] * scale, color="tab:blue", lw=1.2, label="forecast")
        else:
            ax.plot(np.arange(h), forecast[k] * scale, color="tab:blue", lw=1.2, label="forecast")
        ax.set_title(f"{preview['names'][k]} from {preview['first'][k]}", fontsize=10)
        ax.tick_params(labelsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    top = 1.0 - 0.4 / (3.0 * rows + 0.4)  # leave the suptitle its 0.4 inch
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=top - 0.06, wspace=0.25, hspace=0.45)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def hparams_of(cfg: ModelConfig) -> dict[str, bool | int | float | str]:
    """The config fields as HParams values (scalars as they are, tuples as text)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = value if isinstance(value, (bool, int, float, str)) else str(list(value))
    return out


def write_hparams(log_dir: Path, cfg: ModelConfig, trial_id: str | None = None) -> None:
    """Write the run's hyper-parameters into ``log_dir`` (once: a resumed run does not repeat them)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    log_dir = Path(log_dir)
    if any(log_dir.glob("events.out.tfevents.*")):
        return
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams(hparams_of(cfg), trial_id=trial_id or log_dir.name)
    writer.close()


def write_best(log_dir: Path, best: dict[str, float], step: int) -> None:
    """Scalars best_val_loss / best_val_mae (the restored epoch's) for the HParams table.

    The dashboard otherwise shows the last epoch's validation values, while early stopping keeps
    (and `trendrec tune` scores) the best epoch's weights.
    """
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for tag, value in best.items():
            tf.summary.scalar(tag, value, step=step)
    writer.close()


def write_holdout(log_dir: Path, metrics: dict[str, dict | None], blessed: bool) -> None:
    """The hold-out metrics of `trendrec evaluate` as scalars of the run's HParams session (step 0).

    holdout_<metric> is the candidate's, holdout_<forecaster>_<metric> the baseline's and production's,
    holdout_blessed 1 or 0: the numbers that decided promotion, beside the run's hyper-parameters.
    """
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for name, values in metrics.items():
            prefix = HOLDOUT_PREFIX if name == "model" else f"{HOLDOUT_PREFIX}{name}_"
            for metric, value in (values or {}).items():
                if isinstance(value, float) and np.isfinite(value):
                    tf.summary.scalar(f"{prefix}{metric}", value, step=0)
        tf.summary.scalar(f"{HOLDOUT_PREFIX}blessed", float(blessed), step=0)
    writer.close()


def write_hparams_config(log_dir: Path, space: dict[str, list]) -> None:
    """The experiment of a tuning run: the searched hyper-parameters and the metrics to compare."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    params = [hp.HParam(name, hp.Discrete(values)) for name, values in space.items()]
    metrics = [hp.Metric(tag, group=group, display_name=f"{group} {tag}" if group else tag)
               for tag, group in HPARAM_METRICS]
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams_config(hparams=params, metrics=metrics)
    writer.close()
