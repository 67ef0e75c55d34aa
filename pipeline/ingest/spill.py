"""Rows of days whose day file is not open, spilled to one scratch file and read back per day.

A log in time order is written straight to one parquet file per day (pipeline.ingest.staging). A log
in any other order (several exports one after another, a database export ordered by customer or item,
no order at all) touches most days in every batch; their rows come here instead (all of them when
order.rises finds the CSV's times falling somewhere, so that no day file written during the read
has to be read back and written again at the dedup pass): they are buffered
until ``SPILL_BYTES``, then appended to ``spill.arrow`` in the staging folder as one Arrow IPC record
batch message per day (each day's rows in the file's order), and the offset of each piece is kept. The
dedup pass reads a day's pieces back with one ``pread`` each, appends them to the rows its day file
holds, and writes that day's file once. Memory stays bounded by the buffer and one day's rows, whatever
the order; the work per row is the same in every order: one parse, one copy out and back, one parquet
encoding.

The pieces are not compressed, and they leave out what every row of a piece shares (its day, and the
file it came from, the same for a whole staging): on a 20 M-line log ordered by customer, LZ4 pieces with
a schema each took 5.5 s of CPU to write and 8.7 s to read back (py-spy), for a spill that lives a few
seconds in the page cache; the ingest went from 27.4 to 20.0 s without the compression alone
(benchmarks/README.md, "Log order (issue 34), ninth session"). The disk holds about 80 bytes per spilled
row until the commit.

    python -c "from pipeline.ingest.spill import SPILL_BYTES; print(SPILL_BYTES >> 20, 'MiB')"
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import schemas

# Rows buffered before a flush. More means fewer, larger pieces per day (fewer writes and reads, each
# with its own cost per piece) and a higher peak; a 400k-row batch is about 30 MiB here, so at the
# default batch size two or three batches make one piece per day. On a 20 M-line log ordered by item
# (730 days), 16 MiB (a piece per day and batch) took 19.8-19.9 s and 550-577 MiB, 32 MiB 18.0-19.1 s,
# 64 MiB 17.4-17.9 s and 626-657 MiB, 128 MiB no less time and 680-703 MiB.
SPILL_BYTES = 64 << 20
NAME = "spill.arrow"  # in the staging folder: scratch, never committed
BASE = "_base"  # the rows' field hashes (rowhash.event_key_base) travel with them
SHARED = (schemas.EVENT_DATE, schemas.SOURCE_FILE)  # the same in every row of a piece: not spilled
COLUMNS = [f.name for f in schemas.RAW_SCHEMA if f.name not in SHARED]  # what a piece holds, with BASE
SCHEMA = pa.schema([schemas.RAW_SCHEMA.field(c) for c in COLUMNS] + [pa.field(BASE, pa.uint64(), nullable=False)])


class DaySpill:
    """Rows of many days in, each day's rows out in the order they came in."""

    def __init__(self, folder: Path, source: str):
        self.folder = folder  # follows the staging folder when it is renamed (``moved``)
        self.source = source  # the source file's name: every row of one staging has it
        self.pieces: dict[str, list[tuple[int, int]]] = {}  # day -> (offset, length) in NAME
        self._buffer: list[tuple[pa.Table, list[tuple[str, int, int]]]] = []  # (rows, (day, start, count))
        self._buffered = 0
        self._fh = None

    def add(self, rows: pa.Table, base: np.ndarray, runs: list[tuple[str, int, int]]) -> None:
        """Buffer ``rows`` (COLUMNS, sorted by day; ``base`` their hashes), whose ``runs`` (day, first
        row, row count) cover them all."""
        self._buffer.append((pa.Table.from_arrays([*rows.columns, pa.array(base, pa.uint64())], schema=SCHEMA), runs))
        self._buffered += rows.nbytes
        if self._buffered >= SPILL_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows, one piece per day."""
        by_day: dict[str, list[pa.Table]] = {}
        for rows, runs in self._buffer:
            for day, start, n in runs:
                by_day.setdefault(day, []).append(rows.slice(start, n))
        self._buffer, self._buffered = [], 0
        if not by_day:
            return
        if self._fh is None:
            self._fh = open(self.folder / NAME, "ab")  # noqa: SIM115 - closed in close()
        for day in sorted(by_day):
            parts = by_day[day]
            rows = parts[0] if len(parts) == 1 else pa.concat_tables(parts).combine_chunks()
            for batch in rows.to_batches():
                data = batch.serialize()  # one IPC message, no schema: SCHEMA is known when read back
                self.pieces.setdefault(day, []).append((self._fh.tell(), data.size))
                self._fh.write(data)

    def close(self) -> None:
        """Flush and close (before the staging folder is renamed or read back)."""
        try:
            self.flush()
        finally:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def read(self, day: str) -> tuple[pa.Table, np.ndarray] | None:
        """The day's spilled rows (RAW_SCHEMA) and their hashes, in the order they came in; None if none."""
        pieces = self.pieces.get(day)
        if not pieces:
            return None
        fd = os.open(self.folder / NAME, os.O_RDONLY)
        try:
            batches = [pa.ipc.read_record_batch(pa.py_buffer(os.pread(fd, length, offset)), SCHEMA)
                       for offset, length in pieces]
        finally:
            os.close(fd)
        rows = pa.Table.from_batches(batches, SCHEMA)
        date = pa.scalar(datetime.date.fromisoformat(day), pa.date32())
        shared = {schemas.EVENT_DATE: pa.chunked_array([pa.repeat(date, rows.num_rows)]),
                  schemas.SOURCE_FILE: pa.chunked_array([pa.repeat(pa.scalar(self.source), rows.num_rows)])}
        columns = [shared[f.name] if f.name in shared else rows.column(f.name) for f in schemas.RAW_SCHEMA]
        return pa.Table.from_arrays(columns, schema=schemas.RAW_SCHEMA), rows.column(BASE).to_numpy()
