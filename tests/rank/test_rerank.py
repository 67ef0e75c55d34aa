"""Re-ranking on a hand-worked two-user example, the trend formula, candidate file validation and a shop's
own list columns."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, RerankConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, StoreError
from recsys import registry
from recsys.forecast.trends import trend_score
from recsys.rank.rerank import RerankError, read_candidates, rerank, run_rerank, unknown_segments

CANDIDATES = pd.DataFrame(
    {
        s.USER_ID: ["u1", "u1", "u1", "u2", "u2", "u2"],
        s.ITEM_ID: ["x", "y", "z", "x", "w", "v"],
        s.SEGMENT: ["up", "down", "new", "up", "down", "down"],
        s.BASE_SCORE: [1.0, 1.2, 0.9, 1.0, 1.0, 1.0],
    }
)
TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})


def test_trend_score_is_bounded_symmetric_and_zero_safe():
    got = trend_score(np.array([30.0, 10.0, 0.0, 5.0, -4.0]), np.array([10.0, 30.0, 0.0, 0.0, 4.0]))
    # (30-10)/40 = 0.5, mirrored -0.5, 0/0 -> 0, only forecast -> 1, negative forecast floored at 0 -> -1
    assert got == pytest.approx([0.5, -0.5, 0.0, 1.0, -1.0])


def test_rerank_two_users_by_hand():
    before = CANDIDATES.copy()
    out = rerank(CANDIDATES, TRENDS, weight=0.4)
    # final = 0.6 * base_pct + 0.4 * trend_pct, percentiles = average rank / list length (1 = best)
    # u1: base pcts x 2/3, y 1, z 1/3; trends x .5, y -.5, z (unknown: neutral 0) -> pcts 1, 1/3, 2/3
    #     x .4 + .4 = .8, y .6 + .4/3 = .7333, z .2 + .2667 = .4667 -> x, y, z
    # u2: base all tied (2/3 each); trend pcts x 1, w and v 1/2 -> x .8, w .6, v .6 (tie: input order)
    assert out[s.USER_ID].tolist() == ["u1", "u1", "u1", "u2", "u2", "u2"]
    assert out[s.ITEM_ID].tolist() == ["x", "y", "z", "x", "w", "v"]
    assert out[s.FINAL_SCORE].tolist() == pytest.approx([0.8, 0.6 + 0.4 / 3, 0.2 + 0.4 * 2 / 3, 0.8, 0.6, 0.6])
    assert out[s.TREND].tolist() == [0.5, -0.5, 0.0, 0.5, -0.5, -0.5]
    assert out[s.SIGNAL].tolist() == ["segment_trend", "segment_trend", "base"] + ["segment_trend"] * 3
    assert out[s.RANK].tolist() == [1, 2, 3, 1, 2, 3]
    assert list(out.columns) == [*s.CANDIDATE_COLUMNS, s.TREND, s.SCORE, s.SIGNAL, s.FINAL_SCORE, s.RANK]
    pd.testing.assert_frame_equal(CANDIDATES, before)  # the input is not modified


def test_rerank_changes_order_and_keeps_user_order_and_sizes():
    cands = CANDIDATES.iloc[[3, 4, 5, 0, 1, 2]].reset_index(drop=True)  # u2 first, then u1
    cands.loc[cands[s.ITEM_ID] == "x", s.BASE_SCORE] = 0.7  # x now the lowest base score of both lists
    out = rerank(cands, TRENDS, weight=1.0)  # the trend alone orders, base breaks ties
    assert out[s.USER_ID].tolist() == ["u2"] * 3 + ["u1"] * 3
    assert out[s.ITEM_ID].tolist() == ["x", "w", "v", "x", "z", "y"]
    unchanged = rerank(cands, TRENDS, weight=0.0)  # weight 0 = order by base_score alone
    assert unchanged[s.ITEM_ID].tolist() == ["w", "v", "x", "y", "z", "x"]


def test_customer_scores_rank_scored_items_first_and_the_rest_by_trend():
    scores = pd.DataFrame({s.USER_ID: ["u1", "u1", "u9"], s.ITEM_ID: ["z", "y", "x"], s.SCORE: [0.3, 0.1, 0.9]})
    out = rerank(CANDIDATES, TRENDS, weight=0.4, scores=scores)
    # u1: z (0.3) and y (0.1) were scored by the customer model, x was not: z, y, then x
    # u2: no score for u2 (u9's is not used): the trend path as without scores
    assert out[s.ITEM_ID].tolist() == ["z", "y", "x", "x", "w", "v"]
    assert out[s.SIGNAL].tolist()[:3] == ["customer_model", "customer_model", "segment_trend"]
    assert out[s.SCORE].tolist()[:2] == [0.3, 0.1] and out[s.SCORE].isna().tolist()[2:] == [True] * 4
    # a customer weight of 0 keeps the shop's order for a scored customer
    shop = rerank(CANDIDATES, TRENDS, weight=0.4, scores=scores, customer_weight=0.0)
    assert shop[s.ITEM_ID].tolist()[:3] == ["y", "x", "z"]


def test_unknown_segments_are_counted():
    assert unknown_segments(CANDIDATES.assign(**{s.SEGMENT: ["up", "shoes", "shoes", None, "down", "up"]}),
                            TRENDS) == {"<null>": 1, "shoes": 2}
    assert unknown_segments(CANDIDATES.iloc[[0, 1]], TRENDS) == {}


def test_rerank_validates_weight_and_columns():
    with pytest.raises(RerankError, match=r"\[0, 1\]"):
        rerank(CANDIDATES, TRENDS, weight=1.5)
    with pytest.raises(RerankError, match=s.BASE_SCORE):
        rerank(CANDIDATES.drop(columns=s.BASE_SCORE), TRENDS, weight=0.3)
    with pytest.raises(RerankError, match="more than once"):
        rerank(CANDIDATES, pd.concat([TRENDS, TRENDS]), weight=0.3)


def test_read_candidates_csv_and_missing_column(tmp_path):
    good = tmp_path / "lists.csv"
    CANDIDATES.assign(**{s.USER_ID: ["007"] * 3 + ["8"] * 3}).to_csv(good, index=False)
    assert read_candidates(good)[s.USER_ID].tolist()[:1] == ["007"]  # ids stay strings
    bad = tmp_path / "bad.parquet"
    CANDIDATES.drop(columns=s.BASE_SCORE).to_parquet(bad)
    with pytest.raises(RerankError, match=rf"bad\.parquet.*{s.BASE_SCORE}.*\[rerank\.columns\]"):
        read_candidates(bad)
    no_segment = tmp_path / "no_segment.parquet"  # optional: the store's segments fill it (run_rerank)
    CANDIDATES.drop(columns=s.SEGMENT).to_parquet(no_segment)
    assert read_candidates(no_segment)[s.SEGMENT].isna().all()
    with pytest.raises(RerankError, match="not found"):
        read_candidates(tmp_path / "nope.csv")
    (tmp_path / "lists.json").write_text("{}")
    with pytest.raises(RerankError, match="parquet or .csv"):
        read_candidates(tmp_path / "lists.json")


@pytest.fixture
def production_store(small_config, trained_forecaster, push_version, tmp_path):
    """A store whose production v0001 has hand-written trend scores (TRENDS), and a candidate file."""
    store = Store(small_config.store).ensure()
    assert push_version(small_config, TRENDS, trained_forecaster) == "v0001"
    CANDIDATES.to_parquet(tmp_path / "lists.parquet")
    return small_config, store


@pytest.mark.slow
def test_run_rerank_end_to_end(production_store, tmp_path):
    cfg, store = production_store
    (store.models / registry.PRODUCTION_FILE).unlink()  # a version but no production: none is picked
    with pytest.raises(RerankError, match="no production model.*trendrec push"):
        run_rerank(cfg, tmp_path / "lists.parquet")
    assert registry.promote(store, "v0001")["changed"]
    assert registry.read_production(store) == {"version": "v0001", "history": []}
    cfg = dataclasses.replace(cfg, rerank=RerankConfig(weight=1.0))
    CANDIDATES.assign(**{s.BASE_SCORE: [0.7, 1.2, 0.9, 0.7, 1.0, 1.0]}).assign(
        **{s.SEGMENT: ["up", "down", "shoes", "up", "down", "down"]}).to_parquet(tmp_path / "lists.parquet")
    out = run_rerank(cfg, tmp_path / "lists.parquet")
    # as in test_rerank_changes_order...: u1 x, z, y (changed); u2 x first (changed from w, v, x)
    assert (out["rows"], out["users"], out["model_version"], out["lists_changed"]) == (6, 2, "v0001", 2)
    assert out["unknown_segments"] == {"shoes": 1}  # counted, not silently neutral
    assert out["signals"] == {"base": 1, "segment_trend": 5, "customer_model": 0}  # no customer model in v0001
    written = pd.read_parquet(out["output"])
    assert out["output"] == str(store.reranked / "lists.parquet")
    assert written[s.ITEM_ID].tolist() == ["x", "z", "y", "x", "w", "v"]
    with pytest.raises(StoreError, match="outside the store"):
        run_rerank(cfg, tmp_path / "lists.parquet", output=tmp_path / "elsewhere.parquet")
    inside = run_rerank(cfg, tmp_path / "lists.parquet", output="reranked/custom.parquet")
    assert inside["output"] == str(store.reranked / "custom.parquet")


def test_rerank_with_non_string_segments_and_empty_input():
    cands = CANDIDATES.assign(**{s.SEGMENT: [1, 2, 3, 1, 2, 2]})
    trends = pd.DataFrame({s.SEGMENT: [1, 2], s.TREND: [0.5, -0.5]})
    assert rerank(cands, trends, 0.4)[s.ITEM_ID].tolist() == ["x", "y", "z", "x", "w", "v"]
    assert rerank(CANDIDATES.iloc[:0], TRENDS, 0.4).empty


SHOP_EVENTS = """event_time,item_id,quantity,price,user_id,segment
2024-01-01 10:00:00,x,1,1.0,17850,down
2024-02-01 10:00:00,x,1,1.0,17850,up
2024-01-05 10:00:00,y,2,2.0,9,down
"""


def test_a_shops_own_columns_without_segments_rerank(small_config, push_version, tmp_path):
    """A recommender's `customer, sku, logit` file: mapped by [rerank.columns], segments from the store."""
    ingest = IngestConfig(columns={f: f for f in ("event_time", "item_id", "quantity", "price", "user_id", "segment")})
    cfg = dataclasses.replace(small_config, ingest=ingest, rerank=RerankConfig(
        weight=1.0, columns={"user_id": "customer", "item_id": "sku", "base_score": "logit"}))
    (tmp_path / "events.csv").write_text(SHOP_EVENTS)
    run_ingest(cfg, tmp_path / "events.csv")
    assert push_version(cfg, TRENDS) == "v0001"
    # x was "down", is "up" in its latest event; y is "down"; "nope" the events never had
    (tmp_path / "shop.csv").write_text("customer,sku,logit\n17850,y,0.9\n17850,x,0.1\n17850,nope,0.5\n")
    out = run_rerank(cfg, tmp_path / "shop.csv")
    assert (out["rows"], out["users"], out["segments_from_store"]) == (3, 1, 2)
    assert out["unknown_items"] == {"count": 1, "items": ["nope"]}  # counted and named, as unknown segments
    assert out["unknown_segments"] == {"<null>": 1}
    written = pd.read_parquet(out["output"])
    assert written[s.ITEM_ID].tolist() == ["x", "nope", "y"]  # trend alone: up, neutral, down
    assert written[s.SEGMENT].fillna("<null>").tolist() == ["up", "<null>", "down"]
    assert written[s.USER_ID].tolist() == ["17850"] * 3
    unmapped = dataclasses.replace(cfg, rerank=RerankConfig())
    with pytest.raises(RerankError, match=r"shop\.csv: missing column\(s\) user_id, item_id, base_score.*"
                                          r"customer, sku, logit.*\[rerank\.columns\]"):
        run_rerank(unmapped, tmp_path / "shop.csv")


@pytest.mark.slow
def test_a_rerank_sweeps_the_temp_file_a_killed_rerank_of_the_same_output_left(production_store, tmp_path):
    cfg, store = production_store
    store.reranked.mkdir(parents=True, exist_ok=True)
    killed = store.reranked / ".lists.parquet.x1y2z3.tmp"  # what atomic_path leaves when SIGKILL lands in it
    other = store.reranked / ".custom.parquet.a1b2c3.tmp"  # another output's: not this rerank's to remove
    killed.write_bytes(b"half a parquet")
    other.write_bytes(b"half a parquet")
    run_rerank(cfg, tmp_path / "lists.parquet")
    record = next(store.skew.glob("*/rerank-*.json"))  # its skew record, named after the output
    killed_record = store.skew / "2011-01-01" / f".{record.name}.q9w8e7.tmp"
    killed_record.parent.mkdir()
    killed_record.write_text("{")
    killed.write_bytes(b"half a parquet")
    run_rerank(cfg, tmp_path / "lists.parquet")
    assert not killed.exists() and not killed_record.exists() and other.exists()
    assert sorted(p.name for p in store.reranked.iterdir()) == [other.name, "lists.parquet"]

