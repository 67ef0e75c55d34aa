"""Row hashes behind the stored event keys: pipeline.ingest.rowhash must give pandas' hash_pandas_object
bit for bit (the keys of every existing store were made by pandas), on every RAW_SCHEMA column type."""

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline import schemas as s
from pipeline.ingest.rowhash import hash_rows


def _pandas(table: pa.Table) -> np.ndarray:
    return pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy()


def _texts(rng: np.random.Generator, n: int) -> list[str | None]:
    alphabet = list("aZ09 -_.é漢😀\u00a0")
    sizes = [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 300]  # around the 8-byte words of SipHash
    out = ["".join(rng.choice(alphabet, size=rng.choice(sizes))) for _ in range(n)]
    return [None if i % 13 == 0 else t for i, t in enumerate(out)]


def test_texts_of_every_length_and_script_nulls_and_repeats_hash_as_pandas():
    rng = np.random.default_rng(3)
    texts = _texts(rng, 400)
    values = [texts[i] for i in rng.integers(0, len(texts), 3000)]  # repeats: hashed once per distinct
    for kind in (pa.string(), pa.large_string()):
        table = pa.table({"t": pa.array(values, kind)})
        assert (hash_rows(table) == _pandas(table)).all()
    sliced = pa.table({"t": pa.array(values)}).slice(17, 1000)  # a non-zero Arrow offset
    assert (hash_rows(sliced) == _pandas(sliced)).all()
    chunked = pa.table({"t": pa.chunked_array([pa.array(values[:100]), pa.array(values[100:])])})
    assert (hash_rows(chunked) == _pandas(chunked)).all()


def test_a_raw_schema_table_hashes_as_pandas_column_by_column_and_together():
    rng = np.random.default_rng(4)
    n = 2000
    start = datetime.datetime(2011, 1, 1, tzinfo=datetime.UTC)
    floats = rng.normal(size=n).round(2)
    floats[:4] = [0.0, -0.0, np.nan, -np.nan]  # equal values, different bits: pandas makes them one
    ids = _texts(rng, n)
    table = pa.table({
        s.EVENT_TIME: pa.array([start + datetime.timedelta(seconds=int(x)) for x in rng.integers(0, 10**8, n)],
                               pa.timestamp("us", tz="UTC")),
        s.EVENT_DATE: pa.array([datetime.date(2011, 1, 1 + i % 28) for i in range(n)], pa.date32()),
        s.ORDER_ID: pa.array(ids), s.USER_ID: pa.array(ids[::-1]),
        s.ITEM_ID: pa.array([f"A{i % 97}" for i in range(n)]), s.SEGMENT: pa.array(["x"] * n),
        s.QUANTITY: pa.array(floats), s.PRICE: pa.array(rng.uniform(0, 1e6, n)),
        s.SOURCE_FILE: pa.array(["f.csv"] * n), s.SOURCE_LINE: pa.array(np.arange(n, dtype=np.int64)),
    }).cast(s.RAW_SCHEMA)
    for name in table.column_names:
        assert (hash_rows(table.select([name])) == _pandas(table.select([name]))).all(), name
    for fields in (("order_id", "item_id", "event_time", "quantity", "price", "user_id"), tuple(table.column_names)):
        assert (hash_rows(table.select(list(fields))) == _pandas(table.select(list(fields)))).all()


@pytest.mark.parametrize("rows", [0, 1])
def test_tiny_tables(rows):
    table = pa.table({"t": pa.array(["abc"][:rows], pa.string()), "q": pa.array([1.5][:rows])})
    assert (hash_rows(table) == _pandas(table)).all()


def test_texts_in_runs_of_equal_neighbours_hash_as_pandas():
    """An order's lines share its id: such a column is hashed once per run, not per distinct value."""
    rng = np.random.default_rng(5)
    texts = _texts(rng, 500)
    runs = [texts[i] for i in rng.integers(0, len(texts), 300) for _ in range(rng.integers(1, 6))]
    table = pa.table({"order": pa.array(runs), "shuffled": pa.array(list(rng.permutation(np.array(runs, object))))})
    assert (hash_rows(table) == _pandas(table)).all()


def test_texts_nearly_all_distinct_and_in_no_order_hash_as_pandas(monkeypatch):
    """The order ids of a log in no order: each text is hashed as it comes, without a table of distinct
    values; the texts of every length on both sides of the lanes' slices (rowhash._LANES)."""
    from pipeline.ingest import rowhash

    monkeypatch.setattr(rowhash, "_LANES", 64)
    rng = np.random.default_rng(6)
    texts = [f"{t}#{i}" if t is not None else None for i, t in enumerate(_texts(rng, 5000))]
    texts[7] = texts[8]  # a repeat among them still gets pandas' hash
    table = pa.table({"t": pa.array(texts)})
    hashed, encoded = [], rowhash.pc.dictionary_encode
    monkeypatch.setattr(rowhash.pc, "dictionary_encode", lambda v: hashed.append(1) or encoded(v))
    ours = hash_rows(table)
    assert not hashed  # no table of distinct values was built
    assert (ours == _pandas(table)).all()
    repeats = pa.table({"t": pa.array([texts[i % 300] for i in range(5000)])})
    hashed.clear()
    ours = hash_rows(repeats)
    assert hashed  # a column that repeats is hashed once per distinct value
    assert (ours == _pandas(repeats)).all()
