"""What makes ingest overlap its work (issue 21) without changing what it stores: the next chunk read on a
thread of its own, the file's digest hashed by the reader or beside the reading, and a bounded number of open day files
(a day that comes back after its file was closed is joined into one file at the dedup pass)."""

import dataclasses
import fcntl
import json
import os
import threading

import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.ingest import ingest, order, staging
from pipeline.ingest.ingest import run_ingest
from pipeline.ingest.sources import _ahead
from pipeline.ingest.staging import PARTIAL
from pipeline.store import Store
from tests.ingest.conftest import USER_COLUMNS, ingest_config, stored, write_csv


def _rows(days: list[int], start: int = 0) -> list[str]:
    return [f"2011-03-{d:02d} 10:00:{i % 60:02d},A{start + i},1,2.5,u{i % 7}" for i, d in enumerate(days, start)]


def test_days_that_come_back_after_their_file_closed_are_stored_once_per_day(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "OPEN_DAYS", 2)  # every day is closed and reopened below
    days = [1 + (i * 7) % 9 for i in range(90)]  # nine days, interleaved, across small batches
    cfg = ingest_config(tmp_path, USER_COLUMNS, batch_rows=8)
    path = write_csv(tmp_path, _rows(days))
    first = run_ingest(cfg, path)
    files = Store(cfg.store).committed_raw_files()
    assert first["rows_accepted"] == 90 and len(files) == 9  # one file per day, whatever the order
    assert sorted({f.parent.name for f in files}) == [f"event_date=2011-03-{d:02d}" for d in range(1, 10)]
    rows = stored(cfg)
    assert sorted(rows[s.SOURCE_LINE]) == list(range(2, 92)) and rows[s.ITEM_ID].is_unique
    for f in files:  # each file holds its own day only, in the file's order
        table = pq.read_table(f).to_pandas()
        assert table[s.EVENT_DATE].nunique() == 1 and table[s.SOURCE_LINE].is_monotonic_increasing
    # the keys staged with the joined parts are the rows' keys: a copy under another name adds nothing
    again = run_ingest(cfg, write_csv(tmp_path, _rows(days), "copy.csv"))
    assert (again["rows_accepted"], again["rows_duplicate"]) == (0, 90)
    assert not any(Store(cfg.store).ingest_staging.iterdir())


def test_a_killed_ingests_partial_folder_goes_and_a_live_ones_stays(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    root = Store(cfg.store).ensure().ingest_staging
    dead, live = root / f"{PARTIAL}1-dead", root / f"{PARTIAL}2-live"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "2011-03-01.parquet").write_bytes(b"half a file")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # what a running ingest holds on its folder
    try:
        run_ingest(cfg, write_csv(tmp_path, _rows([1, 2])))
        assert not dead.exists() and live.is_dir()
    finally:
        os.close(held)
    run_ingest(cfg, write_csv(tmp_path, _rows([3], start=5), "next.csv"))
    assert not any(root.iterdir())


def test_an_already_committed_file_is_stopped_as_soon_as_its_digest_is_known(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS, batch_rows=4)
    path = write_csv(tmp_path, _rows([1 + i % 5 for i in range(200)]))
    run_ingest(cfg, path)
    again = run_ingest(cfg, path)
    assert (again["rows_accepted"], again["rows_duplicate"], again["rows_in"]) == (0, 200, 200)
    assert not any(Store(cfg.store).ingest_staging.iterdir())


def test_a_csv_no_commit_has_the_size_of_is_hashed_by_its_reader_and_others_beside_it(tmp_path, monkeypatch):
    cfg = ingest_config(tmp_path, USER_COLUMNS, batch_rows=16)
    beside = []
    real = ingest.file_digest
    monkeypatch.setattr(ingest, "file_digest", lambda path, stop=None: beside.append(path.name) or real(path, stop))
    first = write_csv(tmp_path, _rows([1 + i % 5 for i in range(200)]))
    run_ingest(cfg, first)
    assert beside == []  # a fresh store: no second read of the file
    record = json.loads(next(Store(cfg.store).commits.glob("*.json")).read_text())
    assert record["digest"] == real(first) and record["bytes"] == first.stat().st_size
    other = write_csv(tmp_path, _rows([6] * 300, 500), "other.csv")  # another size: hashed as read
    run_ingest(cfg, other)
    assert beside == []
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes(first.read_bytes())  # the size of a committed file: hashed beside, stopped early
    again = run_ingest(cfg, renamed)
    assert beside == ["renamed.csv"] and (again["rows_accepted"], again["rows_duplicate"]) == (0, 200)
    for commit in Store(cfg.store).commits.glob("*.json"):  # records of older versions hold no size
        commit.write_text(json.dumps({k: v for k, v in json.loads(commit.read_text()).items() if k != "bytes"}))
    run_ingest(cfg, write_csv(tmp_path, _rows([7] * 50, 900), "third.csv"))
    assert beside == ["renamed.csv", "third.csv"]


def _timed(day: int, i: int) -> str:
    return f"2011-03-{day:02d} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d},A{i},1,2.5,u{i % 7}"


def test_a_csv_not_in_time_order_is_staged_through_the_spill_alone(tmp_path, monkeypatch):
    in_order = write_csv(tmp_path, [_timed(1 + i // 300, i) for i in range(3000)], "ordered.csv")
    exports = write_csv(tmp_path, [_timed(1 + i % 1500 // 150, i) for i in range(3000)], "exports.csv")  # two
    cfg = ingest_config(tmp_path, USER_COLUMNS, batch_rows=400)
    assert order.rises(in_order, cfg.ingest) is True and order.rises(exports, cfg.ingest) is False
    for change in ({"time_column": "t"}, {"timestamp_format": "%Y-%m-%d %H:%M:%S"}, {"format": "jsonl"}):
        assert order.rises(in_order, dataclasses.replace(cfg.ingest, **change)) is None
    opened = []
    real = staging.Staging._writer
    monkeypatch.setattr(staging.Staging, "_writer", lambda self, day: opened.append(day) or real(self, day))
    run_ingest(cfg, exports)
    assert opened == []  # no day file written during the read, to be read back and written again
    spilled = stored(cfg)
    monkeypatch.setattr(ingest, "rises", lambda path, cfg: None)  # as before: day files while days are new
    cfg = dataclasses.replace(cfg, store=str(tmp_path / "other"))
    run_ingest(cfg, exports)
    assert len(opened) > 0
    assert spilled.reset_index(drop=True).equals(stored(cfg).reset_index(drop=True))
    before = len(opened)
    run_ingest(cfg, in_order)
    assert len(set(opened[before:])) == 10  # a log in time order still writes its ten days as they come


def test_read_ahead_passes_errors_on_and_stops_its_thread_when_the_reader_stops():
    closed = threading.Event()

    def items(fail_at: int | None):
        try:
            for i in range(100):
                if i == fail_at:
                    raise ValueError(f"bad chunk {i}")
                yield i
        finally:
            closed.set()  # the generator's files would close here

    assert list(_ahead(items(None), "t")) == list(range(100))
    with pytest.raises(ValueError, match="bad chunk 3"):
        list(_ahead(items(3), "t"))
    closed.clear()
    ahead = _ahead(items(None), "t")
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()  # the consumer stops early: the producer is stopped and its generator closed
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "t"]
