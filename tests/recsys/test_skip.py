"""The closed-day mask of the seasonal skip, by hand; and that a model using it reloads in safe mode."""

import dataclasses

import numpy as np

from pipeline import schemas as s
from recsys.model import FORECAST, LSTMRecommender
from recsys.skip import OpenDays
from tests.recsys.conftest import SMALL_MODEL, make_tiny_daily


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
    rec = LSTMRecommender(cfg)
    rec.fit(daily)
    rec.save(tmp_path)
    forecast = LSTMRecommender.load(tmp_path).predict(daily)
    saturday = np.array([d.weekday() == 5 for d in forecast[s.DATE]])
    assert (forecast.loc[saturday, FORECAST] == 0).all() and (forecast.loc[~saturday, FORECAST] > 0).all()
