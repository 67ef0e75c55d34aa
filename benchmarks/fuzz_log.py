"""A deterministic hostile CSV log: good rows of 12 shapes mixed with bad records of 60 kinds.

Every record's fate is known when it is written: a good row's exact canonical values and physical
line, a bad record's reason. Runs of clean records alternate with runs that mix in bad ones, so with
a small block size both the reader's fast path and its line-by-line re-scan are exercised.
benchmarks/ingest_fuzz.py writes one beside the JSON lines and parquet files of fuzz_formats.py, ingests
them and prints the figures; tests/ingest/test_ingest_fuzz.py runs that script small (benchmarks and
tests import nothing from each other, so the generators live with the script that runs them).

    PYTHONPATH=. python -c "import sys; sys.path.insert(0, 'benchmarks'); from fuzz_log import BAD_KINDS; print(len(BAD_KINDS))"
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

HEADER = "ts,item,qty,price,cust,order,desc"
CANONICAL = ["event_time", "item_id", "quantity", "price", "user_id", "order_id"]
COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust",
           "order_id": "order"}
_OK = {"ts": "2011-03-04 10:00:00", "item": "A1", "qty": "1", "price": "2.5", "cust": "17850", "order": "o1",
       "desc": "WHITE MUG"}


def _row(**values: str) -> bytes:
    return ",".join({**_OK, **values}[c] for c in HEADER.split(",")).encode("utf-8")


# kind -> (expected reason prefix, the record's bytes); each kind is one way a record goes wrong
BAD_KINDS: dict[str, tuple[str, bytes]] = {
    "quote_open_item": ("malformed_row", _row(item='"WHITE HEART')),
    "quote_open_desc": ("malformed_row", _row(desc='"UNFINISHED, LINE')),
    "quote_open_start": ("malformed_row", b'"' + _row()),
    "quote_open_alone": ("malformed_row", _row(cust='"')),
    "too_few_fields": ("malformed_row", b"2011-03-04 10:00:00,A1,1"),
    "too_many_fields": ("malformed_row", _row() + b",extra,fields"),
    "one_field": ("malformed_row", b"garbage"),
    "only_commas": ("malformed_row", b",,,"),
    "whitespace_line": ("malformed_row", b"   "),
    "tab_separated": ("malformed_row", _row().replace(b",", b"\t")),
    "semicolon_separated": ("malformed_row", _row().replace(b",", b";")),
    "quoted_comma_extra": ("malformed_row", _row(desc='"A, B",C')),
    "byte_ff": ("bad_encoding", _row(item="A").replace(b",A,", b",A\xff,")),
    "latin1_desc": ("bad_encoding", _row(desc="CAF") + b"\xe9"),
    "truncated_utf8": ("bad_encoding", _row(item="B").replace(b",B,", b",B\xe2\x82,")),
    "overlong_utf8": ("bad_encoding", _row(item="C").replace(b",C,", b",C\xc0\xaf,")),
    "surrogate_utf8": ("bad_encoding", _row(item="D").replace(b",D,", b",D\xed\xa0\x80,")),
    "empty_item": ("missing_field", _row(item="")),
    "empty_ts": ("missing_field", _row(ts="")),
    "empty_qty": ("missing_field", _row(qty="")),
    "empty_price": ("missing_field", _row(price="")),
    "blank_item": ("missing_field", _row(item='"   "')),
    "quoted_empty_item": ("missing_field", _row(item='""')),
    "item_db_null": ("missing_field", _row(item="\\N")),  # a database client's NULL
    "ts_text": ("bad_timestamp", _row(ts="not-a-date")),
    "ts_month_13": ("bad_timestamp", _row(ts="2011-13-04 10:00:00")),
    "ts_feb_30": ("bad_timestamp", _row(ts="2011-02-30 10:00:00")),
    "ts_day_first": ("bad_timestamp", _row(ts="01/12/2010 08:26")),
    "ts_hour_25": ("bad_timestamp", _row(ts="2011-03-04 25:00:00")),
    "ts_word": ("bad_timestamp", _row(ts="yesterday")),
    "ts_bad_offset": ("bad_timestamp", _row(ts="2011-03-04T10:00:00+25:00")),
    "ts_1850": ("timestamp_out_of_range", _row(ts="1850-01-01 00:00:00")),
    "ts_1989": ("timestamp_out_of_range", _row(ts="1989-12-31 23:59:59")),
    "ts_2050": ("timestamp_out_of_range", _row(ts="2050-01-01 00:00:00")),
    "ts_2099": ("timestamp_out_of_range", _row(ts="2099-12-31 23:59:59")),
    "qty_word": ("non_numeric", _row(qty="abc")),
    "qty_comma_decimal": ("non_numeric", _row(qty='"1,5"')),
    "price_dollar": ("non_numeric", _row(price="$3.50")),
    "qty_hex": ("non_numeric", _row(qty="0x10")),
    "price_two_dots": ("non_numeric", _row(price="1.2.3")),
    "price_nan": ("non_numeric", _row(price="nan")),
    "qty_inf": ("non_finite", _row(qty="inf")),
    "price_infinity": ("non_finite", _row(price="Infinity")),
    "qty_minus_inf": ("non_finite", _row(qty="-inf")),
    "qty_1e300": ("out_of_range", _row(qty="1e300")),
    "price_1e300": ("out_of_range", _row(price="1e300")),
    "qty_minus_1e300": ("out_of_range", _row(qty="-1e300")),
    "price_over_max": ("out_of_range", _row(price="10000001")),
    "price_negative": ("negative_price", _row(price="-5")),
    "price_minus_cent": ("negative_price", _row(price="-0.01")),
    "qty_return": ("return", _row(qty="-2")),
    "qty_minus_one": ("return", _row(qty="-1")),
    "item_nul": ("bad_id", _row(item="A\x00B")),
    "item_tab": ("bad_id", _row(item="A\tB")),
    "item_escape": ("bad_id", _row(item="A\x1b[31mB")),
    "item_300": ("bad_id", _row(item="X" * 300)),
    "item_30000": ("bad_id", _row(item="Y" * 30_000)),
    "cust_bell": ("bad_id", _row(cust="1\x07")),
    "order_delete": ("bad_id", _row(order="o\x7f")),
    "item_c1_nel": ("bad_id", _row(item="A\x85B")),
}


def _good(n: int, rng: random.Random) -> tuple[bytes, dict]:
    """One good row of a random shape (unique by its order id) and its exact canonical values."""
    day, sec = 1 + n % 28, n % 86_400
    ts = pd.Timestamp("2011-03-01", tz="UTC") + pd.Timedelta(days=day - 1, seconds=sec)
    item, cust, shape = f"A{n % 5000}", str(12_000 + n % 4000), rng.randrange(12)
    qty, price = float(1 + n % 40), [0.0, 0.85, 2.55, 12.75, 4.95][n % 5]
    text = {"ts": ts.strftime("%Y-%m-%d %H:%M:%S"), "item": item, "qty": f"{qty:g}", "price": f"{price:g}",
            "cust": cust, "order": f"o{n}", "desc": "WHITE MUG"}
    if shape == 1:
        text["item"], item = f'"ITEM, {n % 97}"', f"ITEM, {n % 97}"
    elif shape == 2:
        text["item"], item = f'"5"" TV {n % 13}"', f'5" TV {n % 13}'
    elif shape == 3:
        text["item"], item = f'5"TV{n % 7}', f'5"TV{n % 7}'  # a quote inside an unquoted value is literal
    elif shape == 4:
        text["item"] = item = ["NA", "NULL", "#N/A", "nan", "None"][n % 5]
    elif shape == 5:
        text["cust"], cust = "", None  # a guest checkout
    elif shape == 6:
        text["ts"] = ts.strftime("%Y-%m-%d %H:%M:%S") + ".123456789"
        ts += pd.Timedelta(microseconds=123_456)  # nanoseconds are cut to the microsecond
    elif shape == 7:
        text["ts"] = (ts + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S") + "+01:00"
    elif shape == 8:
        text["item"], item = f"Crème brûlée {n % 11}", f"Crème brûlée {n % 11}"
    elif shape == 9:
        text["item"] = f"  {item}  "  # ids are trimmed
    elif shape == 10:
        text["item"] = item = "Z" * 256  # the longest id allowed
    elif shape == 11:
        text["desc"] = '"QUOTED, ""DESC"""'
    line = ",".join(text[c] for c in HEADER.split(",")).encode("utf-8")
    return line, {"event_time": ts, "item_id": item, "quantity": qty, "price": price, "user_id": cust,
                  "order_id": f"o{n}"}


