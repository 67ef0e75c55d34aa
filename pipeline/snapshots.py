"""Immutable directory sets behind one symlink: how a multi-file write becomes visible all at once.

A writer builds a new set directory (``building``) beside the others, then replaces the symlink
readers go through with one rename (``replace_symlink``): a reader, trendrec's own or a DuckDB or
Spark glob, sees the whole old set or the whole new one, never a mix. Files of a set are never
changed after the swap, so a new set shares the unchanged ones with the previous set by hard link
(``link_tree``, ``link_or_copy``). The store uses it twice, through the functions at the end of this
module (pipeline.store re-exports them): ``raw`` -> ``.snapshots/raw-<id>/`` (``settle_raw``,
``raw_commit``) and ``aggregates/_current`` -> ``aggregates/_versions/<id>/`` (``aggregate_set``,
``current_aggregates``).

Locks are ``flock``s, which the kernel drops when their holder dies (SIGKILL included): a set
being built is locked by its builder, so ``prune`` removes only sets nobody builds any more
(leftovers of a killed run) and never the one a live process is writing; an area lock
(``locked``) makes swaps and prunes, and raw commits as a whole, one at a time. POSIX only.

    python -c "from pipeline.snapshots import sets; from pathlib import Path; print(sets(Path('s/.snapshots'), 'raw-'))"
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError

TMP_LINK = ".link-"  # prefix of a symlink made beside the sets, then renamed onto the public one
RAW_SNAPSHOT = "raw-"  # name prefix of a raw snapshot; "-legacy" ends one that was a plain raw/ directory


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``lock_file`` (created if absent) for the block."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def shared_folder(parent: Path, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><creation ns>-<random>`` with the mode the umask gives (0755
    under umask 022), not mkdtemp's 0700: store folders are read by Airflow workers and a service run
    by another user."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        new = parent / f"{prefix}{time.time_ns():020d}-{secrets.token_hex(4)}"
        try:
            new.mkdir(0o777)  # the umask takes its bits off, as for every other folder of the store
            return new
        except FileExistsError:
            continue


def held_folder(parent: Path, prefix: str) -> tuple[Path, int]:
    """A new, empty ``shared_folder`` and the descriptor that holds its flock: ``prune`` leaves it
    alone until the descriptor is closed (or its process dies)."""
    while True:
        new = shared_folder(parent, prefix)
        fd = os.open(new, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a prune may have taken it between mkdir and flock: then make another
            if os.path.samestat(os.fstat(fd), os.stat(new)):
                return new, fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def building(parent: Path, prefix: str) -> Iterator[Path]:
    """A new, empty set (``held_folder``), flock-ed by this process until the block ends; removed if the
    block fails."""
    new, fd = held_folder(parent, prefix)
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def sets(parent: Path, prefix: str) -> list[Path]:
    """The set directories under ``parent``, oldest first (names sort by creation time)."""
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink())


def prune(parent: Path, prefix: str, keep: set[str]) -> list[str]:
    """Remove every set but ``keep`` and those a live process is building, and the temporary links
    a killed swap left; call it under the area's ``locked``. Returns the names removed."""
    removed = []
    for old in sets(parent, prefix):
        if old.name not in keep and not _busy(old):
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old.name)
    for link in parent.glob(f"{TMP_LINK}*"):
        link.unlink(missing_ok=True)
    return removed


def _busy(folder: Path) -> bool:
    """True while another open descriptor (a live builder) holds ``folder``'s flock, or it is gone."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return True  # removed meanwhile: nothing to prune
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def replace_symlink(link: Path, points_to: Path, scratch: Path) -> None:
    """Make ``link`` a symlink to ``points_to`` atomically: a new link made in ``scratch`` (on the same
    disk, where ``prune`` clears what a kill leaves) is renamed over whatever ``link`` was."""
    if link.is_symlink() and Path(os.readlink(link)) == points_to:
        return
    if link.is_dir() and not link.is_symlink():  # a real directory cannot be renamed over
        shutil.rmtree(link)
    tmp = scratch / f"{TMP_LINK}{link.name}.{os.getpid()}.{time.time_ns()}.tmp"
    os.symlink(points_to, tmp)
    os.replace(tmp, link)


def link_or_copy(src: Path, dst: Path) -> None:
    """Share an immutable file with another set (hard link; a copy across devices)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def link_tree(src: Path, dst: Path) -> int:
    """Hard-link every file under ``src`` to the same place under ``dst``; returns the file count."""
    count = 0
    for folder, _, files in os.walk(src):
        target = dst / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            link_or_copy(Path(folder) / name, target / name)
        count += len(files)
    return count


