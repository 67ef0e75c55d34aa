"""`trendrec rerank` in batches of users ([rerank] batch_users) writes the file, summary and skew record of one batch.

The lists interleave their users, some users have push-time scores and some not, some segments are unknown
and some rows have none (filled from the store's events, or not: an item the events never had). With two
users a batch several batches run; the file must be the same bytes as one batch's, which is today's
one-shot conversion of the whole lists, and a subset of users reads only the score table's row groups
that can hold them.
"""

import dataclasses
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, RerankConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.lists import with_store_segments
from pipeline.store import Store
from recsys import registry
from recsys.rank import scores as score_table
from recsys.rank.listfile import ListFile, RerankError
from recsys.rank.rerank import rank_candidates, read_candidates, run_rerank
from recsys.rank.signals import ReleaseSignals

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})
EVENTS = """event_time,item_id,quantity,price,user_id,segment
2024-01-01 10:00:00,x,1,1.0,17850,down
2024-02-01 10:00:00,x,1,1.0,17850,up
2024-01-05 10:00:00,y,2,2.0,9,down
"""
SCORES = pd.DataFrame({s.USER_ID: ["u1", "u1", "u3", "u5", "nobody"], s.ITEM_ID: ["x", "y", "z", "w", "x"],
                       s.SCORE: [0.9, 0.1, 0.6, 0.3, 0.5]})
# users interleaved; None and "" segments (x, y are in the events, "nope" not); "shoes" no trend knows
LISTS = pd.DataFrame({
    s.USER_ID: ["u1", "u2", "u1", "u3", "u2", "u4", "u1", "u5", "u3", "u4", "u6", "u5", "u2", "u6", "u7"],
    s.ITEM_ID: ["x", "x", "y", "z", "nope", "y", "z", "w", "x", "w", "x", "x", "y", "nope", "y"],
    s.SEGMENT: ["up", None, "", "shoes", None, "down", "up", "down", "up", "shoes", "", "up", "down", "up", None],
    s.BASE_SCORE: [1.0, 0.5, 1.2, 0.9, 2.0, 1.0, 0.3, 0.7, 1.1, 1.0, 0.2, 0.4, 0.6, 0.8, 1.0]})


@pytest.fixture
def shop(small_config, push_version, tmp_path):
    ingest = IngestConfig(columns={f: f for f in ("event_time", "item_id", "quantity", "price", "user_id", "segment")})
    cfg = dataclasses.replace(small_config, ingest=ingest, rerank=RerankConfig(weight=0.5))
    (tmp_path / "events.csv").write_text(EVENTS)
    run_ingest(cfg, tmp_path / "events.csv")
    assert push_version(cfg, TRENDS, scores=SCORES) == "v0001"
    return cfg, Store(cfg.store)


def _run(cfg, lists, batch_users: int, name: str):
    """run_rerank's summary and its skew record's counts, ``batch_users`` users a batch."""
    cfg = dataclasses.replace(cfg, rerank=dataclasses.replace(cfg.rerank, batch_users=batch_users))
    skew = Store(cfg.store).skew
    before = set(skew.glob("*/rerank-*.json"))
    out = run_rerank(cfg, lists, output=f"reranked/{name}.parquet")
    (record,) = set(skew.glob("*/rerank-*.json")) - before
    return out, json.loads(record.read_text())["versions"]


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_batches_of_users_give_the_one_batch_file_summary_and_skew(shop, tmp_path, suffix):
    cfg, store = shop
    lists = tmp_path / f"lists.{suffix}"
    LISTS.to_parquet(lists) if suffix == "parquet" else LISTS.to_csv(lists, index=False)
    one, one_skew = _run(cfg, lists, 1000, "one")
    many, many_skew = _run(cfg, lists, 2, "many")
    assert ListFile.open(lists, {}, 2).n_batches == 4
    assert pq.read_table(one["output"]).equals(pq.read_table(many["output"]))
    assert open(one["output"], "rb").read() == open(many["output"], "rb").read()
    assert {**one, "output": ""} == {**many, "output": ""}
    assert one_skew == many_skew and one_skew["v0001"]["lists"] == 7
    assert (one["users"], one["segments_from_store"], one["unknown_items"]) == (7, 4, {"count": 1, "items": ["nope"]})
    assert one["unknown_segments"] == {"<null>": 1, "shoes": 2}
    assert one["customers_scored"] == 3 and one["lists_changed"] >= 1
    # today's one-shot: every row read, ranked and converted at once
    whole, _ = with_store_segments(read_candidates(lists), store, cfg.aggregate.memory_limit)
    release = registry.production(store)
    signals = ReleaseSignals.load(release, whole[s.USER_ID].unique())
    want = pa.Table.from_pandas(rank_candidates(whole, signals, 0.5, 1.0), preserve_index=False)
    got = pq.read_table(many["output"])
    assert got.equals(want) and got.schema.metadata == want.schema.metadata
    assert got.column(s.USER_ID).to_pylist()[:4] == ["u1", "u1", "u1", "u2"]  # first-appearance order


