"""The registry on placeholder parts: push, refusal, promote, rollback, prune, failures that leave
production alone, and what ``models list`` reports. Nothing here loads Keras (the forecast part's files
are placeholders); every version is made through ``registry.push`` (tests/registry/conftest.py).
"""

import dataclasses

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json, write_json
from recsys import registry
from recsys.registry import RegistryError

TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b", "c"], s.TREND: [0.5, -0.25, 0.0]})


@pytest.fixture
def cfg(small_config, push_parts):
    """A store with two pushed versions: v0002 in production, v0001 on the history."""
    assert push_parts(small_config, TRENDS, run="models/runs/r1") == "v0001"
    assert push_parts(small_config, TRENDS, run="models/runs/r2") == "v0002"
    return small_config


def _production_bytes(cfg) -> bytes:
    return (Store(cfg.store).models / registry.PRODUCTION_FILE).read_bytes()


def _push(cfg, run, assemble, against="v0002"):
    return registry.push(cfg, run, assemble, against=against, reason="test")


def test_push_builds_a_version_of_parts_and_makes_it_production(cfg):
    store = Store(cfg.store)
    models = store.models
    for name in ("metadata.json", "forecast/trend.parquet", "forecast/combination.json", "forecast/model.keras"):
        assert (models / "v0001" / name).is_file(), name
    assert not list(models.glob(".staging-*")) and not (models / "v0002" / registry.PENDING_FILE).exists()
    assert read_json(models / "production.json") == {"version": "v0002", "history": ["v0001"]}
    meta = read_json(models / "v0002" / "metadata.json")
    assert (meta["version"], meta["run"], meta["replaced"], meta["reason"]) == (
        "v0002", "models/runs/r2", "v0001", "test: a hand-made trend table")
    assert meta["parts"]["forecast"]["ships"] == "run" and meta["segments"] == ["a", "b", "c"]
    assert sorted(meta["files"]) == ["forecast/combination.json", "forecast/model.keras",
                                     "forecast/recommender.json", "forecast/trend.parquet"]
    release = registry.production(store)
    assert release.version == "v0002" and release.history == ("v0001",)
    assert release.trend_file == models / "v0002" / "forecast" / registry.TREND_FILE


def test_repush_is_a_no_op_and_a_stale_judgement_is_refused(cfg, part_assembler):
    before = _production_bytes(cfg)
    again = _push(cfg, "models/runs/r2", part_assembler(TRENDS), against="v0001")
    assert again == {"pushed": False, "run": "models/runs/r2", "version": "v0002",
                     "reason": "models/runs/r2 was already pushed as v0002"}
    with pytest.raises(RegistryError, match="judged against production v0001 but production is now v0002: "
                                            "run `trendrec evaluate` again"):
        _push(cfg, "models/runs/r3", part_assembler(TRENDS), against="v0001")
    assert _production_bytes(cfg) == before and registry.versions(cfg.store) == ["v0001", "v0002"]
    with pytest.raises(RegistryError, match="needs the training run"):
        _push(cfg, "", part_assembler(TRENDS))


def test_a_failed_or_incomplete_assembly_leaves_production_as_it_was(cfg, part_assembler):
    models, before = Store(cfg.store).models, _production_bytes(cfg)

    def fails(staging):
        part_assembler(TRENDS)(staging)
        raise OSError("disk full")

    def no_trends(staging):
        fields = part_assembler(TRENDS)(staging)
        (staging / "forecast" / registry.TREND_FILE).unlink()
        return fields

    with pytest.raises(OSError, match="disk full"):
        _push(cfg, "models/runs/r3", fails)
    with pytest.raises(RegistryError, match="incomplete: missing forecast/trend.parquet"):
        _push(cfg, "models/runs/r3", no_trends)
    assert _production_bytes(cfg) == before and registry.versions(cfg.store) == ["v0001", "v0002"]
    assert not list(models.glob(".staging-*"))


