"""Segment forecasts on several shops: the published combination beside each member, mean MASE per shop.

Rolling-origin backtests (recsys.forecast.backtest) with the default ModelConfig and [combination]
on four shops, each method scored on the same cut-offs and cells:

- online_retail: the 12 series and 6 cut-offs of benchmarks/forecast_retail.py (horizon 14);
- bakery: the Bread Basket bakery (../shared/data/bakery_breadbasket), daily items sold, all items
  and the top 5 products ("NONE" rows dropped), 162 days: lookback 28 (84 leaves no training window);
- load: the load series (../shared/data/load), one year of 15-minute load summed per day, for the
  whole day and its four 6-hour blocks;
- synthetic: 420 days, a steady weekly segment, one whose trend breaks (rising, then a 40 % drop
  and a decline), one appearing at day 300 and growing, and an intermittent (Poisson 0.7) one;
- spikes: 540 days of four steady levels (weekly, noisy) with rare spikes: on about one day in 45 a
  segment sells 3-8 times its level (a promotion, a bulk order);
- yearly: three years (2022-01-03..2024-12-31) of four segments with a strong yearly cycle: a summer
  peak, a winter peak that climbs to Christmas, a mild cycle on a rising level, and a spring one;
- cdnow: a CD retailer's daily revenue (CDNOW_master.txt, 1997-01..1998-06: the file ships in the
  ``lifetimes`` 0.11.3 wheel under lifetimes/datasets/), when ``--cdnow PATH`` or
  ../shared/data/cdnow/CDNOW_master.txt holds it, on 6 cut-offs.

The shops other than Online Retail use ``--cutoffs`` cut-offs (default 4) ``horizon`` days apart,
the last leaving exactly ``horizon`` days. A shop whose data is missing is skipped with a note.
The table: shop x method, mean MASE over the shop's series; "vs best" is the combination's MASE
relative to the best single member; the time line compares the combination's fit per cut-off with
the LSTM's training alone (what a cut-off cost before combinations).

    flock /tmp/trendrec-cpu.lock nice -n 10 env PYTHONPATH=. python benchmarks/forecast_shops.py
    PYTHONPATH=. python benchmarks/forecast_shops.py --shops synthetic --cutoffs 2 --set epochs=5
    python benchmarks/forecast_shops.py --check   # the shop loaders only (tests/forecast/test_forecast_shops.py)
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run from anywhere

import forecast_retail  # noqa: E402

from pipeline import schemas as s  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BAKERY = DATA / "bakery_breadbasket" / "BreadBasket_DMS.parquet"
LOAD = DATA / "load" / "load.csv"
CDNOW = DATA / "cdnow" / "CDNOW_master.txt"
TARGET = forecast_retail.TARGET
METHODS = ("model", "lstm", "auto_ets", "auto_theta", "mstl", "year_ago", "seasonal_naive")
SHOPS = ("online_retail", "bakery", "load", "synthetic", "spikes", "yearly", "cdnow")
SHOP_CUTOFFS = {"cdnow": 6}  # the shops with their own number of cut-offs
SHOP_OVERRIDES = {"bakery": ["lookback=28"]}  # 162 days: an 84-day lookback leaves no training window


def bakery_daily(path: Path = BAKERY, top: int = 5) -> pd.DataFrame:
    """[segment, date, value]: items sold per day, "all" and the ``top`` products, zero-filled."""
    raw = pd.read_parquet(path, columns=["Date", "Item"])
    raw = raw[raw["Item"] != "NONE"].assign(day=pd.to_datetime(raw["Date"]))
    days = pd.date_range(raw["day"].min(), raw["day"].max(), freq="D")
    products = raw["Item"].value_counts().index[:top]
    parts = [("all", raw), *((p.lower(), raw[raw["Item"] == p]) for p in products)]
    return pd.concat([_long(name, part.groupby("day").size().reindex(days, fill_value=0), days)
                      for name, part in parts], ignore_index=True)


def load_daily(path: Path = LOAD) -> pd.DataFrame:
    """[segment, date, value]: the 96 quarter-hours summed per day, and per 6-hour block (00-06...)."""
    raw = pd.read_csv(path)
    days = pd.to_datetime(raw["YMD"].astype(str), format="%Y%m%d")
    slots = raw.drop(columns="YMD").to_numpy(float)
    blocks = [("total", slots.sum(axis=1))] + [(f"h{6 * b:02d}-{6 * b + 6:02d}", slots[:, 24 * b:24 * b + 24].sum(axis=1))
                                               for b in range(4)]
    return pd.concat([_long(name, pd.Series(v, index=days), pd.DatetimeIndex(days)) for name, v in blocks],
                     ignore_index=True)


def synthetic_daily(days: int = 420, seed: int = 0) -> pd.DataFrame:
    """A steady weekly segment, a trend break at day 300, a segment born at day 300, an intermittent one."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    dates = pd.date_range("2023-01-02", periods=days, freq="D")
    week = 1 + 0.4 * np.sin(2 * np.pi * t / 7)
    trend = np.where(t < 300, 100 + 0.3 * t, 0.6 * (100 + 0.3 * 300) - 0.2 * (t - 300))
    born = np.where(t >= 300, 20 + 0.5 * (t - 300), 0.0)
    series = {"steady": 200 * week * rng.lognormal(0, 0.15, days),
              "break": trend * week * rng.lognormal(0, 0.1, days),
              "new": born * week * rng.lognormal(0, 0.2, days),
              "intermittent": rng.poisson(0.7, days).astype(float)}
    out = pd.concat([_long(name, pd.Series(v, index=dates), dates) for name, v in series.items()], ignore_index=True)
    return out[(out[s.SEGMENT] != "new") | (out[s.DATE] >= dates[300].date())].reset_index(drop=True)


