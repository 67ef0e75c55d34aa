"""The ingest statistics record, counted in the ingest's own pass from the hashes it already computes.

The staging writer hands every batch of accepted rows to ``Tally.add`` together with the per-column
hashes its event keys were built from (pipeline.ingest.rowhash: order, customer and item ids), so
counting costs no second reading, parsing or hashing of the ids. Everything is kept per event day and
merges batch by batch, whatever order the log comes in:

- rows, rows with a customer id, and the sums of quantity and price and of their squares, per day (by
  runs of days in a time-ordered batch, else NumPy bincounts);
- distinct orders, customers and items per day: a HyperLogLog sketch per day and column
  (``PRECISION`` bits: 4,096 one-byte registers, a standard error of about 1.6 %; counts up to a few
  hundred, the linear-counting range, come out exact or within one); a run of equal order or customer
  ids (an order's lines) goes in once;
- rows per (day, segment): exact (one dictionary encoding of the batch's segments);
- the items' first day: a table of ``2 ** FIRST_BITS`` slots keyed by the item hash, each the earliest
  day an item of that slot was seen (the store's earlier files are added at the record); an item that
  shares a slot with an earlier one is not counted new (a few tenths of a percent of a 50,000-item
  catalogue);
- a sample for the quantiles and histograms of quantity and price and for the hours of day: the rows with
  the ``SAMPLE`` smallest event-key hashes (a bottom-k sample: uniform, the same rows whatever the order or
  batching of the log, and every row while the commit holds fewer).

The dedup pass recounts a day that lost duplicates and forgets one that kept none (``recount``), so the record describes what the commit holds. ``count_files`` counts committed raw files
the same way (a record written again after a crash is the same record). Memory: about 12 KiB per day of
the log's span, 16 MiB of first-day slots and the 2 MiB sample, whatever the number of rows. Cost: about
37 ms of CPU per 500,000 time-ordered rows, +3 % of a 20 M-line ingest's wall time (benchmarks/README.md).

    python -c "from pipeline.ingest.tally import Tally; print(Tally().record([], 'UTC'))"
"""

from __future__ import annotations

import datetime
import math
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.ingest.rowhash import event_key_base, hash_rows

DISTINCT = (s.ORDER_ID, s.USER_ID, s.ITEM_ID)  # HyperLogLog per day
NUMERIC = (s.QUANTITY, s.PRICE)
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 20  # equal-width histogram bins between the 1st and 99th percentile
TOP = 20  # most frequent values kept per categorical column
HOUR, WEEKDAY = "hour", "weekday"  # derived categorical columns: local hour of event_time, weekday (0 = Monday)
PRECISION = 12  # HyperLogLog: 2 ** 12 registers per day and column
FIRST_BITS = 23  # first-day slots of items: 2 ** 23 uint16 (16 MiB)
SAMPLE = 1 << 16  # rows of the numeric sample
SLACK = 31  # days the per-day arrays grow by beyond what a batch needs
_NEVER = np.uint16(0xFFFF)  # a first-day slot no item has reached (days count from 1970-01-01)
_M = 1 << PRECISION
_ALPHA = 0.7213 / (1 + 1.079 / _M)
_US_PER_HOUR = 3_600_000_000
_EPOCH = datetime.date(1970, 1, 1)


def _day_numbers(table: pa.Table) -> np.ndarray:
    """Days since 1970-01-01 of each row's event_date (int64)."""
    days = table.column(s.EVENT_DATE)
    return pc.cast(days, pa.int32()).to_numpy().astype(np.int64) if len(days) else np.empty(0, np.int64)


