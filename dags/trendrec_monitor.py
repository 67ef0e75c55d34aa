"""
### trendrec_monitor — after each ingest: drift against the production version, and its live results

**drift · live_results** (the `recsys.flow.MONITOR` stages, independent of each other).

* Scheduled on the **`trendrec_raw_events`** asset: every successful `trendrec_ingest` run.
* `drift` compares the last 7 days of events with the 28 days before the production version's cut-off
  (`trendrec drift`: numeric PSI, categorical Jensen-Shannon, volume and repeated rows, schema, new and
  vanished segments, unknown customers and items, what the service and the batch could not score). The
  verdicts go to `monitor/drift/<day>.json` and TensorBoard (`runs/monitor/`); a failed check then
  fails the task, its reasons in the task log, so the run shows red where people look. Skipped while
  no model is in production.
* `live_results` judges the production version's push-time scores on each complete week since its
  cut-off, beside P-TopFreq and TIFU-kNN fitted at that cut-off (`trendrec live`), into
  `monitor/live-results.parquet` and TensorBoard; a week already judged is replaced, never doubled. When
  production then trails the best baseline `monitor.trailing_weeks` weeks in a row (default 2) the task
  fails with the reason and the fix, `trendrec models rollback`, which the failure callback logs.
* Params: `config`, `store`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

from pipeline.orchestration import PARAMS, RAW_EVENTS, default_args, log_failure
from recsys.flow import MONITOR

log = logging.getLogger(__name__)

RAW_EVENTS_ASSET = Asset(name=RAW_EVENTS)


def _run(name: str, params: dict) -> dict:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from pipeline.config import load_run_config
    from recsys import flow
    from recsys.monitor.gate import trailing_reason

    cfg = load_run_config(params["config"], params["store"])
    result = flow.run_stage(name, cfg)
    if flow.SKIPPED in result:
        raise AirflowSkipException(result[flow.SKIPPED])
    trailing = name == "live_results" and trailing_reason(cfg.store, cfg.monitor.trailing_weeks)
    if trailing:  # judged and recorded; failing the task puts the reason in the failure callback's line
        raise AirflowFailException(f"degraded: {trailing}")
    return result


def _monitor_task(step):
    @task(task_id=step.name, execution_timeout=timedelta(minutes=step.timeout_minutes))
    def run_monitor(params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        result = _run(step.name, params)
        if result.get("passed") is False:  # a drift check failed: recorded, then shown as a failed task
            reasons = [c["reason"] for c in result["checks"] if not c["passed"]]
            raise AirflowFailException(f"drift in {', '.join(result['failed'])}: " + "; ".join(reasons))
        return result

    return run_monitor


@dag(
    dag_id="trendrec_monitor",
    schedule=[RAW_EVENTS_ASSET],
    start_date=pendulum.datetime(2010, 12, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=1, timeout_minutes=30),
    on_failure_callback=log_failure,
    dagrun_timeout=timedelta(hours=2),
    tags=["trendrec", "monitoring"],
    doc_md=__doc__,
    params={name: Param(**PARAMS[name]) for name in ("config", "store")},
)
def trendrec_monitor():
    for step in MONITOR:
        _monitor_task(step)()


trendrec_monitor()
