"""Read a shop's files (CSV, JSON lines, parquet; each optionally gzip) as bounded chunks.

Every reader yields ``Chunk``s of at most ``ingest.batch_rows`` rows: a pandas frame with the shop's
own column names, the 1-based source line of each row, and the rows that could not even be split
into fields (a CSV line with the wrong number of fields, a JSON line that is not an object) with
their original text. A file that cannot be read at all raises ``IngestError`` naming the file.

    python -c "from pipeline.ingest.sources import resolve_sources; print(resolve_sources('data/demo'))"
"""

from __future__ import annotations

import codecs
import glob
import gzip
import json
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.config import IngestConfig
from pipeline.errors import TrendrecError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".txt": "csv",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}  # not .json: manifests in a drop folder would be read
_CSV_BLOCK = 1 << 24  # bytes per CSV block: bounds memory together with batch_rows


class IngestError(TrendrecError):
    """A source file cannot be ingested at all (unreadable, wrong format, a mapped column missing)."""


@dataclass
class Chunk:
    """Up to batch_rows parsed rows, their source lines, and the rows that would not parse."""

    frame: pd.DataFrame
    lines: np.ndarray  # int64 source line of each frame row
    raw_text: list[str] | None = None  # original text of each frame row when the format keeps it
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, reason)


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


def read_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    """Stream ``path`` as chunks; any read failure becomes one IngestError naming the file."""
    fmt = format_of(path, cfg.format)
    readers = {"csv": _csv_chunks, "jsonl": _jsonl_chunks, "parquet": _parquet_chunks}
    if fmt not in readers:
        raise IngestError(f"{path}: unknown format; name it .csv, .jsonl or .parquet (optionally .gz) "
                          "or set ingest.format")
    try:
        yield from readers[fmt](path, cfg)
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        gz = " (gzip)" if is_gzip(path) else ""
        raise IngestError(f"{path}: cannot be read as {fmt}{gz}: {exc}") from None


def _csv_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    skipped: list[tuple[int, str]] = []

    def on_bad_row(row) -> str:
        try:
            skipped.append((row.number if row.number is not None else -1, row.text))
        except UnicodeDecodeError:  # binary content: the file is not a text CSV at all
            return "error"
        return "skip"

    parse = pacsv.ParseOptions(delimiter=cfg.csv_delimiter, quote_char=cfg.csv_quote_char or False,
                               newlines_in_values=cfg.csv_newlines_in_values, invalid_row_handler=on_bad_row)
    names = list(cfg.csv_column_names) or None
    read = pacsv.ReadOptions(block_size=_CSV_BLOCK, column_names=names, use_threads=False)
    with _open_binary(path) as stream:
        _check_text(path, stream.read(1 << 16))
    with _open_binary(path) as stream:
        probe = pacsv.ParseOptions(delimiter=cfg.csv_delimiter, quote_char=cfg.csv_quote_char or False,
                                   newlines_in_values=cfg.csv_newlines_in_values,
                                   invalid_row_handler=lambda r: "skip")
        header = pacsv.open_csv(stream, read_options=read, parse_options=probe).schema.names
    # Every column as text: the validator parses and reports, so nothing is lost to type inference.
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in header}, strings_can_be_null=True)
    first, done, placer = first_data_line(path, cfg), 0, _LinePlacer()
    with _open_binary(path) as stream:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        for batch in _rebatch(reader, cfg.batch_rows):
            new_bad, skipped[:] = _malformed(skipped), []  # texts leave with this chunk: memory stays bounded
            placer.add([n - first for n, _, _ in new_bad if n >= 0])
            lines = first + placer.place(np.arange(done, done + batch.num_rows))
            done += batch.num_rows
            yield Chunk(batch.to_pandas(), lines, None, new_bad)
    if skipped:
        yield Chunk(pd.DataFrame(columns=header), np.empty(0, np.int64), None, _malformed(skipped))


def _malformed(skipped: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    return [(n, text, "malformed_row: wrong number of fields") for n, text in skipped]


class _LinePlacer:
    """Row index in the file of each parsed row, given the indices of the rows the parser skipped.

    Skipped rows already behind the parsed ones are kept as a count only, so the state stays small.
    """

    def __init__(self):
        self.passed = 0  # skipped rows before the current position
        self.pending = np.empty(0, dtype=np.int64)  # sorted indices of skipped rows not yet passed

    def add(self, indices: list[int]) -> None:
        self.pending = np.sort(np.concatenate([self.pending, np.asarray(indices, dtype=np.int64)]))

    def place(self, parsed: np.ndarray) -> np.ndarray:
        ahead = self.pending - self.passed - np.arange(len(self.pending))
        rows = parsed + self.passed + np.searchsorted(ahead, parsed, side="right")
        if len(rows):
            behind = int(np.searchsorted(self.pending, rows[-1], side="right"))
            self.passed += behind
            self.pending = self.pending[behind:]
        return rows


def _open_binary(path: Path) -> pa.NativeFile:
    """The file's bytes; gzip through Python's gzip, which (unlike pyarrow's) checks the CRC trailer."""
    if is_gzip(path):
        return pa.PythonFile(gzip.open(path, "rb"), mode="r")
    return pa.input_stream(str(path))


def _check_text(path: Path, head: bytes) -> None:
    """Refuse binary files up front: pyarrow would silently skip their undecodable malformed rows."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise IngestError(f"{path}: cannot be read as csv: {why}") from None
    if b"\x00" in head:
        raise IngestError(f"{path}: cannot be read as csv: binary content (NUL bytes)")


def _rebatch(reader, rows: int) -> Iterator[pa.RecordBatch]:
    """CSV blocks re-cut to at most ``rows`` rows each."""
    for batch in reader:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _jsonl_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    opener = gzip.open if is_gzip(path) else open
    records, lines, texts, bad = [], [], [], []
    with opener(path, "rt", encoding="utf-8-sig", newline=None) as fh:
        for number, text in enumerate(fh, start=1):
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                bad.append((number, text, "malformed_row: not a JSON object"))
            else:
                records.append(record)
                lines.append(number)
                texts.append(text)
            if len(records) >= cfg.batch_rows:
                yield Chunk(pd.DataFrame.from_records(records), np.array(lines, np.int64), texts, bad)
                records, lines, texts, bad = [], [], [], []
    if records or bad:
        yield Chunk(pd.DataFrame.from_records(records), np.array(lines, np.int64), texts, bad)


def _parquet_chunks(path: Path, cfg: IngestConfig) -> Iterator[Chunk]:
    with tempfile.TemporaryDirectory(prefix="trendrec-gunzip-") as tmp:
        if is_gzip(path):  # parquet needs random access: unpack to a temporary file first
            plain = Path(tmp) / path.stem
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            path = plain
        done = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=cfg.batch_rows):
            yield Chunk(batch.to_pandas(), np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64))
            done += batch.num_rows
