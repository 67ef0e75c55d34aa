"""Empty or out-of-range arguments are refused in one line, never read as the default (issue 31, item 5).

    PYTHONPATH=. .venv/bin/python -m pytest tests/core/test_cli_arguments.py -q
"""

import json

import pytest

from recsys.cli import main

pytestmark = pytest.mark.usefixtures("clean_cwd")  # no trendrec.toml; a default store would be ./trendrec-data


@pytest.mark.parametrize("argv, match", [
    (["ingest", ""], "source is empty"),
    (["push", ""], "run is empty"),
    (["rerank", "--candidates", ""], "--candidates is empty"),
    (["push", "--lists", " "], "--lists is empty"),
    (["status", "--config", ""], "--config is empty"),
    (["serve", "--host", ""], "--host is empty"),
])
def test_an_empty_argument_is_refused(capsys, clean_cwd, tmp_path, argv, match):
    rc = main([*argv, "--store", str(tmp_path / "s"), "--json"])
    out = capsys.readouterr()
    assert rc == 1 and len(out.err.strip().splitlines()) == 1 and match in out.err, out.err
    assert match in json.loads(out.out)["error"]
    assert list(clean_cwd.iterdir()) == [] and not (tmp_path / "s").exists()  # nothing created, no default store


@pytest.mark.parametrize("argv, match", [
    (["candidates", "--users", "0"], "--users: must be 1 or more, got 0"),
    (["candidates", "--n", "-1"], "--n: must be 1 or more, got -1"),
    (["candidates", "--recent-days", "0"], "--recent-days: must be 1 or more"),
    (["evaluate-rerank", "--weeks", "0"], "--weeks: must be 1 or more"),
    (["tune", "--trials", "0"], "--trials: must be 1 or more"),
    (["tune", "--epochs", "-3"], "--epochs: must be 1 or more"),
    (["backtest", "--cutoffs", "0"], "--cutoffs: must be 1 or more"),
    (["backtest", "--step", "0"], "--step: must be 1 or more"),
    (["value", "--horizon-days", "-5"], "--horizon-days: must be 1 or more"),
    (["candidates", "--users", "many"], "must be a whole number"),
    (["serve", "--port", "0"], "--port: must be a port from 1 to 65535"),
    (["serve", "--port", "99999"], "--port: must be a port from 1 to 65535"),
    (["candidates", "--as-of", "yesterday"], "--as-of: must be a day as YYYY-MM-DD"),
])
def test_an_out_of_range_number_is_refused(capsys, clean_cwd, tmp_path, argv, match):
    rc = main([*argv, "--store", str(tmp_path / "s"), "--json"])
    out = capsys.readouterr()
    assert rc == 2 and len(out.err.strip().splitlines()) == 1 and match in out.err, out.err
    error = json.loads(out.out)
    assert match in error["error"] and error["stage"] == argv[0] and "--help" in error["error"]
    assert list(clean_cwd.iterdir()) == [] and not (tmp_path / "s").exists()


def test_an_unknown_command_is_one_line_too(capsys):
    rc = main(["bogus", "--json"])
    out = capsys.readouterr()
    assert rc == 2 and len(out.err.strip().splitlines()) == 1 and json.loads(out.out)["stage"] is None
