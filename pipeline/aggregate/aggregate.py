"""Roll raw events up by segment and day, and into a month x weekday profile, incrementally.

aggregates/daily.parquet/year_month=YYYY-MM/part-0.parquet (hive-partitioned; read the directory with
``pipeline.store.read_parquet``, DuckDB, pandas or Spark) holds one row per (segment, date) with year,
month, weekday, events, quantity, revenue and distinct users and items of that day; days without
sales inside a segment's active range are zero rows, so every series is regular.
aggregates/month_weekday.parquet holds per (segment, month, weekday) the number of days, the totals
over them and the means per day, plus one ``schemas.ALL_SEGMENTS`` row per cell over every segment
(its distinct users and items are counted across segments, per day).

Incremental: the set records which ingest commits it covers (``_state.json``). A new commit's files
name their days, so only the months they touch are recomputed from raw, plus the months where a
segment's active range grew (their zero rows); other partitions are hard-linked from the previous set.
A day's raw files hold all of that day's events, so per-day distinct counts stay exact. If the
top-N segments change, or the settings do, everything is recomputed.

Engine: DuckDB, the fastest of DuckDB, polars, pandas and pyarrow here, and it honours a memory
limit. Nearly all the time goes into the exact distinct users and items, per (segment, day) and per
day over every segment (GROUPING SETS), whose hash tables are about as large as the rows. So raw
files are scanned in small batches of whole days (BATCH_BYTES): a batch's distinct counts are final,
its hash tables stay near cache size, nothing spills, and peak RSS depends on the batch, not on the
number of events. Batches run side by side, one single-threaded query per core (``threads``). The
measurements behind these choices, and what was tried and was not faster: benchmarks/README.md.
The SQL lives in pipeline/aggregate/sql.py, the choice of what to recompute in pipeline/aggregate/plan.py.

    trendrec aggregate --config trendrec.toml
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.aggregate.plan import STATE_FORMAT, Plan, committed_files, make_plan
from pipeline.aggregate.sql import DAYS_SQL, MONTH_WEEKDAY_SQL, ZERO_FILL_SQL
from pipeline.snapshots import building, link_or_copy, locked, prune, prune_aggregate_sets
from pipeline.store import (DAILY_NAME, MONTH_WEEKDAY_NAME, Store, aggregate_set, current_aggregates,
                            daily_partition, read_json, write_json)

log = logging.getLogger(__name__)

STATE_FILE = "_state.json"
ALL_DAYS_FILE = "_all_days.parquet"  # per-day totals over every segment, for the __all__ rows
BATCH_BYTES = 4 << 20  # compressed raw parquet per query: small hash tables stay in cache (benchmarks/README.md)


def _settings(cfg: Config, top_n: int | None) -> dict:
    """Settings from ``cfg.aggregate`` (top_n, memory_limit, threads); a given ``top_n`` wins."""
    section = cfg.aggregate
    n = top_n if top_n is not None else section.top_n
    if n is not None and n < 0:
        raise TrendrecError(f"aggregate top_n must be >= 0 (0 = every segment), got {n}")
    return {"top_n": n or None, "memory_limit": section.memory_limit,
            "threads": section.threads or os.cpu_count() or 1}


def _connect(spill: Path, settings: dict) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"memory_limit": settings["memory_limit"], "threads": settings["threads"],
                                  "temp_directory": str(spill), "preserve_insertion_order": False})


@contextmanager
def _spill_folder(store: Store) -> Iterator[Path]:
    """DuckDB's spill folder of this run, aggregates/_spill/<id>/ (flock-ed while it runs), after removing
    those killed runs left; removed when the run ends."""
    with locked(store.aggregates / ".spill.lock"):
        prune(store.aggregates_spill, "", set())  # skips a folder a live run holds
    with building(store.aggregates_spill, "") as folder:
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _scan_days(con: duckdb.DuckDBPyConnection, plan: Plan, workers: int) -> tuple[pa.Table, pa.Table]:
    """Per (segment, day) and per day (all segments) measures of the plan's months, from raw."""
    segment = s.SEGMENT
    if plan.kept is not None:
        segment = f"CASE WHEN list_contains($kept, {s.SEGMENT}) THEN {s.SEGMENT} ELSE '{s.OTHER_SEGMENT}' END"
    kept = {"kept": plan.kept} if plan.kept is not None else {}
    sql = DAYS_SQL.format(segment=segment)

    def scan(batch: list[str]) -> pa.Table:
        cursor = con.cursor()  # one query per thread; cursors share the database and its settings
        try:
            return cursor.sql(sql, params={"files": batch} | kept).to_arrow_table()
        finally:
            cursor.close()

    with _single_threaded(con), ThreadPoolExecutor(workers) as pool:
        days = pa.concat_tables(pool.map(scan, _batches(plan.files)))
    is_all = pc.is_null(days[s.SEGMENT])
    seg_days, all_days = days.filter(pc.invert(is_all)), days.filter(is_all).drop_columns([s.SEGMENT])
    raw_names = plan.totals if plan.kept is not None else pc.unique(seg_days[s.SEGMENT]).to_pylist()
    clash = set(s.RESERVED_SEGMENTS) & set(raw_names)
    if clash:
        raise TrendrecError(f"segment name(s) {sorted(clash)} in raw/ are reserved for aggregates; rename "
                            "them in the ingest config (segment_rules) and run `trendrec ingest` again")
    return seg_days, all_days


