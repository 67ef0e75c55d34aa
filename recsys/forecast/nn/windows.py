"""Turn the daily table into supervised windows for the forecaster, without leaking the future.

A window is ``lookback`` days of one segment's (scaled) target plus calendar covariates, followed
by ``horizon`` days whose target the model learns to forecast; the calendar of those future days is
known in advance and is an input too. The table is pivoted to a dense segments x days matrix once
and every window is a strided view of it (``sliding_window_view``): no Python loop over rows or
days. Per-segment scales come only from the days before a given date, so validation and hold-out
values never shape the inputs of training windows.

Year-ago inputs (``YEAR_AGO_FEATURES``): for each lookback and forecast day d, the segment's scaled
value at d - 364 days (the same weekday a year back) and a 0/1 flag that the series holds that day
(0 and 0 where it does not: a young segment, a shop under a year). For a horizon up to 364 days that
day lies before the window's first target day, and it is scaled with the same per-segment scale as
the target. A model reads them only when its training part holds a year back for most windows
(``ModelConfig.year_ago_min_share``); the set a model was built with is saved with it.

    python -c "from recsys.forecast.nn.windows import calendar_features; print(calendar_features(['2024-01-01']))"
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from pipeline import schemas as s
from pipeline.config import ModelConfig
from recsys.forecast.members import YEAR
from recsys.forecast.metrics import naive_scale

log = logging.getLogger(__name__)

CALENDAR_FEATURES = ("month_sin", "month_cos", "weekday_sin", "weekday_cos")
HISTORY_FEATURES = ("target_scaled", *CALENDAR_FEATURES)  # channels of the `history` input
YEAR_AGO_FEATURES = ("year_ago_scaled", "year_ago_available")  # appended to `history` and `future`


def feature_names(year_ago: bool) -> dict[str, tuple[str, ...]]:
    """The channels of the ``history`` and ``future`` inputs, with or without the year-ago pair."""
    extra = YEAR_AGO_FEATURES if year_ago else ()
    return {"history": (*HISTORY_FEATURES, *extra), "future": (*CALENDAR_FEATURES, *extra)}


@dataclass(frozen=True)
class Windows:
    """Model inputs and targets for ``n`` windows (arrays are float32 / int32)."""

    history: np.ndarray  # (n, lookback, len(feature_names()["history"])): scaled target + calendar [+ year ago]
    future: np.ndarray  # (n, horizon, len(feature_names()["future"])): calendar of the forecast days [+ year ago]
    segment: np.ndarray  # (n,): index into the segment vocabulary
    y: np.ndarray  # (n, horizon): scaled target of the forecast days
    first_target: np.ndarray  # (n,) datetime64[D]: first forecast day of each window

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Windows:
        return Windows(self.history[mask], self.future[mask], self.segment[mask], self.y[mask],
                       self.first_target[mask])

    def year_back_share(self) -> float:
        """Share of windows whose every day has a year back (0 without the year-ago channels or windows)."""
        if len(self) == 0 or self.history.shape[2] == len(HISTORY_FEATURES):
            return 0.0
        full = self.history[:, :, -1].all(axis=1) & self.future[:, :, -1].all(axis=1)
        return float(full.mean())

    def without_year_ago(self) -> Windows:
        """The same windows without the year-ago channels (the inputs of a model built without them)."""
        return dataclasses.replace(
            self, history=np.ascontiguousarray(self.history[:, :, :len(HISTORY_FEATURES)]),
            future=np.ascontiguousarray(self.future[:, :, :len(CALENDAR_FEATURES)]))

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
                 segments: list[str], scales: dict[str, float], year_ago: bool = False) -> Windows:
    """Every window whose ``lookback + horizon`` days all lie inside the segment's active range.

    A series of T active days yields T - lookback - horizon + 1 windows (none if shorter). Segments
    not in ``segments`` are ignored. Inputs and targets are divided by the segment's scale. With
    ``year_ago`` every day also gets its scaled value and flag a year back (``YEAR_AGO_FEATURES``).
    """
    span = lookback + horizon
    _check_horizon(horizon, year_ago)
    dates = pd.date_range(_days(daily[s.DATE]).min(), _days(daily[s.DATE]).max(), freq="D")
    values, active = _panel(daily, target, segments, dates)
    scaled = (values / _scale_vector(scales, segments)[:, None]).astype(np.float32)
    if len(dates) < span:
        return _empty(lookback, horizon, year_ago)
    full = sliding_window_view(active, span, axis=1).all(axis=2)  # (S, D - span + 1)
    seg_idx, start = np.nonzero(full)
    windows = sliding_window_view(scaled, span, axis=1)[seg_idx, start]  # (n, span)
    cal = calendar_features(dates)
    cal_windows = np.moveaxis(sliding_window_view(cal, span, axis=0), 2, 1)[start]  # (n, span, 4)
    channels = [windows[:, :, None], cal_windows]
    if year_ago:
        back = np.stack(_year_back(scaled, active), axis=2)  # (S, D, 2)
        channels.append(np.moveaxis(sliding_window_view(back, span, axis=1), 3, 2)[seg_idx, start])
    every = np.concatenate(channels, axis=2).astype(np.float32)  # (n, span, 1 + 4 [+ 2])
    first = dates.to_numpy().astype("datetime64[D]")[start + lookback]
    return Windows(np.ascontiguousarray(every[:, :lookback]), np.ascontiguousarray(every[:, lookback:, 1:]),
                   seg_idx.astype(np.int32), np.ascontiguousarray(windows[:, lookback:]), first)


def _year_back(scaled: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segments, days) value ``YEAR`` days back and its 0/1 flag; 0 and 0 where that day is not held."""
    back, flag = np.zeros_like(scaled), np.zeros_like(scaled)
    back[:, YEAR:] = np.where(active[:, :-YEAR], scaled[:, :-YEAR], 0.0)
    flag[:, YEAR:] = active[:, :-YEAR]
    return back, flag


