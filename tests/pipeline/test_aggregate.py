"""Aggregates on a hand-counted log: two segments, across a month boundary, with a gap day."""

import dataclasses
from datetime import date

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.aggregate import run_aggregate
from pipeline.config import IngestConfig, load_config
from pipeline.errors import TrendrecError
from pipeline.ingest import run_ingest
from pipeline.io import Store, read_parquet

EVENTS = """ts,item,qty,price,user,cat
2024-01-30 09:00:00,x,2,1.0,u1,a
2024-01-30 10:00:00,y,1,3.0,u2,a
2024-02-01 11:00:00,x,4,0.5,u1,a
2024-01-31 12:00:00,z,1,10,u3,b
2024-01-31 13:00:00,z,1,10,,b
"""


@pytest.fixture
def store_cfg(tmp_path):
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"})
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    (tmp_path / "e.csv").write_text(EVENTS)
    run_ingest(cfg, tmp_path / "e.csv")
    return cfg


def test_daily_is_hand_counted_and_zero_filled(store_cfg):
    summary = run_aggregate(store_cfg)
    daily = read_parquet(Store(store_cfg.store).daily_path).to_pandas()
    assert summary["daily_rows"] == 4 and summary["segments"] == 2
    expected = pd.DataFrame(
        [
            ("a", date(2024, 1, 30), 2024, 1, 1, 2, 3.0, 5.0, 2),
            ("a", date(2024, 1, 31), 2024, 1, 2, 0, 0.0, 0.0, 0),  # no sale: a zero row, not a gap
            ("a", date(2024, 2, 1), 2024, 2, 3, 1, 4.0, 2.0, 1),
            ("b", date(2024, 1, 31), 2024, 1, 2, 2, 2.0, 20.0, 1),  # the guest is not a distinct user
        ],
        columns=s.DAILY_SCHEMA.names,
    )
    pd.testing.assert_frame_equal(daily, expected, check_dtype=False)


def test_month_weekday_profile(store_cfg):
    run_aggregate(store_cfg)
    profile = read_parquet(Store(store_cfg.store).month_weekday_path).to_pandas()
    rows = {tuple(r[:3]): tuple(r[3:]) for r in profile.itertuples(index=False)}
    assert rows == {
        ("a", 1, 1): (1, 2, 3.0, 5.0, 2),
        ("a", 1, 2): (1, 0, 0.0, 0.0, 0),
        ("a", 2, 3): (1, 1, 4.0, 2.0, 1),
        ("b", 1, 2): (1, 2, 2.0, 20.0, 1),
    }


def test_rerun_gives_the_same_tables(store_cfg):
    run_aggregate(store_cfg)
    first = read_parquet(Store(store_cfg.store).daily_path)
    run_aggregate(store_cfg)
    assert read_parquet(Store(store_cfg.store).daily_path).equals(first)


def test_empty_store_is_a_clear_error(tmp_path):
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path))
    with pytest.raises(TrendrecError, match="run `trendrec ingest` first"):
        run_aggregate(cfg)
