"""The registry on a real store: push, refusal, promote, rollback, failures that leave production alone.

One module-level store is built once (the session's trained model, two real pushes); each test
works on its own copy of it, so tests may break files without affecting each other.
"""

import dataclasses
import datetime
import shutil

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import EvaluateConfig, load_config
from pipeline.store import Store, StoreError, read_json, write_json
from recsys import registry
from recsys.forecast.publish import load_production, publish
from recsys.forecast.evaluate import run_evaluate
from recsys.registry import RegistryError
from tests.conftest import SMALL_MODEL, write_daily

pytestmark = pytest.mark.slow  # every test here pushes the session's trained model

CUTOFF = datetime.date(2024, 5, 15)  # 14 days before the last day of make_tiny_daily()


def make_candidate(cfg, name: str, recommender, trained_daily):
    """A candidate directory as recsys.forecast.train writes it, from the session's trained model."""
    path = Store(cfg.store).models / "candidates" / name
    recommender.save(path)
    write_json(cfg.to_dict(), path / "config.json")
    write_json({"cutoff": str(CUTOFF), "train_start": str(trained_daily[s.DATE].min()), "history": {},
                "segments": recommender.segments}, path / "train.json")
    return path


def blessed_evaluation(path, production_version):
    write_json({"blessed": True, "reason": "test: hand-written evaluation", "cutoff": str(CUTOFF),
                "holdout_end": "2024-05-22", "production_version": production_version,
                "metrics": {"model": {"mase": 0.5}, "seasonal_naive": {"mase": 1.0}, "production": None}},
               path / "evaluation.json")


@pytest.fixture(scope="module")
def base(tmp_path_factory, trained_forecaster, trained_daily):
    root = tmp_path_factory.mktemp("registry")
    # margin -100: any finite MASE passes the baseline bar, so blessing hinges on production alone
    cfg = dataclasses.replace(load_config(None), store=str(root / "store"), model=SMALL_MODEL,
                              evaluate=EvaluateConfig(margin=-100.0))
    write_daily(cfg.store, trained_daily)
    first = make_candidate(cfg, "run1", trained_forecaster, trained_daily)
    evaluation = run_evaluate(cfg, first)
    pushed = publish(cfg, first)
    second = make_candidate(cfg, "run2", trained_forecaster, trained_daily)
    blessed_evaluation(second, "v0001")
    return cfg, evaluation, pushed, publish(cfg, second)


@pytest.fixture
def cfg(base, tmp_path):
    shutil.copytree(base[0].store, tmp_path / "store")
    return dataclasses.replace(base[0], store=str(tmp_path / "store"))


def _production_bytes(cfg) -> bytes:
    return (Store(cfg.store).models / registry.PRODUCTION_FILE).read_bytes()


def test_push_of_blessed_candidates_creates_versions(base, cfg):
    _, evaluation, first, second = base
    assert evaluation["blessed"] and evaluation["metrics"]["production"] is None
    assert first["pushed"] and first["version"] == "v0001" and second["version"] == "v0002"
    models = Store(cfg.store).models
    for name in ("model.keras", "recommender.json", "train.json", "evaluation.json", "metadata.json",
                 "trend.parquet", "savedmodel/saved_model.pb"):
        assert (models / "v0001" / name).is_file(), name
    assert not list(models.glob(".staging-*"))
    assert read_json(models / "production.json") == {"version": "v0002", "history": ["v0001"]}
    meta = read_json(models / "v0001" / "metadata.json")
    assert (meta["version"], meta["target"], meta["horizon"], meta["segments"]) == ("v0001", "revenue", 7,
                                                                                     ["a", "b", "c"])
    assert meta["cutoff"] == str(CUTOFF)
    assert meta["metrics"]["model"]["mase"] == evaluation["metrics"]["model"]["mase"]
    trend = pd.read_parquet(models / "v0001" / "trend.parquet")
    assert trend[s.SEGMENT].tolist() == ["a", "b", "c"] and trend[s.TREND].between(-1, 1).all()
    model, metadata = load_production(Store(cfg.store))
    assert model.segments == ["a", "b", "c"] and metadata["version"] == "v0002"


def test_candidate_no_better_than_production_is_not_pushed(cfg, trained_forecaster, trained_daily):
    same = make_candidate(cfg, "run3", trained_forecaster, trained_daily)  # the production model again
    evaluation = run_evaluate(cfg, same)
    assert evaluation["production_version"] == "v0002" and not evaluation["blessed"]
    assert evaluation["metrics"]["production"]["mase"] == evaluation["metrics"]["model"]["mase"]
    assert "production" in evaluation["reason"]
    before = _production_bytes(cfg)
    result = publish(cfg, same)
    assert result["pushed"] is False and result["blessed"] is False
    assert _production_bytes(cfg) == before and registry.versions(cfg.store) == ["v0001", "v0002"]


def test_not_blessed_pushes_nothing_and_evaluation_is_required(cfg, trained_forecaster, trained_daily):
    cand = make_candidate(cfg, "run4", trained_forecaster, trained_daily)
    with pytest.raises(RegistryError, match="run `trendrec evaluate` first"):
        publish(cfg, cand)
    write_json({"blessed": False, "reason": "worse than naive", "metrics": {}}, cand / "evaluation.json")
    assert publish(cfg, cand) == {"pushed": False, "blessed": False, "reason": "worse than naive",
                                        "metrics": {}, "candidate_dir": str(cand.resolve())}
    assert registry.versions(cfg.store) == ["v0001", "v0002"]


