"""Synthetic shop logs of several shapes, for the ingest and aggregate benchmarks (issue 21).

A shape says how a shop's lines spread over items, customers and segments. Every shape writes one CSV
with the demo's column names (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
CustomerID) plus Category, the segment; ``shapes.toml`` next to this file maps them for trendrec.

- ``uniform``: today's generators: 40 segments, 20,000 items, 200,000 customers, all drawn evenly.
- ``zipf``: the issue's measured shape: items and customers drawn from Zipf distributions (exponent
  1.0) over 50,000 items and 300,000 customers, 60 segments; 10 % guest orders.
- ``many_segments``: ``zipf`` with 2,000 segments (25 items each).
- ``long_tail``: 60 % of orders come from customers who buy once (a new id per order), 30 % from
  50,000 Zipf-drawn regulars, 10 % from guests: most customers appear in one order only, and the
  number of customers grows with the log (about 3 M at 20 M lines).

Orders shops export in (the same Zipf lines as ``zipf``, whose file is in time order):

- ``exports``: ten time-ordered exports of the two years, one after the other (its own draws);
- ``by_customer``: ordered by CustomerID (guests last), then time, as a database export by key;
- ``by_item``: ordered by StockCode, then time;
- ``shuffled``: no order at all.

A reordered file is written with memory bounded too: each generated chunk is cut into buckets of key
ranges (Arrow files next to the output, removed after), then each bucket is sorted and written.

Common to all: two years of events from 2024-01-01 (naive UK shop time, 08:00 to 20:00); orders of geometric size (mean 4 lines) share invoice, customer and time; 1 % of orders are
cancellations (InvoiceNo "C...", negative quantities); an item keeps its code, description, price and
category (item number modulo the segment count, so popular items are spread over segments).

The file is written one million lines at a time (vectorised NumPy + pyarrow, memory bounded by the
chunk), and is the same byte for byte for the same shape, rows and seed.

    .venv/bin/python benchmarks/shapes.py zipf --rows 1000000 --out /tmp/zipf.csv
    .venv/bin/trendrec ingest /tmp/zipf.csv --config benchmarks/shapes.toml --store /tmp/zipf-store
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

CONFIG = Path(__file__).resolve().with_name("shapes.toml")  # trendrec's column mapping for these files
DAYS = 730  # two years
START_S = 1_704_067_200  # 2024-01-01 00:00:00 (written without a zone: local shop time)
CHUNK_ROWS = 1_000_000  # lines generated and written at a time
MEAN_ORDER_LINES = 4
CANCEL_SHARE = 0.01
SCHEMA = pa.schema([("InvoiceNo", pa.string()), ("StockCode", pa.string()), ("Description", pa.string()),
                    ("Quantity", pa.int64()), ("InvoiceDate", pa.timestamp("s")), ("UnitPrice", pa.float64()),
                    ("CustomerID", pa.int64()), ("Category", pa.string())])
_WORDS = ("RED", "WHITE", "VINTAGE", "HANGING", "HEART", "GLASS", "PAPER", "TEA", "GARDEN", "CHRISTMAS",
          "LUNCH", "BAG", "CANDLE", "MUG", "BOX", "SIGN")


@dataclass(frozen=True)
class Shape:
    """How a shop's lines spread over items, customers and segments."""

    name: str
    segments: int  # distinct Category values
    items: int  # distinct StockCodes
    customers: int  # regular customers (ids drawn again and again)
    item_zipf: float  # Zipf exponent of item popularity; 0 = even
    customer_zipf: float  # Zipf exponent of regulars' order counts; 0 = even
    guest_share: float = 0.0  # orders without a CustomerID
    one_off_share: float = 0.0  # orders by a customer seen in that order only
    order: str = "time"  # the order of the file's lines: one of ORDERS


SHAPES = {s.name: s for s in (
    Shape("uniform", 40, 20_000, 200_000, 0.0, 0.0),
    Shape("zipf", 60, 50_000, 300_000, 1.0, 1.0, guest_share=0.1),
    Shape("many_segments", 2_000, 50_000, 300_000, 1.0, 1.0, guest_share=0.1),
    Shape("long_tail", 60, 50_000, 50_000, 1.0, 1.0, guest_share=0.1, one_off_share=0.6),
    Shape("exports", 60, 50_000, 300_000, 1.0, 1.0, guest_share=0.1, order="exports"),
    Shape("by_customer", 60, 50_000, 300_000, 1.0, 1.0, guest_share=0.1, order="customer"),
    Shape("by_item", 60, 50_000, 300_000, 1.0, 1.0, guest_share=0.1, order="item"),
    Shape("shuffled", 60, 50_000, 300_000, 1.0, 1.0, guest_share=0.1, order="shuffled"),
)}
ORDERS = ("time", "exports", "customer", "item", "shuffled")
EXPORTS = 10  # time-ordered exports of the whole two years, one after the other, in order "exports"



