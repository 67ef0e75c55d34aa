"""Online Retail forecast benchmark: the SegmentForecaster vs SeasonalNaive(7) and AutoETS, by MASE.

Twelve daily series: revenue and order count (distinct invoices) for all countries together and
for each of the top 5 countries by revenue; cancellations (InvoiceNo "C...") and non-positive
quantities dropped; zero-filled from 2010-12-01 to 2011-11-30. Six rolling cut-offs two weeks
apart, 14-day horizon, through recsys.forecast.backtest. The model is trained from scratch per cut-off and
per seed; the table shows its MASE as mean ± std over seeds next to the baselines (computed once).
Reference (issue 5): mean MASE SeasonalNaive 1.490, Naive 2.133, AutoETS 1.186, AutoARIMA 1.271.

    PYTHONPATH=. python benchmarks/forecast_retail.py --seeds 3
    PYTHONPATH=. python benchmarks/forecast_retail.py --seeds 1 --set lookback=56 --set loss=mae
    PYTHONPATH=. python benchmarks/forecast_retail.py --set level_exponents=0,0.25,0.5,0.75,1  # a list option
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (ROOT / "data/demo/online_retail.parquet",
           ROOT.parent / "shared/data/online_retail/online_retail.parquet")
COUNTRIES = ("United Kingdom", "EIRE", "Netherlands", "Germany", "France")
FIRST, LAST = "2010-12-01", "2011-11-30"
CUTOFFS = ("2011-09-07", "2011-09-21", "2011-10-05", "2011-10-19", "2011-11-02", "2011-11-16")
TARGET = "value"  # the one measure column of the benchmark's daily table
SEEDS = (0, 1, 2)


def retail_daily(path: Path) -> pd.DataFrame:
    """Long table [segment, date, value]: segments "<country or all>/<revenue|orders>", zero-filled."""
    raw = pd.read_parquet(path, columns=["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "Country"])
    raw = raw[~raw["InvoiceNo"].astype(str).str.startswith("C") & (raw["Quantity"] > 0)]
    raw = raw.assign(day=raw["InvoiceDate"].dt.normalize(), rev=raw["Quantity"] * raw["UnitPrice"])
    days = pd.date_range(FIRST, LAST, freq="D")
    frames = []
    for name, part in [("all", raw), *((c, raw[raw["Country"] == c]) for c in COUNTRIES)]:
        by_day = part.groupby("day")
        for measure, values in (("revenue", by_day["rev"].sum()), ("orders", by_day["InvoiceNo"].nunique())):
            values = values.reindex(days, fill_value=0).astype(float)
            frames.append(pd.DataFrame({s.SEGMENT: f"{name}/{measure}", s.DATE: days.date,
                                        TARGET: values.to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def _config(overrides: list[str], seed: int) -> ModelConfig:
    base = ModelConfig(target=TARGET, horizon=14)
    kwargs = {}
    for item in overrides:
        key, _, value = item.partition("=")
        kind = type(getattr(base, key))
        if kind is tuple:  # a comma-separated list of numbers, e.g. quantiles=0.1,0.5,0.9; empty for ()
            kwargs[key] = tuple(float(v) for v in value.split(",") if v)
        else:
            kwargs[key] = kind(value) if kind is not bool else value.lower() in ("1", "true", "yes")
    return dataclasses.replace(base, **kwargs, seed=seed)


def _table(baselines: dict, runs: list[dict], segments: list[str]) -> list[str]:
    lines = [f"{'series':<24} {'model (mean ± std)':>20} {'SeasonalNaive7':>15} {'AutoETS':>9}  beats SN"]
    for seg in segments:
        m = np.array([r["per_segment"][seg]["model"]["mase"] for r in runs])
        sn = baselines["per_segment"][seg]["seasonal_naive"]["mase"]
        ets = baselines["per_segment"][seg]["auto_ets"]["mase"]
        lines.append(f"{seg:<24} {m.mean():>12.3f} ± {m.std():.3f} {sn:>15.3f} {ets:>9.3f}  "
                     f"{'yes' if m.mean() < sn else 'NO'}")
    overall = np.array([r["overall"]["model"]["mase"] for r in runs])
    sn, ets = (baselines["overall"][k]["mase"] for k in ("seasonal_naive", "auto_ets"))
    lines.append(f"{'mean MASE':<24} {overall.mean():>12.3f} ± {overall.std():.3f} {sn:>15.3f} {ets:>9.3f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Build the series, backtest the baselines once and the model per seed, print the table."""
    from recsys.forecast.backtest import backtest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="model seeds 0..N-1 (default 3)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="ModelConfig override, e.g. lookback=56")
    parser.add_argument("-v", "--verbose", action="store_true", help="log per cut-off progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    daily = retail_daily(next((p for p in SOURCES if p.is_file()), SOURCES[0]))
    cutoffs = [datetime.date.fromisoformat(c) for c in CUTOFFS]
    config = _config(args.set, 0)
    print(f"config: {config}")
    baselines = backtest(daily, config, cutoffs, methods=("seasonal_naive", "auto_ets"))
    runs, seconds = [], []
    for seed in range(args.seeds):
        started = time.monotonic()
        runs.append(backtest(daily, _config(args.set, seed), cutoffs, methods=("model",)))
        seconds.append(time.monotonic() - started)
        print(f"seed {seed}: mean MASE {runs[-1]['overall']['model']['mase']:.3f} ({seconds[-1]:.0f} s)",
              flush=True)
    print("\n".join(_table(baselines, runs, sorted(daily[s.SEGMENT].unique()))))
    print(f"model training + forecasting: {np.mean(seconds):.0f} s per seed for {len(cutoffs)} cut-offs "
          f"({np.mean(seconds) / len(cutoffs):.1f} s per fit); "
          f"AutoETS {baselines['seconds']['auto_ets']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
