"""What the Airflow DAG files share: default args, params, asset names, run keys, failure callback.

Standard library only, so every DAG file can import it at parse time for free (the DAG integrity
test checks both). The DAG files stay thin: a schedule, these settings, one call per task.

    python -c "from pipeline.orchestration import default_args; print(default_args(retries=3))"
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from typing import Any

# Asset names, defined once: trendrec_ingest updates RAW_EVENTS, trendrec_retrain listens to it and
# updates PRODUCTION_MODEL, which trendrec_rerank listens to.
RAW_EVENTS = "trendrec_raw_events"
PRODUCTION_MODEL = "trendrec_production_model"

# Params a DAG may declare: {name: keyword arguments of airflow.sdk.Param}. Defaults come from the
# environment of the process that parses the DAG (set by `make airflow` / `make demo`).
PARAMS: dict[str, dict[str, Any]] = {
    "config": {"default": os.environ.get("TRENDREC_CONFIG", ""), "type": "string",
               "description": "TOML config path"},
    "store": {"default": os.environ.get("TRENDREC_STORE", ""), "type": "string", "description": "store directory"},
    "source": {"default": "", "type": "string", "description": "event file, directory or glob (default: config)"},
    "landing": {"default": os.environ.get("TRENDREC_LANDING", ""), "type": "string",
                "description": "landing folder holding <YYYY-MM-DD>/ drops"},
    "marker": {"default": "", "type": "string",
               "description": "file that marks a day's drop complete (empty: any data file)"},
    "horizon": {"default": None, "type": ["null", "integer"], "minimum": 1,
                "description": "days forecast (default: config)"},
    "candidates_dir": {"default": os.environ.get("TRENDREC_CANDIDATES_DIR", ""), "type": "string",
                       "description": "folder of <YYYY-MM-DD>.parquet lists (empty: config's file)"},
}


def default_args(*, retries: int = 2, retry_delay_minutes: float = 1, max_retry_delay_minutes: float = 30,
                 timeout_minutes: float = 60) -> dict[str, Any]:
    """Every task retries with exponential back-off, has a timeout and logs one line when it fails."""
    return {
        "owner": "trendrec",
        "retries": retries,
        "retry_delay": datetime.timedelta(minutes=retry_delay_minutes),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": datetime.timedelta(minutes=max_retry_delay_minutes),
        "execution_timeout": datetime.timedelta(minutes=timeout_minutes),
        "on_failure_callback": log_failure,
    }


def run_key(logical_date: datetime.datetime | None, run_id: str) -> str:
    """A deterministic, path-safe name for one DAG run: the same run re-executed gets the same key.

    Time-scheduled and backfilled runs use their logical date (``20111210T000000``); asset-triggered
    runs have none in Airflow 3, so their run id (unique and kept when the run is cleared) is used,
    with every character other than letters, digits, ``.``, ``_`` and ``-`` turned into ``_``.
    """
    if logical_date is not None:
        return logical_date.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not key:
        raise ValueError(f"run id {run_id!r} leaves no usable name")
    return key


def run_day(logical_date: datetime.datetime | None, run_after: datetime.datetime) -> datetime.date:
    """The calendar day (UTC) a run works on: its logical date, else when it was queued (asset runs)."""
    moment = logical_date if logical_date is not None else run_after
    return moment.astimezone(datetime.timezone.utc).date()


def task_id(stage: str, part: str | None = None) -> str:
    """The Airflow task id of a stage, or of one step of a sharded stage: ``<stage>_prepare``,
    ``<stage>_shard``, and the stage's own name for the join (what the next stage reads)."""
    return stage if part in (None, "join") else f"{stage}_{part}"


def stage_tasks(task_of, step, upstream, after=()):
    """A stage's tasks, wired to ``upstream``; their output (what the next stage reads).

    ``task_of(step, part)`` makes the task of the stage (part None) or of one step of a sharded stage
    (``step.sharded`` set: recsys.flow). A sharded stage is wired as map and reduce: the prepare task
    returns one input per shard, the shard task is mapped over them (Airflow dynamic task mapping: one
    task instance per shard, which workers run side by side) and the join task gets every shard's
    summary once all succeeded. ``after``: other stages' outputs the stage's first task also waits for
    (without reading them)."""
    if step.sharded is None:
        first = out = task_of(step, None)(upstream)
    else:
        prepare, shard, join = (task_of(step, part) for part in ("prepare", "shard", "join"))
        first = prepare(upstream)
        out = join(shard.expand(upstream=first))
    for other in after:
        other >> first
    return out


def stage_graph(task_of, stages, upstream_of, first_upstream=None):
    """The tasks of ``stages`` (in an order where each comes after those it waits for, e.g.
    recsys.flow.RETRAIN), each wired after the stages ``upstream_of(name)`` names (recsys.flow.upstream_of):
    it reads the first one's output as ``upstream`` and also waits for the others. A stage whose first
    upstream is not among ``stages`` reads ``first_upstream``. Returns the last stage's output.

    So the DAGs run side by side the stages that do not wait for each other: the next-basket and value
    trainings both follow train_forecast, and judge follows both."""
    outputs, out, names = {}, None, {step.name for step in stages}
    for step in stages:
        late = [name for name in upstream_of(step.name) if name in names and name not in outputs]
        if late:
            raise ValueError(f"stage {step.name!r} waits for {', '.join(late)}, which come after it in the "
                             f"order given")
        first, *others = upstream_of(step.name) or (None,)
        upstream = outputs[first] if first in outputs else first_upstream
        after = [outputs[name] for name in others if name in outputs]
        out = outputs[step.name] = stage_tasks(task_of, step, upstream, after)
    return out


def local_airflow_env(base: dict[str, str], home: str, api_port: int, executor: str, bin_dir: str,
                      root: str) -> dict[str, str]:
    """The environment of Airflow processes started on this machine around the trendrec DAGs (the
    LocalExecutor test, benchmarks/celery_workers.py): ``base`` without its AIRFLOW_* and TRENDREC_*
    variables, a metadata database in ``home``, the API server on 127.0.0.1:``api_port`` where the task
    runners reach it, one JWT secret for the executor that signs each task's token and the server
    that checks it, parallelism 2, ``bin_dir`` first on PATH and ``root`` importable."""
    env = {k: v for k, v in base.items() if not k.startswith(("AIRFLOW", "TRENDREC"))}
    env.update(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=os.path.join(root, "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__EXECUTOR=executor,
               AIRFLOW__CORE__PARALLELISM="2", AIRFLOW__API__HOST="127.0.0.1", AIRFLOW__API__PORT=str(api_port),
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
               AIRFLOW__API_AUTH__JWT_SECRET=f"trendrec-local-{api_port}",
               PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p),
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return env


def log_failure(context) -> None:
    """Airflow ``on_failure_callback``: one clear line per failed task (DAG, task, date, try, reason)."""
    ti = context.get("task_instance")
    logging.getLogger("trendrec.dags").error(
        "trendrec failure: dag=%s task=%s logical_date=%s run_id=%s try=%s: %r",
        context["dag"].dag_id, getattr(ti, "task_id", "-"), context.get("logical_date"),
        context.get("run_id"), getattr(ti, "try_number", "-"), context.get("exception"))
