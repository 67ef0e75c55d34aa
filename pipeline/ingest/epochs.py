"""Epoch numbers as times: the unit told from a value's magnitude, and the hint a refused value gets.

``[ingest] timestamp_unit = "auto"`` reads a number by the digits of its whole part: up to 11 digits
are epoch seconds, 12 to 14 milliseconds, 15 to 17 microseconds, 18 or 19 nanoseconds. Every time
from 1973-03-03 to 5138 has exactly one reading that way (the epoch of 2024-03-01 10:00 UTC is
1709287200 s, 1709287200000 ms, 1709287200000000 us, 1709287200000000000 ns), and every day after
``min_event_date`` (1990 by default) is inside it. Text of 9 or more digits is an epoch number too;
shorter digit text stays a date (``20240301``). A number with more than 19 digits is no time. An
explicit unit ("s", "ms", "us", "ns") reads every value in that unit, and a refused row names the
setting its digits suggest, e.g. ``[ingest] timestamp_unit = "ms"``. Times are kept to the
microsecond (nanoseconds are cut, as RAW_SCHEMA stores us).

    python -c "from pipeline.ingest.epochs import unit_of; print(unit_of(1709287200000))"
"""

from __future__ import annotations

import numpy as np
import pandas as pd

UNITS = ("s", "ms", "us", "ns")
NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_MICROS = {"s": 1_000_000.0, "ms": 1_000.0, "us": 1.0, "ns": 0.001}  # microseconds per unit
_UPPER = (1e11, 1e14, 1e17, 1e19)  # whole parts below these bounds read as s, ms, us, ns
_LIMIT_US = 2.0 ** 62  # |microseconds| beyond this (year ~146,000) are no time at all
EPOCH_TEXT = r"\s*[+-]?\d{9,}(?:\.\d*)?\s*"  # digit text "auto" reads as an epoch number


def unit_of(value: float) -> str:
    """The unit "auto" reads ``value`` in, by the digits of its whole part ('' beyond 19 digits)."""
    return str(auto_units(np.array([value], dtype="float64"))[0])


def auto_units(num: np.ndarray) -> np.ndarray:
    """Per value: "s", "ms", "us" or "ns" by magnitude (see the module doc), '' for NaN or > 19 digits."""
    size = np.abs(num)
    chosen = np.select([size < b for b in _UPPER], list(UNITS), "")
    return np.where(np.isnan(num), "", chosen)


def numbers(values: pd.Series) -> pd.Series:
    """The values as numbers (Int64 when every one is a whole number that fits, else float64; NaN
    where a value is no number)."""
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        values = values.map(lambda v: None if isinstance(v, (bool, np.bool_, dict, list)) else v)
    num = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_integer_dtype(num) and not pd.api.types.is_unsigned_integer_dtype(num):
        return num.astype("Int64")
    return num.astype("float64")


def to_times(num: pd.Series, unit: str) -> pd.Series:
    """Epoch numbers (from ``numbers``) in ``unit`` ("auto" = by magnitude) as UTC times, NaT where
    a value is no number or no time."""
    exact = isinstance(num.dtype, pd.Int64Dtype)
    as_float = num.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
    units = auto_units(as_float) if unit == "auto" else np.full(len(num), unit)
    per = np.array([_MICROS.get(u, np.nan) for u in units], dtype="float64")
    micros = as_float * per
    valid = np.isfinite(micros) & (np.abs(micros) < _LIMIT_US)
    if exact:  # whole numbers: integer arithmetic, so nanoseconds are cut exactly
        ints = num.to_numpy(dtype="int64", na_value=0)
        ints = np.where(valid, ints, 0)
        scale = np.where(units == "ns", 1, np.where(valid, per, 1)).astype("int64")
        us = np.where(units == "ns", ints // 1000, ints * scale)
    else:
        us = np.floor(np.where(valid, micros, 0.0)).astype("int64")
    out = pd.Series(us.view("datetime64[us]"), index=num.index).where(valid)
    return out.dt.tz_localize("UTC")


def hint(value: object, unit: str) -> str:
    """What a refused time value says about its unit: the setting that reads it right, where one would."""
    num = numbers(pd.Series([value], dtype=object)).astype("float64").iloc[0]
    if np.isnan(num) and unit not in UNITS:
        return ""
    if np.isnan(num):
        return f"; timestamp_unit = {unit!r} reads numbers only: for text times set [ingest] timestamp_unit = \"auto\""
    digits = len(str(int(abs(num)))) if np.isfinite(num) else 0
    guess = unit_of(num)
    if not guess:
        return f"; an epoch number has at most 19 digits, this one has {digits or 'infinitely many'}"
    if unit == "auto":
        return f" (read as epoch {NAMES[guess]} by its {digits} digits)"
    if unit not in UNITS:  # "iso": text times only
        return (f"; its {digits} digits look like epoch {NAMES[guess]}: set [ingest] timestamp_unit = "
                f"\"{guess}\" (or \"auto\")")
    if guess != unit:
        return (f" (read as epoch {NAMES.get(unit, unit)}); its {digits} digits look like {NAMES[guess]}: "
                f"set [ingest] timestamp_unit = \"{guess}\" (or \"auto\")")
    return f" (read as epoch {NAMES[unit]})"