def spikes_daily(days: int = 540, seed: int = 1) -> pd.DataFrame:
    """Four steady weekly levels with rare spikes: each day, with probability 1/45, 3-8 times the level."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    dates = pd.date_range("2023-01-02", periods=days, freq="D")
    week = 1 + 0.25 * np.sin(2 * np.pi * t / 7)
    series = {}
    for name, level in (("steady_a", 300.0), ("steady_b", 120.0), ("steady_c", 60.0), ("steady_d", 25.0)):
        spike = np.where(rng.random(days) < 1 / 45, rng.uniform(3, 8, days), 1.0)
        series[name] = level * week * rng.lognormal(0, 0.12, days) * spike
    return pd.concat([_long(name, pd.Series(v, index=dates), dates) for name, v in series.items()], ignore_index=True)


def yearly_daily(seed: int = 2) -> pd.DataFrame:
    """Three years (2022-01-03..2024-12-31) of four segments whose level follows a strong yearly cycle."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-03", "2024-12-31", freq="D")
    t, doy = np.arange(len(dates)), dates.day_of_year.to_numpy()
    week = 1 + 0.3 * np.sin(2 * np.pi * t / 7)
    christmas = np.exp(-((doy - 355) / 18.0) ** 2) + np.exp(-((doy + 365 - 355) / 18.0) ** 2)
    series = {"summer": 150 * (1 + 0.7 * np.cos(2 * np.pi * (doy - 190) / 365)),
              "winter": 80 * (0.6 + 0.3 * np.cos(2 * np.pi * (doy - 10) / 365) + 2.5 * christmas),
              "rising": (100 + 0.08 * t) * (1 + 0.3 * np.cos(2 * np.pi * (doy - 120) / 365)),
              "spring": 40 * (1 + 0.8 * np.cos(2 * np.pi * (doy - 100) / 365))}
    return pd.concat([_long(name, pd.Series(v * week * rng.lognormal(0, 0.12, len(t)), index=dates), dates)
                      for name, v in series.items()], ignore_index=True)