class _Draw:
    """Ranks drawn evenly or from a Zipf law over n values, mapped to ids by a fixed permutation."""

    def __init__(self, n: int, exponent: float, rng: np.random.Generator):
        self.n, self.perm = n, rng.permutation(n)
        weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent if exponent else None
        self.cdf = None if weights is None else np.cumsum(weights) / weights.sum()

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.cdf is None:
            return self.perm[rng.integers(0, self.n, size)]
        return self.perm[np.minimum(np.searchsorted(self.cdf, rng.random(size)), self.n - 1)]


@dataclass(frozen=True)
class _Catalogue:
    """Per item: code, description, price and category; the draws of items and regular customers."""

    codes: pa.Array
    descriptions: pa.Array
    prices: np.ndarray
    categories: pa.Array  # category name per item
    items: _Draw
    customers: _Draw


def _catalogue(shape: Shape, rng: np.random.Generator) -> _Catalogue:
    n = np.arange(shape.items)
    suffix = np.where(n % 5 == 0, "A", "")  # like Online Retail's 85123A next to 22423
    codes = pa.array(np.char.add((10_000 + n).astype(str), suffix))
    words = np.array(_WORDS)
    desc = np.char.add(np.char.add(words[rng.integers(0, len(words), shape.items)], " "),
                       words[rng.integers(0, len(words), shape.items)])
    desc = np.char.add(np.char.add(desc, " "), n.astype(str))
    names = pa.array([f"cat{j:04d}" for j in range(shape.segments)])
    return _Catalogue(codes, pa.array(desc), np.round(rng.gamma(2.0, 2.5, shape.items) + 0.1, 2),
                      names.take(pa.array(n % shape.segments)), _Draw(shape.items, shape.item_zipf, rng),
                      _Draw(shape.customers, shape.customer_zipf, rng))


