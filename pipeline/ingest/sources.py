"""Read a shop's files (CSV, JSON lines, parquet; each optionally gzip) as bounded chunks.

Every reader yields ``Chunk``s of at most ``ingest.batch_rows`` rows: a pandas frame with the shop's
own column names, the 1-based source line of each row, and the rows that could not even be split
into fields (a CSV line with the wrong number of fields, a JSON line that is truncated, invalid or
not an object) with their original text. A file that cannot be read at all raises ``IngestError`` naming the file.

    python -c "from pipeline.ingest.sources import resolve_sources; print(resolve_sources('data/demo'))"
"""

from __future__ import annotations

import glob
import gzip
import json
import queue
import re
import shutil
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import IngestConfig
from pipeline.errors import TrendrecError
from pipeline.ingest import csv_reader

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".txt": "csv",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}  # not .json: manifests in a drop folder would be read


class IngestError(TrendrecError):
    """A source file cannot be ingested at all (unreadable, wrong format, a mapped column missing)."""


@dataclass
class Chunk:
    """Up to batch_rows parsed rows, their source lines, and the rows that would not parse."""

    frame: pd.DataFrame | None  # the rows (None: a CSV chunk's, made from ``table`` when first asked for)
    lines: np.ndarray  # int64 source line of each frame row
    raw_text: list[str] | None = None  # original text of each frame row when the format keeps it
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)
    csv: bool = False  # a CSV chunk: every frame column is the text of one field, in the file's order
    table: pa.Table | None = None  # a CSV chunk's rows as the reader gives them (text columns)

    def pandas(self) -> pd.DataFrame:
        if self.frame is None:
            self.frame = self.table.to_pandas()
        return self.frame

    @property
    def column_names(self) -> list[str]:
        return self.table.column_names if self.frame is None else list(self.frame.columns)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows if self.frame is None else len(self.frame)


def resolve_sources(source: str | Path) -> list[Path]:
    """A file, a directory (its CSV, JSON lines and parquet files) or a glob → sorted list of files."""
    p = Path(source)
    if p.is_dir():
        files = [f for f in p.iterdir()
                 if f.is_file() and format_of(f, "auto") and not f.name.startswith(".")]
    elif p.exists():
        files = [p]
    else:
        files = [Path(f) for f in glob.glob(str(source)) if Path(f).is_file()]
    if not files:
        raise IngestError(f"{source}: no such file, or no CSV/JSON lines/parquet file matches")
    return sorted(files)


def is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def format_of(path: Path, configured: str) -> str:
    """The configured format, else the one named by the suffix before an optional .gz ('' if none)."""
    if configured != "auto":
        return configured
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1], "") if suffixes else ""


def first_data_line(path: Path, cfg: IngestConfig) -> int:
    """Line number of the first row: 2 for a CSV with a header, else 1."""
    return 2 if format_of(path, cfg.format) == "csv" and cfg.csv_header else 1


def read_chunks(path: Path, cfg: IngestConfig, ahead: bool = True, digest=None) -> Iterator[Chunk]:
    """Stream ``path`` as chunks; any read failure becomes one IngestError naming the file. With
    ``ahead`` the next chunk of a CSV or parquet file is read and parsed on a thread of its own while the
    caller works on this one (pyarrow's parsing releases the GIL): one chunk in flight, so memory stays
    bounded. JSON lines are parsed by ``json.loads``, which holds the GIL, so they are read in turn (1.2 M
    lines, one run each: 17.0 s so, 17.7 s with the thread). ``digest`` (a hashlib object; plain CSV
    files only, see ``digests_inline``) is fed every byte of the file as it is read: once the last chunk
    is out it holds the file's hash, without a second read of the file."""
    if digest is not None and not digests_inline(path, cfg):
        raise ValueError(f"{path}: only a plain CSV file is hashed as it is read")
    chunks = _read_chunks(path, cfg, digest)
    gil_bound = format_of(path, cfg.format) == "jsonl"
    return _ahead(chunks, f"trendrec-read-{path.name}") if ahead and not gil_bound else chunks


def _ahead(items: Iterator, name: str) -> Iterator:
    """``items`` produced one step ahead on a thread. The thread owns the generator: it stops and closes
    it (closing its files) when the consumer stops early, and passes any error on to the consumer."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    turn = threading.Semaphore(1)  # the next item is made only once the consumer took the last one
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def wait_turn() -> bool:
        while not stop.is_set():
            if turn.acquire(timeout=0.1):
                return True
        return False

    def produce() -> None:
        try:
            while wait_turn():
                item = next(items, done)
                if not put((item, None)) or item is done:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((None, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            turn.release()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def digests_inline(path: Path, cfg: IngestConfig) -> bool:
    """Whether ``read_chunks`` can hash the file's bytes as it reads them (a CSV file, not gzip)."""
    return format_of(path, cfg.format) == "csv" and not is_gzip(path)


class _Hashed:
    """A binary file whose bytes go into ``digest`` as they are read."""

    def __init__(self, fh: BinaryIO, digest):
        self.fh, self.digest = fh, digest

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        return data

    def readinto(self, buffer) -> int:
        read = self.fh.readinto(buffer)
        self.digest.update(memoryview(buffer)[:read])
        return read


def _read_chunks(path: Path, cfg: IngestConfig, digest=None) -> Iterator[Chunk]:
    fmt = format_of(path, cfg.format)
    readers = {"csv": _csv_chunks, "jsonl": _jsonl_chunks, "parquet": _parquet_chunks}
    if fmt not in readers:
        raise IngestError(f"{path}: unknown format; name it .csv, .jsonl or .parquet (optionally .gz) "
                          "or set ingest.format")
    try:
        yield from _csv_chunks(path, cfg, digest) if fmt == "csv" else readers[fmt](path, cfg)
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        gz = " (gzip)" if is_gzip(path) else ""
        raise IngestError(f"{path}: cannot be read as {fmt}{gz}: {exc}") from None


