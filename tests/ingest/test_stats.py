"""The statistics record each committed ingest writes (pipeline.ingest.stats), counted by hand on a tiny log."""

import json

import pytest

from pipeline.ingest.ingest import run_ingest
from pipeline.ingest.stats import ensure_ingest_stats, read_ingest_stats
from pipeline.store import Store
from tests.ingest.conftest import ingest_config

COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust",
           "order_id": "order", "segment": "seg"}
HEADER = "ts,item,qty,price,cust,order,seg"


def _csv(tmp_path, rows, name):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


DAY1 = ["2024-01-01 09:30:00,a,1,2.0,u1,o1,bread", "2024-01-01 09:30:00,b,2,4.0,u1,o1,cakes",
        "2024-01-01 14:10:00,a,1,2.0,,o2,bread"]
DAY2 = ["2024-01-02 10:00:00,a,3,2.0,u2,o3,bread", "2024-01-02 10:00:00,c,1,6.0,u2,o3,bread"]


def test_the_record_of_an_ingest_counted_by_hand(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    run_ingest(cfg, _csv(tmp_path, DAY1 + DAY2, "log.csv"))
    [record] = read_ingest_stats(Store(cfg.store))
    assert record["rows"] == 5
    day1, day2 = record["days"]
    assert day1 == {"date": "2024-01-01", "rows": 3, "orders": 2, "customers": 1, "guest_share": pytest.approx(1 / 3),
                    "items": 2, "new_item_share": 1.0, "segments": 2}
    # a is known from day 1, c is new: half of the day's items
    assert day2 == {"date": "2024-01-02", "rows": 2, "orders": 1, "customers": 1, "guest_share": 0.0,
                    "items": 2, "new_item_share": 0.5, "segments": 1}
    price = record["numeric"]["price"]
    assert (price["count"], price["quantiles"]["0.0"], price["quantiles"]["0.5"], price["quantiles"]["1.0"]) == (5, 2.0, 2.0, 6.0)
    assert sum(price["histogram"]["counts"]) == 5
    segments = record["categorical"]["segment"]
    assert segments["distinct"] == 2 and segments["top"][0] == {"value": "bread", "share": 0.8}
    hours = {t["value"]: t["share"] for t in record["categorical"]["hour"]["top"]}
    assert hours == {"9": 0.4, "14": 0.2, "10": 0.4}
    assert record["schema"]["mapped_from"]["price"] == "price"
    assert record["schema"]["columns"]["price"] == "double"


def test_new_items_are_new_to_the_store_not_to_the_file(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    run_ingest(cfg, _csv(tmp_path, DAY1, "day1.csv"))
    run_ingest(cfg, _csv(tmp_path, DAY2, "day2.csv"))
    first, second = read_ingest_stats(Store(cfg.store))
    assert [d["date"] for d in first["days"]] == ["2024-01-01"]
    assert second["days"][0]["new_item_share"] == 0.5  # a was committed by the first ingest


def test_a_missing_record_is_written_again_the_same(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    run_ingest(cfg, _csv(tmp_path, DAY1 + DAY2, "log.csv"))
    store = Store(cfg.store)
    [path] = store.ingest_stats.glob("*.json")
    before = json.loads(path.read_text())
    path.unlink()
    assert ensure_ingest_stats(store, COLUMNS) == [path.stem]
    assert json.loads(path.read_text()) == before
    assert ensure_ingest_stats(store, COLUMNS) == []  # nothing missing: nothing written


def test_an_ingest_that_adds_nothing_writes_no_second_record(tmp_path):
    cfg = ingest_config(tmp_path, COLUMNS)
    run_ingest(cfg, _csv(tmp_path, DAY1, "day1.csv"))
    again = run_ingest(cfg, _csv(tmp_path, DAY1[::-1], "again.csv"))  # the same rows, another file: duplicates
    assert again["rows_duplicate"] == 3
    assert len(list(Store(cfg.store).ingest_stats.glob("*.json"))) == 1
