"""Aggregates on a hand-counted log: two segments, across a month boundary, with a gap day."""

import dataclasses
import json
import subprocess
import sys
from datetime import date

import duckdb
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.aggregate.aggregate import run_aggregate
from pipeline.config import IngestConfig, load_config
from pipeline.errors import TrendrecError
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, read_parquet

EVENTS = """ts,item,qty,price,user,cat
2024-01-30 09:00:00,x,2,1.0,u1,a
2024-01-30 10:00:00,y,1,3.0,u2,a
2024-02-01 11:00:00,x,4,0.5,u1,a
2024-01-31 12:00:00,z,1,10,u3,b
2024-01-31 13:00:00,z,1,10,,b
"""


def _cfg(tmp_path, *events: str):
    """A config on a fresh store with each CSV text of ``events`` ingested in turn."""
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"})
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    for i, text in enumerate(events):
        (tmp_path / f"e{i}.csv").write_text(text)
        run_ingest(cfg, tmp_path / f"e{i}.csv")
    return cfg


@pytest.fixture
def store_cfg(tmp_path):
    return _cfg(tmp_path, EVENTS)


def test_daily_is_hand_counted_and_zero_filled(store_cfg):
    summary = run_aggregate(store_cfg)
    table = read_parquet(Store(store_cfg.store).daily_path)
    assert table.schema.remove_metadata() == s.DAILY_SCHEMA  # no hive key column, exact types
    daily = table.to_pandas().sort_values([s.SEGMENT, s.DATE], ignore_index=True)
    assert summary["daily_rows"] == 4 and summary["segments"] == 2 and summary["mode"] == "full"
    expected = pd.DataFrame(
        [
            ("a", date(2024, 1, 30), 2024, 1, 1, 2, 3.0, 5.0, 2, 2),
            ("a", date(2024, 1, 31), 2024, 1, 2, 0, 0.0, 0.0, 0, 0),  # no sale: a zero row, not a gap
            ("a", date(2024, 2, 1), 2024, 2, 3, 1, 4.0, 2.0, 1, 1),
            ("b", date(2024, 1, 31), 2024, 1, 2, 2, 2.0, 20.0, 1, 1),  # the guest is not a distinct user
        ],
        columns=s.DAILY_SCHEMA.names,
    )
    pd.testing.assert_frame_equal(daily, expected, check_dtype=False)


def test_daily_is_hive_partitioned_by_month(store_cfg):
    run_aggregate(store_cfg)
    root = Store(store_cfg.store).daily_path
    months = sorted(p.parent.name for p in root.glob("*/part-0.parquet"))
    assert months == ["year_month=2024-01", "year_month=2024-02"]
    con = duckdb.connect()
    rows = con.sql(f"SELECT year_month, count(*) FROM read_parquet('{root}/*/*.parquet', "
                   "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [("2024-01", 3), ("2024-02", 1)]
    assert len(pd.read_parquet(root)) == 4  # pandas reads the directory as is


def test_month_weekday_profile(store_cfg):
    run_aggregate(store_cfg)
    profile = read_parquet(Store(store_cfg.store).month_weekday_path).to_pandas()
    rows = {tuple(r[:3]): tuple(r[3:9]) for r in profile.itertuples(index=False)}
    assert rows == {  # (days, events, quantity, revenue, user-days, item-days)
        ("a", 1, 1): (1, 2, 3.0, 5.0, 2, 2),
        ("a", 1, 2): (1, 0, 0.0, 0.0, 0, 0),
        ("a", 2, 3): (1, 1, 4.0, 2.0, 1, 1),
        ("b", 1, 2): (1, 2, 2.0, 20.0, 1, 1),
        # every segment; Jan 31 is a Wednesday for both a (zero row) and b
        (s.ALL_SEGMENTS, 1, 1): (1, 2, 3.0, 5.0, 2, 2),
        (s.ALL_SEGMENTS, 1, 2): (1, 2, 2.0, 20.0, 1, 1),
        (s.ALL_SEGMENTS, 2, 3): (1, 1, 4.0, 2.0, 1, 1),
    }
    assert profile.columns.tolist() == s.MONTH_WEEKDAY_SCHEMA.names
    for m in s.DAILY_MEASURES:
        assert (profile[s.PER_DAY[m]] == profile[m] / profile[s.DAYS]).all()


def test_all_segments_row_counts_a_user_once_per_day(tmp_path):
    cfg = _cfg(tmp_path, "ts,item,qty,price,user,cat\n2024-03-04 09:00,x,1,2.0,u1,a\n"
                         "2024-03-04 10:00,y,1,3.0,u1,b\n2024-03-11 10:00,y,2,3.0,u2,b\n")
    run_aggregate(cfg)
    profile = read_parquet(Store(cfg.store).month_weekday_path).to_pandas()
    profile = profile.set_index([s.SEGMENT, s.MONTH, s.WEEKDAY])
    # two Mondays: Mar 4 (u1 in a and in b: one user, two items) and Mar 11 (u2)
    cell = profile.loc[(s.ALL_SEGMENTS, 3, 0)]
    assert (cell[s.DAYS], cell[s.EVENTS], cell[s.USERS], cell[s.ITEMS]) == (2, 3, 2, 3)
    assert cell[s.PER_DAY[s.USERS]] == 1.0 and cell[s.PER_DAY[s.REVENUE]] == (2 + 3 + 6) / 2


def test_rerun_gives_the_same_tables(store_cfg):
    run_aggregate(store_cfg)
    first = read_parquet(Store(store_cfg.store).daily_path)
    assert run_aggregate(store_cfg)["mode"] == "unchanged"
    assert read_parquet(Store(store_cfg.store).daily_path).equals(first)
    assert run_aggregate(store_cfg, top_n=5)["mode"] == "full"  # other settings: recomputed
    assert read_parquet(Store(store_cfg.store).daily_path).equals(first)


def test_empty_store_is_a_clear_error(tmp_path):
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path))
    with pytest.raises(TrendrecError, match="run `trendrec ingest` first"):
        run_aggregate(cfg)


