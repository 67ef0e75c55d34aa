"""
### trendrec_rerank — re-rank the day's candidate lists with the production version (customer scores, segment trends)

**has_production_model → rerank**

* Runs daily at 06:00 UTC **and** whenever `trendrec_retrain` updates the
  **`trendrec_production_model`** asset (a new model re-ranks the day's lists at once).
* Day D is the run's logical date; asset-triggered runs have none in Airflow 3, so D is the UTC day
  the run was queued (`run_after`).
* Input: `<candidates_dir>/<D>.parquet` when the `candidates_dir` param is set, else the config's
  `rerank.candidates` file. Output: `reranked/<D>.parquet` in the store, written atomically, so a
  re-run of D with the same production model rewrites identical bytes.
* `has_production_model` short-circuits (skips `rerank`) while nothing is in production.
* Params: `config`, `store`, `candidates_dir`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from pipeline.orchestration import PARAMS, PRODUCTION_MODEL, default_args, log_failure, run_day

log = logging.getLogger(__name__)


def _config(params: dict):
    from pipeline.config import load_run_config  # heavy imports stay inside tasks

    return load_run_config(params["config"], params["store"])


@dag(
    dag_id="trendrec_rerank",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"),
                                 assets=[Asset(name=PRODUCTION_MODEL)]),
    start_date=pendulum.datetime(2010, 12, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=3, max_retry_delay_minutes=20, timeout_minutes=30),
    on_failure_callback=log_failure,
    dagrun_timeout=timedelta(hours=2),
    tags=["trendrec", "rerank"],
    doc_md=__doc__,
    params={name: Param(**PARAMS[name]) for name in ("config", "store", "candidates_dir")},
)
def trendrec_rerank():
    @task.short_circuit
    def has_production_model(params=None) -> bool:
        from recsys.registry import read_production

        prod = read_production(_config(params).store)
        log.info("production model: %s", prod and prod["version"])
        return prod is not None

    @task
    def rerank(params=None, logical_date=None, dag_run=None) -> dict:
        from pipeline.ingest.landing import candidates_for
        from recsys import flow

        cfg = _config(params)
        day = run_day(logical_date, dag_run.run_after)
        candidates = candidates_for(params["candidates_dir"], day, cfg.rerank.candidates)
        return flow.run_stage("rerank", cfg, candidates=str(candidates), output=f"reranked/{day}.parquet")

    has_production_model() >> rerank()


trendrec_rerank()
