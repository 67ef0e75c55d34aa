"""A short run of benchmarks/release_kill.py on placeholder releases (no training): SIGKILL `trendrec
models promote`, `models rollback` and `rerank` at random moments, 3 times each; production always
parses, loads and verifies, a reader sees the old state or the new one, every re-run ends where the
unkilled run ended, and nothing is left over (a killed production.json write's temp file, swept once it
is 60 s old, is counted apart: how many a kill leaves depends on where it lands). The figures for 20 kills of every release stage (train
parts, evaluate and push included) come from the script itself (benchmarks/README.md).

    .venv/bin/python -m pytest tests/release/test_release_kill.py -q
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_kills_of_promote_rollback_and_rerank_leave_no_half_state_and_no_stuck_re_run():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "release_kill.py"), "--shop", "quick",
                           "--kills", "3", "--seed", "1", "--stages", "promote,rollback,rerank"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {r["stage"]: r for r in map(json.loads, (x for x in done.stdout.splitlines() if x.startswith("{")))}
    assert set(results) == {"promote", "rollback", "rerank"}
    for r in results.values():
        assert (r["kills"], r["half"], r["stuck"], r["leftovers"], r["changed"]) == (3, 0, 0, 0, True), r


def test_the_tiny_shop_config_still_fits_the_demo_config():
    """fault_shops.py makes the tiny shop (release_kill.py, cli_faults.py) by replacing lines of trendrec.toml:
    a line the demo config changed stops the kill and fault harnesses at their build, minutes in."""
    import tomllib

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fault_shops.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    config = tomllib.loads(done.stdout)
    assert config["store"] == "STORE" and config["model"]["epochs"] == 2
    assert config["combination"]["members"] == ["lstm", "seasonal_naive"]
