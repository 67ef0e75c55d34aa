"""raw/ is a symlink to an immutable snapshot, switched with one rename per ingest commit (issue 20):
what a DuckDB hive glob reads, how old snapshots go, and how a store from before snapshots moves in."""

import os
import shutil

import duckdb
import pytest

from pipeline import schemas as s
from pipeline.ingest.ingest import run_ingest
from pipeline.snapshots import held_folder, shared_folder
from pipeline.store import RAW_SNAPSHOT, Store, StoreError
from tests.ingest.conftest import USER_COLUMNS, ingest_config, stored, write_csv

DAYS = [f"2011-03-0{1 + i % 3} 10:00:0{i % 10},A{i},1,2.5,u{i % 4}" for i in range(30)]


def _hive(store: Store, glob: str) -> list[tuple]:
    sql = f"SELECT event_date::VARCHAR, count(*), sum(quantity) FROM read_parquet('{store.root}/{glob}', " \
          "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    return duckdb.sql(sql).fetchall()


def test_a_hive_glob_over_raw_reads_exactly_the_committed_events(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    run_ingest(cfg, write_csv(tmp_path, DAYS))
    run_ingest(cfg, write_csv(tmp_path, [*DAYS[:5], "2011-03-04 10:00:00,B,3,1,u"], "more.csv"))
    store = Store(cfg.store)
    assert store.raw.is_symlink() and store.raw.resolve().parent == store.snapshots
    expected = [("2011-03-01", 10, 10), ("2011-03-02", 10, 10), ("2011-03-03", 10, 10), ("2011-03-04", 1, 3)]
    assert _hive(store, "raw/**/*.parquet") == expected  # keys live outside raw/: no stray rows
    assert _hive(store, "raw/event_date=*/*.parquet") == expected  # the README's glob
    assert len(stored(cfg)) == 31


def test_old_snapshots_are_pruned_keeping_the_current_and_the_previous(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    for n in range(4):
        run_ingest(cfg, write_csv(tmp_path, [f"2011-03-01 10:00:00,A{n},1,1,u"], f"f{n}.csv"))
    store = Store(cfg.store)
    left = sorted(p.name for p in store.snapshots.iterdir() if p.name.startswith(RAW_SNAPSHOT))
    assert len(left) == 2 and left[-1] == store.raw.resolve().name
    assert os.stat(next(store.raw.glob("event_date=*/*.parquet"))).st_nlink == 2  # shared, not copied


def test_a_store_from_before_snapshots_moves_in_with_its_keys(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    run_ingest(cfg, write_csv(tmp_path, DAYS))
    store = Store(cfg.store)
    # the layout before snapshots: raw/ a plain directory, the event keys in raw/_keys/
    snapshot = store.raw.resolve()
    store.raw.unlink()
    shutil.copytree(snapshot, store.raw)
    shutil.move(store.raw_keys, store.raw / "_keys")
    shutil.rmtree(store.snapshots)
    again = run_ingest(cfg, write_csv(tmp_path, [*DAYS[:10], "2011-03-04 10:00:00,B,3,1,u"], "more.csv"))
    assert (again["rows_accepted"], again["rows_duplicate"]) == (1, 10)  # the moved keys still deduplicate
    assert store.raw.is_symlink() and not (store.raw / "_keys").exists()
    assert len(stored(cfg)) == 31 and max(stored(cfg)[s.ITEM_ID]) == "B"


def test_raw_pointing_at_a_missing_snapshot_is_refused_in_one_line(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    run_ingest(cfg, write_csv(tmp_path, DAYS))
    store = Store(cfg.store)
    shutil.rmtree(store.raw.resolve())
    with pytest.raises(StoreError, match="which is missing; restore that snapshot"):
        run_ingest(cfg, write_csv(tmp_path, DAYS[:1], "one.csv"))


def test_paths_through_the_raw_link_stay_inside_the_store_and_closed_to_outputs(tmp_path):
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    run_ingest(cfg, write_csv(tmp_path, DAYS))
    store = Store(cfg.store)
    assert store.inside("raw/_commits").parent == store.raw.resolve()  # the link's target is in the store
    with pytest.raises(StoreError, match="only trendrec itself writes"):
        store.output("raw/x.parquet")


def test_a_killed_commits_half_built_snapshot_goes_at_the_next_ingests_start(tmp_path):
    """Even when that ingest commits nothing (its file is already in): a dead build is pruned under the
    snapshots lock at the start, the current snapshot, the one before it and a live build stay."""
    cfg = ingest_config(tmp_path, USER_COLUMNS)
    log = write_csv(tmp_path, DAYS)
    run_ingest(cfg, write_csv(tmp_path, DAYS[:3], "first.csv"))
    run_ingest(cfg, log)
    store = Store(cfg.store)
    kept = sorted(p.name for p in store.snapshots.iterdir() if p.name.startswith(RAW_SNAPSHOT))
    dead = shared_folder(store.snapshots, RAW_SNAPSHOT)  # what a SIGKILL-ed build leaves: nobody holds its flock
    (dead / "event_date=2011-03-01").mkdir()
    (dead / "event_date=2011-03-01" / "part-x.parquet").write_bytes(b"half")
    live, fd = held_folder(store.snapshots, RAW_SNAPSHOT)  # a build in progress beside this ingest
    try:
        again = run_ingest(cfg, log)
        assert again["rows_accepted"] == 0 and again["rows_duplicate"] == len(DAYS)
        left = sorted(p.name for p in store.snapshots.iterdir() if p.name.startswith(RAW_SNAPSHOT))
        assert left == sorted([*kept, live.name]) and not dead.exists()
    finally:
        os.close(fd)
    assert _hive(store, "raw/**/*.parquet")[0][1] == 10
