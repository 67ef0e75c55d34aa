"""Re-ranking on a hand-worked two-user example, the trend formula, and candidate file validation."""

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.rerank import RerankError, read_candidates, rerank, trend_score

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
