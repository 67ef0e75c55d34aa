"""The landing folder a shop drops its daily event files into, and the per-run names the DAGs use.

Layout (one folder per calendar day, UTC, named by the logical date of the ingest run)::

    <landing>/2011-12-10/orders-eu.csv          any number of CSV, JSON lines or parquet files (gzip too)
    <landing>/2011-12-10/orders-us.parquet
    <landing>/2011-12-10/_SUCCESS               optional marker, written last by the producer

A day is "landed" when its folder holds at least one CSV/JSON lines/parquet file, or — when a marker name is
configured — when the marker exists; a marker alone marks a day without events (nothing to ingest). Names starting with "." are ignored, so a producer writes
``.name.tmp`` and renames it into place; a multi-file drop should use the marker so the sensor
never fires between two files. Each file is ingested as its own transaction keyed by its bytes,
so re-ingesting a day adds nothing.

    python -c "from pipeline.ingest.landing import day_files; print(day_files('landing', '2011-12-10'))"
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

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


def candidates_for(candidates_dir: str, day: datetime.date, default: str) -> Path:
    """``<candidates_dir>/<YYYY-MM-DD>.parquet`` when a folder is given, else the config's file."""
    if candidates_dir:
        return Path(candidates_dir).expanduser().resolve() / f"{day}.parquet"
    if not default:
        raise FileNotFoundError("no candidate lists: set the candidates_dir param or rerank.candidates")
    return Path(default)
