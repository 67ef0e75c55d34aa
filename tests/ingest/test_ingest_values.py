"""Values a hostile probe slipped through or crashed ingest with (issue #20), and day-first times
(issue #19): nanosecond times, infinite and huge ids, NA item codes, control characters, values out
of range, booleans, timestamp_format and the config's checks of the new bounds."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import ConfigError, load_config
from pipeline.ingest.ingest import run_ingest
from tests.ingest.conftest import USER_COLUMNS, ingest_config, stored, write_csv


def _cfg(tmp_path, **ingest):
    return ingest_config(tmp_path, USER_COLUMNS, **ingest)


def test_nanosecond_times_are_read_to_the_microsecond_in_csv_and_jsonl(tmp_path):
    write_csv(tmp_path, ["2011-03-04 10:00:00.123456789,A1,1,1,u1", "2011-03-04 10:00:00,A2,1,1,u1"])
    (tmp_path / "e.jsonl").write_text(json.dumps({"ts": "2011-03-04 11:00:00.987654321", "item": "J", "qty": 1,
                                                  "price": 1, "cust": "u"}) + "\n")
    cfg = _cfg(tmp_path)
    assert run_ingest(cfg, tmp_path)["rows_accepted"] == 3
    times = sorted(str(t) for t in stored(cfg)[s.EVENT_TIME])
    assert times == ["2011-03-04 10:00:00+00:00", "2011-03-04 10:00:00.123456+00:00",
                     "2011-03-04 11:00:00.987654+00:00"]


def test_infinite_and_huge_customer_ids_in_parquet_and_jsonl(tmp_path):
    pd.DataFrame({"ts": ["2011-03-04 10:00:00"] * 4, "item": ["A", "B", "C", "D"], "qty": [1, 2, 3, 4],
                  "price": [1.0] * 4, "cust": [1e20, float(2**63), float("inf"), None]}).to_parquet(tmp_path / "e.parquet")
    records = [{"ts": "2011-03-04 12:00:00", "item": "J1", "qty": 1, "price": 1, "cust": float("inf")},
               {"ts": "2011-03-04 12:00:00", "item": "J2", "qty": 1, "price": 1, "cust": 2**63 + 1},
               {"ts": "2011-03-04 12:00:00", "item": "J3", "qty": 1, "price": 1, "cust": 17850.0}]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    cfg = _cfg(tmp_path)
    summary = run_ingest(cfg, tmp_path)
    assert summary["quarantine_reasons"] == {"bad_id": 2}
    users = dict(zip(stored(cfg)[s.ITEM_ID], stored(cfg)[s.USER_ID]))
    assert users["A"] == "100000000000000000000" and users["B"] == "9223372036854775808"  # two customers
    assert users["J2"] == "9223372036854775809" and users["J3"] == "17850" and pd.isna(users["D"])


def test_parquet_integer_ids_with_nulls_stay_exact(tmp_path):
    table = pa.table({"ts": ["2011-03-04 10:00:00"] * 3, "item": ["A", "B", "C"], "qty": [1, 1, 1],
                      "price": [1.0] * 3, "cust": pa.array([2**53 + 1, None, 2**62 + 1], pa.int64())})
    pq.write_table(table, tmp_path / "e.parquet")
    cfg = _cfg(tmp_path)
    run_ingest(cfg, tmp_path / "e.parquet")
    assert stored(cfg)[s.USER_ID].tolist()[::2] == [str(2**53 + 1), str(2**62 + 1)]


def test_na_like_item_codes_are_text_in_csv(tmp_path):
    cfg = _cfg(tmp_path)
    run_ingest(cfg, write_csv(tmp_path, [f"2011-03-04 10:00:0{i},{code},1,1,NA" for i, code in
                                    enumerate(["NA", "NULL", "#N/A", "nan", "None"])]))
    raw = stored(cfg)
    assert raw[s.ITEM_ID].tolist() == ["NA", "NULL", "#N/A", "nan", "None"] and (raw[s.USER_ID] == "NA").all()


@pytest.mark.parametrize("item,reason", [("A\x00B", "bad_id"), ("A\tB", "bad_id"), ("A\x85B", "bad_id"),
                                         ("x" * 257, "bad_id"), ("x" * 256, "")])
def test_control_characters_and_long_item_ids_are_refused(tmp_path, item, reason):
    cfg = _cfg(tmp_path)
    summary = run_ingest(cfg, write_csv(tmp_path, [f'2011-03-04 10:00:00,"{item}",1,1,u', "2011-03-04,OK,1,1,u"]))
    assert summary["quarantine_reasons"] == ({reason: 1} if reason else {})


@pytest.mark.parametrize("qty,price,accepted", [("1e300", "1", False), ("1", "1e300", False),
                                                 ("-1e300", "1", False), ("1000000", "10000000", True)])
def test_huge_quantities_and_prices_are_out_of_range(tmp_path, qty, price, accepted):
    cfg = _cfg(tmp_path, returns="keep")
    summary = run_ingest(cfg, write_csv(tmp_path, [f"2011-03-04,A,{qty},{price},u", "2011-03-04,OK,1,1,u"]))
    assert summary["quarantine_reasons"] == ({} if accepted else {"out_of_range": 1})


def test_event_dates_bounded_by_the_ingest_day_and_min_event_date(tmp_path):
    today = pd.Timestamp.now(tz="UTC").normalize()
    rows = [f"{(today + pd.Timedelta(days=d)).date()} 12:00:00,A{d},1,1,u" for d in (0, 1, 2, 30)]
    rows += ["2050-01-01,B,1,1,u", "2099-12-31,C,1,1,u", "1999-12-31,D,1,1,u", "2000-01-01,E,1,1,u"]
    cfg = _cfg(tmp_path, min_event_date="2000-01-01")
    summary = run_ingest(cfg, write_csv(tmp_path, rows))
    assert summary["quarantine_reasons"] == {"timestamp_out_of_range": 5}
    assert sorted(stored(cfg)[s.ITEM_ID]) == ["A0", "A1", "E"]


def test_a_jsonl_batch_of_booleans_is_not_read_as_quantities(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps({"ts": "2011-03-04", "item": "A", "qty": True, "price": 1, "cust": "u"}) + "\n"
                            for _ in range(3)))
    summary = run_ingest(_cfg(tmp_path), path)
    assert (summary["rows_accepted"], summary["quarantine_reasons"]) == (0, {"wrong_type": 3})


def test_day_first_times_with_timestamp_format(tmp_path):
    rows = ["01/12/2010 08:26,A,1,1,u", "13/12/2010 23:59,B,1,1,u", "2010-12-01 08:26,C,1,1,u"]
    cfg = _cfg(tmp_path, timestamp_format="%d/%m/%Y %H:%M", timezone="Europe/London")
    summary = run_ingest(cfg, write_csv(tmp_path, rows))
    assert summary["quarantine_reasons"] == {"bad_timestamp": 1}
    assert [str(t) for t in stored(cfg)[s.EVENT_TIME]] == ["2010-12-01 08:26:00+00:00", "2010-12-13 23:59:00+00:00"]


def test_config_checks_the_new_ingest_bounds(tmp_path):
    toml = tmp_path / "c.toml"
    for line, match in [("max_reject_share = 1.5", "max_reject_share must be in"),
                        ('min_event_date = "soon"', "min_event_date must be a date"),
                        ('timestamp_format = "dd/mm/yyyy"', "strptime syntax")]:
        toml.write_text(f"[ingest]\n{line}\n")
        with pytest.raises(ConfigError, match=match):
            load_config(toml)
