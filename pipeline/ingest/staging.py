"""One ingest transaction's files: staged outside the store's readable trees, deduplicated, committed.

A file's rows are staged under ``<store>/.staging/ingest/partial-<ns>-<random>/`` while it is read
(its digest is computed as it is read, or beside the reading), a folder flock-ed by the ingest that writes it, and
renamed to ``<digest>/`` under the raw keys lock before the commit; never inside raw/ or quarantine/.
A partial folder nobody holds (a killed ingest's) is removed by the next ingest.

The commit, once decided (the staging folder's ``commit.json``), is applied by
pipeline.ingest.commits, which also finishes a decision a crash cut short.

Refused rows are deduplicated like accepted ones: their key is the hash of their original text plus
its occurrence among equal texts in the file, so a re-export writes only quarantine rows not
already in quarantine/.

    python -c "from pipeline.store import Store; print(Store('s').ingest_staging)"
"""

from __future__ import annotations

import datetime
import logging
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import spill
from pipeline.ingest.commits import INTENT, PARTIAL, apply, bases_prefix, keys_prefix
from pipeline.ingest.drop import KEY, Drop, contains
from pipeline.ingest.spill import DaySpill
from pipeline.ingest.tally import DISTINCT, Tally
from pipeline.ingest.rowhash import event_key_base, event_keys
from pipeline.snapshots import held_folder
from pipeline.store import Store, write_json

log = logging.getLogger(__name__)
_BASE_SCHEMA = pa.schema([pa.field(KEY, pa.uint64(), nullable=False)])
# Parquet options of raw/ files: dictionary pages only for columns with few distinct values. On
# near-unique columns (lines, orders, times) a dictionary is built and then abandoned; without it a
# 500k-row batch writes about 20% faster and its files come out about 30% smaller. Prices come from a
# catalogue: as a dictionary a day's prices encode in 60% of the time and 62% of the bytes (a shop whose
# prices are all different pays for the abandoned dictionary). zstd only where it shrinks a column:
# the dictionary indices of days, segments and file names come out the same size without it.
# Min/max statistics only where a reader prunes on them (dates, times, numbers): on the text columns of
# per-day files they span nearly every value, and they cost about a tenth of the writing.
# Source lines and times as deltas (Parquet's DELTA_BINARY_PACKED): a file's lines rise, and its times
# rise in a log in time order and stay within a day in any order. Per 20 M rows, lines took 0.53-0.55 s
# with zstd and take 0.11-0.18 s as bare deltas, in fewer bytes in every order (time order 1.03 -> 0.04
# bytes a row, by item 1.54 -> 1.31, shuffled 2.05 -> 1.56); times took 0.35 s (time order) and 0.74-0.76 s
# (by item, shuffled) with zstd, and take 0.41-0.43 s as deltas with zstd (0.90 -> 0.64 bytes a row in
# time order, 3.9 -> 4.2-4.5 in the others).
_RAW_WRITE = {"compression": {f.name: "none" if f.name in (schemas.EVENT_DATE, schemas.SEGMENT, schemas.SOURCE_FILE,
                                                           schemas.SOURCE_LINE)
                              else "zstd" for f in schemas.RAW_SCHEMA},
              "use_dictionary": [schemas.EVENT_DATE, schemas.SEGMENT, schemas.QUANTITY, schemas.PRICE,
                                 schemas.SOURCE_FILE],
              "column_encoding": {schemas.EVENT_TIME: "DELTA_BINARY_PACKED", schemas.SOURCE_LINE: "DELTA_BINARY_PACKED"},
              "write_statistics": [schemas.EVENT_TIME, schemas.EVENT_DATE, schemas.QUANTITY, schemas.PRICE,
                                   schemas.SOURCE_LINE]}
# Day files open at once. An open parquet writer holds its column writers and zstd contexts (about
# 0.4 MiB each), so a two-year log with every day open held 0.3-0.5 GiB. In time order a day's rows
# come in one or two batches: they are written straight to the day's file, the least recently written
# day closed when another opens. The rows of a day whose file was closed, and a batch's few rows of a
# day (any other order: a batch touches every day), go to the day spill (pipeline.ingest.spill) and
# join their day's file at the dedup pass.
OPEN_DAYS = 32
# A day not staged yet gets a file of its own when a batch brings it at least this many rows, or when
# the batch spans at most OPEN_DAYS days. A shuffled two-year log brings about 700 rows per day and
# batch; opening, filling and closing a parquet file for so few rows costs more than spilling them.
DIRECT_ROWS = 2048
FROM_ROWS = pa.schema([f for f in schemas.RAW_SCHEMA if f.name != schemas.SOURCE_FILE])  # what ``write`` gets