def test_repush_is_a_no_op_and_stale_evaluation_is_refused(cfg, trained_forecaster, trained_daily):
    again = publish(cfg, Store(cfg.store).models / "candidates" / "run2")
    assert again["pushed"] is False and again["version"] == "v0002"
    stale = make_candidate(cfg, "run5", trained_forecaster, trained_daily)
    blessed_evaluation(stale, "v0001")  # evaluated while v0001 was in production
    with pytest.raises(RegistryError, match="evaluate` again"):
        publish(cfg, stale)


def test_rollback_then_promote(cfg):
    store = Store(cfg.store)
    assert registry.rollback(store)["version"] == "v0001"
    assert registry.read_production(store) == {"version": "v0001", "history": []}
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback(store)
    assert registry.promote(store, "v0002")["changed"] is True
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}
    assert registry.promote(store, "v0002")["changed"] is False
    rows = registry.list_models(store)
    assert [(r["version"], r["is_production"]) for r in rows] == [("v0001", False), ("v0002", True)]
    assert rows[0]["baseline_mase"] is not None and rows[1]["mase"] == 0.5


def test_version_names_are_validated(cfg):
    store = Store(cfg.store)
    for bad in ("../../etc", "v1", "v0001/..", "candidates"):
        with pytest.raises(RegistryError, match="invalid model version"):
            registry.promote(store, bad)
    with pytest.raises(RegistryError, match="v0009 not found"):
        registry.promote(store, "v0009")


def test_failed_push_leaves_production_as_it_was(cfg, trained_forecaster, trained_daily):
    cand = make_candidate(cfg, "run6", trained_forecaster, trained_daily)
    blessed_evaluation(cand, "v0002")
    Store(cfg.store).daily_path.unlink()  # trend scores cannot be computed: push fails mid-way
    before = _production_bytes(cfg)
    with pytest.raises(StoreError, match="daily.parquet"):
        publish(cfg, cand)
    models = Store(cfg.store).models
    assert _production_bytes(cfg) == before and registry.versions(cfg.store) == ["v0001", "v0002"]
    assert not list(models.glob(".staging-*"))


def test_truncated_model_is_refused_and_production_untouched(cfg):
    store = Store(cfg.store)
    model_file = store.models / "v0002" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:200])
    before = _production_bytes(cfg)
    with pytest.raises(RegistryError, match="v0002 .*cannot be loaded"):
        load_production(store)
    assert _production_bytes(cfg) == before
    registry.rollback(store)  # v0001 is intact
    with pytest.raises(RegistryError, match="v0002"):
        registry.promote(store, "v0002")
    assert registry.read_production(store)["version"] == "v0001"
    (store.models / "v0001" / "trend.parquet").unlink()
    with pytest.raises(RegistryError, match="incomplete: missing trend.parquet"):
        load_production(store)
    (store.models / "v0001" / "model.keras").unlink()  # no forecaster: neither a combination nor an LSTM
    with pytest.raises(RegistryError, match=r"missing trend.parquet, combination.json or model.keras\+recommender"):
        load_production(store)


def test_push_prunes_to_the_last_k_and_caps_the_history(cfg, trained_forecaster, trained_daily):
    store = Store(cfg.store)
    cfg = dataclasses.replace(cfg, registry=dataclasses.replace(cfg.registry, keep_versions=1))
    cand = make_candidate(cfg, "run7", trained_forecaster, trained_daily)
    blessed_evaluation(cand, "v0002")
    result = publish(cfg, cand)
    # history [v0001, v0002] capped to the last 1 -> [v0002]; v0001 is neither newest, production nor history
    assert result["version"] == "v0003" and result["pruned"] == ["v0001"]
    assert registry.read_production(store) == {"version": "v0003", "history": ["v0002"]}
    assert registry.versions(store) == ["v0002", "v0003"] and not list(store.models.glob(".trash-*"))
    assert registry.rollback(store)["version"] == "v0002"


def test_prune_never_deletes_production_or_its_history(cfg, push_version):
    store = Store(cfg.store)
    trends = pd.read_parquet(store.models / "v0001" / registry.TREND_FILE)
    for version in ("v0003", "v0004", "v0005"):  # pushed, then stepped back, so production is v0002 again
        assert push_version(cfg, trends) == version
    for _ in range(3):
        registry.rollback(store)
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}
    # production v0002, history [v0001]; newest 2: v0004, v0005 -> only v0003 may go
    assert registry.prune(store, keep=0) == []
    assert registry.prune(store, keep=2) == ["v0003"]
    assert registry.versions(store) == ["v0001", "v0002", "v0004", "v0005"]
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}


def test_a_worse_model_trained_on_shuffled_targets_is_never_promoted(cfg, trained_daily):
    """The gate with the real evaluation: margin 0, so it must beat seasonal naive and production."""
    from recsys.forecast.forecaster import SegmentForecaster

    cfg = dataclasses.replace(cfg, evaluate=EvaluateConfig(margin=0.0))
    shuffled = trained_daily.copy()
    shuffled[s.REVENUE] = shuffled[s.REVENUE].sample(frac=1.0, random_state=3).to_numpy()  # no signal left
    worse = SegmentForecaster(SMALL_MODEL)
    worse.fit(shuffled[shuffled[s.DATE] <= CUTOFF])
    evaluation = run_evaluate(cfg, make_candidate(cfg, "shuffled", worse, trained_daily))
    model_mase = evaluation["metrics"]["model"]["mase"]
    assert not evaluation["blessed"] and evaluation["production_version"] == "v0002"
    assert model_mase > evaluation["metrics"]["production"]["mase"]
    before = _production_bytes(cfg)
    result = publish(cfg, Store(cfg.store).models / "candidates" / "shuffled")
    assert result["pushed"] is False and _production_bytes(cfg) == before
    assert registry.versions(cfg.store) == ["v0001", "v0002"]
