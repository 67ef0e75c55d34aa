"""Local times to UTC, with the time-zone rules looked up once per hour.

pandas' ``tz_localize`` searches the zone's transitions for every value and checks each one for
ambiguity: at 500,000 times a batch, 12-23 ms, a sixth of the validation. A zone's offset changes only at its
transitions, and no zone has two within one hour, so each hour the batch spans is looked up twice, at
its first and its last microsecond (pandas, with its rules for ambiguous and non-existent local times):
where both agree every time of that hour has that offset; an hour with a transition (the ends differ,
or one is ambiguous or does not exist) is looked up time by time. A batch spanning more than
``MAX_HOURS`` hours (times decades apart) is looked up time by time. The results are pandas' own,
value for value (tests/ingest/test_zones.py compares them around the transitions of several zones).

    python -c "import pandas as pd; from pipeline.ingest.zones import utc_from_local; print(utc_from_local(pd.Series(pd.to_datetime(['2024-03-31 01:30', '2024-07-01 12:00'])), 'Europe/London'))"
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

NAT = np.iinfo(np.int64).min  # NaT as int64
HOUR = 3_600_000_000  # microseconds
MAX_HOURS = 1 << 18  # about 30 years: two lookups of this many hours cost about what 500,000 times do


def utc_from_local(naive: pd.Series, timezone: str) -> pd.Series:
    """Naive local times read in ``timezone`` as UTC (datetime64[us, UTC]): ambiguous and non-existent
    times become NaT, as ``tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")`` gives them;
    sub-microsecond parts are cut (floored)."""
    if naive.dt.unit != "us":
        naive = naive.dt.floor("us")
    utc = utc_micros(naive.to_numpy(dtype="datetime64[us]").view(np.int64), timezone)
    return pd.Series(utc.view("datetime64[us]"), index=naive.index).dt.tz_localize("UTC")


def utc_micros(local: np.ndarray, timezone: str) -> np.ndarray:
    """``utc_from_local`` on int64 microseconds (NAT for NaT, in and out)."""

    def offsets(us: np.ndarray) -> np.ndarray:
        utc = _micros(pd.DatetimeIndex(us.view("datetime64[us]")).tz_localize(
            timezone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC").tz_localize(None))
        return np.where((utc == NAT) | (us == NAT), NAT, utc - us)
    shift = _by_hour(local, offsets)
    none = shift == NAT  # NaT in, or a time that is ambiguous or does not exist
    return np.where(none, NAT, local + np.where(none, 0, shift))


def _micros(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("us").asi8


def _by_hour(us: np.ndarray, offsets: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``offsets(us)`` (int64 microseconds, NAT where none), each hour the values span looked up once."""
    valid = us != NAT
    every = bool(valid.all())
    if not valid.any():  # none, or all NaT
        return np.full(len(us), NAT, np.int64)
    hours = us // HOUR if every else np.where(valid, us // HOUR, us[valid][0] // HOUR)
    lo, hi = int(hours.min()), int(hours.max())
    if hi - lo >= MAX_HOURS:
        return offsets(us)
    starts = np.arange(lo, hi + 1, dtype=np.int64) * HOUR
    first, last = offsets(starts), offsets(starts + (HOUR - 1))
    hours -= lo
    out = first[hours]
    changing = (first != last) | (first == NAT)
    if changing.any():  # hours with a transition: each time on its own
        odd = changing[hours] & valid
        if odd.any():
            out[odd] = offsets(us[odd])
    if not every:
        out[~valid] = NAT
    return out
