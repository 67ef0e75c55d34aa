"""The segment-trend weight comes from the release (chosen on validation), or from the config when set.

Batch ``run_rerank`` and a real HTTP service read it the same way (``recsys.rank.signals.trend_weight``);
``trendrec status`` says which weight is used and why.
"""

import dataclasses

import httpx
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import ConfigError, load_config
from pipeline.store import Store
from recsys import registry
from recsys.rank.rerank import run_rerank
from recsys.rank.signals import ReleaseSignals, trend_weight
from recsys.report.status import status_lines, store_status
from recsys.serve.app import create_app, serving

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})
LIST = [("x", "down", 3.0), ("y", "up", 1.0), ("z", "down", 2.0)]
ON = {"weight": 1.0, "helped": True, "week_from": "2024-01-22", "populations": {"new_customers": 12},
      "ndcg@10": {"0.0": 0.21, "0.05": 0.21, "0.1": 0.22, "0.2": 0.23, "0.5": 0.24, "1.0": 0.25}}
OFF = {"weight": 0.0, "helped": False, "week_from": "2024-01-22", "populations": {"guest_orders": 40},
       "ndcg@10": {"0.0": 0.30, "0.05": 0.2912, "0.1": 0.28, "0.2": 0.27, "0.5": 0.2, "1.0": 0.1}}


def test_the_config_overrides_the_release_and_a_release_without_a_choice_ranks_without_trends():
    chosen = ReleaseSignals({}, chosen_weight=0.2)
    assert trend_weight(None, chosen) == 0.2
    assert trend_weight(0.0, chosen) == 0.0  # an explicit 0 is a choice too
    assert trend_weight(None, ReleaseSignals({})) == 0.0


def test_rerank_weight_is_optional_in_the_config(tmp_path):
    path = tmp_path / "trendrec.toml"
    assert load_config(None).rerank.weight is None
    path.write_text("[rerank]\nweight = 1\n")
    assert load_config(path).rerank.weight == 1.0
    for bad in ("1.5", '"0.3"', "true"):
        path.write_text(f"[rerank]\nweight = {bad}\n")
        with pytest.raises(ConfigError, match="rerank.weight"):
            load_config(path)


def _lists(tmp_path):
    rows = [("u", item, seg, score) for item, seg, score in LIST]
    path = tmp_path / "lists.parquet"
    pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID, s.SEGMENT, s.BASE_SCORE]).to_parquet(path)
    return path


def _both(cfg, path) -> tuple[list[str], float, list[str], float]:
    """(order, weight) of the batch and of the service for the one list."""
    batch = run_rerank(cfg, path)
    order = pd.read_parquet(batch["output"]).sort_values(s.RANK)[s.ITEM_ID].tolist()
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = http.post("/rerank", json={"user_id": "u", "candidates": [
            {"item_id": i, "segment": g, "base_score": b} for i, g, b in LIST]}).json()
    return order, batch["weight"], [i["item_id"] for i in body["items"]], body["weight"]


def test_batch_and_service_use_the_releases_weight_unless_the_config_sets_one(small_config, push_version, tmp_path):
    path = _lists(tmp_path)
    push_version(small_config, TRENDS, trend_weight=ON)
    # w = 1: the trend order, base breaking the tie of the two "down" items
    assert _both(small_config, path) == (["y", "x", "z"], 1.0, ["y", "x", "z"], 1.0)
    lines = status_lines(store_status(small_config))
    assert "Segment trends on: weight 1, chosen on the validation week from 2024-01-22 (NDCG@10 0.2500 with " \
           "trends at their best weight, 1, vs 0.2100 without trends; lists: 12 new customers)." in lines
    mine = dataclasses.replace(small_config, rerank=dataclasses.replace(small_config.rerank, weight=0.0))
    assert _both(mine, path) == (["x", "z", "y"], 0.0, ["x", "z", "y"], 0.0)  # the shop's order
    status = store_status(mine)["segment_trends"]
    assert (status["source"], status["weight"], status["chosen"]) == ("config", 0.0, 1.0)
    assert status["says"].startswith("Segment trends off: set by the config ([rerank] weight), overriding the "
                                     "release; the release chose 1")


