"""Turn one batch of a shop's rows into canonical events, with a reason for every refused row.

Pure functions: a pandas batch with the shop's own column names goes in; a frame of canonical
columns (pipeline.schemas) and a per-row reason (empty when the row is good) come out. The first
failing check names the reason, in this order: wrong type (a JSON object, array or boolean where a
value is expected, judged value by value), missing required field, unparseable or out-of-range
timestamp (before ``min_event_date`` or after the ingest day plus ``max_future_days``; an epoch number
says how its unit was read and which ``timestamp_unit`` reads it right), non-numeric,
non-finite or out-of-range quantity or price (``max_quantity``, ``max_price``), negative price,
return (negative quantity, when the config quarantines returns), bad id (a control character,
longer than ``max_id_length``, an infinite number). Ids are text in every format: 1e20 and 2**63
stay two customers, and "NA" is an item code, not a missing value. Rows outside ``event_types`` get the status ``filtered`` and returns dropped by the config
get ``dropped``: neither is quarantined, both are counted by ingest so no row goes unaccounted.

    python -c "from pipeline.ingest.validate import REASONS; print(REASONS)"
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import epochs, ids, zones

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
_EARLIEST, _LATEST = pd.Timestamp("1000-01-01"), pd.Timestamp("9999-01-01")  # time-zone rules work between
FAR_EARLY, FAR_LATE = _EARLIEST.tz_localize("UTC"), _LATEST.tz_localize("UTC")  # stand for times beyond


def parse_timestamps(values: pd.Series, timezone: str, unit: str = "auto", fmt: str = "") -> pd.Series:
    """Parse to UTC; naive values are read in ``timezone``. Unparseable values become NaT.

    ``unit`` "s", "ms", "us" or "ns" reads numbers (or numeric text) as epoch time; "auto" reads
    numbers, and digit text of 9 or more digits, as epoch time in the unit their magnitude tells
    (pipeline.ingest.epochs), and other text as ISO-8601 (or strptime ``fmt`` when given, which then
    reads all text); "iso" always reads text. Times are kept to the microsecond (nanoseconds are cut,
    as RAW_SCHEMA stores us).
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return _localized(values, timezone)
    if unit in epochs.UNITS:
        return epochs.to_times(epochs.numbers(values), unit).astype("datetime64[us, UTC]")
    if unit == "auto":
        if not fmt and (fast := _naive_text(values)) is not None:  # the common case: all naive ISO text
            return _localized(fast, timezone)
        epoch = epoch_rows(values, unit, fmt)
        if epoch.any():
            out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
            out[epoch] = epochs.to_times(epochs.numbers(values[epoch]), "auto").astype("datetime64[us, UTC]")
            if not epoch.all():
                out[~epoch] = _parse_text(values[~epoch], timezone, fmt)
            return out
        return _parse_text(values, timezone, fmt, tried_fast=True)
    return _parse_text(values, timezone, fmt)


def epoch_rows(values: pd.Series, unit: str, fmt: str = "") -> np.ndarray:
    """Which values ``parse_timestamps`` reads as epoch numbers: all with an epoch unit; with "auto"
    numbers and digit text of 9 or more digits (not when ``fmt`` reads the text); none with "iso"."""
    if unit in epochs.UNITS:
        return np.ones(len(values), dtype=bool)
    if unit != "auto" or pd.api.types.is_bool_dtype(values):
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        return np.ones(len(values), dtype=bool)
    if isinstance(values.dtype, pd.StringDtype):
        if fmt:
            return np.zeros(len(values), dtype=bool)
        found = pc.match_substring_regex(pa.array(values), f"^{epochs.EPOCH_TEXT}$")
        return pc.fill_null(found, False).to_numpy(zero_copy_only=False)
    pattern = re.compile(epochs.EPOCH_TEXT)

    def is_epoch(v: object) -> bool:
        if isinstance(v, str):
            return not fmt and len(v) >= 9 and ":" not in v and pattern.fullmatch(v) is not None
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
    return values.map(is_epoch).to_numpy(dtype=bool)


