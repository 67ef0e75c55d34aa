"""
### trendrec_retrain — aggregate, train every model family, judge and (if a part is blessed) push

**aggregate → train_forecast → (train_nextbasket ∥ train_value) → judge → is_pushable → push | keep_production**,
**drift_gate → push** (`train_value` and `push` are each a prepare task, a task per shard of customers
and the stage's own task, which joins the shards: below)

The chain up to `judge` is `recsys.flow.RETRAIN`: the same stages as `trendrec demo` (which runs them in
that order) and the `trendrec_pipeline` DAG (wired the same way). Here each stage waits only for the stages
`recsys.flow.upstream_of` names: `train_nextbasket` and `train_value_prepare` both start when
`train_forecast` is done (it makes the training run they write into), so two workers train the two
customer families side by side, and `judge` waits for both.

* Scheduled on the **`trendrec_raw_events`** asset (every successful `trendrec_ingest` run), or
  weekly, or either: set `TRENDREC_RETRAIN_SCHEDULE` to `asset` (default), `weekly` (Mondays
  03:00 UTC) or `asset_or_weekly` where the DAG processor runs.
* The training stages write into one training run, `models/runs/<run key>/`. The run key is the logical date
  (`20111210T000000`) for time-scheduled, manual and backfill runs. Asset-triggered runs have no
  logical date in Airflow 3, so their key is the run id with unsafe characters replaced by `_`
  (`asset_triggered__2026-11-23T05_00_00.123456_00_00`); clearing a run keeps its run id. Either
  way a re-run reuses each part whose settings and data are unchanged, its verdict and its registry
  version: it changes nothing in the store.
* `train_forecast`, `train_nextbasket` (the LSTMRecommender) and `train_value` (BG/NBD + Gamma-Gamma,
  an LSTM with a ZILN output, their ensemble) each train one part of the run, each into its own folder of
  the run (built beside it and switched in whole) and its own TensorBoard folder, so the two customer
  families never write the same file of the run; `judge` compares each part with its baselines (and
  production) and writes one verdict per part.
* The customer stages run in `customers.shards` shards of customers (a stable hash of the id), one task
  instance per shard (dynamic task mapping), which workers run side by side: `train_value_prepare`
  fits the value models, `train_value_shard` forecasts one shard's customers, `train_value` joins the
  forecast; `push_prepare` names the next-basket model that ships, `push_shard` scores one shard's
  customers (their histories only) and `push` joins the scores into the version.
* `is_pushable` branches on the verdicts: `push` versions the run's parts as the production release
  and updates the **`trendrec_production_model`** asset (which schedules `trendrec_rerank`) when at
  least one part is blessed; each part of the version is what its verdict ships (the run's model,
  production's part, or the family's baseline). A run with no part blessed, or already pushed, leaves
  production and the asset alone. Rollback moves every part together.
* `drift_gate` runs `trendrec drift` (the newest week against production's training data) beside the
  training: when a check fails the task fails with each failed check and its column in its log, and
  `push_prepare`, its shards and `push` do not run (upstream failed): the version is not promoted. Set the `ignore_drift` param
  (`--conf '{"ignore_drift": true}'`) to push one run anyway, or `monitor.drift_gate = false` in the config.
* Params: `config`, `store`, `horizon` (days forecast; empty = the config's `model.horizon`), `ignore_drift`.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from pipeline.orchestration import (
    PARAMS,
    PRODUCTION_MODEL,
    RAW_EVENTS,
    default_args,
    log_failure,
    run_key,
    stage_graph,
    task_id,
)
from recsys.flow import RETRAIN, stage, upstream_of

RETRAIN_STAGES = tuple(stage(name) for name in RETRAIN)
PUSH = stage("push")

log = logging.getLogger(__name__)

RAW_EVENTS_ASSET = Asset(name=RAW_EVENTS)
PRODUCTION_MODEL_ASSET = Asset(name=PRODUCTION_MODEL)
WEEKLY = CronTriggerTimetable("0 3 * * 1", timezone="UTC")
SCHEDULES = {"asset": [RAW_EVENTS_ASSET], "weekly": WEEKLY,
             "asset_or_weekly": AssetOrTimeSchedule(timetable=WEEKLY, assets=[RAW_EVENTS_ASSET])}
SCHEDULE = os.environ.get("TRENDREC_RETRAIN_SCHEDULE", "asset")
if SCHEDULE not in SCHEDULES:
    raise ValueError(f"TRENDREC_RETRAIN_SCHEDULE={SCHEDULE!r}: expected one of {sorted(SCHEDULES)}")


def _run(stage: str, params: dict, upstream=None, part: str | None = None, **options):
    from pipeline.config import load_run_config
    from recsys import flow

    cfg = load_run_config(params["config"], params["store"], params["horizon"])
    if part is None:
        return flow.run_stage(stage, cfg, upstream, **options)
    return flow.run_step(stage, part, cfg, upstream, **options)


def _stage_task(step, part: str | None = None, **kwargs):
    """The task of a stage, or of one step of a sharded stage (prepare, shard, join: recsys.flow.Sharded)."""
    name = task_id(step.name, part)

    @task(task_id=name, execution_timeout=timedelta(minutes=step.timeout_minutes), **kwargs)
    def run_stage(upstream=None, params=None, logical_date=None, run_id=None):
        return _run(step.name, params, upstream, part, run_key=run_key(logical_date, run_id))

    return run_stage


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
    params={**{name: Param(**PARAMS[name]) for name in ("config", "store", "horizon")},
            "ignore_drift": Param(False, type="boolean", description="push even when a drift check fails (this run)")},
)
def trendrec_retrain():
    @task.branch
    def is_pushable(judged: dict) -> str:
        log.info("pushable=%s: %s", judged["pushable"], judged["push_reason"])
        return "push_prepare" if judged["pushable"] else "keep_production"

    @task  # a held push raises AirflowFailException: failed at once, no retry
    def drift_gate(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.config import load_run_config
        from recsys.monitor.gate import gate_drift

        gate = gate_drift(load_run_config(params["config"], params["store"], params["horizon"]),
                          ignore=bool(params.get("ignore_drift")))
        if gate["held"]:  # push is upstream_failed: production stays as it is
            raise AirflowFailException(f"push held back: {gate['reason']}")
        log.info("drift gate: %s", gate["reason"])
        return gate

    @task(outlets=[PRODUCTION_MODEL_ASSET], execution_timeout=timedelta(minutes=PUSH.timeout_minutes))
    def push(shards, params=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        result = _run("push", params, shards, "join", drift_checked=True)  # drift_gate, upstream, checked it
        if not result["pushed"]:  # already pushed by an earlier try of this run: no new model event
            raise AirflowSkipException(result["reason"])
        outlet_events[PRODUCTION_MODEL_ASSET].extra = {"version": result["version"], "previous": result["previous"]}
        return result

    @task
    def keep_production(judged: dict) -> str:
        log.info("production unchanged: %s", judged["push_reason"])
        return judged["push_reason"]

    summary = stage_graph(_stage_task, RETRAIN_STAGES, upstream_of)  # judge's output
    prepared = _stage_task(PUSH, "prepare")(summary)
    pushed = push(_stage_task(PUSH, "shard").expand(upstream=prepared))  # the push joins the scores' shards
    is_pushable(summary) >> [prepared, keep_production(summary)]
    drift_gate() >> prepared


trendrec_retrain()