def test_status_says_trends_are_off_where_they_did_not_help(small_config, push_version):
    push_version(small_config, TRENDS, trend_weight=OFF)
    status = store_status(small_config)
    assert status["segment_trends"]["weight"] == 0.0
    assert ("Segment trends off: did not help on validation (NDCG@10 0.2912 with trends at their best weight, "
            "0.05, vs 0.3000 without trends; lists: 40 guest orders).") in status_lines(status)
    assert registry.production(Store(small_config.store)).metadata[registry.TREND_WEIGHT_KEY] == OFF


CLEAR_RULE = "on only with a clear gain: ..."  # what the choice records; status reads only that it is there


@pytest.mark.parametrize("choice, says", [
    ({"weight": 0.2, "helped": True, "week_from": "2024-01-22", "rule": CLEAR_RULE,
      "reason": "a clear gain (NDCG@10 0.2400 at weight 0.2 vs 0.2100 without trends, +14.3%; no population "
                "worse; the gain's bootstrap lower bound +0.0120)",
      "populations": {"new_customers": 40, "guest_orders": 30}, "ndcg@10": {"0.0": 0.21, "0.2": 0.24}},
     "Segment trends on: weight 0.2, chosen on the validation week from 2024-01-22: a clear gain (NDCG@10 0.2400 "
     "at weight 0.2 vs 0.2100 without trends, +14.3%; no population worse; the gain's bootstrap lower bound "
     "+0.0120); lists: 30 guest orders, 40 new customers."),  # as the metadata stores them
    ({"weight": 0.0, "helped": False, "week_from": "2024-01-22", "rule": CLEAR_RULE,
      "reason": "no clear gain on validation (NDCG@10 0.1117 at weight 0.1 vs 0.1093 without trends: within the "
                "week's noise (the gain's bootstrap lower bound -0.0080))",
      "populations": {"new_customers": 31}, "ndcg@10": {"0.0": 0.1093, "0.1": 0.1117}},
     "Segment trends off: no clear gain on validation (NDCG@10 0.1117 at weight 0.1 vs 0.1093 without trends: "
     "within the week's noise (the gain's bootstrap lower bound -0.0080)); week from 2024-01-22, lists: 31 new "
     "customers."),
])
def test_status_says_why_the_clear_gain_rule_turned_trends_on_or_off(small_config, push_version, choice, says):
    push_version(small_config, TRENDS, trend_weight=choice)
    status = store_status(small_config)["segment_trends"]
    assert (status["weight"], status["reason"], status["rule"]) == (choice["weight"], choice["reason"], CLEAR_RULE)
    assert status["says"] == says


def test_a_release_pushed_before_weights_were_chosen_ranks_without_trends(small_config, push_version):
    push_version(small_config, TRENDS)
    status = store_status(small_config)["segment_trends"]
    assert (status["weight"], status["source"]) == (0.0, "none")
    assert "pushed without a validation choice" in status["says"]


@pytest.mark.slow
def test_the_weight_is_chosen_on_at_most_judge_customers_customers(small_store, caplog):
    """Within the budget the choice is the one the push made (every event read); past it, the events of a
    sample of that many customers, as the judge reads them: memory follows the budget, not the shop."""
    from recsys.release import choose_trend_weight

    release = registry.production(Store(small_store.store))
    forecaster, cutoff = release.path / "forecast", release.metadata["parts"]["forecast"]["cutoff"]
    assert choose_trend_weight(small_store, forecaster, cutoff) == release.metadata[registry.TREND_WEIGHT_KEY]
    bounded = dataclasses.replace(small_store, customers=dataclasses.replace(small_store.customers,
                                                                             judge_customers=300))
    with caplog.at_level("INFO", logger="recsys.release"):
        choice = choose_trend_weight(bounded, forecaster, cutoff)
    assert "chosen on the events of 300 of" in caplog.text
    assert choice["week_from"] == release.metadata[registry.TREND_WEIGHT_KEY]["week_from"] and "weight" in choice
