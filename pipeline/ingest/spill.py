"""Rows of days whose day file is not open, spilled to one scratch file and read back per day.

A log in time order is written straight to one parquet file per day (pipeline.ingest.staging). A log
in any other order (several exports one after another, a database export ordered by customer or item,
no order at all) touches most days in every batch; their rows come here instead: they are buffered
until ``SPILL_BYTES``, then written to ``spill.arrow`` in the staging folder as one compressed Arrow IPC
stream per day (each day's rows in the file's order), and the offset of each piece is kept. The dedup
pass reads a day's pieces back with one ``pread`` each, appends them to the rows its day file holds, and
writes that day's file once. Memory stays bounded by the buffer and one day's rows, whatever the order;
the work per row is the same in every order: one parse, one LZ4 round trip, one parquet encoding.

    python -c "from pipeline.ingest.spill import SPILL_BYTES; print(SPILL_BYTES >> 20, 'MiB')"
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline import schemas

# Rows buffered before a flush. More means fewer, larger pieces per day (fewer reads at dedup) and a
# higher peak: at 64 MiB a flush holds about one 500k-row batch.
SPILL_BYTES = 64 << 20
NAME = "spill.arrow"  # in the staging folder: scratch, never committed
BASE = "_base"  # the rows' field hashes (validate.event_key_base) travel with them
SCHEMA = schemas.RAW_SCHEMA.append(pa.field(BASE, pa.uint64(), nullable=False))
# LZ4 compresses the text columns about 3x at a few GB/s: the spill stays a fraction of the log's size.
_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class DaySpill:
    """Rows of many days in, each day's rows out in the order they came in."""

    def __init__(self, folder: Path):
        self.folder = folder  # follows the staging folder when it is renamed (``moved``)
        self.pieces: dict[str, list[tuple[int, int]]] = {}  # day -> (offset, length) in NAME
        self._buffer: list[tuple[pa.Table, list[tuple[str, int, int]]]] = []  # (rows, (day, start, count))
        self._buffered = 0
        self._fh = None

    def add(self, rows: pa.Table, base: np.ndarray, runs: list[tuple[str, int, int]]) -> None:
        """Buffer the ``runs`` (day, first row, row count) of ``rows`` (sorted by day), ``base`` their hashes."""
        if sum(n for _, _, n in runs) < rows.num_rows:  # a few rows of a large batch: copy them, let it go
            rows = pa.concat_tables([rows.slice(start, n) for _, start, n in runs]).combine_chunks()
            base = np.concatenate([base[start:start + n] for _, start, n in runs])
            starts = np.cumsum([0] + [n for _, _, n in runs])
            runs = [(day, int(at), n) for (day, _, n), at in zip(runs, starts)]
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
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, SCHEMA, options=_OPTIONS) as writer:
                for piece in by_day[day]:
                    writer.write_table(piece)
            data = sink.getvalue()
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
            tables = [pa.ipc.open_stream(pa.py_buffer(os.pread(fd, length, offset))).read_all()
                      for offset, length in pieces]
        finally:
            os.close(fd)
        rows = pa.concat_tables(tables)
        return rows.drop_columns([BASE]), rows.column(BASE).to_numpy()
