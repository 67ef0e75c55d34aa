"""Two ingests at once, on files that share events: each event is stored once, whoever commits first.

The overlap is forced, not left to timing: each ingest, about to commit, waits until the other has
reached its own commit too or is blocked on a lock (read from /proc/locks). An ingest that decided
"new" without the lock that serialises commits then commits the shared events a second time.
"""

import multiprocessing
import os
import time
from pathlib import Path

import duckdb
import pytest

from pipeline import schemas as s
from pipeline.ingest.ingest import COUNTERS, run_ingest
from pipeline.ingest.staging import Staging
from tests.ingest.conftest import USER_COLUMNS, ingest_config, write_csv

SHARED, OWN = 200, 50
pytestmark = pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")


def _rows(prefix: str, count: int) -> list[str]:
    return [f"2024-03-{1 + i % 5:02d} 10:{i % 60:02d}:00,{prefix}{i},1,2.5,c{i}" for i in range(count)]


def _blocked_on_lock(pid: int) -> bool:
    """Whether ``pid`` waits for a flock (a "->" line of /proc/locks)."""
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[fields.index("->") + 4] == str(pid):
            return True
    return False


def _wait_for_peer(reached, pid: int) -> None:
    deadline = time.monotonic() + 120  # a cap, so a broken run fails instead of hanging
    while not reached.is_set() and not _blocked_on_lock(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the other ingest (pid {pid}) neither reached its commit nor waits for a lock")
        time.sleep(0.01)


def _ingest(cfg, path, me: int, start, pids, reached, results) -> None:
    """One ingest process: the real run_ingest, with a pause in front of Staging.commit."""
    pids[me] = os.getpid()
    start.wait(timeout=120)  # both pids are known from here on
    commit = Staging.commit

    def paused(self, summary):
        reached[me].set()
        _wait_for_peer(reached[1 - me], pids[1 - me])
        return commit(self, summary)

    Staging.commit = paused
    results.put((me, run_ingest(cfg, path)))


def test_two_overlapping_ingests_at_once_store_each_event_once(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    files = [write_csv(tmp_path, _rows("S", SHARED) + _rows(f"{name}-", OWN), f"{name}.csv") for name in "ab"]
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter each: nothing forked mid-state
    start, pids, results = ctx.Barrier(2), ctx.Array("i", 2), ctx.Queue()
    reached = [ctx.Event(), ctx.Event()]
    procs = [ctx.Process(target=_ingest, args=(cfg, files[me], me, start, pids, reached, results)) for me in (0, 1)]
    for p in procs:
        p.start()
    summaries = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    glob = f"{cfg.store}/raw/**/*.parquet"
    counts = duckdb.sql(f"SELECT {s.ITEM_ID}, count(*) AS n FROM read_parquet('{glob}', hive_partitioning=false) "
                        f"GROUP BY ALL").fetchall()
    assert len(counts) == SHARED + 2 * OWN
    assert {n for _, n in counts} == {1}  # every event exactly once
    assert sum(r["rows_accepted"] for r in summaries.values()) == SHARED + 2 * OWN
    assert sum(r["rows_duplicate"] for r in summaries.values()) == SHARED
    for r in summaries.values():
        assert r["rows_in"] == SHARED + OWN == sum(r[k] for k in COUNTERS[1:])
