"""What an aggregate run recomputes: the committed ingests, the months their files touch, the top-N
segments, and whether the previous set can be kept in part (incremental) or not (full recompute).

    python -c "from pipeline.aggregate.plan import committed_files; from pipeline.store import Store; print(committed_files(Store('trendrec-data')))"
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import duckdb

from pipeline import schemas as s
from pipeline.store import Store, read_json

log = logging.getLogger(__name__)

STATE_FORMAT = 1  # the aggregate set's _state.json layout: another one means a full recompute


@dataclasses.dataclass
class Plan:
    """What this run recomputes from raw, and what it keeps from the previous set."""

    commits: dict[str, list[Path]]  # every committed ingest: digest -> its raw files
    top_n: int | None  # the setting this set is built with
    months: set[str]  # YYYY-MM months recomputed from raw
    kept: list[str] | None  # top-N segments, or None for every segment
    totals: dict[str, int]  # events per raw segment (only with top_n)
    old: dict | None  # the previous set's state when this run is incremental

    @property
    def files(self) -> list[str]:
        return sorted(str(f) for fs in self.commits.values() for f in fs if month_of(f) in self.months)


def month_of(raw_file: Path) -> str:
    return raw_file.parent.name.split("=", 1)[1][:7]  # raw/event_date=YYYY-MM-DD/part-....parquet


def committed_files(store: Store) -> dict[str, list[Path]]:
    commits = {}
    for path in sorted(store.commits.glob("*.json")) if store.commits.is_dir() else []:
        commits[path.stem] = [store.raw / rel for rel in read_json(path).get("files", [])]
    return commits


def _segment_totals(con: duckdb.DuckDBPyConnection, files: list[Path]) -> dict[str, int]:
    if not files:
        return {}
    sql = f"SELECT {s.SEGMENT}, count(*) FROM read_parquet($f, hive_partitioning = false) GROUP BY ALL"
    return dict(con.sql(sql, params={"f": [str(f) for f in files]}).fetchall())


def _top(totals: dict[str, int], n: int) -> list[str]:
    return sorted(sorted(totals, key=lambda seg: (-totals[seg], seg))[:n])  # ties: by name


def make_plan(con: duckdb.DuckDBPyConnection, old: dict | None, commits: dict, top_n: int | None) -> Plan | None:
    """Incremental when the previous set used the same settings and covers a subset of the commits."""
    if old and (old.get("format") != STATE_FORMAT or old.get("top_n") != top_n
                or not set(old["commits"]) <= set(commits)):
        log.info("aggregate settings or commits changed since the last run: full recompute")
        old = None
    new = sorted(set(commits) - set(old["commits"] if old else []))
    if old and not new:
        return None
    new_files = [f for d in new for f in commits[d]]
    totals, kept = {}, None
    if top_n:
        totals = dict(old["totals"]) if old else {}
        for seg, n in _segment_totals(con, new_files).items():
            totals[seg] = totals.get(seg, 0) + n
        kept = _top(totals, top_n)
        if old and kept != old["kept"]:
            log.info("the top %d segments changed: full recompute", top_n)
            old = None
    months = {month_of(f) for fs in (commits.values() if old is None else [new_files]) for f in fs}
    return Plan(commits, top_n, months, kept, totals, old)
