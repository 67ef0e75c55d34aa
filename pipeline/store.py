"""Every path and write of the store lives here; its tables are read with pipeline.tables.

The store is one directory::

    raw/event_date=YYYY-MM-DD/part-<digest>.parquet   validated events, one file per ingest
    raw/_commits/<digest>.json                        the ingests raw/ holds, with their counts
    .snapshots/raw-<id>/                              what raw/ (a symlink) shows: one per ingest commit
    .keys/raw/event_date=YYYY-MM-DD/<digest>.parquet  event keys of raw files (ingest's dedup; not hive data)
    .keys/raw.lock                                    held by an ingest while it deduplicates and commits
    .keys/drop-bases/<digest>/event_date=YYYY-MM-DD.u64  field hashes of a file of a multi-file drop
    .tmp/                                             scratch of running stages (DuckDB spill, temp parts)
    .staging/ingest/<digest>/ (or partial-<ns>-...)   an ingest's files before its commit (pipeline.ingest.staging)
    quarantine/<digest>.parquet                       refused rows with their reason
    aggregates/daily.parquet/year_month=YYYY-MM/part-0.parquet   hive-partitioned daily table
    aggregates/month_weekday.parquet                  month x weekday profile (one small file)
    aggregates/_versions/<id>/                        the table sets; aggregates/_current points at one
    aggregates/_spill/<id>/                           DuckDB spill of a running `trendrec aggregate` (flock-ed)
    models/<version>/, models/production.json         the registry
    models/runs/<run id>/<family>/                    training runs: what each model family trained and its verdict
    runs/<run id>/                                    TensorBoard logs
    tune/<id>/trials.json, best.toml                  hyper-parameter searches (trendrec tune)
    backtest/<run id>.json                            rolling-origin backtests (trendrec backtest)
    reranked/<name>.parquet                           re-ranked candidate lists
    report/                                           PNG plots and an HTML page (trendrec report)
    monitor/                                          what watches a shop after the push (recsys.monitor)
    monitor/ingest-stats/<digest>.json                statistics of what each committed ingest accepted
    monitor/skew/<day>/<source>-<host>-<pid>-<ns>.json  what the service could not score, per day
    monitor/skew/<day>/rerank-<digest>.json           what the batch rerank into one output could not score
    monitor/drift/<check time>.json                   `trendrec drift` verdicts, one record per run
    monitor/live-results.parquet                      each production version's live results, per week

Writes go to a temporary file in the same directory and are renamed into place, so a crash never
leaves a half-written file behind. Paths handed in by users are kept inside the store.

raw/ is a symlink to an immutable snapshot directory. An ingest commit builds the next snapshot (hard
links to every file of the current one, plus the new files and commit record) and replaces the
symlink with one rename (``raw_commit``), so a DuckDB or Spark glob over ``raw/**/*.parquet`` sees
every file of a commit or none, even when the ingest is killed mid-commit (pipeline.snapshots).

The aggregate tables are written as a set into a fresh aggregates/_versions/<id>/ directory; then the
symlink aggregates/_current is replaced by a new one with one rename. aggregates/daily.parquet and
month_weekday.parquet are fixed symlinks into _current, so a reader opening them sees the whole old
set or the whole new one, never a mix or a half-written file. The previous set is kept until the
next run, so a reader that resolved it just before the swap can finish. Both switches (``raw_commit``,
``aggregate_set``) live in pipeline.snapshots; this module re-exports them.

    python -c "from pipeline.store import Store; print(Store('./trendrec-data').raw)"
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import StoreError
# re-exported with StoreError: callers import the set switching and the table readers from pipeline.store
from pipeline.snapshots import (RAW_SNAPSHOT, aggregate_set, building, current_aggregates, fsync,  # noqa: F401
                                locked, prune, raw_commit, settle_raw)

# the table readers (pipeline.tables) import pandas, about 1.5 s of every CLI start-up: loaded on first use,
# so a command that reads no table with them (`trendrec aggregate`, tests/aggregate checks) never pays for it
_TABLE_READERS = ("check_trends", "read_daily", "read_events", "read_parquet", "read_trends")


def __getattr__(name: str) -> Any:
    if name in _TABLE_READERS:
        from pipeline import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


log = logging.getLogger(__name__)

AREAS = ("raw", "quarantine", "aggregates", "models", "runs", "reranked", "monitor")
# Areas that only their own stage writes: a user-named output (--output) may never land in them.
CONTROL_AREAS = ("raw", "quarantine", "aggregates", "models", "runs", "monitor")
# A user-given id that becomes a directory or file name (run id, tune id): no separator, no dot-dot.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ROW_GROUP_ROWS = 1 << 20  # rows per parquet row group of write_parquet(_batches): pq.write_table's default
NAME_MAX = 200  # longest name accepted: 255 (most file systems) less room for a temporary-file affix
SNAPSHOTS = ".snapshots"  # raw/ points at one of its raw-<id> directories
DAILY_NAME = "daily.parquet"
MONTH_WEEKDAY_NAME = "month_weekday.parquet"


class Store:
    """The directory tree that every stage reads from and writes to."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def ensure(self) -> Store:
        for area in AREAS:
            if area != "raw":
                (self.root / area).mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)  # made with the store: a stage that only reads never adds it
        if not (self.raw.is_symlink() and self.raw.is_dir()):  # new, from before snapshots, or broken
            with locked(self.snapshots / ".lock"):
                settle_raw(self)
        return self

    @property
    def raw(self) -> Path:
        """Validated events; a symlink to the current snapshot under .snapshots/."""
        return self.root / "raw"

    @property
    def commits(self) -> Path:
        """One JSON record per committed ingest, with its files and counts."""
        return self.raw / "_commits"

    @property
    def snapshots(self) -> Path:
        """Immutable raw snapshots, one raw-<id> folder per ingest commit."""
        return self.root / SNAPSHOTS

    @property
    def raw_keys(self) -> Path:
        """Event keys of the raw files, per day (ingest's dedup): outside raw/, so no glob reads them as events."""
        return self.root / ".keys" / "raw"

    @property
    def drop_bases(self) -> Path:
        """Field hashes of each file committed as part of a multi-file drop, per day: the next files of
        the drop (also in a re-run after a crash) number identical rows on from them (pipeline.ingest)."""
        return self.root / ".keys" / "drop-bases"

    @property
    def raw_keys_lock(self) -> Path:
        """Held while an ingest decides which of its rows are new and commits them: one at a time, so
        no two ingests both take the same event for new (pipeline.ingest.ingest)."""
        return self.root / ".keys" / "raw.lock"

    @property
    def tmp(self) -> Path:
        """Scratch of running stages (DuckDB spill): on the store's disk, not the system's temp dir; each
        connection spills into a folder of its own, which DuckDB removes when it closes."""
        return self.root / ".tmp"

    @property
    def ingest_staging(self) -> Path:
        """Where ingests stage their files: in the store (renames stay on one disk), outside raw/."""
        return self.root / ".staging" / "ingest"

    @property
    def quarantine(self) -> Path:
        """Refused rows with their reason, one parquet file per ingest."""
        return self.root / "quarantine"

    @property
    def aggregates(self) -> Path:
        """The aggregate tables: fixed symlinks into the current set."""
        return self.root / "aggregates"

    @property
    def daily_path(self) -> Path:
        """The hive-partitioned daily table (a directory, Spark style); read it with read_parquet."""
        return self.aggregates / DAILY_NAME

    @property
    def month_weekday_path(self) -> Path:
        """The month x weekday profile (one small file)."""
        return self.aggregates / MONTH_WEEKDAY_NAME

    @property
    def aggregates_current(self) -> Path:
        """Symlink to the aggregate set readers see (under aggregates/_versions/)."""
        return self.aggregates / "_current"

    @property
    def aggregate_versions(self) -> Path:
        """The aggregate table sets, one directory each (pipeline.snapshots.aggregate_set)."""
        return self.aggregates / "_versions"

    @property
    def aggregates_spill(self) -> Path:
        """DuckDB's spill folder while `trendrec aggregate` runs."""
        return self.aggregates / "_spill"

    @property
    def models(self) -> Path:
        """The registry (versions, production.json) and the training runs."""
        return self.root / "models"

    @property
    def runs(self) -> Path:
        """TensorBoard logs, one folder per training run and family (``make tensorboard`` serves them)."""
        return self.root / "runs"

    @property
    def training_runs(self) -> Path:
        """Training runs, one folder each with a sub-folder per model family (recsys.runs)."""
        return self.models / "runs"

    @property
    def reranked(self) -> Path:
        """Re-ranked candidate lists (trendrec rerank)."""
        return self.root / "reranked"

    @property
    def report(self) -> Path:
        """Default folder of `trendrec report`: PNG plots and index.html."""
        return self.root / "report"

    @property
    def tune(self) -> Path:
        """Hyper-parameter searches, tune/<id>/ each (recsys.forecast.tune)."""
        return self.root / "tune"

    @property
    def backtest(self) -> Path:
        """Rolling-origin backtest results, backtest/<run id>.json each (recsys.forecast.backtest)."""
        return self.root / "backtest"

    @property
    def monitor(self) -> Path:
        """What watches a shop after the push (recsys.monitor): ingest statistics, skew, drift, live results."""
        return self.root / "monitor"

    @property
    def ingest_stats(self) -> Path:
        """One statistics record per committed ingest, <digest>.json (pipeline.ingest.stats)."""
        return self.monitor / "ingest-stats"

    @property
    def skew(self) -> Path:
        """Per day, what the service and batch rerank could not score (recsys.monitor.skew)."""
        return self.monitor / "skew"

    @property
    def drift(self) -> Path:
        """`trendrec drift` verdicts, one JSON record per run (recsys.monitor.drift)."""
        return self.monitor / "drift"

    @property
    def live_results(self) -> Path:
        """Each production version's live results per week (recsys.monitor.live)."""
        return self.monitor / "live-results.parquet"

    def inside(self, path: str | os.PathLike) -> Path:
        """Resolve ``path`` (relative paths against the root, symlinks followed) and refuse anything
        outside the store or with a name longer than NAME_MAX."""
        p = check_names(Path(path).expanduser(), "path", NAME_MAX)
        p = (p if p.is_absolute() else self.root / p).resolve()
        if p != self.root and self.root not in p.parents:
            raise StoreError(f"path {p} is outside the store {self.root}; give a path inside it")
        return p

    def output(self, path: str | os.PathLike, what: str = "--output", directory: bool = False) -> Path:
        """A user-named output file (or ``directory``): inside the store, below its root, not in one of
        the CONTROL_AREAS, and a file where a file is wanted."""
        p = self.inside(path)
        if p == self.root:
            raise StoreError(f"{what} {p} is the store itself; name a file or folder inside it, e.g. reranked/")
        area = p.relative_to(self.root).parts[0]
        if area in CONTROL_AREAS or area.startswith("."):
            raise StoreError(f"{what} {p} is in the store's {area}/, which only trendrec itself writes; "
                             f"write to reranked/ or another folder")
        if p.exists() and p.is_dir() != directory:
            raise StoreError(f"{what} {p} is {'a file' if directory else 'a directory'}; give a "
                             f"{'folder' if directory else 'file'} name, e.g. {'report/' if directory else 'reranked/lists.parquet'}")
        return p

    def raw_partition(self, day: Any) -> Path:
        return self.raw / f"event_date={day}"

    def committed_raw_files(self) -> list[Path]:
        """The raw parquet files of every committed ingest, in a stable order."""
        files: list[Path] = []
        if not self.commits.is_dir():
            return files
        for commit in sorted(self.commits.glob("*.json")):
            meta = json.loads(commit.read_text(encoding="utf-8"))
            files.extend(self.raw / rel for rel in meta.get("files", []))
        return sorted(files)


