"""The full `trendrec` program: status and models through the real console entry point."""

import json

import pytest

from tests.conftest import trendrec_process as trendrec

pytestmark = pytest.mark.usefixtures("clean_cwd")  # no trendrec.toml to find: the built-in defaults


def test_status_of_an_empty_store(tmp_path):
    out = trendrec("status", "--store", tmp_path, "--json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["production_version"] is None and status["versions"] == []
    assert status["tensorboard"].startswith("tensorboard --logdir ")


def test_models_rollback_without_production_is_a_clean_error(tmp_path):
    out = trendrec("models", "rollback", "--store", tmp_path)
    assert out.returncode == 1 and "nothing to roll back" in out.stderr and "Traceback" not in out.stderr


def test_promote_refuses_a_name_outside_the_registry(tmp_path):
    out = trendrec("models", "promote", "../../etc", "--store", tmp_path)
    assert out.returncode == 1 and "invalid model version" in out.stderr


def test_evaluate_without_a_training_run(tmp_path):
    out = trendrec("evaluate", "--store", tmp_path)
    assert out.returncode == 1 and "run `trendrec train` first" in out.stderr
