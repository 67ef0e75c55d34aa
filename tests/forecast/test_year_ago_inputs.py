"""The LSTM's year-ago inputs: values worked out by hand, no leakage, the switch, and saved models.

Each lookback and forecast day d carries the segment's scaled value at d - 364 days (recsys.forecast.members.YEAR)
and a flag that the series holds that day (recsys.forecast.nn.windows.YEAR_AGO_FEATURES).
"""

import dataclasses
import datetime
import json

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.forecast.forecaster import META_FILE, SegmentForecaster
from recsys.forecast.members import YEAR
from recsys.forecast.nn import windows as w
from recsys.forecast.nn.network import ModelError
from tests.conftest import SMALL_MODEL, make_tiny_daily

D = datetime.date
START = D(2023, 1, 2)


def _counting_daily() -> pd.DataFrame:
    """a: 380 days from START with revenue 1, 2, 3...; b: the same but born on day 300 (revenue 1000 + i)."""
    days = [START + datetime.timedelta(days=i) for i in range(380)]
    a = [("a", d, float(i + 1)) for i, d in enumerate(days)]
    b = [("b", d, 1000.0 + i) for i, d in enumerate(days) if i >= 300]
    return pd.DataFrame(a + b, columns=[s.SEGMENT, s.DATE, s.REVENUE])


def test_year_ago_channels_by_hand():
    win = w.make_windows(_counting_daily(), s.REVENUE, 3, 2, ["a", "b"], {"a": 2.0, "b": 1.0}, year_ago=True)
    assert win.history.shape[2] == 7 and win.future.shape[2] == 6
    assert w.feature_names(True)["history"][-2:] == ("year_ago_scaled", "year_ago_available")
    # a's window with the first target on day 366: lookback days 363..365, their year back -1, 0, 1
    k = np.flatnonzero((win.segment == 0) & (win.first_target == np.datetime64(START + datetime.timedelta(days=366))))
    (k,) = k
    np.testing.assert_allclose(win.history[k, :, 0], [364 / 2, 365 / 2, 366 / 2])  # the target, day i holds i + 1
    np.testing.assert_allclose(win.history[k, :, 5], [0.0, 0.5, 1.0])  # day -1: none; days 0, 1: 1 / 2, 2 / 2
    np.testing.assert_allclose(win.history[k, :, 6], [0, 1, 1])
    np.testing.assert_allclose(win.future[k, :, 4:], [[1.5, 1], [2.0, 1]])  # days 366, 367 -> days 2, 3
    np.testing.assert_allclose(win.future[k, :, :4], w.calendar_features([START + datetime.timedelta(days=366),
                                                                          START + datetime.timedelta(days=367)]))
    # b was born on day 300: a year before any of its days it did not exist (a's rows do not count)
    assert (win.segment == 1).sum() == 80 - 5 + 1
    assert not win.history[win.segment == 1][:, :, 5:].any() and not win.future[win.segment == 1][:, :, 4:].any()
    # without year_ago: the old five and four channels, identical values
    old = w.make_windows(_counting_daily(), s.REVENUE, 3, 2, ["a", "b"], {"a": 2.0, "b": 1.0})
    np.testing.assert_array_equal(old.history, win.without_year_ago().history)
    np.testing.assert_array_equal(old.future, win.without_year_ago().future)


def test_a_training_window_never_reads_its_target_days_or_later():
    """Poison every day from a window's first target day on: its inputs, year-ago ones included, stay the same."""
    daily = make_tiny_daily(n_days=420)
    scales = w.fit_scales(daily, s.REVENUE, before=D(2024, 12, 1))
    clean = w.make_windows(daily, s.REVENUE, 14, 7, ["a", "b", "c"], scales, year_ago=True)
    dates = pd.to_datetime(daily[s.DATE])
    for first in pd.to_datetime(["2025-01-05", "2025-01-19", "2025-02-17"]):  # a year back held from 2024-12-30
        poisoned = daily.assign(**{s.REVENUE: daily[s.REVENUE].where(dates < first, 1e12)})
        bad = w.make_windows(poisoned, s.REVENUE, 14, 7, ["a", "b", "c"], scales, year_ago=True)
        at = clean.first_target == np.datetime64(first.date())
        assert at.sum() == 3 and clean.history[at][:, :, 6].any()
        np.testing.assert_array_equal(bad.history[at], clean.history[at])
        np.testing.assert_array_equal(bad.future[at], clean.future[at])


