"""A log in any order is stored as the same log in time order would be written: one file per day,
rows in the file's order, the same keys (pipeline.ingest.spill: the rows of days whose file is not
open are spilled and joined to their day at the dedup pass)."""

import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import spill, staging
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store
from tests.ingest.conftest import USER_COLUMNS, ingest_config, write_csv

DAYS = 12


def _shuffled_rows() -> list[str]:
    """Rows over DAYS days in no order, with identical rows (numbered 0, 1, ... in the file's order)."""
    rows = [f"2011-03-{1 + i % DAYS:02d} 10:{i % 7:02d}:00,A{i % 23},{1 + i % 3},2.5,u{i % 5}" for i in range(400)]
    rows += rows[:60]  # repeats: the second copy of a row is a second purchase
    random.Random(7).shuffle(rows)
    return rows


def _stored(store: Store) -> dict[str, object]:
    """Every raw day file's rows and every key file's keys, by path relative to the store."""
    out = {}
    for f in store.committed_raw_files():
        out[f"{f.parent.name}/{f.name}"] = pq.read_table(f).to_pylist()
    for f in sorted(store.raw_keys.rglob("*.parquet")):
        out[f.relative_to(store.root).as_posix()] = pq.read_table(f).column(0).to_pylist()
    return out


def _ingest(tmp_path, name: str, monkeypatch, open_days: int, direct_rows: int, spill_bytes: int) -> dict:
    monkeypatch.setattr(staging, "OPEN_DAYS", open_days)
    monkeypatch.setattr(staging, "DIRECT_ROWS", direct_rows)
    monkeypatch.setattr(spill, "SPILL_BYTES", spill_bytes)
    cfg = ingest_config(tmp_path / name, USER_COLUMNS, batch_rows=32)
    (tmp_path / name).mkdir()
    summary = run_ingest(cfg, write_csv(tmp_path, _shuffled_rows(), "log.csv"))
    assert summary["rows_accepted"] == 460
    return _stored(Store(cfg.store))


@pytest.mark.parametrize(("open_days", "direct_rows", "spill_bytes"), [
    (2, 10**9, 1),  # every row spilled, one flush per batch: many pieces per day
    (3, 3, 1 << 30),  # some days get a file, then spill once it closes: file rows first, then spilled ones
    (2, 10**9, 1 << 30),  # every row spilled, one flush at the end
])
def test_spilled_days_are_stored_as_days_written_straight(tmp_path, monkeypatch, open_days, direct_rows, spill_bytes):
    straight = _ingest(tmp_path, "straight", monkeypatch, DAYS + 1, 1, 1 << 30)  # every day's file open throughout
    assert len([k for k in straight if k.startswith("event_date=")]) == DAYS
    assert _ingest(tmp_path, "spilled", monkeypatch, open_days, direct_rows, spill_bytes) == straight


def test_a_log_in_no_order_stages_one_file_per_day(tmp_path, monkeypatch):
    staged = {}
    dedup = staging.Staging.deduplicate

    def look(self, *args):
        staged["files"] = sorted(p.name for p in self.dir.iterdir())
        staged["pieces"] = {day: len(p) for day, p in self.spill.pieces.items()}
        return dedup(self, *args)
    monkeypatch.setattr(staging.Staging, "deduplicate", look)
    monkeypatch.setattr(staging, "OPEN_DAYS", 2)
    cfg = ingest_config(tmp_path, USER_COLUMNS, batch_rows=32)
    run_ingest(cfg, write_csv(tmp_path, _shuffled_rows()))
    day_files = [f for f in staged["files"] if f.startswith("2011-") and f.endswith(".parquet")]
    assert len(day_files) <= DAYS and all(f.count(".") == 1 for f in day_files)  # no part files
    assert spill.NAME in staged["files"] and len(staged["pieces"]) == DAYS
    assert np.mean(list(staged["pieces"].values())) <= 2  # buffered across batches, not a piece per batch
