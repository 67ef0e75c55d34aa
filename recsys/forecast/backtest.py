"""Rolling-origin backtest: the SegmentForecaster against seasonal naive and AutoETS on the same cut-offs.

One hold-out is one draw; a model that wins on one fortnight may lose on the next. For each cut-off
the SegmentForecaster is trained from scratch on the days up to and including the cut-off only, and
forecasts the next ``horizon`` days; seasonal naive (same day last season) and statsforecast's
AutoETS forecast the same days from the same history. Every method is scored on the same cells with
MAE, RMSE, MAPE, sMAPE, R² and MASE, per segment and overall. MASE is Hyndman's: a forecast's MAE
divided by the in-sample MAE of the seasonal-naive forecast on the training part of the same series
(so per cut-off), then averaged over the cut-offs and, for the overall figure, over the segments.

    trendrec backtest --cutoffs 4 --step 14 --json
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config, ModelConfig
from pipeline.errors import TrendrecError
from pipeline.store import Store, new_run_id, read_daily, safe_name, write_json
from recsys.forecast import metrics as fm

log = logging.getLogger(__name__)

METHODS = ("model", "seasonal_naive", "auto_ets")
CUTOFF = "cutoff"  # column of the forecast table: the last training day
ACTUAL = "actual"  # column of the forecast table: the observed target


class BacktestError(TrendrecError):
    """The cut-offs leave no training data or no day to forecast, or a baseline cannot be fitted."""


def backtest(daily: pd.DataFrame, config: ModelConfig, cutoffs: Sequence[datetime.date], *, season: int = 7,
             methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """Forecast from every cut-off with every method and score them (see :func:`score_backtest`)."""
    started = time.monotonic()
    forecasts, seconds = backtest_forecasts(daily, config, cutoffs, season=season, methods=methods)
    result = score_backtest(forecasts, daily, config.target, season, list(methods))
    return result | {"seconds": seconds | {"total": round(time.monotonic() - started, 2)}}


def backtest_forecasts(daily: pd.DataFrame, config: ModelConfig, cutoffs: Sequence[datetime.date], *,
                       season: int = 7, methods: Sequence[str] = METHODS) -> tuple[pd.DataFrame, dict]:
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
        part = _forecast_cutoff(daily, config, cutoff, season, methods, seconds)
        parts.append(part)
        summary = ", ".join(f"{m} MASE {_cutoff_mase(part, daily, config.target, season, m):.3f}"
                            for m in methods)
        log.info("cutoff %d/%d %s: %d segments x %d days; %s", i + 1, len(cutoffs), cutoff,
                 part[s.SEGMENT].nunique(), part[s.DATE].nunique(), summary)
    if not parts:
        raise BacktestError("no cut-off given: expected at least one last-training day")
    return pd.concat(parts, ignore_index=True), {m: round(v, 2) for m, v in seconds.items()}


def _forecast_cutoff(daily: pd.DataFrame, config: ModelConfig, cutoff: datetime.date, season: int,
                     methods: Sequence[str], seconds: dict[str, float]) -> pd.DataFrame:
    train = daily[daily[s.DATE] <= cutoff].reset_index(drop=True)
    end = cutoff + datetime.timedelta(days=config.horizon)
    actual = daily.loc[(daily[s.DATE] > cutoff) & (daily[s.DATE] <= end), [s.SEGMENT, s.DATE, config.target]]
    if train.empty or actual.empty:
        raise BacktestError(f"cut-off {cutoff} leaves {len(train)} training and {len(actual)} hold-out rows "
                            f"(data {daily[s.DATE].min()}..{daily[s.DATE].max()}); both must be non-empty")
    joined = actual.rename(columns={config.target: ACTUAL})
    for method in methods:
        t0 = time.monotonic()
        frame = _FORECASTERS[method](train, config, cutoff, season)
        seconds[method] += time.monotonic() - t0
        frame = frame.assign(**{s.DATE: pd.to_datetime(frame[s.DATE]).dt.date})
        frame = frame.rename(columns={s.FORECAST: method})
        joined = joined.merge(frame, on=[s.SEGMENT, s.DATE], how="inner")
    return joined.assign(**{CUTOFF: cutoff})[[s.SEGMENT, CUTOFF, s.DATE, ACTUAL, *methods]]


def _model_forecast(train: pd.DataFrame, config: ModelConfig, cutoff: datetime.date,
                    season: int) -> pd.DataFrame:
    from recsys.forecast.forecaster import SegmentForecaster

    recommender = SegmentForecaster(config)
    recommender.fit(train)
    return recommender.predict(train, cutoff)


def _naive_forecast(train: pd.DataFrame, config: ModelConfig, cutoff: datetime.date,
                    season: int) -> pd.DataFrame:
    return fm.seasonal_naive_forecast(train, cutoff, config.horizon, season, config.target)


def _ets_forecast(train: pd.DataFrame, config: ModelConfig, cutoff: datetime.date,
                  season: int) -> pd.DataFrame:
    """statsforecast AutoETS(season_length=season) per segment, on its zero-filled daily series."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    frame = pd.DataFrame({"unique_id": train[s.SEGMENT].astype(str), "ds": pd.to_datetime(train[s.DATE]),
                          "y": train[config.target].astype(float)})
    frame = pd.concat([_zero_fill(group) for _, group in frame.groupby("unique_id", sort=True)],
                      ignore_index=True)
    try:
        out = StatsForecast(models=[AutoETS(season_length=season)], freq="D").forecast(
            df=frame, h=config.horizon)
    except Exception as exc:  # statsforecast raises ValueError / numba errors for degenerate series
        raise BacktestError(f"AutoETS failed at cut-off {cutoff}: {exc!r}") from exc
    return pd.DataFrame({s.SEGMENT: out["unique_id"].astype(str), s.DATE: pd.to_datetime(out["ds"]).dt.date,
                         s.FORECAST: np.clip(out["AutoETS"].to_numpy(float), 0.0, None)})


def _zero_fill(group: pd.DataFrame) -> pd.DataFrame:
    days = pd.date_range(group["ds"].min(), group["ds"].max(), freq="D")
    filled = group.set_index("ds")[["y"]].reindex(days, fill_value=0.0).rename_axis("ds").reset_index()
    return filled.assign(unique_id=group["unique_id"].iloc[0])


_FORECASTERS = {"model": _model_forecast, "seasonal_naive": _naive_forecast, "auto_ets": _ets_forecast}


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
    result = backtest(daily, cfg.model, days, season=cfg.evaluate.season)
    path = write_json(result | {"run_id": run_id, "model": cfg.to_dict()["model"]},
                      store.inside(f"backtest/{run_id}.json"))
    return {"run_id": run_id, "path": str(path), "cutoffs": result["cutoffs"],
            "mase": {m: result["overall"][m]["mase"] for m in result["methods"]},
            "overall": result["overall"], "seconds": result["seconds"]}
