"""The categorical checks' noise, worked out by hand: the chance floor widened by a shop's own overdispersion,
and the hour of day failing only for a clock shift, not for the shop's own hours changing.

    .venv/bin/python -m pytest tests/monitor/test_drift_noise.py -q
"""

import datetime
import math

import pandas as pd
import pytest
from scipy import stats

from pipeline import schemas as s
from recsys.monitor.distances import clock_shift, js_dispersion, js_distance, js_noise_floor
from recsys.monitor.drift import check_categorical, reference_dispersion
from recsys.monitor.windows import HOUR, ORDERS, TIME_KEY


def test_the_floor_widens_by_the_square_root_of_the_dispersion():
    plain = js_noise_floor(3, 1000, 200)
    by_hand = math.sqrt(stats.chi2.ppf(0.999, 2) * (1 / 1000 + 1 / 200) / (8 * math.log(2)))
    assert plain == pytest.approx(by_hand)
    assert js_noise_floor(3, 1000, 200, dispersion=4.0) == pytest.approx(2 * plain)  # known dispersion: chi-squared
    assert js_noise_floor(3, 1000, 200, dispersion=0.5) == pytest.approx(plain)  # never narrower than chance
    # estimated on 10 degrees of freedom: F(2, 10) instead of chi-squared(2) / 2, wider
    estimated = math.sqrt(2 * stats.f.ppf(0.999, 2, 10) * (1 / 1000 + 1 / 200) / (8 * math.log(2)))
    assert js_noise_floor(3, 1000, 200, dispersion=1.0, dispersion_df=10) == pytest.approx(estimated)
    assert estimated > plain


def test_dispersion_is_the_distance_in_units_of_chance():
    js = js_distance({"a": 50, "b": 50}, {"a": 60, "b": 40})
    assert js_dispersion(js, 2, 100, 100) == pytest.approx(js ** 2 * 8 * math.log(2) / (2 / 100))
    assert math.isnan(js_dispersion(js, 1, 100, 100))


def test_a_clock_shift_is_found_and_an_evening_opening_is_not_one():
    morning = {"8": 10, "9": 30, "10": 40, "11": 20}
    assert clock_shift(morning, {"14": 10, "15": 30, "16": 40, "17": 20}) == (6, 0.0)
    assert clock_shift(morning, {"2": 10, "3": 30, "4": 40, "5": 20}) == (-6, 0.0)
    assert clock_shift(morning, {**morning, "19": 30, "20": 30})[0] == 0  # the same mornings, and evenings too


def _daily(weeks, per_day):
    """daily_counts' shape: ``weeks`` weeks of days with the segment counts ``per_day`` and one order a row."""
    rows = []
    for d in pd.date_range("2024-01-01", periods=7 * weeks):
        rows += [(d.date(), s.SEGMENT, value, n) for value, n in per_day.items()]
        rows.append((d.date(), ORDERS, "", sum(per_day.values())))
    return pd.DataFrame(rows, columns=["day", "column", "value", "n"])


def test_reference_dispersion_counts_the_weeks_the_log_holds_a_reference_for():
    steady = _daily(12, {"a": 10, "b": 10})  # every week like the 28 days before it: distance 0
    end = datetime.date(2024, 3, 25)  # the day after the 12 weeks: 8 weeks with 28 days before them
    assert reference_dispersion(steady, s.SEGMENT, end) == (0.0, 8)  # 1 degree of freedom each (2 values)
    # 6 weeks of log: only the last 2 weeks have 28 days before them
    assert reference_dispersion(_daily(6, {"a": 10, "b": 10}), s.SEGMENT, datetime.date(2024, 2, 12)) == (0.0, 2)
    assert reference_dispersion(steady, HOUR, end) == (1.0, 0)  # no counts of that column: chance alone


def _orders(hours, day="2024-01-01"):
    times = [pd.Timestamp(day) + pd.Timedelta(hours=h, minutes=i % 60) for i, h in enumerate(hours)]
    return pd.DataFrame({s.ORDER_ID: [f"o{i}" for i in range(len(hours))], s.USER_ID: None,
                         TIME_KEY: [t.value // 1000 for t in times], HOUR: [t.hour for t in times]})


def test_the_hour_fails_for_a_clock_shift_and_passes_when_the_shop_opens_in_the_evening():
    ref = _orders([8] * 100 + [9] * 300 + [10] * 400 + [11] * 200)
    evening = check_categorical(ref, _orders([8] * 10 + [9] * 30 + [10] * 40 + [11] * 20 + [19] * 30), HOUR, 0.1)
    assert evening.passed and evening.value > evening.threshold and evening.details["clock_shift_hours"] == 0
    shifted = check_categorical(ref, _orders([14] * 10 + [15] * 30 + [16] * 40 + [17] * 20), HOUR, 0.1)
    assert not shifted.passed and shifted.details["clock_shift_hours"] == 6
    assert "column hour" in shifted.reason and "moved by +6 h" in shifted.reason
