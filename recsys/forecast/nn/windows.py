"""Turn the daily table into supervised windows for the forecaster, without leaking the future.

A window is ``lookback`` days of one segment's (scaled) target plus calendar covariates, followed
by ``horizon`` days whose target the model learns to forecast; the calendar of those future days is
known in advance and is an input too. The table is pivoted to a dense segments x days matrix once
and every window is a strided view of it (``sliding_window_view``): no Python loop over rows or
days. Per-segment scales come only from the days before a given date, so validation and hold-out
values never shape the inputs of training windows.

    python -c "from recsys.forecast.nn.windows import calendar_features; print(calendar_features(['2024-01-01']))"
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pipeline import schemas as s
from pipeline.config import ModelConfig
from recsys.forecast.metrics import naive_scale

log = logging.getLogger(__name__)

CALENDAR_FEATURES = ("month_sin", "month_cos", "weekday_sin", "weekday_cos")
HISTORY_FEATURES = ("target_scaled", *CALENDAR_FEATURES)  # channels of the `history` input


@dataclass(frozen=True)
class Windows:
    """Model inputs and targets for ``n`` windows (arrays are float32 / int32)."""

    history: np.ndarray  # (n, lookback, len(HISTORY_FEATURES)): scaled target + calendar
    future: np.ndarray  # (n, horizon, len(CALENDAR_FEATURES)): calendar of the forecast days
    segment: np.ndarray  # (n,): index into the segment vocabulary
    y: np.ndarray  # (n, horizon): scaled target of the forecast days
    first_target: np.ndarray  # (n,) datetime64[D]: first forecast day of each window

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Windows:
        return Windows(self.history[mask], self.future[mask], self.segment[mask], self.y[mask],
                       self.first_target[mask])

    def inputs(self) -> dict[str, np.ndarray]:
        """The named inputs of the Keras model."""
        return {"history": self.history, "future": self.future, "segment": self.segment}


def calendar_features(dates) -> np.ndarray:
    """(n, 4) float32: month and weekday on the unit circle, so December sits next to January.

    Month m (1..12) maps to angle 2*pi*(m-1)/12, weekday w (0=Mon..6=Sun) to 2*pi*w/7.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    month = 2 * np.pi * (idx.month.to_numpy() - 1) / 12.0
    weekday = 2 * np.pi * idx.day_of_week.to_numpy() / 7.0
    features = [np.sin(month), np.cos(month), np.sin(weekday), np.cos(weekday)]
    return np.stack(features, axis=1).astype(np.float32)


def _days(column: pd.Series) -> pd.Series:
    """Dates as datetime64 days, whatever the frame holds (python dates, strings, timestamps)."""
    return pd.to_datetime(column).dt.normalize()


def fit_scales(daily: pd.DataFrame, target: str, before: datetime.date | None = None, method: str = "mean",
               season: int = 7) -> dict[str, float]:
    """Per-segment scale of ``target`` over the days strictly before ``before`` (all days if None).

    ``method`` "mean": the segment mean. Dividing by it (rather than log1p + standardising) keeps
    zero days at exactly 0, keeps the inverse linear (forecasts of a sum are the sum of forecasts)
    and puts a big and a small segment on the same footing for one global model. "naive": the
    in-sample MAE of the seasonal-naive forecast (lag ``season``), MASE's denominator, so that an
    absolute error on the scaled target is the segment's MASE. A segment with no history before
    ``before`` or a zero scale gets 1.0, so it is never divided by zero.
    """
    frame = daily[[s.SEGMENT, s.DATE, target]]
    if before is not None:
        frame = frame[_days(frame[s.DATE]) < pd.Timestamp(before)]
    groups = frame.sort_values(s.DATE, kind="mergesort").groupby(s.SEGMENT, sort=True)[target]
    means = groups.mean() if method == "mean" else groups.agg(lambda v: naive_scale(v.to_numpy(float), season))
    scales = {str(seg): float(m) if np.isfinite(m) and m > 0 else 1.0 for seg, m in means.items()}
    for seg in sorted(set(daily[s.SEGMENT].astype(str)) - set(scales)):
        log.warning("segment %s has no %s before %s; using scale 1.0", seg, target, before)
        scales[seg] = 1.0
    return scales


