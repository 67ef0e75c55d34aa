"""A training run SIGKILLed half-way resumes from its backup when the same run id is started again.

A real `run_train` runs in a subprocess; once its BackupAndRestore state says two or more epochs
are done it gets SIGKILL (no cleanup code runs). The re-run, in this process, must start at the
backed-up epoch rather than epoch 1, commit a loadable candidate, and leave no backup or staging
directory behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.store import read_json
from recsys.forecast.forecaster import SegmentForecaster
from pipeline.store import Store
from recsys.runs import create as create_run
from recsys.forecast.train import BACKUP, run_train
from tests.conftest import ROOT
from tests.conftest import SMALL_MODEL, make_tiny_daily, write_daily

RUN_ID = "killed"
SLOWER = {"epochs": 30, "patience": 30, "batch_size": 16, "histogram_freq": 0, "image_freq": 0}
MODEL = dataclasses.replace(SMALL_MODEL, **SLOWER)  # no early stop; enough epochs to kill it half-way
SCRIPT = f"""
import dataclasses, sys
from pipeline.config import load_config
from pipeline.store import Store
from recsys.forecast.train import run_train
from recsys.runs import create
from tests.conftest import SMALL_MODEL
model = dataclasses.replace(SMALL_MODEL, **{SLOWER!r})
run_train(dataclasses.replace(load_config(None), store=sys.argv[1], model=model), create(Store(sys.argv[1]), {RUN_ID!r}))
"""


def _backed_up_epoch(backup: Path) -> int:
    try:
        return int(json.loads((backup / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):  # not written yet, or caught mid-write
        return 0


@pytest.mark.slow
def test_killed_training_resumes_from_its_backup(tmp_path):
    store = tmp_path / "store"
    write_daily(store, make_tiny_daily())
    backup = store / "models" / "runs" / RUN_ID / BACKUP
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "train.log", "w") as sink:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(store)], cwd=ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while _backed_up_epoch(backup) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        log = (tmp_path / "train.log").read_text()[-2000:] if proc.poll() is not None else ""
        assert proc.poll() is None, f"training ended before the kill: {log}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = _backed_up_epoch(backup)
    assert 2 <= done < MODEL.epochs
    assert not (store / "models" / "runs" / RUN_ID / "forecast").exists()  # nothing committed

    cfg = dataclasses.replace(load_config(None), store=str(store), model=MODEL)
    out = run_train(cfg, create_run(Store(cfg.store), RUN_ID))
    assert out["initial_epoch"] == done and out["epochs_run"] == MODEL.epochs  # resumed, not epoch 1
    summary = read_json(Path(out["forecast_dir"]) / "train.json")
    assert summary["initial_epoch"] == done and len(summary["history"]["loss"]) == MODEL.epochs - done
    assert SegmentForecaster.load(out["forecast_dir"]).predict(make_tiny_daily())["forecast"].notna().all()
    assert not [p.name for p in (store / "models" / "runs" / RUN_ID).iterdir() if p.name.startswith(".")]
