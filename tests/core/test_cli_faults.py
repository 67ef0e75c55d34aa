"""A short run of benchmarks/cli_faults.py: commands of every kind (ingest, aggregate, a release flip, a
re-rank, a written output, a read-only summary) on a store with real OS faults: a file-size limit
(RLIMIT_FSIZE, everywhere), a read-only store (a read-only bind mount as root, write bits removed
otherwise) and a full disk (a full tmpfs; root only, else skipped with the reason). Each ends in one
line and one JSON error object, or reads without writing, and the store stays byte for byte.
The whole matrix (every command) comes from the script itself (benchmarks/README.md).

    .venv/bin/python -m pytest tests/core/test_cli_faults.py -q
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = "ingest,aggregate,models promote,rerank,candidates,status"


@pytest.mark.slow
def test_commands_under_a_size_limit_a_read_only_store_and_a_full_disk_fail_in_one_line_and_change_nothing():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cli_faults.py"), "--shop", "quick",
                           "--commands", COMMANDS, "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    cells = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(cells) == 6 * 3, done.stdout
    for cell in cells:
        if cell["ok"] is None:  # a fault this machine cannot make (no mount: not root, or a container) says why
            assert cell["fault"] in ("disk-full", "read-only") and "mount" in cell["outcome"], cell
            continue
        assert cell["ok"], cell
    by_command = {c["command"]: c for c in cells if c["fault"] == "file-size"}
    assert by_command["ingest"]["rc"] == 1 and "EFBIG" in by_command["ingest"]["line"]
    assert by_command["status"]["rc"] == 0  # it only reads
    made = {c["fault"] for c in cells if c["ok"] is not None}
    expected = {"read-only": "EROFS" if os.geteuid() == 0 else "EACCES", "disk-full": "ENOSPC"}
    for fault in made - {"file-size"}:
        assert any(expected[fault] in c["line"] for c in cells if c["fault"] == fault), fault
