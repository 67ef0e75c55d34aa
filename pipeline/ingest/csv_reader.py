"""Read a CSV file as blocks of parsed rows, each row with its real physical line number.

The file is cut into blocks of whole lines. pyarrow parses each block (the fast path); the block
is kept as parsed when pyarrow reports no malformed record, every value is UTF-8 and every
non-empty line became exactly one row, so line numbers follow from the line breaks. Any other block
is re-scanned line by line: a quote is bounded to its physical line (unless
``csv_newlines_in_values``), so an unbalanced quote, a wrong field count or an invalid UTF-8 byte
costs that line only, which comes back as malformed with a reason and its bytes (escaped); the good
lines of the block are parsed by pyarrow again, so they get the same values as on the fast path.

    python -c "from pipeline.ingest.csv_reader import read_header; print(read_header.__doc__)"
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.config import IngestConfig

# Bytes per block: bounds memory together with batch_rows. 4 MiB parses as fast as 16 MiB here and
# peaks about 90 MiB lower at 20 M lines (benchmarks/README.md).
BLOCK_BYTES = 1 << 22
_TERMINATORS = (b"\n", b"\r")
# Python's csv refuses fields over 128 KiB; the validator, not the splitter, judges a value's length.
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
Malformed = tuple[int, str, str]  # (physical line, text with undecodable bytes escaped, reason)


def read_header(fh: BinaryIO, cfg: IngestConfig) -> tuple[list[str], bytes]:
    """The column names, and the bytes read past the header line (the start of the data)."""
    head = b""
    while True:
        data = fh.read(1 << 16)
        head += data
        ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
        if ends or not data:
            break
    if not cfg.csv_header:
        return list(cfg.csv_column_names), head
    if not head.strip():
        raise EOFError("empty file (no header line)")
    end = min(ends) if ends else len(head)
    skip = end + (2 if head[end:end + 2] == b"\r\n" else 1)
    names = _split(head[:end].decode("utf-8-sig"), cfg, strict=False)
    return names, head[skip:]


def duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def read_blocks(fh: BinaryIO, rest: bytes, first_line: int, names: list[str],
                cfg: IngestConfig) -> Iterator[tuple[pa.Table, np.ndarray, list[Malformed]]]:
    """(rows as text columns, physical line of each row, malformed records) per block of the file.

    With ``csv_newlines_in_values`` a record still open at the end of a block moves to the next one.
    """
    carry, carry_line = b"", first_line
    for block, line, count in _whole_lines(fh, rest, first_line):
        if carry:
            block, line, count = carry + block, carry_line, None
        # a quote open for more than a block is not a value spanning lines: stop carrying it
        *parsed, carry, carry_line = _parse_block(block, line, names, cfg, last=len(block) > 2 * BLOCK_BYTES,
                                                  count=count)
        yield tuple(parsed)
    if carry:
        yield tuple(_parse_block(carry, carry_line, names, cfg, last=True)[:3])


def _whole_lines(fh: BinaryIO, rest: bytes, line: int) -> Iterator[tuple[bytearray, int, int]]:
    """Blocks of whole lines with the number of their first line and their count of lines. Each block
    is read into its own buffer after the bytes the last one left (one copy of the file's bytes)."""
    while True:
        buf = bytearray(len(rest) + BLOCK_BYTES)
        buf[:len(rest)] = rest
        read = fh.readinto(memoryview(buf)[len(rest):])
        del buf[len(rest) + read:]
        if not read:
            if rest:
                yield buf, line, _count_lines(buf)
            return
        cut = _last_break(buf, len(rest))  # the common case: a break among the new bytes
        if cut < 0:  # none: a line longer than a block, or a lone CR ending ``rest``
            cut = _last_break(buf)
            if cut < 0:
                rest = bytes(buf)  # read on
                continue
        rest = bytes(buf[cut + 1:])
        del buf[cut + 1:]
        count = _count_lines(buf)  # counted once: the next block's first line and this block's rows
        yield buf, line, count
        line += count


def _last_break(data: bytes | bytearray, start: int = 0) -> int:
    """Index of the last line break from ``start`` on (-1: none); a \\r as the last byte may precede a
    \\n not read yet."""
    return max(data.rfind(b"\n", start), data.rfind(b"\r", start, len(data) - 1))


def _count_lines(block: bytes) -> int:
    # NumPy counts a 16 MiB block in a third of bytes.count's time, and without holding the GIL
    breaks = int(np.count_nonzero(np.frombuffer(block, np.uint8) == ord("\n")))
    if b"\r" in block:  # CRLF counts once, a lone CR (old Mac files) as a line break of its own
        breaks += block.count(b"\r") - block.count(b"\r\n")
    return breaks + (0 if block.endswith(_TERMINATORS) else 1)


def _row_lines(block: bytes, first: int, rows: int, lines: int | None = None) -> np.ndarray | None:
    """Physical line of each of the ``rows`` rows pyarrow parsed, or None when they are not one per
    non-empty line (an open quote merged lines). ``lines``: the block's line count, when known."""
    lines = _count_lines(block) if lines is None else lines
    if rows == lines:  # the common case: no empty line, no merge
        return first + np.arange(lines, dtype=np.int64)
    filled = np.flatnonzero([len(p) > 0 for p in block.splitlines()]).astype(np.int64)
    return first + filled if len(filled) == rows else None


def _parse_block(block: bytes, first: int, names: list[str], cfg: IngestConfig, last: bool,
                 count: int | None = None):
    """(table, lines, malformed, bytes carried to the next block, their first line); ``count``: the
    block's line count, when already known."""
    table = _pyarrow(block, names, cfg, cfg.csv_newlines_in_values)
    # An open quote swallows the lines after it (fewer rows than lines), except on the block's last
    # line, which pyarrow closes at the end of its input: that one line is checked apart.
    if table is not None and not _open_quote(_last_line(block), cfg):
        lines = _row_lines(block, first, table.num_rows, count)
        if lines is not None:
            return table, lines, [], b"", 0
    return _rescan(block, first, names, cfg, last)


def parse_line(line: bytes, names: list[str], cfg: IngestConfig) -> pa.Table | None:
    """One record's fields as text columns (None when it is malformed or not UTF-8)."""
    return _pyarrow(line + b"\n", names, cfg, False)


def _last_line(block: bytes) -> bytes:
    end = len(block)
    while end and block[end - 1] in b"\r\n":  # index arithmetic: no copy of a 16 MiB block
        end -= 1
    return block[max(block.rfind(b"\n", 0, end), block.rfind(b"\r", 0, end)) + 1:end]


def _pyarrow(data: bytes, names: list[str], cfg: IngestConfig, multiline: bool) -> pa.Table | None:
    """Every row of ``data`` as text columns, or None when a record is malformed or not UTF-8."""
    invalid: list[int] = []

    def on_invalid(_row) -> str:
        invalid.append(1)
        return "skip"

    parse = pacsv.ParseOptions(delimiter=cfg.csv_delimiter, quote_char=cfg.csv_quote_char or False,
                               newlines_in_values=multiline, invalid_row_handler=on_invalid)
    read = pacsv.ReadOptions(column_names=names, block_size=len(data) + 1, use_threads=False)
    # Every column as text, only "" and \N (a database client's NULL) as missing: the validator parses and
    # reports, and "NA" stays an id. No UTF-8 check per value: the whole block is checked below, and a
    # field of valid UTF-8 cut at ASCII delimiters, quotes and line breaks is valid UTF-8.
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                                   null_values=["", r"\N"], check_utf8=False)
    if not data.isascii():
        try:  # checked first: pyarrow decodes a malformed row's text for the handler and would fail there
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        table = pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=parse,
                               convert_options=convert)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    return None if invalid else table


