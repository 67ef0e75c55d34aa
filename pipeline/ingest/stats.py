"""Statistics of what one committed ingest accepted: a small JSON record beside the store's raw files.

Written after each commit (``write_ingest_stats``), from the commit's own raw files with DuckDB (no
second read of the source; four scans, each of the few columns it needs) to
``monitor/ingest-stats/<digest>.json`` (``Store.ingest_stats``). The record holds:

- ``days``: per event day, rows, orders, customers (distinct known user ids; distinct counts are
  HyperLogLog estimates, within about 2 %), the guests' share
  (rows without a user id), items, the new items' share (of the day's distinct items, those not seen in
  the store's raw files of the ``LOOKBACK_DAYS`` days before nor on an earlier day of this commit) and
  segments;
- ``numeric``: per numeric column (quantity, price) the quantiles ``QUANTILES`` and a histogram of
  ``BINS`` equal-width bins between the 1st and 99th percentile (plus under/over counts);
- ``categorical``: per categorical column (segment, hour of day, weekday) its ``TOP`` most frequent
  values with their shares and the number of distinct values;
- ``schema``: the raw columns and types as written and the source columns they were mapped from.

The monitor (recsys.monitor) reads these records for the schema check and `trendrec status`; the drift
distances themselves are computed over the raw files of the two windows it compares.

    python -c "from pipeline.ingest.stats import ensure_ingest_stats; print(ensure_ingest_stats('s'))"
"""

from __future__ import annotations

import datetime
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.eventdb import connect
from pipeline.store import Store, read_json, write_json

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 20  # equal-width histogram bins between the 1st and 99th percentile
TOP = 20  # most frequent values kept per categorical column
LOOKBACK_DAYS = 90  # an item absent from the raw files of these days before a day counts as new on it
NUMERIC = (s.QUANTITY, s.PRICE)
HOUR, WEEKDAY = "hour", "weekday"  # derived categorical columns: local hour of event_time, weekday (0 = Monday)
STATS_VERSION = 1
MEMORY = "1GB"


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


def _per_day(con, earlier: list[Path]) -> list[dict[str, Any]]:
    """Per day counts (distinct ones by HyperLogLog: exact distinct counts per day cost four times the
    scan); an item is new on the first day it appears in ``earlier`` files or this commit (items compared
    by their 64-bit hash: a collision among a shop's items is negligible here)."""
    seen = (f"SELECT hash({s.ITEM_ID}) AS h, {s.EVENT_DATE} AS d FROM read_parquet({[str(p) for p in earlier]!r}) "
            f"UNION ALL " if earlier else "")
    fresh = dict(con.execute(f"""
        SELECT first::VARCHAR, count(*) FROM (
            SELECT h, min(d) AS first FROM ({seen}SELECT hash({s.ITEM_ID}) AS h, {s.EVENT_DATE} AS d FROM ev) GROUP BY h)
        GROUP BY first""").fetchall())
    rows = con.execute(f"""
        SELECT {s.EVENT_DATE}::VARCHAR, count(*), approx_count_distinct({s.ORDER_ID}),
               approx_count_distinct({s.USER_ID}), 1 - count({s.USER_ID}) / count(*),
               approx_count_distinct({s.ITEM_ID}), approx_count_distinct({s.SEGMENT})
        FROM ev GROUP BY 1 ORDER BY 1""").fetchall()
    keys = ("date", "rows", "orders", "customers", "guest_share", "items", "segments")
    days = [dict(zip(keys, row)) for row in rows]
    for day in days:
        day["new_item_share"] = min(1.0, fresh.get(day["date"], 0) / day["items"]) if day["items"] else 0.0
    return days


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.10g}")