@dataclass
class FuzzLog:
    """The file written and what must become of each record."""

    path: Path
    good: pd.DataFrame  # source_line plus the canonical columns each good row must be stored with
    bad: pd.DataFrame = field(default_factory=pd.DataFrame)  # source_line, kind, reason prefix

    @property
    def records(self) -> int:
        return len(self.good) + len(self.bad)


def write_fuzz_log(path: Path, good: int = 20_000, bad: int = 12_000, seed: int = 20, run: int = 400) -> FuzzLog:
    """Write ``good`` good rows and ``bad`` bad records (every kind about equally often) to ``path``.

    Records come in runs of ``run``: every other run is clean, the others mix bad records in. Blank
    lines and CRLF endings are sprinkled in; they are not records but move every later line number.
    """
    rng = random.Random(seed)
    kinds = list(BAD_KINDS)
    bad_kinds = [kinds[i % len(kinds)] for i in range(bad)]
    rng.shuffle(bad_kinds)
    lines, goods, bads, line_no, n = [HEADER.encode()], [], [], 2, 0
    while n < good or bad_kinds:
        clean = (line_no // run) % 2 == 0 and n < good
        if not clean and bad_kinds and (n >= good or rng.random() < 0.6):
            kind = bad_kinds.pop()
            lines.append(BAD_KINDS[kind][1])
            bads.append({"source_line": line_no, "kind": kind, "reason": BAD_KINDS[kind][0]})
        else:
            text, values = _good(n, rng)
            lines.append(text)
            goods.append({"source_line": line_no, **values})
            n += 1
        line_no += 1
        if rng.random() < 0.01:
            lines.append(b"")  # a blank line: skipped, but it is a physical line
            line_no += 1
    ends = [b"\r\n" if rng.random() < 0.1 else b"\n" for _ in lines]
    path.write_bytes(b"".join(line + end for line, end in zip(lines, ends)))
    return FuzzLog(path, pd.DataFrame(goods), pd.DataFrame(bads))