def _hll_parts(hashed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(register index, rank) of each 64-bit hash: the top PRECISION bits pick the register, the rank is
    1 + the number of trailing zeros of the rest (at most 64 - PRECISION + 1)."""
    register = (hashed >> np.uint64(64 - PRECISION)).astype(np.int64)
    rest = hashed & np.uint64((1 << (64 - PRECISION)) - 1) | np.uint64(1 << (64 - PRECISION))
    return register, np.bitwise_count(rest ^ (rest - np.uint64(1)))  # the lowest set bit and those under it


def hll_estimate(registers: np.ndarray) -> int:
    """The HyperLogLog estimate of one sketch (linear counting while registers are still empty)."""
    zeros = int(np.count_nonzero(registers == 0))
    raw = _ALPHA * _M * _M / float(np.sum(np.ldexp(1.0, -registers.astype(np.int64))))
    if raw <= 2.5 * _M and zeros:
        return int(round(_M * math.log(_M / zeros)))
    return int(round(raw))


class Tally:
    """Per-day statistics of the accepted rows, added batch by batch (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lo = 0  # day number of row 0 of the per-day arrays
        self.rows = np.zeros(0, np.int64)
        self.known = np.zeros(0, np.int64)  # rows with a customer id
        self.hll = np.zeros((0, len(DISTINCT), _M), np.uint8)
        self.sums = np.zeros((0, 2, len(NUMERIC)), np.float64)  # sum and sum of squares (not nullable)
        self.segments: dict[str, int] = {}  # segment -> its column of by_segment
        self.by_segment = np.zeros((0, 0), np.int64)
        self.first = np.empty(0, np.uint16)  # item slot -> earliest day seen (2 ** FIRST_BITS once used)
        self._hash = np.zeros(0, np.uint64)  # the sample: event-key hash, day number, quantity and price, hour
        self._day = np.zeros(0, np.int64)
        self._values = np.zeros((0, len(NUMERIC)), np.float64)
        self._hour = np.zeros(0, np.int64)  # UTC hour of event_time
        self._cut = np.uint64(2**64 - 1)  # a row above it cannot be among the SAMPLE smallest hashes

    def add(self, table: pa.Table, base: np.ndarray, hashes: dict[str, np.ndarray] | None = None) -> None:
        """Count a batch of RAW_SCHEMA rows; ``base`` their event-key hashes, ``hashes`` the per-column
        hashes already computed (pipeline.ingest.rowhash; the rest of DISTINCT is hashed here)."""
        if not table.num_rows:
            return
        hashes = dict(hashes or {})
        missing = [c for c in DISTINCT if c not in hashes]
        if missing:
            hash_rows(table.select(missing), hashes)
        days = _day_numbers(table)
        with self._lock:
            self._grow(int(days.min()), int(days.max()))
            self._add(table, days - self.lo, base, hashes)

    def _add(self, table: pa.Table, at: np.ndarray, base: np.ndarray, hashes: dict[str, np.ndarray]) -> None:
        span, n = len(self.rows), table.num_rows
        step = at[1:] != at[:-1]
        ordered = not (at[1:] < at[:-1]).any()  # a batch of a log in time order: its days in runs
        starts = np.flatnonzero(np.r_[True, step]) if ordered else None

        def per_day(weights: np.ndarray | None = None) -> np.ndarray:
            """Sums per day of ``weights`` (rows when None): by runs in a time-ordered batch, else bincount."""
            if starts is None:
                return np.bincount(at, weights=weights, minlength=span)
            out = np.zeros(span, np.int64 if weights is None else np.float64)
            out[at[starts]] = np.diff(np.r_[starts, n]) if weights is None else np.add.reduceat(weights, starts)
            return out
        self.rows += per_day()
        flat = self.hll.reshape(-1)
        sketch = at * (len(DISTINCT) * _M)  # where each row's day's sketches start in ``flat``
        for k, column in enumerate(DISTINCT):
            values, hashed, where = table.column(column), hashes[column], sketch
            if values.null_count:
                valid = values.is_valid().to_numpy(zero_copy_only=False)
                if column == s.USER_ID:
                    self.known += per_day(valid.astype(np.float64)).astype(np.int64)
                hashed, where = hashed[valid], sketch[valid]
            elif column == s.USER_ID:
                self.known += per_day()
            # an order's lines come together, and a log ordered by item brings an item's rows of a day
            # together: one id per run of a day will do (when runs halve the rows at least)
            same = hashed[1:] == hashed[:-1]  # neighbours compared once: for the test and for the runs
            if 2 * np.count_nonzero(same) > len(hashed):
                runs = np.flatnonzero(np.r_[True, ~same | (where[1:] != where[:-1])])
                if 2 * len(runs) < len(hashed):
                    hashed, where = hashed[runs], where[runs]
            if column == s.ITEM_ID:  # an item's first day: the same runs
                self._first_days(hashed, where // (len(DISTINCT) * _M) + self.lo)
            register, rank = _hll_parts(hashed)
            register += where
            register += k * _M
            np.maximum.at(flat, register, rank)
        self._add_segments(table.column(s.SEGMENT), at)
        values = [table.column(c).to_numpy() for c in NUMERIC]
        for k, column in enumerate(values):
            self.sums[:, 0, k] += per_day(column)
            self.sums[:, 1, k] += per_day(np.square(column))
        self._add_sample(base, at + self.lo, values, table.column(s.EVENT_TIME))

    def _first_days(self, items: np.ndarray, days: np.ndarray) -> None:
        if not len(self.first):
            self.first = np.full(1 << FIRST_BITS, _NEVER, np.uint16)
        days = np.clip(days, 0, int(_NEVER) - 1).astype(np.uint16)  # days since 1970 up to the year 2149
        np.minimum.at(self.first, (items >> np.uint64(64 - FIRST_BITS)).astype(np.int64), days)

    def _add_segments(self, segment: pa.ChunkedArray, at: np.ndarray) -> None:
        encoded = pc.dictionary_encode(segment.combine_chunks())
        names = encoded.dictionary.to_pylist()
        for name in names:
            self.segments.setdefault(name, len(self.segments))
        if len(self.segments) > self.by_segment.shape[1]:
            grown = np.zeros((len(self.rows), len(self.segments)), np.int64)
            grown[:, :self.by_segment.shape[1]] = self.by_segment
            self.by_segment = grown
        code = np.array([self.segments[n] for n in names], np.int64)[encoded.indices.to_numpy()]
        width = self.by_segment.shape[1]
        self.by_segment += np.bincount(at * width + code, minlength=len(self.rows) * width).reshape(-1, width)

    def _add_sample(self, base: np.ndarray, days: np.ndarray, values: list[np.ndarray], times: pa.ChunkedArray) -> None:
        """``values``: one array per NUMERIC column."""
        if len(base) > SAMPLE and len(self._hash) < SAMPLE:  # the first large batch sets the cut itself
            self._cut = min(self._cut, np.partition(base, SAMPLE - 1)[SAMPLE - 1])
        keep = np.flatnonzero(base <= self._cut)  # a few rows of a large batch once the cut is set
        if len(keep):
            self._hash = np.concatenate([self._hash, base[keep]])
            self._day = np.concatenate([self._day, days[keep]])
            self._values = np.concatenate([self._values, np.column_stack([v[keep] for v in values])])
            micros = pc.cast(times.take(keep), pa.int64()).to_numpy()
            self._hour = np.concatenate([self._hour, micros // _US_PER_HOUR % 24])
            if len(self._hash) > 2 * SAMPLE:
                self._trim()

    def _trim(self) -> None:
        """Keep the SAMPLE smallest hashes (equal hashes are equal rows: which copy stays does not matter)."""
        if len(self._hash) > SAMPLE:
            order = np.argpartition(self._hash, SAMPLE - 1)[:SAMPLE]
            self._hash, self._day, self._values = self._hash[order], self._day[order], self._values[order]
            self._hour = self._hour[order]
            self._cut = self._hash.max()

    def _grow(self, low: int, high: int) -> None:
        """Widen the per-day arrays to cover days ``low`` .. ``high`` (and ``SLACK`` more days on the side
        that grew: a log in time order widens them every few batches, not every batch)."""
        span = len(self.rows)
        if span and self.lo <= low and high < self.lo + span:
            return
        start = low - SLACK if not span or low < self.lo else self.lo
        end = high + 1 + SLACK if not span or high >= self.lo + span else self.lo + span
        before = self.lo - start if span else 0

        def wider(old: np.ndarray) -> np.ndarray:
            new = np.zeros((end - start, *old.shape[1:]), old.dtype)
            new[before:before + len(old)] = old
            return new
        self.rows, self.known, self.hll = map(wider, (self.rows, self.known, self.hll))
        self.sums, self.by_segment = wider(self.sums), wider(self.by_segment)
        self.lo = start

    def recount(self, day: datetime.date, rows: pa.Table | None = None, base: np.ndarray | None = None) -> None:
        """The day's rows are now ``rows`` with event-key hashes ``base`` (the dedup pass dropped its
        duplicates; None: all of them).

        The dropped rows' items stay in the first-day slots: a duplicate's item is in a committed file of
        the same day, which the record reads as an earlier file anyway."""
        with self._lock:
            at = (day - _EPOCH).days - self.lo
            if 0 <= at < len(self.rows):
                for table in (self.rows, self.known, self.hll, self.sums, self.by_segment):
                    table[at] = 0
                others = self._day != at + self.lo
                self._hash, self._day, self._values = self._hash[others], self._day[others], self._values[others]
                self._hour = self._hour[others]
        if rows is not None and rows.num_rows:
            self.add(rows, base)

    def record(self, earlier: list[Path], timezone: str) -> dict[str, Any]:
        """The days, numeric and categorical parts of the statistics record (pipeline.ingest.stats);
        ``earlier``: the store's raw files whose items count as already known on their day."""
        with self._lock:
            for path in earlier:
                self._add_earlier(path)
            used = np.flatnonzero(self.rows)
            self._trim()
            return {"days": self._days(used), "numeric": self._numeric(used),
                    "categorical": self._categorical(used, timezone)}

    def _add_earlier(self, path: Path) -> None:
        table = pq.read_table(path, columns=[s.EVENT_DATE, s.ITEM_ID])
        if table.num_rows:
            hashed: dict[str, np.ndarray] = {}
            hash_rows(table.select([s.ITEM_ID]), hashed)
            self._first_days(hashed[s.ITEM_ID], _day_numbers(table))

    def _days(self, used: np.ndarray) -> list[dict[str, Any]]:
        reached = self.first[self.first != _NEVER].astype(np.int64) - self.lo  # no slot reached: empty
        fresh = np.bincount(reached[(reached >= 0) & (reached < len(self.rows))], minlength=len(self.rows))
        out = []
        for at in used.tolist():
            orders, customers, items = (hll_estimate(self.hll[at, k]) for k in range(len(DISTINCT)))
            rows = int(self.rows[at])
            out.append({"date": str(_EPOCH + datetime.timedelta(days=at + self.lo)), "rows": rows, "orders": orders,
                        "customers": customers, "guest_share": 1 - int(self.known[at]) / rows, "items": items,
                        "new_item_share": min(1.0, int(fresh[at]) / items) if items else 0.0,
                        "segments": int(np.count_nonzero(self.by_segment[at]))})
        return out

    def _numeric(self, used: np.ndarray) -> dict[str, Any]:
        n = int(self.rows.sum())
        out = {}
        for k, column in enumerate(NUMERIC):
            values = np.sort(self._values[:, k])
            total, squares = self.sums[used, 0, k].sum(), self.sums[used, 1, k].sum()
            mean = total / n if n else None
            std = math.sqrt(max(0.0, squares / n - mean * mean)) if n else None
            quantiles = [_round(float(q)) for q in np.quantile(values, QUANTILES)] if len(values) else []
            low, high = (quantiles[1], quantiles[-2]) if quantiles else (0.0, 0.0)
            counts = [0] * (BINS + 2)
            if len(values):
                width = (high - low) / BINS if high > low else 0.0
                inner = np.minimum(BINS, 1 + np.floor((values - low) / width)).astype(np.int64) if width else \
                    np.ones(len(values), np.int64)
                bins = np.where(values < low, 0, np.where(values > high, BINS + 1, inner))
                found = np.bincount(bins, minlength=BINS + 2)
                counts = found.tolist() if len(values) == n else np.round(found * (n / len(values))).astype(int).tolist()
            out[column] = {"count": n, "mean": _round(mean), "std": _round(std), "sample": int(len(values)),
                           "quantiles": dict(zip(map(str, QUANTILES), quantiles)),
                           "histogram": {"low": low, "high": high, "bins": BINS, "counts": counts}}
        return out

    def _categorical(self, used: np.ndarray, timezone: str) -> dict[str, Any]:
        """Segment and weekday from every row; the local hour from the sample: its UTC hour moved by the
        zone's offset on its day, in whole hours (no per-row time-zone conversion)."""
        names = sorted(self.segments, key=self.segments.get)
        totals = self.by_segment.sum(axis=0)
        segments = {name: int(totals[i]) for i, name in enumerate(names) if totals[i]}
        zone = ZoneInfo(timezone)
        weekdays: dict[str, int] = {}
        for at in used.tolist():
            day = _EPOCH + datetime.timedelta(days=at + self.lo)
            weekdays[str(day.weekday())] = weekdays.get(str(day.weekday()), 0) + int(self.rows[at])
        days, inverse = np.unique(self._day, return_inverse=True)
        shift = np.array([int(datetime.datetime.combine(_EPOCH + datetime.timedelta(days=int(d)), datetime.time(12),
                                                        zone).utcoffset().total_seconds() // 3600) for d in days], np.int64)
        local = (self._hour + shift[inverse]) % 24 if len(days) else np.empty(0, np.int64)
        hours = {str(h): int(n) for h, n in enumerate(np.bincount(local, minlength=24)) if n}
        return {s.SEGMENT: _top(segments), HOUR: _top(hours), WEEKDAY: _top(weekdays)}


def _top(counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"distinct": len(ranked), "top": [{"value": v, "share": n / total} for v, n in ranked[:TOP]]}


def _round(value: float | None) -> float | None:
    """Ten significant digits: sums taken in another order differ in the last bits, the record may not."""
    return None if value is None else float(f"{value:.10g}")


def count_files(files: list[Path], event_key: tuple[str, ...], batch_rows: int = 500_000) -> Tally:
    """A tally of committed raw files, read in batches (the record of an ingest that has none)."""
    tally = Tally()
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=list(s.RAW_SCHEMA.names)):
            table = pa.Table.from_batches([batch])
            hashes: dict[str, np.ndarray] = {}
            tally.add(table, event_key_base(table, event_key, hashes), hashes)
    return tally
