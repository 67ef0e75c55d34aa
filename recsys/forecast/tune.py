"""`trendrec tune`: a small seeded random search over the model's shape, scored on validation only.

Trial 0 is the configured model; the others are drawn without replacement, with the config's seed,
from a grid over units, layers, dropout, lookback and cell. Every trial trains on the same training
part as `trendrec train` (the hold-out that `trendrec evaluate` scores is cut off first and never
seen), stops early on the last ``val_days`` of it, and is scored by its validation MAE on the
scaled target at the restored best epoch (every trial shares the configured scaling, so the scores
compare across cells, lookbacks and losses).
Choosing on the hold-out would make the hold-out score an optimistic, tuned number.

TensorBoard: ``runs/tune-<id>/`` holds the experiment (the searched hyper-parameters and the
metrics) and one hparams run per trial in ``runs/tune-<id>/trial-NN/``, so the HParams dashboard
compares them. The result goes to ``tune/<id>/trials.json`` and ``tune/<id>/best.toml``, a
``[model]`` section to paste into trendrec.toml.

    trendrec tune --trials 6 --json && tensorboard --logdir trendrec-data/runs
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline import schemas as s
from pipeline.config import Config, ModelConfig
from pipeline.errors import TrendrecError
from pipeline.store import Store, atomic_path, new_run_id, read_daily, removed_on_failure, safe_name, write_json

log = logging.getLogger(__name__)

SPACE: dict[str, list] = {  # the grid trials are drawn from
    "units": [16, 32, 64],
    "layers": [1, 2],
    "dropout": [0.0, 0.1, 0.3],
    "lookback": [14, 28, 56],  # the configured lookback (default 84) is trial 0
    "cell": ["lstm", "gru", "peephole"],
}
DEFAULT_TRIALS = 6  # about 3-4 minutes on the demo data on 2 cores
DEFAULT_EPOCHS = 15  # per-trial epoch cap (early stopping usually ends sooner)


class TuneError(TrendrecError):
    """Nothing to tune on, a bad trial count, or every trial failed."""


def sample_configs(base: ModelConfig, trials: int) -> list[ModelConfig]:
    """The configured model, then ``trials - 1`` distinct grid points drawn with ``base.seed``."""
    grid = [dict(zip(SPACE, values)) for values in itertools.product(*SPACE.values())]
    own = {k: getattr(base, k) for k in SPACE}
    grid = [point for point in grid if point != own]
    picks = np.random.default_rng(base.seed).permutation(len(grid))[: max(0, trials - 1)]
    return [base] + [dataclasses.replace(base, **grid[i]) for i in sorted(picks)]


def run_tune(cfg: Config, *, trials: int = DEFAULT_TRIALS, tune_id: str | None = None,
             epochs: int | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the search on the days before the evaluation hold-out and write trials.json / best.toml."""
    from recsys.forecast.nn.callbacks import write_hparams_config

    if trials < 1:
        raise TuneError(f"--trials must be >= 1, got {trials}")
    started = time.monotonic()
    store = Store(cfg.store)
    tune_id = safe_name(tune_id, "tune id") if tune_id is not None else new_run_id()
    daily = read_daily(store)
    cutoff = daily[s.DATE].max() - datetime.timedelta(days=cfg.evaluate.holdout_days)
    train = daily[daily[s.DATE] <= cutoff].reset_index(drop=True)
    if train.empty:
        raise TuneError(f"{store.daily_path}: no day before the {cfg.evaluate.holdout_days}-day hold-out")
    base = dataclasses.replace(cfg.model, epochs=epochs or min(cfg.model.epochs, DEFAULT_EPOCHS))
    configs = sample_configs(base, trials)
    log_root = store.ensure().runs / f"tune-{tune_id}"
    out_dir = store.tune / tune_id
    with removed_on_failure(log_root, out_dir):  # a failed tune leaves no log or result of its own
        write_hparams_config(log_root, {k: sorted({*SPACE[k], getattr(base, k)}) for k in SPACE})
        records = [_trial(c, train, log_root / f"trial-{i:02d}", i, len(configs), progress)
                   for i, c in enumerate(configs)]
        scored = [r for r in records if r["val_mae"] is not None]
        if not scored:
            raise TuneError(f"all {len(records)} trials failed: {records[0].get('error', 'no finite val_mae')}")
        best = min(scored, key=lambda r: r["val_mae"])
        write_json({"tune_id": tune_id, "cutoff": str(cutoff), "score": "val_mae", "trials": records},
                   out_dir / "trials.json")
        with atomic_path(out_dir / "best.toml") as tmp:
            tmp.write_text(best_toml(best, tune_id, len(records)), encoding="utf-8")
    log.info("tune %s: best %s (val_mae %.4g) of %d trials", tune_id, best["trial"], best["val_mae"],
             len(records))
    return {"tune_id": tune_id, "trials": len(records), "failed": len(records) - len(scored),
            "best_trial": best["trial"], "best_val_mae": best["val_mae"], "best": best["params"],
            "best_toml": str(out_dir / "best.toml"), "trials_json": str(out_dir / "trials.json"),
            "log_dir": str(log_root), "seconds": round(time.monotonic() - started, 2),
            "tensorboard": f"tensorboard --logdir {log_root}"}


def _trial(config: ModelConfig, train, log_dir: Path, i: int, n: int,
           progress: Callable[[str], None] | None) -> dict[str, Any]:
    """Fit one config; a ModelError (diverged, too little data for the lookback) is recorded, not raised."""
    from recsys.forecast.forecaster import SegmentForecaster, ModelError

    params = {k: getattr(config, k) for k in SPACE}
    started = time.monotonic()
    record: dict[str, Any] = {"trial": log_dir.name, "params": params, "val_mae": None, "val_loss": None}
    try:
        result = SegmentForecaster(config).fit(train, log_dir=log_dir, trial_id=log_dir.name)
        mae = result["best_val_mae"]
        record |= {"val_mae": mae if math.isfinite(mae) else None, "val_loss": result["best_val_loss"],
                   "epochs_run": result["epochs_run"]}
    except ModelError as exc:
        record["error"] = str(exc)
    record["seconds"] = round(time.monotonic() - started, 2)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    failed = record["val_mae"] is None
    score = (f"failed: {record.get('error', 'no finite val_mae')}" if failed
             else f"val_mae {record['val_mae']:.4f}")
    line = f"trial {i + 1}/{n} {log_dir.name}: {shown} -> {score} ({record['seconds']:.0f} s)"
    log.info("%s", line)
    if progress is not None:
        progress(line)
    return record


def best_toml(best: dict[str, Any], tune_id: str, n_trials: int) -> str:
    """The best trial's searched keys as a [model] TOML section (other keys keep their config value)."""
    lines = [f"# trendrec tune {tune_id}: best of {n_trials} trials by validation MAE "
             f"({best['val_mae']:.4f}, mean-scaled) - paste into trendrec.toml's [model]", "[model]"]
    for key, value in best["params"].items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value!r}")
    return "\n".join(lines) + "\n"
