"""Rolling-origin backtest: the published combination beside each of its members on the same cut-offs.

One hold-out is one draw; a model that wins on one fortnight may lose on the next. For each cut-off
the combination (recsys.forecast.combination: the LSTM SegmentForecaster, seasonal naive, AutoETS,
AutoTheta, MSTL and year-ago, chosen on validation cut-offs before it) is fitted from scratch on the days
up to and including the cut-off only, and forecasts the next ``horizon`` days; "model" is the
combination, and every member is scored under its own name from the same fit. Every method is scored on the same cells with
MAE, RMSE, MAPE, sMAPE, R² and MASE, per segment and overall. MASE is Hyndman's: a forecast's MAE
divided by the in-sample MAE of the seasonal-naive forecast on the training part of the same series
(so per cut-off), then averaged over the cut-offs and, for the overall figure, over the segments.

    trendrec backtest --cutoffs 4 --step 14 --json
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CombinationConfig, Config, ModelConfig
from pipeline.errors import TrendrecError
from pipeline.store import Store, new_run_id, read_daily, safe_name, write_json
from recsys.forecast import metrics as fm
from recsys.forecast.combination import fit_combination
from recsys.forecast.members import LSTM, MEMBERS, SEASONAL_NAIVE, statistical_forecasts

log = logging.getLogger(__name__)

MODEL = "model"  # the published forecast: the combination of the members (recsys.forecast.combination)
METHODS = (MODEL, *MEMBERS)  # the combination beside each member: lstm, seasonal_naive, auto_ets, auto_theta
CUTOFF = "cutoff"  # column of the forecast table: the last training day
ACTUAL = "actual"  # column of the forecast table: the observed target


class BacktestError(TrendrecError):
    """The cut-offs leave no training data or no day to forecast, or a baseline cannot be fitted."""


def backtest(daily: pd.DataFrame, config: ModelConfig, cutoffs: Sequence[datetime.date], *, season: int = 7,
             methods: Sequence[str] = METHODS, combination: CombinationConfig = CombinationConfig()) -> dict[str, Any]:
    """Forecast from every cut-off with every method and score them (see :func:`score_backtest`)."""
    started = time.monotonic()
    forecasts, seconds = backtest_forecasts(daily, config, cutoffs, season=season, methods=methods,
                                            combination=combination)
    result = score_backtest(forecasts, daily, config.target, season, list(methods))
    return result | {"seconds": seconds | {"total": round(time.monotonic() - started, 2)}}


def backtest_forecasts(daily: pd.DataFrame, config: ModelConfig, cutoffs: Sequence[datetime.date], *,
                       season: int = 7, methods: Sequence[str] = METHODS,
                       combination: CombinationConfig = CombinationConfig()) -> tuple[pd.DataFrame, dict]:
    """Long table [segment, cutoff, date, actual, <method>...] and the seconds each method took.

    Only rows dated on or before a cut-off are handed to the methods for that cut-off; the rows after
    it are used only as the actuals. Cells that a method does not forecast are dropped for all.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise BacktestError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
    daily = daily.assign(**{s.DATE: pd.to_datetime(daily[s.DATE]).dt.date})
    parts, seconds = [], dict.fromkeys(methods, 0.0)
    for i, cutoff in enumerate(sorted(pd.Timestamp(c).date() for c in cutoffs)):
        part = _forecast_cutoff(daily, config, cutoff, season, methods, seconds, combination)
        parts.append(part)
        summary = ", ".join(f"{m} MASE {_cutoff_mase(part, daily, config.target, season, m):.3f}"
                            for m in methods)
        log.info("cutoff %d/%d %s: %d segments x %d days; %s", i + 1, len(cutoffs), cutoff,
                 part[s.SEGMENT].nunique(), part[s.DATE].nunique(), summary)
    if not parts:
        raise BacktestError("no cut-off given: expected at least one last-training day")
    return pd.concat(parts, ignore_index=True), {m: round(v, 2) for m, v in seconds.items()}


