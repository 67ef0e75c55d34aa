"""Train a candidate segment forecast on the daily table up to a cutoff, leaving the hold-out unseen.

The forecaster is a combination (recsys.forecast.combination): the LSTM SegmentForecaster plus the
statistical members, weighted per segment on validation cut-offs before the cutoff. It lands in the
training run's ``forecast/`` folder (``models/runs/<run id>/forecast/``: model.keras, recommender.json,
combination.json, config.json, train.json) through a temporary folder and a rename, so a crash never
leaves half a forecaster; TensorBoard logs go to ``runs/<run id>/``. train.json records the fingerprint
of the settings and the aggregate set it was trained from: a re-run of the same run reuses the result
only when both are unchanged, and trains again otherwise. While it trains,
``models/runs/<run id>/.forecast.backup/`` holds a backup of every epoch: a run killed half-way (OOM,
node loss, SIGKILL) and started again with the same run id resumes after its last finished epoch
instead of epoch 1; the backup is removed once the forecaster is committed.

    trendrec train --run-id 20261123T041500Z && tensorboard --logdir trendrec-data/runs
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, current_aggregates, read_daily, read_json, removed_on_failure, write_json
from recsys.forecast.members import LSTM
from recsys.runs import FINGERPRINT_KEY, TRAIN_FILE, Run, fingerprint, part_staging, switch_folder

log = logging.getLogger(__name__)

PART = "forecast"  # the family's folder in a run and in a version
BACKUP = ".forecast.backup"  # in the run folder: BackupAndRestore state while training


class TrainError(TrendrecError):
    """The daily table is missing or leaves nothing to train on, or the candidate already exists."""


def run_train(cfg: Config, run: Run, *, cutoff: datetime.date | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit on dates <= cutoff (default: last date - holdout_days) into ``run``'s forecast/ folder.

    ``progress`` receives one line per epoch ("epoch 3/20: loss ..., val_loss ..."); `trendrec train`
    prints them on stderr. Without it the epochs are logged at INFO.
    """
    started = time.monotonic()
    store = Store(cfg.store)
    run_id = run.run_id
    daily = read_daily(store)
    cutoff = cutoff or daily[s.DATE].max() - datetime.timedelta(days=cfg.evaluate.holdout_days)
    train = daily[daily[s.DATE] <= cutoff].reset_index(drop=True)
    if train.empty:
        raise TrainError(f"{store.daily_path} has no day on or before the cutoff {cutoff} "
                         f"(data {daily[s.DATE].min()}..{daily[s.DATE].max()})")
    final = run.part(PART)
    log_dir = store.ensure().runs / run_id
    key = train_fingerprint(cfg, store, cutoff)
    if (final / TRAIN_FILE).is_file():
        done = read_json(final / TRAIN_FILE)
        if done.get(FINGERPRINT_KEY) == key:
            # A run id names one transaction (the DAG uses the logical date): re-running it with the same
            # settings and data returns what it committed instead of training a second forecaster.
            log.info("run %s: forecaster %s already trained on the same settings and data; reusing it", run_id, final)
            return _result(run_id, final, log_dir, store, done, started) | {"reused": True}
        log.info("run %s: settings or data changed since %s was trained; training again", run_id, final)
    log.info("run %s: training on %d rows, %s..%s; TensorBoard logs in %s",
             run_id, len(train), train[s.DATE].min(), cutoff, log_dir)
    with removed_on_failure(log_dir):  # TensorFlow's event files of a failed fit (a full disk) go too
        summary = _fit_and_commit(cfg, train, cutoff, final, log_dir, run, key, progress)
    out = _result(run_id, final, log_dir, store, summary, started)
    log.info("run %s: forecaster %s (%d epochs, best val_loss %.4g)", run_id, final,
             out["epochs_run"], out["best_val_loss"])
    return out | {"reused": False}


def train_fingerprint(cfg: Config, store: Store, cutoff: datetime.date) -> str:
    """What the forecaster depends on: its settings and the aggregate set (and cut-off) it reads."""
    settings = {k: v for k, v in cfg.to_dict().items() if k in ("model", "combination", "evaluate", "aggregate")}
    current = current_aggregates(store)
    return fingerprint(settings, {"aggregates": current.name if current else None, "cutoff": str(cutoff)})


def _fit_and_commit(cfg: Config, train: pd.DataFrame, cutoff: datetime.date, final: Path, log_dir: Path,
                    run: Run, key: str, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fit in a staging folder, switch it onto ``final`` whole, then drop the resume backup."""
    from recsys.forecast.combination import fit_combination

    if LSTM not in cfg.combination.members:
        raise TrainError(f"combination.members {list(cfg.combination.members)} lacks 'lstm': a model version "
                         f"holds the LSTM's files (its weight may still be 0 per segment); add 'lstm'")
    backup = run.root / BACKUP
    staging, held = part_staging(run, PART, keep={BACKUP})
    try:
        combination, result = fit_combination(train, cfg.model, cfg.combination, cfg.evaluate.season,
                                              log_dir=log_dir, checkpoint_dir=staging / "checkpoint",
                                              backup_dir=backup, progress=progress)
        shutil.rmtree(staging / "checkpoint", ignore_errors=True)  # the restored best weights are saved below
        combination.save(staging)  # model.keras, recommender.json and combination.json (the weights)
        summary = _train_summary(result, train, cutoff, combination.segments) | {FINGERPRINT_KEY: key}
        write_json(cfg.to_dict(), staging / "config.json")
        write_json(summary, staging / TRAIN_FILE)
        switch_folder(staging, final)
        shutil.rmtree(backup, ignore_errors=True)  # committed: nothing left to resume
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(held)
    return summary


def _result(run_id: str, final: Path, log_dir: Path, store: Store, summary: dict[str, Any],
            started: float) -> dict[str, Any]:
    return {"run_id": run_id, "run_dir": str(final.parent), "forecast_dir": str(final), "log_dir": str(log_dir),
            "epochs_run": summary["epochs_run"], "initial_epoch": summary.get("initial_epoch", 0),
            "best_val_loss": summary["best_val_loss"],
            "train_start": summary["train_start"], "cutoff": summary["cutoff"],
            "n_segments": len(summary["segments"]),
            "n_windows": summary["train_windows"] + summary["val_windows"],
            "seconds": round(time.monotonic() - started, 2),
            "tensorboard": f"tensorboard --logdir {store.runs}"}


def _train_summary(result: dict[str, Any], train: pd.DataFrame, cutoff: datetime.date,
                   segments: list[str]) -> dict[str, Any]:
    return {"history": result["history"], "epochs_run": result["epochs_run"],
            "best_val_loss": result["best_val_loss"], "best_val_mae": result["best_val_mae"],
            "initial_epoch": result["initial_epoch"], "val_start": result["val_start"],
            "train_windows": result["train_windows"], "val_windows": result["val_windows"],
            "train_start": str(train[s.DATE].min()), "cutoff": str(cutoff), "segments": list(segments),
            "rows": len(train), "validation_origins": result["validation_origins"],
            "statistical_origins": result["statistical_origins"]}
