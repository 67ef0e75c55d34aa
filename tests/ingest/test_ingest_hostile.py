"""Issue 31's ingest items: pandas' 17850.0 ids, Unicode spaces at an id's edge, one bad row costing
only itself (a parquet time past 2262 or 9999, a deeply nested JSON line), far-future dates, a CSV
row's original text in quarantine, a repeat split over the files of one drop; and what the fuzz harness
(benchmarks/ingest_fuzz.py) found: a JSON line that is not UTF-8 or holds a lone surrogate escape, a
database client's re-export with \\N for NULL.

    .venv/bin/python -m pytest tests/ingest/test_ingest_hostile.py -q
"""

import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.ingest.ingest import run_ingest
from tests.ingest.conftest import USER_COLUMNS, ingest_config, quarantined, stored, write_csv

COUNTERS = ("rows_accepted", "rows_quarantined", "rows_duplicate", "rows_filtered", "rows_dropped")


def _ingest(cfg, source) -> dict:
    summary = run_ingest(cfg, source)
    assert summary["rows_in"] == sum(summary[k] for k in COUNTERS)
    return summary


def test_a_pandas_reexport_with_float_ids_adds_nothing(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    rows = ["2011-03-01 10:00:00,A,1,1.5,17850", "2011-03-01 11:00:00,B,2,2.5,13047"]
    _ingest(cfg, write_csv(tmp_path, rows))
    export = pd.read_csv(write_csv(tmp_path, [*rows, "2011-03-01 12:00:00,C,1,1.0,"], "with_gap.csv"))
    export.to_csv(tmp_path / "again.csv", index=False)  # a column with a gap: pandas writes 17850.0
    assert "17850.0" in (tmp_path / "again.csv").read_text()
    summary = _ingest(cfg, tmp_path / "again.csv")
    assert (summary["rows_accepted"], summary["rows_duplicate"]) == (1, 2)
    assert sorted(stored(cfg)[s.USER_ID].dropna()) == ["13047", "17850"]


def test_unicode_spaces_at_an_id_edge_are_refused_and_plain_spaces_stripped(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    rows = ["2011-03-01 10:00:00,A,1,1,17850", "2011-03-01 10:00:00,A,1,1,17850\x85",
            "2011-03-01 10:00:00,A,1,1,\xa017850", "2011-03-01 10:00:00,A,1,1,17850\u2028",
            "2011-03-01 11:00:00,A,1,1, 17850 "]
    summary = _ingest(cfg, write_csv(tmp_path, rows))
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (2, {"bad_id": 3})
    assert stored(cfg)[s.USER_ID].tolist() == ["17850", "17850"]
    json_path = tmp_path / "e.jsonl"
    json_path.write_text('{"ts":"2011-03-02 10:00:00","item":"A","qty":1,"price":1,"cust":"17850\\u0085"}\n'
                         '{"ts":"2011-03-02 10:00:00","item":"A","qty":1,"price":1,"cust":17850.0}\n')
    summary = _ingest(cfg, json_path)
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"bad_id": 1})


def test_one_bad_parquet_time_or_json_line_costs_only_itself(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    times = [datetime.datetime(2011, 1, 1), datetime.datetime(2300, 1, 1), datetime.datetime(9999, 6, 1)]
    pq.write_table(pa.table({"ts": pa.array(times, pa.timestamp("us")), "item": ["a", "b", "c"], "qty": [1] * 3,
                             "price": [1.0] * 3, "cust": ["1", "2", "3"]}), tmp_path / "e.parquet")
    summary = _ingest(cfg, tmp_path / "e.parquet")
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"timestamp_out_of_range": 2})
    assert "beyond the year 9998" in " ".join(quarantined(cfg)[s.REASON])
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "e.jsonl").write_text('{"ts":"2011-01-02","item":"a","qty":1,"price":1,"cust":"1"}\n'
                                      + deep + "\n" + '{"a":' * 50_000 + "1" + "}" * 50_000 + "\n")
    summary = _ingest(cfg, tmp_path / "e.jsonl")
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"malformed_row": 2})


def test_far_future_text_dates_are_out_of_range(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    summary = _ingest(cfg, write_csv(tmp_path, ["9999-06-01 10:00:00,A,1,1,u", "2011-03-01 10:00:00,A,1,1,u"]))
    assert summary["quarantine_reasons"] == {"timestamp_out_of_range": 1}


def test_a_csv_row_refused_by_validation_keeps_its_text(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    _ingest(cfg, write_csv(tmp_path, ['2011-03-01 10:00:00,"A, red",x,1,u', "2011-03-01 10:00:00,A,1,1,u"]))
    assert quarantined(cfg)[s.RAW_ROW].tolist() == ['2011-03-01 10:00:00,"A, red",x,1,u']


def test_a_json_line_that_is_not_utf8_or_holds_a_lone_surrogate_costs_only_itself(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    good = b'{"ts":"2011-03-01 10:00:00","item":"A","qty":1,"price":1,"cust":"u"}\n'
    (tmp_path / "e.jsonl").write_bytes(good + b'{"ts":"2011-03-01 10:00:00","item":"A\xff","qty":1,"price":1}\n'
                                       + b'{"ts":"2011-03-01 10:00:00","item":"B\\ud800","qty":1,"price":1}\n'
                                       + good.replace(b'"A"', b'"\\ud83d\\ude00"'))  # a whole pair is a character
    summary = _ingest(cfg, tmp_path / "e.jsonl")
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (2, {"bad_encoding": 2})
    assert stored(cfg)[s.ITEM_ID].tolist() == ["A", "\U0001F600"]
    refused = quarantined(cfg)
    assert refused[s.SOURCE_LINE].tolist() == [2, 3] and "\\xff" in refused[s.RAW_ROW].iloc[0]
    assert refused[s.REASON].iloc[0] == "bad_encoding: invalid UTF-8 byte 0xff at character 37 of the line"


def test_a_database_clients_reexport_with_backslash_n_nulls_adds_nothing(tmp_path):
    """Every field quoted, \\N for NULL (a guest), ISO times with a T and another zone: the same rows."""
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    _ingest(cfg, write_csv(tmp_path, ["2011-03-01 10:00:00,A,1,1.5,17850", "2011-03-01 11:00:00,B,2,2.5,"]))
    again = write_csv(tmp_path, ['"2011-03-01T11:00:00.000000+01:00","A","1.000","1.5000","17850"',
                                 '"2011-03-01T12:00:00.000000+01:00","B","2.000","2.5000",\\N',
                                 '"2011-03-01T12:00:00.000000+01:00","\\N","2.000","2.5000","\\N"'], "dump.csv")
    summary = _ingest(cfg, again)
    assert (summary["rows_accepted"], summary["rows_duplicate"]) == (0, 2)
    assert summary["quarantine_reasons"] == {"missing_field": 1}  # an item that is NULL is missing
    assert stored(cfg)[s.USER_ID].fillna("<null>").tolist() == ["17850", "<null>"]
