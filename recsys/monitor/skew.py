"""Training-serving skew: what the service and the batch rerank could not score, per day, against the release's own.

``SkewCounter`` counts, per serving day (UTC) and production version, the lists and rows re-ranked and
what the release could not score: lists whose customer it has no push-time scores for
(``unknown_customers``), rows whose item none of its scores name (``unknown_items``) and rows whose
segment its trend table lacks (``unknown_segments``). Each process keeps its own counts and writes
them, whole, to ``monitor/skew/<day>/<source>-<host>-<pid>-<ns>.json`` (atomically; the service at most
every ``FLUSH_SECONDS`` and when it stops), so writers never share a file. The batch rerank writes once per
run to a file named after its output (``rerank-<digest of the output path>.json``), so a re-run of the same
rerank on the same day replaces its counts instead of adding them twice.

``check_skew`` (part of `trendrec drift`) sums the last days' records of the production version and
compares each share with the release's own on the reference's last week of events: the share of its
active customers the release scored none for, of rows whose item it scored for no one, and of rows
in segments its trend table lacks. A share more than the margin (0.25) above the release's own fails.

    python -c "from recsys.monitor.skew import read_skew; print(read_skew('trendrec-data'))"
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Container, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.store import Store, sweep_temp, write_json
from recsys import registry
from recsys.monitor.check import Check, num

FLUSH_SECONDS = 5.0
COUNTS = ("lists", "rows", "unknown_customers", "unknown_items", "unknown_segments")
SHARES = {"customers": ("unknown_customers", "lists"), "items": ("unknown_items", "rows"),
          "segments": ("unknown_segments", "rows")}


class SkewCounter:
    """Per day and version counts of one process (``source``: "serve" or "rerank")."""

    def __init__(self, store: Store, source: str, flush_seconds: float = FLUSH_SECONDS, name: str | None = None):
        self.store, self.source, self.flush_seconds = store, source, flush_seconds
        self.counts: dict[str, dict[str, dict[str, int]]] = {}  # day -> version -> counts
        self._dirty: set[str] = set()
        self._flushed = time.monotonic()
        self._lock = threading.Lock()
        # one file per counter (``name``: a fixed one, which the counter's next run replaces)
        self._name = name or f"{source}-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.json"

    def count(self, version: str | None, day: datetime.date | None = None, **counts: int) -> None:
        """Add ``counts`` (names of COUNTS) for ``version`` on ``day`` (default: today, UTC); flush when due."""
        day_s = str(day or datetime.datetime.now(datetime.timezone.utc).date())
        with self._lock:
            cell = self.counts.setdefault(day_s, {}).setdefault(str(version), dict.fromkeys(COUNTS, 0))
            for name, n in counts.items():
                cell[name] += int(n)
            self._dirty.add(day_s)
        if time.monotonic() - self._flushed >= self.flush_seconds:
            self.flush()

    def sweep(self) -> int:
        """Remove the temp files a killed writer of this counter's (fixed) file name left, in any day's
        folder; the caller holds the lock of what the name stands for (the batch: its output's)."""
        return sum(sweep_temp(tmp.parent / self._name) for tmp in self.store.skew.glob(f"*/.{self._name}.*.tmp"))

    def flush(self) -> list[Path]:
        """Write the days counted since the last flush; the paths written."""
        with self._lock:
            dirty, self._dirty = sorted(self._dirty), set()
            snapshot = {d: json.loads(json.dumps(self.counts[d])) for d in dirty}
            self._flushed = time.monotonic()
        return [write_json({"day": d, "source": self.source, "versions": v}, self.store.skew / d / self._name)
                for d, v in snapshot.items()]


def count_lists(counter: SkewCounter, version: str | None, users: Sequence[object], items: Sequence[object],
                segments: Sequence[object], knows_user: Callable[[object], bool], knows_item: Callable[[object], bool],
                trends: Container, day: datetime.date | None = None) -> dict[str, int]:
    """Count candidate rows (``users[k]``, ``items[k]``, ``segments[k]``) into ``counter``: the lists
    (distinct users), the lists of users the release cannot score, the rows of items it scored for no one
    and the rows of segments it has no trend of, on ``day`` (default: today, UTC). Returns the counts."""
    distinct = set(users)
    counts = {"lists": len(distinct), "rows": len(items),
              "unknown_customers": sum(not knows_user(u) for u in distinct),
              "unknown_items": sum(not knows_item(i) for i in items),
              "unknown_segments": sum(seg not in trends for seg in segments)}
    counter.count(version, day, **counts)
    return counts


def scored_items(release: registry.Release) -> set[str]:
    """The items any push-time score of ``release`` names (empty without a score table)."""
    if release.scores_file is None:
        return set()
    file, items = pq.ParquetFile(release.scores_file), set()
    for k in range(file.metadata.num_row_groups):  # a group at a time: the table may hold 100 M pairs
        items.update(pc.unique(file.read_row_group(k, columns=[s.ITEM_ID])[s.ITEM_ID]).to_pylist())
    return items


def read_skew(store: Store | str | os.PathLike, days: Iterable[str] | None = None) -> dict[str, dict[str, dict[str, int]]]:
    """{day: {version: summed counts}} of every process's records (of ``days`` only, when given)."""
    store = store if isinstance(store, Store) else Store(store)
    wanted = None if days is None else set(days)
    out: dict[str, dict[str, dict[str, int]]] = {}
    for folder in sorted(store.skew.iterdir()) if store.skew.is_dir() else []:
        if wanted is not None and folder.name not in wanted:
            continue
        for path in sorted(folder.glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            for version, counts in (record.get("versions") or {}).items():
                cell = out.setdefault(folder.name, {}).setdefault(version, dict.fromkeys(COUNTS, 0))
                for name in COUNTS:
                    cell[name] += int(counts.get(name, 0))
    return out


def release_shares(release: registry.Release, recent: pd.DataFrame) -> dict[str, float]:
    """The release's own shares on ``recent`` events (the reference's last week): customers it scored
    none for among the active ones, rows of items it scored for no one, rows of segments it has no trend of."""
    shares = {"customers": float("nan"), "items": float("nan"), "segments": float("nan")}
    if recent.empty:
        return shares
    if release.scores_file is None:  # no customer model: it scores no one, in training as when serving
        shares["customers"] = shares["items"] = 1.0
    if release.trend_file is not None:
        known = set(pq.read_table(release.trend_file, columns=[s.SEGMENT])[s.SEGMENT].to_pylist())
        shares["segments"] = float((~recent[s.SEGMENT].isin(known)).mean())
    if release.scores_file is not None:
        table = pq.read_table(release.scores_file, columns=[s.USER_ID, s.ITEM_ID])
        users = set(pc.unique(table[s.USER_ID]).to_pylist())
        items = set(pc.unique(table[s.ITEM_ID]).to_pylist())
        customers = recent[s.USER_ID].dropna().astype(str).unique()
        shares["customers"] = float(np.mean([u not in users for u in customers])) if len(customers) else float("nan")
        shares["items"] = float((~recent[s.ITEM_ID].astype(str).isin(items)).mean())
    return shares


def check_skew(store: Store, windows: Any, reference: pd.DataFrame, margin: float, days: int = 7) -> list[Check]:
    """One check per share (customers, items, segments) of the production version's last ``days``
    serving days; passed with no value when nothing was counted."""
    records = read_skew(store)
    served = [d for d in sorted(records) if windows.version in records[d]][-days:]
    totals = dict.fromkeys(COUNTS, 0)
    for day in served:
        for name in COUNTS:
            totals[name] += records[day][windows.version][name]
    if not served or windows.version is None:
        return [Check(f"skew:{name}", None, None, True, "", {"note": "no requests of the production version counted"})
                for name in SHARES]
    release = registry.load_release(store, windows.version)
    recent_start = pd.Timestamp(windows.ref_end - datetime.timedelta(days=days))
    recent = reference[pd.to_datetime(reference[s.EVENT_DATE]) >= recent_start]
    own = release_shares(release, recent)
    checks = []
    for name, (unknown, total) in SHARES.items():
        value = totals[unknown] / totals[total] if totals[total] else float("nan")
        limit = (own[name] if np.isfinite(own[name]) else 0.0) + margin
        passed = not np.isfinite(value) or value <= limit
        why = "" if passed else (f"{name}: {value:.0%} of what was served on {served[0]}..{served[-1]} is unknown to "
                                 f"{windows.version} (its own share on its last training week {own[name]:.0%})")
        checks.append(Check(f"skew:{name}", num(value), num(limit), passed, why,
                            {"release_share": num(own[name]), "days": served, **totals}))
    return checks
