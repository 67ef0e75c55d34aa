"""Re-ranking on a hand-worked two-user example, the trend formula, and candidate file validation."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import RerankConfig
from pipeline.store import Store, StoreError
from recsys import registry
from recsys.forecast.trends import trend_score
from recsys.rank.rerank import RerankError, read_candidates, rerank, run_rerank

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
    # u1: x 1.0*(1+0.2)=1.2, y 1.2*(1-0.2)=0.96, z (unknown segment, neutral) 0.9 -> x, y, z
    # u2: x 1.2, w 0.8, v 0.8 (a tie: w stays before v as in the input)
    assert out[s.USER_ID].tolist() == ["u1", "u1", "u1", "u2", "u2", "u2"]
    assert out[s.ITEM_ID].tolist() == ["x", "y", "z", "x", "w", "v"]
    assert out[s.FINAL_SCORE].tolist() == pytest.approx([1.2, 0.96, 0.9, 1.2, 0.8, 0.8])
    assert out[s.TREND].tolist() == [0.5, -0.5, 0.0, 0.5, -0.5, -0.5]
    assert out[s.RANK].tolist() == [1, 2, 3, 1, 2, 3]
    assert list(out.columns) == [*s.CANDIDATE_COLUMNS, s.TREND, s.FINAL_SCORE, s.RANK]
    pd.testing.assert_frame_equal(CANDIDATES, before)  # the input is not modified


def test_rerank_changes_order_and_keeps_user_order_and_sizes():
    cands = CANDIDATES.iloc[[3, 4, 5, 0, 1, 2]].reset_index(drop=True)  # u2 first, then u1
    cands.loc[cands[s.ITEM_ID] == "x", s.BASE_SCORE] = 0.7  # x now loses without the trend
    out = rerank(cands, TRENDS, weight=1.0)
    # u2: x 0.7*1.5=1.05, w 0.5, v 0.5 ; u1: x 1.05, y 1.2*0.5=0.6, z 0.9 -> x, z, y
    assert out[s.USER_ID].tolist() == ["u2"] * 3 + ["u1"] * 3
    assert out[s.ITEM_ID].tolist() == ["x", "w", "v", "x", "z", "y"]
    unchanged = rerank(cands, TRENDS, weight=0.0)  # weight 0 = order by base_score alone
    assert unchanged[s.ITEM_ID].tolist() == ["w", "v", "x", "y", "z", "x"]
    assert unchanged[s.FINAL_SCORE].tolist() == pytest.approx([1.0, 1.0, 0.7, 1.2, 0.9, 0.7])


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
    CANDIDATES.drop(columns=s.SEGMENT).to_parquet(bad)
    with pytest.raises(RerankError, match=rf"bad\.parquet.*{s.SEGMENT}"):
        read_candidates(bad)
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
    CANDIDATES.assign(**{s.BASE_SCORE: [0.7, 1.2, 0.9, 0.7, 1.0, 1.0]}).to_parquet(tmp_path / "lists.parquet")
    out = run_rerank(cfg, tmp_path / "lists.parquet")
    # as in test_rerank_changes_order...: u1 x, z, y (changed); u2 x 1.05 first (changed from w, v, x)
    assert (out["rows"], out["users"], out["model_version"], out["lists_changed"]) == (6, 2, "v0001", 2)
    written = pd.read_parquet(out["output"])
    assert out["output"] == str(store.reranked / "lists.parquet")
    assert written[s.ITEM_ID].tolist() == ["x", "z", "y", "x", "w", "v"]
    with pytest.raises(StoreError, match="outside the store"):
        run_rerank(cfg, tmp_path / "lists.parquet", output=tmp_path / "elsewhere.parquet")
    inside = run_rerank(cfg, tmp_path / "lists.parquet", output="reranked/custom.parquet")
    assert inside["output"] == str(store.reranked / "custom.parquet")


def _reference(cands: pd.DataFrame, trends: pd.DataFrame, weight: float) -> pd.DataFrame:
    """The plain pandas definition: stable sort by (user's first appearance, -final_score)."""
    trend = cands[s.SEGMENT].map(trends.set_index(s.SEGMENT)[s.TREND]).fillna(0.0)
    final = cands[s.BASE_SCORE] * (1.0 + weight * trend)
    keys = pd.DataFrame({"u": pd.factorize(cands[s.USER_ID])[0], "f": -final})
    return cands.iloc[keys.sort_values(["u", "f"], kind="mergesort").index]


@pytest.mark.parametrize("layout", ["equal", "ragged", "interleaved", "skewed"])
def test_vectorised_rerank_matches_the_pandas_definition(layout):
    rng = np.random.default_rng(1)
    sizes = {"equal": [5] * 40, "ragged": rng.integers(1, 9, 40), "interleaved": [5] * 40,
             "skewed": [1] * 40 + [2000]}[layout]
    users = np.repeat([f"u{i}" for i in range(len(sizes))], sizes)
    if layout == "interleaved":
        users = rng.permutation(users)  # a user's rows are spread over the file
    n = len(users)
    cands = pd.DataFrame({s.USER_ID: users, s.ITEM_ID: [f"i{i}" for i in range(n)],
                          s.SEGMENT: rng.choice(["up", "down", "new"], n),
                          s.BASE_SCORE: rng.integers(0, 4, n) / 4})  # many ties
    out = rerank(cands, TRENDS, weight=0.5)
    expected = _reference(cands, TRENDS, 0.5)
    assert out[s.ITEM_ID].tolist() == expected[s.ITEM_ID].tolist()
    assert out[s.USER_ID].tolist() == expected[s.USER_ID].tolist()
    assert out[s.RANK].tolist() == expected.groupby(s.USER_ID, sort=False).cumcount().add(1).tolist()


def test_rerank_with_non_string_segments_and_empty_input():
    cands = CANDIDATES.assign(**{s.SEGMENT: [1, 2, 3, 1, 2, 2]})
    trends = pd.DataFrame({s.SEGMENT: [1, 2], s.TREND: [0.5, -0.5]})
    assert rerank(cands, trends, 0.4)[s.ITEM_ID].tolist() == ["x", "y", "z", "x", "w", "v"]
    assert rerank(CANDIDATES.iloc[:0], TRENDS, 0.4).empty
