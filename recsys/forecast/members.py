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

Each segment is fitted on its own series, so the segments are split into ``member_jobs()`` groups
(round robin over the sorted ids) fitted side by side in worker processes, and the groups' frames
joined back in segment order: the same forecasts, bit for bit, as one process. The workers come
from a "forkserver" pool (kept for the process's life), never a fork of the caller, which may hold
TensorFlow's threads. ``TRENDREC_MEMBER_JOBS`` sets the number (1 = all in this process); unset, it
is the cores this process may run on. A process that may not start children (a task of Celery's prefork
pool is daemonic) fits them itself, with one warning.

    python -c "from recsys.forecast.members import STATISTICAL; print(STATISTICAL)"
"""

from __future__ import annotations

import atexit
import datetime
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

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


JOBS_ENV = "TRENDREC_MEMBER_JOBS"  # worker processes of the statistical members; unset = this process's cores

_pool: ProcessPoolExecutor | None = None
_pool_jobs = 0
_pool_failed: list[str] = []  # why workers could not start in this process (then it fits the members itself)


class MemberError(TrendrecError):
    """A member is unknown or statsforecast could not fit the series."""


def check_members(names: Sequence[str], where: str) -> None:
    """MemberError naming ``where`` unless every name is a known member."""
    unknown = sorted(set(names) - set(MEMBERS))
    if unknown:
        raise MemberError(f"{where}: unknown member(s) {unknown}; expected some of {list(MEMBERS)}")


def member_jobs() -> int:
    """``$TRENDREC_MEMBER_JOBS``, or the cores this process may run on when it is unset."""
    value = os.environ.get(JOBS_ENV)
    if value is None:
        return len(os.sched_getaffinity(0))
    if not value.strip().isdigit() or int(value) < 1:
        raise MemberError(f"${JOBS_ENV} is {value!r}: give a whole number of processes >= 1, or unset it")
    return int(value)


def statistical_forecasts(history: pd.DataFrame, target: str, cutoff: datetime.date, horizon: int,
                          season: int, names: Sequence[str], jobs: int | None = None) -> dict[str, pd.DataFrame]:
    """{member: [segment, date, forecast]} for the statistical ``names``, from rows dated <= ``cutoff``.

    ``jobs`` (default ``member_jobs()``) processes fit groups of segments side by side; 1 fits them here.
    """
    check_members(names, "statistical_forecasts")
    key = history[s.SEGMENT].astype(str)
    segments = sorted(key[pd.to_datetime(history[s.DATE]).dt.date <= cutoff].unique())
    jobs = min(jobs or member_jobs(), len(segments))
    if jobs > 1 and any(n != SEASONAL_NAIVE for n in names) and not _no_workers():
        groups = [segments[i::jobs] for i in range(jobs)]
        try:
            futures = [_workers(jobs).submit(_in_process, history.loc[key.isin(g)], target, cutoff, horizon,
                                             season, list(names)) for g in groups]
            parts = [f.result() for f in futures]
        except (AssertionError, OSError, BrokenProcessPool) as exc:  # no children here (a daemonic worker's task)
            _no_workers(exc)
        else:
            return {n: pd.concat([p[n] for p in parts], ignore_index=True)
                    .sort_values([s.SEGMENT, s.DATE], ignore_index=True, kind="stable") for n in parts[0]}
    return _in_process(history, target, cutoff, horizon, season, names)


def _no_workers(exc: BaseException | None = None) -> bool:
    """True once worker processes failed to start here: the members are then fitted in this process.

    A process may not start any, e.g. a task run by a daemonic worker (Celery's prefork pool): multiprocessing
    refuses it children. With ``exc`` (why), it records the failure and logs it once.
    """
    global _pool
    if exc is not None and not _pool_failed:
        _pool_failed.append(repr(exc))
        log.warning("statistical members: no worker processes here (%r); fitted in this process", exc)
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
    return bool(_pool_failed)


def _workers(jobs: int) -> ProcessPoolExecutor:
    """The process's pool of ``jobs`` forkserver workers (statsforecast imported once, in the server)."""
    global _pool, _pool_jobs
    if _pool is None or _pool_jobs != jobs:
        if _pool is not None:
            _pool.shutdown()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__, "statsforecast.models", "statsforecast.core"])
        _pool, _pool_jobs = ProcessPoolExecutor(max_workers=jobs, mp_context=context), jobs
        log.info("statistical members: fitted in %d forkserver processes (%s; 1 = in this process)", jobs, JOBS_ENV)
    return _pool


@atexit.register
def _close_workers() -> None:
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)


def _in_process(history: pd.DataFrame, target: str, cutoff: datetime.date, horizon: int, season: int,
                names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """statistical_forecasts' members for ``history``'s segments, fitted in this process."""
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