def test_reserved_segment_name_is_refused(tmp_path):
    cfg = _cfg(tmp_path, f"ts,item,qty,price,user,cat\n2024-03-04 09:00,x,1,2.0,u1,{s.ALL_SEGMENTS}\n")
    with pytest.raises(TrendrecError, match="reserved.*trendrec ingest"):
        run_aggregate(cfg)


def test_month_weekday_totals_do_not_depend_on_how_duckdb_splits_the_rows(tmp_path):
    """24 monthly daily files of 5,600 rows with revenues spread over many magnitudes, summed by 4 threads:
    five runs give bit-identical floats (an unordered sum differed in the last bits from run to run)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.aggregate.aggregate import _month_weekday

    rng, files, first = np.random.default_rng(0), [], date(2020, 1, 1)
    for m in range(24):
        days = pd.date_range(pd.Timestamp(first) + pd.Timedelta(days=31 * m), periods=28).date
        n = len(days) * 200
        cols = {s.SEGMENT: [f"seg{i}" for i in range(200)] * len(days), s.DATE: np.repeat(days, 200)}
        cols |= {m_: rng.lognormal(5, 3, n) if m_ == s.REVENUE else rng.integers(0, 100, n)
                 for m_ in s.DAILY_MEASURES}
        files.append(str(tmp_path / f"{m}.parquet"))
        pq.write_table(pa.table(cols), files[-1])
    all_days = pa.table({s.DATE: [first], **{m_: [1.0 if m_ == s.REVENUE else 1] for m_ in s.DAILY_MEASURES}})
    runs = [_month_weekday(duckdb.connect(config={"threads": 4}), files, all_days) for _ in range(5)]
    assert runs[0].num_rows == (200 + 1) * 12 * 7 and all(runs[0].equals(r) for r in runs[1:])


def test_the_aggregate_command_never_imports_pandas(store_cfg, tmp_path):
    """pandas is 1-2 s of every start-up; `trendrec aggregate` (as a user runs it) does without it."""
    (tmp_path / "trendrec.toml").write_text(
        f'store = "{store_cfg.store}"\n[ingest.columns]\nevent_time = "ts"\nitem_id = "item"\nquantity = "qty"\n'
        'price = "price"\nuser_id = "user"\nsegment = "cat"\n')
    code = ("import sys; from recsys.cli import main\n"
            "assert main(['aggregate', '--config', sys.argv[1], '--json']) == 0\n"
            "print(json.dumps(sorted(m for m in ('pandas', 'tensorflow', 'keras') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", "import json\n" + code, str(tmp_path / "trendrec.toml")],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    *_, loaded = out.strip().splitlines()
    assert json.loads(loaded) == []
    assert Store(store_cfg.store).daily_path.exists()
