"""Ingest on a hand-made log whose every row's fate is known, plus the real demo data."""

import dataclasses
import json
import threading
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import IngestError, run_ingest
from pipeline.store import Store
from tests.conftest import DEMO_CONFIG, DEMO_EVENTS

HEADER = "ts,item,qty,price,customer,invoice,desc"
ROWS = [
    "2024-03-01 10:00:00,A1,2,1.5,u1,i1,RED MUG",  # good -> kitchen
    "2024-03-01 11:00:00,A2,1,3.0,,i1,XMAS TREE",  # good, guest checkout -> christmas
    "2024-03-02T09:00:00+01:00,A1,3,1.5,u2,i2,RED MUG",  # good, ISO with offset (08:00 UTC)
    "not-a-date,A1,1,1.0,u3,i3,RED MUG",  # line 5: bad_timestamp
    "2024-03-02 12:00:00,,1,1.0,u3,i3,RED MUG",  # missing_field item
    "2024-03-02 12:00:00,A3,abc,1.0,u3,i3,THING",  # non_numeric qty
    "2024-03-02 12:00:00,A3,1,inf,u3,i3,THING",  # non_finite price
    "2024-03-03 12:00:00,A3,-2,1.0,u3,C4,THING",  # return
    "2024-03-03 12:00:00,A3,1,-5,u3,i5,THING",  # negative_price
    "1850-01-01 00:00:00,A3,1,1,u3,i6,THING",  # timestamp_out_of_range
]
EXPECTED_REASONS = {
    5: "bad_timestamp", 6: "missing_field", 7: "non_numeric", 8: "non_finite",
    9: "return", 10: "negative_price", 11: "timestamp_out_of_range",
}


@pytest.fixture
def cfg(tmp_path):
    ingest = IngestConfig(
        columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                 "user_id": "customer", "order_id": "invoice"},
        timezone="Europe/London", segment_default="other", segment_from="desc",
        segment_rules=(("christmas", "XMAS"), ("kitchen", "MUG")),
        max_reject_share=1.0,  # this log is bad on purpose: 7 of its 10 rows
    )
    return dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)


@pytest.fixture
def events_csv(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def _raw(cfg) -> pd.DataFrame:
    files = Store(cfg.store).committed_raw_files()
    return pd.concat([pq.read_table(f).to_pandas() for f in files]).sort_values(s.SOURCE_LINE)


def test_every_row_stored_or_quarantined_with_its_reason(cfg, events_csv):
    summary = run_ingest(cfg, events_csv)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (10, 3, 7)
    raw = _raw(cfg)
    assert raw[s.SOURCE_LINE].tolist() == [2, 3, 4]
    assert raw[s.SEGMENT].tolist() == ["kitchen", "christmas", "kitchen"]
    assert raw[s.USER_ID].iloc[0] == "u1" and pd.isna(raw[s.USER_ID].iloc[1])
    assert raw[s.EVENT_DATE].tolist() == [date(2024, 3, 1), date(2024, 3, 1), date(2024, 3, 2)]
    assert str(raw[s.EVENT_TIME].iloc[2]) == "2024-03-02 08:00:00+00:00"
    assert raw[s.QUANTITY].sum() == 6 and raw[s.PRICE].tolist() == [1.5, 3.0, 1.5]
    bad = pq.read_table(next(Store(cfg.store).quarantine.glob("*.parquet"))).to_pandas()
    got = dict(zip(bad[s.SOURCE_LINE], bad[s.REASON].str.split(":").str[0]))
    assert got == EXPECTED_REASONS
    assert bad.set_index(s.SOURCE_LINE).loc[5, s.RAW_ROW] == "not-a-date,A1,1,1.0,u3,i3,RED MUG"  # its text, not JSON
    assert (bad[s.SOURCE_FILE] == "events.csv").all()


def test_returns_can_be_kept_as_negative_demand(cfg, events_csv):
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, returns="keep"))
    summary = run_ingest(cfg, events_csv)
    assert summary["rows_accepted"] == 4
    assert _raw(cfg)[s.QUANTITY].min() == -2


