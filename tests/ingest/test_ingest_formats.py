"""Ingest reads every supported format and mapping: CSV dialects, JSON lines, parquet, gzip, epoch
units, separate date and time columns, an event-type filter, returns dropped, missing measures."""

import gzip
import json
from datetime import date

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import ConfigError, load_config
from pipeline.ingest.ingest import IngestError, run_ingest
from pipeline.store import Store
from tests.conftest import ROOT
from tests.ingest.conftest import ingest_config, quarantined, stored

BAKERY = ROOT.parent / "shared" / "data" / "bakery_breadbasket" / "BreadBasket_DMS.parquet"
BAKERY_HEAD = ROOT / "tests" / "data" / "bakery_head.csv"  # first 300 rows of BAKERY, CRLF as the original
COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price"}


def _cfg(tmp_path, **ingest):
    return ingest_config(tmp_path, ingest.pop("columns", COLUMNS), **ingest)


_raw, _quarantine = stored, quarantined


def test_csv_dialect_bom_crlf_semicolon_quotes_gzip(tmp_path):
    text = '\ufeffts;item;qty;price\r\n2024-03-01 10:00:00;"A;1";2;1.5\r\n2024-03-01 11:00:00;A2;1\r\n'
    path = tmp_path / "events.csv.gz"
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    cfg = _cfg(tmp_path, csv_delimiter=";")
    summary = run_ingest(cfg, path)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (2, 1, 1)
    assert _raw(cfg)[s.ITEM_ID].tolist() == ["A;1"]  # the BOM did not end up in the first column's name
    bad = _quarantine(cfg)
    assert bad[s.REASON].str.startswith("malformed_row").all() and bad[s.SOURCE_LINE].tolist() == [3]
    assert bad[s.RAW_ROW].iloc[0] == "2024-03-01 11:00:00;A2;1"


def test_malformed_csv_rows_keep_later_line_numbers_right(tmp_path):
    rows = ["2024-03-01 10:00:00,A1,1,1", "x,y", "2024-03-01 10:00:00,A2,1,1", "1,2,3,4,5", "bad,A3,1,1"]
    path = tmp_path / "e.csv"
    path.write_text("ts,item,qty,price\n" + "\n".join(rows) + "\n")
    cfg = _cfg(tmp_path)
    run_ingest(cfg, path)
    assert _raw(cfg)[s.SOURCE_LINE].tolist() == [2, 4]
    assert sorted(_quarantine(cfg)[s.SOURCE_LINE]) == [3, 5, 6]


def test_headerless_csv_with_column_names(tmp_path):
    path = tmp_path / "e.txt"
    path.write_text("2024-03-01 10:00:00,A1,1,2\n")
    cfg = _cfg(tmp_path, csv_header=False, csv_column_names=("ts", "item", "qty", "price"))
    assert run_ingest(cfg, path)["rows_accepted"] == 1
    assert _raw(cfg)[s.SOURCE_LINE].tolist() == [1]


@pytest.mark.parametrize("unit,value", [("s", 1709287200), ("ms", 1709287200000), ("us", 1709287200000000)])
def test_epoch_timestamps_in_jsonl_gzip(tmp_path, unit, value):
    lines = [json.dumps({"ts": value, "item": "A1", "qty": 1, "price": 2.5}),
             "{not json", json.dumps({"ts": "soon", "item": "A1", "qty": 1, "price": 1}),
             json.dumps({"ts": value, "item": {"nested": 1}, "qty": 1, "price": 1})]
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    cfg = _cfg(tmp_path, timestamp_unit=unit)
    summary = run_ingest(cfg, path)
    assert (summary["rows_in"], summary["rows_accepted"]) == (4, 1)
    assert summary["quarantine_reasons"] == {"malformed_row": 1, "bad_timestamp": 1, "wrong_type": 1}
    assert str(_raw(cfg)[s.EVENT_TIME].iloc[0]) == "2024-03-01 10:00:00+00:00"
    assert _quarantine(cfg).set_index(s.SOURCE_LINE).loc[2, s.RAW_ROW] == "{not json"


def test_iso_offsets_and_naive_in_zone(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("ts,item,qty,price\n2024-07-01T23:30:00Z,A,1,1\n2024-07-01 23:30:00,A,1,1\n"
                    "2024-07-02T01:30:00+02:00,A,1,1\n")
    cfg = _cfg(tmp_path, timezone="Europe/London")
    run_ingest(cfg, path)
    raw = _raw(cfg)
    assert [str(t) for t in raw[s.EVENT_TIME]] == ["2024-07-01 23:30:00+00:00", "2024-07-01 22:30:00+00:00",
                                                  "2024-07-01 23:30:00+00:00"]
    assert raw[s.EVENT_DATE].tolist() == [date(2024, 7, 2), date(2024, 7, 1), date(2024, 7, 2)]


def test_event_type_filter_and_dropped_returns_are_counted(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("ts,item,qty,price,kind\n2024-03-01,A,1,1,purchase\n2024-03-01,A,1,1,view\n"
                    "2024-03-01,A,-1,1,purchase\n2024-03-01,A,x,1,cart\n")
    cfg = _cfg(tmp_path, event_type_column="kind", event_types=("purchase",), returns="drop")
    summary = run_ingest(cfg, path)
    assert {k: summary[k] for k in ("rows_in", "rows_accepted", "rows_filtered", "rows_dropped",
                                     "rows_quarantined")} == {"rows_in": 4, "rows_accepted": 1, "rows_filtered": 2,
                                                              "rows_dropped": 1, "rows_quarantined": 0}


def test_parquet_gzip_source(tmp_path):
    plain = tmp_path / "e.parquet"
    pd.DataFrame({"ts": ["2024-03-01 10:00:00", "nope"], "item": ["A", "B"], "qty": [1, 2],
                  "price": [1.0, 2.0]}).to_parquet(plain)
    path = tmp_path / "e.parquet.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    summary = run_ingest(_cfg(tmp_path), path)
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"bad_timestamp": 1})


