"""SIGKILL an ingest at random moments: the store only ever shows whole files, and a re-run finishes."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.store import Store
from tests.conftest import ROOT

CONFIG = """
store = "{store}"
[ingest]
batch_rows = 4000
[ingest.columns]
event_time = "ts"
item_id = "item"
quantity = "qty"
price = "price"
order_id = "order"
"""
SCRIPT = "import sys; from pipeline.config import load_config; from pipeline.ingest.ingest import run_ingest; " \
         "run_ingest(load_config(sys.argv[1]), sys.argv[2])"


def _write_logs(folder, files: int = 3, rows: int = 20_000) -> int:
    """CSV files of one drop, each sharing half its rows with the next; returns the good rows. The files of
    one ingest are one export, so a row in two of them is two purchases: every good line is stored."""
    folder.mkdir()
    step = rows // 2
    for f in range(files):
        ids = np.arange(f * step, f * step + rows)
        days = 1 + ids % 28
        lines = [f"2024-02-{d:02d} 10:{i % 60:02d}:00,A{i},1,2.5,o{i}" for i, d in zip(ids, days)]
        lines[::997] = ["garbage,A,x,1,o"] * len(lines[::997])  # quarantined, never stored
        (folder / f"part{f}.csv").write_text("ts,item,qty,price,order\n" + "\n".join(lines) + "\n")
    return files * sum(1 for k in range(rows) if k % 997)


def _check_store(store: Store) -> int:
    """Committed files exist, are whole, and hold exactly what their commit records say."""
    commits = [json.loads(p.read_text()) for p in store.commits.glob("*.json")] if store.commits.is_dir() else []
    files = store.committed_raw_files()
    stored = sum(pq.ParquetFile(f).metadata.num_rows for f in files)  # raises on a half-written file
    assert stored == sum(c["rows_accepted"] for c in commits)
    return stored


def _start(cmd: list[str], store: Store) -> tuple[subprocess.Popen, float]:
    """Start an ingest; return it and the moment its work began (imports take seconds on a loaded machine)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while not store.ingest_staging.exists() and proc.poll() is None and time.monotonic() - started < 30:
        time.sleep(0.02)
    return proc, time.monotonic()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerun(tmp_path):
    expected = _write_logs(tmp_path / "logs")
    # One uninterrupted run in a scratch store tells how long the work lasts, so kills land inside it.
    (tmp_path / "scratch.toml").write_text(CONFIG.format(store=tmp_path / "scratch"))
    proc, began = _start([sys.executable, "-c", SCRIPT, str(tmp_path / "scratch.toml"), str(tmp_path / "logs")],
                         Store(tmp_path / "scratch"))
    assert proc.wait() == 0
    work = max(time.monotonic() - began, 0.5)
    assert _check_store(Store(tmp_path / "scratch")) == expected  # one uninterrupted run of the drop
    (tmp_path / "c.toml").write_text(CONFIG.format(store=tmp_path / "store"))
    store, rng = Store(tmp_path / "store"), random.Random(7)
    cmd = [sys.executable, "-c", SCRIPT, str(tmp_path / "c.toml"), str(tmp_path / "logs")]
    for _ in range(3):
        proc, _began = _start(cmd, store)
        time.sleep(rng.uniform(0.0, work))
        if proc.poll() is None:  # a run that already finished is reaped by poll: nothing left to kill
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _check_store(store)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _check_store(store) == expected  # killed runs and the re-run store what one run stores
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)  # the drop once more: nothing added
    assert again.returncode == 0 and _check_store(store) == expected
    assert not store.ingest_staging.exists() or not any(store.ingest_staging.iterdir())
