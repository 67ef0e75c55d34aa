"""
### trendrec_pipeline

The whole trendrec flow, one task per stage, wired as `recsys.flow` defines (`upstream_of`):
**ingest → aggregate → train_forecast → (train_nextbasket ∥ train_value) → judge → push → rerank**.
The two customer families' trainings both wait only for `train_forecast` (it makes the training run),
so two workers run them side by side; `judge` waits for both.

* Each task runs exactly one stage (`recsys.flow.run_stage`) and returns a small summary (counts
  and paths) through XCom; data stays in the store.
* The customer stages run in `customers.shards` shards of customers (a stable hash of the id):
  `train_value_prepare` fits the value models, `train_value_shard` is mapped over the shards (dynamic
  task mapping: one task instance each, which workers run side by side) and `train_value` joins the
  forecast; `push_prepare`, `push_shard` (the next-basket model's push-time scores, shard by shard,
  each reading its own customers' histories) and `push` (joins the scores into the version) likewise.
* `config` and `store` params choose the TOML file and the store directory (defaults from
  `$TRENDREC_CONFIG` / `$TRENDREC_STORE`). `source` overrides the config's event file.
* The training run id is the run key (the logical date), so a re-run of the same date rewrites the
  same training run instead of adding one. `push` makes a version only when a part is blessed; `rerank` is skipped
  while no model is in production.

Run it once with `airflow dags test trendrec_pipeline 2011-12-10` (what `make demo` does).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from pipeline.orchestration import PARAMS, default_args, log_failure, run_key, stage_graph, task_id
from recsys.flow import STAGES, upstream_of


def _stage_task(step, part: str | None = None):
    """The task of a stage, or of one step of a sharded stage (prepare, shard, join: recsys.flow.Sharded)."""
    name = task_id(step.name, part)

    @task(task_id=name, execution_timeout=timedelta(minutes=step.timeout_minutes))
    def run_stage(upstream=None, params=None, logical_date=None, run_id=None):
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.config import load_run_config
        from recsys import flow

        cfg = load_run_config(params["config"], params["store"])
        options = {"source": params["source"] or None, "run_key": run_key(logical_date, run_id)}
        if part is None:
            summary = flow.run_stage(step.name, cfg, upstream, **options)
        else:
            summary = flow.run_step(step.name, part, cfg, upstream, **options)
        if isinstance(summary, dict) and flow.SKIPPED in summary:
            raise AirflowSkipException(summary[flow.SKIPPED])
        return summary

    return run_stage


@dag(
    dag_id="trendrec_pipeline",
    schedule="@weekly",
    start_date=pendulum.datetime(2011, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, timeout_minutes=120),
    on_failure_callback=log_failure,
    tags=["trendrec", "training", "rerank"],
    doc_md=__doc__,
    params={name: Param(**PARAMS[name]) for name in ("config", "store", "source")},
)
def trendrec_pipeline():
    stage_graph(_stage_task, STAGES, upstream_of)


trendrec_pipeline()