def _parse_text(values: pd.Series, timezone: str, fmt: str, tried_fast: bool = False) -> pd.Series:
    """Text times: strptime ``fmt`` when given, else ISO-8601 with or without an offset."""
    if fmt:
        return _parse_format(values, timezone, fmt)
    if not tried_fast and (fast := _naive_text(values)) is not None:
        return _localized(fast, timezone)
    text = values.astype("str").str.strip()
    aware = text.str.contains(_OFFSET, regex=True, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if aware.any():
        out[aware] = _to_us(pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601"))
    naive = ~aware & values.notna()
    if naive.any():
        out[naive] = _localized(pd.to_datetime(text[naive], errors="coerce", format="ISO8601"), timezone)
    return out


def _naive_text(values: pd.Series) -> pd.Series | None:
    """All-naive ISO text cast by pyarrow (fast), or None when some value does not convert."""
    fast = _arrow_cast(values, pa.timestamp("us"))
    return None if fast is None else fast.astype("datetime64[us]")


def _localized(ts: pd.Series, timezone: str) -> pd.Series:
    """Datetimes in UTC, naive ones read in ``timezone``. Times outside years 1000..9998 skip the
    time-zone rules (beyond Python's datetime, which they need, they would raise) and come out as
    FAR_EARLY or FAR_LATE: a time, so out of range, not unparseable."""
    early = (ts < _EARLIEST.tz_localize(ts.dt.tz)).to_numpy(dtype=bool)
    late = (ts >= _LATEST.tz_localize(ts.dt.tz)).to_numpy(dtype=bool)
    if early.any() or late.any():
        ts = ts.where(~(early | late))
    if getattr(ts.dt, "tz", None) is None:
        out = zones.utc_from_local(ts, timezone)
    else:
        out = _to_us(ts.dt.tz_convert("UTC"))
    if early.any() or late.any():
        out[early], out[late] = FAR_EARLY, FAR_LATE
    return out


def _to_us(ts: pd.Series) -> pd.Series:
    return ts.dt.floor("us").astype("datetime64[us, UTC]")


def _parse_format(values: pd.Series, timezone: str, fmt: str) -> pd.Series:
    """Text in the strptime format ``fmt`` (e.g. day-first "%d/%m/%Y %H:%M"); with %z it carries its offset."""
    text = values.astype("str").str.strip().where(values.notna())
    parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt)
    return _localized(parsed, timezone)


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
    """The rows' UTC times; a refused one is NaT (a year like 56135 must not reach the zone rules)."""
    column = cfg.columns[schemas.EVENT_TIME]
    raw = batch[column]
    if cfg.time_column:  # separate date and time columns (e.g. the bakery's Date and Time)
        raw = _text(raw) + " " + _text(batch[cfg.time_column])
        column = f"{column} + {cfg.time_column}"
    ts = parse_timestamps(raw, cfg.timezone, cfg.timestamp_unit, cfg.timestamp_format)
    hint = f" (timestamp_format {cfg.timestamp_format!r})" if cfg.timestamp_format else ""
    why.refuse(ts.isna(), lambda bad: "bad_timestamp: " + column + "=" + raw[bad].astype("str")
               + " is not a timestamp" + _unit_hints(raw[bad], cfg) + hint)
    first, end = accepted_times(cfg, today)
    outside = ((ts < first) | (ts >= end)).to_numpy(dtype=bool)
    last = (end - pd.Timedelta(days=1)).date()

    def out_of_range(bad: np.ndarray) -> pd.Series:
        when = ts[bad].dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype("str")
        when = np.where(ts[bad] == FAR_LATE, "beyond the year 9998", np.where(
            ts[bad] == FAR_EARLY, "before the year 1000", np.char.add(np.char.replace(when, "T", " "), " UTC")))
        side = np.where(ts[bad] < first, f"before {first.date()} (min_event_date)",
                        f"after {last} (ingest day + max_future_days)")
        return ("timestamp_out_of_range: " + column + "=" + raw[bad].astype("str") + " is "
                + pd.Series(when, index=raw[bad].index) + ", " + side
                + _unit_hints(raw[bad], cfg))
    why.refuse(outside, out_of_range)
    return ts.where(~outside)


def accepted_times(cfg: IngestConfig, today: datetime.date | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first, end) of the event times kept: from ``min_event_date`` to the end of the ingest day (UTC)
    plus ``max_future_days``."""
    end = pd.Timestamp(today or datetime.datetime.now(datetime.UTC).date(), tz="UTC")
    return pd.Timestamp(cfg.min_event_date, tz="UTC"), end + pd.Timedelta(days=cfg.max_future_days + 1)


def _unit_hints(values: pd.Series, cfg: IngestConfig) -> pd.Series:
    """Per refused time: how its unit was read and the timestamp_unit that reads it right, if another would."""
    unit = cfg.timestamp_unit
    numeric = epoch_rows(values, unit, cfg.timestamp_format) | (unit == "iso")
    return pd.Series([epochs.hint(v, unit) if n else "" for v, n in zip(values, numeric)],
                     index=values.index, dtype="str")


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

