"""Turn one batch of a shop's rows into canonical events, with a reason for every refused row.

Pure functions: a pandas batch with the shop's own column names goes in; a frame of canonical
columns (pipeline.schemas) and a per-row reason (empty when the row is good) come out. The first
failing check names the reason, in this order: wrong type (a JSON object, array or boolean where a
value is expected, judged value by value), missing required field, unparseable or out-of-range
timestamp (before ``min_event_date`` or after the ingest day plus ``max_future_days``), non-numeric,
non-finite or out-of-range quantity or price (``max_quantity``, ``max_price``), negative price,
return (negative quantity, when the config quarantines returns), bad id (a control character,
longer than ``max_id_length``, an infinite number). Ids are text in every format: 1e20 and 2**63
stay two customers, and "NA" is an item code, not a missing value. Rows outside ``event_types`` get the status ``filtered`` and returns dropped by the config
get ``dropped``: neither is quarantined, both are counted by ingest so no row goes unaccounted.

    python -c "from pipeline.ingest.validate import REASONS; print(REASONS)"
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import ids
from pipeline.ingest.rowhash import hash_rows, splitmix

FILTERED = "filtered"  # status of a row whose event type is not kept (counted as rows_filtered)
DROPPED = "dropped"  # status of a return when returns = "drop" (counted as rows_dropped)
REASONS = (
    "malformed_row",  # given by the reader: the row could not be split into fields
    "wrong_type",
    "missing_field",
    "bad_timestamp",
    "timestamp_out_of_range",
    "non_numeric",
    "non_finite",
    "out_of_range",
    "negative_price",
    "return",
    "bad_id",
    "bad_encoding",  # given by the CSV reader: the line is not UTF-8 (its bytes are kept, escaped)
)
_OFFSET = r"(?:[Zz]|[+-]\d\d:?\d\d)$"


def parse_timestamps(values: pd.Series, timezone: str, unit: str = "auto", fmt: str = "") -> pd.Series:
    """Parse to UTC; naive values are read in ``timezone``. Unparseable values become NaT.

    ``unit`` "s", "ms" or "us" reads numbers (or numeric text) as epoch time; "auto" reads numeric
    columns as epoch seconds and text as ISO-8601 (or strptime ``fmt`` when given); "iso" always
    reads text. Times are kept to the microsecond (nanoseconds are cut, as RAW_SCHEMA stores us).
    """
    if fmt and not pd.api.types.is_datetime64_any_dtype(values) and unit in ("auto", "iso"):
        return _parse_format(values, timezone, fmt)
    if unit in ("s", "ms", "us") and not pd.api.types.is_datetime64_any_dtype(values):
        num = pd.to_numeric(values, errors="coerce").astype("float64")
        num = num.where(np.isfinite(num) & (num.abs() < 1e19))
        return pd.to_datetime(num, unit=unit, utc=True, errors="coerce").astype("datetime64[us, UTC]")
    if unit == "auto" and values.dtype == object:  # JSON values: numbers are epoch seconds, text is ISO
        numeric = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).to_numpy(dtype=bool)
        if numeric.any():
            return _parse_mixed(values, numeric, timezone)
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = values
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        return ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if unit == "auto" and pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.to_datetime(values, unit="s", utc=True, errors="coerce").astype("datetime64[us, UTC]")
    naive_fast = _arrow_cast(values, pa.timestamp("us"))  # the common case: all naive ISO text
    if naive_fast is not None:
        return parse_timestamps(naive_fast.astype("datetime64[us]"), timezone)
    text = values.astype("str").str.strip()
    aware = text.str.contains(_OFFSET, regex=True, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if aware.any():
        out[aware] = _to_us(pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601"))
    naive = ~aware & values.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = _to_us(parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC"))
    return out


def _parse_mixed(values: pd.Series, numeric: np.ndarray, timezone: str) -> pd.Series:
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    out[numeric] = parse_timestamps(pd.to_numeric(values[numeric], errors="coerce").astype("float64"), timezone, "s")
    out[~numeric] = parse_timestamps(values[~numeric], timezone, "iso")
    return out


def _to_us(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("us").astype("datetime64[us, UTC]")


def _parse_format(values: pd.Series, timezone: str, fmt: str) -> pd.Series:
    """Text in the strptime format ``fmt`` (e.g. day-first "%d/%m/%Y %H:%M"); with %z it carries its offset."""
    text = values.astype("str").str.strip().where(values.notna())
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt)
    if "%z" not in fmt:
        parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return _to_us(parsed.dt.tz_convert("UTC"))


def _arrow_cast(values: pd.Series, to: pa.DataType) -> pd.Series | None:
    """Cast text with pyarrow (fast) when every value converts; None means use the slow, per-row path."""
    if not isinstance(values.dtype, pd.StringDtype):
        return None
    try:
        cast = pc.cast(pa.array(values), to)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return pd.Series(cast.to_numpy(zero_copy_only=False), index=values.index)


class _Reasons:
    """One reason per row; the first refusal of a row wins.

    A reason that quotes the row's value is given as a function of the refused rows' mask, so its
    text is built for those rows only, not for the whole batch.
    """

    def __init__(self, index: pd.Index):
        self.index = index
        self.refused = np.zeros(len(index), dtype=bool)
        self.given: list[tuple[np.ndarray, Callable[[np.ndarray], pd.Series] | str]] = []

    def refuse(self, mask: pd.Series | np.ndarray, text: Callable[[np.ndarray], pd.Series] | str) -> None:
        mask = np.asarray(mask, dtype=bool) & ~self.refused
        if mask.any():
            self.refused |= mask
            self.given.append((mask, text))

    @property
    def text(self) -> pd.Series:
        out = pd.Series("", index=self.index, dtype="str")
        for mask, text in self.given:
            out[mask] = text if isinstance(text, str) else text(mask).to_numpy()
        return out


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str").str.strip()


def _check_present(batch: pd.DataFrame, cfg: IngestConfig, why: _Reasons) -> None:
    for column in cfg.columns.values():
        raw = batch[column]
        if raw.dtype == object:  # JSON lines keep Python values: nested ones are not a field value
            nested = raw.map(lambda v: isinstance(v, (dict, list, bool, np.bool_)))
            why.refuse(nested, f"wrong_type: {column} holds an object, array or boolean")
        elif pd.api.types.is_bool_dtype(raw):  # a parquet boolean column: judged per value all the same
            why.refuse(raw.notna(), f"wrong_type: {column} holds an object, array or boolean")
    for field, required in schemas.MAPPABLE_FIELDS.items():
        if required and field in cfg.columns:
            names = [cfg.columns[field]]
            if field == schemas.EVENT_TIME and cfg.time_column:
                names.append(cfg.time_column)
            for column in names:
                why.refuse(_blank(batch[column]), f"missing_field: {column} is empty")


def _blank(raw: pd.Series) -> np.ndarray:
    """Missing, empty or only whitespace (what ``_text(raw) == ""`` finds, without stripping every value)."""
    if ids.is_arrow_text(raw):
        values = pa.array(raw)
        blank = pc.or_kleene(pc.utf8_is_space(values), pc.equal(pc.binary_length(values), 0))
        return pc.fill_null(blank, True).to_numpy(zero_copy_only=False)
    return (raw.isna() | (_text(raw) == "")).to_numpy(dtype=bool)


def _event_time(batch: pd.DataFrame, cfg: IngestConfig, why: _Reasons,
                today: datetime.date | None) -> pd.Series:
    column = cfg.columns[schemas.EVENT_TIME]
    raw = batch[column]
    if cfg.time_column:  # separate date and time columns (e.g. the bakery's Date and Time)
        raw = _text(raw) + " " + _text(batch[cfg.time_column])
        column = f"{column} + {cfg.time_column}"
    ts = parse_timestamps(raw, cfg.timezone, cfg.timestamp_unit, cfg.timestamp_format)
    hint = f" (timestamp_format {cfg.timestamp_format!r})" if cfg.timestamp_format else ""
    why.refuse(ts.isna(), lambda bad: "bad_timestamp: " + column + "=" + raw[bad].astype("str")
               + " is not a timestamp" + hint)
    first = pd.Timestamp(cfg.min_event_date, tz="UTC")
    end = pd.Timestamp(today or datetime.datetime.now(datetime.UTC).date(), tz="UTC")
    end += pd.Timedelta(days=cfg.max_future_days + 1)
    why.refuse((ts < first) | (ts >= end), f"timestamp_out_of_range: before {first.date()} (min_event_date) or "
                                           f"after {(end - pd.Timedelta(days=1)).date()} (ingest day + max_future_days)")
    return ts


def _measure(batch: pd.DataFrame, cfg: IngestConfig, field: str, why: _Reasons) -> pd.Series:
    if field not in cfg.columns:  # e.g. the bakery logs one row per item and no price
        default = cfg.quantity_default if field == schemas.QUANTITY else cfg.price_default
        return pd.Series(default, index=batch.index, dtype="float64")
    column = cfg.columns[field]
    raw = batch[column]
    num = _arrow_cast(raw, pa.float64())
    num = pd.to_numeric(raw, errors="coerce").astype("float64") if num is None else num.astype("float64")
    why.refuse(num.isna(), lambda bad: "non_numeric: " + column + "=" + raw[bad].astype("str") + " is not a number")
    why.refuse(~np.isfinite(num.fillna(0.0)), f"non_finite: {column} is infinite")
    limit, key = (cfg.max_quantity, "max_quantity") if field == schemas.QUANTITY else (cfg.max_price, "max_price")
    why.refuse(num.abs() > limit, lambda bad: "out_of_range: " + column + "=" + raw[bad].astype("str")
               + f" beyond {key} {limit:g}")
    return num


def _local_date(ts: pd.Series, timezone: str) -> pd.Series:
    """The calendar day in ``timezone`` as Arrow date32 (NaT gives null), without Python date objects."""
    days = ts.dt.tz_convert(timezone).dt.tz_localize(None).to_numpy().astype("datetime64[D]")
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(days, type=pa.date32(), from_pandas=True)),
                     index=ts.index)


def validate_batch(batch: pd.DataFrame, cfg: IngestConfig,
                   today: datetime.date | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical columns for every row but the segment (pipeline.ingest.segments), and why each row
    is not stored ('' when it is).

    Besides the quarantine reasons (REASONS) a row may get FILTERED or DROPPED, which ingest counts
    instead of quarantining.
    """
    why = _Reasons(batch.index)
    if cfg.event_type_column:
        kind = _text(batch[cfg.event_type_column])
        why.refuse(~kind.isin(cfg.event_types), lambda out: FILTERED + ": " + cfg.event_type_column + "=" + kind[out])
    _check_present(batch, cfg, why)
    out = pd.DataFrame(index=batch.index)
    ts = _event_time(batch, cfg, why, today)
    out[schemas.EVENT_TIME] = ts
    out[schemas.EVENT_DATE] = _local_date(ts, cfg.timezone)
    for field in (schemas.QUANTITY, schemas.PRICE):
        out[field] = _measure(batch, cfg, field, why)
    price_name = cfg.columns.get(schemas.PRICE, "price_default")
    why.refuse(out[schemas.PRICE] < 0, f"negative_price: {price_name} < 0")
    returns = out[schemas.QUANTITY] < 0
    if cfg.returns == "quarantine":
        why.refuse(returns, f"return: {cfg.columns.get(schemas.QUANTITY)} < 0 (cancellation or return)")
    elif cfg.returns == "drop":
        why.refuse(returns, f"{DROPPED}: return (quantity < 0)")
    for field in (schemas.ITEM_ID, schemas.USER_ID, schemas.ORDER_ID):
        if field in cfg.columns:
            column = cfg.columns[field]
            out[field] = ids.as_id(batch[column])
            for mask, reason in ids.id_problems(batch[column], out[field], column, cfg.max_id_length):
                why.refuse(mask, reason)
        else:
            out[field] = None
    return out, why.text


