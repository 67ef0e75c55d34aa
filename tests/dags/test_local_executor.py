"""The trendrec_pipeline DAG run as a deployment runs it, on Airflow's LocalExecutor with parallelism 2:
each mapped task's two shards must run side by side.

The test starts Airflow's own processes on a SQLite metadata database in a temporary AIRFLOW_HOME, all
on loopback: ``airflow api-server`` on a free port (the task runners report to it), ``airflow
dag-processor`` (puts the DAGs in the database) and ``airflow scheduler --skip-serve-logs`` with the
LocalExecutor (``core.parallelism = 2``: two worker processes). It triggers one run of trendrec_pipeline
for 2011-12-10 with ``airflow dags trigger --conf`` and polls the database until the run ends. No time or
asset schedule makes runs (``scheduler.use_job_schedule = False``) and DAGs start unpaused, so that run is
the only one. The store is every 8th row of May-Dec 2011 of the demo data with short models and
``customers.shards = 2``, so ``train_value_shard`` and ``push_shard`` each have two task instances. Every
task instance must succeed, the release be whole, and each mapped task's two instances must overlap in
time (their start and end in the task_instance table; the spans and the overlap are printed). So must
``train_nextbasket`` and ``train_value_prepare``, which both wait only for ``train_forecast``
(recsys.flow.upstream_of); the value shards are not compared when the next-basket training still held the
other worker as the first shard started (the second then waits for a free worker, by design).

Two things made the shards run in turn before. ``airflow dags test --use-executor`` (what this test ran)
counts the executor's free slots before it collects the tasks that finished and sleeps 1 s when nothing
is schedulable; the scheduler's loop does not wait when it has queued or finished something. And a
worker's supervisor, once its task's pipes have closed, looks for the process's exit only every
``workers.min_heartbeat_interval`` seconds (default 5) and takes no other task meanwhile: with the
default, under this scheduler, 7 of the 14 tasks held their worker 5.1 s after they ended and the second
``push_shard`` started 3.3 s after the first (1.1 s of overlap on 4.4 s shards). The test sets it to 1 s
(tails of 1.8 s at most). Measured here: 1 min 45 s to 2 min 50 s without added load, 4 min 20 s to
4 min 45 s beside two busy processes (overlaps of 6-15 s and 21-26 s).

    PYTHONPATH=. .venv/bin/python -m pytest tests/dags/test_local_executor.py -q
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.orchestration import local_airflow_env
from pipeline.store import Store
from tests.conftest import DEMO_CONFIG, DEMO_EVENTS, ROOT
from tests.dags.conftest import api_healthy, free_port

pytestmark = pytest.mark.slow

DAG_ID = "trendrec_pipeline"
DAY = "2011-12-10"
MAPPED = ("train_value_shard", "push_shard")
DEADLINE_S = 420


def _small_setup(root: Path) -> Path:
    """The slice, two candidate lists and a config with a short model and two shards; the config's path."""
    events = pd.read_parquet(DEMO_EVENTS)
    events[events["InvoiceDate"] >= "2011-05-01"].iloc[::8].to_parquet(root / "slice.parquet")
    pd.DataFrame({s.USER_ID: ["17850"] * 2 + ["12583"] * 2, s.ITEM_ID: ["85123A", "22086", "22086", "21212"],
                  s.SEGMENT: ["lights_candles", "christmas", "christmas", "baking_cake"],
                  s.BASE_SCORE: [0.9, 0.8, 0.9, 0.5]}).to_parquet(root / "candidates.parquet")
    text = re.sub(r'(?m)^source = .*$', f'source = "{root / "slice.parquet"}"', DEMO_CONFIG.read_text())
    text = re.sub(r'(?m)^candidates = .*$', f'candidates = "{root / "candidates.parquet"}"', text)
    for key, value in {"epochs": "2", "units": "8", "val_days": "42", "patience": "2", "ensemble": "1",
                       "members": '["lstm", "seasonal_naive"]', "statistical_origins": "3",  # a quick forecast
                       "train_weeks": "3", "train_cutoffs": "2", "seq_weeks": "13",  # quick customer models
                       "margin": "-1.0", "bless_margin": "-1.0", "shards": "2"}.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (root / "trendrec.toml").write_text(text)
    return root / "trendrec.toml"


