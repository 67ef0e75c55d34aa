"""Turn one batch of a shop's rows into canonical events, with a reason for every refused row.

Pure functions: a pandas batch with the shop's own column names goes in; a frame of canonical
columns (pipeline.schemas) and a per-row reason (empty when the row is good) come out. The first
failing check names the reason, in this order: missing required field, unparseable or
out-of-range timestamp, non-numeric or non-finite quantity or price, negative price, return
(negative quantity, when the config quarantines returns).

    python -c "from pipeline.validate import REASONS; print(REASONS)"
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import schemas
from pipeline.config import IngestConfig

REASONS = (
    "missing_field",
    "bad_timestamp",
    "timestamp_out_of_range",
    "non_numeric",
    "non_finite",
    "negative_price",
    "return",
)
# Events before this or after this are refused as out of range (clock errors, placeholder dates).
MIN_TIME = pd.Timestamp("1990-01-01", tz="UTC")
MAX_TIME = pd.Timestamp("2100-01-01", tz="UTC")
_OFFSET = r"(?:[Zz]|[+-]\d\d:?\d\d)$"


def parse_timestamps(values: pd.Series, timezone: str) -> pd.Series:
    """Parse to UTC; naive values are read in ``timezone``. Unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = values
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        return ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if pd.api.types.is_numeric_dtype(values):  # epoch seconds
        return pd.to_datetime(values, unit="s", utc=True, errors="coerce").astype("datetime64[us, UTC]")
    text = values.astype("str").str.strip()
    aware = text.str.contains(_OFFSET, regex=True, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
    naive = ~aware & values.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601")
        out[naive] = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    return out


def _as_id(values: pd.Series) -> pd.Series:
    """Ids as strings: floats like 17850.0 (a pandas artefact of nullable ints) lose their '.0'."""
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (values == np.floor(values))
        text = values.astype("str")
        text[whole] = values[whole].astype("int64").astype("str")
        return text.where(values.notna(), None)
    text = values.astype("str").str.strip()
    return text.where(values.notna() & (text != ""), None)


def derive_segment(batch: pd.DataFrame, cfg: IngestConfig) -> pd.Series:
    """The segment column if mapped, else the first matching rule on ``segment_from``, else the default."""
    column = cfg.columns.get(schemas.SEGMENT)
    if column:
        seg = _as_id(batch[column])
        return seg.fillna(cfg.segment_default)
    seg = pd.Series(cfg.segment_default, index=batch.index, dtype="str")
    if not (cfg.segment_from and cfg.segment_rules):
        return seg
    text = batch[cfg.segment_from].astype("str").str.upper()
    assigned = np.zeros(len(batch), dtype=bool)
    for name, pattern in cfg.segment_rules:
        hit = text.str.contains(pattern, regex=True, na=False).to_numpy() & ~assigned
        seg[hit] = name
        assigned |= hit
    return seg


def validate_batch(batch: pd.DataFrame, cfg: IngestConfig) -> tuple[pd.DataFrame, pd.Series]:
    """Canonical columns for every row, and the reason each bad row is refused ('' when good)."""
    cols = cfg.columns
    out = pd.DataFrame(index=batch.index)
    reason = pd.Series("", index=batch.index, dtype="str")

    def refuse(mask: pd.Series | np.ndarray, text: pd.Series | str) -> None:
        mask = pd.Series(mask, index=batch.index) & (reason == "")
        reason[mask] = text[mask] if isinstance(text, pd.Series) else text

    for field, required in schemas.MAPPABLE_FIELDS.items():
        if required and field in cols:
            raw = batch[cols[field]]
            empty = raw.isna() | (raw.astype("str").str.strip() == "")
            refuse(empty, f"missing_field: {cols[field]} is empty")

    raw_ts = batch[cols[schemas.EVENT_TIME]]
    ts = parse_timestamps(raw_ts, cfg.timezone)
    refuse(ts.isna(), "bad_timestamp: " + cols[schemas.EVENT_TIME] + "=" + raw_ts.astype("str") + " is not a timestamp")
    refuse((ts < MIN_TIME) | (ts >= MAX_TIME), f"timestamp_out_of_range: before {MIN_TIME.date()} or after {MAX_TIME.date()}")
    out[schemas.EVENT_TIME] = ts
    out[schemas.EVENT_DATE] = ts.dt.tz_convert(cfg.timezone).dt.date

    for field in (schemas.QUANTITY, schemas.PRICE):
        raw = batch[cols[field]]
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        refuse(num.isna(), "non_numeric: " + cols[field] + "=" + raw.astype("str") + " is not a number")
        refuse(~np.isfinite(num.fillna(0.0)), f"non_finite: {cols[field]} is infinite")
        out[field] = num
    refuse(out[schemas.PRICE] < 0, f"negative_price: {cols[schemas.PRICE]} < 0")
    if cfg.returns == "quarantine":
        refuse(out[schemas.QUANTITY] < 0, f"return: {cols[schemas.QUANTITY]} < 0 (cancellation or return)")

    for field in (schemas.ITEM_ID, schemas.USER_ID, schemas.ORDER_ID):
        out[field] = _as_id(batch[cols[field]]) if field in cols else None
    out[schemas.SEGMENT] = derive_segment(batch, cfg)
    return out, reason
