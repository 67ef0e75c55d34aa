"""A segment's trend: its forecast for the next days compared with what it sold in the last ones.

The trend of a segment compares the forecast for the next ``horizon`` days with what was sold in
the last ``horizon`` days: (forecast - recent) / (forecast + recent + eps). The score is bounded in
[-1, 1] whatever the segment's volume (a big and a small segment are comparable), symmetric (twice
as much reads +1/3, half as much -1/3), and 0 for a segment with no sales and no forecast instead of
a division by zero. The registry stores these scores with each version (trend.parquet) and the
re-ranking stage (recsys.rank) blends them into candidate lists.

    python -c "from recsys.forecast.trends import trend_score; print(trend_score([20.0], [10.0]))"
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline import schemas as s

if TYPE_CHECKING:  # typing only: the trend formula and quantile_band load without TensorFlow
    from recsys.forecast.combination import CombinedForecaster

log = logging.getLogger(__name__)

EPS = 1e-9  # keeps the trend defined (0) for a segment with no sales and no forecast


def trend_score(forecast_sum: np.ndarray, recent_sum: np.ndarray) -> np.ndarray:
    """(f - r) / (f + r + eps) with both sums floored at 0, so the result stays in [-1, 1]."""
    f = np.clip(np.asarray(forecast_sum, float), 0.0, None)
    r = np.clip(np.asarray(recent_sum, float), 0.0, None)
    return (f - r) / (f + r + EPS)


def compute_trend_scores(forecaster: CombinedForecaster, daily: pd.DataFrame,
                         cutoff: datetime.date | None = None) -> pd.DataFrame:
    """Per segment: trend, forecast_sum (next H days after the cutoff), recent_sum (last H days to it).

    ``cutoff`` defaults to the last date in ``daily``; rows after it are ignored, so an offline
    evaluation can ask for the trend as it was known at a past date. A quantile model's forecast
    is its median, and the trend carries the uncertainty: trend_low / trend_high are the same score
    with the sums of the lowest and highest quantile forecasts (trend_low <= trend <= trend_high,
    as the score grows with the forecast). A point model has no such columns; consumers must not
    need them.
    """
    target, horizon = forecaster.config.target, forecaster.config.horizon
    dates = pd.to_datetime(daily[s.DATE]).dt.date
    last = dates.max() if cutoff is None else cutoff
    daily, dates = daily.loc[dates <= last], dates[dates <= last]
    forecast = forecaster.predict(daily, last)
    band = quantile_band(forecast.columns)
    sums = forecast.groupby(s.SEGMENT, sort=True)[[s.FORECAST, *(band or ())]].sum()
    fsum = sums[s.FORECAST]
    recent = daily.loc[dates > last - pd.Timedelta(days=horizon)]
    rsum = recent.groupby(s.SEGMENT, sort=True)[target].sum().reindex(fsum.index, fill_value=0.0)
    out = pd.DataFrame({s.SEGMENT: fsum.index.astype(str), s.FORECAST_SUM: fsum.to_numpy(float),
                        s.RECENT_SUM: rsum.to_numpy(float)})
    out.insert(1, s.TREND, trend_score(out[s.FORECAST_SUM], out[s.RECENT_SUM]))
    if band:
        out.insert(2, s.TREND_LOW, trend_score(sums[band[0]].to_numpy(float), out[s.RECENT_SUM]))
        out.insert(3, s.TREND_HIGH, trend_score(sums[band[1]].to_numpy(float), out[s.RECENT_SUM]))
    log.info("trend scores for %d segments after %s (horizon %d)", len(out), last, horizon)
    return out


def quantile_band(columns) -> tuple[str, str] | None:
    """(lowest, highest) quantile column ("p10", "p90"...) of a forecast frame; None for a point model."""
    found = sorted((int(c[1:]), c) for c in map(str, columns) if c[:1] == "p" and c[1:].isdigit())
    return (found[0][1], found[-1][1]) if len(found) >= 2 else None