def _csv_chunks(path: Path, cfg: IngestConfig, digest=None) -> Iterator[Chunk]:
    with _open_binary(path) as fh:
        head = fh.read(1 << 16)
    if csv_reader.looks_binary(head):
        raise IngestError(f"{path}: cannot be read as csv: binary content (NUL bytes or not UTF-8 text)")
    with _open_binary(path) as raw:
        fh = raw if digest is None else _Hashed(raw, digest)
        names, rest = csv_reader.read_header(fh, cfg)
        twice = csv_reader.duplicates(names)
        if twice:
            raise IngestError(f"{path}: the header names {twice} more than once; give every column its own "
                              "name (or set csv_header = false with csv_column_names)")
        blocks = csv_reader.read_blocks(fh, rest, first_data_line(path, cfg), names, cfg)
        yield from _batched(blocks, cfg.batch_rows)


def _batched(blocks: Iterator[tuple[pa.Table, np.ndarray, list]], rows: int) -> Iterator[Chunk]:
    """Blocks gathered (or cut) into chunks of ``rows`` rows: validation costs per chunk, not per block."""
    tables, lines, bad, held = [], [], [], 0
    for table, at, malformed in blocks:
        tables.append(table)
        lines.append(at)
        bad += malformed
        held += table.num_rows
        if held < rows and len(bad) < rows:
            continue
        table, at = pa.concat_tables(tables), np.concatenate(lines)
        for start in range(0, table.num_rows - rows + 1, rows):
            yield Chunk(None, at[start:start + rows], None, bad, True, table.slice(start, rows))
            bad = []
        keep = table.num_rows - table.num_rows % rows
        tables, lines, held = [table.slice(keep)], [at[keep:]], table.num_rows - keep
        if len(bad) >= rows:  # mostly malformed records: their texts must not pile up either
            yield Chunk(None, lines[0], None, bad, True, tables[0])
            tables, lines, bad, held = [], [], [], 0
    if held or bad:
        yield Chunk(None, np.concatenate(lines), None, bad, True, pa.concat_tables(tables))


def _open_binary(path: Path) -> BinaryIO:
    """The file's bytes; gzip through Python's gzip, which checks the CRC trailer."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _jsonl_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    opener = gzip.open if is_gzip(path) else open
    records, lines, texts, bad = [], [], [], []
    # bytes that are not UTF-8 are kept as surrogates, so one such line is one refused row, not a failed file
    with opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline=None) as fh:
        for number, text in enumerate(fh, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            record = _json_object(text)
            if isinstance(record, str):  # why the line is no JSON object
                bad.append((number, text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                            record))
            else:
                records.append(record)
                lines.append(number)
                texts.append(text)
            if len(records) >= cfg.batch_rows:
                yield Chunk(_object_frame(records), np.array(lines, np.int64), texts, bad)
                records, lines, texts, bad = [], [], [], []
    if records or bad:
        yield Chunk(_object_frame(records), np.array(lines, np.int64), texts, bad)


def _json_object(text: str) -> dict | str:
    """The line's JSON object, or the reason it is none: bytes that are not UTF-8, a cut-off or broken
    line, another JSON value, or a ``\\u`` escape of half a UTF-16 surrogate pair (no character at all)."""
    undecodable = _UNDECODABLE.search(text)
    if undecodable:
        byte = ord(undecodable.group()) - 0xDC00
        return f"bad_encoding: invalid UTF-8 byte 0x{byte:02x} at character {undecodable.start()} of the line"
    try:
        value = json.loads(text)
    except ValueError:
        return "malformed_row: truncated or invalid JSON"
    except RecursionError:  # Python's parser recurses per level: thousands of [[[... exhaust the stack
        return "malformed_row: JSON nested too deeply"
    if isinstance(value, dict):
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and not _encodable(value):
            return "bad_encoding: a \\u escape of a lone UTF-16 surrogate (no character)"
        return value
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return f"malformed_row: not a JSON object ({kind})"


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape keeps it
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # half of a pair, or a lone one


def _encodable(value: dict) -> bool:
    """Whether every key and string of a parsed object is text (a lone surrogate is not)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _object_frame(records: list[dict]) -> pd.DataFrame:
    """JSON objects as columns of their Python values: no dtype inferred from the rest of the batch, so
    a value's type is judged on its own (a column of booleans is not read as numbers, a big int stays exact)."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    return pd.DataFrame({k: pd.Series([r.get(k) for r in records], dtype=object) for k in keys},
                        index=pd.RangeIndex(len(records)))


def _parquet_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    with tempfile.TemporaryDirectory(prefix="trendrec-gunzip-") as tmp:
        if is_gzip(path):  # parquet needs random access: unpack to a temporary file first
            plain = Path(tmp) / path.stem
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            path = plain
        done = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=cfg.batch_rows):
            frame = batch.to_pandas(types_mapper=_nullable_ints)  # no float detour: 2**63 and 1e20 stay apart
            yield Chunk(frame, np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64))
            done += batch.num_rows


def _nullable_ints(arrow_type: pa.DataType):
    """Integer columns as pandas' nullable integers (with a null, plain to_pandas makes them floats)."""
    return pd.api.types.pandas_dtype(str(arrow_type).replace("int", "Int").replace("uInt", "UInt")) \
        if pa.types.is_integer(arrow_type) else None
