"""The files of one ingest run (a folder, a glob, a landing drop) and what their dedup passes share.

Each file's dedup pass needs, per day, the committed event keys of the store and, in a drop of several
files, the field hashes of the drop's earlier files (identical rows are numbered across them). Both are
read from one small file per (commit, day): read again for every file, a drop of F files spanning D days
opened about F² · D / 2 of them (30 files of Online Retail: 130,000 reads, most of its ingest time).
``Drop`` keeps what it read per day and reads only the commits and files that are new since, so each
is read once per run. The cache stops at ``CACHE_BYTES`` (8 bytes a row); a larger drop reads as before.

Commits can only be added while a drop runs (each file's check and commit run under the raw keys lock,
and an ingest beside this one may commit between two of its files): a day's cache is topped up with
the commits it has not seen, and rebuilt if one it holds is gone.

    python -c "from pipeline.ingest.drop import CACHE_BYTES; print(CACHE_BYTES >> 20, 'MiB')"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.store import Store

KEY = "key"
CACHE_BYTES = 128 << 20  # keys and hashes kept per run: 16 M rows' worth


@dataclass
class _Day:
    seen: set[str]  # digests looked up (a commit without rows on this day included)
    values: np.ndarray  # sorted


@dataclass
class Drop:
    """The files of one ingest, read in order: identical rows are numbered across all of them, so a
    repeat split over two files counts as in one file.

    ``earlier`` are the digests of the drop's files before this one; each file of a multi-file drop
    keeps its field hashes per day in ``Store.drop_bases`` at commit, so a re-run after a crash, which
    skips the committed files unread, still numbers on from them.
    """

    earlier: list[str] = field(default_factory=list)
    keep: bool = False  # a drop of more than one file: keep each file's field hashes
    _bases: dict[str, _Day] = field(default_factory=dict)
    _keys: dict[str, _Day] = field(default_factory=dict)
    _cached: int = 0  # bytes held by both caches
    _full: bool = False  # CACHE_BYTES reached: nothing more is kept
    _lock: threading.Lock = field(default_factory=threading.Lock)  # days are deduplicated two at a time

    def prior(self, store: Store, day: str) -> np.ndarray | None:
        """The sorted field hashes of ``day`` in the drop's earlier files (None: there are none)."""
        wanted = set(self.earlier)
        found = self._topped_up(self._bases, day, wanted,
                                lambda d: _u64(store.drop_bases / d / f"event_date={day}.u64"))
        return found if len(found) else None

    def committed_keys(self, store: Store, day: str, committed: set[str]) -> np.ndarray:
        """The sorted event keys of ``day`` held by the ``committed`` digests (leftovers ignored)."""
        folder = store.raw_keys / f"event_date={day}"
        return self._topped_up(self._keys, day, committed, lambda d: _keys(folder / f"{d}.parquet"))

    def _topped_up(self, cache: dict[str, _Day], day: str, wanted: set[str], read) -> np.ndarray:
        """``day``'s values of the ``wanted`` digests; cached only in a drop of several files (``keep``)."""
        held = cache.get(day) if self.keep else None
        if held is None or not held.seen <= wanted:  # first use, or a commit it holds is gone: rebuild
            held = _Day(set(), np.empty(0, np.uint64))
        new = sorted(wanted - held.seen)
        if new:
            parts = [p for p in map(read, new) if p is not None]
            if parts:
                held = _Day(held.seen | set(new), np.sort(np.concatenate([held.values, *parts])))
            else:
                held = _Day(held.seen | set(new), held.values)
        if self.keep:
            self._keep(cache, day, held)
        return held.values

    def _keep(self, cache: dict[str, _Day], day: str, held: _Day) -> None:
        with self._lock:
            if self._full:
                return
            old = cache.get(day)
            self._cached += held.values.nbytes - (old.values.nbytes if old is not None else 0)
            cache[day] = held
            if self._cached > CACHE_BYTES:  # from here on each lookup reads its files, as without a cache
                self._full = True
                self._bases.clear()
                self._keys.clear()
                self._cached = 0


def contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``sorted_values`` (np.isin without sorting the haystack again)."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def _u64(path: Path) -> np.ndarray | None:
    return np.fromfile(path, dtype=np.uint64) if path.is_file() else None


def _keys(path: Path) -> np.ndarray | None:
    return pq.read_table(path, columns=[KEY]).column(KEY).to_numpy() if path.is_file() else None
