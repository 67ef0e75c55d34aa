"""Ingest a shop's event log into the store: validated rows to raw/, refused rows to quarantine/.

The source (CSV, JSON lines or parquet, each optionally .gz; a file, a directory or a glob) is read
in chunks by pipeline.ingest.sources, so memory stays bounded by ``ingest.batch_rows`` whatever the file
size. Each file is one transaction keyed by the SHA-256 of its bytes, hashed by the CSV reader as it
reads a file no committed file has the size of, else on a thread beside the reading (a file already
committed stops the reading as soon as its digest is known): its rows are
staged outside raw/ (pipeline.ingest.staging). Then, holding the store's raw keys lock (one ingest at a time from
the duplicate check to the commit; reading and validating run in parallel), one date partition at a
time, rows whose event key (see rowhash.event_keys) is already in a committed file are removed,
and so are refused rows already in quarantine/; the rest appear in
raw/event_date=.../part-<digest>.parquet with the commit record raw/_commits/<digest>.json in one
switch of the raw/ snapshot, then refused rows in quarantine/.
A crash at any moment leaves the store as before or as after, for trendrec's readers and a hive
glob alike (a decided commit is finished by the next ingest). A file with more than
``max_reject_share`` of its rows refused fails with its top reasons and stores nothing.

Speed: validation (on Arrow for a CSV's plainly good rows, pipeline.ingest.clean) and key hashing run
on the calling thread while a reader thread parses (and hashes) the next chunk and one writer thread
encodes the previous batch's parquet (pyarrow and hashlib release the GIL); a log not in time order
stages through one bounded spill instead of a file per day and batch (pipeline.ingest.spill); the dedup
pass works on two days at a time, and the files of one run read each commit's keys once
(pipeline.ingest.drop) (figures: benchmarks/README.md).

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
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

from tqdm import tqdm

from pipeline import schemas
from pipeline.config import Config, IngestConfig
from pipeline.ingest.chunks import needed_columns, process
from pipeline.ingest.commits import finish_pending
from pipeline.ingest.drop import Drop
from pipeline.ingest.order import rises
from pipeline.ingest.sources import IngestError, digests_inline, read_chunks, resolve_sources
from pipeline.ingest.staging import Staging
from pipeline.ingest.stats import write_ingest_stats
from pipeline.snapshots import locked, prune_raw_snapshots
from pipeline.store import Store, read_json

__all__ = ["IngestError", "ingest_file", "resolve_sources", "run_ingest"]
log = logging.getLogger(__name__)
COUNTERS = ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate", "rows_filtered", "rows_dropped")


def file_digest(path: Path, stop: threading.Event | None = None) -> str:
    """The file's identity: the first 20 hex digits of the SHA-256 of its bytes ('' once ``stop`` is set)."""
    h, buffer = hashlib.sha256(), bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb") as fh:
        while read := fh.readinto(buffer):  # one buffer, reused: no allocation per MiB
            if stop is not None and stop.is_set():
                return ""
            h.update(view[:read])
    return h.hexdigest()[:20]


def _check_columns(path: Path, names: list[str], cfg: IngestConfig) -> None:
    needed = needed_columns(cfg)
    absent = [f"{col!r} (for {field})" for field, col in needed.items() if col not in names]
    if absent:
        optional = [f for f in (schemas.QUANTITY, schemas.PRICE) if f in needed and needed[f] not in names]
        hint = (f"; a log without {' / '.join(optional)} can leave it out of [ingest.columns]: every row "
                f"then gets {' / '.join(f'{f}_default' for f in optional)}") if optional else ""
        raise IngestError(f"{path}: column {', '.join(absent)} not found; the file has {names}. "
                          f"Map the file's own names in [ingest.columns] (field = \"column\"){hint}")


def _comparable_commits(store: Store, cfg: IngestConfig) -> set[str]:
    """Digests of committed files whose event keys were built from the same fields as ours."""
    wanted = list(cfg.event_key)
    return {c.stem for c in store.commits.glob("*.json") if read_json(c).get("event_key") == wanted}


def _already_done(path: Path, digest: str, record: dict, finished: set[str]) -> dict:
    """The counts of a file already committed: all its rows duplicates, unless this run finished the
    commit an interrupted ingest of it decided (``finished``): then its rows were added now, as recorded."""
    counts = {k: record.get(k, 0) for k in COUNTERS}
    if digest in finished:
        finished.discard(digest)  # reported once: the same file again in this run adds nothing
        log.info("%s: finished the commit %s an interrupted ingest had decided", path, digest)
        return {"file": str(path), "digest": digest, **counts, "reasons": record.get("reasons", {}),
                "quarantine_written": record.get("quarantine_written", 0)}
    log.info("%s already ingested (commit %s): nothing added", path, digest)
    skipped = counts["rows_quarantined"] + counts["rows_filtered"] + counts["rows_dropped"]
    # the same rows are refused again, for the same reasons: the counts and the reasons agree
    return {"file": str(path), "digest": digest, **counts, "rows_accepted": 0,
            "rows_duplicate": counts["rows_in"] - skipped, "reasons": record.get("reasons", {}),
            "quarantine_written": 0}