def _forecast_cutoff(daily: pd.DataFrame, config: ModelConfig, cutoff: datetime.date, season: int,
                     methods: Sequence[str], seconds: dict[str, float], combination: CombinationConfig) -> pd.DataFrame:
    train = daily[daily[s.DATE] <= cutoff].reset_index(drop=True)
    end = cutoff + datetime.timedelta(days=config.horizon)
    actual = daily.loc[(daily[s.DATE] > cutoff) & (daily[s.DATE] <= end), [s.SEGMENT, s.DATE, config.target]]
    if train.empty or actual.empty:
        raise BacktestError(f"cut-off {cutoff} leaves {len(train)} training and {len(actual)} hold-out rows "
                            f"(data {daily[s.DATE].min()}..{daily[s.DATE].max()}); both must be non-empty")
    frames = _combination_forecasts(train, config, cutoff, season, methods, seconds, combination)
    rest = [m for m in methods if m not in frames]
    if rest:
        t0 = time.monotonic()
        frames |= statistical_forecasts(train, config.target, cutoff, config.horizon, season, rest)
        for m in rest:  # one statsforecast call fits them together: the time is shared out
            seconds[m] += (time.monotonic() - t0) / len(rest)
    joined = actual.rename(columns={config.target: ACTUAL})
    for method in methods:
        frame = frames[method][[s.SEGMENT, s.DATE, s.FORECAST]]
        frame = frame.assign(**{s.DATE: pd.to_datetime(frame[s.DATE]).dt.date})
        joined = joined.merge(frame.rename(columns={s.FORECAST: method}), on=[s.SEGMENT, s.DATE], how="inner")
    return joined.assign(**{CUTOFF: cutoff})[[s.SEGMENT, CUTOFF, s.DATE, ACTUAL, *methods]]


def _combination_forecasts(train: pd.DataFrame, config: ModelConfig, cutoff: datetime.date, season: int,
                           methods: Sequence[str], seconds: dict[str, float],
                           combination: CombinationConfig) -> dict[str, pd.DataFrame]:
    """The combination ("model") and every member it fitted, when the LSTM or the combination is asked for.

    The members come from the same fit as the combination, so "model" and each member are scored on
    the same forecasts the combination was built from. seconds["model"] is the whole fit (the LSTM,
    the validation cut-offs, the forecast); seconds["lstm"] the LSTM's training alone.
    """
    if not {MODEL, LSTM} & set(methods):
        return {}
    wanted = set(combination.members) | ({LSTM} if LSTM in methods else set())
    members = tuple(m for m in MEMBERS if m in wanted)
    t0 = time.monotonic()
    forecaster, result = fit_combination(train, config, dataclasses.replace(combination, members=members), season)
    frames = forecaster.predict_members(train, cutoff, names=tuple(dict.fromkeys((*members, SEASONAL_NAIVE))))
    frames[MODEL] = forecaster.combine(frames)
    if MODEL in seconds:
        seconds[MODEL] += time.monotonic() - t0
    if LSTM in seconds:
        seconds[LSTM] += result.get("seconds", {}).get(LSTM, 0.0)
    return {m: f for m, f in frames.items() if m in methods}


def _train_series(daily: pd.DataFrame, segment: str, cutoff: datetime.date, target: str) -> np.ndarray:
    part = daily[(daily[s.SEGMENT] == segment) & (daily[s.DATE] <= cutoff)]
    return part.sort_values(s.DATE)[target].to_numpy(float)


