"""Hostile JSON lines and parquet files for benchmarks/ingest_fuzz.py: good rows of several shapes mixed
with bad records whose reason is known when they are written.

JSON lines: one object a line, bad lines of JSON_BAD_KINDS (not an object, cut off, nested thousands
deep, a wrong type, a duplicate key, bytes that are not UTF-8, a lone surrogate escape...). Parquet: one
type per column and file, so each of PARQUET_SCHEMAS is a file of its own, with the bad rows of
PARQUET_BAD_KINDS its types can hold (times past 2262, nulls, NaN and inf prices, huge ints, text in
every column, a struct where a time belongs...). Good rows carry order ids of their own (``j<n>``,
``p<n>``), so no good row equals another anywhere in the fuzz.

    PYTHONPATH=. python -c "import sys; sys.path.insert(0, 'benchmarks'); import fuzz_formats as f; print(len(f.JSON_BAD_KINDS), len(f.PARQUET_BAD_KINDS))"
"""

from __future__ import annotations

import datetime
import decimal
import json
import random
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_DROP = object()  # a key left out of the JSON object
_OK = {"ts": "2011-03-04 10:00:00", "item": "A1", "qty": 1, "price": 2.5, "cust": 17850, "order": "o1"}


def _obj(**values) -> bytes:
    record = {k: v for k, v in {**_OK, **values}.items() if v is not _DROP}
    return json.dumps(record, allow_nan=True).encode("utf-8")


def _swap(old: str, new: str) -> bytes:
    return _obj().replace(old.encode(), new.encode())


