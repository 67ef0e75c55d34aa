"""recsys.evaluation.metrics on three customers whose every figure is worked out by hand below."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.evaluation.metrics import ranks_by_score, recall_at_k, score_users, summarise

L3 = 1 / math.log2(3)  # gain at rank 2: 0.63093
L4 = 1 / math.log2(4)  # rank 3: 0.5
L5 = 1 / math.log2(5)  # rank 4: 0.43068


def pairs(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID])


@pytest.fixture
def scored() -> pd.DataFrame:
    # u1 targets {a (bought before), d (new)}; u2 {b (before), e, f (new)}; u3 {g (new)}, no list.
    targets = pairs([("u1", "a"), ("u1", "d"), ("u2", "b"), ("u2", "e"), ("u2", "f"), ("u3", "g")])
    history = pairs([("u1", "a"), ("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "b"), ("u2", "c"),
                     ("u3", "h")])
    ranked = pd.DataFrame({s.USER_ID: ["u1", "u1", "u1", "u2", "u2", "u2", "u9"],
                           s.ITEM_ID: ["a", "b", "d", "c", "e", "f", "a"],
                           s.RANK: [1, 2, 3, 1, 2, 11, 1]})  # f at rank 11 is past k = 10; u9 has no target
    return score_users(ranked, targets, history, k=10).set_index(s.USER_ID)


def test_per_customer_figures_by_hand(scored):
    # u1: hits a@1, d@3 of 2 targets. DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.63093.
    assert scored.loc["u1", "recall"] == 1.0
    assert scored.loc["u1", "ndcg"] == pytest.approx((1 + L4) / (1 + L3))  # 0.91972
    assert (scored.loc["u1", "repeat_recall"], scored.loc["u1", "explore_recall"]) == (1.0, 1.0)
    # u2: only e@2 counts (f is at rank 11). recall 1/3; DCG = 1/log2(3); IDCG = 1 + 0.63093 + 0.5.
    assert scored.loc["u2", "recall"] == pytest.approx(1 / 3)
    assert scored.loc["u2", "ndcg"] == pytest.approx(L3 / (1 + L3 + L4))  # 0.29609
    assert scored.loc["u2", "repeat_recall"] == 0.0  # b missed
    assert scored.loc["u2", "explore_recall"] == 0.5  # e of {e, f}
    # u3: no list, every target missed; no repeat target, so repeat_recall is undefined.
    assert (scored.loc["u3", "recall"], scored.loc["u3", "ndcg"], scored.loc["u3", "phr"]) == (0, 0, 0)
    assert math.isnan(scored.loc["u3", "repeat_recall"])
    assert scored.loc["u3", "explore_recall"] == 0.0
    assert "u9" not in scored.index  # a list without targets is not scored


def test_summary_means_by_hand(scored):
    out = summarise(scored.reset_index(), k=10)
    assert out["recall@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # 4/9 = 0.44444
    assert out["ndcg@10"] == pytest.approx(((1 + L4) / (1 + L3) + L3 / (1 + L3 + L4)) / 3)  # 0.40527
    assert out["phr@10"] == pytest.approx(2 / 3)
    assert out["repeat_recall@10"] == pytest.approx((1 + 0) / 2)  # over u1, u2 only
    assert out["explore_recall@10"] == pytest.approx((1 + 0.5 + 0) / 3)  # 0.5
    assert (out["users"], out["repeat_users"], out["explore_users"]) == (3, 2, 3)


def test_ideal_dcg_caps_at_k():
    # 12 targets, all 10 slots hit: IDCG has min(10, 12) = 10 terms, so NDCG@10 = 1 while recall = 10/12.
    targets = pairs([("u", f"i{j:02d}") for j in range(12)])
    ranked = targets.iloc[:10].assign(**{s.RANK: range(1, 11)})
    row = score_users(ranked, targets, pairs([]), k=10).iloc[0]
    assert row["ndcg"] == pytest.approx(1.0)
    assert row["recall"] == pytest.approx(10 / 12)


def test_ranks_by_score_within_groups_ties_in_row_order():
    groups = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.5])
    assert ranks_by_score(groups, scores).tolist() == [2, 2, 1, 1, 3]  # the two 0.5 of group 1 keep their order


def test_recall_at_k_on_arrays_by_hand():
    # group 0: targets ranked 1 and 4 of 3 targets; group 1: its target unranked (NaN); group 2: no target
    groups = np.array([0, 0, 0, 1, 2])
    ranks = np.array([1, 4, 2, np.nan, 1])
    labels = np.array([1, 1, 0, 1, 0])
    out = recall_at_k(groups, ranks, labels, np.array([3, 2, 0]), k=3)
    assert out[:2].tolist() == [1 / 3, 0.0]
    assert np.isnan(out[2])