def _env(home: Path, port: int) -> dict[str, str]:
    """The processes' environment: only the triggered run (no time or asset schedule creates one), DAGs
    unpaused so it starts, each DAG file parsed once (no re-parse every 30 s on the 2 cores), and a
    worker that sees its task process exit within 1 s instead of 5 (``workers.min_heartbeat_interval``:
    once the task's pipes are closed, the supervisor waits that long before it looks again, and the
    worker takes no other task meanwhile)."""
    env = local_airflow_env(dict(os.environ), str(home), port, "LocalExecutor",
                            str(Path(sys.executable).parent), str(ROOT))
    env.update(AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
               AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
               AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="3600",
               AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL="1")
    return env


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group this test started (the LocalExecutor's workers too), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _query(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=10) as con:
        return con.execute(sql, (DAG_ID,)).fetchall()


def test_the_dag_runs_its_mapped_shards_side_by_side_on_the_local_executor(tmp_path):
    config, home, port = _small_setup(tmp_path), tmp_path / "airflow", free_port()
    home.mkdir()
    env = _env(home, port)
    migrate = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    commands = {"api-server": ["airflow", "api-server", "--port", str(port), "--workers", "1"],
                "dag-processor": ["airflow", "dag-processor"],
                "scheduler": ["airflow", "scheduler", "--skip-serve-logs"]}
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in commands}
    procs = []
    run_state = None
    try:
        for name, command in commands.items():
            procs.append(subprocess.Popen(command, env=env, stdout=logs[name], stderr=subprocess.STDOUT,
                                          start_new_session=True))
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and not (
                api_healthy(port) and _query(home, "SELECT 1 FROM serialized_dag WHERE dag_id = ?")):
            time.sleep(1)
        conf = {"config": str(config), "store": str(tmp_path / "store"), "source": ""}
        trigger = subprocess.run(["airflow", "dags", "trigger", DAG_ID, "--logical-date", DAY, "--conf",
                                  json.dumps(conf)], env=env, capture_output=True, text=True,
                                 timeout=max(1.0, deadline - time.monotonic()))
        assert trigger.returncode == 0, trigger.stdout[-2000:] + trigger.stderr[-2000:]
        while time.monotonic() < deadline:
            run_state = _query(home, "SELECT state FROM dag_run WHERE dag_id = ?")[0][0]
            if run_state not in ("queued", "running"):
                break
            time.sleep(2)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs.values():
            log.close()
    rows = _query(home, "SELECT task_id, map_index, state, start_date, end_date FROM task_instance "
                        "WHERE dag_id = ? ORDER BY start_date")
    states = {(task, index): state for task, index, state, _, _ in rows}
    tail = (tmp_path / "scheduler.log").read_text(errors="replace")[-3000:]
    assert run_state == "success" and set(states.values()) == {"success"} and len(states) == 14, (
        run_state, states, tail)

    def spans(task):
        return [(datetime.fromisoformat(start), datetime.fromisoformat(end))
                for t, _, _, start, end in rows if t == task]

    def overlap(found):
        return (min(end for _, end in found) - max(start for start, _ in found)).total_seconds()

    # the two customer families, both ready when train_forecast ends, on the executor's two workers at once
    (nextbasket,), (value,) = spans("train_nextbasket"), spans("train_value_prepare")
    print("train_nextbasket", nextbasket, "train_value_prepare", value,
          f"overlap {overlap([nextbasket, value]):.2f} s")
    assert overlap([nextbasket, value]) > 0, (nextbasket, value)
    for task in MAPPED:  # two instances each, run by the executor's two workers at the same time
        found = spans(task)
        assert len(found) == 2, (task, rows)
        print(task, "shards", [(str(a), str(b)) for a, b in found], f"overlap {overlap(found):.2f} s")
        if task == "train_value_shard" and nextbasket[1] > min(start for start, _ in found):
            print("  train_nextbasket held the other worker when the first shard started: not compared")
            continue
        assert overlap(found) > 0, (task, found)
    st = Store(tmp_path / "store")
    version = json.loads((st.models / "production.json").read_text())["version"]
    assert (st.models / version / "nextbasket" / "scores.parquet").is_file()
    run_dir = st.training_runs / "20111210T000000"  # pipeline.orchestration.run_key of DAY
    assert (run_dir / "value" / "value.parquet").is_file() and not (run_dir / "push-scores").exists()
    assert len(pd.read_parquet(next(st.reranked.glob("*.parquet")))) == 4
