"""Offline re-rank evaluation on tiny hand-counted examples: metrics, cut-offs, the weight sweep."""

import datetime
import math

import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.rank.evaluation import (RerankEvaluationError, evaluate_rerank, pool, purchases, score_lists,
                                weekly_cutoffs)

D = datetime.date


def test_score_lists_by_hand():
    ranked = pd.DataFrame({
        s.USER_ID: ["u1", "u1", "u1", "u2", "u2", "u3", "u5", "u5"],
        s.ITEM_ID: ["a", "b", "c", "a", "d", "b", "e", "a"],
        s.RANK: [1, 2, 3, 1, 2, 1, 1, 2],
    })
    targets = pd.DataFrame({s.USER_ID: ["u1", "u1", "u2", "u4", "u5"], s.ITEM_ID: ["b", "x", "d", "a", "f"]})
    got = score_lists(ranked, targets, k=2)
    # counted: u1, u2, u5 (u3 bought nothing, u4 has no list)
    # u1: b at rank 2 -> DCG 1/log2(3); 2 targets -> ideal 1 + 1/log2(3); u2: d at rank 2, ideal 1; u5: miss
    g = 1 / math.log2(3)
    assert (got["users"], got["hits"]) == (3, 2.0)
    assert got["hit_rate"] == pytest.approx(2 / 3)
    assert got["ndcg"] == pytest.approx((g / (1 + g) + g + 0.0) / 3)
    assert got["coverage"] == pytest.approx(4 / 5)  # top 2s hold a, b, d, e of a, b, c, d, e
    assert score_lists(ranked, targets, k=1)["hits"] == 0.0


def test_weekly_cutoffs_end_with_one_full_target_week():
    assert weekly_cutoffs(D(2011, 12, 9), 2) == [D(2011, 11, 26), D(2011, 12, 3)]
    with pytest.raises(RerankEvaluationError, match="weeks"):
        weekly_cutoffs(D(2011, 12, 9), 0)


EVENTS = pd.DataFrame({
    s.USER_ID: ["u1", "u1", "u1", "u2", "u1", "u2", "u4", "u2"],
    s.ITEM_ID: ["p", "p", "q", "q", "q", "p", "p", "q"],
    s.SEGMENT: ["down", "down", "up", "up", "up", "down", "down", "up"],
    s.QUANTITY: [1.0, 2.0, 1.0, 5.0, 1.0, 1.0, 3.0, -5.0],
    s.EVENT_DATE: [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 3), D(2024, 1, 4),
                   D(2024, 1, 8), D(2024, 1, 10), D(2024, 1, 9), D(2024, 1, 11)],
})


def test_purchases_in_the_target_week():
    got = purchases(EVENTS, D(2024, 1, 8))  # the return (quantity -5) is not a purchase
    pairs = sorted(map(tuple, got[[s.USER_ID, s.ITEM_ID]].to_numpy()))
    assert pairs == [("u1", "q"), ("u2", "p"), ("u4", "p")]


def test_evaluate_rerank_by_hand():
    seen = []

    def trend_at(cutoff):
        seen.append(cutoff)
        return pd.DataFrame({s.SEGMENT: ["down", "up"], s.TREND: [-1.0, 1.0]})

    table = evaluate_rerank(EVENTS, trend_at, [D(2024, 1, 8)], weights=[1.0, 0.5], n=2, k=1)
    assert seen == [D(2024, 1, 8)]  # the trend is asked for as of the cut-off
    # before the cut-off: p bought in 2 lines (u1), q in 2 (u1, u2) -> popularity 1 for both
    # u1: p 0.7*1 + 0.3 = 1.0, q 0.7*0.5 + 0.3 = 0.65; u2: q 1.0, p 0.3
    # targets: u1 buys q, u2 buys p (u4 buys too but has no list)
    # weight 0: tops u1 p, u2 q -> no hit. weight 1: u1 p 0, q 1.3 -> q, a hit; u2 q 2.0, p 0 -> miss
    # weight 0.5: u1 p 0.5, q 0.975 -> hit; u2 q 1.5, p 0.15 -> miss
    assert table["weight"].tolist() == [0.0, 0.5, 1.0]
    assert table["users"].tolist() == [2, 2, 2]
    assert table["hit_rate"].tolist() == [0.0, 0.5, 0.5]
    assert table["ndcg"].tolist() == [0.0, 0.5, 0.5]
    assert table["coverage"].tolist() == [1.0, 0.5, 0.5]  # tops {p, q}, then {q}
    pooled = pool(table)
    assert pooled["users"].tolist() == [2, 2, 2] and pooled["hit_rate"].tolist() == [0.0, 0.5, 0.5]


def test_pool_weights_users_and_computes_lift():
    table = pd.DataFrame({"cutoff": [1, 1, 2, 2], "weight": [0.0, 0.3, 0.0, 0.3], "users": [10, 10, 30, 30],
                          "hits": [5.0, 6.0, 15.0, 18.0], "ndcg_sum": [2.0, 2.0, 6.0, 5.0],
                          "coverage": [0.2, 0.4, 0.4, 0.6]})
    got = pool(table).set_index("weight")
    # base: 20 hits / 40 users = 0.5, ndcg 8/40 = 0.2; weight 0.3: 24/40 = 0.6 (+20 %), 7/40 (-12.5 %)
    assert got.loc[0.3, "hit_rate"] == pytest.approx(0.6)
    assert got.loc[0.3, "hit_rate_lift"] == pytest.approx(0.2)
    assert got.loc[0.3, "ndcg_lift"] == pytest.approx(-0.125)
    assert got.loc[0.3, "coverage"] == pytest.approx(0.5)
