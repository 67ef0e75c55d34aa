"""The rows of a CSV batch that are plainly good, found and made canonical on Arrow; validate_batch
judges the others.

validate_batch works on a pandas frame and asks every question of every row. Most rows of most logs
are plainly good: a naive ISO time that casts and lies inside the accepted range, numbers that cast and
lie within their limits, ids with a plain ASCII character at each edge (nothing to trim, no Unicode
space), no control character and no excess length. ``judge`` finds those rows with vectorised tests
on the text columns the CSV reader gives (no pandas frame, no text per row) and gives them the values
validate_batch would give, value for value, from the same casts and the same id rules. Every other row
goes to validate_batch, which gives its reason or its values. A batch whose time or number column
does not cast as a whole (the general path would parse it another way), and a config this path does
not cover (an event-type filter, separate date and time columns, a strptime format, an epoch unit), go
to validate_batch whole. tests/ingest/test_clean.py compares the two paths on hostile batches.

    python -c "from pipeline.ingest.clean import covers; from pipeline.config import load_config; print(covers(load_config('trendrec.toml').ingest))"
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import ids, validate, zones
from pipeline.ingest.segments import arrow_segments, assign_segments

# what ``judge`` gives: RAW_SCHEMA's columns but the source file's name and line (the ingest adds those)
CANONICAL = pa.schema([f for f in schemas.RAW_SCHEMA if f.name not in (schemas.SOURCE_FILE, schemas.SOURCE_LINE)])
_DAY = 86_400_000_000  # microseconds
_EARLIEST, _LATEST = (int(t.as_unit("us").asm8.view(np.int64)) for t in (validate._EARLIEST, validate._LATEST))
_CASTS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


@dataclass
class Judged:
    """One batch judged: the stored rows' values, and validate_batch's word on the rows it judged."""

    good: pa.Table  # CANONICAL columns of the stored rows, in the batch's order
    ok: np.ndarray  # per row of the batch: stored
    rest: np.ndarray  # positions of the rows validate_batch judged
    reason: pd.Series  # its reason for each of them ('' for a stored row), indexed 0..len(rest)-1
    frame: pd.DataFrame | None  # those rows as pandas (the quarantine quotes them); None when none


def covers(cfg: IngestConfig) -> bool:
    """Whether this path can judge the config's batches (else each goes to validate_batch whole)."""
    return not (cfg.event_type_column or cfg.time_column or cfg.timestamp_format) \
        and cfg.timestamp_unit in ("auto", "iso")


def judge(table: pa.Table, cfg: IngestConfig, today: datetime.date | None = None) -> Judged | None:
    """Judge a batch of text columns (the CSV reader's); None when it must go to validate_batch whole."""
    if not covers(cfg):
        return None
    times = _times(table.column(cfg.columns[schemas.EVENT_TIME]), cfg, today)
    if times is None:
        return None
    numbers = [_numbers(table, cfg, field) for field in (schemas.QUANTITY, schemas.PRICE)]
    if any(n is None for n in numbers):
        return None
    utc, day, clean = times
    columns = {schemas.EVENT_TIME: pa.array(utc, pa.int64()).view(pa.timestamp("us", tz="UTC")),
               schemas.EVENT_DATE: pa.array(day, pa.int32()).view(pa.date32())}
    for field, (values, plain) in zip((schemas.QUANTITY, schemas.PRICE), numbers):
        columns[field] = pa.array(values, pa.float64())
        clean &= plain
    for field in (schemas.ITEM_ID, schemas.USER_ID, schemas.ORDER_ID):
        if field in cfg.columns:
            columns[field], plain = _ids(table.column(cfg.columns[field]), schemas.MAPPABLE_FIELDS[field],
                                         cfg.max_id_length)
            clean &= plain
        else:
            columns[field] = pa.nulls(table.num_rows, pa.string())
    columns[schemas.SEGMENT] = _string(arrow_segments(table, cfg))
    fast = pa.Table.from_arrays([columns[f.name] for f in CANONICAL], schema=CANONICAL)
    if clean.all():
        return Judged(fast, clean, np.empty(0, np.int64), pd.Series([], dtype="str"), None)
    rest = np.flatnonzero(~clean)
    frame = table.take(rest).to_pandas()
    canon, reason = validate.validate_batch(frame, cfg, today)
    canon[schemas.SEGMENT] = assign_segments(frame, cfg)
    kept = (reason == "").to_numpy()
    ok = clean.copy()
    ok[rest[kept]] = True
    good = fast.filter(clean)
    if kept.any():  # the rows validate_batch stored join the others in the batch's order
        slow = pa.Table.from_pandas(canon[kept], schema=CANONICAL, preserve_index=False)
        at = np.concatenate([np.flatnonzero(clean), rest[kept]])
        good = pa.concat_tables([good, slow]).take(np.argsort(at, kind="stable"))
    return Judged(good, ok, rest, reason, frame)


