"""Ingest a shop's event log into the store: validated rows to raw/, refused rows to quarantine/.

The source (CSV, JSON lines or parquet, each optionally .gz; a file, a directory or a glob) is read
in chunks by pipeline.ingest.sources, so memory stays bounded by ``ingest.batch_rows`` whatever the file
size. Each file is one transaction keyed by the SHA-256 of its bytes: its rows are staged under
raw/_staging/<digest>/, then, one date partition at a time, rows whose event key (see
validate.event_keys) is already in a committed file are removed; the rest and their keys are renamed
into raw/event_date=.../part-<digest>.parquet and raw/_keys/event_date=.../<digest>.parquet, and
become visible only when raw/_commits/<digest>.json is written last. Readers list committed files
only, so a crash at any moment leaves the store as before or as after, and a re-run finishes.

Speed: validation and key hashing run on the calling thread while one writer thread encodes the
previous batch's parquet (pyarrow releases the GIL), and the dedup pass works on two days at a time
(figures: benchmarks/README.md).

Every input row ends in exactly one counter:
rows_in == rows_accepted + rows_quarantined + rows_duplicate + rows_filtered + rows_dropped.

    trendrec ingest data/demo/online_retail.parquet --config trendrec.toml
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline import schemas
from pipeline.config import Config, IngestConfig
from pipeline.store import Store, read_json, write_json
from pipeline.ingest.sources import Chunk, IngestError, read_chunks, resolve_sources
from pipeline.ingest.segments import assign_segments
from pipeline.ingest.validate import DROPPED, FILTERED, event_key_base, event_keys, validate_batch

__all__ = ["IngestError", "ingest_file", "resolve_sources", "run_ingest"]
log = logging.getLogger(__name__)
COUNTERS = ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_filtered", "rows_dropped")
KEY = "key"
_BASE_SCHEMA = pa.schema([pa.field(KEY, pa.uint64(), nullable=False)])
# Parquet options of raw/ files: dictionary pages only for columns with few distinct values. On
# near-unique columns (lines, orders, times) a dictionary is built and then abandoned; without it a
# 500k-row batch writes about 20% faster and its files come out about 30% smaller.
_RAW_WRITE = {"compression": "zstd", "use_dictionary": [schemas.EVENT_DATE, schemas.SEGMENT, schemas.QUANTITY,
                                                        schemas.SOURCE_FILE]}


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


def _needed_columns(cfg: IngestConfig) -> dict[str, str]:
    """What each source column is for: mapped fields plus the time, event-type and segment-rule columns."""
    unmapped = [f for f in (schemas.EVENT_TIME, schemas.ITEM_ID) if f not in cfg.columns]
    if unmapped:
        raise IngestError(f"config ingest.columns must map {unmapped}")
    needed = dict(cfg.columns)
    for name in ("time_column", "event_type_column", "segment_from"):
        if getattr(cfg, name) and not (name == "segment_from" and schemas.SEGMENT in cfg.columns):
            needed[name] = getattr(cfg, name)
    return needed


def _check_columns(path: Path, names: list[str], cfg: IngestConfig) -> None:
    needed = _needed_columns(cfg)
    absent = [f"{col!r} (for {field})" for field, col in needed.items() if col not in names]
    if absent:
        optional = [f for f in (schemas.QUANTITY, schemas.PRICE) if f in needed and needed[f] not in names]
        hint = (f"; a log without {' / '.join(optional)} can leave it out of [ingest.columns]: every row "
                f"then gets {' / '.join(f'{f}_default' for f in optional)}") if optional else ""
        raise IngestError(f"{path}: column {', '.join(absent)} not found; the file has {names}. "
                          f"Map the file's own names in [ingest.columns] (field = \"column\"){hint}")


class _Staging:
    """Per-day parquet writers under raw/_staging/<digest>/, deduplicated, then committed by rename.

    Beside each day's rows it stages their field hashes (validate.event_key_base) as a plain file of
    native uint64 (scratch, never committed), so the dedup pass reads one small array per day instead
    of the key columns.
    """

    def __init__(self, store: Store, digest: str, cfg: IngestConfig):
        self.store, self.digest, self.cfg = store, digest, cfg
        self.dir = store.raw / "_staging" / digest
        shutil.rmtree(self.dir, ignore_errors=True)  # leftovers of a crashed run of the same file
        self.dir.mkdir(parents=True)
        self.writers: dict[str, tuple[pq.ParquetWriter, BinaryIO]] = {}
        self.moves: list[tuple[Path, str]] = []  # (staged file, target relative to raw/) to rename at commit
        self.bad = pq.ParquetWriter(self.dir / "quarantine.parquet", schemas.QUARANTINE_SCHEMA, compression="zstd")
        self.reasons: dict[str, int] = {}
        # Parquet encoding releases the GIL: one thread writes a batch while the next one is validated.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trendrec-staging")
        self.pending: Future | None = None

    def write_bad(self, rows: pd.DataFrame) -> int:
        """Stage refused rows (streamed, so a file of garbage does not fill memory); returns their count."""
        if len(rows):
            self.bad.write_table(pa.Table.from_pandas(rows, schema=schemas.QUARANTINE_SCHEMA, preserve_index=False))
            for reason, n in rows[schemas.REASON].str.split(":", n=1).str[0].value_counts().items():
                self.reasons[reason] = self.reasons.get(reason, 0) + int(n)
        return len(rows)

    def write(self, good: pd.DataFrame) -> None:
        """Hand the rows to the writer thread, after the previous batch is on disk (one batch in flight)."""
        table = pa.Table.from_pandas(good, schema=schemas.RAW_SCHEMA, preserve_index=False)
        # Hashing is mostly Python-level work: here it overlaps the previous batch's (GIL-free) writes.
        base = event_key_base(table.select(list(self.cfg.event_key)).to_pandas(), self.cfg.event_key)
        self._wait()
        self.pending = self.pool.submit(self._write, table, base)

    def _wait(self) -> None:
        """Let the batch in flight finish; its error, if any, is raised here."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def _write(self, table: pa.Table, base: np.ndarray) -> None:
        days = table.column(schemas.EVENT_DATE).to_numpy()
        if (days[1:] < days[:-1]).any():  # logs mostly come in time order: then the stable sort is a no-op
            order = pc.sort_indices(table.column(schemas.EVENT_DATE))  # then zero-copy slices per day
            table, base = table.take(order), base[order.to_numpy()]
        runs = pc.value_counts(table.column(schemas.EVENT_DATE))  # sorted input: runs come in date order
        start = 0
        for day, rows in zip(runs.field("values").to_pylist(), runs.field("counts").to_pylist()):
            key = str(day)
            if key not in self.writers:
                rows_file, base_file = self.dir / f"{key}.parquet", self.dir / f"{key}.base.u64"
                self.writers[key] = (pq.ParquetWriter(rows_file, schemas.RAW_SCHEMA, **_RAW_WRITE),
                                     open(base_file, "wb"))  # noqa: SIM115 - closed in _close
            self.writers[key][0].write_table(table.slice(start, rows))
            self.writers[key][1].write(base[start:start + rows].tobytes())
            start += rows

    def deduplicate(self, committed: set[str]) -> int:
        """Drop staged rows whose event key a committed file holds; stage the new keys. Returns the count."""
        self._close()
        # Days are independent, and their sorts, reads and writes release the GIL: two at a time.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="trendrec-dedup") as pool:
            found = list(pool.map(lambda day: self._deduplicate_day(day, committed), sorted(self.writers)))
        for day, (kept, _) in zip(sorted(self.writers), found):
            if kept:
                self.moves += [(self.dir / f"{day}.parquet", f"event_date={day}/part-{self.digest}.parquet"),
                               (self.dir / f"{day}.keys.parquet", f"_keys/event_date={day}/{self.digest}.parquet")]
        return sum(duplicates for _, duplicates in found)

    def _deduplicate_day(self, day: str, committed: set[str]) -> tuple[bool, int]:
        """Remove one day's duplicates and stage its new keys; returns (any row kept, duplicates)."""
        staged, keys_file = self.dir / f"{day}.parquet", self.dir / f"{day}.keys.parquet"
        keys = event_keys(np.fromfile(self.dir / f"{day}.base.u64", dtype=np.uint64))
        dup = np.isin(keys, _committed_keys(self.store, day, committed))
        if dup.all():
            return False, int(dup.sum())
        if dup.any():
            pq.write_table(pq.read_table(staged).filter(pa.array(~dup)), staged, **_RAW_WRITE)
        # Keys are well-spread 64-bit hashes: neither a dictionary nor compression would shrink them.
        pq.write_table(pa.table({KEY: keys[~dup]}, schema=_BASE_SCHEMA), keys_file, compression="none",
                       use_dictionary=False)
        return True, int(dup.sum())

    def commit(self, summary: dict) -> list[str]:
        (self.dir / "quarantine.parquet").replace(self.store.quarantine / f"{self.digest}.parquet")
        for staged, rel in self.moves:
            target = self.store.raw / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(target)
        files = [rel for _, rel in self.moves if not rel.startswith("_keys/")]
        write_json({**summary, "files": files}, self.store.commits / f"{self.digest}.json")
        self.abort()
        return files

    def _close(self) -> None:
        try:
            self._wait()
        finally:  # close every file even when the write in flight failed (closing twice is a no-op)
            self.pool.shutdown()
            self.bad.close()
            for pair in self.writers.values():
                for w in pair:
                    w.close()

    def abort(self) -> None:
        try:
            self._close()
        except Exception:  # a write failed while another error is on its way up: the staged files go anyway
            log.debug("staging %s: a write failed while aborting", self.dir, exc_info=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.parent.is_dir() and not any(self.dir.parent.iterdir()):
            self.dir.parent.rmdir()


def _comparable_commits(store: Store, cfg: IngestConfig) -> set[str]:
    """Digests of committed files whose event keys were built from the same fields as ours."""
    wanted = list(cfg.event_key)
    return {c.stem for c in store.commits.glob("*.json") if read_json(c).get("event_key") == wanted}


def _committed_keys(store: Store, day: str, committed: set[str]) -> np.ndarray:
    """Event keys of every committed file in one date partition (uncommitted leftovers are ignored)."""
    folder = store.raw / "_keys" / f"event_date={day}"
    files = [f for f in folder.glob("*.parquet") if f.stem in committed] if folder.is_dir() else []
    if not files:
        return np.empty(0, dtype=np.uint64)
    return np.concatenate([pq.read_table(f, columns=[KEY]).column(KEY).to_numpy() for f in files])


def _quarantine_rows(chunk: Chunk, canon: pd.DataFrame, reason: pd.Series, bad: np.ndarray,
                     name: str) -> pd.DataFrame:
    if not bad.any():
        texts = []
    elif chunk.raw_text is not None:
        texts = [t for t, b in zip(chunk.raw_text, bad) if b]
    else:
        texts = chunk.frame[bad].to_json(orient="records", lines=True, date_format="iso",
                                         default_handler=str).splitlines()
    rows = pd.DataFrame({schemas.SOURCE_FILE: name, schemas.SOURCE_LINE: canon[schemas.SOURCE_LINE][bad],
                         schemas.REASON: reason[bad], schemas.RAW_ROW: texts})
    if chunk.malformed:
        lines, text, why = zip(*chunk.malformed)
        rows = pd.concat([rows, pd.DataFrame({schemas.SOURCE_FILE: name, schemas.SOURCE_LINE: list(lines),
                                              schemas.REASON: list(why), schemas.RAW_ROW: list(text)})])
    return rows


def _process(chunk: Chunk, path: Path, cfg: IngestConfig, staging: _Staging, counts: dict) -> pd.DataFrame:
    """Validate one chunk, stage its good rows, count every row; returns its quarantined rows."""
    batch = chunk.frame.reset_index(drop=True)
    for column in set(_needed_columns(cfg).values()) - set(batch.columns):
        batch[column] = None  # a JSON lines chunk in which no record has this key: each row misses it
    chunk.frame = batch
    canon, reason = validate_batch(batch, cfg)
    canon[schemas.SEGMENT] = assign_segments(batch, cfg)
    canon[schemas.SOURCE_FILE] = path.name
    canon[schemas.SOURCE_LINE] = chunk.lines
    ok = (reason == "").to_numpy()
    if ok.all():
        filtered = dropped = bad = np.zeros(len(ok), dtype=bool)
    else:
        filtered = reason.str.startswith(FILTERED + ":").to_numpy()
        dropped = reason.str.startswith(DROPPED + ":").to_numpy()
        bad = ~(ok | filtered | dropped)
    if ok.any():
        staging.write(canon if ok.all() else canon[ok])
    counts["rows_in"] += len(batch) + len(chunk.malformed)
    counts["rows_accepted"] += int(ok.sum())
    counts["rows_filtered"] += int(filtered.sum())
    counts["rows_dropped"] += int(dropped.sum())
    return _quarantine_rows(chunk, canon, reason, bad, path.name)


def _already_done(path: Path, digest: str, record: dict) -> dict:
    log.info("%s already ingested (commit %s): nothing added", path, digest)
    counts = {k: record.get(k, 0) for k in COUNTERS}
    skipped = counts["rows_quarantined"] + counts["rows_filtered"] + counts["rows_dropped"]
    return {"file": str(path), "digest": digest, **counts, "rows_accepted": 0,
            "rows_duplicate": counts["rows_in"] - skipped}


def ingest_file(path: Path, cfg: Config, store: Store, progress: tqdm | None = None) -> dict:
    """Ingest one file as one transaction; returns its counts."""
    digest = file_digest(path)
    commit = store.commits / f"{digest}.json"
    if commit.exists():
        return _already_done(path, digest, read_json(commit))
    staging, counts = _Staging(store, digest, cfg.ingest), dict.fromkeys(COUNTERS, 0)
    checked = False
    try:
        for chunk in read_chunks(path, cfg.ingest):
            if not checked and len(chunk.frame.columns):  # the header, or the first JSON objects' keys
                _check_columns(path, list(chunk.frame.columns), cfg.ingest)
                checked = True
            counts["rows_quarantined"] += staging.write_bad(_process(chunk, path, cfg.ingest, staging, counts))
            if progress is not None:
                progress.update(len(chunk.frame) + len(chunk.malformed))
        if counts["rows_in"] == 0:
            raise IngestError(f"{path}: the file holds no rows")
        committed = _comparable_commits(store, cfg.ingest)
        counts["rows_duplicate"] = staging.deduplicate(committed)
    except BaseException:
        staging.abort()
        raise
    counts["rows_accepted"] -= counts["rows_duplicate"]
    summary = {"file": str(path), "digest": digest, **counts, "reasons": staging.reasons,
               "event_key": list(cfg.ingest.event_key)}  # keys of files with another key do not compare
    staging.commit({k: v for k, v in summary.items() if k != "file"} | {"source": str(path)})
    return summary


def run_ingest(cfg: Config, source: str | Path | None = None) -> dict:
    """Ingest every file of ``source`` (default: the config's ``source``); returns the totals."""
    source = source or cfg.source
    if not source:
        raise IngestError("no input given: pass a file, directory or glob, or set `source` in the config")
    files = resolve_sources(source)
    store = Store(cfg.store).ensure()
    started = time.monotonic()
    with tqdm(desc="ingest", unit=" rows", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
        per_file = []
        for number, path in enumerate(files, start=1):
            bar.set_postfix_str(f"file {number}/{len(files)} {path.name}")
            per_file.append(ingest_file(path, cfg, store, bar))
    totals = {k: sum(s[k] for s in per_file) for k in COUNTERS}
    reasons: dict[str, int] = {}
    for s in per_file:
        for k, v in s.get("reasons", {}).items():
            reasons[k] = reasons.get(k, 0) + v
    if totals["rows_in"] != sum(totals[k] for k in COUNTERS[1:]):
        raise IngestError(f"row accounting broke: {totals}")  # a bug, never bad input
    log.info("ingested %d files: %s", len(files), json.dumps(totals))
    return {"files": [str(f) for f in files], **totals, "quarantine_reasons": reasons,
            "raw_dir": str(store.raw), "quarantine_dir": str(store.quarantine),
            "seconds": round(time.monotonic() - started, 2)}
