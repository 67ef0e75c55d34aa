"""`make airflow AIRFLOW_PORT=N` on a real Airflow: a task runs when the API server is not on 8080.

The environment is the one make gives its recipes for a free port N (AIRFLOW__CORE__EXECUTION_API_SERVER_URL,
AIRFLOW__API__HOST, ...), with AIRFLOW_HOME and the DAGs folder moved to a temporary directory that
holds one tiny DAG. The API server, scheduler and DAG processor are started as ``make airflow`` starts
them; the DAG (created unpaused) is triggered with the Airflow CLI once the DAG processor has stored it,
and its run, read from the metadata database, must end in ``success``.
Without the execution API URL the task runners call localhost:8080 and the task fails.

    PYTHONPATH=. .venv/bin/python -m pytest tests/dags/test_airflow_port.py -q
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.dags.conftest import api_healthy, free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")]

DAG_ID = "port_probe"
DEADLINE_S = 300
DAG_SOURCE = '''
from pathlib import Path

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False,
     is_paused_upon_creation=False)
def port_probe():
    @task
    def touch():
        Path({out!r}).write_text("ran")

    touch()


port_probe()
'''


def _make_env(port: int) -> dict[str, str]:
    """The environment make's recipes see with AIRFLOW_PORT=port (pytest's own AIRFLOW_* left out)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    out = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "--eval", "probe-env: ; @env -0",
                          "probe-env", f"AIRFLOW_PORT={port}"], env=base, capture_output=True, timeout=60,
                         check=True).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["airflow", *args], env=env, capture_output=True, text=True, timeout=180, check=False)


def _start(env: dict[str, str], logs: Path, component: str, *extra: str) -> subprocess.Popen:
    with open(logs / f"{component}.log", "wb") as log:
        return subprocess.Popen(["airflow", component, *extra], env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _tails(logs: Path, home: Path) -> str:
    files = [logs / "scheduler.log", logs / "api-server.log", *sorted(home.glob(f"logs/dag_id={DAG_ID}/**/*.log"))]
    parts = [f"--- {f} ---\n" + "\n".join(f.read_text(errors="replace").splitlines()[-40:])
             for f in files if f.is_file()]
    return "\n".join(parts)


def _query(home: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the metadata database (read-only; cheaper than an Airflow CLI start per poll)."""
    db = home / "airflow.db"
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(sql, (DAG_ID,)).fetchall()
    except sqlite3.OperationalError:  # a table not created yet, or the database locked for a moment
        return []


def _trigger_and_wait(env: dict[str, str], home: Path, port: int, deadline: float) -> str | None:
    """Waits for the API server and the parsed DAG, triggers it once; the run's final state (None: timed out)."""
    while not (api_healthy(port) and _query(home, "SELECT 1 FROM dag WHERE dag_id = ? AND NOT is_paused")) \
            and time.monotonic() < deadline:
        time.sleep(2)
    trigger = _airflow(env, "dags", "trigger", DAG_ID)
    assert trigger.returncode == 0, trigger.stdout + trigger.stderr
    while time.monotonic() < deadline:
        states = [row[0] for row in _query(home, "SELECT state FROM dag_run WHERE dag_id = ?")]
        if states and states[-1] in ("success", "failed"):
            return states[-1]
        time.sleep(2)
    return None


def test_a_task_runs_when_the_api_server_is_not_on_8080(tmp_path):
    port = free_port()
    env = _make_env(port)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"
    home, dags, logs, out = tmp_path / "home", tmp_path / "dags", tmp_path / "logs", tmp_path / "ran.txt"
    for d in (home, dags, logs):
        d.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_SOURCE.format(dag_id=DAG_ID, out=str(out)))
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    migrate = _airflow(env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(env, logs, "api-server", "--port", str(port)))
        procs.append(_start(env, logs, "scheduler", "--skip-serve-logs"))
        procs.append(_start(env, logs, "dag-processor"))
        state = _trigger_and_wait(env, home, port, time.monotonic() + DEADLINE_S)
    finally:
        _stop(procs)
    assert state == "success" and out.is_file() and out.read_text() == "ran", \
        f"run of {DAG_ID} ended {state!r} on port {port}\n{_tails(logs, home)}"
