"""``trendrec evaluate-rerank``: the protocol's cut-offs and targets, the method table, the JSON it writes."""

import datetime
import json

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry
from recsys.evaluation.coldstart import GRID, POPULATIONS
from recsys.offline.cold_start import METHODS as COLD_METHODS
from recsys.offline.evaluate_rerank import METHODS, RerankEvaluationError, build_methods, run_evaluate_rerank, wins
from recsys.evaluation.protocol import ProtocolError, purchases, weekly_cutoffs

D = datetime.date

EVENTS = pd.DataFrame({
    s.USER_ID: ["u1", "u1", "u1", "u2", "u1", "u2", "u4", "u2"],
    s.ITEM_ID: ["p", "p", "q", "q", "q", "p", "p", "q"],
    s.SEGMENT: ["down", "down", "up", "up", "up", "down", "down", "up"],
    s.QUANTITY: [1.0, 2.0, 1.0, 5.0, 1.0, 1.0, 3.0, -5.0],
    s.EVENT_DATE: [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 3), D(2024, 1, 4),
                   D(2024, 1, 8), D(2024, 1, 10), D(2024, 1, 9), D(2024, 1, 11)],
})


def test_weekly_cutoffs_end_with_one_full_target_week():
    assert weekly_cutoffs(D(2011, 12, 9), 2) == [D(2011, 11, 26), D(2011, 12, 3)]
    with pytest.raises(ProtocolError, match="weeks"):
        weekly_cutoffs(D(2011, 12, 9), 0)


def test_purchases_in_the_target_week():
    got = purchases(EVENTS, D(2024, 1, 8))  # the return (quantity -5) is not a purchase
    pairs = sorted(map(tuple, got[[s.USER_ID, s.ITEM_ID]].to_numpy()))
    assert pairs == [("u1", "q"), ("u2", "p"), ("u4", "p")]


def test_method_table_and_unknown_methods(small_config):
    assert list(build_methods(small_config, ["base", "g_topfreq"], None)) == ["g_topfreq", "base"]  # METHODS order
    with pytest.raises(RerankEvaluationError, match="unknown method.*'best'"):
        build_methods(small_config, ["best"], None)
    assert METHODS[-2:] == ("segment_trend", "lstm_recommender")


def test_wins_count_cutoffs_beating_every_baseline_that_ran():
    row = lambda a, b, m: {"p_topfreq": {"recall@10": a}, "tifu_knn": {"recall@10": b}, "lstm": {"recall@10": m}}
    result = {"cutoffs": [row(0.2, 0.21, 0.22), row(0.2, 0.25, 0.22), row(0.3, 0.1, 0.3)]}
    assert wins(result, ["p_topfreq", "tifu_knn", "lstm"]) == {"lstm": 1}  # a tie is not a win


@pytest.mark.slow
def test_evaluate_rerank_on_a_store_prints_the_issue_shape(small_store):
    methods = ["g_topfreq", "p_topfreq", "segment_trend", "lstm_recommender"]
    out = run_evaluate_rerank(small_store, weeks=1, methods=methods)
    assert set(out["pooled"]) == set(methods) and len(out["cutoffs"]) == 1
    for name in methods:
        figures = out["pooled"][name]
        assert set(figures) == {"recall@10", "ndcg@10", "phr@10", "repeat_recall@10", "explore_recall@10", "users"}
        assert figures["users"] == out["pooled"]["g_topfreq"]["users"] > 0  # one population for every method
        assert 0.0 <= figures["recall@10"] <= 1.0
    assert set(out["cutoffs"][0]) == {"cutoff", *methods}
    assert set(out["wins_over_best_baseline"]) == {"segment_trend", "lstm_recommender"}
    written = json.loads((Store(small_store.store).reranked / "evaluation.json").read_text())
    assert written["pooled"] == json.loads(json.dumps(out["pooled"]))
    cold = written["cold_start"]  # its own section: new customers, guest orders, items outside the candidates
    assert set(cold["pooled"]) == set(POPULATIONS) and cold["methods"] == list(COLD_METHODS)
    for population, by_method in cold["pooled"].items():
        counts = {f["lists"] for f in by_method.values()}
        assert len(counts) == 1 and counts.pop() > 0, population  # every method on the same lists
        assert set(by_method) == set(COLD_METHODS) - ({"base"} if population != "outside_candidates" else set())
    assert cold["cutoffs"][0]["chosen_weight"] in GRID and cold["release_choice"]["weight"] in GRID
    assert cold["release_choice"]["week_from"] == cold["cutoffs"][-1]["cutoff"]  # the week after the last cut-off


@pytest.mark.slow
def test_a_push_records_the_segment_trend_weight_chosen_on_validation(small_store):
    release = registry.production(Store(small_store.store))
    choice = release.metadata[registry.TREND_WEIGHT_KEY]
    assert set(choice["ndcg@10"]) == {str(w) for w in GRID} and choice["weight"] in GRID
    assert choice["helped"] == (choice["weight"] > 0) and choice["reason"] and choice["rule"]
    if choice["helped"]:  # on only with a clear gain at the chosen weight
        gain = choice["gains"][str(choice["weight"])]
        assert gain["worse"] == [] and gain["relative"] >= 0.02 and gain["lower"] > 0
    assert choice["week_from"] == "2011-12-03"  # the last full week of the sample
    assert set(choice["populations"]) == set(POPULATIONS)
