"""
### trendrec_ingest — one day's drop from the landing folder into the store

**wait_for_drop → ingest** (daily, logical date D = the day whose events are ingested).

* `wait_for_drop` is a sensor in *reschedule* mode (it frees its worker slot between pokes every
  5 minutes, gives up after 12 hours): it waits until `<landing>/<D>/` holds a CSV, JSON lines or
  parquet file (gzip too), or, when the `marker` param is set (e.g. `_SUCCESS`), until that marker
  exists (a folder with only the marker is a day without events: `ingest` is skipped and the asset is not updated).
* `ingest` ingests **only** the files of `<landing>/<D>/` (`pipeline.ingest.ingest.run_ingest`). Each
  file is one transaction keyed by its bytes, so a re-run of D adds nothing; a file that cannot be
  read or lacks a mapped column fails the task at once (no retry: bad input does not heal) with
  the file and column in the task log, and nothing of it becomes visible in the store.
* On success it updates the **`trendrec_raw_events`** asset (extra: the day and the row counts),
  which schedules `trendrec_retrain`.

The daily schedule uses data intervals: the run of D starts after D has ended. History is loaded
with `airflow backfill create --dag-id trendrec_ingest --from-date 2011-11-01 --to-date 2011-11-30`
(or `TRENDREC_CATCHUP=true`). Params: `config`, `store`, `landing`, `marker`.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, PokeReturnValue, dag, task

from pipeline.orchestration import PARAMS, RAW_EVENTS, default_args, log_failure

log = logging.getLogger(__name__)

RAW_EVENTS_ASSET = Asset(name=RAW_EVENTS)


@dag(
    dag_id="trendrec_ingest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2010, 12, 1, tz="UTC"),
    catchup=os.environ.get("TRENDREC_CATCHUP", "false").lower() == "true",
    max_active_runs=1,
    default_args=default_args(retries=2, timeout_minutes=60),
    on_failure_callback=log_failure,
    dagrun_timeout=timedelta(hours=14),
    tags=["trendrec", "ingest"],
    doc_md=__doc__,
    params={name: Param(**PARAMS[name]) for name in ("config", "store", "landing", "marker")},
)
def trendrec_ingest():
    @task.sensor(poke_interval=300, timeout=12 * 3600, mode="reschedule", execution_timeout=timedelta(minutes=5))
    def wait_for_drop(params=None, logical_date=None) -> PokeReturnValue:
        from pipeline.ingest.landing import day_dir, day_files, drop_complete

        if not params["landing"]:
            raise ValueError("trendrec_ingest: the `landing` param (or $TRENDREC_LANDING) is empty")
        if logical_date is None:
            raise ValueError("trendrec_ingest needs a logical date: the day whose drop it ingests")
        done = drop_complete(params["landing"], logical_date.date(), params["marker"])  # before listing
        files = day_files(params["landing"], logical_date.date(), params["marker"])
        log.info("%s: %d file(s) landed, complete=%s", day_dir(params["landing"], logical_date.date()),
                 len(files), done)
        return PokeReturnValue(is_done=done, xcom_value=[str(f) for f in files])

    @task(outlets=[RAW_EVENTS_ASSET])
    def ingest(files: list[str], params=None, logical_date=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from pipeline.config import load_run_config
        from pipeline.errors import TrendrecError
        from pipeline.ingest.landing import day_dir
        from recsys import flow

        folder = day_dir(params["landing"], logical_date.date())
        if not files:  # a marker-only drop: the shop had no events that day
            raise AirflowSkipException(f"{folder}: complete but empty, nothing to ingest")
        try:
            summary = flow.run_stage("ingest", load_run_config(params["config"], params["store"]), source=str(folder))
        except TrendrecError as exc:  # bad input does not heal by retrying: fail now, with the reason
            raise AirflowFailException(f"{folder}: {exc}") from exc
        outlet_events[RAW_EVENTS_ASSET].extra = {
            "day": str(logical_date.date()), "files": len(summary["files"]),
            "rows_accepted": summary["rows_accepted"], "rows_duplicate": summary["rows_duplicate"]}
        return summary

    ingest(wait_for_drop())


trendrec_ingest()