def check_names(path: str | os.PathLike, what: str, limit: int = 255) -> Path:
    """``path``, refused in one line when one of its names is longer than ``limit`` characters
    (the OS would answer ENAMETOOLONG from deep inside a stage)."""
    long = [part for part in Path(path).parts if len(part) > limit]
    if long:
        raise StoreError(f"{what} {str(path)[:60]}...: a name of {len(long[0])} characters is longer than "
                         f"{limit}; use a shorter name")
    return Path(path)


def safe_name(name: str, what: str) -> str:
    """Refuse an id that would not be one plain file name (``../x``, ``a/b``, empty, too long)."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise StoreError(f"invalid {what} {str(name)[:80]!r}: use 1-128 letters, digits, '.', '_' or '-', "
                         f"starting with a letter or digit")
    return name


def new_run_id() -> str:
    """A run id for a directory of runs/, models/runs/, tune/ or backtest/: the UTC time, e.g. 20240101T120000Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes 0600; store files are shared by Airflow workers and users
        fsync(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        for folder in created:  # a failed write (a full disk, a size limit) leaves no new empty folder
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextmanager
def writing_into(target: str | os.PathLike) -> Iterator[None]:
    """Hold an flock on the folder ``target`` is written into (its nearest existing ancestor while it is
    absent), creating nothing: one such writer into a folder at a time, so that it may ``sweep_temp``."""
    folder = Path(target).parent
    while not folder.is_dir():
        folder = folder.parent
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def removed_on_failure(*folders: str | os.PathLike) -> Iterator[None]:
    """On a failure inside the block, remove what it added under ``folders`` (each folder too, when it
    made it) and re-raise. For logs that TensorFlow's summary writer creates before any write of ours can
    fail (a full disk, a size limit): a failed training or tune leaves the store as it found it, a
    re-run's older logs in the same folder included."""
    before = {Path(f): ({p for p in Path(f).rglob("*")} if Path(f).exists() else None) for f in folders}
    try:
        yield
    except BaseException:
        for folder, had in before.items():
            if had is None:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for path in sorted(set(folder.rglob("*")) - had, key=lambda p: len(p.parts), reverse=True):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def sweep_temp(target: str | os.PathLike) -> int:
    """Remove the temporary files ``atomic_path`` left beside ``target`` when its writer was killed; the
    number removed. Call it inside ``writing_into(target)``, so no live writer's file goes."""
    target = Path(target)
    if not target.parent.is_dir():
        return 0
    stale = list(target.parent.glob(f".{glob.escape(target.name)}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_parquet(table: pa.Table, target: str | os.PathLike) -> Path:
    """Write ``table`` atomically to ``target`` (zstd-compressed parquet)."""
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
    return Path(target)


def write_parquet_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, target: str | os.PathLike) -> int:
    """Write ``batches`` (cast to ``schema``) atomically to ``target`` as ``write_parquet`` writes their
    concatenation: the same row groups and bytes, with one row group in memory at a time. The rows written."""
    rows, held = 0, []
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for batch in batches:
            while batch.num_rows:
                take = min(ROW_GROUP_ROWS - rows % ROW_GROUP_ROWS, batch.num_rows)
                held.append(batch.slice(0, take))
                batch, rows = batch.slice(take), rows + take
                if rows % ROW_GROUP_ROWS == 0:
                    writer.write_table(_one_chunk(held, schema))
                    held = []
        if held or not rows:  # write_table writes an empty table as one empty row group
            writer.write_table(_one_chunk(held, schema))
    return rows


def _one_chunk(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """The batches as one contiguous table, as a DataFrame's conversion gives: chunk edges would move pages."""
    return pa.Table.from_batches(batches, batches[0].schema if batches else schema).cast(schema).combine_chunks()


def write_json(obj: Any, target: str | os.PathLike) -> Path:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return Path(target)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def daily_partition(root: str | os.PathLike, year_month: str) -> Path:
    """The file of one month of a daily table directory: root/year_month=YYYY-MM/part-0.parquet."""
    return Path(root) / f"year_month={year_month}" / "part-0.parquet"
