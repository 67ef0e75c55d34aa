"""Can a level chosen on the training data beat seasonal naive on every Online Retail series? The limits.

Same series, cut-offs, horizon and MASE as ``forecast_retail.py``. Every forecast here is a weekday
shape times a level. The shape is the model's seasonal base: the median of the same weekday over the
last 6 weeks (``recsys.forecast.nn.seasonal_base.SeasonalRepeat``). Only the level differs:

* ``median``: the shape's own level. This is the model's base with level exponent 0.
* ``exp_val<N>``: ``base * (last week / base week) ** e`` (``recsys.forecast.nn.seasonal_base.LevelAdjust``). ``e`` is picked
  per series from 0, 0.25 .. 1 on the windows whose 14 target days lie in the last ``N`` training days.
  N=42 is what ``level_exponents`` does in the model (``val_days``).
* ``ses``: simple exponential smoothing of the weekly totals. Alpha is fitted on all training weeks
  by one-week-ahead MAE.
* ``holt``: the same with a damped trend (Holt). Alpha, beta and phi are fitted the same way.
* ``hindsight_exp`` (LEAKS): the exponent that scores best on the hold-out days themselves.
* ``oracle_level`` (LEAKS): the true level of the hold-out days.

``seasonal_naive`` repeats the last 7 days. The leaking rows show what only knowledge of the
hold-out reaches. The last table is the bias on the two order series: how far each forecast's
14-day total falls short of the actual total.

``--model`` also trains the default SegmentForecaster per seed (as ``forecast_retail.py`` does, about
90 s per seed on 2 cores). It prints the model blended with seasonal naive,
``(1 - w) * model + w * naive``, for several fixed ``w``.

    PYTHONPATH=. .venv/bin/python benchmarks/forecast_ceiling.py            # about 30 s
    PYTHONPATH=. .venv/bin/python benchmarks/forecast_ceiling.py --model --seeds 3
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # forecast_retail, run from anywhere

import forecast_retail as fr  # noqa: E402

H, SEASON, WEEKS = 14, 7, 6  # horizon, season and base weeks of the model's defaults
EXPONENTS = (0.0, 0.25, 0.5, 0.75, 1.0)
VAL_DAYS = (42, 84, 140, 200)
ALPHAS = np.round(np.arange(0.05, 1.0001, 0.05), 2)
HOLT_GRID = list(itertools.product(ALPHAS, (0.0, 0.05, 0.1, 0.2), (0.8, 0.9, 0.98)))
FOCUS = ("United Kingdom/orders", "all/orders")  # the series where the model loses to seasonal naive
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5)


def _tile(week: np.ndarray) -> np.ndarray:
    return np.tile(week, -(-H // SEASON))[:H]


def _histories(y: np.ndarray, origins) -> np.ndarray:
    """(n, 6 weeks, 1): the days up to each origin (last training index) as the layers' channel 0."""
    days = WEEKS * SEASON
    return np.stack([y[o - days + 1: o + 1] for o in origins]).astype("float32")[:, :, None]


def median_base(history: np.ndarray) -> np.ndarray:
    """The model's base, ``recsys.forecast.nn.seasonal_base.SeasonalRepeat``: per weekday, the median of 6 weeks."""
    from recsys.forecast.nn.seasonal_base import SeasonalRepeat

    return np.asarray(SeasonalRepeat(SEASON, H, WEEKS, "median")(history), dtype=np.float64)


def level_adjusted(history: np.ndarray, exponent: float) -> np.ndarray:
    """``recsys.forecast.nn.seasonal_base.LevelAdjust``: the base moved towards last week's level by ``exponent``."""
    from recsys.forecast.nn.seasonal_base import LevelAdjust

    exponents = np.full((len(history), 1), exponent, "float32")
    return np.asarray(LevelAdjust(SEASON)([median_base(history), history, exponents]), dtype=np.float64)


def _shaped(y: np.ndarray, t: int, week_levels: tuple[float, float]) -> np.ndarray:
    base = median_base(_histories(y, [t]))[0]
    total = base[:SEASON].sum()
    if total <= 0:
        return base
    return np.concatenate([base[:SEASON] / total * week_levels[0], base[:SEASON] / total * week_levels[1]])[:H]


def _weekly(y: np.ndarray, t: int) -> np.ndarray:
    n = (t + 1) // SEASON
    return y[t + 1 - n * SEASON: t + 1].reshape(n, SEASON).sum(axis=1)


def _holt(weeks: np.ndarray, alpha: float, beta: float, phi: float) -> tuple[float, float, float]:
    """One-week-ahead MAE from week 8 on, then the final level and trend (damped Holt, additive)."""
    level, trend, errors = float(np.median(weeks[:WEEKS])), 0.0, []
    for i in range(WEEKS, len(weeks)):
        error = weeks[i] - (level + phi * trend)
        if i >= 8:
            errors.append(abs(error))
        level, trend = level + phi * trend + alpha * error, phi * trend + alpha * beta * error
    return float(np.mean(errors)), level, trend


def ses_forecast(y: np.ndarray, t: int) -> np.ndarray:
    weeks = _weekly(y, t)
    fits = [_holt(weeks, a, 0.0, 1.0) for a in ALPHAS]
    _, level, _ = min(fits, key=lambda f: f[0])
    return _shaped(y, t, (level, level))


def holt_forecast(y: np.ndarray, t: int) -> np.ndarray:
    weeks = _weekly(y, t)
    (_, _, phi), (_, level, trend) = min(((p, _holt(weeks, *p)) for p in HOLT_GRID), key=lambda x: x[1][0])
    return _shaped(y, t, (level + phi * trend, level + (phi + phi ** 2) * trend))


