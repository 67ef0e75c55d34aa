"""A shop with two Decembers: the segment trend on 30 November must read last year's December and turn up."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import CombinationConfig, ModelConfig
from recsys.forecast import combination as cb
from recsys.forecast.members import LSTM, YEAR_AGO
from recsys.forecast.trends import compute_trend_scores


def _two_decembers(seed: int = 0) -> pd.DataFrame:
    """2023-06-01..2024-11-30, three weekly segments: "gifts" ebbs by a fifth through November and sells
    1.6 times its level from 1 to 24 December; "basics" is flat; "garden" peaks in summer."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-06-01", "2024-11-30", freq="D")
    t = np.arange(len(days))
    week = 1 + 0.3 * np.sin(2 * np.pi * t / 7)
    november = np.where(days.month == 11, 1 - 0.2 * (days.day - 1) / 29, 1.0)
    curves = {"gifts": 100 * (november + 0.6 * ((days.month == 12) & (days.day <= 24))),
              "basics": np.full(len(t), 200.0),
              "garden": 80 * (1 + 0.7 * np.cos(2 * np.pi * (days.day_of_year - 180) / 365))}
    return pd.concat([pd.DataFrame({s.SEGMENT: name, s.DATE: days.date,
                                    s.REVENUE: curve * week * rng.lognormal(0, 0.1, len(t))})
                      for name, curve in curves.items()], ignore_index=True)


@pytest.mark.slow
def test_the_gifts_trend_turns_up_before_december():
    daily = _two_decembers()
    gifts = daily[daily[s.SEGMENT] == "gifts"].set_index(s.DATE)[s.REVENUE]
    dates = pd.to_datetime(gifts.index)
    early_december = gifts[(dates >= "2023-12-01") & (dates <= "2023-12-14")].sum()
    late_november = gifts[(dates >= "2023-11-17") & (dates <= "2023-11-30")].sum()
    assert early_december > 1.4 * late_november  # the year before, gift revenue rose over 40 %
    recent = gifts[dates > "2024-11-16"].sum()
    assert recent < gifts[(dates > "2024-11-02") & (dates <= "2024-11-16")].sum()  # and it is falling now
    members = tuple(m for m in CombinationConfig().members if m != LSTM)  # the statistical members: no training
    forecaster, _ = cb.fit_combination(daily, ModelConfig(horizon=14), dataclasses.replace(CombinationConfig(),
                                                                                            members=members), 7)
    assert forecaster.weights[cb.DEFAULT].get(YEAR_AGO, 0) > 0, forecaster.selection
    trends = compute_trend_scores(forecaster, daily).set_index(s.SEGMENT)
    assert trends.loc["gifts", s.TREND] > 0.05, trends  # the first two weeks of December sell more than the last two of November
    assert trends.loc["gifts", s.TREND] > trends.loc["basics", s.TREND] + 0.1
