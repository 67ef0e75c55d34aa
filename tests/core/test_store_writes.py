"""The store's parquet writers: a table written whole and the same rows written from batches are one file.

    .venv/bin/python -m pytest tests/core/test_store_writes.py -q
"""

import pyarrow as pa
import pytest

from pipeline import store as store_module
from pipeline.store import write_parquet, write_parquet_batches

SCHEMA = pa.schema([("k", pa.string()), ("v", pa.float64())], metadata={b"note": b"kept"})


def _batch(start: int, rows: int) -> pa.RecordBatch:
    ids = range(start, start + rows)  # large_string: the writer casts to SCHEMA's string
    return pa.record_batch({"k": pa.array([f"k{i}" for i in ids], pa.large_string()),
                            "v": pa.array([i / 7 for i in ids], pa.float64())})


@pytest.mark.parametrize("sizes", [[3, 4, 0, 6], [5, 5], [12], [], [0]])
def test_batches_write_the_bytes_of_the_whole_table(tmp_path, monkeypatch, sizes):
    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 5)  # batches cross row-group edges
    starts = [sum(sizes[:j]) for j in range(len(sizes))]
    batches = [_batch(start, rows) for start, rows in zip(starts, sizes)]
    whole = pa.Table.from_batches(batches, _batch(0, 0).schema).cast(SCHEMA).combine_chunks()
    assert write_parquet_batches(iter(batches), SCHEMA, tmp_path / "b.parquet") == sum(sizes)
    write_parquet(whole, tmp_path / "w.parquet")
    assert (tmp_path / "b.parquet").read_bytes() == (tmp_path / "w.parquet").read_bytes()


def test_a_failed_write_leaves_nothing(tmp_path):
    def failing():
        yield _batch(0, 2)
        raise RuntimeError("the query failed")

    with pytest.raises(RuntimeError, match="the query failed"):
        write_parquet_batches(failing(), SCHEMA, tmp_path / "out" / "b.parquet")
    assert not (tmp_path / "out").exists()