def exponent_on_windows(y: np.ndarray, t: int, days: int) -> float:
    """``recsys.forecast.nn.seasonal_base.select_level_exponents`` on the windows whose targets lie in the last ``days`` days."""
    from recsys.forecast.nn.seasonal_base import select_level_exponents

    origins = range(t - days, t - H + 1)
    history = _histories(y, origins)
    targets = np.stack([y[o + 1: o + 1 + H] for o in origins]).astype("float32")
    chosen = select_level_exponents(median_base(history).astype("float32"), history, targets,
                                    np.zeros(len(origins), np.int64), 1, EXPONENTS, SEASON)
    return float(chosen[0])


def _mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray) -> float:
    from recsys.forecast.metrics import mase

    return mase(actual, forecast, train, SEASON)


def level_table(daily: pd.DataFrame, cutoffs: list[datetime.date]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MASE per series (mean over cut-offs) of every method, and the 14-day bias on FOCUS."""
    from pipeline import schemas as s

    rows, bias = {}, []
    for seg, group in daily.groupby(s.SEGMENT, sort=True):
        group = group.sort_values(s.DATE)
        y, dates = group[fr.TARGET].to_numpy(float), list(group[s.DATE])
        per_cutoff = []
        for cutoff in cutoffs:
            t = dates.index(cutoff)
            train, actual = y[: t + 1], y[t + 1: t + 1 + H]
            history = _histories(y, [t])
            forecasts = {"seasonal_naive": _tile(y[t - SEASON + 1: t + 1]), "median": median_base(history)[0]}
            for days in VAL_DAYS:
                forecasts[f"exp_val{days}"] = level_adjusted(history, exponent_on_windows(y, t, days))[0]
            forecasts["ses"], forecasts["holt"] = ses_forecast(y, t), holt_forecast(y, t)
            forecasts["hindsight_exp"] = min((level_adjusted(history, e)[0] for e in EXPONENTS),
                                             key=lambda f: np.abs(actual - f).mean())
            forecasts["oracle_level"] = _shaped(y, t, (actual.sum() / 2, actual.sum() / 2))
            per_cutoff.append({k: _mase(actual, f, train) for k, f in forecasts.items()})
            if seg in FOCUS:
                bias.append({"series": seg, "cutoff": cutoff, "actual": actual.sum()}
                            | {k: f.sum() / actual.sum() - 1 for k, f in forecasts.items()
                               if k in ("seasonal_naive", "median", "exp_val42", "ses", "holt")})
        rows[seg] = pd.DataFrame(per_cutoff).mean()
    return pd.DataFrame(rows).T, pd.DataFrame(bias)


def blend_table(daily: pd.DataFrame, cutoffs: list[datetime.date], seeds: int) -> pd.DataFrame:
    """MASE per series (mean over seeds and cut-offs) of (1 - w) * model + w * seasonal naive."""
    from pipeline import schemas as s
    from recsys.forecast.backtest import ACTUAL, CUTOFF, backtest_forecasts, score_backtest

    naive, _ = backtest_forecasts(daily, fr._config([], 0), cutoffs, methods=("seasonal_naive",))
    names = [f"w={w}" for w in BLEND_WEIGHTS]
    per_seed = []
    for seed in range(seeds):
        model, _ = backtest_forecasts(daily, fr._config([], seed), cutoffs, methods=("model",))
        joined = model.merge(naive, on=[s.SEGMENT, CUTOFF, s.DATE, ACTUAL])
        joined = joined.assign(**{name: (1 - w) * joined["model"] + w * joined["seasonal_naive"]
                                  for name, w in zip(names, BLEND_WEIGHTS)})
        scores = score_backtest(joined, daily, fr.TARGET, SEASON, names)["per_segment"]
        per_seed.append(pd.DataFrame({name: {seg: m[name]["mase"] for seg, m in scores.items()} for name in names}))
        print(f"seed {seed}: model mean MASE {per_seed[-1][names[0]].mean():.3f}", flush=True)
    return sum(per_seed) / len(per_seed)


def _print(table: pd.DataFrame, title: str) -> None:
    table = table.copy()
    table.loc["mean MASE"] = table.mean()
    if "seasonal_naive" in table:
        table.loc["series beating naive"] = (table.drop(index="mean MASE")
                                            .lt(table.drop(index="mean MASE")["seasonal_naive"], axis=0).sum())
    print(f"\n{title}")
    print(table.round(3).to_string())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="store_true", help="also train the model and print its blends")
    parser.add_argument("--seeds", type=int, default=3, help="model seeds with --model (default 3)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pipeline import schemas as s

    daily = fr.retail_daily(next((p for p in fr.SOURCES if p.is_file()), fr.SOURCES[0]))
    daily[s.DATE] = pd.to_datetime(daily[s.DATE]).dt.date
    cutoffs = [datetime.date.fromisoformat(c) for c in fr.CUTOFFS]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    levels, bias = level_table(daily, cutoffs)
    _print(levels, "MASE per series, mean over the 6 cut-offs (hindsight_exp and oracle_level leak the hold-out)")
    print("\n14-day forecast total against the actual total (negative: under-forecast)")
    print(bias.round(3).to_string(index=False))
    if args.model:
        blends = blend_table(daily, cutoffs, args.seeds)
        blends["seasonal_naive"] = levels["seasonal_naive"]
        _print(blends, f"(1 - w) * model + w * seasonal naive, MASE per series (mean over {args.seeds} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