# kind -> (expected reason prefix, the line's bytes)
JSON_BAD_KINDS: dict[str, tuple[str, bytes]] = {
    "json_array": ("malformed_row", b"[1, 2, 3]"),
    "json_string": ("malformed_row", b'"2011-03-04,A1,1"'),
    "json_number": ("malformed_row", b"42"),
    "json_null": ("malformed_row", b"null"),
    "json_true": ("malformed_row", b"true"),
    "json_cut_off": ("malformed_row", _obj()[:30]),
    "json_trailing_comma": ("malformed_row", _obj()[:-1] + b", }"),
    "json_single_quotes": ("malformed_row", _obj().replace(b'"', b"'")),
    "json_two_objects": ("malformed_row", _obj() + b" " + _obj()),
    "json_csv_line": ("malformed_row", b"2011-03-04 10:00:00,A1,1,2.5,17850,o1"),
    "json_deep_array": ("malformed_row", b'{"ts": ' + b"[" * 100_000),
    "json_deep_object": ("malformed_row", b'{"item": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001),
    "json_invalid_utf8": ("bad_encoding", _obj(item="A").replace(b'"A"', b'"A\xff"')),
    "json_latin1": ("bad_encoding", _obj(item="CAF").replace(b'"CAF"', b'"CAF\xe9"')),
    "json_lone_surrogate": ("bad_encoding", _swap('"A1"', '"A\\ud800"')),
    "json_item_nested": ("wrong_type", _obj(item={"a": {"b": {"c": [1, 2]}}})),
    "json_item_array": ("wrong_type", _obj(item=["A1"])),
    "json_item_bool": ("wrong_type", _obj(item=True)),
    "json_qty_bool": ("wrong_type", _obj(qty=False)),
    "json_price_array": ("wrong_type", _obj(price=[2.5])),
    "json_ts_object": ("wrong_type", _obj(ts={"$date": "2011-03-04"})),
    "json_cust_object": ("wrong_type", _obj(cust={"id": 17850})),
    "json_empty_object": ("missing_field", b"{}"),
    "json_no_item_key": ("missing_field", _obj(item=_DROP)),
    "json_ts_null": ("missing_field", _obj(ts=None)),
    "json_price_nan": ("missing_field", _obj(price=float("nan"))),  # NaN is JSON's (non-standard) missing number
    "json_duplicate_key": ("missing_field", _swap('"item": "A1"', '"item": "A1", "item": ""')),  # the last wins
    "json_ts_word": ("bad_timestamp", _obj(ts="soon")),
    "json_ts_bad_offset": ("bad_timestamp", _obj(ts="2011-03-04T10:00:00+25:00")),
    "json_ts_2300": ("timestamp_out_of_range", _obj(ts="2300-01-01 00:00:00")),
    "json_ts_1900": ("timestamp_out_of_range", _obj(ts="1900-01-01T00:00:00Z")),
    "json_qty_word": ("non_numeric", _obj(qty="two")),
    "json_price_text_comma": ("non_numeric", _obj(price="2,50")),
    "json_price_infinity": ("non_finite", _swap('"price": 2.5', '"price": Infinity')),
    "json_qty_text_inf": ("non_finite", _obj(qty="-inf")),
    "json_qty_huge_int": ("out_of_range", _obj(qty=10**30)),
    "json_price_1e300": ("out_of_range", _obj(price=1e300)),
    "json_price_negative": ("negative_price", _obj(price=-0.5)),
    "json_qty_return": ("return", _obj(qty=-3)),
    "json_item_nul": ("bad_id", _obj(item="A\x00B")),
    "json_item_infinite": ("bad_id", _swap('"item": "A1"', '"item": 1e999')),
    "json_cust_long": ("bad_id", _obj(cust="9" * 300)),
    "json_order_nbsp_edge": ("bad_id", _obj(order="o1\u00a0")),
}


def _values(n: int, prefix: str) -> dict:
    """A good row's canonical values (unique by its order id)."""
    ts = pd.Timestamp("2011-05-01", tz="UTC") + pd.Timedelta(days=n % 28, seconds=(7 * n) % 86_400)
    return {"event_time": ts, "item_id": f"B{n % 3000}", "quantity": float(1 + n % 30),
            "price": [0.0, 1.25, 3.5, 9.99, 0.42][n % 5], "user_id": str(20_000 + n % 3000),
            "order_id": f"{prefix}{n}"}


def _json_good(n: int) -> tuple[bytes, dict]:
    """One good JSON line of shape ``n % 12`` and its canonical values."""
    v, shape = _values(n, "j"), n % 12
    rec = {"ts": v["event_time"].strftime("%Y-%m-%d %H:%M:%S"), "item": v["item_id"], "qty": int(v["quantity"]),
           "price": v["price"], "cust": int(v["user_id"]), "order": v["order_id"]}
    if shape == 1:
        rec["cust"] = v["user_id"]  # an id as text
    elif shape == 2:
        rec["cust"] = float(v["user_id"])  # 20001.0: pandas' float artefact, the same customer
    elif shape == 3:
        rec["qty"], rec["price"] = str(rec["qty"]), str(v["price"])  # numbers as text
    elif shape == 4:
        rec["ts"] = v["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ")
    elif shape == 5:
        rec["ts"] = int(v["event_time"].timestamp() * 1000)  # epoch milliseconds
    elif shape == 6:
        rec = {"meta": {"source": "app", "tags": [1, 2]}, **dict(reversed(list(rec.items()))), "extra": None}
    elif shape == 7:
        v["item_id"] = rec["item"] = f"Cr\u00e8me \u2603 {n % 7}"
    elif shape == 8:
        rec["cust"], v["user_id"] = None, None  # a guest
    elif shape == 9:
        del rec["cust"]
        v["user_id"] = None
    elif shape == 10:
        rec["item"] = v["item_id"] = 7_000 + n % 50
        v["item_id"] = str(rec["item"])  # a numeric item id is its text
    line = json.dumps(rec, ensure_ascii=shape != 7).encode("utf-8")
    if shape == 11:
        line = b"  " + line + b"\t"  # space around an object is JSON's own
    return line, v


def write_jsonl(path: Path, good: int, bad: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Good and bad lines shuffled, blank and CRLF lines sprinkled in; (good, bad) frames keyed by source_line."""
    rng = random.Random(seed)
    kinds = [k for k in JSON_BAD_KINDS for _ in range(bad // len(JSON_BAD_KINDS) + 1)][:bad]
    order = ["good"] * good + kinds
    rng.shuffle(order)
    out, goods, bads, line, n = [], [], [], 1, 0
    for what in order:
        if what == "good":
            text, values = _json_good(n)
            goods.append({"source_line": line, **values})
            n += 1
        else:
            text = JSON_BAD_KINDS[what][1]
            bads.append({"source_line": line, "kind": what, "reason": JSON_BAD_KINDS[what][0]})
        out.append(text + (b"\r\n" if rng.random() < 0.1 else b"\n"))
        line += 1
        if rng.random() < 0.01:
            out.append(b"\n")
            line += 1
    path.write_bytes(b"".join(out))
    return pd.DataFrame(goods), pd.DataFrame(bads)


_US = pa.timestamp("us", tz="UTC")
PARQUET_SCHEMAS = {  # file -> the type of each column
    "typed": {"ts": _US, "item": pa.string(), "qty": pa.int64(), "price": pa.float64(), "cust": pa.int64(),
              "order": pa.string()},
    "text": {c: pa.string() for c in ("ts", "item", "qty", "price", "cust", "order")},
    "pandas": {"ts": pa.timestamp("ns"), "item": pa.large_string(), "qty": pa.float64(), "price": pa.float32(),
               "cust": pa.float64(), "order": pa.int64()},
    "epoch": {"ts": pa.int64(), "item": pa.int64(), "qty": pa.int32(), "price": pa.decimal128(12, 2),
              "cust": pa.uint64(), "order": pa.string()},
}
_FAR = datetime.datetime(2300, 1, 1, tzinfo=datetime.timezone.utc)
# kind -> (file, expected reason prefix, the row's values that differ from a good row's)
PARQUET_BAD_KINDS: dict[str, tuple[str, str, dict]] = {
    "pq_ts_2300": ("typed", "timestamp_out_of_range", {"ts": _FAR}),
    "pq_ts_year_9999": ("typed", "timestamp_out_of_range", {"ts": datetime.datetime(9999, 12, 31, 23, 59)}),
    "pq_ts_1800": ("typed", "timestamp_out_of_range", {"ts": datetime.datetime(1800, 1, 1)}),
    "pq_ts_null": ("typed", "missing_field", {"ts": None}),
    "pq_item_null": ("typed", "missing_field", {"item": None}),
    "pq_item_empty": ("typed", "missing_field", {"item": ""}),
    "pq_qty_null": ("typed", "missing_field", {"qty": None}),
    "pq_price_null": ("typed", "missing_field", {"price": None}),
    "pq_price_nan": ("typed", "missing_field", {"price": float("nan")}),
    "pq_price_inf": ("typed", "non_finite", {"price": float("inf")}),
    "pq_price_minus_inf": ("typed", "non_finite", {"price": float("-inf")}),
    "pq_price_1e308": ("typed", "out_of_range", {"price": 1e308}),
    "pq_price_negative": ("typed", "negative_price", {"price": -1.0}),
    "pq_qty_int64_max": ("typed", "out_of_range", {"qty": 2**63 - 1}),
    "pq_qty_int64_min": ("typed", "out_of_range", {"qty": -(2**63)}),  # a size check comes before the return one
    "pq_item_control": ("typed", "bad_id", {"item": "A\x1bB"}),
    "pq_item_long": ("typed", "bad_id", {"item": "W" * 257}),
    "pq_text_ts_word": ("text", "bad_timestamp", {"ts": "31/02/2011 25:00"}),
    "pq_text_ts_far": ("text", "timestamp_out_of_range", {"ts": "2300-01-01 00:00:00"}),
    "pq_text_qty_word": ("text", "non_numeric", {"qty": "a dozen"}),
    "pq_text_price_currency": ("text", "non_numeric", {"price": "\u20ac3"}),
    "pq_text_qty_1e400": ("text", "non_finite", {"qty": "1e400"}),
    "pq_text_item_blank": ("text", "missing_field", {"item": "   "}),
    "pq_text_cust_c1": ("text", "bad_id", {"cust": "17850\x85"}),
    "pq_pandas_qty_nan": ("pandas", "missing_field", {"qty": float("nan")}),
    "pq_pandas_qty_inf": ("pandas", "non_finite", {"qty": float("inf")}),
    "pq_pandas_cust_inf": ("pandas", "bad_id", {"cust": float("inf")}),
    "pq_pandas_price_f32_max": ("pandas", "out_of_range", {"price": 3.0e38}),
    "pq_pandas_ts_null": ("pandas", "missing_field", {"ts": None}),
    "pq_epoch_item_null": ("epoch", "missing_field", {"item": None}),
    "pq_epoch_ts_far": ("epoch", "timestamp_out_of_range", {"ts": 10**16}),  # 10^16 us: the year 2286
    "pq_epoch_price_negative": ("epoch", "negative_price", {"price": "-0.01"}),
    "pq_epoch_qty_return": ("epoch", "return", {"qty": -7}),
    "pq_epoch_qty_int32_min": ("epoch", "out_of_range", {"qty": -(2**31)}),
}


def _parquet_good(n: int, schema: str) -> tuple[dict, dict]:
    """One good row of ``schema`` (a dict of column values) and its canonical values."""
    v = _values(n, "p")
    row = {"ts": v["event_time"].to_pydatetime(), "item": v["item_id"], "qty": int(v["quantity"]), "price": v["price"],
           "cust": int(v["user_id"]), "order": v["order_id"]}
    if schema == "text":
        row = {"ts": v["event_time"].strftime("%Y-%m-%dT%H:%M:%S+00:00"), "item": v["item_id"],
               "qty": f"{v['quantity']:g}", "price": str(v["price"]), "cust": v["user_id"], "order": v["order_id"]}
    elif schema == "pandas":  # what pandas writes: naive ns times, float ids and quantities, a float32 price
        v["price"] = float(pa.array([v["price"]], pa.float32())[0].as_py())
        row.update(ts=v["event_time"].tz_localize(None).to_pydatetime(), qty=v["quantity"], price=v["price"],
                   cust=float(v["user_id"]) if n % 5 else None, order=n)
        v["order_id"], v["user_id"] = str(n), v["user_id"] if n % 5 else None
    elif schema == "epoch":  # epoch microseconds, numeric items, decimal prices
        row.update(ts=int(v["event_time"].timestamp() * 1_000_000), item=9_000 + n % 40, price=f"{v['price']:.2f}")
        v["item_id"] = str(row["item"])
    return row, v


def write_parquet_files(folder: Path, good: int, bad: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One parquet file per schema, good rows (``good`` in all) and bad ones shuffled; frames carry source_file."""
    rng = random.Random(seed)
    kinds = [k for k in PARQUET_BAD_KINDS for _ in range(bad // len(PARQUET_BAD_KINDS) + 1)][:bad]
    goods, bads, n = [], [], 0
    for number, (schema, types) in enumerate(PARQUET_SCHEMAS.items()):
        mine = ["good"] * (good // len(PARQUET_SCHEMAS)) + [k for k in kinds if PARQUET_BAD_KINDS[k][0] == schema]
        rng.shuffle(mine)
        rows, name = [], f"fuzz-{number}-{schema}.parquet"
        for line, what in enumerate(mine, start=1):
            row, values = _parquet_good(n, schema)
            n += 1
            if what == "good":
                goods.append({"source_file": name, "source_line": line, **values})
            else:
                row.update(PARQUET_BAD_KINDS[what][2])
                bads.append({"source_file": name, "source_line": line, "kind": what,
                             "reason": PARQUET_BAD_KINDS[what][1]})
            rows.append(row)
        columns = {c: [r[c] for r in rows] for c in types}
        if schema == "epoch":
            columns["price"] = [decimal.Decimal(p) for p in columns["price"]]
        table = pa.table({c: pa.array(values, type=types[c]) for c, values in columns.items()})
        pq.write_table(table, folder / name, row_group_size=max(len(rows) // 3, 1))
    return pd.DataFrame(goods), pd.DataFrame(bads)
