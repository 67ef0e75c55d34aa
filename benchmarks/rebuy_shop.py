"""A synthetic shop whose customers re-buy on cycles, for benchmarks/nightly_scale.py (issue 35).

Every regular customer has a home segment, a few favourite items of it and a cycle of k days (3 to a
few weeks, log-normal, scaled so that the log holds about the lines asked for): an order every k days
(moved a day either way at random) holds each favourite with probability 0.8 plus a Poisson number of
explored items, half from the home segment, half from the segment the shop's trends favour that week
(each segment's share rises and falls on its own period). Customers join over the log and some leave;
10 % of orders are guests'. Items, codes, prices and segments are shapes.py's catalogue (item i in
segment i mod S, Zipf popularity within a segment), its columns and its config (``shapes.toml``).

The log is written in blocks of days (about a million lines each: memory is bounded by the block and
by the customer table, a few arrays of one entry per customer), in time order, into two CSV files: every
day but the last (the history the nightly run finds in the store), and the last day (what it ingests).
The same sizes and seed write the same bytes.

    .venv/bin/python benchmarks/rebuy_shop.py --events 1000000 --customers 10000 --items 2000 --out /tmp/rebuy
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shapes import CHUNK_ROWS, SCHEMA, START_S, Shape, _catalogue, _Draw

FAVOURITES = 3  # favourite items per customer
KEEP_FAVOURITE = 0.8  # chance that an order holds a given favourite
EXPLORE_MEAN = 1.5  # Poisson mean of the explored items per order
GUEST_SHARE = 0.1  # orders without a customer id
TREND_AMPLITUDE = 0.6  # a segment's share swings by this fraction of its base around its period
HISTORY, LAST_DAY = "history.csv", "last_day.csv"


@dataclass(frozen=True)
class Shop:
    events: int  # lines in the whole log, about
    customers: int  # regular customers
    items: int
    days: int = 730
    segments: int = 20
    seed: int = 0


@dataclass(frozen=True)
class Customers:
    """One entry per regular customer: the re-buy structure the log is drawn from."""

    segment: np.ndarray  # home segment
    favourites: np.ndarray  # (customers, FAVOURITES) item numbers
    cycle: np.ndarray  # days between orders
    phase: np.ndarray  # day of the first possible order, in [0, cycle)
    start: np.ndarray  # first active day
    end: np.ndarray  # day after the last active day


def customers(shop: Shop) -> Customers:
    """The customers of ``shop``, the same for the same seed."""
    rng = np.random.default_rng([shop.seed, 35, 1])
    n = shop.customers
    base = _segment_base(shop)
    segment = np.minimum(np.searchsorted(np.cumsum(base) / base.sum(), rng.random(n)), shop.segments - 1)
    within = _Draw(max(1, shop.items // shop.segments), 1.0, rng)
    favourites = segment[:, None] + shop.segments * within(rng, n * FAVOURITES).reshape(n, FAVOURITES)
    start = np.clip(rng.uniform(-shop.days / 3, shop.days * 0.9, n), 0, None).astype(np.int64)
    end = np.minimum(start + rng.exponential(shop.days, n).astype(np.int64) + 7, shop.days)
    raw = rng.lognormal(0.0, 0.5, n)
    lines_per_order = FAVOURITES * KEEP_FAVOURITE + EXPLORE_MEAN
    orders = shop.events * (1 - GUEST_SHARE) / lines_per_order  # wanted from the regulars
    scale = ((end - start) / raw).sum() / max(orders, 1.0)  # cycle = raw * scale gives that many orders
    cycle = np.clip(np.rint(raw * scale), 3, max(3, shop.days // 2)).astype(np.int64)
    return Customers(segment, favourites, cycle, rng.integers(0, cycle), start, end)


def _segment_base(shop: Shop) -> np.ndarray:
    return np.arange(1, shop.segments + 1, dtype=np.float64) ** -0.7


def _trend_cdf(shop: Shop, day: float) -> np.ndarray:
    """The cumulative share of each segment in explored items on ``day``: base times its own wave."""
    rng = np.random.default_rng([shop.seed, 35, 2])
    period, offset = rng.uniform(60, 365, shop.segments), rng.uniform(0, 1, shop.segments)
    w = _segment_base(shop) * (1 + TREND_AMPLITUDE * np.sin(2 * np.pi * (day / period + offset)))
    return np.cumsum(w) / w.sum()


def _orders(people: Customers, lo: int, hi: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of every regular's order in days [lo, hi), by cycle, a day early or late at random."""
    first, last = np.maximum(people.start, lo), np.minimum(people.end, hi)
    n_first = -((people.phase - first) // people.cycle)  # ceil((first - phase) / cycle)
    n_last = -((people.phase - last) // people.cycle)
    count = np.where(last > first, np.maximum(n_last - n_first, 0), 0)
    who = np.repeat(np.arange(len(count)), count)
    step = np.arange(len(who)) - np.repeat(np.cumsum(count) - count, count)
    day = people.phase[who] + (n_first[who] + step) * people.cycle[who] + rng.integers(-1, 2, len(who))
    return who, np.clip(day, lo, hi - 1)


def _explore(shop: Shop, home: np.ndarray, day: float, within: _Draw, rng: np.random.Generator) -> np.ndarray:
    """One explored item per entry of ``home`` (-1: a guest): the home segment or the trend's, half each."""
    trend = np.minimum(np.searchsorted(_trend_cdf(shop, day), rng.random(len(home))), shop.segments - 1)
    segment = np.where((home >= 0) & (rng.random(len(home)) < 0.5), home, trend)
    return segment + shop.segments * within(rng, len(home))


def _block(shop: Shop, people: Customers, cat, within: _Draw, lo: int, hi: int,
           first_order: int) -> tuple[pa.RecordBatch, int]:
    """The lines of days [lo, hi), in time order, and the number of orders they hold."""
    rng = np.random.default_rng([shop.seed, 35, 3, lo])
    who, day = _orders(people, lo, hi, rng)
    guests = rng.binomial(len(who) + 1, GUEST_SHARE / (1 - GUEST_SHARE)) if len(who) else 0
    who = np.concatenate([who, np.full(guests, -1)])
    day = np.concatenate([day, rng.integers(lo, hi, guests)])
    k = len(who)
    seconds = START_S + day * 86_400 + 8 * 3600 + rng.integers(0, 12 * 3600, k)
    order = np.argsort(seconds, kind="stable")
    who, seconds = who[order], seconds[order]
    keep = (rng.random((k, FAVOURITES)) < KEEP_FAVOURITE) & (who >= 0)[:, None]
    explore = rng.poisson(EXPLORE_MEAN, k) + (~keep.any(axis=1))  # every order has a line
    fav_order, fav_slot = np.nonzero(keep)
    fav_items = people.favourites[who[fav_order], fav_slot]
    exp_order = np.repeat(np.arange(k), explore)
    home = np.where(who >= 0, people.segment[np.maximum(who, 0)], -1)
    exp_items = _explore(shop, home[exp_order], (lo + hi) / 2, within, rng)
    line_order = np.concatenate([fav_order, exp_order])
    items = np.concatenate([fav_items, exp_items])
    sort = np.argsort(line_order, kind="stable")
    line_order, items = pa.array(line_order[sort]), pa.array(items[sort])
    ids = pa.array(12_346 + np.maximum(who, 0), mask=who < 0)
    invoice = pc.cast(pa.array(536_365 + first_order + np.arange(k)), pa.string())
    batch = pa.record_batch([
        invoice.take(line_order), cat.codes.take(items), cat.descriptions.take(items),
        pa.array(rng.geometric(0.35, len(items))), pa.array(seconds, pa.timestamp("s")).take(line_order),
        pa.array(cat.prices[items.to_numpy()]), ids.take(line_order), cat.categories.take(items),
    ], schema=SCHEMA)
    return batch, k


def blocks(shop: Shop) -> list[tuple[int, int]]:
    """Day ranges of about CHUNK_ROWS lines each; the last day is a block of its own."""
    step = max(1, int(shop.days * CHUNK_ROWS / max(shop.events, 1)))
    edges = list(range(0, shop.days - 1, step)) + [shop.days - 1, shop.days]
    return list(zip(edges[:-1], edges[1:]))


def generate(shop: Shop, out: Path) -> dict[str, int]:
    """Write HISTORY and LAST_DAY into the folder ``out``; {file: lines}."""
    out.mkdir(parents=True, exist_ok=True)
    people = customers(shop)
    shape = Shape("rebuy", shop.segments, shop.items, shop.customers, 1.0, 0.0)
    cat = _catalogue(shape, np.random.default_rng([shop.seed, 35]))
    within = _Draw(max(1, shop.items // shop.segments), 1.0, np.random.default_rng([shop.seed, 35, 4]))
    lines, first_order = {HISTORY: 0, LAST_DAY: 0}, 0
    parts = {name: out / (name + ".part") for name in lines}
    with pacsv.CSVWriter(parts[HISTORY], SCHEMA) as history, pacsv.CSVWriter(parts[LAST_DAY], SCHEMA) as last:
        for lo, hi in blocks(shop):
            batch, orders = _block(shop, people, cat, within, lo, hi, first_order)
            name, writer = (LAST_DAY, last) if lo == shop.days - 1 else (HISTORY, history)
            writer.write_batch(batch)
            lines[name] += batch.num_rows
            first_order += orders
    for name, part in parts.items():
        part.rename(out / name)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = (("--events", 1_000_000), ("--customers", 10_000), ("--items", 2_000), ("--days", 730),
             ("--segments", 20), ("--seed", 0))
    for flag, default in sizes:
        ap.add_argument(flag, type=lambda v: int(v.replace("_", "")), default=default)
    ap.add_argument("--out", type=Path, required=True, help="folder for history.csv and last_day.csv")
    a = ap.parse_args()
    print(generate(Shop(a.events, a.customers, a.items, a.days, a.segments, a.seed), a.out))


if __name__ == "__main__":
    main()
