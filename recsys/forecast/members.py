"""The statistical members of the segment forecast: seasonal naive, AutoETS and AutoTheta, without TensorFlow.

Each is fitted per segment on the zero-filled daily series up to the cut-off and forecasts the next
``horizon`` days; all share one frame layout [segment, date, forecast] with the LSTM, so the
combination (recsys.forecast.combination), the backtest and the blessing gate score them alike.
AutoETS and AutoTheta come from statsforecast (one call fits both); a series too short or too flat
for them falls back to seasonal naive (statsforecast's ``fallback_model``) rather than failing the run.

    python -c "from recsys.forecast.members import STATISTICAL; print(STATISTICAL)"
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from recsys.forecast import metrics as fm

log = logging.getLogger(__name__)

LSTM = "lstm"  # the SegmentForecaster (recsys.forecast.forecaster), the only member that needs TensorFlow
SEASONAL_NAIVE = "seasonal_naive"
STATSFORECAST = {"auto_ets": "AutoETS", "auto_theta": "AutoTheta"}  # member name -> statsforecast model
STATISTICAL = (SEASONAL_NAIVE, *STATSFORECAST)
MEMBERS = (LSTM, *STATISTICAL)


class MemberError(TrendrecError):
    """A member is unknown or statsforecast could not fit the series."""


def check_members(names: Sequence[str], where: str) -> None:
    """MemberError naming ``where`` unless every name is a known member."""
    unknown = sorted(set(names) - set(MEMBERS))
    if unknown:
        raise MemberError(f"{where}: unknown member(s) {unknown}; expected some of {list(MEMBERS)}")


def statistical_forecasts(history: pd.DataFrame, target: str, cutoff: datetime.date, horizon: int,
                          season: int, names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """{member: [segment, date, forecast]} for the statistical ``names``, from rows dated <= ``cutoff``."""
    check_members(names, "statistical_forecasts")
    dates = pd.to_datetime(history[s.DATE]).dt.date
    past = history.loc[dates <= cutoff]
    out = {}
    if SEASONAL_NAIVE in names:
        out[SEASONAL_NAIVE] = fm.seasonal_naive_forecast(past, cutoff, horizon, season, target)
    wanted = [n for n in names if n in STATSFORECAST]
    if wanted:
        out |= _statsforecast(past, target, cutoff, horizon, season, wanted)
    return out


def _statsforecast(past: pd.DataFrame, target: str, cutoff: datetime.date, horizon: int, season: int,
                   names: list[str]) -> dict[str, pd.DataFrame]:
    from statsforecast import StatsForecast
    from statsforecast import models as sm

    frame = pd.DataFrame({"unique_id": past[s.SEGMENT].astype(str), "ds": pd.to_datetime(past[s.DATE]),
                          "y": past[target].astype(float)})
    frame = pd.concat([_zero_fill(group, cutoff) for _, group in frame.groupby("unique_id", sort=True)],
                      ignore_index=True)
    models = [getattr(sm, STATSFORECAST[n])(season_length=season) for n in names]
    try:
        result = StatsForecast(models=models, freq="D", fallback_model=sm.SeasonalNaive(season_length=season)
                               ).forecast(df=frame, h=horizon)
    except Exception as exc:  # statsforecast raises ValueError / numba errors for degenerate series
        raise MemberError(f"{', '.join(names)} failed at cut-off {cutoff}: {exc!r}") from exc
    segment = result["unique_id"].astype(str).to_numpy()
    days = pd.to_datetime(result["ds"]).dt.date.to_numpy()
    return {n: pd.DataFrame({s.SEGMENT: segment, s.DATE: days,
                             s.FORECAST: np.clip(result[STATSFORECAST[n]].to_numpy(float), 0.0, None)})
            for n in names}


def _zero_fill(group: pd.DataFrame, cutoff: datetime.date) -> pd.DataFrame:
    """The segment's days from its first row to the cut-off, missing days as 0 (as the daily table does)."""
    days = pd.date_range(group["ds"].min(), pd.Timestamp(cutoff), freq="D")
    filled = group.set_index("ds")[["y"]].reindex(days, fill_value=0.0).rename_axis("ds").reset_index()
    return filled.assign(unique_id=group["unique_id"].iloc[0])
