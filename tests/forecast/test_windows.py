"""Windows, calendar features and scales on series small enough to count by hand; no leakage."""

import dataclasses
import datetime

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.forecast.nn import windows as w
from tests.conftest import SMALL_MODEL, make_tiny_daily

D = datetime.date


def _hand_daily() -> pd.DataFrame:
    """a: Jan 1..10 with revenue 1..10; b: Jan 5..10 with revenue 2 every day."""
    a = [("a", D(2024, 1, i), float(i)) for i in range(1, 11)]
    b = [("b", D(2024, 1, i), 2.0) for i in range(5, 11)]
    return pd.DataFrame(a + b, columns=[s.SEGMENT, s.DATE, s.REVENUE])


def test_calendar_features_of_known_dates():
    # 2024-01-01 is a Monday in January: both angles 0. 2024-07-07 is a Sunday in July:
    # month angle 2*pi*6/12 = pi, weekday angle 2*pi*6/7.
    got = w.calendar_features([D(2024, 1, 1), D(2024, 7, 7)])
    assert got.shape == (2, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], [0.0, 1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(got[1], [0.0, -1.0, np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)],
                               atol=1e-6)
    # December and January are neighbours on the circle: as close as January and February.
    dec, jan, feb = w.calendar_features(["2023-12-15", "2024-01-15", "2024-02-15"])[:, :2]
    assert np.linalg.norm(dec - jan) == pytest.approx(np.linalg.norm(jan - feb), abs=1e-6)


def test_make_windows_counts_and_values_by_hand():
    # lookback 3 + horizon 2 = 5 days: a has 10 days -> 6 windows, b has 6 days -> 2 windows.
    win = w.make_windows(_hand_daily(), s.REVENUE, 3, 2, ["a", "b"], {"a": 2.0, "b": 4.0})
    assert len(win) == 8
    assert win.segment.tolist() == [0] * 6 + [1] * 2
    assert win.history.shape == (8, 3, 5) and win.future.shape == (8, 2, 4) and win.y.shape == (8, 2)
    np.testing.assert_allclose(win.history[0, :, 0], [0.5, 1.0, 1.5])  # 1, 2, 3 divided by 2
    np.testing.assert_allclose(win.y[0], [2.0, 2.5])  # 4, 5 divided by 2
    np.testing.assert_allclose(win.y[5], [4.5, 5.0])  # last window of a: targets 9, 10
    np.testing.assert_allclose(win.history[6, :, 0], [0.5, 0.5, 0.5])  # b: 2 / 4
    assert win.first_target[0] == np.datetime64("2024-01-04")
    assert win.first_target[6] == np.datetime64("2024-01-08")
    np.testing.assert_allclose(win.history[0, :, 1:], w.calendar_features(["2024-01-01", "2024-01-02",
                                                                           "2024-01-03"]))
    np.testing.assert_allclose(win.future[0], w.calendar_features(["2024-01-04", "2024-01-05"]))


def test_make_windows_short_series_and_unknown_segment_give_none():
    win = w.make_windows(_hand_daily(), s.REVENUE, 4, 3, ["b", "zz"], {"b": 1.0})  # b: 6 days < 7
    assert len(win) == 0 and win.history.shape == (0, 4, 5)


def test_fit_scales_uses_only_days_before():
    daily = _hand_daily().assign(**{s.REVENUE: lambda f: f[s.REVENUE].where(f[s.SEGMENT] == "a", 0.0)})
    # a before Jan 5: mean(1, 2, 3, 4) = 2.5; b has no day before Jan 5 -> 1.0
    assert w.fit_scales(_hand_daily(), s.REVENUE, before=D(2024, 1, 5)) == {"a": 2.5, "b": 1.0}
    # b is all zeros: a zero mean falls back to 1.0 instead of dividing by zero
    assert w.fit_scales(daily, s.REVENUE) == {"a": 5.5, "b": 1.0}