def _rescan(block: bytes, first: int, names: list[str], cfg: IngestConfig, last: bool):
    """The slow path for a block with a malformed record: judge each record, parse the good ones."""
    good: list[bytes] = []
    lines: list[int] = []
    bad: list[Malformed] = []
    records, carry, carry_line = _records(block, first, cfg, last)
    for line, record in records:
        why = _problem(record, len(names), cfg)
        if why:
            bad.append((line, record.decode("utf-8", "backslashreplace"), why))
        else:
            good.append(record)
            lines.append(line)
    table, ok = _parse_records(good, names, cfg)
    bad += [(line, rec.decode("utf-8", "backslashreplace"), "malformed_row: not parseable as one record")
            for line, rec, fine in zip(lines, good, ok) if not fine]
    kept = np.asarray(lines, dtype=np.int64)[np.asarray(ok, dtype=bool)] if lines else np.empty(0, np.int64)
    return table, kept, sorted(bad), carry, carry_line


def _records(block: bytes, first: int, cfg: IngestConfig, last: bool):
    """(first physical line, bytes) of each non-empty record, plus the bytes of a record still open at
    the end of a block that is not the ``last`` and its line. A record is one line, unless quoted
    values may span lines: then it ends where its quotes balance."""
    parts = block.splitlines(keepends=cfg.csv_newlines_in_values)
    if not cfg.csv_newlines_in_values:
        return [(first + i, p) for i, p in enumerate(parts) if p], b"", 0
    records, start, pending = [], 0, b""
    for i, part in enumerate(parts):
        if not pending:
            if not part.strip(b"\r\n"):
                continue
            start = i
        pending += part
        if not _open_quote(pending, cfg):
            records.append((first + start, pending.rstrip(b"\r\n")))
            pending = b""
    if pending and not last:
        return records, pending, first + start
    if pending:
        records.append((first + start, pending.rstrip(b"\r\n")))
    return records, b"", 0


