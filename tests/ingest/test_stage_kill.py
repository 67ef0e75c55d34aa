"""A small run of benchmarks/stage_kill.py: SIGKILL `trendrec ingest` and `trendrec aggregate` 3 times
each at random moments; a hive glob never sees a state between the old and the new one, every re-run
ends with the unkilled run's bytes, and nothing temporary is left (issue 20). The figures for 20+
kills come from the benchmark itself (benchmarks/README.md)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_three_kills_of_ingest_and_of_aggregate_leave_no_half_state():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stage_kill.py"), "--kills", "3", "--days", "30",
                           "--seed", "3"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {r["stage"]: r for r in map(json.loads, (x for x in done.stdout.splitlines() if x.startswith("{")))}
    assert set(results) == {"ingest", "aggregate"}
    for r in results.values():
        assert (r["kills"], r["between"], r["stuck"], r["leftovers"], r["changed"]) == (3, 0, 0, 0, True), r
