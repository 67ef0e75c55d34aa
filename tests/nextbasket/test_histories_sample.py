"""A sample's histories read only its customers' lines, and equal what the whole log's lines gave (issue 35).

Before issue 35, iter_histories grouped every purchase line of the lookback (guests' included) by
(bucket, customer, item, segment, week) and took both the customers' and the crowd's tables from that
table. The reference below computes the same tables in pandas from the whole log: on a random log with
guests, cancellations, null segments and items sold in two segments, the histories of a customer subset,
of every customer, and of each shard must hold exactly those values, over a DataFrame and over a store.

WeeklyCrowd (below): the crowd tables of weekly cut-offs counted once for all equal each cut-off's own
(``_crowd``): exactly (frames, dtypes, order), and the values of the pandas reference.

    .venv/bin/python -m pytest tests/nextbasket/test_histories_sample.py -q
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import Config, CustomerModelConfig, IngestConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.sampling import shard_of
from pipeline.schemas import PURCHASES, WEEK
from recsys.nextbasket import histories
from recsys.nextbasket.histories import (BUYERS, REPEAT_RATE, WeeklyCrowd, iter_histories, open_events,
                                         open_store)
from tests.nextbasket.conftest import make_events

CUTOFF = date(2011, 6, 1)
CFG = CustomerModelConfig(lookback_weeks=8, seq_weeks=4, recent_weeks=2, batch_customers=30)


def _random_log(seed: int = 0) -> pd.DataFrame:
    """About 2,000 lines of 120 customers, 40 items, 11 weeks (the cut-off's week too): 8 % guests,
    5 % cancellations, 5 % null segments, some items in two segments."""
    rng = np.random.default_rng(seed)
    n = 2_000
    users = np.where(rng.random(n) < 0.08, None, np.array([f"u{k:03d}" for k in rng.zipf(1.3, n) % 120]))
    items = rng.zipf(1.2, n) % 40
    segments = np.where(rng.random(n) < 0.1, (items + 1) % 5, items % 5).astype(object)
    segments = np.where(rng.random(n) < 0.05, None, np.array([f"s{g}" for g in segments], dtype=object))
    qty = np.where(rng.random(n) < 0.05, -1.0, rng.integers(1, 4, n).astype(float))
    days = rng.integers(-70, 7, n)
    return make_events([(u, f"i{i:02d}", g, q, CUTOFF + timedelta(days=int(d)))
                        for u, i, g, q, d in zip(users, items, segments, qty, days)])


def _reference(events: pd.DataFrame, cfg: CustomerModelConfig, cutoff: date = CUTOFF) -> dict[str, dict]:
    """Every table of the histories, from the whole log's lines in the window: {table: {key: value}}."""
    day = pd.to_datetime(events[s.EVENT_DATE])
    start = pd.Timestamp(cutoff - timedelta(weeks=cfg.lookback_weeks))
    lines = events[(events[s.QUANTITY] > 0) & (day >= start) & (day < pd.Timestamp(cutoff))].copy()
    lines[WEEK] = (pd.Timestamp(cutoff) - day[lines.index]).dt.days.sub(1) // 7
    known = lines[lines[s.USER_ID].notna()]

    def counts(frame, keys):
        return frame.groupby(keys, dropna=False).size().astype(float).to_dict()

    segment = lines.groupby([s.ITEM_ID, s.SEGMENT], dropna=False).size().rename("n").reset_index()
    segment = segment.assign(_null=segment[s.SEGMENT].isna()).sort_values(
        [s.ITEM_ID, "_null", "n", s.SEGMENT], ascending=[True, True, False, True])
    weeks = known.groupby([s.USER_ID, s.ITEM_ID])[WEEK].agg(["min", "max"])
    repeat = (weeks["min"] != weeks["max"]).groupby(level=s.ITEM_ID).agg(["size", "mean"])
    return {"user_item": counts(known, [s.USER_ID, s.ITEM_ID, WEEK]),
            "user_segment": counts(known, [s.USER_ID, s.SEGMENT, WEEK]),
            "crowd_item": counts(lines, [s.ITEM_ID, WEEK]), "crowd_segment": counts(lines, [s.SEGMENT, WEEK]),
            "item_segment": segment.groupby(s.ITEM_ID)[s.SEGMENT].first().to_dict(),
            "item_repeat": {i: (float(r["size"]), r["mean"]) for i, r in repeat.iterrows()}}


def _table(frame: pd.DataFrame, n_keys: int) -> dict:
    """A histories table as {key tuple (or key): value (or value tuple)}, nulls as NaN."""
    out = {}
    for row in frame.itertuples(index=False):
        row = tuple(np.nan if pd.isna(v) else v for v in row)
        key, value = row[:n_keys], row[n_keys:]
        out[key[0] if n_keys == 1 else key] = value[0] if len(value) == 1 else value
    assert len(out) == len(frame)  # one row per key
    return out


def _same(got: dict, want: dict) -> None:
    """Equal dicts, NaN keys and values equal to NaN (pandas' dropna=False groups)."""
    def norm(d):
        return {tuple("<null>" if pd.isna(k) else k for k in (key if isinstance(key, tuple) else (key,))):
                ("<null>" if not isinstance(v, tuple) and pd.isna(v) else v) for key, v in d.items()}
    assert norm(got) == norm(want)


def _check(batches: list, want: dict, users: set[str]) -> None:
    """The batches hold exactly ``users``' rows of the reference's customer tables, and its crowd tables."""
    assert batches and sum(len(b.users) for b in batches) == len(users)
    for name, keys in (("user_item", 3), ("user_segment", 3)):
        got = _table(pd.concat([getattr(b, name) for b in batches], ignore_index=True), keys)
        _same(got, {k: v for k, v in want[name].items() if k[0] in users})
    for hist in batches:
        for name, keys in (("crowd_item", 2), ("crowd_segment", 2), ("item_segment", 1), ("item_repeat", 1)):
            _same(_table(getattr(hist, name), keys), want[name])
        assert list(hist.item_repeat.columns) == [s.ITEM_ID, BUYERS, REPEAT_RATE]


def test_a_sample_reads_only_its_customers_lines_and_gets_the_whole_logs_crowd(monkeypatch):
    events = _random_log()
    want = _reference(events, CFG)
    everyone = {u for u, *_ in want["user_item"]}
    sample = sorted(everyone)[::3] + ["nobody"]  # a customer without a purchase in the window gets no history
    con = open_events(events, CFG)
    lines, real = [], histories._bucket_counts

    def counts(con, *args):  # the lines table's customers, as each batch reads it
        lines.append(con.execute(f"SELECT DISTINCT {s.USER_ID} FROM {histories._LINES}").fetchall())
        return real(con, *args)

    monkeypatch.setattr(histories, "_bucket_counts", counts)
    batches = list(iter_histories(con, CUTOFF, CFG, np.array(sample, dtype=object)))
    _check(batches, want, set(sample[:-1]))
    assert {u for (u,) in lines[0]} == set(sample[:-1])  # the lines table holds the sample's lines, no guest's
    _check(list(iter_histories(con, CUTOFF, CFG)), want, everyone)
    assert any(pd.isna(k[1]) for k in want["user_segment"])  # the log has null segments,
    assert sum(want["crowd_item"].values()) > sum(want["user_item"].values())  # guests,
    assert (events[s.QUANTITY] < 0).any()  # and cancellations


@pytest.mark.parametrize("n", [1, 3])
def test_each_shard_gets_its_customers_in_order_and_the_whole_logs_crowd(n):
    events = _random_log(1)
    want = _reference(events, CFG)
    everyone = np.array(sorted({u for u, *_ in want["user_item"]}), dtype=object)
    con = open_events(events, CFG)
    for k in range(n):
        batches = list(iter_histories(con, CUTOFF, CFG, shard=(k, n)))
        mine = everyone[shard_of(everyone, n) == k]
        _check(batches, want, set(mine))
        assert [u for b in batches for u in b.user_segment[s.USER_ID].unique()] == list(mine)  # customer order


def test_a_store_gives_the_same_tables_as_the_frame(tmp_path):
    events = _random_log(2)
    csv = tmp_path / "events.csv"
    events.assign(event_time=lambda f: f[s.EVENT_DATE].astype(str) + "T12:00:00").to_csv(csv, index=False)
    names = ("event_time", s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.ORDER_ID)
    cfg = Config(store=str(tmp_path / "store"), ingest=IngestConfig(columns={n: n for n in names}, returns="keep"))
    run_ingest(cfg, csv)
    con = open_store(cfg.store, CFG)
    want = _reference(con.execute("SELECT * FROM events").df(), CFG)  # the store's log (ingest fills segments)
    sample = np.array(sorted({u for u, *_ in want["user_item"]})[1::4], dtype=object)
    _check(list(iter_histories(con, CUTOFF, CFG, sample)), want, set(sample))


# WeeklyCrowd (issue 35): fit_recommender's 8 weekly cut-offs share one count of the crowd tables
CROWD = ("crowd_item", "crowd_segment", "item_segment", "item_repeat")
N = 3  # cut-offs: CUTOFF, CUTOFF - 7 days, CUTOFF - 14 days; the log spans their lookbacks (70 days back)


@pytest.mark.parametrize("seed", [0, 3])
def test_each_cutoffs_tables_are_those_of_its_own_window(seed):
    events = _random_log(seed)
    con = open_events(events, CFG)
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        for j in range(N):
            at = CUTOFF - timedelta(weeks=j)
            got = crowd.tables(at)
            own = histories._crowd(con, {"start": at - timedelta(weeks=CFG.lookback_weeks), "cutoff": at})
            want = _reference(events, CFG, at)
            for name, keys, frame, expected in zip(CROWD, (2, 2, 1, 1), got, own, strict=True):
                pd.testing.assert_frame_equal(frame, expected, check_exact=True)
                _same(_table(frame, keys), want[name])
            assert len(got[0]) and len(got[3])
    # the cut-offs differ: a table shared by mistake would pass the loop for one cut-off only
    assert _reference(events, CFG, CUTOFF)["crowd_item"] != _reference(events, CFG, CUTOFF - timedelta(weeks=2))[
        "crowd_item"]


def test_iter_histories_with_a_weekly_crowd_gives_the_same_histories():
    events = _random_log(1)
    con = open_events(events, CFG)
    users = np.array(sorted(events["user_id"].dropna().unique())[::2], dtype=object)
    at = CUTOFF - timedelta(weeks=1)
    alone = list(iter_histories(con, at, CFG, users))
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        shared = list(iter_histories(con, at, CFG, users, crowd=crowd))
    assert len(alone) == len(shared) > 1
    for a, b in zip(alone, shared, strict=True):
        for name in ("user_item", "user_segment", *CROWD):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def test_a_date_outside_the_cutoffs_is_refused_and_the_tables_are_dropped():
    con = open_events(_random_log(2), CFG)
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        for at in (CUTOFF + timedelta(weeks=1), CUTOFF - timedelta(weeks=N), CUTOFF - timedelta(days=3)):
            with pytest.raises(ValueError, match="weekly cut-offs"):
                crowd.tables(at)
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not tables & {histories._WEEKS, histories._REPEATS}
