"""Hostile paths and damaged store files through the CLI: exit 1 and one line, nothing written (issue 20).

Every case runs ``recsys.cli.main`` in-process on a small store whose production version holds a
hand-made trend table (placeholder model files; nothing here loads Keras).
"""

import os

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry
from recsys.cli import main

pytestmark = pytest.mark.usefixtures("clean_cwd")  # no trendrec.toml to find: the built-in defaults
TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})
LONG = "n" * 300


@pytest.fixture
def store(small_config, push_version, tmp_path):
    push_version(small_config, TRENDS)
    (tmp_path / "candidates.csv").write_text("user_id,item_id,segment,base_score\nu,i1,a,1.0\nu,i2,b,1.1\n")
    return Store(small_config.store)


def fails(capsys, *argv: str, match: str) -> str:
    """Run the CLI; assert exit 1 and exactly one line on stderr that contains ``match``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err
    return err


def _outside(tmp_path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize("argv, match", [
    (["tune", "--tune-id", "../../x"], "invalid tune id"),
    (["train", "--run-id", "./../../../x"], "invalid run id"),
    (["train", "--run-id", ""], "--run-id is empty"),
    (["train", "--run-id", "a" * 129], "invalid run id"),
    (["backtest", "--run-id", "../x"], "invalid run id"),
])
def test_ids_that_would_be_paths_outside_are_refused(capsys, store, tmp_path, argv, match):
    before = _outside(tmp_path)
    fails(capsys, *argv, "--store", store.root, match=match)
    assert _outside(tmp_path) == before and not (store.runs / "x").exists()


def test_evaluate_and_push_work_only_on_a_training_run_of_the_store(capsys, store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.json").write_text('{"run_id": "outside", "created_ns": 1}')
    for command in ("evaluate", "push", "nextbasket", "value"):
        fails(capsys, command, outside, "--store", store.root, match="outside the store")
        fails(capsys, command, store.models / "v0001", "--store", store.root, match="not a training run")
    link = store.training_runs / "linked"  # a symlink in the store that points out of it
    store.training_runs.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    fails(capsys, "push", link, "--store", store.root, match="outside the store")
    assert sorted(p.name for p in outside.iterdir()) == ["run.json"]


@pytest.mark.parametrize("output, match", [
    ("models/production.json", "only trendrec itself writes"),
    ("raw/x.parquet", "only trendrec itself writes"),
    (".", "the store itself"),
    ("", "--output is empty"),
    ("reranked", "is a directory"),
    ("../escaped.parquet", "outside the store"),
    (f"reranked/{LONG}.parquet", "longer than"),
])
def test_rerank_output_never_lands_on_control_files_or_outside(capsys, store, tmp_path, output, match):
    store.reranked.mkdir(exist_ok=True)
    before = (store.models / "production.json").read_bytes()
    fails(capsys, "rerank", "--candidates", tmp_path / "candidates.csv", "--output", output,
          "--store", store.root, match=match)
    assert (store.models / "production.json").read_bytes() == before
    assert not list(store.root.parent.glob(".*.tmp")) and not (tmp_path / "escaped.parquet").exists()


def test_other_outputs_are_contained_too(capsys, store):
    fails(capsys, "candidates", "--output", "models/x.parquet", "--store", store.root, match="only trendrec")
    fails(capsys, "report", "--output", "aggregates", "--store", store.root, match="only trendrec")


def test_empty_store_and_over_long_names_are_refused(capsys, store, tmp_path):
    fails(capsys, "status", "--store", "", match="--store is empty")
    fails(capsys, "status", "--store", tmp_path / LONG, match="longer than 255")
    fails(capsys, "rerank", "--candidates", tmp_path / LONG, "--store", store.root, match="longer than 255")


def test_an_empty_store_variable_is_refused_like_an_empty_flag(capsys, store, monkeypatch):
    monkeypatch.setenv("TRENDREC_STORE", "")
    fails(capsys, "status", match="$TRENDREC_STORE is set but empty")


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_config_variable_is_refused_not_replaced_by_the_defaults(capsys, store, monkeypatch, value):
    monkeypatch.setenv("TRENDREC_CONFIG", value)
    fails(capsys, "status", "--store", store.root, match="$TRENDREC_CONFIG is set but empty")


def test_a_version_symlinked_out_of_the_store_is_not_listed_promoted_or_used(capsys, store, tmp_path):
    import shutil

    shutil.copytree(store.models / "v0001", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", store.models / "v0002")
    assert main(["models", "list", "--json", "--store", str(store.root)]) == 0
    assert '"v0002"' not in capsys.readouterr().out
    fails(capsys, "models", "promote", "v0002", "--store", store.root, match="symlink")
    trend = store.models / "v0001" / "forecast" / registry.TREND_FILE
    shutil.copy(trend, tmp_path / "trend.parquet")
    trend.unlink()
    os.symlink(tmp_path / "trend.parquet", trend)
    fails(capsys, "rerank", "--candidates", tmp_path / "candidates.csv", "--store", store.root, match="symlink")
    fails(capsys, "status", "--store", store.root, match="symlink")


def test_corrupt_metadata_is_one_line_for_status_and_models_list(capsys, store):
    (store.models / "v0001" / registry.METADATA_FILE).write_bytes(b'{"version": "v0001", "files": {\xff')
    fails(capsys, "status", "--store", store.root, match="metadata.json cannot be read")
    fails(capsys, "models", "list", "--store", store.root, match="metadata.json cannot be read")
    (store.models / "v0001" / registry.METADATA_FILE).write_text("[1, 2]")
    fails(capsys, "models", "list", "--store", store.root, match="not a JSON object")


@pytest.mark.parametrize("name", ["model.keras", registry.TREND_FILE])
def test_a_damaged_production_file_stops_status_and_rerank(capsys, store, tmp_path, name):
    path = store.models / "v0001" / "forecast" / name
    path.write_bytes(path.read_bytes()[:-3])  # truncated
    fails(capsys, "status", "--store", store.root, match="does not match the digest")
    fails(capsys, "rerank", "--candidates", tmp_path / "candidates.csv", "--store", store.root,
          match="does not match the digest")


@pytest.mark.parametrize("files", [None, {}])
def test_a_version_without_digests_is_refused_in_one_line(capsys, store, tmp_path, files):
    """A metadata.json without its file digests (or with none) would turn every check off: refused."""
    from pipeline.store import read_json, write_json

    meta = read_json(store.models / "v0001" / registry.METADATA_FILE)
    meta = {k: v for k, v in meta.items() if k != registry.FILES_KEY} | ({} if files is None else {"files": files})
    write_json(meta, store.models / "v0001" / registry.METADATA_FILE)
    (store.models / "v0001" / "forecast" / registry.TREND_FILE).write_bytes(b"PAR1" + bytes(range(256)) * 4 + b"PAR1")
    for command in (["rerank", "--candidates", tmp_path / "candidates.csv"], ["status"], ["segments"]):
        fails(capsys, *command, "--store", store.root, match="push the model again")


@pytest.mark.parametrize("bad", [float("nan"), 1e9, float("inf")])
def test_rerank_refuses_trends_the_service_refuses(capsys, small_config, push_version, tmp_path, bad):
    from recsys.serve.app import ServeError, load_trends  # noqa: F401  (the service's loader)

    push_version(small_config, pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.1, bad]}))
    (tmp_path / "c.csv").write_text("user_id,item_id,segment,base_score\nu,i1,a,1.0\nu,i2,b,1.1\n")
    store = Store(small_config.store)
    fails(capsys, "rerank", "--candidates", tmp_path / "c.csv", "--store", store.root,
          match="expected a finite number in [-1, 1]")
    with pytest.raises(Exception, match=r"expected a finite number in \[-1, 1\]"):
        load_trends(registry.verify_version(store, "v0001"))