def _order_sizes(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Lines per order, the last one cut so that they add up to ``rows``."""
    sizes = rng.geometric(1 / MEAN_ORDER_LINES, rows // MEAN_ORDER_LINES + 64)
    while sizes.sum() < rows:
        sizes = np.concatenate([sizes, rng.geometric(1 / MEAN_ORDER_LINES, 64)])
    ends = np.cumsum(sizes)
    k = int(np.searchsorted(ends, rows)) + 1
    sizes = sizes[:k].copy()
    sizes[-1] -= ends[k - 1] - rows
    return sizes


def _customers(shape: Shape, cat: _Catalogue, rng: np.random.Generator, first_order: int, k: int) -> pa.Array:
    """CustomerID per order: null for guests, a fresh id for one-off buyers, else a drawn regular."""
    u = rng.random(k)
    ids = 12_346 + cat.customers(rng, k)
    one_off = (u >= shape.guest_share) & (u < shape.guest_share + shape.one_off_share)
    ids = np.where(one_off, 10_000_000 + first_order + np.arange(k), ids)
    return pa.array(ids, mask=u < shape.guest_share)


def _chunk(shape: Shape, cat: _Catalogue, rng: np.random.Generator, rows: int, days: tuple[float, float],
           first_order: int) -> tuple[pa.RecordBatch, int]:
    """``rows`` lines whose orders fall in [days[0], days[1]) days after START_S, in time order."""
    sizes = _order_sizes(rng, rows)
    k = len(sizes)
    t = np.sort(rng.uniform(days[0], days[1], k))
    seconds = START_S + np.floor(t).astype(np.int64) * 86_400 + (8 * 3600 + (t % 1) * 12 * 3600).astype(np.int64)
    cancel = rng.random(k) < CANCEL_SHARE
    invoice = pc.cast(pa.array(536_365 + first_order + np.arange(k)), pa.string())
    invoice = pc.if_else(pa.array(cancel), pc.binary_join_element_wise("C", invoice, ""), invoice)
    line_order = pa.array(np.repeat(np.arange(k), sizes))
    item = cat.items(rng, rows)
    item_idx = pa.array(item)
    qty = rng.geometric(0.35, rows) * np.where(np.repeat(cancel, sizes), -1, 1)
    batch = pa.record_batch([
        invoice.take(line_order), cat.codes.take(item_idx), cat.descriptions.take(item_idx), pa.array(qty),
        pa.array(seconds, pa.timestamp("s")).take(line_order), pa.array(cat.prices[item]),
        _customers(shape, cat, rng, first_order, k).take(line_order), cat.categories.take(item_idx),
    ], schema=SCHEMA)
    return batch, k


# The generator's seed per shape, fixed so that a shape's file stays the same byte for byte as shapes
# are added; the reordered shapes hold the very lines of ``zipf`` (``exports`` draws its own times).
_SALT = {"long_tail": 0, "many_segments": 1, "uniform": 2, "zipf": 3, "exports": 3, "by_customer": 3,
         "by_item": 3, "shuffled": 3}


def _batches(shape: Shape, cat: _Catalogue, rows: int, seed: int, salt: int):
    """The log's lines as generated, CHUNK_ROWS at a time: time order, or ``EXPORTS`` time-ordered
    exports of the two years one after the other."""
    exports = EXPORTS if shape.order == "exports" else 1
    first_order = 0
    for e in range(exports):
        lines = rows // exports + (e < rows % exports)
        chunks = max(1, -(-lines // CHUNK_ROWS))
        for c in range(chunks):
            n = lines // chunks + (c < lines % chunks)
            span = (DAYS * c / chunks, DAYS * (c + 1) / chunks)
            rng = np.random.default_rng([seed, salt, c] if exports == 1 else [seed, salt, e, c])
            batch, orders = _chunk(shape, cat, rng, n, span, first_order)
            yield batch
            first_order += orders


def _sort_key(shape: Shape, batch: pa.RecordBatch, rng: np.random.Generator) -> np.ndarray:
    """Per line, the uint64 the file is ordered by (ties keep time order), below 2**62."""
    if shape.order == "customer":  # guests (no id) last
        return pc.fill_null(batch.column("CustomerID"), 2**62 - 1).to_numpy().astype(np.uint64)
    if shape.order == "item":  # codes are 5 digits, some with a letter after: their number orders them
        digits = pc.utf8_slice_codeunits(batch.column("StockCode"), 0, 5)
        return pc.cast(digits, pa.int64()).to_numpy().astype(np.uint64)
    return rng.integers(0, 2**62, len(batch), dtype=np.uint64)  # shuffled


def _write_reordered(shape: Shape, batches, rows: int, writer: pacsv.CSVWriter, work: Path, seed: int) -> None:
    """Write the lines ordered by ``_sort_key`` with memory bounded: each generated chunk is cut into
    buckets of key ranges (Arrow files beside the output), then each bucket is sorted and written."""
    buckets = max(1, -(-rows // CHUNK_ROWS))
    keyed = SCHEMA.append(pa.field("_key", pa.uint64()))
    paths = [work / f"bucket-{b}.arrow" for b in range(buckets)]
    sinks = [pa.ipc.new_stream(p, keyed) for p in paths]
    try:
        bound = None
        for c, batch in enumerate(batches):
            key = _sort_key(shape, batch, np.random.default_rng([seed, 7, c]))
            if bound is None:  # the key range: customer ids and item numbers are dense from their first
                bound = 2**62 if shape.order == "shuffled" else int(key[key < 2**62 - 1].max(initial=0)) * 2 + 1
            which = np.minimum(key.astype(np.float64) * buckets / bound, buckets - 1).astype(np.int64)
            table = pa.Table.from_batches([batch]).append_column("_key", pa.array(key))
            for b in np.unique(which):
                sinks[b].write_table(table.filter(pa.array(which == b)))
        for sink in sinks:
            sink.close()
        for p in paths:
            with pa.ipc.open_stream(p) as reader:
                table = reader.read_all()
            order = np.argsort(table.column("_key").to_numpy(), kind="stable")
            writer.write_table(table.take(pa.array(order)).drop_columns(["_key"]))
            p.unlink()
    finally:
        for p in paths:
            p.unlink(missing_ok=True)


def generate(shape: Shape | str, rows: int, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write ``rows`` lines of ``shape`` to the CSV ``path`` (via a temporary name) and return it."""
    shape = SHAPES[shape] if isinstance(shape, str) else shape
    salt = _SALT.get(shape.name, 99)
    cat = _catalogue(shape, np.random.default_rng([seed, salt]))
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    batches = _batches(shape, cat, rows, seed, salt)
    with pacsv.CSVWriter(tmp, SCHEMA) as writer:
        if shape.order in ("time", "exports"):
            for batch in batches:
                writer.write_batch(batch)
        else:
            _write_reordered(shape, batches, rows, writer, path.parent, seed)
    tmp.rename(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("--rows", type=lambda v: int(v.replace("_", "")), default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True, help="CSV file to write")
    args = ap.parse_args()
    started = time.monotonic()
    generate(args.shape, args.rows, args.out, args.seed)
    print(f"{args.out}: {args.rows:,} lines of {args.shape}, {args.out.stat().st_size / 1e6:.0f} MB "
          f"in {time.monotonic() - started:.1f} s; ingest with --config {CONFIG}")


if __name__ == "__main__":
    main()