def _numeric(con) -> dict[str, Any]:
    """Quantiles, mean and spread of every NUMERIC column in one scan, then their histograms in a second."""
    parts = ", ".join(f"quantile_cont({c}, {list(QUANTILES)}), avg({c}), stddev_pop({c}), count({c})" for c in NUMERIC)
    found = con.execute(f"SELECT {parts} FROM ev").fetchone()
    out, buckets = {}, []
    for k, column in enumerate(NUMERIC):
        # rounded: DuckDB's parallel sums may differ in the last bits from run to run; the record may not
        quantiles, mean, std, n = found[4 * k: 4 * k + 4]
        quantiles, mean, std = [_round(q) for q in quantiles or []], _round(mean), _round(std)
        low, high = (quantiles[1], quantiles[-2]) if n else (0.0, 0.0)
        width = (high - low) / BINS if high > low else 0.0
        inner = f"least({BINS}, 1 + floor(({column} - {low}) / {width})::INT)" if width else "1"
        buckets.append(f"CASE WHEN {column} < {low} THEN 0 WHEN {column} > {high} THEN {BINS + 1} ELSE {inner} END")
        out[column] = {"count": int(n), "mean": mean, "std": std,
                       "quantiles": dict(zip(map(str, QUANTILES), quantiles)) if n else {},
                       "histogram": {"low": low, "high": high, "bins": BINS, "counts": [0] * (BINS + 2)}}
    sets = ", ".join(f"(b{k})" for k in range(len(NUMERIC)))
    picks = ", ".join(f"{b} AS b{k}" for k, b in enumerate(buckets))
    for row in con.execute(f"SELECT *, count(*) FROM (SELECT {picks} FROM ev) GROUP BY GROUPING SETS ({sets})").fetchall():
        k = next(i for i, v in enumerate(row[:-1]) if v is not None)
        out[NUMERIC[k]]["histogram"]["counts"][int(row[k])] = int(row[-1])
    return out


def _top(counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"distinct": len(ranked), "top": [{"value": v, "share": n / total} for v, n in ranked[:TOP]]}


def _categorical(con, timezone: str) -> dict[str, Any]:
    """Segment, local hour and weekday in one scan: hours are counted in UTC per day and moved by the
    zone's offset on that day, in whole hours (no per-row time-zone conversion)."""
    segments: dict[str, int] = {}
    hours: dict[str, int] = {}
    weekdays: dict[str, int] = {}
    zone = ZoneInfo(timezone)
    rows = con.execute(f"""SELECT {s.SEGMENT}, {s.EVENT_DATE}, hour({s.EVENT_TIME}::TIMESTAMP) AS h, count(*) FROM ev
                           GROUP BY GROUPING SETS (({s.SEGMENT}), ({s.EVENT_DATE}, h))""").fetchall()
    for segment, day, hour, n in rows:
        if segment is not None:
            segments[segment] = segments.get(segment, 0) + n
            continue
        noon = datetime.datetime.combine(day, datetime.time(12), zone)
        local = str((hour + int(noon.utcoffset().total_seconds() // 3600)) % 24)
        hours[local] = hours.get(local, 0) + n
        weekdays[str(day.weekday())] = weekdays.get(str(day.weekday()), 0) + n
    return {s.SEGMENT: _top(segments), HOUR: _top(hours), WEEKDAY: _top(weekdays)}


def _schema(files: list[Path], mapping: dict[str, str] | None) -> dict[str, Any]:
    arrow = pq.read_schema(files[0])
    return {"columns": {f.name: str(f.type) for f in arrow}, "mapped_from": dict(mapping or {})}


def compute_stats(store: Store, digest: str, files: list[Path], mapping: dict[str, str] | None = None,
                  timezone: str = "UTC") -> dict[str, Any]:
    """The statistics record of the committed raw ``files`` of ingest ``digest``."""
    # scratch in the system's temp dir: an ingest leaves nothing in the store but its commit and this record
    con = connect(Path(tempfile.gettempdir()), MEMORY)
    try:
        con.execute("SET enable_progress_bar = false")
        # a view: each query reads only its columns (copying them into a table cost more than a re-read)
        con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet({[str(p) for p in files]!r})")
        days = _per_day(con, _earlier_files(store, files))
        record = {"version": STATS_VERSION, "digest": digest, "rows": sum(d["rows"] for d in days), "days": days,
                  "numeric": _numeric(con), "categorical": _categorical(con, timezone),
                  "schema": _schema(files, mapping)}
    finally:
        con.close()
    return record


def write_ingest_stats(store: Store, digest: str, mapping: dict[str, str] | None = None,
                       timezone: str = "UTC") -> Path | None:
    """Write the statistics record of committed ingest ``digest`` (atomically; the same record on a
    re-run); None when the commit holds no raw file."""
    commit = read_json(store.commits / f"{digest}.json")
    files = [store.raw / rel for rel in commit.get("files", [])]
    if not files:
        return None
    record = compute_stats(store, digest, files, mapping, timezone)
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