def _times(text: pa.ChunkedArray, cfg: IngestConfig, today: datetime.date | None):
    """(UTC microseconds, local day number, plainly good) of naive ISO times, read in the config's zone;
    None when the column does not cast as a whole (validate_batch then tries epochs and offsets)."""
    try:
        local = pc.cast(text, pa.timestamp("us")).to_numpy().view(np.int64)  # NaT (a null) -> NAT
    except _CASTS:
        return None
    inside = (local >= _EARLIEST) & (local < _LATEST)  # validate_batch keeps the zone rules off the others
    utc = zones.utc_micros(np.where(inside, local, zones.NAT), cfg.timezone)  # NAT: ambiguous, non-existent
    first, end = (_micros(t) for t in validate.accepted_times(cfg, today))
    clean = (utc != zones.NAT) & (utc >= first) & (utc < end)
    # the day in the shop's zone: the local time's own day, as converting the UTC time back gives it
    day = (np.where(clean, local, 0) // _DAY).astype(np.int32)
    return np.where(clean, utc, 0), day, clean


def _micros(when: pd.Timestamp) -> int:
    return int(when.as_unit("us").asm8.view(np.int64))


def _numbers(table: pa.Table, cfg: IngestConfig, field: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, plainly good) of a quantity or price column; None when it does not cast as a whole."""
    if field not in cfg.columns:
        default = cfg.quantity_default if field == schemas.QUANTITY else cfg.price_default
        return np.full(table.num_rows, default, np.float64), np.ones(table.num_rows, dtype=bool)
    try:
        values = pc.cast(table.column(cfg.columns[field]), pa.float64()).to_numpy()  # a null -> NaN
    except _CASTS:
        return None
    limit = cfg.max_quantity if field == schemas.QUANTITY else cfg.max_price
    plain = np.isfinite(values) & (np.abs(values) <= limit)
    if field == schemas.PRICE or cfg.returns != "keep":  # a negative price, or a return to quarantine or drop
        plain &= values >= 0
    return values, plain


def _plain(byte: np.ndarray) -> np.ndarray:
    """Printable ASCII but the space: nothing to strip, nothing to refuse at a value's edge."""
    return (byte > 0x20) & (byte < 0x7F)


def _ids(text: pa.ChunkedArray, required: bool, max_length: int) -> tuple[pa.Array, np.ndarray]:
    """(as_id's ids, plainly good) of an id column: a missing optional id is good (and null)."""
    values = text.combine_chunks()
    if ids.printable(values):  # most id columns: every value plain at its edges, only lengths to judge
        length = ids.byte_lengths(values)
        plain, trim = (length > 0) & (length <= max_length), False
    else:
        length, first, last = ids.edge_bytes(values)
        plain = _plain(first) & _plain(last) & (length <= max_length)  # bytes >= characters
        plain &= ~ids.control_rows(values)
        trim = ids.edge_space(first, last)
    if not required:
        plain |= length == 0  # null or empty: as_id makes it null, which an optional id may be
    return _string(ids.arrow_ids(values, trim)), plain


def _string(values: pa.Array) -> pa.Array:
    return values if values.type == pa.string() else values.cast(pa.string())