def test_fit_scales_naive_is_the_in_sample_seasonal_naive_mae():
    # a = 1..10 with season 7: |8-1|, |9-2|, |10-3| -> 7; before Jan 9: |8-1| only -> 7. b is constant:
    # a zero naive error falls back to 1.0; with season 3, a before Jan 6 (1..5): |4-1|, |5-2| -> 3.
    assert w.fit_scales(_hand_daily(), s.REVENUE, method="naive") == {"a": 7.0, "b": 1.0}
    assert w.fit_scales(_hand_daily(), s.REVENUE, before=D(2024, 1, 9), method="naive")["a"] == 7.0
    assert w.fit_scales(_hand_daily(), s.REVENUE, before=D(2024, 1, 6), method="naive", season=3)["a"] == 3.0
    # b before Jan 6 has one day (<= season): no naive error at all -> 1.0
    assert w.fit_scales(_hand_daily(), s.REVENUE, before=D(2024, 1, 6), method="naive", season=3)["b"] == 1.0


def test_latest_inputs_zero_pads_short_history():
    scales = {"a": 1.0, "b": 2.0, "new": 1.0}
    inputs = w.latest_inputs(_hand_daily(), s.REVENUE, 4, 2, ["a", "b", "new"], scales, cutoff=D(2024, 1, 6))
    # Jan 3..6: a = 3, 4, 5, 6; b starts Jan 5 -> 0, 0, 1, 1 (2 / 2); "new" has no rows -> zeros
    np.testing.assert_allclose(inputs["history"][:, :, 0], [[3, 4, 5, 6], [0, 0, 1, 1], [0, 0, 0, 0]])
    np.testing.assert_allclose(inputs["future"][2], w.calendar_features(["2024-01-07", "2024-01-08"]))
    assert inputs["segment"].tolist() == [0, 1, 2]


def test_split_windows_never_lets_validation_values_in():
    cfg = dataclasses.replace(SMALL_MODEL, lookback=5, horizon=3, val_days=10, scaling="mean")  # scaled ~1
    clean = make_tiny_daily(n_days=60)
    dates = pd.to_datetime(clean[s.DATE])
    val_start = dates.max() - pd.Timedelta(days=cfg.val_days - 1)
    poisoned = clean.assign(**{s.REVENUE: clean[s.REVENUE].where(dates < val_start, 1e12)})
    segments = ["a", "b", "c"]
    a, b = w.split_windows(clean, cfg, segments), w.split_windows(poisoned, cfg, segments)
    assert b.val_start == val_start.date()
    assert b.scales == a.scales  # the scaler never saw a value from the validation dates
    for name in ("history", "future", "segment", "y", "first_target"):
        np.testing.assert_array_equal(getattr(b.train, name), getattr(a.train, name))
    assert b.train.y.max() < 10 and b.train.history[..., 0].max() < 10
    assert (b.train.first_target + np.timedelta64(cfg.horizon - 1, "D") < np.datetime64(b.val_start)).all()
    # validation: every target day inside the last val_days dates -> 10 - 3 + 1 = 8 windows per segment
    assert len(b.val) == 3 * 8 and (b.val.y > 1e6).all()  # 1e12 / scale (c: ~1e4)
    # training: 60 - 10 = 50 days before val_start; a and c: 50 - 8 + 1 = 43 windows, b (30 days): 23
    assert len(b.train) == 43 + 23 + 43


def test_split_windows_naive_scales_never_see_validation_values():
    cfg = dataclasses.replace(SMALL_MODEL, lookback=5, horizon=3, val_days=10, scaling="naive")
    clean = make_tiny_daily(n_days=60)
    dates = pd.to_datetime(clean[s.DATE])
    val_start = dates.max() - pd.Timedelta(days=cfg.val_days - 1)
    poisoned = clean.assign(**{s.REVENUE: clean[s.REVENUE].where(dates < val_start, 1e12)})
    a, b = w.split_windows(clean, cfg, ["a", "b", "c"]), w.split_windows(poisoned, cfg, ["a", "b", "c"])
    assert b.scales == a.scales == w.fit_scales(clean, s.REVENUE, before=val_start.date(), method="naive")
    np.testing.assert_array_equal(b.train.y, a.train.y)
