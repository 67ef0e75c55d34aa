"""A synthetic shop with guests, new customers and segments whose demand really rises and falls (issue 36).

The shop where segment trends should help the cold-start lists if they ever do: what a segment sells
moves for weeks in one direction, so an item's buyers of the last 28 days (popularity) lag behind next
week's, and the lag is the segment's. Written with the demo's column names (InvoiceNo, StockCode,
Quantity, InvoiceDate, UnitPrice, CustomerID, null for a guest) plus Category, the segment, and a config
next to it: the demo's ``trendrec.toml`` with ``ensemble = 1`` and Category as the segment.

Parameters (module constants; ``--seed`` and ``--days`` on the command line):

- ``DAYS`` = 371 (53 weeks from Monday 2024-01-01, shop time 08:00 to 20:00), ``SEED`` = 0.
- Segments (``SEGMENTS``), each with 40 items (Zipf 1.0 popularity inside it, a fixed price) and a demand
  level over time (a smooth shape; the draws below add the noise): ``steady_1..3`` flat; ``wave_1..4``
  exp(0.8 sin(2 pi t / P + phase)) with periods 126, 154, 182 and 210 days (up to 2 to 3 times over four
  weeks); ``rising`` from 0.3 to 2 and ``falling`` from 2 to 0.3, log-linear over the year; ``launch``
  born on day 250 at 0.1, up log-linearly to 2 over ten weeks, then flat; ``holiday`` a bump of 4 times its level centred on day 345 (a 3-week standard deviation in days).
- Customers: 800 at the start, then new ones arrive each day (Poisson, 8 a day rising to 14 at the end)
  and order that day; each buys on a day with probability rate x the weekday's factor (rate ~ Gamma(2, 1/30): one order a
  fortnight on average) for a lifetime ~ Exponential(180 days); each has a taste per segment
  (Gamma(1, 1)). Weekday factors Monday..Sunday 1.1, 1.0, 1.0, 1.1, 1.2, 0.8, 0.5.
- Guest orders (``GUESTS`` = 0.35 of the customers' expected orders, on top, same weekday factors): no
  CustomerID; items by the segments' levels alone.
- An order has Geometric lines (1 or more, mean ``MEAN_LINES`` = 4). A known customer's line re-buys one of
  their past items with probability ``REPEAT`` = 0.4; otherwise (and for every guest line) a segment is
  drawn with probability proportional to its level that day x the customer's taste, then an item of it.
  Quantity 1 + Poisson(2).

The same seed gives the same log. Seed 0: 186,206 lines, 50,002 orders (11,749 of them guests'), 4,860
customers; a few seconds.

    PYTHONPATH=. .venv/bin/python benchmarks/trend_shop.py --out /tmp/trend-shop
    .venv/bin/trendrec ingest --config /tmp/trend-shop/trendrec.toml
    PYTHONPATH=. .venv/bin/python benchmarks/trend_shop.py --check    # the promises above, on 18 weeks
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DAYS = 371
SEED = 0
START = np.datetime64("2024-01-01T00:00:00")  # a Monday
ITEMS_PER_SEGMENT = 40
START_CUSTOMERS = 800
ARRIVALS = (8.0, 14.0)  # new customers a day, at the start and at the end (linear in between)
RATE_SHAPE, RATE_SCALE = 2.0, 1 / 30  # a customer's chance to order on a day, before the weekday factor
LIFETIME_DAYS = 180.0
WEEKDAY = np.array([1.1, 1.0, 1.0, 1.1, 1.2, 0.8, 0.5])
GUESTS = 0.35  # guest orders, as a share of the customers' expected orders that day
MEAN_LINES = 4
REPEAT = 0.4
SEGMENTS = ("steady_1", "steady_2", "steady_3", "wave_1", "wave_2", "wave_3", "wave_4", "rising", "falling",
            "launch", "holiday")
SCHEMA = pa.schema([("InvoiceNo", pa.string()), ("StockCode", pa.string()), ("Quantity", pa.int64()),
                    ("InvoiceDate", pa.timestamp("s")), ("UnitPrice", pa.float64()), ("CustomerID", pa.float64()),
                    ("Category", pa.string())])
CONFIG_EDITS = {  # the demo config's text (a regular expression) -> this shop's
    r'^store = "\./trendrec-data"': 'store = "{store}"',
    r'^source = "data/demo/online_retail\.parquet"': 'source = "{source}"',
    r"^# Online Retail has no category column.*?\n\]\n": "",  # Category names the segment
    r'^order_id = "InvoiceNo"\n': 'order_id = "InvoiceNo"\nsegment = "Category"\n',
    r"^ensemble = 3 .*?$": "ensemble = 1                  # one seed, for time (the demo averages 3)",
    r'^candidates = "data/demo/candidates\.parquet"': "# candidates: none (the shop has no lists of its own)",
}


def segment_levels(days: int = DAYS) -> np.ndarray:
    """(days, segments) demand levels, the shapes of the module docstring."""
    t = np.arange(days, dtype=float)
    frac = t / max(days - 1, 1)
    waves = [np.exp(0.8 * np.sin(2 * np.pi * t / period + phase))
             for period, phase in ((126, 0.0), (154, 1.6), (182, 3.1), (210, 4.7))]
    launch = np.where(t < 250, 0.0, np.exp(np.log(0.1) + (np.log(2) - np.log(0.1)) * np.clip((t - 250) / 70, 0, 1)))
    holiday = 0.5 * (1 + 3 * np.exp(-0.5 * ((t - 345) / 21) ** 2))
    columns = [np.ones(days)] * 3 + waves + [np.exp(np.log(0.3) + np.log(2 / 0.3) * frac),
                                             np.exp(np.log(2) + np.log(0.3 / 2) * frac), launch, holiday]
    return np.column_stack(columns)


def generate(days: int = DAYS, seed: int = SEED) -> pa.Table:
    """The shop's lines in time order (see the module docstring)."""
    rng = np.random.default_rng(seed)
    levels = segment_levels(days)
    n_seg = len(SEGMENTS)
    zipf = 1 / np.arange(1, ITEMS_PER_SEGMENT + 1)
    zipf /= zipf.sum()
    prices = np.round(rng.uniform(0.5, 12.0, n_seg * ITEMS_PER_SEGMENT), 2)
    arrivals = rng.poisson(np.linspace(*ARRIVALS, days))
    first = np.concatenate([np.zeros(START_CUSTOMERS, int), np.repeat(np.arange(days), arrivals)])
    n = len(first)
    last = first + rng.exponential(LIFETIME_DAYS, n).astype(int)
    rate = rng.gamma(RATE_SHAPE, RATE_SCALE, n)
    taste = rng.gamma(1.0, 1.0, (n, n_seg))
    history: list[list[int]] = [[] for _ in range(n)]
    rows: dict[str, list] = {name: [] for name in SCHEMA.names}
    order_no = 0
    for day in range(days):
        factor = WEEKDAY[day % 7]
        active = np.flatnonzero((first <= day) & (last >= day))
        # a new customer orders on their first day; the others by their rate
        buyers = active[(first[active] == day) | (rng.random(len(active)) < rate[active] * factor)]
        n_guests = rng.poisson(GUESTS * rate[active].sum() * factor)
        who = np.concatenate([buyers, np.full(n_guests, -1)])
        seconds = np.sort(rng.integers(8 * 3600, 20 * 3600, len(who)))
        for customer, second in zip(rng.permutation(who), seconds):
            order_no += 1
            weights = levels[day] * (taste[customer] if customer >= 0 else 1.0)
            items = _order_items(rng, weights / weights.sum(), zipf, history[customer] if customer >= 0 else [])
            if customer >= 0:
                history[customer].extend(items)
            stamp = START + np.timedelta64(day * 86400 + int(second), "s")
            for item in items:
                rows["InvoiceNo"].append(str(500000 + order_no))
                rows["StockCode"].append(f"S{item:04d}")
                rows["Quantity"].append(1 + int(rng.poisson(2)))
                rows["InvoiceDate"].append(stamp)
                rows["UnitPrice"].append(float(prices[item]))
                rows["CustomerID"].append(float(10000 + customer) if customer >= 0 else None)
                rows["Category"].append(SEGMENTS[item // ITEMS_PER_SEGMENT])
    return pa.table(rows, schema=SCHEMA)


def _order_items(rng: np.random.Generator, segment_p: np.ndarray, zipf: np.ndarray, past: list[int]) -> list[int]:
    """One order's distinct items: Geometric lines (1 or more), each a re-buy (REPEAT) or a segment's item."""
    lines = int(rng.geometric(1 / MEAN_LINES))  # 1, 2, ... lines, MEAN_LINES on average
    items: list[int] = []
    for _ in range(lines):
        if past and rng.random() < REPEAT:
            item = past[int(rng.integers(len(past)))]
        else:
            segment = int(rng.choice(len(segment_p), p=segment_p))
            item = segment * ITEMS_PER_SEGMENT + int(rng.choice(ITEMS_PER_SEGMENT, p=zipf))
        if item not in items:
            items.append(item)
    return items


def write_shop(out: Path, days: int = DAYS, seed: int = SEED) -> tuple[Path, Path]:
    """Write ``out``/trend_shop.parquet and ``out``/trendrec.toml (store ``out``/store); return both paths."""
    out.mkdir(parents=True, exist_ok=True)
    source, config = out / "trend_shop.parquet", out / "trendrec.toml"
    pq.write_table(generate(days, seed), source)
    text = (ROOT / "trendrec.toml").read_text(encoding="utf-8")
    for old, new in CONFIG_EDITS.items():
        text, found = re.subn(old, new.format(store=out / "store", source=source), text, count=1, flags=re.S | re.M)
        if not found:
            raise ValueError(f"trendrec.toml has nothing matching {old!r} to replace")
    config.write_text(f"# benchmarks/trend_shop.py's shop (seed {seed}, {days} days): the demo config, segments from Category\n"
                      + text, encoding="utf-8")
    return source, config


def check_shop(days: int = 126) -> list[str]:
    """What the generator promises, on ``days`` days: one line per broken promise (none: all hold). ``--check``
    prints them; tests/evaluation/test_trend_shop.py runs it."""
    table = generate(days)
    frame = table.to_pandas()
    week = (frame["InvoiceDate"] - START.astype("datetime64[ns]")).dt.days // 7
    first = frame.dropna(subset=["CustomerID"]).groupby("CustomerID")["InvoiceDate"].min()
    levels = segment_levels()
    checks = [
        (generate(days).equals(table), "the same seed gave another log"),
        (set(frame["Category"]) <= set(SEGMENTS) - {"launch"} and frame["Category"].nunique() == len(SEGMENTS) - 1,
         "a segment but launch sells nothing early, or launch sells before day 250"),
        (0.15 < frame.loc[frame["CustomerID"].isna(), "InvoiceNo"].nunique() / frame["InvoiceNo"].nunique() < 0.35,
         "guest orders are not 15-35 % of the orders"),
        ((first > START + np.timedelta64(7, "D")).groupby((first - START).dt.days // 7).sum().iloc[1:].gt(30).all(),
         "fewer than 30 new customers in some week"),
        (frame.groupby("InvoiceNo")["CustomerID"].nunique(dropna=False).eq(1).all() and week.max() == days // 7 - 1,
         "an order spans customers, or the log does not fill its weeks"),
        (levels[-1, SEGMENTS.index("rising")] > 6 * levels[0, SEGMENTS.index("rising")]
         and levels[-1, SEGMENTS.index("falling")] < levels[0, SEGMENTS.index("falling")] / 6,
         "rising / falling do not move by their factor over the year"),
        (levels[:250, SEGMENTS.index("launch")].max() == 0 and levels[-1, SEGMENTS.index("launch")] == 2,
         "launch is not born on day 250 and up to 2"),
    ]
    return [message for ok, message in checks if not ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the log, its config and store")
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="check the generator's promises on a short log")
    args = parser.parse_args()
    if args.check:
        broken = check_shop()
        print("shop ok" if not broken else "\n".join(broken))
        raise SystemExit(1 if broken else 0)
    if args.out is None:
        parser.error("--out is required (or --check)")
    source, config = write_shop(args.out, args.days, args.seed)
    table = pq.read_table(source, columns=["InvoiceNo", "CustomerID"])
    guests = table.filter(table["CustomerID"].is_null())
    print(f"{source}: {table.num_rows:,} lines, {len(set(table['InvoiceNo'].to_pylist())):,} orders "
          f"({len(set(guests['InvoiceNo'].to_pylist())):,} guest orders), "
          f"{len(set(table['CustomerID'].drop_null().to_pylist())):,} customers; config {config}")


if __name__ == "__main__":
    main()