def test_a_batch_of_rows_without_segments_first_still_writes_text_segments(shop, tmp_path):
    cfg, _ = shop
    lists = tmp_path / "lists.parquet"
    u1 = (LISTS[s.USER_ID] == "u1").to_numpy()  # the first batch of one user: no row of it has a segment
    LISTS.assign(**{s.ITEM_ID: LISTS[s.ITEM_ID].where(~u1, "nope"),
                    s.SEGMENT: LISTS[s.SEGMENT].where(~u1, None)}).to_parquet(lists)
    one, _ = _run(cfg, lists, 1000, "one")
    many, _ = _run(cfg, lists, 1, "many")
    assert open(one["output"], "rb").read() == open(many["output"], "rb").read()


def test_a_bad_row_is_named_by_its_row_in_the_file(tmp_path):
    lists = tmp_path / "lists.parquet"
    LISTS.assign(**{s.BASE_SCORE: LISTS[s.BASE_SCORE].astype(object).where(LISTS.index != 9, "n/a")}).astype(
        {s.BASE_SCORE: str}).to_parquet(lists)
    with pytest.raises(RerankError, match="row 10 has a non-numeric base_score"):
        for _ in ListFile.open(lists, {}, 2).batches():
            pass
    LISTS.assign(**{s.USER_ID: LISTS[s.USER_ID].where(LISTS.index != 4, None)}).to_parquet(lists)
    with pytest.raises(RerankError, match="row 5 has no user_id"):
        ListFile.open(lists, {}, 2)
    with pytest.raises(RerankError, match="batch_users must be >= 1"):
        ListFile.open(lists, {}, 0)


def test_an_empty_list_file_is_one_empty_batch(tmp_path):
    LISTS.iloc[:0].to_parquet(tmp_path / "lists.parquet")
    lists = ListFile.open(tmp_path / "lists.parquet", {}, 2)
    assert (lists.n_batches, lists.n_users) == (1, 0)
    assert [len(b) for b in lists.batches()] == [0]


def test_the_scores_of_some_users_read_only_their_row_groups(tmp_path):
    table = pa.table({s.USER_ID: [f"u{k:03d}" for k in range(100) for _ in range(3)],
                      s.ITEM_ID: [f"i{j}" for _ in range(100) for j in range(3)], s.SCORE: [0.5] * 300})
    pq.write_table(table, tmp_path / "scores.parquet", row_group_size=30)  # 10 users a group, sorted
    file = pq.ParquetFile(tmp_path / "scores.parquet")
    assert score_table._groups_of(file, ["u005", "u007", "u055", "zzz"]) == [0, 5]
    got = score_table.read_table(tmp_path / "scores.parquet", ["u007", "u055", "zzz"])
    assert got.column(s.USER_ID).to_pylist() == ["u007"] * 3 + ["u055"] * 3
    assert score_table.read_table(tmp_path / "scores.parquet", []).num_rows == 0
    assert score_table.read_table(tmp_path / "scores.parquet").num_rows == 300
