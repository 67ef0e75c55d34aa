"""DuckDB connections over the store's committed events: held to a memory limit, spilling inside the store.

Both customer model families read the raw log through DuckDB: the next-basket model's histories
(recsys.nextbasket.histories) and the customer value models (recsys.value.data), and so do the next-basket
judge (recsys.nextbasket.judge) and the demo's base lists (recsys.evaluation.candidates). Each defines its own
``events`` view (``CREATE OR REPLACE VIEW events AS SELECT ... FROM ``); this module opens the
connection, points the view at the committed raw files (or at a DataFrame, in tests and the offline
protocol) and owns the spill folders: each connection spills into a folder of its own under the
store's .tmp/ (DuckDB makes it on the first spill and removes it on close), and a killed process's
folder is removed by the next connection on the same host.

    python -c "from pipeline.eventdb import view_over_store; print(view_over_store('trendrec-data', \
'CREATE VIEW events AS SELECT * FROM ', '1GB').sql('SELECT count(*) FROM events'))"
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.errors import StoreError, TrendrecError
from pipeline.store import Store


SPILL = "duckdb-spill-"  # a connection's spill folder: duckdb-spill-<host>-<pid>-<ns>


class EventsError(TrendrecError):
    """The events handed to a view lack a column it reads."""


def view_over_frame(events: pd.DataFrame, columns: tuple[str, ...], view_sql: str,
                    memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection where ``view_sql`` (``CREATE VIEW ... FROM ``) reads ``columns`` of a DataFrame; no
    store here, so its scratch goes to the system's temp dir."""
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise EventsError(f"events lack columns {missing} (have {list(events.columns)}); expected {list(columns)}")
    con = connect(Path(tempfile.gettempdir()), memory_limit)
    con.register("events_in", events[list(columns)])
    con.execute(view_sql + "events_in")
    return con


def view_over_store(root: str, view_sql: str, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection where ``view_sql`` reads the store's committed raw parquet files; its scratch (spill,
    temporary tables) stays in the store's .tmp/."""
    store = Store(root)
    files = [str(p) for p in store.committed_raw_files()]
    if not files:
        raise StoreError(f"{root}: no committed raw files; run `trendrec ingest` first")
    con = connect(store.tmp, memory_limit)
    con.execute(view_sql + f"read_parquet({files!r})")
    return con


def release_buffers(con: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    """Hand back the memory DuckDB's buffer manager keeps after its queries (cached blocks, the pages of
    dropped temporary tables) while the connection stays open: a limit near zero makes it evict them, then
    ``memory_limit`` (the connection's own) holds again. For a step that needs the memory next, e.g. training
    on what the queries built (at 5 M lines it frees 0.3 GiB, at 100 M up to the limit)."""
    con.execute("SET memory_limit = '32MB'")
    con.execute(f"SET memory_limit = '{memory_limit}'")


def connect(scratch: Path, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """A connection held to ``memory_limit`` that spills into a folder of its own under ``scratch``."""
    scratch.mkdir(parents=True, exist_ok=True)
    prune_spills(scratch)
    spill = scratch / f"{SPILL}{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
    return duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill)})


def prune_spills(scratch: Path) -> list[str]:
    """Remove the spill folders under ``scratch`` of this host's processes that are gone (a killed
    run's); another host's (a store shared by Celery workers) or a live process's are left alone."""
    prefix, removed = f"{SPILL}{socket.gethostname()}-", []
    for folder in scratch.glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
