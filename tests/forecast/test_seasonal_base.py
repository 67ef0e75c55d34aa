"""The closed-day mask and the level adjustment of the seasonal skip, by hand; and that a model using them
reloads in safe mode."""

import dataclasses

import numpy as np
import pytest

from pipeline import schemas as s
from pipeline.schemas import FORECAST
from recsys.forecast.forecaster import SegmentForecaster
from recsys.forecast.nn.seasonal_base import LevelAdjust, OpenDays, select_level_exponents
from tests.conftest import SMALL_MODEL, make_tiny_daily


def test_open_days_marks_a_weekday_closed_only_if_it_never_sold_in_the_lookback():
    history = np.zeros((2, 14, 5), dtype="float32")
    history[0, :, 0] = [1, 2, 3, 4, 5, 0, 7] * 2  # the 6th weekday closed in both weeks
    history[1, :, 0] = [1, 2, 3, 4, 5, 0, 7] + [1, 2, 3, 4, 5, 6, 0]  # each open in one of the weeks
    mask = np.asarray(OpenDays(7, 9)(history))
    np.testing.assert_array_equal(mask[0], [1, 1, 1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(mask[1], np.ones(9))


def test_closed_weekday_forecasts_exactly_zero_after_save_and_load(tmp_path):
    daily = make_tiny_daily(n_days=120)
    daily.loc[daily[s.WEEKDAY] == 5, s.REVENUE] = 0.0  # no Saturday sales at all
    cfg = dataclasses.replace(SMALL_MODEL, epochs=1, closed_days=True, base_seasons=2)
    rec = SegmentForecaster(cfg)
    rec.fit(daily)
    rec.save(tmp_path)
    forecast = SegmentForecaster.load(tmp_path).predict(daily)
    saturday = np.array([d.weekday() == 5 for d in forecast[s.DATE]])
    assert (forecast.loc[saturday, FORECAST] == 0).all() and (forecast.loc[~saturday, FORECAST] > 0).all()


def test_level_adjust_scales_the_base_by_last_weeks_level_to_the_exponent_clipped():
    week = np.array([1, 2, 3, 4, 5, 0, 5], dtype="float32")  # total 20
    base = np.stack([np.tile(week, 2)[:9]] * 5)
    base[2] = 0.0  # an empty base: nothing to compare last week with
    history = np.zeros((5, 14, 5), dtype="float32")
    history[:, -7:, 0] = [[0, 0, 0, 0, 0, 0, 40], [40, 0, 0, 0, 0, 0, 0], [3, 3, 0, 0, 0, 0, 0],
                          [200, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]  # totals 40, 40, 6, 200, 0
    exponent = np.array([[1.0], [0.5], [1.0], [1.0], [0.5]], dtype="float32")
    out = np.asarray(LevelAdjust(7)([base, history, exponent]))
    np.testing.assert_allclose(out[0], base[0] * 2.0, rtol=1e-6)  # twice the level, fully followed
    np.testing.assert_allclose(out[1], base[1] * np.sqrt(2.0), rtol=1e-6)  # damped
    np.testing.assert_array_equal(out[2], np.zeros(9))
    np.testing.assert_allclose(out[3], base[3] * 4.0, rtol=1e-6)  # 10x clipped to 4x
    np.testing.assert_allclose(out[4], base[4] * 0.5, rtol=1e-6)  # an empty week: 0.25 ** 0.5


def test_select_level_exponents_follows_a_rising_series_and_keeps_a_noisy_one_on_its_base():
    week = np.array([1, 2, 3, 4, 5, 0, 5], dtype="float32")
    base = np.tile(week, 2)[None].repeat(4, axis=0)  # (4 windows, horizon 14)
    history = np.zeros((4, 14, 5), dtype="float32")
    history[:, -7:, 0] = 2 * week  # last week at twice the base's level in every window
    y = np.stack([2 * base[0], 2 * base[1], base[2], base[3]])  # segment 0 went on at 2x, segment 1 did not
    segment = np.array([0, 0, 1, 1])
    picked = select_level_exponents(base, history, y, segment, n_segments=3, candidates=(0.0, 0.5, 1.0), season=7)
    np.testing.assert_array_equal(picked, [1.0, 0.0, 0.0])  # segment 2 has no window: the smallest candidate
    assert picked.dtype == np.float32


@pytest.mark.slow
def test_fit_stores_the_picked_exponents_as_frozen_weights_that_survive_save_and_load(tmp_path):
    daily = make_tiny_daily(n_days=120)
    ramp = np.linspace(1.0, 6.0, 120)  # segment a grows six-fold: last week leads the median base
    a = daily[s.SEGMENT] == "a"
    daily.loc[a, s.REVENUE] = daily.loc[a, s.REVENUE].to_numpy() * ramp[-a.sum():]
    cfg = dataclasses.replace(SMALL_MODEL, epochs=1, level_exponents=(0.0, 0.5, 1.0))
    rec = SegmentForecaster(cfg)
    rec.fit(daily)
    layer = rec.model.get_layer("level_exponent")
    assert not layer.trainable and rec.level_exponents["a"] == 1.0
    np.testing.assert_array_equal(layer.get_weights()[0][:, 0], [rec.level_exponents[x] for x in rec.segments])
    rec.save(tmp_path)
    loaded = SegmentForecaster.load(tmp_path)
    assert loaded.level_exponents == rec.level_exponents
    np.testing.assert_allclose(loaded.predict(daily)[FORECAST], rec.predict(daily)[FORECAST], rtol=1e-6)
    off = SegmentForecaster(dataclasses.replace(cfg, level_exponents=()))
    off.fit(daily)
    assert off.level_exponents == {} and "level_exponent" not in [x.name for x in off.model.layers]
