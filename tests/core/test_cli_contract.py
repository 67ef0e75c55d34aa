"""The CLI contract: a human summary, exactly one JSON object with --json, a one-line error."""

import json

import pytest

from tests.conftest import trendrec_process as trendrec

GOOD = "ts,item,qty,price\n2024-03-01 10:00:00,A1,2,1.5\n2024-03-02 10:00:00,A1,1,1.5\nbad,A1,1,1\n"
CONFIG = """
[ingest.columns]
event_time = "ts"
item_id = "item"
quantity = "qty"
price = "price"
"""


@pytest.fixture
def workdir(tmp_path, clean_cwd):
    (tmp_path / "events.csv").write_text(GOOD)
    (tmp_path / "c.toml").write_text(CONFIG)
    return tmp_path


def test_json_summary_is_one_object(workdir):
    out = trendrec("ingest", workdir / "events.csv", "--config", workdir / "c.toml",
                   "--store", workdir / "s", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)  # the whole of stdout is one JSON object
    assert (summary["rows_in"], summary["rows_accepted"], summary["rows_quarantined"]) == (3, 2, 1)
    out = trendrec("aggregate", "--config", workdir / "c.toml", "--store", workdir / "s", "--json")
    assert json.loads(out.stdout)["daily_rows"] == 2


def test_human_summary(workdir):
    out = trendrec("ingest", workdir / "events.csv", "--config", workdir / "c.toml", "--store", workdir / "s")
    assert out.returncode == 0
    assert "rows_accepted: 2" in out.stdout


def test_expected_failure_is_one_line_without_traceback(workdir):
    out = trendrec("ingest", workdir / "missing.csv", "--config", workdir / "c.toml", "--store", workdir / "s")
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "missing.csv" in out.stderr


def test_expected_failure_with_json_is_one_error_object(workdir):
    out = trendrec("ingest", workdir / "missing.csv", "--config", workdir / "c.toml", "--store", workdir / "s",
                   "--json")
    assert out.returncode == 1
    error = json.loads(out.stdout)  # the whole of stdout is one JSON object, also on failure
    assert error["stage"] == "ingest" and "missing.csv" in error["error"]
    assert "Traceback" not in out.stderr


def test_bad_config_is_reported(workdir):
    (workdir / "bad.toml").write_text("[model]\nunits = 'x'\n")
    out = trendrec("aggregate", "--config", workdir / "bad.toml", "--store", workdir / "s")
    assert out.returncode == 1 and "model.units" in out.stderr
