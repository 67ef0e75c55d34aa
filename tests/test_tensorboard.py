"""`make tensorboard` end to end: serve a real training run's logs on loopback and read its loss series.

TensorBoard is started as `make tensorboard` starts it (--logdir <store>/runs --host 127.0.0.1) on
a free port, polled until it serves (about 12 s here), asked through its HTTP API for the run list
and the epoch_loss scalars, and stopped in a finally (SIGTERM, then kill after 10 s).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.config import load_config
from recsys.runs import create as create_run
from recsys.forecast.train import run_train
from pipeline.store import Store, write_parquet
from tests.conftest import SMALL_MODEL, make_tiny_daily

STARTUP_TIMEOUT = 90.0  # seconds; TensorBoard needs about 12 s on an idle 2-core machine
RUN_ID = "tb"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _wait_for(fetch, ready, proc: subprocess.Popen, timeout: float, log: Path):
    """Call ``fetch()`` until ``ready(result)``; fail if TensorBoard exits or ``timeout`` passes."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tensorboard exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            last = fetch()
            if ready(last):
                return last
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    pytest.fail(f"tensorboard did not answer as expected within {timeout} s; last answer {last!r}; "
                f"log: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_tensorboard_serves_the_loss_series_of_a_real_run(tmp_path):
    tiny_store = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), model=SMALL_MODEL)
    table = pa.Table.from_pandas(make_tiny_daily(), preserve_index=False)  # only what training reads
    write_parquet(table, Store(tiny_store.store).ensure().daily_path)
    trained = run_train(tiny_store, create_run(Store(tiny_store.store), RUN_ID))
    history = json.loads((Path(trained["forecast_dir"]) / "train.json").read_text())["history"]
    port = _free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    command = [str(tensorboard)] if tensorboard.is_file() else [sys.executable, "-m", "tensorboard.main"]
    logdir = str(Path(tiny_store.store) / "runs")
    log = tmp_path / "tensorboard.log"  # a file, not a pipe: an unread pipe can fill and block it
    with open(log, "w") as sink:
        proc = subprocess.Popen([*command, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        runs = _wait_for(lambda: _get_json(f"{base}/data/runs"), lambda r: f"{RUN_ID}/train" in r, proc,
                         STARTUP_TIMEOUT, log)
        assert f"{RUN_ID}/validation" in runs
        tags = _wait_for(lambda: _get_json(f"{base}/data/plugin/scalars/tags"),
                         lambda t: all("epoch_loss" in t.get(f"{RUN_ID}/{split}", {})
                                       for split in ("train", "validation")), proc, 30, log)
        assert "epoch_loss" in tags[f"{RUN_ID}/train"]  # Keras 3 writes tensors; scalars serves them
        for run, key in ((f"{RUN_ID}/train", "loss"), (f"{RUN_ID}/validation", "val_loss")):
            query = urllib.parse.urlencode({"run": run, "tag": "epoch_loss"})
            points = _get_json(f"{base}/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value]]
            assert [step for _, step, _ in points] == list(range(trained["epochs_run"]))
            assert [value for _, _, value in points] == pytest.approx(history[key], rel=1e-5)
        print(f"tensorboard served the run after {time.monotonic() - started:.1f} s")  # shown with -s
    finally:
        _stop(proc)
    assert proc.returncode is not None