def test_parquet_source_with_typed_columns(cfg, events_csv, tmp_path):
    df = pd.read_csv(events_csv).iloc[[0, 1, 3]]
    path = tmp_path / "events.parquet"
    df.to_parquet(path)
    summary = run_ingest(cfg, path)
    assert (summary["rows_accepted"], summary["rows_quarantined"]) == (2, 1)


def test_reingest_adds_nothing(cfg, events_csv):
    run_ingest(cfg, events_csv)
    again = run_ingest(cfg, events_csv)
    assert (again["rows_accepted"], again["rows_duplicate"], again["rows_quarantined"]) == (0, 3, 7)
    assert len(_raw(cfg)) == 3
    assert len(list(Store(cfg.store).quarantine.glob("*.parquet"))) == 1


def test_missing_column_fails_naming_file_and_column_and_writes_nothing(cfg, tmp_path):
    path = tmp_path / "no_price.csv"
    path.write_text("ts,item,qty,customer,invoice,desc\n2024-03-01 10:00:00,A1,2,u1,i1,MUG\n")
    with pytest.raises(IngestError, match=r"no_price\.csv: column 'price' \(for price\) not found") as err:
        run_ingest(cfg, path)
    # the message says where to fix it: the mapping, or the default a shop without prices can use
    assert "[ingest.columns]" in str(err.value) and "price_default" in str(err.value)
    assert Store(cfg.store).committed_raw_files() == []
    assert list(Store(cfg.store).quarantine.glob("*")) == []


def test_a_write_failing_on_the_writer_thread_raises_and_leaves_the_store_untouched(cfg, events_csv, monkeypatch):
    write_table = pq.ParquetWriter.write_table

    def full_disk(self, table, *args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # the staging writer thread only
            raise OSError(28, "No space left on device")
        return write_table(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_ingest(cfg, events_csv)
    store = Store(cfg.store)
    assert store.committed_raw_files() == [] and list(store.quarantine.glob("*")) == []
    assert not store.ingest_staging.exists() or not any(store.ingest_staging.iterdir())
    monkeypatch.undo()
    assert run_ingest(cfg, events_csv)["rows_accepted"] == 3  # and the next run completes the work


def test_empty_file_fails(cfg, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + "\n")
    with pytest.raises(IngestError, match="empty.csv: the file holds no rows"):
        run_ingest(cfg, path)
    assert Store(cfg.store).committed_raw_files() == []


def test_not_a_parquet_file_fails(cfg, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(IngestError, match="broken.parquet: cannot be read as parquet"):
        run_ingest(cfg, path)


def test_missing_source(cfg, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        run_ingest(cfg, tmp_path / "nothing-*.csv")


def test_directory_source_ingests_each_file(cfg, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.csv").write_text("\n".join([HEADER, ROWS[0]]) + "\n")
    (folder / "b.csv").write_text("\n".join([HEADER, ROWS[1], ROWS[3]]) + "\n")
    summary = run_ingest(cfg, folder)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (3, 2, 1)


@pytest.mark.slow
def test_online_retail_counts_match_provenance(tmp_path):
    """PROVENANCE.md: 541,909 rows; 10,624 with Quantity < 0; 2 with UnitPrice -11,062.06."""
    cfg = load_config(DEMO_CONFIG, store=str(tmp_path))
    cfg = dataclasses.replace(cfg, ingest=dataclasses.replace(cfg.ingest, returns="quarantine"))
    summary = run_ingest(cfg, DEMO_EVENTS)
    assert summary["rows_in"] == 541_909
    assert summary["quarantine_reasons"] == {"return": 10_624, "negative_price": 2}
    assert summary["rows_accepted"] == 541_909 - 10_626
    assert summary["rows_duplicate"] == 0  # the 5,268 exact repeats are kept: occurrence is in the event key
