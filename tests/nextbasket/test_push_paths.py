"""A blessed customer model is pushed even when the segment forecaster candidate is not.

Each test copies the session's ``small_store`` (every stage run once, both models blessed) and
re-judges its candidate: the forecaster candidate loses its blessing, so what the version's segment
forecaster becomes is what is under test: production's carried forward, or, with nothing in
production, the best single baseline on the hold-out alone (no LSTM, no TensorFlow to load it).
"""

import dataclasses
import shutil

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json, write_json
from recsys import flow, registry
from recsys.forecast.combination import DEFAULT, load_forecaster
from recsys.forecast.members import STATISTICAL
from recsys.forecast.publish import SAVEDMODEL_DIR, version_verdict
from recsys.report.status import store_status


def _copy(small_store, tmp_path):
    """The small store copied to ``tmp_path`` (raw/ stays a relative link), its config and candidate."""
    shutil.copytree(small_store.store, tmp_path / "store", symlinks=True)
    cfg = dataclasses.replace(small_store, store=str(tmp_path / "store"))
    store = Store(cfg.store)
    (candidate,) = [p for p in (store.models / "candidates").iterdir() if (p / "evaluation.json").is_file()]
    return cfg, store, candidate


def _unbless(candidate, production_version, production_mase=None):
    """The forecaster candidate's evaluation, as evaluate writes it when the candidate loses."""
    evaluation = read_json(candidate / "evaluation.json")
    evaluation["metrics"]["production"] = None if production_mase is None else {"mase": production_mase}
    evaluation.update(blessed=False, reason="test: the candidate loses to auto_ets",
                      production_version=production_version)
    write_json(evaluation, candidate / "evaluation.json")
    return evaluation


def test_the_verdict_pushes_for_a_blessed_customer_model_and_names_what_forecasts_segments():
    lost = {"blessed": False, "reason": "loses to auto_ets", "production_version": None,
            "metrics": {"model": {"mase": 1.25}, "production": None, "seasonal_naive": {"mase": 1.34},
                        "auto_ets": {"mase": 1.21}, "auto_theta": {"mase": None}}}
    assert version_verdict(lost, None) == (False, "loses to auto_ets")
    pushable, why = version_verdict(lost, "customer model: beats base")
    assert pushable and why.startswith("customer model: beats base") and "auto_ets (MASE 1.2100)" in why
    carried = lost | {"production_version": "v0003", "metrics": lost["metrics"] | {"production": {"mase": 1.3}}}
    assert "production's (v0003) carried forward" in version_verdict(carried, "customer model: ok")[1]
    unscored = lost | {"metrics": {m: {"mase": None} for m in ("model", *STATISTICAL)}}
    assert not version_verdict(unscored, "customer model: ok")[0]  # nothing to keep as the forecaster
    assert version_verdict(lost | {"blessed": True, "reason": "beats"}, None) == (True, "beats")


@pytest.mark.slow
def test_with_nothing_in_production_the_best_baseline_forecasts_the_segments(small_store, tmp_path):
    cfg, store, candidate = _copy(small_store, tmp_path)
    for version in registry.versions(store):
        shutil.rmtree(store.models / version)
    (store.models / registry.PRODUCTION_FILE).unlink()
    evaluation = _unbless(candidate, None)
    baselines = {m: evaluation["metrics"][m]["mase"] for m in STATISTICAL}
    best = min(baselines, key=baselines.get)

    result = flow.run_stage("push", cfg, {"candidate_dir": str(candidate)})

    assert result["pushed"] and result["version"] == "v0001"
    assert "customer model" in result["reason"] and f"best single baseline on the hold-out, {best}" in result["reason"]
    version = registry.verify_version(store, "v0001")  # digests cover the replaced files
    meta = registry.read_metadata(version)
    assert meta["segment_forecaster"] == {"source": "baseline", "member": best, "holdout_mase": baselines[best]}
    assert meta["customers"]["model"] == "candidate" and (version / "customers" / "scores.parquet").is_file()
    # the candidate's LSTM did not come along: the version is the baseline alone, loaded without Keras
    assert not (version / "model.keras").exists() and not (version / SAVEDMODEL_DIR).exists()
    model = load_forecaster(version)
    assert model.weights == {DEFAULT: {best: 1.0}} and not model.uses_lstm
    assert set(model.validation) and all(set(v) == {best} for v in model.validation.values())
    trends = pd.read_parquet(version / registry.TREND_FILE)
    assert set(trends[s.SEGMENT]) == set(model.segments)

    status = store_status(cfg)
    assert status["segment_forecaster"]["source"] == "baseline"
    assert status["model_metrics"]["mase"] == pytest.approx(baselines[best])  # what ships, not the loser
    reranked = flow.run_stage("rerank", cfg, {})
    out = pd.read_parquet(reranked["output"])
    assert "customer_model" in set(out[s.SIGNAL])


@pytest.mark.slow
def test_with_production_its_forecaster_is_carried_and_nothing_moves_without_a_blessing(small_store, tmp_path):
    cfg, store, candidate = _copy(small_store, tmp_path)
    current = registry.read_production(store)["version"]
    renamed = candidate.with_name("next-week")
    shutil.copytree(candidate, renamed)  # a new candidate (the first one is already pushed)
    _unbless(renamed, current, production_mase=1.0)
    customers = read_json(renamed / "customers" / "evaluation.json")
    write_json(customers | {"blessed": False, "reason": "test: loses to p_topfreq"},
               renamed / "customers" / "evaluation.json")

    refused = flow.run_stage("push", cfg, {"candidate_dir": str(renamed)})
    assert not refused["pushed"] and refused["reason"] == "test: the candidate loses to auto_ets"
    assert registry.read_production(store)["version"] == current

    write_json(customers, renamed / "customers" / "evaluation.json")  # blessed again
    result = flow.run_stage("push", cfg, {"candidate_dir": str(renamed)})

    assert result["pushed"] and result["previous"] == current
    version = registry.verify_version(store, result["version"])
    meta = registry.read_metadata(version)
    assert meta["segment_forecaster"] == {"source": "production", "version": current, "holdout_mase": 1.0}
    before = store.models / current
    for name in ("combination.json", "model.keras", "recommender.json", "train.json"):
        assert (version / name).read_bytes() == (before / name).read_bytes(), name
    assert (version / SAVEDMODEL_DIR / "saved_model.pb").is_file()
    assert meta["customers"]["model"] == "candidate"
    again = flow.run_stage("push", cfg, {"candidate_dir": str(renamed)})  # a re-run DAG: no new version
    assert not again["pushed"] and again["version"] == result["version"]
