"""The landing folder a shop drops its daily event files into, and the per-run names the DAGs use.

Layout (one folder per calendar day, UTC, named by the logical date of the ingest run)::

    <landing>/2011-12-10/orders-eu.csv          any number of CSV or parquet files
    <landing>/2011-12-10/orders-us.parquet
    <landing>/2011-12-10/_SUCCESS               optional marker, written last by the producer

A day is "landed" when its folder holds at least one CSV/parquet file, or — when a marker name is
configured — when the marker exists; a marker alone marks a day without events (nothing to ingest). Names starting with "." are ignored, so a producer writes
``.name.tmp`` and renames it into place; a multi-file drop should use the marker so the sensor
never fires between two files. Each file is ingested as its own transaction keyed by its bytes,
so re-ingesting a day adds nothing.

    python -c "from pipeline.ingest.landing import day_files; print(day_files('landing', '2011-12-10'))"
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from pathlib import Path

from pipeline.config import Config, load_config
from pipeline.ingest.ingest import IngestError, resolve_sources


def day_dir(landing: str | os.PathLike, day: datetime.date | str) -> Path:
    """The folder of one day's drop: ``<landing>/<YYYY-MM-DD>``."""
    return Path(landing).expanduser().resolve() / str(day)


def drop_complete(landing: str | os.PathLike, day: datetime.date | str, marker: str = "") -> bool:
    """True once ``day`` has landed: its marker exists, or (no marker configured) a file is there."""
    if marker:
        return (day_dir(landing, day) / marker).is_file()
    return bool(day_files(landing, day))


def day_files(landing: str | os.PathLike, day: datetime.date | str, marker: str = "") -> list[Path]:
    """The event files of ``day`` (sorted), or [] while the drop is incomplete or absent."""
    folder = day_dir(landing, day)
    if not folder.is_dir() or (marker and not (folder / marker).is_file()):
        return []
    try:
        return resolve_sources(folder)  # the same file rules as `trendrec ingest <folder>`
    except IngestError:
        return []


def load_run_config(config: str = "", store: str = "", horizon: int | None = None) -> Config:
    """The config file with a DAG run's overrides (store directory, forecast horizon) applied."""
    cfg = load_config(config or None, store=store or None)
    if horizon:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, horizon=int(horizon)))
    return cfg


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


def candidates_for(candidates_dir: str, day: datetime.date, default: str) -> Path:
    """``<candidates_dir>/<YYYY-MM-DD>.parquet`` when a folder is given, else the config's file."""
    if candidates_dir:
        return Path(candidates_dir).expanduser().resolve() / f"{day}.parquet"
    if not default:
        raise FileNotFoundError("no candidate lists: set the candidates_dir param or rerank.candidates")
    return Path(default)