def test_rollback_then_promote(cfg):
    store = Store(cfg.store)
    assert registry.rollback(store)["version"] == "v0001"
    assert registry.read_production(store) == {"version": "v0001", "history": []}
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback(store)
    assert registry.promote(store, "v0002")["changed"] is True
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}
    assert registry.promote(store, "v0002")["changed"] is False


def test_version_names_are_validated(cfg):
    store = Store(cfg.store)
    for bad in ("../../etc", "v1", "v0001/..", "candidates"):
        with pytest.raises(RegistryError, match="invalid model version"):
            registry.promote(store, bad)
    with pytest.raises(RegistryError, match="v0009 not found"):
        registry.promote(store, "v0009")


def test_truncated_or_missing_files_are_refused_and_production_untouched(cfg):
    store = Store(cfg.store)
    model_file = store.models / "v0002" / "forecast" / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:10])
    before = _production_bytes(cfg)
    with pytest.raises(RegistryError, match="v0002 .*cannot be loaded: forecast/model.keras"):
        registry.production(store)
    assert _production_bytes(cfg) == before
    registry.rollback(store)  # v0001 is intact
    with pytest.raises(RegistryError, match="v0002"):
        registry.promote(store, "v0002")
    assert registry.read_production(store)["version"] == "v0001"
    (store.models / "v0001" / "forecast" / registry.TREND_FILE).unlink()
    with pytest.raises(RegistryError, match="incomplete: missing forecast/trend.parquet"):
        registry.production(store)
    for name in ("combination.json", "model.keras"):  # neither a combination nor an LSTM is left
        (store.models / "v0001" / "forecast" / name).unlink()
    with pytest.raises(RegistryError, match=r"missing forecast/trend.parquet, forecast/combination.json or "
                                            r"forecast/model.keras\+forecast/recommender.json"):
        registry.production(store)


def test_a_version_without_digests_is_refused(cfg):
    """Issue: an empty or missing ``files`` map used to turn every digest check off."""
    store = Store(cfg.store)
    meta_file = store.models / "v0002" / registry.METADATA_FILE
    meta = read_json(meta_file)
    (store.models / "v0002" / "forecast" / "model.keras").write_bytes(b"tampered")
    for files in ({}, None):
        write_json(meta | {"files": files} if files is not None else
                   {k: v for k, v in meta.items() if k != "files"}, meta_file)
        with pytest.raises(RegistryError, match="'files' in metadata.json is missing, empty .*push the model again"):
            registry.verify_version(store, "v0002")
    registry.rollback(store)
    with pytest.raises(RegistryError, match="cannot be checked"):
        registry.promote(store, "v0002")
    assert registry.read_production(store)["version"] == "v0001"


def test_a_file_added_after_the_push_is_refused(cfg):
    store = Store(cfg.store)
    (store.models / "v0002" / "forecast" / "extra.json").write_text("{}")
    with pytest.raises(RegistryError, match="forecast/extra.json is not listed in metadata.json"):
        registry.verify_version(store, "v0002")


def test_push_prunes_to_the_last_k_and_every_move_caps_the_history(cfg, part_assembler):
    store = Store(cfg.store)
    one = dataclasses.replace(cfg, registry=dataclasses.replace(cfg.registry, keep_versions=1))
    result = _push(one, "models/runs/r3", part_assembler(TRENDS))
    # history [v0001, v0002] capped to the last 1 -> [v0002]; v0001 is neither newest, production nor history
    assert result["version"] == "v0003" and result["pruned"] == ["v0001"]
    assert registry.read_production(store) == {"version": "v0003", "history": ["v0002"]}
    assert registry.versions(store) == ["v0002", "v0003"] and not list(store.models.glob(".trash-*"))
    assert registry.rollback(store)["version"] == "v0002"
    assert registry.promote(store, "v0003", keep=1) == {"version": "v0003", "history": ["v0002"],
                                                        "changed": True, "previous": "v0002"}
    write_json({"version": "v0003", "history": ["v0002", "v0002", "v0002"]}, store.models / "production.json")
    assert registry.rollback(store, keep=1)["history"] == ["v0002"]  # an over-long history is capped too


