"""An ingest's commit, applied from its decision; and the decisions a crash cut short, finished.

The staging folder (pipeline.ingest.staging) first gets ``commit.json`` (the decision: every file's place and the
summary); then each day's keys go to ``.keys/raw/event_date=.../<digest>.parquet``;
then one raw snapshot is built with the day files (raw/event_date=.../part-<digest>.parquet) and
raw/_commits/<digest>.json, and raw/ is switched to it with one rename (pipeline.store.raw_commit):
that is the moment the ingest becomes visible, to trendrec and to a DuckDB or Spark glob over
``raw/**/*.parquet`` alike, all its files at once. Last, the refused rows and their keys are renamed
into quarantine/, so quarantine/ too only shows committed ingests. A crash after the decision is
finished by the next ingest (``finish_pending``: each step is skipped when already done); a crash
before it leaves nothing outside .staging/.

    python -c "from pipeline.ingest.commits import INTENT; print(INTENT)"
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline.snapshots import link_or_copy, prune
from pipeline.store import Store, raw_commit, read_json, write_json

log = logging.getLogger(__name__)
INTENT = "commit.json"  # in a staging folder: the commit is decided, only renames remain
PARTIAL = "partial-"  # a staging folder whose file's digest is not known yet
LEGACY_KEYS = "raw/_keys/"  # where raw keys were kept before raw snapshots (a pending decision may name it)


def finish_pending(store: Store) -> list[str]:
    """Complete every commit that was decided but cut short by a crash, and remove the partial folders
    of killed ingests; returns the digests completed. Call it under the raw keys lock."""
    root = store.ingest_staging
    done = []
    if root.is_dir():
        prune(root, PARTIAL, set())  # a live ingest holds its folder's flock: left alone
    for intent in sorted(root.glob(f"*/{INTENT}")) if root.is_dir() else []:
        record = read_json(intent)
        apply(store, intent.parent, record)
        done.append(intent.parent.name)
        log.info("finished the interrupted commit of %s", record.get("source", intent.parent.name))
    return done


def apply(store: Store, folder: Path, record: dict) -> None:
    """The steps of a decided commit, each skipped when already done: keys, the raw snapshot (day
    files and commit record, visible at once), the quarantine files; then the staging folder goes."""
    # a decision written before raw snapshots named the keys' old place, raw/_keys/
    moves = [(name, target.replace(LEGACY_KEYS, keys_prefix(store), 1)) for name, target in record["moves"]]
    days = [(name, target) for name, target in moves if target.startswith("raw/")]
    _rename(store, folder, [m for m in moves if m[1].startswith((keys_prefix(store), bases_prefix(store)))])
    if not (store.commits / f"{folder.name}.json").exists():
        with raw_commit(store) as snapshot:
            for name, target in days:
                final = snapshot / target.removeprefix("raw/")
                final.parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(folder / name, final)  # a link: the staged file stays until the commit is done
            write_json({k: v for k, v in record.items() if k != "moves"}, snapshot / "_commits" / f"{folder.name}.json")
    _rename(store, folder, [m for m in moves if m[1].startswith("quarantine/")])
    shutil.rmtree(folder, ignore_errors=True)


def keys_prefix(store: Store) -> str:
    return store.raw_keys.relative_to(store.root).as_posix() + "/"


def bases_prefix(store: Store) -> str:
    return store.drop_bases.relative_to(store.root).as_posix() + "/"


def _rename(store: Store, folder: Path, moves: list[tuple[str, str]]) -> None:
    for name, target in moves:
        staged, final = folder / name, store.root / target
        if staged.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(final)
