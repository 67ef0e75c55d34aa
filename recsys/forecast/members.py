"""The statistical members of the segment forecast: seasonal naive, AutoETS, AutoTheta, MSTL and last year's shape.

Each is fitted per segment on the zero-filled daily series up to the cut-off and forecasts the next
``horizon`` days; all share one frame layout [segment, date, forecast] with the LSTM, so the
combination (recsys.forecast.combination), the backtest and the blessing gate score them alike.
AutoETS, AutoTheta and MSTL come from statsforecast; a series too short or too flat for them falls
back to seasonal naive (statsforecast's ``fallback_model``) rather than failing the run.

Two members read a year back, where the series holds one:

- ``mstl``: MSTL (STL per period, the trend by AutoETS) with a weekly period, plus a yearly one of
  ``YEAR`` days for a series with at least two years before the cut-off;
- ``year_ago``: the mean of the same weekday over the last ``RECENT // 7`` weeks, times last year's
  change from those weeks to the forecast days: the mean of the 7 days around each day ``YEAR`` days
  back over the mean of the ``RECENT`` days that ended ``YEAR`` days before the cut-off (clipped to
  [1/4, 4]). A series without ``YEAR + RECENT`` days keeps ratio 1: the weekday mean alone.

``YEAR`` is 364 days (52 weeks), so a day a year back falls on the same weekday.

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
MSTL = "mstl"  # statsforecast MSTL: weekly, and yearly with two years of history
YEAR_AGO = "year_ago"  # the recent weekday means times last year's change over the same weeks
STATISTICAL = (SEASONAL_NAIVE, *STATSFORECAST, MSTL, YEAR_AGO)
MEMBERS = (LSTM, *STATISTICAL)
YEAR = 364  # days back to the same weekday a year ago
RECENT = 28  # days of the recent level (year_ago's weekday means and its ratio's denominator)
RATIO_BOUNDS = (0.25, 4.0)  # last year's change, clipped: one odd week a year ago moves a forecast at most 4x


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
    wanted = [n for n in names if n in STATSFORECAST or n == MSTL]
    frame = _filled(past, target, cutoff) if wanted or YEAR_AGO in names else None
    if wanted:
        out |= _statsforecast(frame, cutoff, horizon, season, wanted)
    if YEAR_AGO in names:
        out[YEAR_AGO] = year_ago_forecast(frame, cutoff, horizon, season)
    return {n: out[n] for n in names if n in out}


def year_ago_forecast(frame: pd.DataFrame, cutoff: datetime.date, horizon: int, season: int) -> pd.DataFrame:
    """[segment, date, forecast] of ``year_ago`` from the zero-filled [unique_id, ds, y] up to ``cutoff``."""
    parts = []
    days = [cutoff + datetime.timedelta(days=h) for h in range(1, horizon + 1)]
    for segment, group in frame.groupby("unique_id", sort=True):
        y = group["y"].to_numpy(float)
        parts.append(pd.DataFrame({s.SEGMENT: segment, s.DATE: days,
                                   s.FORECAST: _year_ago(y, horizon, season)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[s.SEGMENT, s.DATE, s.FORECAST])


def _year_ago(y: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """One series' ``year_ago`` forecast for the ``horizon`` days after its last value."""
    n, weeks = len(y), max(1, RECENT // season)
    out = np.empty(horizon)
    for h in range(horizon):
        same = [n + h - season * k for k in range(1 + h // season, 1 + h // season + weeks)]
        same = [i for i in same if i >= 0]
        out[h] = y[same].mean() if same else 0.0
    if n >= YEAR + RECENT:
        level = y[n - YEAR - RECENT:n - YEAR].mean()
        around = np.array([y[max(0, n + h - YEAR - 3):n + h - YEAR + 4].mean() for h in range(horizon)])
        ratio = np.clip(around / level, *RATIO_BOUNDS) if level > 0 else np.ones(horizon)
        out = out * ratio
    return np.clip(out, 0.0, None)


def _statsforecast(frame: pd.DataFrame, cutoff: datetime.date, horizon: int, season: int,
                   names: list[str]) -> dict[str, pd.DataFrame]:
    """AutoETS / AutoTheta in one call; MSTL in one call per set of periods (yearly needs two years)."""
    from statsforecast import models as sm

    out: dict[str, pd.DataFrame] = {}
    plain = [n for n in names if n in STATSFORECAST]
    if plain:
        models = [getattr(sm, STATSFORECAST[n])(season_length=season, alias=n) for n in plain]
        out |= _fit(frame, models, plain, cutoff, horizon, season)
    if MSTL in names:
        length = frame.groupby("unique_id")["y"].transform("size")
        parts = [_fit(frame.loc[mask], [sm.MSTL(season_length=periods, alias=MSTL)], [MSTL], cutoff, horizon,
                      season)[MSTL]
                 for periods, mask in (([season], length < 2 * YEAR), ([season, YEAR], length >= 2 * YEAR))
                 if mask.any()]
        out[MSTL] = pd.concat(parts, ignore_index=True).sort_values([s.SEGMENT, s.DATE], ignore_index=True)
    return out


def _fit(frame: pd.DataFrame, models: list, names: list[str], cutoff: datetime.date, horizon: int,
         season: int) -> dict[str, pd.DataFrame]:
    from statsforecast import StatsForecast
    from statsforecast import models as sm

    try:
        result = StatsForecast(models=models, freq="D", fallback_model=sm.SeasonalNaive(season_length=season)
                               ).forecast(df=frame, h=horizon)
    except Exception as exc:  # statsforecast raises ValueError / numba errors for degenerate series
        raise MemberError(f"{', '.join(names)} failed at cut-off {cutoff}: {exc!r}") from exc
    segment = result["unique_id"].astype(str).to_numpy()
    days = pd.to_datetime(result["ds"]).dt.date.to_numpy()
    return {n: pd.DataFrame({s.SEGMENT: segment, s.DATE: days,
                             s.FORECAST: np.clip(result[n].to_numpy(float), 0.0, None)})
            for n in names}


def _filled(past: pd.DataFrame, target: str, cutoff: datetime.date) -> pd.DataFrame:
    """[unique_id, ds, y]: each segment's days from its first row to the cut-off, missing days as 0."""
    frame = pd.DataFrame({"unique_id": past[s.SEGMENT].astype(str), "ds": pd.to_datetime(past[s.DATE]),
                          "y": past[target].astype(float)})
    parts = [_zero_fill(group, cutoff) for _, group in frame.groupby("unique_id", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else frame


def _zero_fill(group: pd.DataFrame, cutoff: datetime.date) -> pd.DataFrame:
    """The segment's days from its first row to the cut-off, missing days as 0 (as the daily table does)."""
    days = pd.date_range(group["ds"].min(), pd.Timestamp(cutoff), freq="D")
    filled = group.set_index("ds")[["y"]].reindex(days, fill_value=0.0).rename_axis("ds").reset_index()
    return filled.assign(unique_id=group["unique_id"].iloc[0])