def _check_reject_share(path: Path, counts: dict, staging: Staging, cfg: IngestConfig) -> None:
    """Fail the file (nothing stored) when more than max_reject_share of its rows are refused."""
    refused, rows = counts["rows_quarantined"], counts["rows_in"]
    if refused <= cfg.max_reject_share * rows:
        return
    top = sorted(staging.reasons.items(), key=lambda kv: -kv[1])[:3]
    reasons = "; ".join(f"{n} x {staging.examples.get(r, r)}" for r, n in top)
    raise IngestError(f"{path}: {refused} of {rows} rows refused, more than max_reject_share {cfg.max_reject_share:g}; "
                      f"nothing stored. Top reasons: {reasons}. Fix the mapping in [ingest] (columns, "
                      "timestamp_format for e.g. day-first dates) or raise max_reject_share")


def _stage_file(path: Path, cfg: Config, staging: Staging, counts: dict, progress: tqdm | None,
                committed: Callable[[], bool], digest=None) -> bool:
    """Read, validate and stage every row of ``path`` (the long part: no lock is held). Returns False,
    having stopped early, when ``committed()`` says the file is already in the store. ``digest``: a
    hashlib object the reader feeds the file's bytes (``read_chunks``)."""
    checked = False
    with closing(read_chunks(path, cfg.ingest, digest=digest)) as chunks:  # closed at once on any error: its reader thread ends
        for chunk in chunks:
            if committed():
                return False
            if not checked and len(chunk.column_names):  # the header, or the first JSON objects' keys
                _check_columns(path, chunk.column_names, cfg.ingest)
                checked = True
            counts["rows_quarantined"] += staging.write_bad(process(chunk, path, cfg.ingest, staging, counts))
            if progress is not None:
                progress.update(chunk.num_rows + len(chunk.malformed))
    if counts["rows_in"] == 0:
        raise IngestError(f"{path}: the file holds no rows")
    _check_reject_share(path, counts, staging, cfg.ingest)
    return True


def _commit_new(path: Path, digest: str, cfg: Config, store: Store, staging: Staging, counts: dict,
                finished: set[str], drop: Drop) -> dict:
    """Under the raw keys lock: drop the rows committed ingests hold, then commit the rest. The check
    and the commit run in one hold of the lock, so an ingest running beside this one either committed
    before the check (its keys count) or commits after this one (and finds ours)."""
    with locked(store.raw_keys_lock):
        try:
            finished.update(finish_pending(store))  # an ingest beside this one may have been killed after its decision
            commit = store.commits / f"{digest}.json"
            if commit.exists():  # the same file, committed by an ingest that ran beside this one
                staging.abort()
                return _already_done(path, digest, read_json(commit), finished)
            staging.adopt(digest)
            committed = _comparable_commits(store, cfg.ingest)
            counts["rows_duplicate"], written = staging.deduplicate(committed, drop)
        except BaseException:
            staging.abort()
            raise
        counts["rows_accepted"] -= counts["rows_duplicate"]
        summary = {"file": str(path), "digest": digest, **counts, "reasons": staging.reasons,
                   "quarantine_written": written,  # refused rows not already in quarantine/ (a re-export's)
                   "event_key": list(cfg.ingest.event_key)}  # keys of files with another key do not compare
        # the file's size: a later ingest of a file of another size knows it is not this one (``_sized_like``)
        staging.commit({k: v for k, v in summary.items() if k != "file"}
                       | {"source": str(path), "bytes": path.stat().st_size})
    return summary