@contextmanager
def _single_threaded(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB threads = 1 for the block: batches run side by side, one per core, instead."""
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


def _batches(files: list[str]) -> list[list[str]]:
    """Whole days of raw files in batches of about BATCH_BYTES: a day is self-contained, so each
    batch is an independent query whose hash tables fit in memory (no spilling), whatever the total."""
    batches: list[list[str]] = [[]]
    size, day = 0, None
    for f in files:  # sorted, so a day's files are adjacent
        this_day = Path(f).parent.name
        if this_day != day and size >= BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(f)
        size, day = size + os.path.getsize(f), this_day
    return [b for b in batches if b]


def _months(lo: date, hi: date) -> set[str]:
    out, y, m = set(), lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        out.add(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _ranges(spans: list[tuple[str, date, date]], old: dict | None) -> tuple[dict[str, list[date]], set[str]]:
    """Active range per segment (previous ranges widened by the new days) and the months they grew into."""
    previous = (old or {}).get("ranges", {})
    ranges = {k: [date.fromisoformat(lo), date.fromisoformat(hi)] for k, (lo, hi) in previous.items()}
    grown: set[str] = set()
    for seg, lo, hi in spans:
        if seg not in ranges:
            ranges[seg] = [lo, hi]
            grown |= _months(lo, hi)
            continue
        olo, ohi = ranges[seg]
        if lo < olo:
            grown |= _months(lo, olo)
        if hi > ohi:
            grown |= _months(ohi, hi)
        ranges[seg] = [min(lo, olo), max(hi, ohi)]
    return ranges, grown


def _old_days(old_dir: Path, months: set[str]) -> list[pa.Table]:
    """Non-zero rows of the previous set's partitions for ``months`` (a zero row has no events)."""
    out = []
    for ym in sorted(months):
        path = daily_partition(old_dir / DAILY_NAME, ym)
        if path.exists():
            t = pq.ParquetFile(path).read()
            out.append(t.filter(pc.greater(t[s.EVENTS], 0)).select([s.SEGMENT, s.DATE, *s.DAILY_MEASURES]))
    return out


def _write_daily(con: duckdb.DuckDBPyConnection, days: pa.Table, ranges: dict, rebuild: set[str],
                 old_dir: Path | None, new_dir: Path) -> None:
    """Zero-fill and write the ``rebuild`` months; hard-link every other month from ``old_dir``."""
    # a temp table built by DuckDB from lists (the run's connection drops it): an Arrow table from Python
    # objects would import pandas, 1-2 s of start-up
    con.execute(f"CREATE OR REPLACE TEMP TABLE ranges AS SELECT unnest($seg) AS {s.SEGMENT}, "
                "unnest($lo) AS lo, unnest($hi) AS hi",
                {"seg": list(ranges), "lo": [r[0] for r in ranges.values()], "hi": [r[1] for r in ranges.values()]})

    def write(ym: str, part: pa.Table) -> None:
        target = daily_partition(new_dir / DAILY_NAME, ym)
        target.parent.mkdir(parents=True)
        pq.write_table(part.cast(s.DAILY_SCHEMA), target, compression="zstd")

    # One month per query: memory follows a month, not the table (2,000 segments: 1.5 M rows, +0.35 GiB
    # at once). Parquet encoding releases the GIL, so a month is written while the next one is filled.
    with _registered(con, days=days), ThreadPoolExecutor(1, thread_name_prefix="trendrec-daily") as pool:
        pending = []
        for ym in sorted(rebuild):
            year, month = map(int, ym.split("-"))
            start, end = date(year, month, 1), date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
            part = con.sql(ZERO_FILL_SQL, params={"start": start, "end": end}).to_arrow_table()
            pending.append(pool.submit(write, ym, part))
            if len(pending) > 1:
                pending.pop(0).result()
        for done in pending:
            done.result()
    if old_dir is not None:
        for old in sorted((old_dir / DAILY_NAME).glob("year_month=*/part-0.parquet")):
            target = new_dir / DAILY_NAME / old.parent.name / old.name
            if not target.exists():  # an unchanged month: its file is immutable, share it
                target.parent.mkdir(parents=True)
                link_or_copy(old, target)


def _all_days(new: pa.Table, old_dir: Path | None, months: set[str]) -> pa.Table:
    """All-segment days: the previous ones outside the recomputed months, plus the new ones."""
    parts = [new.select([s.DATE, *s.DAILY_MEASURES])]
    if old_dir is not None:
        prev = pq.ParquetFile(old_dir / ALL_DAYS_FILE).read()
        keep = pc.invert(pc.is_in(pc.strftime(prev[s.DATE], "%Y-%m"), pa.array(sorted(months))))
        parts.append(prev.filter(keep).cast(parts[0].schema))
    return pa.concat_tables(parts).sort_by(s.DATE)


def _month_weekday(con: duckdb.DuckDBPyConnection, daily_files: list[str], all_days: pa.Table) -> pa.Table:
    with _registered(con, all_days=all_days):
        table = con.sql(MONTH_WEEKDAY_SQL, params={"daily": daily_files}).to_arrow_table()
    return table.cast(s.MONTH_WEEKDAY_SCHEMA)


def _spans(con: duckdb.DuckDBPyConnection, seg_days: pa.Table) -> list[tuple[str, date, date]]:
    """First and last day with events per segment (DuckDB: pyarrow's group_by would import pandas)."""
    with _registered(con, seg_days=seg_days):
        sql = f"SELECT {s.SEGMENT}, min({s.DATE}), max({s.DATE}) FROM seg_days GROUP BY ALL"
        return con.sql(sql).fetchall()


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, **tables: pa.Table) -> Iterator[None]:
    """Arrow tables visible to SQL under their keyword names for the block (no copy)."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def _build(con: duckdb.DuckDBPyConnection, plan: Plan, old_dir: Path | None, new_dir: Path,
           workers: int) -> dict:
    """Write the daily partitions, the month x weekday table and the state into ``new_dir``."""
    old_dir = old_dir if plan.old is not None else None
    seg_days, all_new = _scan_days(con, plan, workers)
    ranges, grown = _ranges(_spans(con, seg_days), plan.old)
    extra = grown - plan.months  # zero rows only: a range grew into a month without new events
    old_rows = _old_days(old_dir, extra) if old_dir is not None else []
    days = pa.concat_tables([seg_days, *(t.cast(seg_days.schema) for t in old_rows)])
    rebuild = plan.months | extra
    _write_daily(con, days, ranges, rebuild, old_dir, new_dir)
    all_days = _all_days(all_new, old_dir, plan.months)
    pq.write_table(all_days, new_dir / ALL_DAYS_FILE, compression="zstd")
    daily_files = sorted(str(f) for f in (new_dir / DAILY_NAME).glob("year_month=*/part-0.parquet"))
    profile = _month_weekday(con, daily_files, all_days)
    pq.write_table(profile, new_dir / MONTH_WEEKDAY_NAME, compression="zstd")
    rows, first, last = con.sql(f"SELECT count(*), min({s.DATE}), max({s.DATE}) FROM read_parquet($f)",
                                params={"f": daily_files}).fetchall()[0]
    state = {"format": STATE_FORMAT, "top_n": plan.top_n,
             "commits": sorted(plan.commits), "kept": plan.kept, "totals": plan.totals,
             "ranges": {k: [str(lo), str(hi)] for k, (lo, hi) in sorted(ranges.items())},
             "daily_rows": rows, "segments": len(ranges), "months_recomputed": len(rebuild),
             "first_date": str(first), "last_date": str(last)}
    write_json(state, new_dir / STATE_FILE)
    return state


def run_aggregate(cfg: Config, *, top_n: int | None = None) -> dict:
    """Bring aggregates/ up to date with every committed ingest (incrementally when possible).

    ``top_n`` keeps the N segments with the most events and folds the rest into
    ``schemas.OTHER_SEGMENT``; 0 or None keeps every segment (config key ``aggregate.top_n``).
    """
    settings = _settings(cfg, top_n)
    store = Store(cfg.store).ensure()
    commits = committed_files(store)
    if not commits:
        raise TrendrecError(f"no ingested events in {store.raw}: run `trendrec ingest` first")
    started = time.monotonic()
    prune_aggregate_sets(store)  # what killed runs left; a live run's set stays
    old_dir = current_aggregates(store)
    old = read_json(old_dir / STATE_FILE) if old_dir and (old_dir / STATE_FILE).exists() else None
    with _spill_folder(store) as spill:
        con = _connect(spill, settings)
        try:
            plan = make_plan(con, old, commits, settings["top_n"])
            if plan is None:
                state, mode = {**old, "months_recomputed": 0}, "unchanged"
            else:
                mode = "incremental" if plan.old is not None else "full"
                with aggregate_set(store) as new_dir:
                    state = _build(con, plan, old_dir, new_dir, settings["threads"])
        finally:
            con.close()
    summary = {"daily_path": str(store.daily_path), "month_weekday_path": str(store.month_weekday_path),
               "raw_files": sum(len(f) for f in commits.values()), "mode": mode,
               **{k: state[k] for k in ("daily_rows", "segments", "months_recomputed", "first_date",
                                        "last_date")},
               "seconds": round(time.monotonic() - started, 2)}
    log.info("aggregate (%s): %d daily rows, %d months recomputed", mode, summary["daily_rows"],
             summary["months_recomputed"])
    return summary
