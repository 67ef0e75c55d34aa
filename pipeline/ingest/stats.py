"""Statistics of what one committed ingest accepted: a small JSON record beside the store's raw files.

Written after each commit (``write_ingest_stats``), from the commit's own raw files with one DuckDB
pass (``SUMMARIZE``-like aggregates, no second read of the source), to
``monitor/ingest-stats/<digest>.json`` (``Store.ingest_stats``). The record holds:

- ``days``: per event day, rows, orders, customers (distinct known user ids), the guests' share
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
from pathlib import Path
from typing import Any

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
HOUR, WEEKDAY = "hour", "weekday"  # derived categorical columns: local hour of event_time, ISO weekday
CATEGORICAL = {s.SEGMENT: s.SEGMENT, HOUR: f"hour({s.EVENT_TIME})", WEEKDAY: f"isodow({s.EVENT_DATE}) - 1"}
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
    """Per day counts; an item is new on the first day it appears in ``earlier`` files or this commit
    (items are compared by their 64-bit hash: a collision among a shop's items is negligible here)."""
    seen = (f"SELECT hash({s.ITEM_ID}) AS h, {s.EVENT_DATE} AS d FROM read_parquet({[str(p) for p in earlier]!r}) "
            f"UNION ALL " if earlier else "")
    rows = con.execute(f"""
        WITH firsts AS (SELECT h, min(d) AS first FROM ({seen}SELECT hash({s.ITEM_ID}) AS h, {s.EVENT_DATE} AS d
                                                        FROM ev) GROUP BY h),
             fresh AS (SELECT first AS {s.EVENT_DATE}, count(*) AS new_items FROM firsts GROUP BY first),
             days AS (SELECT {s.EVENT_DATE}, count(*) AS n, count(DISTINCT {s.ORDER_ID}) AS o,
                             count(DISTINCT {s.USER_ID}) AS u, avg(({s.USER_ID} IS NULL)::INT) AS g,
                             count(DISTINCT {s.ITEM_ID}) AS i, count(DISTINCT {s.SEGMENT}) AS sg FROM ev GROUP BY 1)
        SELECT {s.EVENT_DATE}::VARCHAR, n, o, u, g, i, coalesce(new_items, 0) / i, sg
        FROM days LEFT JOIN fresh USING ({s.EVENT_DATE}) ORDER BY 1""").fetchall()
    keys = ("date", "rows", "orders", "customers", "guest_share", "items", "new_item_share", "segments")
    return [dict(zip(keys, row)) for row in rows]


def _numeric(con, column: str) -> dict[str, Any]:
    qs = con.execute(f"SELECT quantile_cont({column}, {list(QUANTILES)}), avg({column}), stddev_pop({column}), "
                     f"count({column}) FROM ev").fetchone()
    quantiles, mean, std, n = qs
    low, high = quantiles[1], quantiles[-2]
    width = (high - low) / BINS if high > low else 0.0
    counts = [0] * (BINS + 2)  # [below low] + BINS + [above high]
    if n:
        bucket = (f"CASE WHEN {column} < {low} THEN 0 WHEN {column} > {high} THEN {BINS + 1} "
                  + (f"ELSE least({BINS}, 1 + floor(({column} - {low}) / {width})::INT) END" if width
                     else "ELSE 1 END"))
        for b, c in con.execute(f"SELECT {bucket} AS b, count(*) FROM ev GROUP BY b").fetchall():
            counts[int(b)] = int(c)
    return {"count": int(n), "mean": mean, "std": std,
            "quantiles": dict(zip(map(str, QUANTILES), quantiles)) if n else {},
            "histogram": {"low": low, "high": high, "bins": BINS, "counts": counts}}


def _categorical(con, name: str, expr: str) -> dict[str, Any]:
    rows = con.execute(f"SELECT ({expr})::VARCHAR AS v, count(*) AS n FROM ev GROUP BY v "
                       f"ORDER BY n DESC, v").fetchall()
    total = sum(n for _, n in rows) or 1
    return {"distinct": len(rows), "top": [{"value": v, "share": n / total} for v, n in rows[:TOP]]}


def _schema(files: list[Path], mapping: dict[str, str] | None) -> dict[str, Any]:
    arrow = pq.read_schema(files[0])
    return {"columns": {f.name: str(f.type) for f in arrow}, "mapped_from": dict(mapping or {})}


def compute_stats(store: Store, digest: str, files: list[Path], mapping: dict[str, str] | None = None,
                  timezone: str = "UTC") -> dict[str, Any]:
    """The statistics record of the committed raw ``files`` of ingest ``digest``."""
    con = connect(store.tmp, MEMORY)
    try:
        con.execute(f"SET TimeZone = '{timezone}'")  # hour of day in the shop's zone, as event_date
        # read once: the per-file overhead of a glob over one file per day dominates re-reading it per query
        con.execute(f"CREATE TEMP TABLE ev AS SELECT {s.EVENT_TIME}, {s.EVENT_DATE}, {s.ORDER_ID}, {s.USER_ID}, "
                    f"{s.ITEM_ID}, {s.SEGMENT}, {s.QUANTITY}, {s.PRICE} FROM read_parquet({[str(p) for p in files]!r})")
        record = {"version": STATS_VERSION, "digest": digest, "rows": con.execute("SELECT count(*) FROM ev").fetchone()[0],
                  "days": _per_day(con, _earlier_files(store, files)),
                  "numeric": {c: _numeric(con, c) for c in NUMERIC},
                  "categorical": {n: _categorical(con, n, e) for n, e in CATEGORICAL.items()},
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
