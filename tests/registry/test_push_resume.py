"""An interrupted push is finished by its re-run; what a killed push left in models/ is removed.

The crash is simulated between the two steps of a push: the version directory renamed into place,
production.json not yet written (issue 20). Placeholder models: nothing here loads Keras.
"""

import os
import time

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json, write_json
from recsys import registry

TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})


def _candidate(cfg, name: str) -> os.PathLike:
    store = Store(cfg.store)
    path = store.models / "candidates" / name
    path.mkdir(parents=True)
    (path / "model.keras").write_bytes(b"placeholder")
    (path / "recommender.json").write_text("{}")
    prod = registry.read_production(store)
    write_json({"blessed": True, "reason": "test", "metrics": {},
                "production_version": prod and prod["version"]}, path / "evaluation.json")
    return path


def _assemble(staging, version, evaluation):
    TRENDS.to_parquet(staging / registry.TREND_FILE)
    return {"segments": ["a", "b"]}


class Killed(Exception):
    """Stands for the SIGKILL: nothing after the raise runs."""


def _push_killed_before_production(cfg, candidate, monkeypatch):
    with monkeypatch.context() as patch:
        def die(*args, **kwargs):
            raise Killed()
        patch.setattr(registry, "_write_production", die)
        with pytest.raises(Killed):
            registry.push(cfg, candidate, _assemble)


def test_rerun_of_a_push_killed_before_production_json_promotes_it(small_config, push_version, monkeypatch):
    store = Store(small_config.store)
    assert push_version(small_config, TRENDS) == "v0001"
    candidate = _candidate(small_config, "second")
    _push_killed_before_production(small_config, candidate, monkeypatch)
    assert (store.models / "v0002").is_dir() and registry.read_production(store)["version"] == "v0001"
    stale = store.models / ".production.json.abc123.tmp"  # what os.replace never renamed
    stale.write_text("{}")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    again = registry.push(small_config, candidate, _assemble)
    assert again["pushed"] and again["version"] == "v0002" and again["previous"] == "v0001"
    assert read_json(store.models / "production.json") == {"version": "v0002", "history": ["v0001"]}
    assert not stale.exists() and not (store.models / "v0002" / registry.PENDING_FILE).exists()
    registry.verify_version(store, "v0002")
    third = registry.push(small_config, candidate, _assemble)  # now a true no-op
    assert not third["pushed"] and "already pushed as v0002" in third["reason"]


def test_interrupted_push_is_not_promoted_over_a_newer_production_choice(small_config, push_version,
                                                                         monkeypatch):
    store = Store(small_config.store)
    push_version(small_config, TRENDS)
    push_version(small_config, TRENDS)  # v0002 in production, v0001 on the history
    candidate = _candidate(small_config, "late")
    _push_killed_before_production(small_config, candidate, monkeypatch)
    registry.rollback(store)  # an operator moved production meanwhile
    with pytest.raises(registry.RegistryError, match="models promote v0003"):
        registry.push(small_config, candidate, _assemble)
    assert registry.read_production(store)["version"] == "v0001"
    assert not registry.push(small_config, candidate, _assemble)["pushed"]


def test_clean_stale_keeps_live_files_and_removes_dead_ones(small_config, push_version):
    store = Store(small_config.store)
    push_version(small_config, TRENDS)
    models = store.models
    (models / ".staging-v0001").mkdir()  # a number already taken: its push died
    (models / ".staging-v0002").mkdir()  # the next number: maybe a live push
    (models / ".trash-v0000").mkdir()
    fresh = models / ".production.json.live.tmp"
    fresh.write_text("{}")
    assert sorted(registry.clean_stale(store)) == [".staging-v0001", ".trash-v0000"]
    assert fresh.exists() and (models / ".staging-v0002").is_dir()
