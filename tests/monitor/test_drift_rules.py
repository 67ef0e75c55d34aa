"""Two drift rules worked out by hand on tiny frames: a small segment coming or going is catalogue churn,
and a near-empty day is a closure when the reference's own calendar has closures.

    .venv/bin/python -m pytest tests/monitor/test_drift_rules.py -q
"""

import pandas as pd

from pipeline import schemas as s
from recsys.monitor.drift import check_segments, check_volume


def _segments(counts):
    return pd.DataFrame({s.SEGMENT: [seg for seg, n in counts.items() for _ in range(n)]})


def test_a_small_segment_vanishing_is_churn_a_large_one_is_a_fault():
    ref = _segments({"bread": 700, "cakes": 270, "alfajores": 30})  # alfajores: 3 % of the rows
    assert check_segments(ref, _segments({"bread": 700, "cakes": 270})).passed  # 30 rows expected, under 5 %
    gone = check_segments(ref, _segments({"bread": 700, "alfajores": 30}))  # cakes: 27 %
    assert not gone.passed and gone.details["vanished"] == ["cakes"]
    assert check_segments(ref, _segments({"bread": 700, "cakes": 270, "alfajores": 30, "tshirt": 25})).passed
    assert check_segments(ref, _segments({"bread": 700, "cakes": 270, "pastry": 300})).details["new"] == ["pastry"]


def _days(rows_per_day):
    return pd.DataFrame({s.EVENT_DATE: [pd.Timestamp(day) for day, n in rows_per_day.items() for _ in range(n)]})


def test_a_closed_day_passes_when_the_reference_closes_too():
    days = pd.date_range("2024-01-01", periods=28)  # 4 weeks, 10 rows a day
    open_days = {d: 10 for d in days}
    window = {pd.Timestamp("2024-01-29"): 1, **{d: 10 for d in pd.date_range("2024-01-30", periods=6)}}
    # no closure in the reference: a 1-row Monday is 0.1 x the Mondays' median, a fault
    assert not check_volume(_days(open_days), _days(window), 1 / 3, 3.0).passed
    # the reference closed two days (no rows): 2 of 28 days -> ceil(2 * 7 / 28) = 1 low day allowed
    closed = {d: n for d, n in open_days.items() if d not in (pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-11"))}
    check = check_volume(_days(closed), _days(window), 1 / 3, 3.0)
    assert check.passed and check.details["reference_closures"] == 2 and check.details["closures_allowed"] == 1
    two_low = {**window, pd.Timestamp("2024-01-30"): 1}  # a second low day is more than the shop's closures
    assert not check_volume(_days(closed), _days(two_low), 1 / 3, 3.0).passed
