"""Forecast accuracy: MAE, RMSE, MAPE, sMAPE, R², MASE and the seasonal-naive baseline.

Pure functions of numpy arrays and frames, shared by evaluate (the hold-out gate), backtest
(rolling origins), tune and the windows' per-series scales. MASE (Hyndman & Koehler) is the
deciding metric: it is scale-free across segments of very different volume, and a value below 1
beats the seasonal-naive forecast's in-sample error.

    python -c "from recsys.forecast.metrics import mase; print(mase([3, 4], [3, 5], [1, 2, 3, 4], 1))"
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s

METRICS = ("mae", "rmse", "mape", "smape", "r2", "mase")


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(forecast, float))))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(actual, float) - np.asarray(forecast, float)) ** 2)))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error in %, over the points whose actual is non-zero.

    Zero actuals are skipped (the error is undefined there); ``nan`` when every actual is zero.
    """
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    keep = a != 0
    if not keep.any():
        return math.nan
    return float(100.0 * np.mean(np.abs(a[keep] - f[keep]) / np.abs(a[keep])))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in % (0..200): mean of 2|a - f| / (|a| + |f|); a point where both are 0 counts 0."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(2.0 * np.abs(a - f), denom, out=np.zeros_like(denom), where=denom != 0)
    return float(100.0 * np.mean(terms))


def r2(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot; ``nan`` when the actuals are constant."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    ss_tot = float(np.sum((a - a.mean()) ** 2))
    if ss_tot == 0:
        return math.nan
    return 1.0 - float(np.sum((a - f) ** 2)) / ss_tot


def naive_scale(train: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast y(t - season) on ``train``; ``nan`` if too short."""
    y = np.asarray(train, float)
    if len(y) <= season:
        return math.nan
    return float(np.mean(np.abs(y[season:] - y[:-season])))


def mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray, season: int) -> float:
    """Mean absolute scaled error (Hyndman): forecast MAE / in-sample seasonal-naive MAE of ``train``.

    A constant (or too short) training series has no naive error to scale by: the result is then
    ``inf`` when the forecast has any error and ``nan`` when it has none (0/0), as numpy divides.
    """
    scale = naive_scale(train, season)
    err = mae(actual, forecast)
    if math.isnan(scale):
        return math.nan
    if scale == 0:
        return math.inf if err > 0 else math.nan
    return err / scale


def seasonal_naive_forecast(history: pd.DataFrame, cutoff: date, horizon: int, season: int,
                            target: str) -> pd.DataFrame:
    """y_hat(T + h) = y(T + h - season * ceil(h / season)) for h = 1..horizon, T = cutoff.

    That is the same weekday of the last observed season. A day missing from a segment's history
    (before its first sale) counts as zero demand, as the daily table zero-fills within a segment.
    """
    past = history[pd.to_datetime(history[s.DATE]).dt.date <= cutoff]
    segments = sorted(past[s.SEGMENT].unique())
    steps = np.arange(1, horizon + 1)
    lags = steps - season * np.ceil(steps / season).astype(int)  # -(season-1) .. 0, repeating
    grid = pd.DataFrame({s.SEGMENT: np.repeat(segments, horizon), "_h": np.tile(steps, len(segments)),
                         "_lag": np.tile(lags, len(segments))})
    grid[s.DATE] = [cutoff + timedelta(days=int(h)) for h in grid["_h"]]
    grid["_source"] = [cutoff + timedelta(days=int(lag)) for lag in grid["_lag"]]
    values = past[[s.SEGMENT, s.DATE, target]].assign(_source=pd.to_datetime(past[s.DATE]).dt.date)
    out = grid.merge(values.drop(columns=s.DATE), on=[s.SEGMENT, "_source"], how="left")
    out[s.FORECAST] = out[target].fillna(0.0).astype(float)
    return out[[s.SEGMENT, s.DATE, s.FORECAST]].reset_index(drop=True)


def score(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """Every metric except MASE, which needs the training series (see ``mase``)."""
    return {"mae": mae(actual, forecast), "rmse": rmse(actual, forecast), "mape": mape(actual, forecast),
            "smape": smape(actual, forecast), "r2": r2(actual, forecast)}


def finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    """The metrics for JSON: non-finite values (an undefined MASE, say) become None."""
    return {k: (float(v) if math.isfinite(v) else None) for k, v in metrics.items()}
