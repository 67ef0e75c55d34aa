"""Customer value on Online Retail: every model's figures on the issue's split, training time, scoring at scale.

The split of issue 17: calibration up to 2011-09-09, hold-out 2011-09-10 … 2011-12-09 (91 days, so
H = 91 here), customers = everyone seen before 2011-09-10 (those who do not come back count with 0).
For each seed the split runs as `trendrec value` runs it (recsys.value.backtest.run_split:
blend weights chosen on 2011-06-11 … 09-09 with members fitted before it, members refitted up to
09-09); BG/NBD + Gamma-Gamma and the ridge are deterministic, the LSTM and so the ensemble vary with
the seed (mean ± std over ``--seeds``). Settings: the [value] section of trendrec.toml.

``--synthetic-customers N`` then scores N synthetic customers (about 6 purchase days each over a
year) with the members fitted at the calibration end, ``--batch`` customers at a time into a
streamed parquet file, as `trendrec value` writes its forecast, and prints the peak RSS
(resource.getrusage): memory follows the batch, not N.

``--published demo,synthetic`` instead runs `trendrec value`'s computation (recsys.value.stage.compute_value,
what the value part's train writes) on each shop and prints which model is published and, for it and for
BG/NBD + GG, the four figures of the rule on the validation window (the last H days of the log, members
fitted before it), then the honest hold-out check: the model chosen on the H days before that window,
scored on it. Shops: ``demo`` (data/demo/online_retail.parquet, trendrec.toml's [value], H = 90) and
``synthetic`` (a seeded BG/NBD-like shop: 4,000 customers over two years, a Christmas peak, returns and
guests; the bakery log of ../shared/data has no customer id or price, so it cannot be used).

The machine is shared (2 cores): times are what this run measured, not a promise.

    PYTHONPATH=. .venv/bin/python benchmarks/customer_value.py --seeds 42,43,44 --synthetic-customers 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/customer_value.py --published demo,synthetic
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import schemas as s
from pipeline.config import load_config
from recsys.value.backtest import run_split
from recsys.value.data import DAY, GROSS, NET, ORDERS, customer_days, open_value_events

DATA = Path("/work/shared/data/online_retail/online_retail.parquet")
DEMO = ROOT / "data" / "demo" / "online_retail.parquet"
RULE = ("spearman", "norm_gini", "top_decile_capture", "total_error")
CUTOFF = date(2011, 9, 10)  # first hold-out day
END = date(2011, 12, 10)  # the day after the last event
ORDER = ("bgnbd_gg", "rfm", "lstm", "ensemble")
FIGURES = ("spearman", "norm_gini", "top_decile_capture", "mae", "total_error")


def load_events(path: Path) -> pd.DataFrame:
    ev = pd.read_parquet(path, columns=["CustomerID", "InvoiceNo", "Quantity", "UnitPrice", "InvoiceDate"])
    frame = pd.DataFrame({s.USER_ID: ev["CustomerID"].astype("Int64").astype(str).where(ev["CustomerID"].notna()),
                          s.ORDER_ID: ev["InvoiceNo"], s.QUANTITY: ev["Quantity"].astype(float),
                          s.PRICE: ev["UnitPrice"], s.EVENT_DATE: ev["InvoiceDate"].dt.date})
    print(f"{path}: {len(frame):,} lines, {int(frame[s.USER_ID].isna().sum()):,} without a customer id (left out)")
    return frame


def load_days(path: Path) -> pd.DataFrame:
    return customer_days(open_value_events(load_events(path)), END)


def run_seeds(days: pd.DataFrame, seeds: list[int]):
    cfg = dataclasses.replace(load_config(ROOT / "trendrec.toml").value, horizon_days=(END - CUTOFF).days)
    rows, splits = {m: {f: [] for f in FIGURES} for m in ORDER}, []
    for seed in seeds:
        started = time.monotonic()
        split = run_split(days, CUTOFF, dataclasses.replace(cfg, seed=seed))
        took = time.monotonic() - started
        for model, figures in split.metrics().items():
            for name in FIGURES:
                rows[model][name].append(figures[name])
        fit = split.members.seconds
        print(f"seed {seed}: split {took:.0f} s (two fits of every member); at the calibration end: BG/NBD + GG "
              f"{fit['bgnbd_gg']:.1f} s, training windows + ridge {fit.get('training_windows', 0):.1f} s, "
              f"LSTM {fit.get('lstm', 0):.1f} s ({len(split.members.lstm.history['loss'])} epochs); "
              f"weights {split.weights}")
        splits.append(split)
    return rows, splits


def print_table(rows: dict, n_customers: int) -> None:
    print(f"\ncalibration to {CUTOFF - timedelta(days=1)}, hold-out {CUTOFF} … {END - timedelta(days=1)}, "
          f"{n_customers:,} customers")
    print(f"| model | {' | '.join(FIGURES)} |\n|---|{'---|' * len(FIGURES)}")
    for model in ORDER:
        cells = [f"{statistics.mean(v):.4f} ± {statistics.pstdev(v):.4f}" for v in (rows[model][f] for f in FIGURES)]
        print(f"| {model} | {' | '.join(cells)} |")
    base, ens = rows["bgnbd_gg"], rows["ensemble"]
    gains = {f: statistics.mean(ens[f]) / statistics.mean(base[f]) - 1 for f in FIGURES[:3]}
    print("ensemble vs BG/NBD + GG (relative): " + ", ".join(f"{f} {g:+.1%}" for f, g in gains.items())
          + f"; ensemble total error {statistics.mean(ens['total_error']):+.1%}")


def synthetic_batch(rng: np.random.Generator, start: int, n: int) -> pd.DataFrame:
    """Customer-days of ``n`` synthetic customers over the year before the calibration end."""
    per = rng.poisson(5.0, n) + 1
    user = np.repeat(np.arange(start, start + n), per)
    offset = rng.integers(1, 365, len(user))
    gross = rng.gamma(2.0, 150.0, len(user))
    day = np.datetime64(CUTOFF, "D") - offset.astype("timedelta64[D]")
    return pd.DataFrame({s.USER_ID: user.astype(str), DAY: day, ORDERS: 1, GROSS: gross, NET: gross})


def score_synthetic(split, n: int, batch: int) -> None:
    import pyarrow.parquet as pq

    from recsys.value.ensemble import level_scale
    from recsys.value.features import build_features
    from recsys.value.stage import score_table

    members, weights, rng = split.members, split.weights, np.random.default_rng(0)
    scale = level_scale(split.prediction.spend, weights)
    started, rows = time.monotonic(), 0
    with tempfile.TemporaryDirectory() as tmp, pq.ParquetWriter(Path(tmp) / "value.parquet", s.VALUE_SCHEMA) as writer:
        for first in range(0, n, batch):
            days = synthetic_batch(rng, first, min(batch, n - first))
            table = score_table(members, weights, scale, build_features(days, CUTOFF, members_seq_weeks(split)))
            writer.write_table(table)
            rows += table.num_rows
    took = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nscored {rows:,} synthetic customers in {took:.0f} s ({rows / took:,.0f}/s), batches of {batch:,}; "
          f"peak RSS of this process {peak:,.0f} MiB (includes TensorFlow and the Online Retail fits)")


def members_seq_weeks(split) -> int:
    return int(split.members.lstm.model.inputs[0].shape[1]) if split.members.lstm is not None else 1


def synthetic_shop(seed: int = 0, customers: int = 4000, start: date = date(2022, 1, 3), days: int = 730) -> pd.DataFrame:
    """A BG/NBD-like shop: rate ~ Gamma, drop-out after each purchase ~ Beta, order value ~ Gamma per customer.

    The purchase rate doubles around Christmas; 3 % of purchases are returned the next day; 1 line in 10
    is a guest's. One line per order (quantity 1, the order's value as price).
    """
    rng, rows = np.random.default_rng(seed), []
    for u in range(customers):
        rate, drop, value = rng.gamma(0.8, 0.02), rng.beta(1.0, 6.0), rng.gamma(3.0, 20.0)
        t, k = float(rng.uniform(0, days * 0.85)), 0
        while t < days:
            day = start + timedelta(days=int(t))
            price = float(rng.gamma(10.0, value / 10.0))
            rows.append((f"s{u}", f"s{u}-{k}", 1.0, price, day))
            if rng.random() < 0.03:
                rows.append((f"s{u}", f"s{u}-{k}r", -1.0, price, day + timedelta(days=1)))
            if rng.random() < drop:
                break
            season = 1.0 + np.exp(-(((day.timetuple().tm_yday - 340) / 25.0) ** 2))
            t, k = t + rng.exponential(1.0 / (rate * season)), k + 1
    rows += [(None, f"g{i}", 1.0, float(rng.gamma(3.0, 10.0)), start + timedelta(days=int(rng.integers(0, days))))
             for i in range(len(rows) // 9)]
    frame = pd.DataFrame(rows, columns=[s.USER_ID, s.ORDER_ID, s.QUANTITY, s.PRICE, s.EVENT_DATE])
    return frame[frame[s.EVENT_DATE] < start + timedelta(days=days)].reset_index(drop=True)


def run_published(shop: str) -> dict:
    """compute_value on one shop (see the module doc); value.json's figures and the seconds it took."""
    from recsys.value.stage import compute_value

    events = load_events(DEMO) if shop == "demo" else synthetic_shop()
    con = open_value_events(events)
    end = max(events[s.EVENT_DATE]) + timedelta(days=1)
    cfg = load_config(ROOT / "trendrec.toml").value
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        summary = compute_value(con, cfg, end, Path(tmp) / "value", Path(tmp) / "tensorboard")
    print(f"{shop}: {summary['customers']:,} customers, {time.monotonic() - started:.0f} s; "
          f"published {summary['published']}, ensemble weights {summary['ensemble_weights']}")
    return summary