def _panel(daily: pd.DataFrame, target: str, segments: list[str],
           dates: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Dense (segments, dates) values and an 'active' mask (the row exists) from the long table."""
    frame = daily[[s.SEGMENT, s.DATE, target]].assign(**{s.DATE: _days(daily[s.DATE])})
    frame = frame[frame[s.SEGMENT].isin(segments) & frame[s.DATE].isin(dates)]
    wide = frame.pivot(index=s.SEGMENT, columns=s.DATE, values=target).reindex(index=segments, columns=dates)
    values = wide.to_numpy(dtype=np.float64)
    return np.nan_to_num(values, nan=0.0), ~np.isnan(values)


def _scale_vector(scales: dict[str, float], segments: list[str]) -> np.ndarray:
    return np.array([scales.get(seg, 1.0) for seg in segments], dtype=np.float64)


def make_windows(daily: pd.DataFrame, target: str, lookback: int, horizon: int,
                 segments: list[str], scales: dict[str, float]) -> Windows:
    """Every window whose ``lookback + horizon`` days all lie inside the segment's active range.

    A series of T active days yields T - lookback - horizon + 1 windows (none if shorter). Segments
    not in ``segments`` are ignored. Inputs and targets are divided by the segment's scale.
    """
    span = lookback + horizon
    dates = pd.date_range(_days(daily[s.DATE]).min(), _days(daily[s.DATE]).max(), freq="D")
    values, active = _panel(daily, target, segments, dates)
    scaled = (values / _scale_vector(scales, segments)[:, None]).astype(np.float32)
    if len(dates) < span:
        return _empty(lookback, horizon)
    full = sliding_window_view(active, span, axis=1).all(axis=2)  # (S, D - span + 1)
    seg_idx, start = np.nonzero(full)
    windows = sliding_window_view(scaled, span, axis=1)[seg_idx, start]  # (n, span)
    cal = calendar_features(dates)
    cal_windows = np.moveaxis(sliding_window_view(cal, span, axis=0), 2, 1)[start]  # (n, span, 4)
    history = np.concatenate([windows[:, :lookback, None], cal_windows[:, :lookback]], axis=2)
    first = dates.to_numpy().astype("datetime64[D]")[start + lookback]
    return Windows(history.astype(np.float32), np.ascontiguousarray(cal_windows[:, lookback:]),
                   seg_idx.astype(np.int32), np.ascontiguousarray(windows[:, lookback:]), first)


def _empty(lookback: int, horizon: int) -> Windows:
    return Windows(np.zeros((0, lookback, len(HISTORY_FEATURES)), np.float32),
                   np.zeros((0, horizon, len(CALENDAR_FEATURES)), np.float32),
                   np.zeros((0,), np.int32), np.zeros((0, horizon), np.float32),
                   np.zeros((0,), "datetime64[D]"))


@dataclass(frozen=True)
class Split:
    """Chronological training / validation windows and the scales they were built with."""

    train: Windows
    val: Windows
    scales: dict[str, float]
    val_start: datetime.date  # first of the last ``val_days`` dates; scales use only earlier days


def split_windows(daily: pd.DataFrame, config: ModelConfig, segments: list[str]) -> Split:
    """Scales from the days before the validation start, then windows split by their target days.

    Validation windows have every target day in the last ``val_days`` dates; training windows have
    every target day before them (windows straddling the boundary are dropped), so no validation
    value reaches the scales, the training inputs or the training targets. Nothing is shuffled here.
    """
    last = _days(daily[s.DATE]).max()
    val_start = (last - pd.Timedelta(days=config.val_days - 1)).date()
    scales = fit_scales(daily, config.target, before=val_start, method=config.scaling,
                        season=config.season_skip or 7)
    windows = make_windows(daily, config.target, config.lookback, config.horizon, segments, scales)
    boundary = np.datetime64(val_start, "D")
    is_val = windows.first_target >= boundary
    is_train = windows.first_target + np.timedelta64(config.horizon - 1, "D") < boundary
    return Split(windows.subset(is_train), windows.subset(is_val), scales, val_start)


def latest_inputs(daily: pd.DataFrame, target: str, lookback: int, horizon: int, segments: list[str],
                  scales: dict[str, float], cutoff: datetime.date) -> dict[str, np.ndarray]:
    """One input window per segment: the ``lookback`` days ending at ``cutoff``, zero-padded.

    Days before a segment's first row (or a segment absent from ``daily``) count as 0; the
    calendar of the ``horizon`` days after ``cutoff`` is the ``future`` input.
    """
    end = pd.Timestamp(cutoff)
    past = pd.date_range(end - pd.Timedelta(days=lookback - 1), end, freq="D")
    future = pd.date_range(end + pd.Timedelta(days=1), periods=horizon, freq="D")
    values, _ = _panel(daily, target, segments, past)
    scaled = (values / _scale_vector(scales, segments)[:, None]).astype(np.float32)
    cal = np.broadcast_to(calendar_features(past), (len(segments), lookback, len(CALENDAR_FEATURES)))
    history = np.concatenate([scaled[:, :, None], cal], axis=2).astype(np.float32)
    fut = np.broadcast_to(calendar_features(future), (len(segments), horizon, len(CALENDAR_FEATURES)))
    return {"history": history, "future": np.ascontiguousarray(fut),
            "segment": np.arange(len(segments), dtype=np.int32)}
