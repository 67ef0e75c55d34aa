"""Statistics of what one committed ingest accepted: a small JSON record beside the store's raw files.

Counted in the ingest's own pass (pipeline.ingest.tally: the staging writer tallies each batch with the
id hashes its event keys were built from; the dedup pass recounts a day that lost duplicates) and
written after the commit to ``monitor/ingest-stats/<digest>.json`` (``Store.ingest_stats``). A commit
without a record (a store from before statistics, an ingest killed between its commit and its record)
gets one from its committed raw files, read in batches and counted by the same code. The record holds:

- ``days``: per event day, rows, orders, customers (distinct known user ids; distinct counts are
  HyperLogLog estimates, within about 2 %), the guests' share (rows without a user id), items, the new
  items' share (of the day's distinct items, those not seen in the store's raw files of the
  ``LOOKBACK_DAYS`` days before nor on an earlier day of this commit) and segments (exact);
- ``numeric``: per numeric column (quantity, price) the exact count, mean and spread, and the quantiles
  ``tally.QUANTILES`` and a histogram of ``tally.BINS`` equal-width bins between the 1st and 99th percentile (plus
  under/over counts) from a bottom-k sample of ``tally.SAMPLE`` rows by event-key hash (``sample``: its
  size; every row of a smaller commit, when the counts are exact);
- ``categorical``: per categorical column (segment, hour of day, weekday) its ``tally.TOP`` most frequent
  values with their shares and the number of distinct values (exact);
- ``schema``: the raw columns and types as written and the source columns they were mapped from.

The monitor (recsys.monitor) reads these records for the schema check and `trendrec status`; the drift
distances themselves are computed over the raw files of the two windows it compares.

    python -c "from pipeline.ingest.stats import ensure_ingest_stats; print(ensure_ingest_stats('s'))"
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import IngestConfig
from pipeline.ingest.tally import Tally, count_files
from pipeline.store import Store, read_json, write_json

log = logging.getLogger(__name__)

LOOKBACK_DAYS = 90  # an item absent from the raw files of these days before a day counts as new on it
STATS_VERSION = 2  # 2: counted in the ingest's pass; numeric quantiles and histograms from a bottom-k sample


def _day_of(path: Path) -> datetime.date | None:
    name = path.parent.name
    if not name.startswith(f"{s.EVENT_DATE}="):
        return None
    try:
        return datetime.date.fromisoformat(name.split("=", 1)[1])
    except ValueError:
        return None


def _earlier_files(store: Store, own: list[Path]) -> list[Path]:
    """Committed raw files of other commits dated in the LOOKBACK_DAYS before the commit's first day."""
    days = [d for d in map(_day_of, own) if d is not None]
    if not days:
        return []
    start, end, mine = min(days) - datetime.timedelta(days=LOOKBACK_DAYS), max(days), set(own)
    return [p for p in store.committed_raw_files()
            if p not in mine and (d := _day_of(p)) is not None and start <= d <= end]


def _schema(files: list[Path], mapping: dict[str, str] | None) -> dict[str, Any]:
    arrow = pq.read_schema(files[0])
    return {"columns": {f.name: str(f.type) for f in arrow}, "mapped_from": dict(mapping or {})}


def compute_stats(store: Store, digest: str, files: list[Path], mapping: dict[str, str] | None = None,
                  timezone: str = "UTC", tally: Tally | None = None,
                  event_key: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The statistics record of the committed raw ``files`` of ingest ``digest``: from the ingest's own
    ``tally``, or counted from the files (``event_key``: the fields its rows' keys were built from)."""
    if tally is None:
        tally = count_files(files, tuple(event_key or IngestConfig().event_key))
    counted = tally.record(_earlier_files(store, files), timezone)
    return {"version": STATS_VERSION, "digest": digest, "rows": sum(d["rows"] for d in counted["days"]),
            **counted, "schema": _schema(files, mapping)}


def write_ingest_stats(store: Store, digest: str, mapping: dict[str, str] | None = None,
                       timezone: str = "UTC", tally: Tally | None = None) -> Path | None:
    """Write the statistics record of committed ingest ``digest`` (atomically; the same record on a
    re-run); None when the commit holds no raw file."""
    commit = read_json(store.commits / f"{digest}.json")
    files = [store.raw / rel for rel in commit.get("files", [])]
    if not files:
        return None
    record = compute_stats(store, digest, files, mapping, timezone, tally, commit.get("event_key"))
    record["source"] = os.path.basename(str(commit.get("source", "")))
    return write_json(record, store.ingest_stats / f"{digest}.json")


def ensure_ingest_stats(store: Store | str | os.PathLike, mapping: dict[str, str] | None = None,
                        timezone: str = "UTC") -> list[str]:
    """Write the records of committed ingests that have none (stores from before statistics, or an
    ingest killed between its commit and its record); the digests written."""
    store = store if isinstance(store, Store) else Store(store)
    written = []
    for commit in sorted(store.commits.glob("*.json")) if store.commits.is_dir() else []:
        if not (store.ingest_stats / commit.name).exists():
            if write_ingest_stats(store, commit.stem, mapping, timezone) is not None:
                written.append(commit.stem)
    return written


def read_ingest_stats(store: Store | str | os.PathLike) -> list[dict[str, Any]]:
    """Every statistics record of the store, ordered by their first day."""
    store = store if isinstance(store, Store) else Store(store)
    records = [read_json(p) for p in sorted(store.ingest_stats.glob("*.json"))] if store.ingest_stats.is_dir() else []
    return sorted(records, key=lambda r: (r["days"][0]["date"] if r.get("days") else "", r["digest"]))
