"""Local times to UTC by hour (pipeline.ingest.zones) give pandas' tz_localize value for value: around
the transitions of zones with whole-hour, half-hour and 45-minute offsets and half-hour shifts,
ambiguous and non-existent times NaT, NaT in, nanoseconds cut, in time order and in none."""

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest import zones

ZONES = ["Europe/London", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu", "America/Sao_Paulo", "UTC"]


def _pandas(naive: pd.Series, timezone: str) -> pd.Series:
    local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    return local.dt.tz_convert("UTC").dt.floor("us").astype("datetime64[us, UTC]")


def _times(timezone: str, rng: np.random.Generator) -> pd.Series:
    """Random times over three years, and every minute (with odd seconds) of the hours around each transition."""
    first = 1985 if timezone == "Asia/Kathmandu" else 2009  # +5:30 to +5:45 in 1986: 15 minutes that never were
    start, end = pd.Timestamp(f"{first}-06-01"), pd.Timestamp(f"{first + 3}-06-01")
    spread = start + pd.to_timedelta(rng.integers(0, int((end - start).total_seconds()), 3000), unit="s")
    shifts = pd.date_range(start, end, freq="15min", tz="UTC").tz_convert(timezone)
    offsets = shifts.map(lambda t: t.utcoffset())
    moments = shifts[1:][np.asarray(offsets[1:] != offsets[:-1])].tz_localize(None)
    near = [m + pd.Timedelta(minutes=k, seconds=7) for m in moments for k in range(-150, 150)]
    return pd.Series(pd.DatetimeIndex(list(spread) + near).as_unit("us"))


@pytest.mark.parametrize("timezone", ZONES)
def test_local_times_read_in_a_zone_are_pandas_own(timezone):
    rng = np.random.default_rng(len(timezone))
    times = _times(timezone, rng)
    for naive in (times.sort_values(ignore_index=True), times.sample(frac=1, random_state=1, ignore_index=True)):
        naive = naive.copy()
        naive[::97] = pd.NaT
        expected = _pandas(naive, timezone)
        got = zones.utc_from_local(naive, timezone)
        assert got.dtype == expected.dtype
        pd.testing.assert_series_equal(got, expected)
    if timezone != "UTC":
        assert expected.isna().sum() > len(naive[::97])  # some times were ambiguous or did not exist


def test_nanoseconds_are_cut_and_far_apart_times_are_read_one_by_one(monkeypatch):
    naive = pd.Series(pd.to_datetime(["2011-03-27 00:59:59.999999999", "1995-01-01 12:00:00.5", None,
                                      "2011-10-30 01:30:00.000001001"]))
    assert naive.dt.unit == "ns"
    pd.testing.assert_series_equal(zones.utc_from_local(naive, "Europe/London"), _pandas(naive, "Europe/London"))
    monkeypatch.setattr(zones, "MAX_HOURS", 10)  # a span of more hours than this: no table of hours
    pd.testing.assert_series_equal(zones.utc_from_local(naive, "Europe/London"), _pandas(naive, "Europe/London"))
    assert zones.utc_from_local(naive[:0], "UTC").empty
    empty = pd.Series(pd.to_datetime([None, None]))
    assert zones.utc_from_local(empty, "Europe/London").isna().all()