class Staging:
    """Per-day parquet writers in the staging folder, deduplicated, then committed by rename.

    Beside each day's rows it stages their field hashes (rowhash.event_key_base) as a plain file of
    native uint64 (scratch, never committed), so the dedup pass reads one small array per day instead
    of the key columns; spilled rows carry theirs with them.
    """

    def __init__(self, store: Store, cfg: IngestConfig, source: str, in_order: bool = True):
        self.store, self.digest, self.cfg, self.source = store, "", cfg, source  # source: the file's name
        # False: the file is known not to be in time order (order.rises): every row goes to the spill, as
        # a day file written during the read would come back at the dedup pass to be read and written again
        self.in_order = in_order
        self.dir, self._held = held_folder(store.ingest_staging, PARTIAL)  # flock-ed while this ingest lives
        self.writers: dict[str, tuple[pq.ParquetWriter, BinaryIO]] = {}  # open days, least recent first
        self.days: set[str] = set()  # every staged day
        self.direct: set[str] = set()  # days with a file {day}.parquet (written before any spilled row)
        self.spill = DaySpill(self.dir, source)
        self.tally = Tally()  # the statistics record's counts, in the same pass (pipeline.ingest.tally)
        self.moves: list[tuple[str, str]] = []  # (staged name, target relative to the store) at commit
        try:
            self.bad = pq.ParquetWriter(self.dir / "quarantine.parquet", schemas.QUARANTINE_SCHEMA, compression="zstd")
        except BaseException:  # its first bytes failed (a full disk, a size limit): no folder is left behind
            shutil.rmtree(self.dir, ignore_errors=True)
            os.close(self._held)
            raise
        self.bad_base: list[np.ndarray] = []  # hash of each refused row's original text
        self.reasons: dict[str, int] = {}
        self.examples: dict[str, str] = {}  # the first full reason of each kind, for error messages
        # Parquet encoding releases the GIL: one thread writes a batch while the next one is validated.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trendrec-staging")
        self.pending: Future | None = None

    def adopt(self, digest: str) -> None:
        """Name the folder after the file's digest (under the raw keys lock, before ``deduplicate``); a
        folder of that name without a decision is a killed run's leftover of the same file."""
        self._close()  # every staged file written and closed before its folder moves
        target = self.store.ingest_staging / digest
        if (target / INTENT).exists():
            raise RuntimeError(f"{target}: a decided commit is pending; finish_pending first")
        shutil.rmtree(target, ignore_errors=True)
        self.dir.rename(target)
        self.dir, self.digest = target, digest
        self.spill.folder = target

    def write_bad(self, rows: pd.DataFrame) -> int:
        """Stage refused rows (streamed, so a file of garbage does not fill memory); returns their count."""
        if len(rows):
            self.bad.write_table(pa.Table.from_pandas(rows, schema=schemas.QUARANTINE_SCHEMA, preserve_index=False))
            self.bad_base.append(pd.util.hash_pandas_object(rows[schemas.RAW_ROW], index=False).to_numpy())
            kinds = rows[schemas.REASON].str.split(":", n=1).str[0]
            for reason, n in kinds.value_counts().items():
                self.reasons[reason] = self.reasons.get(reason, 0) + int(n)
                if reason not in self.examples:
                    self.examples[reason] = str(rows[schemas.REASON][(kinds == reason).to_numpy()].iloc[0])
        return len(rows)

    def write(self, table: pa.Table) -> None:
        """Hand the rows (FROM_ROWS: RAW_SCHEMA's columns but the source file's name, which the staging
        adds) to the writer thread, after the previous batch is on disk (one batch in flight)."""
        # The rows' hashes are computed by whichever thread is free: here while the writer thread is still
        # busy with the last batch (in time order it encodes parquet), else by the writer (in other orders
        # it only sorts and spills), so that this thread moves on to the next batch: the reader's, this
        # thread's and the writer's shares of the cores even out whatever the log's order.
        hashed = self._hash(table) if self.pending is not None and not self.pending.done() else None
        self._wait()
        self.pending = self.pool.submit(self._write, table, hashed)

    def _hash(self, table: pa.Table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The rows' event-key hashes (rowhash.event_key_base), and the statistics' id columns' own."""
        hashes: dict[str, np.ndarray] = {}
        base = event_key_base(table, self.cfg.event_key, hashes)
        return base, {c: hashes[c] for c in DISTINCT if c in hashes}

    def _wait(self) -> None:
        """Let the batch in flight finish; its error, if any, is raised here."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def _write(self, table: pa.Table, hashed: tuple[np.ndarray, dict[str, np.ndarray]] | None) -> None:
        """Each day's rows to its open file, or to the spill (see OPEN_DAYS); a day's rows stay in order.
        ``hashed``: what ``_hash`` gives, or None to hash them here."""
        base, hashes = self._hash(table) if hashed is None else hashed
        self.tally.add(table, base, hashes)
        dates = table.column(schemas.EVENT_DATE)
        days = dates.to_numpy()
        order = None
        if (days[1:] < days[:-1]).any():  # logs mostly come in time order: then no sort, slices per day
            order = pc.sort_indices(dates).to_numpy()  # stable: a day's rows keep the file's order
            days = days[order]
        starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else np.empty(0, np.int64)
        counts = np.diff(np.r_[starts, len(days)])
        if not self.in_order:
            opens = np.zeros(len(counts), dtype=bool)
        else:
            opens = counts >= DIRECT_ROWS if len(counts) > OPEN_DAYS else np.ones(len(counts), dtype=bool)
        spilled: list[tuple[str, int, int]] = []
        for day, start, rows, own in zip(map(str, days[starts]), starts.tolist(), counts.tolist(), opens.tolist()):
            if day in self.writers or (own and day not in self.days):
                at = slice(start, start + rows) if order is None else order[start:start + rows]
                writer, base_out = self._writer(day)
                writer.write_table(self._named(table.slice(start, rows) if order is None else table.take(at)))
                base_out.write(base[at].tobytes())
            else:  # its file was closed, or this batch is not in time order
                spilled.append((day, start, rows))
            self.days.add(day)
        if spilled:
            self._spill(table, base, order, spilled)

    def _named(self, rows: pa.Table) -> pa.Table:
        """FROM_ROWS rows with the source file's name: RAW_SCHEMA (only rows written to a day file need it:
        the spill leaves it out, spill.SHARED)."""
        name = pa.chunked_array([pa.repeat(pa.scalar(self.source), rows.num_rows)])
        return rows.add_column(schemas.RAW_SCHEMA.get_field_index(schemas.SOURCE_FILE),
                               schemas.RAW_SCHEMA.field(schemas.SOURCE_FILE), name)

    def _spill(self, table: pa.Table, base: np.ndarray, order: np.ndarray | None,
               runs: list[tuple[str, int, int]]) -> None:
        """The ``runs`` (day, first row, count; of the rows in ``order``) to the spill, without the
        columns every row of a day shares (only the columns it keeps are copied)."""
        if order is not None and sum(n for _, _, n in runs) == len(order):  # every row (a log in no order)
            picked = order
        else:
            picked = np.concatenate([(np.arange(start, start + n) if order is None else order[start:start + n])
                                     for _, start, n in runs])
        at = np.cumsum([0] + [n for _, _, n in runs])
        self.spill.add(table.select(spill.COLUMNS).take(picked), base[picked],
                       [(day, int(first), n) for (day, _, n), first in zip(runs, at)])

    def _writer(self, day: str) -> tuple[pq.ParquetWriter, BinaryIO]:
        """The day's open writer (now the most recent); a day not staged yet gets its file here."""
        if day in self.writers:
            self.writers[day] = self.writers.pop(day)
            return self.writers[day]
        if len(self.writers) >= OPEN_DAYS:  # closed for good: the day's further rows are spilled
            for w in self.writers.pop(next(iter(self.writers))):
                w.close()
        self.direct.add(day)
        self.writers[day] = (pq.ParquetWriter(self.dir / f"{day}.parquet", schemas.RAW_SCHEMA, **_RAW_WRITE),
                             open(self.dir / f"{day}.base.u64", "wb"))  # noqa: SIM115 - closed in _close
        return self.writers[day]

    def deduplicate(self, committed: set[str], drop: Drop | None = None) -> tuple[int, int]:
        """Drop staged rows whose event key a committed file holds, and refused rows already in
        quarantine/; stage the new keys (numbered on from ``drop``'s earlier files). Returns
        (duplicate rows, quarantine rows written)."""
        self._close()
        drop = drop or Drop()
        # Days are independent, and their sorts, reads and writes release the GIL: two at a time.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="trendrec-dedup") as pool:
            found = list(pool.map(lambda day: self._deduplicate_day(day, committed, drop), sorted(self.days)))
        if drop.keep:  # every row's hash, duplicates included: the drop's next files number on from them
            self.moves += [(f"{day}.base.u64", f"{bases_prefix(self.store)}{self.digest}/event_date={day}.u64")
                           for day in sorted(self.days)]
        for day, (kept, _) in zip(sorted(self.days), found):
            if kept:
                self.moves += [(f"{day}.parquet", f"raw/event_date={day}/part-{self.digest}.parquet"),
                               (f"{day}.keys.parquet", f"{keys_prefix(self.store)}event_date={day}/{self.digest}.parquet")]
        written = self._deduplicate_quarantine()
        return sum(duplicates for _, duplicates in found), written

    def _deduplicate_day(self, day: str, committed: set[str], drop: Drop) -> tuple[bool, int]:
        """Remove one day's duplicates and stage its new keys; returns (any row kept, duplicates)."""
        staged, keys_file, base_file = (self.dir / f"{day}{end}" for end in (".parquet", ".keys.parquet", ".base.u64"))
        base = np.fromfile(base_file, dtype=np.uint64) if day in self.direct else np.empty(0, np.uint64)
        spilled = self.spill.read(day)  # rows that came after the day's file was closed, or instead of one
        if spilled is not None:
            base = np.concatenate([base, spilled[1]])
            if drop.keep:  # every row's hash, in the rows' order (the drop's next files read them back)
                base.tofile(base_file)
        keys = event_keys(base, drop.prior(self.store, day))
        dup = contains(drop.committed_keys(self.store, day, committed), keys)
        if dup.all():
            self.tally.recount(datetime.date.fromisoformat(day))  # none of its rows is kept
            return False, int(dup.sum())
        if dup.any() or spilled is not None:  # one file per day and commit, without the duplicates
            parts = [pq.read_table(staged, schema=schemas.RAW_SCHEMA)] if day in self.direct else []
            # one chunk per column: the spill's pieces (a few hundred rows each) encode faster joined
            rows = pa.concat_tables(parts + ([spilled[0]] if spilled is not None else [])).combine_chunks()
            if dup.any():
                rows = rows.filter(pa.array(~dup))
                self.tally.recount(datetime.date.fromisoformat(day), rows, base[~dup])
            pq.write_table(rows, staged, **_RAW_WRITE)
        _write_keys(keys[~dup], keys_file)
        return True, int(dup.sum())

    def _deduplicate_quarantine(self) -> int:
        """Keep the refused rows quarantine/ does not hold yet; returns how many are written."""
        base = np.concatenate(self.bad_base) if self.bad_base else np.empty(0, dtype=np.uint64)
        keys = event_keys(base)
        known = {c.stem for c in self.store.commits.glob("*.json")} if self.store.commits.is_dir() else set()
        dup = np.isin(keys, _committed_keys(self.store.quarantine / "_keys", known))
        staged = self.dir / "quarantine.parquet"
        if dup.any():
            kept = pq.read_table(staged).filter(pa.array(~dup))  # refused rows only: small next to raw/
            pq.write_table(kept, staged, compression="zstd")
        _write_keys(keys[~dup], self.dir / "quarantine.keys.parquet")
        self.moves += [("quarantine.parquet", f"quarantine/{self.digest}.parquet"),
                       ("quarantine.keys.parquet", f"quarantine/_keys/{self.digest}.parquet")]
        return int((~dup).sum())

    def commit(self, summary: dict) -> list[str]:
        """Decide (the intent file), then apply it: keys, one raw snapshot switch, quarantine (``_apply``)."""
        record = {**summary, "files": [t.removeprefix("raw/") for _, t in self.moves
                                       if t.startswith("raw/event_date=")], "moves": self.moves}
        write_json(record, self.dir / INTENT)
        apply(self.store, self.dir, record)
        self.abort()
        return record["files"]

    def _close(self) -> None:
        try:
            self._wait()
        finally:  # close every file even when the write in flight failed (closing twice is a no-op)
            self.pool.shutdown()
            self.bad.close()
            for pair in self.writers.values():
                for w in pair:
                    w.close()
            self.spill.close()

    def abort(self) -> None:
        try:
            self._close()
        except Exception:  # a write failed while another error is on its way up: the staged files go anyway
            log.debug("staging %s: a write failed while aborting", self.dir, exc_info=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._held >= 0:
            os.close(self._held)
            self._held = -1


def _write_keys(keys: np.ndarray, path: Path) -> None:
    # Keys are well-spread 64-bit hashes: neither a dictionary nor compression would shrink them.
    pq.write_table(pa.table({KEY: keys}, schema=_BASE_SCHEMA), path, compression="none", use_dictionary=False)


def _committed_keys(folder: Path, committed: set[str]) -> np.ndarray:
    """Keys in ``folder`` of committed ingests only (uncommitted leftovers are ignored)."""
    files = [f for f in folder.glob("*.parquet") if f.stem in committed] if folder.is_dir() else []
    if not files:
        return np.empty(0, dtype=np.uint64)
    return np.concatenate([pq.read_table(f, columns=[KEY]).column(KEY).to_numpy() for f in files])
