"""A blessed next-basket model is pushed even when the segment forecaster is not: the release rule.

Each test copies the session's ``small_store`` (every stage run once, every part blessed) and re-judges
its run: the forecaster loses its blessing, so what the version's segment forecaster becomes is what is
under test: production's carried forward, or, with nothing in production, the best single baseline on
the hold-out alone (no LSTM, no TensorFlow to load it).
"""

import dataclasses
import shutil

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json, write_json
from recsys import flow, registry, release, runs
from recsys.forecast.combination import DEFAULT, load_forecaster
from recsys.forecast.evaluate import forecast_verdict
from recsys.forecast.members import STATISTICAL
from recsys.forecast.publish import SAVEDMODEL_DIR
from recsys.report.status import store_status
from recsys.runs import Verdict, read_verdict, seal_verdicts, write_verdict


def _copy(small_store, tmp_path):
    """The small store copied to ``tmp_path`` (raw/ stays a relative link), its config and its run."""
    shutil.copytree(small_store.store, tmp_path / "store", symlinks=True)
    cfg = dataclasses.replace(small_store, store=str(tmp_path / "store"))
    store = Store(cfg.store)
    return cfg, store, runs.latest(store)


def _unbless(run, production_version, production_mase=None):
    """The forecaster's evaluation and verdict, as judge writes them when it loses."""
    part = run.part("forecast")
    evaluation = read_json(part / "evaluation.json")
    evaluation["metrics"]["production"] = None if production_mase is None else {"mase": production_mase}
    evaluation.update(blessed=False, reason="test: the forecaster loses to auto_ets",
                      production_version=production_version)
    write_json(evaluation, part / "evaluation.json")
    write_verdict(part, forecast_verdict(evaluation))
    return evaluation


def _written(run):
    """Every verdict.json in the run's parts, judged whole or not."""
    found = {part.name: read_verdict(run.part(part.name)) for part in release.parts()}
    return {name: verdict for name, verdict in found.items() if verdict is not None}


def _against(run, version):
    """Every verdict of the run judged against ``version``, recorded as one judged set (what judge does)."""
    for name, verdict in _written(run).items():
        write_verdict(run.part(name), dataclasses.replace(verdict, against=version))
    seal_verdicts(run, list(_written(run)))


def _verdict(part, blessed, ships="run"):
    return Verdict(part, blessed, "m", 1.0, "b", 1.1, f"{part} {'wins' if blessed else 'loses'}", ships=ships)


def test_the_release_rule_needs_one_blessed_part_and_a_forecaster_for_a_first_release():
    forecast_lost = _verdict("forecast", False, ships="auto_ets")
    assert release.decide({"forecast": forecast_lost}, False) == (False, "no part is blessed: forecast: forecast loses")
    pushable, why = release.decide({"forecast": forecast_lost, "nextbasket": _verdict("nextbasket", True)}, False)
    assert pushable and why.startswith("nextbasket: nextbasket wins") and "forecast ships auto_ets" in why
    assert not release.decide({"nextbasket": _verdict("nextbasket", True)}, False)[0]  # nothing forecasts segments
    assert release.decide({"nextbasket": _verdict("nextbasket", True)}, True)[0]  # production's forecaster stays
    assert not release.decide({"forecast": _verdict("forecast", False, "none"),
                               "value": _verdict("value", True)}, False)[0]
    assert not release.decide({}, True)[0]


@pytest.mark.slow
def test_with_nothing_in_production_the_best_baseline_forecasts_the_segments(small_store, tmp_path):
    cfg, store, run = _copy(small_store, tmp_path)
    for version in registry.versions(store):
        shutil.rmtree(store.models / version)
    (store.models / registry.PRODUCTION_FILE).unlink()
    evaluation = _unbless(run, None)
    _against(run, None)
    baselines = {m: evaluation["metrics"][m]["mase"] for m in STATISTICAL}
    best = min(baselines, key=baselines.get)

    result = flow.run_stage("push", cfg, {"run_dir": str(run.root)})

    assert result["pushed"] and result["version"] == "v0001"
    assert "nextbasket" in result["reason"] and f"forecast ships {best}" in result["reason"]
    rel = registry.load_release(store, "v0001")  # digests cover the replaced files
    forecast = rel.part_metadata("forecast")
    assert (forecast["ships"], forecast["holdout_mase"]) == (best, baselines[best])
    assert rel.part_metadata("nextbasket")["ships"] == "run" and rel.scores_file is not None
    # the run's LSTM did not come along: the version is the baseline alone, loaded without Keras
    version = rel.part("forecast")
    assert not (version / "model.keras").exists() and not (version / SAVEDMODEL_DIR).exists()
    model = load_forecaster(version)
    assert model.weights == {DEFAULT: {best: 1.0}} and not model.uses_lstm
    assert set(model.validation) and all(set(v) == {best} for v in model.validation.values())
    trends = pd.read_parquet(version / registry.TREND_FILE)
    assert set(trends[s.SEGMENT]) == set(model.segments)

    status = store_status(cfg)
    assert status["forecaster"]["ships"] == best
    assert status["model_metrics"]["mase"] == pytest.approx(baselines[best])  # what ships, not the loser
    reranked = flow.run_stage("rerank", cfg, {})
    out = pd.read_parquet(reranked["output"])
    assert "customer_model" in set(out[s.SIGNAL])


@pytest.mark.slow
def test_with_production_its_forecaster_is_carried_and_nothing_moves_without_a_blessing(small_store, tmp_path):
    cfg, store, first = _copy(small_store, tmp_path)
    current = registry.read_production(store)["version"]
    run = runs.create(store, "next-week")
    for name in ("forecast", "nextbasket", "value"):  # a new run (the first one is already pushed)
        shutil.copytree(first.part(name), run.part(name))
    _unbless(run, current, production_mase=1.0)
    nextbasket = _written(run)["nextbasket"]
    value = _written(run).get("value")
    for part, verdict in (("nextbasket", nextbasket), ("value", value)):
        if verdict is not None:
            write_verdict(run.part(part), dataclasses.replace(verdict, blessed=False, ships="production"))
    _against(run, current)

    refused = flow.run_stage("push", cfg, {"run_dir": str(run.root)})
    assert not refused["pushed"] and "the forecaster loses to auto_ets" in refused["reason"]
    assert registry.read_production(store)["version"] == current

    write_verdict(run.part("nextbasket"), dataclasses.replace(nextbasket, against=current))  # blessed again
    seal_verdicts(run, list(_written(run)))
    result = flow.run_stage("push", cfg, {"run_dir": str(run.root)})

    assert result["pushed"] and result["previous"] == current
    rel = registry.load_release(store, result["version"])
    forecast = rel.part_metadata("forecast")
    assert (forecast["ships"], forecast["holdout_mase"]) == ("production", 1.0)
    before = registry.load_release(store, current).part("forecast")
    for name in ("combination.json", "model.keras", "recommender.json", "train.json"):
        assert (rel.part("forecast") / name).read_bytes() == (before / name).read_bytes(), name
    assert (rel.part("forecast") / SAVEDMODEL_DIR / "saved_model.pb").is_file()
    assert rel.part_metadata("nextbasket")["ships"] == "run"
    again = flow.run_stage("push", cfg, {"run_dir": str(run.root)})  # a re-run DAG: no new version
    assert not again["pushed"] and again["version"] == result["version"]
