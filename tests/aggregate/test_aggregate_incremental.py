"""Incremental aggregation equals a full recompute; top-N segments; a failed run changes nothing."""

import dataclasses

import pyarrow as pa
import pytest

from pipeline.aggregate import aggregate
from pipeline import schemas as s
from pipeline.aggregate.aggregate import run_aggregate
from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, current_aggregates, daily_partition, read_parquet

HEADER = "ts,item,qty,price,user,cat\n"
FIRST = HEADER + """2024-01-30 09:00:00,x,2,1.0,u1,a
2024-01-31 10:00:00,y,1,3.0,u2,a
2024-02-10 11:00:00,x,4,0.5,u1,a
2024-01-31 12:00:00,z,1,10,u3,b
2024-05-02 12:00:00,z,1,10,u3,c
"""
# Touches January (an existing month: a new user on an existing day) and April (a new month), and
# stretches a's range from Feb 10 to Apr 3, so February and March (no event at all) gain zero rows
# for a; May (only c) is untouched; d is new.
SECOND = HEADER + """2024-01-31 15:00:00,w,1,2.0,u9,a
2024-04-03 08:00:00,x,3,1.0,u1,a
2024-04-03 09:00:00,q,1,7.0,u4,d
2024-04-03 10:00:00,r,1,1.0,u5,d
"""


def _store(tmp_path, name: str, *texts: str):
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"})
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / name), ingest=ingest)
    return cfg, [_write(tmp_path, f"{name}{i}.csv", t) for i, t in enumerate(texts)]


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path / name


def _tables(cfg) -> tuple[pa.Table, pa.Table]:
    store = Store(cfg.store)
    daily = read_parquet(store.daily_path).sort_by([(s.SEGMENT, "ascending"), (s.DATE, "ascending")])
    return daily, read_parquet(store.month_weekday_path)


def _full(tmp_path, top_n=None):
    cfg, files = _store(tmp_path, "full", FIRST, SECOND)
    for f in files:
        run_ingest(cfg, f)
    run_aggregate(cfg, top_n=top_n)
    return _tables(cfg)


def test_incremental_equals_full_recompute(tmp_path):
    cfg, (first, second) = _store(tmp_path, "inc", FIRST, SECOND)
    run_ingest(cfg, first)
    assert run_aggregate(cfg)["mode"] == "full"
    store = Store(cfg.store)
    may = daily_partition(store.daily_path, "2024-05").resolve()
    run_ingest(cfg, second)
    summary = run_aggregate(cfg)
    assert summary["mode"] == "incremental"
    # January and April from raw; February (a's zero rows after Feb 10) and March from the old set
    assert summary["months_recomputed"] == 4
    assert daily_partition(store.daily_path, "2024-05").resolve().stat().st_ino == may.stat().st_ino  # shared
    daily, profile = _tables(cfg)
    full_daily, full_profile = _full(tmp_path)
    assert daily.equals(full_daily) and profile.equals(full_profile)
    rows = {(r[s.SEGMENT], str(r[s.DATE])): r for r in daily.to_pylist()}
    assert rows[("a", "2024-01-31")][s.USERS] == 2 and rows[("a", "2024-03-15")][s.EVENTS] == 0
    assert ("a", "2024-04-04") not in rows and ("d", "2024-04-03") in rows


def test_top_n_folds_the_rest_into_other(tmp_path):
    cfg, files = _store(tmp_path, "top", FIRST)
    run_ingest(cfg, files[0])
    run_aggregate(cfg, top_n=1)
    daily, profile = _tables(cfg)
    assert set(daily[s.SEGMENT].to_pylist()) == {"a", s.OTHER_SEGMENT}  # a has 3 events, b and c one each
    other = [r for r in daily.to_pylist() if r[s.SEGMENT] == s.OTHER_SEGMENT]
    assert (str(other[0][s.DATE]), str(other[-1][s.DATE]), len(other)) == ("2024-01-31", "2024-05-02", 93)
    assert s.OTHER_SEGMENT in profile[s.SEGMENT].to_pylist()


@pytest.mark.parametrize("top_n", [1, 2])
def test_incremental_top_n_equals_full(tmp_path, top_n):
    cfg, (first, second) = _store(tmp_path, "inc", FIRST, SECOND)
    run_ingest(cfg, first)
    run_aggregate(cfg, top_n=top_n)
    run_ingest(cfg, second)
    # top 1 stays {a}: incremental; top 2 changes from {a, b} (b before c on a tie) to {a, d}: full
    assert run_aggregate(cfg, top_n=top_n)["mode"] == ("incremental" if top_n == 1 else "full")
    daily, profile = _tables(cfg)
    full_daily, full_profile = _full(tmp_path, top_n)
    assert daily.equals(full_daily) and profile.equals(full_profile)


def test_failed_run_leaves_the_previous_set(tmp_path, monkeypatch):
    cfg, (first, second) = _store(tmp_path, "inc", FIRST, SECOND)
    run_ingest(cfg, first)
    run_aggregate(cfg)
    store = Store(cfg.store)
    before, tables = current_aggregates(store), _tables(cfg)
    run_ingest(cfg, second)

    def boom(*args):
        raise RuntimeError("crash while writing month_weekday")

    monkeypatch.setattr(aggregate, "_month_weekday", boom)
    with pytest.raises(RuntimeError):
        run_aggregate(cfg)
    assert current_aggregates(store) == before and _tables(cfg)[0].equals(tables[0])
    assert [p.name for p in (store.aggregates / "_versions").iterdir()] == [before.name]
    monkeypatch.undo()
    assert run_aggregate(cfg)["mode"] == "incremental"


def test_one_day_batches_give_the_same_tables(tmp_path, monkeypatch):
    full_daily, full_profile = _full(tmp_path)
    monkeypatch.setattr(aggregate, "BATCH_BYTES", 1)  # every day is its own query
    cfg, (first, second) = _store(tmp_path, "batched", FIRST, SECOND)
    run_ingest(cfg, first)
    run_ingest(cfg, second)
    run_aggregate(cfg)
    daily, profile = _tables(cfg)
    assert daily.equals(full_daily) and profile.equals(full_profile)


def test_only_the_current_and_previous_sets_are_kept(tmp_path):
    cfg, (first,) = _store(tmp_path, "prune", FIRST)
    run_ingest(cfg, first)
    store = Store(cfg.store)
    sets = []
    for top_n in (None, 1, 2):  # each setting is a full recompute into a new set
        run_aggregate(cfg, top_n=top_n)
        sets.append(current_aggregates(store).name)
    assert sorted(p.name for p in (store.aggregates / "_versions").iterdir()) == sets[1:]
    assert store.daily_path.is_symlink() and read_parquet(store.daily_path).num_rows > 0
