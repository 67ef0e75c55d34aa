"""The base recommender on a hand-counted event log, and its command on a real ingested store."""

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, StoreError, read_events, write_parquet
from recsys.evaluation.candidates import (CANDIDATE_SCHEMA, EVENT_COLUMNS, CandidatesError, build_candidates,
                                          sample_users, write_candidates)

AS_OF = date(2024, 3, 1)


def _events(rows):
    return pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE])


EVENTS = _events([
    ("u1", "a", "s1", 1.0, date(2024, 2, 20)),
    ("u1", "a", "s1", 1.0, date(2024, 1, 5)),  # old: counts for u1's own items, not for popularity
    ("u1", "b", "s2", 1.0, date(2024, 2, 21)),
    ("u2", "b", "s2", 1.0, date(2024, 2, 22)),
    ("u2", "c", "s3", 5.0, date(2024, 2, 23)),
    ("u3", "c", "s3", 1.0, date(2024, 1, 2)),  # u3 is not active in the last 28 days
    ("u2", "d", "s3", -1.0, date(2024, 2, 24)),  # a return: ignored
    (None, "b", "s2", 1.0, date(2024, 2, 25)),  # a guest: ignored
    ("u1", "c", "s3", 1.0, date(2024, 3, 1)),  # on as_of: not before it
])


def test_build_candidates_by_hand():
    out = build_candidates(EVENTS, AS_OF, n=3, recent_days=28)
    # popularity over Feb 2..29 (lines): b 2, a 1, c 1 -> b 1.0, a 0.5, c 0.5
    # u1 own lines: a 2, b 1 -> a 1.0, b 0.5 ; u2 own: b 1, c 1 -> 1.0 each
    # u1: a .7*1+.3*.5 = .85, b .7*.5+.3*1 = .65, c .3*.5 = .15
    # u2: b .7+.3 = 1.0, c .7+.15 = .85, a .15
    assert out[s.USER_ID].tolist() == ["u1"] * 3 + ["u2"] * 3
    assert out[s.ITEM_ID].tolist() == ["a", "b", "c", "b", "c", "a"]
    assert out[s.BASE_SCORE].tolist() == pytest.approx([0.85, 0.65, 0.15, 1.0, 0.85, 0.15])
    assert out[s.SEGMENT].tolist() == ["s1", "s2", "s3", "s2", "s3", "s1"]
    assert list(out.columns) == list(s.CANDIDATE_COLUMNS)


def test_build_candidates_n_and_determinism():
    out = build_candidates(EVENTS, AS_OF, n=1)
    assert out[s.ITEM_ID].tolist() == ["a", "b"]
    shuffled = EVENTS.sample(frac=1.0, random_state=3)
    expected = build_candidates(EVENTS, AS_OF, n=3)
    pd.testing.assert_frame_equal(build_candidates(shuffled, AS_OF, n=3), expected)


def test_build_candidates_no_active_user_and_bad_n():
    assert build_candidates(EVENTS, date(2023, 1, 1)).empty
    with pytest.raises(CandidatesError, match="n and recent_days"):
        build_candidates(EVENTS, AS_OF, n=0)


def test_sample_users_is_stable():
    lists = build_candidates(EVENTS, AS_OF, n=3)
    one = sample_users(lists, 1)
    assert one[s.USER_ID].nunique() == 1 and len(one) == 3
    pd.testing.assert_frame_equal(one, sample_users(lists.iloc[::-1], 1).sort_values(
        [s.USER_ID, s.BASE_SCORE], ascending=[True, False]).reset_index(drop=True))


def test_write_candidates_from_a_store(tmp_path):
    csv = tmp_path / "e.csv"
    csv.write_text("ts,item,qty,price,user,cat\n"
                   "2024-02-20 09:00:00,a,1,1.0,u1,s1\n2024-02-21 09:00:00,b,2,1.0,u2,s2\n")
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"})
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    run_ingest(cfg, csv)
    summary = write_candidates(cfg, as_of="2024-03-01", users=5, output="lists/cands.parquet")
    lists = pd.read_parquet(summary["output"])
    assert summary["output"] == str(Store(cfg.store).root / "lists" / "cands.parquet")
    assert sorted(lists[s.USER_ID].unique()) == ["u1", "u2"] and len(lists) == 4
    with pytest.raises(StoreError, match="outside the store"):
        write_candidates(cfg, output=str(tmp_path / "elsewhere.parquet"))
    with pytest.raises(StoreError, match="run `trendrec ingest` first"):  # nothing ingested
        write_candidates(dataclasses.replace(cfg, store=str(tmp_path / "empty")))


def _store_with_ties(tmp_path):
    """A store whose 60 days hold 40 users (more than the sample), guests, returns and equal counts."""
    lines = ["ts,item,qty,price,user,cat"]
    for k in range(600):
        user = "" if k % 11 == 0 else f"u{k % 40:02d}"  # a guest: no user id
        qty = -1 if k % 13 == 0 else 1 + k % 3  # a return
        day = date(2024, 1, 1) + timedelta(days=(k * 7) % 60)
        lines.append(f"{day} 10:00:00,i{k % 7},{qty},1.0,{user},s{(k // 7) % 2}")
    csv = tmp_path / "e.csv"
    csv.write_text("\n".join(lines) + "\n")
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "user", "segment": "cat"}, returns="keep")
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    run_ingest(cfg, csv)
    return cfg


@pytest.mark.parametrize("as_of, users, n", [("2024-03-01", 7, 4), ("2024-02-10", 100, 3), (None, 1, 20)])
def test_write_candidates_is_the_frame_path_sampled(tmp_path, as_of, users, n):
    cfg = _store_with_ties(tmp_path)
    events = read_events(Store(cfg.store), EVENT_COLUMNS)
    assert events[s.USER_ID].isna().any() and (events[s.QUANTITY] < 0).any()
    summary = write_candidates(cfg, as_of=as_of, users=users, n=n, output="lists/cands.parquet")
    day = date.fromisoformat(summary["as_of"])
    assert day == (date.fromisoformat(as_of) if as_of else max(events[s.EVENT_DATE]) + timedelta(days=1))
    every = build_candidates(events, day, n)
    expected = sample_users(every, users)
    assert every.duplicated([s.USER_ID, s.BASE_SCORE]).any()  # ties inside a list, broken by item id
    assert summary["users"] == expected[s.USER_ID].nunique() == min(users, every[s.USER_ID].nunique())
    pd.testing.assert_frame_equal(pd.read_parquet(summary["output"]), expected, check_exact=True)
    write_parquet(pa.Table.from_pandas(expected, schema=CANDIDATE_SCHEMA, preserve_index=False),
                  tmp_path / "whole.parquet")  # how the lists were written from the DataFrame: the same bytes
    assert (tmp_path / "whole.parquet").read_bytes() == Path(summary["output"]).read_bytes()


def test_ties_break_by_item_id_and_segment_name():
    events = _events([
        ("u1", "y", "t1", 1.0, date(2024, 2, 20)),
        ("u1", "x", "t2", 1.0, date(2024, 2, 21)),
        ("u2", "x", "t1", 1.0, date(2024, 1, 5)),  # u2 is not active; x's segments tie 1-1: t1 wins
    ])
    # x and y: one recent line each (popularity 1.0), one own line each for u1 (personal 1.0): 1.0 both
    out = build_candidates(events, AS_OF, n=2)
    assert list(out.itertuples(index=False)) == [("u1", "x", "t1", 1.0), ("u1", "y", "t1", 1.0)]
    assert build_candidates(events, AS_OF, n=1)[s.ITEM_ID].tolist() == ["x"]