def test_split_windows_year_ago_never_sees_validation_values_and_follows_the_share():
    cfg = dataclasses.replace(SMALL_MODEL, year_ago_min_share=0.0)
    clean = make_tiny_daily(n_days=500)
    dates = pd.to_datetime(clean[s.DATE])
    val_start = dates.max() - pd.Timedelta(days=cfg.val_days - 1)
    poisoned = clean.assign(**{s.REVENUE: clean[s.REVENUE].where(dates < val_start, 1e12)})
    a, b = w.split_windows(clean, cfg, ["a", "b", "c"]), w.split_windows(poisoned, cfg, ["a", "b", "c"])
    assert a.year_ago and b.scales == a.scales  # the scale of the year-ago values is the target's
    assert b.train.history.shape[2] == 7 and b.val.future.shape[2] == 6
    for name in ("history", "future", "y"):
        np.testing.assert_array_equal(getattr(b.train, name), getattr(a.train, name))
    # 500 days, 21 of validation: 459 training windows of a, 95 of them (start >= day 364) with a year back
    assert 0.15 < a.train.year_back_share() < 0.25
    off = w.split_windows(clean, dataclasses.replace(cfg, year_ago_min_share=0.5), ["a", "b", "c"])
    assert not off.year_ago and off.train.history.shape[2] == 5 and off.val.future.shape[2] == 4
    np.testing.assert_array_equal(off.train.history, a.train.history[:, :, :5])
    assert w.split_windows(make_tiny_daily(n_days=1000), SMALL_MODEL, ["a", "b", "c"]).year_ago  # default 0.5


def test_latest_inputs_year_ago_by_hand_and_only_up_to_the_cutoff():
    daily, cutoff = _counting_daily(), START + datetime.timedelta(days=369)
    inputs = w.latest_inputs(daily, s.REVENUE, 7, 3, ["a", "b", "zz"], {"a": 2.0, "b": 1.0, "zz": 1.0}, cutoff,
                             year_ago=True)
    # lookback days 363..369 -> a year back -1..5 (revenue i + 1, / 2); horizon 370..372 -> 6..8
    np.testing.assert_allclose(inputs["history"][0, :, 5], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    np.testing.assert_allclose(inputs["history"][0, :, 6], [0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(inputs["future"][0, :, 4:], [[3.5, 1], [4, 1], [4.5, 1]])
    assert not inputs["history"][1:, :, 5:].any() and not inputs["future"][1:, :, 4:].any()  # b too young, zz unknown
    after = pd.to_datetime(daily[s.DATE]) > pd.Timestamp(cutoff)
    poisoned = daily.assign(**{s.REVENUE: daily[s.REVENUE].where(~after, 1e12)})
    again = w.latest_inputs(poisoned, s.REVENUE, 7, 3, ["a", "b", "zz"], {"a": 2.0, "b": 1.0, "zz": 1.0}, cutoff,
                            year_ago=True)
    for name in ("history", "future"):
        np.testing.assert_array_equal(again[name], inputs[name])
    with pytest.raises(ValueError, match="horizon <= 364"):
        w.latest_inputs(daily, s.REVENUE, 7, YEAR + 1, ["a"], {"a": 1.0}, cutoff, year_ago=True)


@pytest.mark.slow
def test_a_year_ago_model_saves_its_features_loads_and_forecasts_the_same(tmp_path):
    cfg = dataclasses.replace(SMALL_MODEL, epochs=1, year_ago_min_share=0.0)
    daily = make_tiny_daily(n_days=420)
    rec = SegmentForecaster(cfg)
    rec.fit(daily)
    assert rec.year_ago and rec.model.input["history"].shape[-1] == 7
    rec.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["features"]["future"] == list(w.feature_names(True)["future"])
    loaded = SegmentForecaster.load(tmp_path)  # safe_mode=True inside
    assert loaded.year_ago
    np.testing.assert_allclose(loaded.predict(daily)[s.FORECAST], rec.predict(daily)[s.FORECAST], rtol=1e-5)
    meta["features"] = {k: list(v) for k, v in w.feature_names(False).items()}  # files that disagree
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="do not match the features"):
        SegmentForecaster.load(tmp_path)


@pytest.mark.slow
def test_a_model_saved_without_a_features_record_loads_with_the_old_inputs(trained_forecaster, trained_daily,
                                                                          tmp_path):
    assert not trained_forecaster.year_ago  # 150 days: no year back
    trained_forecaster.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["features"]["history"] == list(w.HISTORY_FEATURES)
    del meta["features"]  # as the oldest recommender.json files
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    loaded = SegmentForecaster.load(tmp_path)
    assert not loaded.year_ago
    np.testing.assert_allclose(loaded.predict(trained_daily)[s.FORECAST],
                               trained_forecaster.predict(trained_daily)[s.FORECAST], rtol=1e-5)
