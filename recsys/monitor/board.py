"""TensorBoard scalars of the monitor: one run per shop (``runs/monitor/``), drift checks and live results by day.

Each drift record (monitor/drift/<day>.json) gives ``drift/<check>`` (its value) and ``drift_failed/<check>``
(1 when it failed) at the step of its window's last day; each week of the live results table gives
``live/<family>/<metric>/<method>`` at the step of the week's first day (for a week judged for several
versions, the latest version's figures). Steps are days since 1970-01-01, so the curves of every
check and week line up on one axis, and a shop's store holds one run: point TensorBoard at several
stores' runs/ to compare shops. The run is rebuilt whole from the records on every call (in a fresh
folder swapped in by rename), so a re-run never doubles a point. Written with TensorBoard's own writer:
no TensorFlow.

    python -c "from recsys.monitor.board import write_board; print(write_board('trendrec-data'))"
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from pathlib import Path

from pipeline.store import Store
from recsys.monitor.live import read_live_results

RUN = "monitor"  # runs/monitor/
EPOCH = datetime.date(1970, 1, 1)


def step_of(day: str) -> int:
    """Days since 1970-01-01 of an ISO day: the step every monitor scalar is written at."""
    return (datetime.date.fromisoformat(day[:10]) - EPOCH).days


def _wall(day: str) -> float:
    return datetime.datetime.fromisoformat(day[:10]).replace(tzinfo=datetime.timezone.utc).timestamp()


def _scalars(store: Store) -> list[tuple[str, float, str]]:
    out = []
    for path in sorted(store.drift.glob("*.json")) if store.drift.is_dir() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        day = record["window"][1]
        for check in record.get("checks", []):
            if check.get("value") is not None:
                out.append((f"drift/{check['check']}", float(check["value"]), day))
            out.append((f"drift_failed/{check['check']}", 0.0 if check["passed"] else 1.0, day))
    live = read_live_results(store)
    if len(live):
        latest = live[live["version"] == live.groupby(["family", "start"])["version"].transform("max")]
        for row in latest.dropna(subset=["value"]).itertuples(index=False):
            out.append((f"live/{row.family}/{row.metric}/{row.method}", float(row.value), row.start))
    return out


def write_board(store: Store | str | os.PathLike) -> Path:
    """Rebuild runs/monitor/ from the drift records and the live results table; its path."""
    from tensorboard.summary import Writer

    store = store if isinstance(store, Store) else Store(store)
    target = store.runs / RUN
    fresh = store.runs / f".{RUN}-{time.time_ns()}"
    fresh.mkdir(parents=True)
    writer = Writer(str(fresh))
    for tag, value, day in sorted(_scalars(store), key=lambda t: (t[2], t[0])):
        writer.add_scalar(tag, value, step_of(day), wall_time=_wall(day))
    writer.close()
    old = store.runs / f".{RUN}-old-{time.time_ns()}"
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)
    return target
