"""What a killed `trendrec aggregate` left (a half-built set under aggregates/_versions/, its DuckDB spill
folder under aggregates/_spill/) is removed when the next run starts, even one with nothing to recompute;
a folder a live run holds (its flock, held here by the test) is not."""

import dataclasses
import os

from pipeline.aggregate.aggregate import run_aggregate
from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.snapshots import current_aggregates, held_folder
from pipeline.store import Store

EVENTS = "ts,item,qty,price,user,cat\n2024-01-30 09:00:00,x,2,1.0,u1,a\n2024-01-31 12:00:00,z,1,10,u3,b\n"


def test_a_dead_runs_leftovers_go_at_the_next_start_and_a_live_runs_stay(tmp_path):
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"})
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    (tmp_path / "e.csv").write_text(EVENTS)
    run_ingest(cfg, tmp_path / "e.csv")
    store = Store(cfg.store)
    run_aggregate(cfg)
    current = current_aggregates(store)
    dead = [store.aggregate_versions / "00000000000000000001-dead", store.aggregates_spill / "00000000000000000001-dead"]
    for folder in dead:  # a killed process's: no flock on it any more
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"half")
    live = [held_folder(store.aggregate_versions, ""), held_folder(store.aggregates_spill, "")]
    try:
        assert run_aggregate(cfg)["mode"] == "unchanged"
        assert not any(folder.exists() for folder in dead)
        assert all(folder.is_dir() for folder, _ in live)
        assert current_aggregates(store) == current and current.is_dir()
        assert [p.name for p in store.aggregates_spill.iterdir()] == [live[1][0].name]  # this run's went too
    finally:
        for _, fd in live:
            os.close(fd)
    run_aggregate(cfg)  # released: now leftovers of a dead run too
    assert sorted(p.name for p in store.aggregate_versions.iterdir() if not p.name.startswith(".")) == [current.name]
    assert list(store.aggregates_spill.iterdir()) == []
