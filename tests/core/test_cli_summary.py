"""What every CLI summary says (issue 32): the config and the store it used, found the way ruff finds its
config; `status` on a store that is not there; readable tables; TensorFlow's start-up noise kept off stderr.

    .venv/bin/python -m pytest tests/core/test_cli_summary.py -q
"""

import json
import os

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import DEFAULTS
from recsys.cli import main
from tests.conftest import python_process

pytestmark = pytest.mark.usefixtures("clean_cwd")  # no trendrec.toml to find unless a test writes one
TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_trendrec_toml_in_a_parent_is_found_and_named_in_json_and_human(capsys, clean_cwd, monkeypatch):
    (clean_cwd / "trendrec.toml").write_text('store = "shop-store"\n')
    inner = clean_cwd / "notebooks"
    inner.mkdir()
    monkeypatch.chdir(inner)
    monkeypatch.setenv("TRENDREC_CONFIG", str(clean_cwd / "elsewhere.toml"))  # the nearest file comes first
    rc, out, _ = run(capsys, "models", "list", "--json")
    summary = json.loads(out)
    assert rc == 0 and list(summary)[:2] == ["config", "store"]
    assert summary["config"] == str(clean_cwd / "trendrec.toml") and summary["store"] == str(clean_cwd / "shop-store")
    rc, out, _ = run(capsys, "models", "list")
    assert out.splitlines()[1:3] == [f"  config: {clean_cwd / 'trendrec.toml'} (found from the working directory)",
                                     f"  store: {clean_cwd / 'shop-store'}"]


def test_without_a_file_the_variable_then_the_defaults_are_named(capsys, clean_cwd, monkeypatch, tmp_path):
    rc, out, _ = run(capsys, "models", "list", "--json")
    assert json.loads(out)["config"] == DEFAULTS and json.loads(out)["store"] == str(clean_cwd / "trendrec-data")
    (tmp_path / "mine.toml").write_text("")
    monkeypatch.setenv("TRENDREC_CONFIG", str(tmp_path / "mine.toml"))
    rc, out, _ = run(capsys, "models", "list")
    assert f"  config: {tmp_path / 'mine.toml'} ($TRENDREC_CONFIG)" in out.splitlines()


def test_json_keeps_every_key_of_the_summary_after_config_and_store(capsys, small_config, push_version):
    push_version(small_config, TRENDS)
    rc, out, _ = run(capsys, "status", "--store", small_config.store, "--json")
    status = json.loads(out)
    assert rc == 0 and list(status)[:3] == ["config", "store", "files_ingested"]
    assert status["production_history"] == [] and status["production_version"] == "v0001"


def test_status_of_a_store_that_is_not_there_says_so(capsys, tmp_path):
    rc, out, err = run(capsys, "status", "--store", tmp_path / "typo")
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert f"no store at {tmp_path / 'typo'}" in err and "--store" in err and "$TRENDREC_STORE" in err
    assert not (tmp_path / "typo").exists()


def test_status_human_summary_has_no_empty_lines_and_tables(capsys, small_config, push_version):
    push_version(small_config, TRENDS)
    rc, out, _ = run(capsys, "status", "--store", small_config.store)
    lines = out.splitlines()
    assert rc == 0 and lines[1].startswith("  config: ") and lines[2] == f"  store: {small_config.store}"
    assert "  production_history: none" in lines and not [line for line in lines if line.endswith(": ")]
    rc, out, _ = run(capsys, "models", "list", "--store", small_config.store)
    header = next(line for line in out.splitlines() if line.strip().startswith("version"))
    assert header.split()[:3] == ["version", "created_at", "forecaster"]
    assert any(line.split()[0] == "v0001" and line.split()[-1] == "yes" for line in out.splitlines()[4:])


def test_tensorflow_start_up_noise_stays_off_stderr_without_verbose():
    code = ("import os\nfrom recsys.cli import quiet_tensorflow\nquiet_tensorflow()\nimport tensorflow as tf\n"
            "print(int(tf.constant(1) + 1), os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    done = python_process("-c", code, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "None"]  # TensorFlow works; oneDNN (numerics) left as TensorFlow sets it
    assert done.stderr == ""  # no absl "InitializeLog" line, no oneDNN notice, no CPU-feature line
