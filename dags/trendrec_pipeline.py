"""
### trendrec_pipeline

The whole trendrec flow, one task per stage, in the order `recsys.flow` defines:
**ingest → aggregate → train_forecast → train_nextbasket → train_value → judge → push → rerank**.

* Each task runs exactly one stage (`recsys.flow.run_stage`) and returns a small summary (counts
  and paths) through XCom; data stays in the store.
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

from pipeline.orchestration import PARAMS, default_args, log_failure, run_key
from recsys.flow import STAGES


def _stage_task(step):
    name = step.name

    @task(task_id=name, execution_timeout=timedelta(minutes=step.timeout_minutes))
    def run_stage(upstream: dict | None = None, params=None, logical_date=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.config import load_run_config
        from recsys import flow

        cfg = load_run_config(params["config"], params["store"])
        summary = flow.run_stage(name, cfg, upstream, source=params["source"] or None,
                                 run_key=run_key(logical_date, run_id))
        if flow.SKIPPED in summary:
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
    summary = None
    for step in STAGES:
        summary = _stage_task(step)(summary)


trendrec_pipeline()