def test_promote_caps_the_history_at_k(cfg, push_parts):
    store = Store(cfg.store)
    for version in ("v0003", "v0004"):
        assert push_parts(cfg, TRENDS) == version
    registry.rollback(store)
    assert registry.promote(store, "v0004", keep=2)["history"] == ["v0002", "v0003"]
    assert registry.promote(store, "v0001", keep=2)["history"] == ["v0003", "v0004"]


def test_prune_never_deletes_production_or_its_history(cfg, push_parts):
    store = Store(cfg.store)
    for version in ("v0003", "v0004", "v0005"):  # pushed, then stepped back, so production is v0002 again
        assert push_parts(cfg, TRENDS) == version
    for _ in range(3):
        registry.rollback(store)
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}
    # production v0002, history [v0001]; newest 2: v0004, v0005 -> only v0003 may go
    assert registry.prune(store, keep=0) == []
    assert registry.prune(store, keep=2) == ["v0003"]
    assert registry.versions(store) == ["v0001", "v0002", "v0004", "v0005"]
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}


def test_models_list_shows_what_each_version_ships(cfg, push_parts):
    store = Store(cfg.store)
    push_parts(cfg, TRENDS, ships="seasonal_naive", holdout_mase=0.8, baseline_mase=0.9,
                 nextbasket="production", value="candidate")
    rows = registry.list_models(store)
    assert [(r["version"], r["is_production"]) for r in rows] == [("v0001", False), ("v0002", False),
                                                                   ("v0003", True)]
    assert {k: rows[2][k] for k in ("forecaster", "mase", "baseline_mase", "nextbasket", "value")} == {
        "forecaster": "seasonal_naive", "mase": 0.8, "baseline_mase": 0.9, "nextbasket": "production",
        "value": "candidate"}
    assert (rows[0]["forecaster"], rows[0]["mase"], rows[0]["nextbasket"], rows[0]["value"]) == (
        "run", 0.5, None, None)


def test_models_list_of_a_version_pushed_before_parts_shows_the_kept_forecaster(cfg):
    """A rejected candidate's MASE (metrics.model) is never shown as the one that ships."""
    store = Store(cfg.store)
    old = store.models / "v0003"
    old.mkdir()
    pd.DataFrame({s.SEGMENT: ["a"], s.TREND: [0.1]}).to_parquet(old / registry.TREND_FILE)
    (old / "combination.json").write_text("{}")
    write_json({"version": "v0003", "created_at": "2024-01-01T00:00:00+00:00",
                "metrics": {"model": {"mase": 1.7}, "seasonal_naive": {"mase": 1.1}},
                "segment_forecaster": {"source": "baseline", "member": "auto_ets", "holdout_mase": 0.95},
                "customers": {"model": "production"}, "files": registry.file_digests(old)},
               old / registry.METADATA_FILE)
    registry.verify_version(store, "v0003")  # the old layout: files at the version's root
    row = registry.list_models(store)[2]
    assert {k: row[k] for k in ("forecaster", "mase", "baseline_mase", "nextbasket", "value")} == {
        "forecaster": "auto_ets", "mase": 0.95, "baseline_mase": 1.1, "nextbasket": "production", "value": None}
    meta = read_json(old / registry.METADATA_FILE)
    write_json({k: v for k, v in meta.items() if k != "segment_forecaster"}, old / registry.METADATA_FILE)
    assert registry.list_models(store)[2]["forecaster"] == "run"  # the candidate: the run, in today's words
    assert registry.list_models(store)[2]["mase"] == 1.7  # before segment_forecaster the candidate shipped