def cdnow_daily(path: Path = CDNOW) -> pd.DataFrame:
    """[segment, date, value]: the CD retailer's revenue per day ("all"), zero-filled."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["customer", "day", "cds", "dollars"],
                      dtype={"customer": str, "day": str})
    raw = raw[raw["day"].str.fullmatch(r"\d{8}")]  # a copy with a header line has "date" there
    days = pd.to_datetime(raw["day"], format="%Y%m%d")
    revenue = raw["dollars"].astype(float).groupby(days).sum()
    index = pd.date_range(revenue.index.min(), revenue.index.max(), freq="D")
    return _long("all", revenue.reindex(index, fill_value=0.0), index)


def _long(name: str, values: pd.Series, days: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({s.SEGMENT: name, s.DATE: days.date, TARGET: values.to_numpy(float)})


def _shop(name: str, n_cutoffs: int, horizon: int, cdnow: Path = CDNOW,
          data_seed: int = 0) -> tuple[pd.DataFrame, list[datetime.date]] | None:
    """The shop's daily table and cut-offs, or None when its data is not here.

    ``data_seed`` (0: the published draws) is added to the generated shops' seeds: a new draw of the
    same design, to check a rule on series it was not chosen on."""
    from recsys.forecast.backtest import default_cutoffs

    if name == "online_retail":
        path = next((p for p in forecast_retail.SOURCES if p.is_file()), None)
        if path is None:
            return None
        return (forecast_retail.retail_daily(path),
                [datetime.date.fromisoformat(c) for c in forecast_retail.CUTOFFS])
    loaders = {"bakery": (bakery_daily, BAKERY), "load": (load_daily, LOAD),
               "synthetic": (lambda: synthetic_daily(seed=data_seed), None),
               "spikes": (lambda: spikes_daily(seed=1 + data_seed), None),
               "yearly": (lambda: yearly_daily(seed=2 + data_seed), None), "cdnow": (lambda: cdnow_daily(cdnow), cdnow)}
    loader, path = loaders[name]
    if path is not None and not path.is_file():
        return None
    daily = loader()
    return daily, default_cutoffs(daily[s.DATE].max(), horizon, SHOP_CUTOFFS.get(name, n_cutoffs), horizon)


def _table(results: dict[str, dict]) -> list[str]:
    members = [m for m in METHODS if m != "model"]
    lines = [f"{'shop':<14}" + "".join(f"{m:>15}" for m in METHODS) + f"{'vs best':>9}{'vs ETS':>8}"]
    for shop, r in results.items():
        mase = {m: r["overall"][m]["mase"] for m in METHODS}
        best = min(mase[m] for m in members)
        lines.append(f"{shop:<14}" + "".join(f"{mase[m]:>15.3f}" for m in METHODS)
                     + f"{100 * (mase['model'] / best - 1):>+8.1f}%{'better' if mase['model'] < mase['auto_ets'] else 'WORSE':>8}")
    return lines


def check_shops() -> list[str]:
    """What the shop loaders promise, as one line per broken promise (none: all hold); a shop whose data
    is not here is skipped. ``--check`` prints them; tests/forecast/test_forecast_shops.py runs it."""
    daily = synthetic_daily()
    spans = daily.groupby(s.SEGMENT)[s.DATE].agg(["min", "max", "count"])
    brk = daily[daily[s.SEGMENT] == "break"][TARGET].to_numpy()
    checks = [
        ((spans.loc["new", "count"], spans.loc["steady", "count"]) == (120, 420), "synthetic: days per segment"),
        (spans.loc["new", "min"] > spans.loc["steady", "min"] and spans.loc["new", "max"] == spans.loc["steady", "max"],
         "synthetic: 'new' is not born mid-history"),
        (brk[293:300].mean() > 1.4 * brk[300:307].mean(), "synthetic: no 40 % drop at day 300"),
        (not daily.duplicated([s.SEGMENT, s.DATE]).any() and np.isfinite(daily[TARGET]).all(),
         "synthetic: duplicate or non-finite rows"),
    ]
    spikes = spikes_daily().pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
    share = (spikes > 2.5 * spikes.median()).mean()
    checks.append((spikes.shape == (540, 4) and share.between(0.01, 0.05).all(), "spikes: not rare spikes on 540 days"))
    yearly = yearly_daily().pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
    months = yearly.groupby([pd.to_datetime(yearly.index).year, pd.to_datetime(yearly.index).month]).mean()
    profile = [months.loc[y].to_numpy().ravel() for y in (2022, 2023, 2024)]
    checks += [(len(yearly) == 1094 and (months.max() > 1.8 * months.min()).all(), "yearly: no strong yearly cycle"),
               (min(np.corrcoef(profile)[0, 1:]) > 0.9, "yearly: the years do not repeat")]
    if BAKERY.is_file():
        bakery = bakery_daily().pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
        checks += [(set(bakery.columns) == {"all", "coffee", "bread", "tea", "cake", "pastry"}, "bakery: segments"),
                   ((bakery.drop(columns="all").sum(axis=1) <= bakery["all"]).all(), "bakery: products exceed 'all'")]
    if LOAD.is_file():
        load = load_daily().pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
        checks += [(len(load) == 365, "load: not 365 days"),
                   (np.allclose(load.drop(columns="total").sum(axis=1), load["total"]), "load: blocks do not sum")]
    return [message for ok, message in checks if not ok]


def main(argv: list[str] | None = None) -> int:
    """Backtest every shop whose data is here and print the shop x method table (``--check``: the loaders)."""
    from recsys.forecast.backtest import backtest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", default=",".join(SHOPS), help=f"comma-separated, from {','.join(SHOPS)}")
    parser.add_argument("--cutoffs", type=int, default=4, help="cut-offs of the shops other than Online Retail")
    parser.add_argument("--seed", type=int, default=0, help="the LSTM's seed")
    parser.add_argument("--data-seed", type=int, default=0,
                        help="added to the generated shops' seeds (synthetic, spikes, yearly): a new draw")
    parser.add_argument("--cdnow", type=Path, default=CDNOW, help="CDNOW_master.txt (the cdnow shop)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="ModelConfig override for every shop, e.g. epochs=10")
    parser.add_argument("-v", "--verbose", action="store_true", help="log per cut-off progress")
    parser.add_argument("--check", action="store_true", help="only check the shop loaders; exit 1 if one fails")
    args = parser.parse_args(argv)
    if args.check:
        broken = check_shops()
        print("\n".join(broken) or f"shops ok (bakery {BAKERY.is_file()}, load {LOAD.is_file()})")
        return 1 if broken else 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    results, timing = {}, []
    for shop in args.shops.split(","):
        config = forecast_retail._config(SHOP_OVERRIDES.get(shop, []) + args.set, args.seed)
        loaded = _shop(shop, args.cutoffs, config.horizon, args.cdnow, args.data_seed)
        if loaded is None:
            print(f"{shop}: data not found under {DATA}; skipped", flush=True)
            continue
        daily, cutoffs = loaded
        results[shop] = backtest(daily, config, cutoffs, methods=METHODS)
        sec = results[shop]["seconds"]
        timing.append(f"{shop}: combination {sec['model'] / len(cutoffs):.1f} s per cut-off, of which LSTM "
                      f"training {sec['lstm'] / len(cutoffs):.1f} s (ratio {sec['model'] / sec['lstm']:.2f})")
        print(f"{shop}: {daily[s.SEGMENT].nunique()} series, cut-offs {cutoffs[0]}..{cutoffs[-1]}, "
              f"MASE model {results[shop]['overall']['model']['mase']:.3f}; {timing[-1]}", flush=True)
    print("\n".join(_table(results) + timing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
