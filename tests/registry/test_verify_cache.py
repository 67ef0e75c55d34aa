"""Verifying a version where it is used costs a stat per file once its digests are cached (issue 20)."""

import os

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry

TRENDS = pd.DataFrame({s.SEGMENT: ["a"], s.TREND: [0.25]})


def test_files_are_hashed_once_until_they_change(small_config, push_parts, monkeypatch):
    store = Store(small_config.store)
    version = push_parts(small_config, TRENDS)
    hashed = []
    real = registry._sha256
    monkeypatch.setattr(registry, "_sha256", lambda path: hashed.append(path.name) or real(path))
    registry._DIGESTS.clear()
    registry.verify_version(store, version)
    first = len(hashed)
    registry.verify_version(store, version)
    assert first > 0 and len(hashed) == first  # the second check read nothing
    model = store.models / version / "forecast" / "model.keras"
    model.write_bytes(b"placeholder but different")  # same size class, new mtime and size
    with pytest.raises(registry.RegistryError, match="forecast/model.keras is missing or does not match"):
        registry.verify_version(store, version)
    assert hashed[first:] == ["model.keras"]


def test_a_same_size_rewrite_with_a_new_mtime_is_hashed_again(small_config, push_parts):
    store = Store(small_config.store)
    version = push_parts(small_config, TRENDS)
    registry.verify_version(store, version)
    model = store.models / version / "forecast" / "model.keras"
    data = bytearray(model.read_bytes())
    data[0] ^= 1
    model.write_bytes(bytes(data))
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(registry.RegistryError, match="does not match"):
        registry.verify_version(store, version)


def test_a_digest_mismatch_is_one_error_not_a_log_line_too(small_config, push_parts, caplog):
    store = Store(small_config.store)
    version = push_parts(small_config, TRENDS)
    (store.models / version / "forecast" / "model.keras").write_bytes(b"tampered")
    caplog.clear()  # only what verify_version logs counts, not the push's own lines
    with caplog.at_level("INFO", logger="recsys.registry"), pytest.raises(registry.RegistryError):
        registry.verify_version(store, version)
    assert [r for r in caplog.records if r.levelno >= 20] == []  # the CLI prints the error: one line