def event_key_base(events: pa.Table, fields: tuple[str, ...]) -> np.ndarray:
    """A 64-bit hash of each row's ``fields`` of a RAW_SCHEMA table (pandas' ``hash_pandas_object`` of
    those columns, computed by pipeline.ingest.rowhash)."""
    return hash_rows(events.select(list(fields)))


def event_keys(base: np.ndarray) -> np.ndarray:
    """The event key of each row: its field hash ``base`` plus its occurrence number among equal rows.

    Identical rows are legitimate repeats (the bakery logs an item bought twice as two rows), so the
    n-th copy gets key (fields, n): a file that repeats what the store holds adds nothing, and one
    with a third copy where the store has two adds exactly one. Occurrences are counted within one
    date partition of one file (rows with equal event_time always share a partition).
    """
    occurrence = np.zeros(len(base), dtype=np.uint64)
    ranked = np.sort(base)  # most rows are unique: only the repeated ones need the stable ranking
    repeated = np.flatnonzero(np.isin(base, ranked[1:][ranked[1:] == ranked[:-1]]))
    if len(repeated):
        some = base[repeated]
        order = np.argsort(some, kind="stable")
        ranked = some[order]
        starts = np.r_[True, ranked[1:] != ranked[:-1]]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(ranked)), 0))
        occurrence[repeated[order]] = np.arange(len(ranked)) - first
    return splitmix(base ^ splitmix(occurrence + np.uint64(1)))  # stored keys depend on it never changing