def print_published(results: dict[str, dict]) -> None:
    """Per shop: every model on the validation window (published first, then BG/NBD + GG), then the hold-out check."""
    print(f"\n| shop | window | model | {' | '.join(RULE)} |\n|---|---|---|{'---|' * len(RULE)}")
    for shop, summary in results.items():
        last = f"last {summary['holdout_days']} d (validation of the shipped forecast)"
        for model in dict.fromkeys((summary["published"], "bgnbd_gg", *ORDER)):
            if model not in summary["models"]:
                continue
            cells = [f"{summary['models'][model][f]:.4f}" for f in RULE]
            print(f"| {shop} | {last} | {model}{' (published)' if model == summary['published'] else ''} | "
                  f"{' | '.join(cells)} |")
    print("\nhonest hold-out check: the model chosen on the H days before the last H days, scored on the last H")
    for shop, summary in results.items():
        chosen, validation = summary["holdout_published"], summary.get("validation") or {}
        print(f"{shop}: chosen {chosen}; on its validation window: {_figures(validation, chosen)} "
              f"(bgnbd_gg {_figures(validation, 'bgnbd_gg')}); on the hold-out: {_figures(summary['models'], chosen)} "
              f"(bgnbd_gg {_figures(summary['models'], 'bgnbd_gg')})")


def _figures(source: dict, model: str) -> str:
    return ", ".join(f"{f} {source[model][f]:.4f}" for f in RULE) if model in source else "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help=f"Online Retail parquet (default {DATA})")
    ap.add_argument("--seeds", default="42,43,44", help="LSTM seeds, comma-separated (42,43,44)")
    ap.add_argument("--synthetic-customers", type=int, default=0, help="also score this many synthetic customers")
    ap.add_argument("--batch", type=int, default=50_000, help="customers per scoring batch (50000)")
    ap.add_argument("--published", default="", help="shops, comma-separated (demo,synthetic): the published table")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.published:
        print_published({shop: run_published(shop) for shop in args.published.split(",")})
        return 0
    days = load_days(args.data)
    rows, splits = run_seeds(days, [int(v) for v in args.seeds.split(",")])
    print_table(rows, len(splits[0].actual))
    if args.synthetic_customers:
        score_synthetic(splits[-1], args.synthetic_customers, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