def _open_quote(record: bytes, cfg: IngestConfig) -> bool:
    try:
        _split(record.decode("utf-8", "replace"), cfg, strict=True)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _problem(record: bytes, width: int, cfg: IngestConfig) -> str:
    """Why one record cannot be a row ('' when it can)."""
    try:
        text = record.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"bad_encoding: invalid UTF-8 byte 0x{record[exc.start]:02x} at byte {exc.start} of the line"
    try:
        fields = _split(text, cfg, strict=True)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return "malformed_row: unbalanced quote (a quoted value not closed on its line)"
        fields = _split(text, cfg, strict=False)  # pyarrow reads `"ab"c` as abc, and so does lenient csv
    if len(fields) != width:
        return f"malformed_row: wrong number of fields ({len(fields)}, expected {width})"
    return ""


def _split(text: str, cfg: IngestConfig, strict: bool) -> list[str]:
    quoting = csv.QUOTE_MINIMAL if cfg.csv_quote_char else csv.QUOTE_NONE
    reader = csv.reader([text], delimiter=cfg.csv_delimiter, quotechar=cfg.csv_quote_char or None,
                        quoting=quoting, strict=strict)
    return next(reader, [])


def _parse_records(records: list[bytes], names: list[str], cfg: IngestConfig) -> tuple[pa.Table, list[bool]]:
    """The good records as one table, with pyarrow (as the fast path would); one by one if it disagrees."""
    multiline = cfg.csv_newlines_in_values
    if records:
        table = _pyarrow(b"\n".join(records) + b"\n", names, cfg, multiline)
        if table is not None and table.num_rows == len(records):
            return table, [True] * len(records)
    tables, ok = [], []
    for record in records:  # pyarrow and Python's csv disagree on one of them: rare, so slow is fine
        table = _pyarrow(record + b"\n", names, cfg, multiline)
        ok.append(table is not None and table.num_rows == 1)
        if ok[-1]:
            tables.append(table)
    empty = pa.table({n: pa.array([], pa.string()) for n in names})
    return (pa.concat_tables(tables) if tables else empty), ok


def looks_binary(head: bytes) -> bool:
    """Most of the first lines hold NUL bytes or are not UTF-8: not a text file at all."""
    lines = head.splitlines()
    lines = [p for p in (lines if head.endswith(_TERMINATORS) else lines[:-1]) if p] or [head]  # last one cut
    lines = lines[1:] if len(lines) > 1 else lines  # the data lines, below a header
    bad = 0
    for line in lines:
        try:
            line.decode("utf-8")
            bad += b"\x00" in line
        except UnicodeDecodeError:
            bad += 1
    return bad * 2 > len(lines)

