"""
### trendrec_retrain — aggregate, train, evaluate and (if blessed) push a new model

**aggregate → train → customers → value → evaluate → is_blessed → push | keep_production**

* Scheduled on the **`trendrec_raw_events`** asset (every successful `trendrec_ingest` run), or
  weekly, or either: set `TRENDREC_RETRAIN_SCHEDULE` to `asset` (default), `weekly` (Mondays
  03:00 UTC) or `asset_or_weekly` where the DAG processor runs.
* `train` names its candidate `models/candidates/<run key>/`. The run key is the logical date
  (`20111210T000000`) for time-scheduled, manual and backfill runs. Asset-triggered runs have no
  logical date in Airflow 3, so their key is the run id with unsafe characters replaced by `_`
  (`asset_triggered__2026-11-23T05_00_00.123456_00_00`); clearing a run keeps its run id. Either
  way a re-run reuses the committed candidate, its evaluation and its registry version: it changes
  nothing in the store.
* `customers` trains the customer model (LSTMRecommender) into the same candidate and judges it
  against the baselines on its validation week; `push` versions it with the segment forecaster
  when it is blessed (else production's customer model is carried forward) and scores every active
  customer's candidates, so serving needs no TensorFlow. Rollback moves both models together.
* `value` forecasts every customer's spend over the next `value.horizon_days` (BG/NBD + Gamma-Gamma,
  an LSTM with a ZILN output, their ensemble) into the candidate's `customers/value/`, after scoring
  the models on the last H days of the log; `push` versions it with the models.
* `is_blessed` branches on the evaluation: `push` versions the candidate as the production model
  and updates the **`trendrec_production_model`** asset (which schedules `trendrec_rerank`) when
  its segment forecaster or its customer model is blessed (an unblessed forecaster is replaced by
  production's, or the best single baseline's); a candidate with neither blessed, or already
  pushed, leaves production and the asset alone.
* Params: `config`, `store`, `horizon` (days forecast; empty = the config's `model.horizon`).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from pipeline.orchestration import PARAMS, PRODUCTION_MODEL, RAW_EVENTS, default_args, log_failure, run_key

log = logging.getLogger(__name__)

RAW_EVENTS_ASSET = Asset(name=RAW_EVENTS)
PRODUCTION_MODEL_ASSET = Asset(name=PRODUCTION_MODEL)
WEEKLY = CronTriggerTimetable("0 3 * * 1", timezone="UTC")
SCHEDULES = {"asset": [RAW_EVENTS_ASSET], "weekly": WEEKLY,
             "asset_or_weekly": AssetOrTimeSchedule(timetable=WEEKLY, assets=[RAW_EVENTS_ASSET])}
SCHEDULE = os.environ.get("TRENDREC_RETRAIN_SCHEDULE", "asset")
if SCHEDULE not in SCHEDULES:
    raise ValueError(f"TRENDREC_RETRAIN_SCHEDULE={SCHEDULE!r}: expected one of {sorted(SCHEDULES)}")


def _run(stage: str, params: dict, upstream: dict | None = None, **options) -> dict:
    from pipeline.config import load_run_config
    from recsys import flow

    cfg = load_run_config(params["config"], params["store"], params["horizon"])
    return flow.run_stage(stage, cfg, upstream, **options)


@dag(
    dag_id="trendrec_retrain",
    schedule=SCHEDULES[SCHEDULE],
    start_date=pendulum.datetime(2010, 12, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2, retry_delay_minutes=2, timeout_minutes=30),
    on_failure_callback=log_failure,
    dagrun_timeout=timedelta(hours=6),
    tags=["trendrec", "training"],
    doc_md=__doc__,
    params={name: Param(**PARAMS[name]) for name in ("config", "store", "horizon")},
)
def trendrec_retrain():
    @task
    def aggregate(params=None) -> dict:
        return _run("aggregate", params)

    @task(execution_timeout=timedelta(hours=4))
    def train(aggregated: dict, params=None, logical_date=None, run_id=None) -> dict:
        return _run("train", params, aggregated, run_key=run_key(logical_date, run_id))

    @task(execution_timeout=timedelta(hours=4))
    def customers(trained: dict, params=None, logical_date=None, run_id=None) -> dict:
        return _run("customers", params, trained, run_key=run_key(logical_date, run_id))

    @task(execution_timeout=timedelta(hours=2))
    def value(trained: dict, params=None, logical_date=None, run_id=None) -> dict:
        return _run("value", params, trained, run_key=run_key(logical_date, run_id))

    @task
    def evaluate(trained: dict, params=None) -> dict:
        return _run("evaluate", params, trained)

    @task.branch
    def is_blessed(evaluated: dict) -> str:
        log.info("pushable=%s: %s", evaluated["pushable"], evaluated["push_reason"])
        return "push" if evaluated["pushable"] else "keep_production"

    @task(outlets=[PRODUCTION_MODEL_ASSET])
    def push(evaluated: dict, params=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        result = _run("push", params, evaluated)
        if not result["pushed"]:  # already pushed by an earlier try of this run: no new model event
            raise AirflowSkipException(result["reason"])
        outlet_events[PRODUCTION_MODEL_ASSET].extra = {"version": result["version"], "previous": result["previous"]}
        return result

    @task
    def keep_production(evaluated: dict) -> str:
        log.info("production unchanged: %s", evaluated["push_reason"])
        return evaluated["push_reason"]

    evaluated = evaluate(value(customers(train(aggregate()))))
    is_blessed(evaluated) >> [push(evaluated), keep_production(evaluated)]


trendrec_retrain()
