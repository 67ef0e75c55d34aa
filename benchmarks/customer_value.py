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

The machine is shared (2 cores): times are what this run measured, not a promise.

    PYTHONPATH=. .venv/bin/python benchmarks/customer_value.py --seeds 42,43,44 --synthetic-customers 1000000
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
CUTOFF = date(2011, 9, 10)  # first hold-out day
END = date(2011, 12, 10)  # the day after the last event
ORDER = ("bgnbd_gg", "rfm", "lstm", "ensemble")
FIGURES = ("spearman", "norm_gini", "top_decile_capture", "mae", "total_error")


def load_days(path: Path) -> pd.DataFrame:
    ev = pd.read_parquet(path, columns=["CustomerID", "InvoiceNo", "Quantity", "UnitPrice", "InvoiceDate"])
    frame = pd.DataFrame({s.USER_ID: ev["CustomerID"].astype("Int64").astype(str).where(ev["CustomerID"].notna()),
                          s.ORDER_ID: ev["InvoiceNo"], s.QUANTITY: ev["Quantity"].astype(float),
                          s.PRICE: ev["UnitPrice"], s.EVENT_DATE: ev["InvoiceDate"].dt.date})
    print(f"{path}: {len(frame):,} lines, {int(frame[s.USER_ID].isna().sum()):,} without a customer id (left out)")
    return customer_days(open_value_events(frame), END)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help=f"Online Retail parquet (default {DATA})")
    ap.add_argument("--seeds", default="42,43,44", help="LSTM seeds, comma-separated (42,43,44)")
    ap.add_argument("--synthetic-customers", type=int, default=0, help="also score this many synthetic customers")
    ap.add_argument("--batch", type=int, default=50_000, help="customers per scoring batch (50000)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    days = load_days(args.data)
    rows, splits = run_seeds(days, [int(v) for v in args.seeds.split(",")])
    print_table(rows, len(splits[0].actual))
    if args.synthetic_customers:
        score_synthetic(splits[-1], args.synthetic_customers, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