def _check_horizon(horizon: int, year_ago: bool) -> None:
    if year_ago and horizon > YEAR:
        raise ValueError(f"year-ago inputs need horizon <= {YEAR} days (a longer one would read the forecast "
                         f"days themselves), got horizon {horizon}")


def _empty(lookback: int, horizon: int, year_ago: bool = False) -> Windows:
    names = feature_names(year_ago)
    return Windows(np.zeros((0, lookback, len(names["history"])), np.float32),
                   np.zeros((0, horizon, len(names["future"])), np.float32),
                   np.zeros((0,), np.int32), np.zeros((0, horizon), np.float32),
                   np.zeros((0,), "datetime64[D]"))


@dataclass(frozen=True)
class Split:
    """Chronological training / validation windows and the scales they were built with."""

    train: Windows
    val: Windows
    scales: dict[str, float]
    val_start: datetime.date  # first of the last ``val_days`` dates; scales use only earlier days
    year_ago: bool = False  # the windows carry the year-ago channels (YEAR_AGO_FEATURES)


def split_windows(daily: pd.DataFrame, config: ModelConfig, segments: list[str]) -> Split:
    """Scales from the days before the validation start, then windows split by their target days.

    Validation windows have every target day in the last ``val_days`` dates; training windows have
    every target day before them (windows straddling the boundary are dropped), so no validation
    value reaches the scales, the training inputs or the training targets. Nothing is shuffled here.
    The year-ago channels are kept when at least ``config.year_ago_min_share`` of the training
    windows have a year back on every day: a model that rarely sees the flag set in training would
    meet it at forecast time untrained.
    """
    last = _days(daily[s.DATE]).max()
    val_start = (last - pd.Timedelta(days=config.val_days - 1)).date()
    scales = fit_scales(daily, config.target, before=val_start, method=config.scaling,
                        season=config.season_skip or 7)
    year_ago = config.horizon <= YEAR and config.year_ago_min_share <= 1
    windows = make_windows(daily, config.target, config.lookback, config.horizon, segments, scales, year_ago)
    boundary = np.datetime64(val_start, "D")
    is_val = windows.first_target >= boundary
    is_train = windows.first_target + np.timedelta64(config.horizon - 1, "D") < boundary
    train, val = windows.subset(is_train), windows.subset(is_val)
    share = train.year_back_share()
    if not year_ago or len(train) == 0 or share < config.year_ago_min_share:
        return Split(train.without_year_ago(), val.without_year_ago(), scales, val_start)
    log.info("year-ago inputs: %.0f %% of the training windows have a year back", 100 * share)
    return Split(train, val, scales, val_start, year_ago=True)


def latest_inputs(daily: pd.DataFrame, target: str, lookback: int, horizon: int, segments: list[str],
                  scales: dict[str, float], cutoff: datetime.date, year_ago: bool = False) -> dict[str, np.ndarray]:
    """One input window per segment: the ``lookback`` days ending at ``cutoff``, zero-padded.

    Days before a segment's first row (or a segment absent from ``daily``) count as 0; the
    calendar of the ``horizon`` days after ``cutoff`` is the ``future`` input. With ``year_ago``
    both also get each day's scaled value and flag ``YEAR`` days back (all on or before ``cutoff``).
    """
    _check_horizon(horizon, year_ago)
    end = pd.Timestamp(cutoff)
    past = pd.date_range(end - pd.Timedelta(days=lookback - 1), end, freq="D")
    future = pd.date_range(end + pd.Timedelta(days=1), periods=horizon, freq="D")
    values, _ = _panel(daily, target, segments, past)
    scaled = (values / _scale_vector(scales, segments)[:, None]).astype(np.float32)
    cal = np.broadcast_to(calendar_features(past), (len(segments), lookback, len(CALENDAR_FEATURES)))
    history = [scaled[:, :, None], cal]
    fut = [np.broadcast_to(calendar_features(future), (len(segments), horizon, len(CALENDAR_FEATURES)))]
    if year_ago:
        back_days = past.append(future) - pd.Timedelta(days=YEAR)
        back, held = _panel(daily, target, segments, back_days)
        back = np.where(held, back / _scale_vector(scales, segments)[:, None], 0.0)
        both = np.stack([back, held], axis=2).astype(np.float32)  # (S, lookback + horizon, 2)
        history.append(both[:, :lookback])
        fut.append(both[:, lookback:])
    return {"history": np.concatenate(history, axis=2).astype(np.float32),
            "future": np.ascontiguousarray(np.concatenate(fut, axis=2).astype(np.float32)),
            "segment": np.arange(len(segments), dtype=np.int32)}