def fsync(path: Path) -> None:
    """Flush a file's bytes to disk, so a set (or an atomic rename) never shows a file the disk lacks."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


# --- the store's two sets; ``store`` is a pipeline.store.Store, which imports this module ---
def current_aggregates(store: Any) -> Path | None:
    """The aggregate set directory readers see now, or None before the first `trendrec aggregate`."""
    link = store.aggregates_current
    return link.resolve() if link.is_symlink() and link.resolve().is_dir() else None


def prune_aggregate_sets(store: Any) -> list[str]:
    """Remove the sets killed aggregate runs left: all but the current one and those a live run builds.
    `trendrec aggregate` calls it at its start, so leftovers never outlive the next run."""
    with locked(store.aggregates / ".versions.lock"):
        current = current_aggregates(store)
        return prune(store.aggregate_versions, "", {current.name if current else ""})


@contextmanager
def aggregate_set(store: Any) -> Iterator[Path]:
    """Yield a new, empty set directory; if the block succeeds, make it current with one rename."""
    versions = store.aggregate_versions
    with building(versions, "") as new:
        yield new
        for f in new.rglob("*.parquet"):
            if f.is_file():
                fsync(f)
        with locked(store.aggregates / ".versions.lock"):
            previous = current_aggregates(store)
            # Before the swap, so a kill after it leaves nothing to tidy: every set but the one readers see
            # now (they may be mid-way; it stays until the next run), the new one and any a live run builds.
            prune(versions, "", {new.name, previous.name if previous else ""})
            # the fixed links first: on a first run they dangle until _current exists, then all appear at once
            for table in (store.daily_path, store.month_weekday_path):
                replace_symlink(table, Path("_current") / table.name, versions)
            replace_symlink(store.aggregates_current, Path(versions.name) / new.name, versions)  # relative link


def settle_raw(store: Any) -> Path:
    """Make raw/ a symlink to a snapshot (call under the snapshots lock); returns the snapshot.

    A new store gets an empty snapshot. A plain raw/ directory (a store from before snapshots) is
    moved whole into .snapshots/ (its keys to raw_keys first). raw/ missing with a "-legacy"
    snapshot present means a move was cut short: raw/ is pointed at it.
    """
    raw, snapshots = store.raw, store.snapshots
    snapshots.mkdir(parents=True, exist_ok=True)
    if raw.is_symlink():
        if not raw.resolve().is_dir():
            raise StoreError(f"{raw} points at {os.readlink(raw)}, which is missing; restore that snapshot "
                             f"or point {raw.name} at one in {snapshots}")
        return raw.resolve()
    if raw.is_dir():
        if (raw / "_keys").is_dir() and not store.raw_keys.exists():
            store.raw_keys.parent.mkdir(parents=True, exist_ok=True)
            os.rename(raw / "_keys", store.raw_keys)
        os.rename(raw, snapshots / f"{RAW_SNAPSHOT}{time.time_ns():020d}-legacy")
    legacy = [p for p in sets(snapshots, RAW_SNAPSHOT) if p.name.endswith("-legacy")]
    if legacy:
        target = legacy[-1]
    else:
        with building(snapshots, RAW_SNAPSHOT) as target:
            (target / "_commits").mkdir()
    replace_symlink(raw, Path(snapshots.name) / target.name, snapshots)
    return target


def prune_raw_snapshots(store: Any) -> list[str]:
    """Remove the raw snapshots killed ingests left half-built: every set but the one raw/ shows, the one
    before it (a reader may have resolved it just before the last switch) and those a live ingest builds.
    `trendrec ingest` calls it at its start, so a dead build never waits for the next commit. A store
    whose raw/ is no snapshot link yet (new, from before snapshots, a move cut short) is left to
    ``settle_raw``."""
    with locked(store.snapshots / ".lock"):
        if not (store.raw.is_symlink() and store.raw.resolve().is_dir()):
            return []
        current = store.raw.resolve()
        older = [p.name for p in sets(store.snapshots, RAW_SNAPSHOT) if p.name < current.name]
        return prune(store.snapshots, RAW_SNAPSHOT, {current.name, *older[-1:]})


@contextmanager
def raw_commit(store: Any) -> Iterator[Path]:
    """Yield the next raw snapshot, holding hard links to every file raw/ shows now; if the block
    succeeds, raw/ becomes it with one rename. Commits run one at a time (a lock), so none is lost."""
    with locked(store.snapshots / ".lock"):
        current = settle_raw(store)
        with building(store.snapshots, RAW_SNAPSHOT) as new:
            link_tree(current, new)
            yield new
            # before the swap (a kill after it leaves nothing to tidy); the current snapshot stays for a
            # reader that resolved it just before the swap, until the next commit
            prune(store.snapshots, RAW_SNAPSHOT, {new.name, current.name})
            replace_symlink(store.raw, Path(store.snapshots.name) / new.name, store.snapshots)