def ingest_file(path: Path, cfg: Config, store: Store, progress: tqdm | None = None,
                finished: set[str] | None = None, drop: Drop | None = None) -> dict:
    """Ingest one file as one transaction; returns its counts. ``finished``: digests of interrupted
    commits this run completed (their files' rows count as added); ``drop``: the files before this one
    in the same ingest (identical rows are numbered across them), which this file joins."""
    finished = set() if finished is None else finished
    drop = Drop() if drop is None else drop
    stop = threading.Event()
    size = path.stat().st_size
    # A file no commit can be (no committed file has its size) is hashed by the reader as it reads; one
    # that may be is hashed on a thread beside the reading, so that a file already in the store stops
    # the reading as soon as its digest is known.
    inline = hashlib.sha256() if digests_inline(path, cfg.ingest) and not _sized_like(store, size) else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trendrec-digest") as pool:
        hashed = None if inline else pool.submit(file_digest, path, stop)  # read beside the staging
        staging = Staging(store, cfg.ingest, path.name, in_order=rises(path, cfg.ingest) is not False)
        counts = dict.fromkeys(COUNTERS, 0)
        try:
            staged = _stage_file(path, cfg, staging, counts, progress, _known(store, hashed), inline)
            digest = inline.hexdigest()[:20] if inline else hashed.result()
        except BaseException:
            stop.set()
            staging.abort()
            raise
    if not staged:
        staging.abort()
        drop.earlier.append(digest)
        return _already_done(path, digest, read_json(store.commits / f"{digest}.json"), finished)
    summary = _commit_new(path, digest, cfg, store, staging, counts, finished, drop)  # checks again, under the lock
    drop.earlier.append(digest)
    if summary["rows_accepted"] and not (store.ingest_stats / f"{digest}.json").exists():
        # after the commit, from what the staging counted in its pass (monitor/ingest-stats/, pipeline.ingest.stats)
        write_ingest_stats(store, digest, dict(cfg.ingest.columns), cfg.ingest.timezone, staging.tally)
    return summary


def _sized_like(store: Store, size: int) -> bool:
    """Whether a committed file may have ``size`` bytes (its record says so, or an older record does not say)."""
    records = (read_json(c) for c in store.commits.glob("*.json")) if store.commits.is_dir() else ()
    return any(record.get("bytes", size) == size for record in records)


def _known(store: Store, hashed: Future | None) -> Callable[[], bool]:
    """A check that is True once: when the file's digest has arrived and a commit of it exists (None:
    the digest comes with the last chunk; then never)."""
    checked = False

    def committed() -> bool:
        nonlocal checked
        if checked or hashed is None or not hashed.done():
            return False
        checked = True
        return (store.commits / f"{hashed.result()}.json").exists()
    return committed


def run_ingest(cfg: Config, source: str | Path | None = None) -> dict:
    """Ingest every file of ``source`` (default: the config's ``source``); returns the totals.

    A source that names no file fails before the store is touched; an ingest that fails on a store
    it created, before anything was committed, leaves no store folder behind."""
    source = source or cfg.source
    if not source:
        raise IngestError("no input given: pass a file, directory or glob, or set `source` in the config")
    files = resolve_sources(source)
    fresh = not Path(cfg.store).exists()
    store = Store(cfg.store).ensure()
    try:
        return _ingest_files(files, cfg, store)
    except BaseException:
        if fresh:
            _remove_unused(store)
        raise


def _remove_unused(store: Store) -> None:
    """Remove a store this ingest created when nothing is in it: no commit, no quarantined row and no
    ingest beside this one staging files."""
    busy = [store.ingest_staging, store.quarantine, store.commits]
    if not any(folder.is_dir() and any(folder.iterdir()) for folder in busy):
        shutil.rmtree(store.root, ignore_errors=True)


def _ingest_files(files: list[Path], cfg: Config, store: Store) -> dict:
    with locked(store.raw_keys_lock):  # never a commit that a live ingest is applying right now
        finished = set(finish_pending(store))  # a commit a crash cut short completes before anything else is read
        prune_raw_snapshots(store)  # snapshots killed commits left half-built
    started = time.monotonic()
    with tqdm(desc="ingest", unit=" rows", unit_scale=True, disable=not sys.stderr.isatty()) as bar:
        per_file, drop = [], Drop(keep=len(files) > 1)
        for number, path in enumerate(files, start=1):
            bar.set_postfix_str(f"file {number}/{len(files)} {path.name}")
            per_file.append(ingest_file(path, cfg, store, bar, finished, drop))
    totals = {k: sum(s[k] for s in per_file) for k in COUNTERS}
    reasons: dict[str, int] = {}
    for s in per_file:
        for k, v in s.get("reasons", {}).items():
            reasons[k] = reasons.get(k, 0) + v
    if totals["rows_in"] != sum(totals[k] for k in COUNTERS[1:]):
        raise IngestError(f"row accounting broke: {totals}")  # a bug, never bad input
    log.info("ingested %d files: %s", len(files), json.dumps(totals))
    if totals["rows_quarantined"] != sum(reasons.values()):
        raise IngestError(f"quarantine accounting broke: {totals['rows_quarantined']} rows, reasons {reasons}")
    return {"files": [str(f) for f in files], **totals, "quarantine_reasons": reasons,
            "quarantine_written": sum(s.get("quarantine_written", 0) for s in per_file),
            "raw_dir": str(store.raw), "quarantine_dir": str(store.quarantine),
            "seconds": round(time.monotonic() - started, 2)}