@pytest.mark.parametrize("name,content,match", [
    ("trunc.csv.gz", gzip.compress(b"ts,item,qty,price\n" + b"".join(b"2024-03-01,A%d,1,1\n" % i for i in range(5000)))[:-9],
     r"trunc\.csv\.gz: cannot be read as csv \(gzip\)"),
    ("bin.csv", b"ts,item,qty,price\n\xff\xfe\x00garbage\n", r"bin\.csv: cannot be read as csv"),
    ("pq.csv", (ROOT / "data" / "demo" / "online_retail.parquet").read_bytes()[:100_000],
     r"pq\.csv: cannot be read as csv"),
    ("notgz.jsonl.gz", b"plain text", r"notgz\.jsonl\.gz: cannot be read as jsonl \(gzip\)"),
    ("x.xlsx", b"PK", r"x\.xlsx: unknown format"),
])
def test_unreadable_file_fails_once_and_leaves_store_untouched(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    cfg = _cfg(tmp_path)
    store = Store(cfg.store).ensure()  # a store in use (a fresh one is removed: see the test below)
    with pytest.raises(IngestError, match=match):
        run_ingest(cfg, path)
    assert store.committed_raw_files() == [] and list(store.quarantine.iterdir()) == []
    assert not any(p.is_file() for p in store.raw.rglob("*"))


def test_config_rejects_unknown_rules(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[ingest]\nreturns = "ignore"\n')
    with pytest.raises(ConfigError, match="ingest.returns must be one of keep, drop, quarantine"):
        load_config(toml)


BAKERY_MAPPING = {"columns": {"event_time": "Date", "item_id": "Item", "order_id": "Transaction",
                              "segment": "Item"},
                  "time_column": "Time", "timezone": "Europe/London", "quantity_default": 1.0,
                  "price_default": 0.0}


def test_bakery_slice_date_and_time_columns(tmp_path):
    """tests/data/bakery_head.csv: 300 rows, 22 exact repeats (one item bought twice), 2 days."""
    cfg = _cfg(tmp_path, **BAKERY_MAPPING)
    summary = run_ingest(cfg, BAKERY_HEAD)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_duplicate"]) == (300, 300, 0)
    raw = _raw(cfg)
    assert raw[s.EVENT_DATE].nunique() == 2 and raw[s.QUANTITY].sum() == 300 and (raw[s.PRICE] == 0).all()
    assert str(raw[s.EVENT_TIME].iloc[0]) == "2016-10-30 09:58:11+00:00"  # GMT again since 01:00 that day


@pytest.mark.skipif(not BAKERY.exists(), reason="needs ../shared/data/bakery_breadbasket (not in a clone)")
def test_bakery_counts_match_provenance(tmp_path):
    """PROVENANCE.md: 21,293 rows on 159 days; 1,653 exact duplicates are repeated purchases, kept."""
    cfg = _cfg(tmp_path, **BAKERY_MAPPING)
    summary = run_ingest(cfg, BAKERY)
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (21_293, 21_293, 0)
    raw = _raw(cfg)
    assert raw[s.EVENT_DATE].nunique() == 159 and raw[s.SEGMENT].value_counts()["Coffee"] == 5_471
    again = run_ingest(cfg, BAKERY_HEAD)  # the same rows as CSV: a different file, every row a duplicate
    assert (again["rows_accepted"], again["rows_duplicate"]) == (0, 300)


def test_a_truncated_json_line_is_named_apart_from_a_json_value_that_is_no_object(tmp_path):
    good = json.dumps({"ts": "2024-03-01 10:00:00", "item": "A", "qty": 1, "price": 1})
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([good, good[:25], "[1, 2]", "42", good]) + "\n")
    cfg = _cfg(tmp_path)
    assert run_ingest(cfg, path)["quarantine_reasons"] == {"malformed_row": 3}
    reasons = _quarantine(cfg).set_index(s.SOURCE_LINE)[s.REASON].to_dict()
    assert reasons == {2: "malformed_row: truncated or invalid JSON", 3: "malformed_row: not a JSON object (an array)",
                       4: "malformed_row: not a JSON object (a number)"}


@pytest.mark.parametrize("name,content,match", [
    ("missing.jsonl", None, "no such file"),
    ("cols.csv", "a,b\n1,2\n", "column 'ts' \\(for event_time\\)"),
    ("bad.csv", "ts,item,qty,price\nsoon,A,1,1\n", "more than max_reject_share"),
])
def test_a_failed_ingest_onto_a_new_store_leaves_no_store_folder(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    cfg = _cfg(tmp_path, max_reject_share=0.5)
    with pytest.raises(IngestError, match=match):
        run_ingest(cfg, path)
    assert not (tmp_path / "store").exists()
    good = tmp_path / "good.csv"
    good.write_text("ts,item,qty,price\n2024-03-01 10:00:00,A,1,1\n")
    run_ingest(cfg, good)
    with pytest.raises(IngestError, match=match):  # a store in use stays, with what it holds
        run_ingest(cfg, path)
    assert len(_raw(cfg)) == 1
