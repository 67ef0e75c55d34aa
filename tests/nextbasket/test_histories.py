"""Weekly histories on a hand-counted log: windows, cancellations, guests, batches, failures."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import Config, CustomerModelConfig, IngestConfig
from pipeline.errors import StoreError
from pipeline.eventdb import EventsError, release_buffers
from pipeline.ingest.ingest import run_ingest
from pipeline.schemas import PURCHASES, WEEK
from pipeline.store import Store
from recsys.nextbasket import histories
from recsys.nextbasket.histories import (
    GuestOnlyLogError,
    NoCustomerHistoryError,
    iter_histories,
    open_events,
    open_store,
)
from tests.nextbasket.conftest import make_events

CUTOFF = date(2011, 3, 15)  # a Tuesday: week 0 = Mar 8..14, week 1 = Mar 1..7, ... week 2 = Feb 22..28
CFG = CustomerModelConfig(lookback_weeks=4, seq_weeks=2, recent_weeks=1)


def _log() -> pd.DataFrame:
    return make_events([
        ("a", "x", "s1", 2.0, "2011-03-14"),  # week 0 (the day before the cut-off)
        ("a", "x", "s1", 1.0, "2011-03-08"),  # week 0 (first day of it)
        ("a", "x", "s1", -1.0, "2011-03-09"),  # cancellation: not a purchase
        ("a", "y", "s2", 5.0, "2011-03-07"),  # week 1
        ("a", "x", "s1", 1.0, "2011-02-15"),  # week 3 (Feb 15..21), the oldest week of the lookback
        ("a", "x", "s1", 1.0, "2011-02-14"),  # week 4: outside a 4-week lookback
        ("a", "x", "s1", 1.0, "2011-03-15"),  # the cut-off day: never read
        ("b", "y", "s2", 1.0, "2011-02-23"),  # week 2
        (None, "y", "s2", 1.0, "2011-03-10"),  # guest, week 0: crowd only
    ])


def test_histories_match_hand_counts(caplog):
    caplog.set_level(logging.INFO)
    (hist,) = list(iter_histories(open_events(_log()), CUTOFF, CFG))
    ui = {tuple(r[:3]): r[3] for r in hist.user_item[[s.USER_ID, s.ITEM_ID, WEEK, PURCHASES]].itertuples(index=False)}
    assert ui == {("a", "x", 0): 2.0, ("a", "x", 3): 1.0, ("a", "y", 1): 1.0, ("b", "y", 2): 1.0}
    us = {tuple(r[:3]): r[3] for r in hist.user_segment.itertuples(index=False)}
    assert us == {("a", "s1", 0): 2.0, ("a", "s1", 3): 1.0, ("a", "s2", 1): 1.0, ("b", "s2", 2): 1.0}
    crowd = {tuple(r[:2]): r[2] for r in hist.crowd_item.itertuples(index=False)}
    assert crowd == {("x", 0): 2.0, ("x", 3): 1.0, ("y", 0): 1.0, ("y", 1): 1.0, ("y", 2): 1.0}
    assert "1 guest purchase lines" in caplog.text


def test_batches_split_customers_and_keep_every_row():
    cfg = CustomerModelConfig(lookback_weeks=4, seq_weeks=2, recent_weeks=1, batch_customers=1)
    batches = list(iter_histories(open_events(_log()), CUTOFF, cfg))
    assert 1 <= len(batches) <= 2 and all(len(b.users) for b in batches)  # 2 buckets; hashing may fill one
    users = pd.concat([b.user_item for b in batches])[s.USER_ID]
    assert sorted(users.unique()) == ["a", "b"] and len(users) == 4


def test_guest_only_log_raises_named_condition():
    guests = make_events([(None, "x", "s1", 1.0, "2011-03-10"), (None, "y", "s1", 1.0, "2011-03-01")])
    with pytest.raises(GuestOnlyLogError, match="guests'"):
        list(iter_histories(open_events(guests), CUTOFF, CFG))
    with pytest.raises(NoCustomerHistoryError, match="no purchases"):
        list(iter_histories(open_events(guests.iloc[:0]), CUTOFF, CFG))


def test_missing_column_is_named():
    with pytest.raises(EventsError, match="segment"):
        open_events(_log().drop(columns=[s.SEGMENT]))


def test_empty_store_is_refused(tmp_path):
    with pytest.raises(StoreError, match="no committed raw files"):
        open_store(str(tmp_path))


def test_one_pass_buckets_hold_what_a_query_per_bucket_returns():
    """The batches read the one-pass bucket files; each equals a direct query of its hash bucket."""
    rows = [(f"u{k % 37}", f"i{k % 11}", f"s{k % 3}", 1.0 + k % 2, f"2011-03-{1 + k % 14:02d}") for k in range(400)]
    con = open_events(make_events(rows))
    cfg = CustomerModelConfig(lookback_weeks=4, seq_weeks=2, recent_weeks=1, batch_customers=10)
    batches = list(iter_histories(con, CUTOFF, cfg))
    assert len(batches) >= 3
    for hist in batches:
        users = ", ".join(f"'{u}'" for u in hist.users)
        for key, got in ((s.ITEM_ID, hist.user_item), (s.SEGMENT, hist.user_segment)):
            sql = (f"SELECT {s.USER_ID}, {key}, CAST((date_diff('day', {s.EVENT_DATE}, DATE '{CUTOFF}') - 1) // 7 "
                   f"AS INTEGER) AS {WEEK}, count(*)::FLOAT AS {PURCHASES} FROM events WHERE {s.QUANTITY} > 0 AND "
                   f"{s.EVENT_DATE} >= DATE '2011-02-15' AND {s.EVENT_DATE} < DATE '{CUTOFF}' "
                   f"AND {s.USER_ID} IN ({users}) GROUP BY ALL ORDER BY ALL")
            pd.testing.assert_frame_equal(got, con.execute(sql).df())
    assert sum(len(b.users) for b in batches) == 37


def test_crowd_tables_equal_a_query_each_with_ties_in_the_item_segment():
    """crowd item / segment weeks and the item's mode segment (ties: the first segment) from the window's lines."""
    rows = [(None if k % 9 == 0 else f"u{k % 13}", f"i{k % 7}", f"s{(k * 5) % 4}", 1.0, f"2011-03-{1 + k % 14:02d}")
            for k in range(300)]
    con = open_events(make_events(rows))
    (hist, *_) = list(iter_histories(con, CUTOFF, CFG))
    window = (f"FROM events WHERE {s.QUANTITY} > 0 AND {s.EVENT_DATE} >= DATE '2011-02-15' "
              f"AND {s.EVENT_DATE} < DATE '{CUTOFF}'")
    week = f"CAST((date_diff('day', {s.EVENT_DATE}, DATE '{CUTOFF}') - 1) // 7 AS INTEGER) AS {WEEK}"
    for key, got in ((s.ITEM_ID, hist.crowd_item), (s.SEGMENT, hist.crowd_segment)):
        sql = f"SELECT {key}, {week}, count(*)::FLOAT AS {PURCHASES} {window} GROUP BY ALL ORDER BY ALL"
        pd.testing.assert_frame_equal(got, con.execute(sql).df())
    sql = f"SELECT {s.ITEM_ID}, mode({s.SEGMENT} ORDER BY {s.SEGMENT}) AS {s.SEGMENT} {window} GROUP BY 1 ORDER BY 1"
    want = con.execute(sql).df()
    pd.testing.assert_frame_equal(hist.item_segment, want)
    counts = con.execute(f"SELECT {s.ITEM_ID}, {s.SEGMENT}, count(*) n {window} GROUP BY ALL").df()
    assert (counts.groupby(s.ITEM_ID)["n"].apply(lambda n: (n == n.max()).sum()) > 1).any()  # a tie was broken


def _log_store(tmp_path) -> Store:
    """The hand-counted log, ingested into a store under ``tmp_path``."""
    csv = tmp_path / "events.csv"
    _log().assign(event_time=lambda f: f[s.EVENT_DATE].astype(str) + "T12:00:00").to_csv(csv, index=False)
    names = ("event_time", s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.ORDER_ID)
    cfg = Config(store=str(tmp_path / "store"), ingest=IngestConfig(columns={n: n for n in names}, returns="keep"))
    run_ingest(cfg, csv)
    return Store(cfg.store)


def _lines_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()]


def test_histories_over_a_store_keep_their_lines_in_duckdb_and_drop_them(tmp_path, monkeypatch):
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # what the system's temp dir would be
    store = _log_store(tmp_path)
    con = open_store(str(store.root), CFG)
    batches = iter_histories(con, CUTOFF, CFG)
    next(batches)
    assert _lines_tables(con) == [histories._LINES]  # the customers' lines, read by every batch
    list(batches)
    assert _lines_tables(con) == [] and list(system_tmp.iterdir()) == []
    assert not store.tmp.exists() or [p.name for p in store.tmp.iterdir()] == []  # nothing spilled, nothing left


def test_histories_lines_are_dropped_after_an_error(tmp_path, monkeypatch):
    con = open_store(str(_log_store(tmp_path).root), CFG)

    def broken(con, *args):
        assert _lines_tables(con) == [histories._LINES]  # the failure comes after the one pass
        raise duckdb.IOException("disk full")

    monkeypatch.setattr(histories, "_bucket_counts", broken)
    with pytest.raises(duckdb.IOException, match="disk full"):
        list(iter_histories(con, CUTOFF, CFG))
    assert _lines_tables(con) == []
    monkeypatch.undo()
    assert len(list(iter_histories(con, CUTOFF, CFG))) == 1  # the connection is still usable


def test_an_abandoned_iteration_drops_its_lines(tmp_path):
    con = open_store(str(_log_store(tmp_path).root), CFG)
    batches = iter_histories(con, CUTOFF, CFG)
    next(batches)
    batches.close()  # what a caller that stops early (or garbage collection) does
    assert _lines_tables(con) == []


def test_store_connection_has_the_configured_memory_limit_and_spills_in_the_store(tmp_path):
    store = _log_store(tmp_path)
    con = open_store(str(store.root), dataclasses.replace(CFG, memory_limit="123MB"))
    limit, spill = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit == duckdb.connect(config={"memory_limit": "123MB"}).execute(
        "SELECT current_setting('memory_limit')").fetchone()[0] != duckdb.connect().execute(
        "SELECT current_setting('memory_limit')").fetchone()[0]
    assert Path(spill).parent == store.tmp


def test_handing_the_buffers_back_keeps_the_connection_and_its_limit(tmp_path):
    store = _log_store(tmp_path)
    con = open_store(str(store.root), dataclasses.replace(CFG, memory_limit="123MB"))
    before = con.execute("SELECT current_setting('memory_limit'), count(*) FROM events").fetchone()
    con.execute("CREATE TEMP TABLE t AS SELECT * FROM events")
    release_buffers(con, "123MB")
    assert con.execute("SELECT current_setting('memory_limit'), count(*) FROM events").fetchone() == before
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == before[1]  # evicted blocks are read back


def test_a_killed_runs_spill_folder_is_removed_by_the_next_connection_on_the_host(tmp_path):
    store = _log_store(tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    dead = store.tmp / f"duckdb-spill-{host}-{int(gone.stdout)}-1"  # its process has exited
    live = store.tmp / f"duckdb-spill-{host}-{os.getpid()}-2"  # this process: still running
    elsewhere = store.tmp / f"duckdb-spill-another-host-{int(gone.stdout)}-3"  # maybe live on its own host
    for folder in (dead, live, elsewhere):
        folder.mkdir(parents=True)
        (folder / "duckdb_temp_block-1.block").write_bytes(b"spilled")
    open_store(str(store.root), CFG).close()
    assert not dead.exists() and live.is_dir() and elsewhere.is_dir()