def _cutoff_mase(part: pd.DataFrame, daily: pd.DataFrame, target: str, season: int, method: str) -> float:
    values = [fm.mase(g[ACTUAL], g[method], _train_series(daily, seg, g[CUTOFF].iloc[0], target), season)
              for seg, g in part.groupby(s.SEGMENT)]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def score_backtest(forecasts: pd.DataFrame, daily: pd.DataFrame, target: str, season: int,
                   methods: list[str]) -> dict[str, Any]:
    """Per-segment and overall metrics of each method; per-cut-off mean MASE.

    Per segment, MAE, RMSE, MAPE, sMAPE and R² are computed on its pooled (cut-off, day) cells and
    MASE is the mean over cut-offs of each cut-off's MASE. Overall, the first five are pooled over
    every cell and MASE is the mean of the segments' finite MASEs. Non-finite values become null.
    """
    daily = daily.assign(**{s.DATE: pd.to_datetime(daily[s.DATE]).dt.date})
    scales = {key: fm.naive_scale(_train_series(daily, key[0], key[1], target), season)
              for key in forecasts.groupby([s.SEGMENT, CUTOFF]).groups}
    per_segment: dict[str, dict] = {}
    for segment, part in forecasts.groupby(s.SEGMENT, sort=True):
        per_segment[str(segment)] = {m: fm.finite_or_none(fm.score(part[ACTUAL], part[m]) | {
            "mase": _mean_mase(part, m, scales)}) for m in methods}
    overall = {}
    for m in methods:
        mases = [seg[m]["mase"] for seg in per_segment.values() if seg[m]["mase"] is not None]
        pooled = fm.score(forecasts[ACTUAL], forecasts[m])
        pooled["mase"] = float(np.mean(mases)) if mases else math.nan
        overall[m] = fm.finite_or_none(pooled) | {"mase_segments": len(mases)}
    per_cutoff = [{CUTOFF: str(c)} | {m: fm.finite_or_none({"mase": _cutoff_mase(g, daily, target, season, m)})["mase"]
                                      for m in methods} for c, g in forecasts.groupby(CUTOFF, sort=True)]
    horizon = int(forecasts.groupby([s.SEGMENT, CUTOFF]).size().max())
    return {"target": target, "season": season, "horizon": horizon,
            "cutoffs": [str(c) for c in sorted(forecasts[CUTOFF].unique())], "methods": list(methods),
            "overall": overall, "per_segment": per_segment, "per_cutoff": per_cutoff}


def _mean_mase(part: pd.DataFrame, method: str, scales: dict) -> float:
    values = []
    for (segment, cutoff), g in part.groupby([s.SEGMENT, CUTOFF]):
        scale = scales[(segment, cutoff)]
        if math.isfinite(scale) and scale > 0:
            values.append(fm.mae(g[ACTUAL], g[method]) / scale)
    return float(np.mean(values)) if values else math.nan


# --- run_backtest: the store around the pure parts ------------------------------------------------
def default_cutoffs(last: datetime.date, horizon: int, n: int, step: int) -> list[datetime.date]:
    """``n`` cut-offs ``step`` days apart, the latest leaving exactly ``horizon`` days to forecast."""
    if n < 1 or step < 1:
        raise BacktestError(f"--cutoffs ({n}) and --step ({step}) must be >= 1")
    latest = last - datetime.timedelta(days=horizon)
    return [latest - datetime.timedelta(days=step * k) for k in range(n - 1, -1, -1)]


def run_backtest(cfg: Config, *, cutoffs: int = 4, step: int | None = None,
                 run_id: str | None = None) -> dict[str, Any]:
    """Backtest on the store's daily table; the result goes to ``backtest/<run id>.json``."""
    store = Store(cfg.store)
    run_id = safe_name(run_id, "run id") if run_id is not None else new_run_id()
    daily = read_daily(store)
    days = default_cutoffs(daily[s.DATE].max(), cfg.model.horizon, cutoffs, step or cfg.model.horizon)
    log.info("backtest %s: %d cut-offs %s..%s, horizon %d", run_id, len(days), days[0], days[-1],
             cfg.model.horizon)
    result = backtest(daily, cfg.model, days, season=cfg.evaluate.season, combination=cfg.combination)
    path = write_json(result | {"run_id": run_id, "model": cfg.to_dict()["model"]},
                      store.backtest / f"{run_id}.json")
    return {"run_id": run_id, "path": str(path), "cutoffs": result["cutoffs"],
            "mase": {m: result["overall"][m]["mase"] for m in result["methods"]},
            "overall": result["overall"], "seconds": result["seconds"]}
