"""Epoch times: "auto" tells seconds, milliseconds, microseconds and nanoseconds apart by their digits,
in JSON lines, CSV and parquet, in UTC and in Europe/Berlin; a wrong unit or an impossible value is
quarantined with one reason naming the setting that reads it right, never a traceback."""

import json
from datetime import date

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.ingest.epochs import auto_units, unit_of
from pipeline.ingest.ingest import run_ingest
from tests.ingest.conftest import ingest_config, quarantined, stored

COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price"}
EPOCHS = {"s": 1709287200, "ms": 1709287200000, "us": 1709287200000000, "ns": 1709287200000000000}


def _jsonl(tmp_path, values, name="e.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"ts": v, "item": f"A{i}", "qty": 1, "price": 1}) + "\n"
                            for i, v in enumerate(values)))
    return path


def _ingest(tmp_path, path, **ingest):
    cfg = ingest_config(tmp_path, COLUMNS, **ingest)
    return cfg, run_ingest(cfg, path)


def test_the_auto_unit_rule_by_digits():
    assert [unit_of(v) for v in EPOCHS.values()] == list(EPOCHS)
    assert [unit_of(v) for v in (99_999_999_999, 100_000_000_000, 10**14, 10**17, 10**19, -1709287200)] == \
        ["s", "ms", "us", "ns", "", "s"]
    assert list(auto_units(pd.Series([float("nan"), 1.5]).to_numpy())) == ["", "s"]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
def test_auto_reads_every_unit_in_jsonl_csv_and_parquet(tmp_path, timezone):
    values = [*EPOCHS.values(), 1709287200.5, "1709287200000"]
    csv = tmp_path / "e.csv"
    csv.write_text("ts,item,qty,price\n" + "".join(f"{v},C{i},1,1\n" for i, v in enumerate(EPOCHS.values())))
    parquet = tmp_path / "e.parquet"
    pd.DataFrame({"ts": list(EPOCHS.values()), "item": list("PQRS"), "qty": 1, "price": 1.0}).to_parquet(parquet)
    for path in (_jsonl(tmp_path, values), csv, parquet):
        cfg, summary = _ingest(tmp_path, path, timezone=timezone, max_future_days=10_000)
        assert summary["rows_quarantined"] == 0, quarantined(cfg)[s.REASON].tolist()
    times = stored(cfg)[s.EVENT_TIME]
    assert set(times) == {pd.Timestamp("2024-03-01 10:00", tz="UTC"), pd.Timestamp("2024-03-01 10:00:00.5", tz="UTC")}
    assert len(times) == 6 + 4 + 4
    assert set(stored(cfg)[s.EVENT_DATE]) == {date(2024, 3, 1)}  # 11:00 in Berlin, still the 1st


def test_nanoseconds_are_cut_to_the_microsecond_exactly(tmp_path):
    cfg, _ = _ingest(tmp_path, _jsonl(tmp_path, [1709287200123456789]), timestamp_unit="ns", max_future_days=10_000)
    assert str(stored(cfg)[s.EVENT_TIME].iloc[0]) == "2024-03-01 10:00:00.123456+00:00"


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
def test_milliseconds_read_as_seconds_are_refused_naming_the_setting(tmp_path, timezone):
    cfg, summary = _ingest(tmp_path, _jsonl(tmp_path, [EPOCHS["ms"], EPOCHS["s"]]), timezone=timezone,
                           timestamp_unit="s")
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"timestamp_out_of_range": 1})
    reason = quarantined(cfg)[s.REASON].iloc[0]
    assert reason.startswith("timestamp_out_of_range: ts=1709287200000 is 56135-")
    assert "(read as epoch seconds); its 13 digits look like milliseconds" in reason
    assert reason.endswith('set [ingest] timestamp_unit = "ms" (or "auto")') and "\n" not in reason


@pytest.mark.parametrize("unit,value,expected", [
    ("ms", EPOCHS["ns"], 'timestamp_unit = "ns"'),  # far beyond any time: not a timestamp at all
    ("us", EPOCHS["s"], 'timestamp_unit = "s"'),  # 1970-01-20: before min_event_date
    ("iso", EPOCHS["ms"], 'timestamp_unit = "ms"'),
    ("ms", "2024-03-01 10:00", 'timestamp_unit = "auto"'),
])
def test_a_wrong_unit_in_berlin_is_one_quarantined_row_with_the_fix(tmp_path, unit, value, expected):
    cfg, summary = _ingest(tmp_path, _jsonl(tmp_path, [value]), timezone="Europe/Berlin", timestamp_unit=unit)
    assert summary["rows_quarantined"] == 1
    assert expected in quarantined(cfg)[s.REASON].iloc[0]


@pytest.mark.parametrize("value,reason", [
    (10**20, "an epoch number has at most 19 digits, this one has 21"),
    (-10**18, "before 1990-01-01 (min_event_date) (read as epoch nanoseconds by its 19 digits)"),
    (123, "is 1970-01-01 00:02:03 UTC, before 1990-01-01 (min_event_date) (read as epoch seconds by its 3 digits)"),
    (4102444800, "is 2100-01-01 00:00:00 UTC, after"),
    (float("inf"), "is not a timestamp"),
])
def test_out_of_range_epochs_are_quarantined_in_berlin(tmp_path, value, reason):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"ts": value, "item": "A", "qty": 1, "price": 1}).replace("Infinity", "1e999") + "\n")
    cfg, summary = _ingest(tmp_path, path, timezone="Europe/Berlin")
    assert summary["rows_quarantined"] == 1
    assert reason in quarantined(cfg)[s.REASON].iloc[0]


def test_short_digit_text_stays_a_date(tmp_path):
    csv = tmp_path / "e.csv"
    csv.write_text("ts,item,qty,price\n20240301,A,1,1\n")
    cfg, summary = _ingest(tmp_path, csv, timezone="Europe/Berlin")
    assert summary["rows_accepted"] == 1 and str(stored(cfg)[s.EVENT_TIME].iloc[0]) == "2024-02-29 23:00:00+00:00"


def test_a_parquet_timestamp_beyond_year_9999_is_quarantined_in_berlin(tmp_path):
    path = tmp_path / "e.parquet"
    far = pd.Series(pd.to_datetime(["2024-03-01 10:00", "2024-03-01 11:00"])).astype("datetime64[us]")
    far.iloc[1] = pd.Timestamp("2024-03-01").as_unit("us") + pd.Timedelta(days=3_000_000)
    pd.DataFrame({"ts": far, "item": ["A", "B"], "qty": 1, "price": 1.0}).to_parquet(path)
    cfg, summary = _ingest(tmp_path, path, timezone="Europe/Berlin", max_future_days=10_000)
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (1, {"timestamp_out_of_range": 1})
