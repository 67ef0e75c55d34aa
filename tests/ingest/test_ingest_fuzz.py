"""A short run of benchmarks/ingest_fuzz.py: a drop of hostile CSV, JSON lines and parquet (40,600
records, 15,600 bad ones of about 136 kinds), two overlapping re-exports of its good rows (written by
pandas and by a database client), and a log whose repeats are split over the files of a drop. Every
ingest's count adds up, every good row is stored once with its exact values and physical line, every
bad record is quarantined with its expected reason, the re-exports add nothing, the split drop stores
what the single file stores, and nothing prints a traceback. Tests import no benchmark code: the
script runs as a program.

    .venv/bin/python -m pytest tests/ingest/test_ingest_fuzz.py -q
"""

import json
import subprocess
import sys

from tests.conftest import ROOT

SIZES = ["--good", "20000", "--bad", "12000", "--json-good", "3000", "--json-bad", "2200", "--parquet-good", "2000",
         "--parquet-bad", "1400", "--split-rows", "3000", "--split-files", "5"]


def test_fuzzed_csv_jsonl_parquet_and_re_exports_lose_nothing_and_count_nothing_twice():
    # Small blocks: clean runs take pyarrow's fast path, mixed ones the line-by-line re-scan.
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ingest_fuzz.py"), *SIZES,
                           "--block-bytes", str(1 << 13)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["rows_ingested"] >= 30_000 and got["bad"] >= 15_000
    assert got["bad_kinds_total"] == got["kinds_defined"] >= 130 and min(got["bad_kinds"].values()) >= 30
    for run in got["ingests"]:
        assert run["identity"] and run["as_expected"] and run["filtered_or_dropped"] == 0, run
    assert [r["ingest"] for r in got["ingests"]][1:3] == ["re-export written by pandas",
                                                          "re-export written by a database client"]
    assert got["good_lost"] == got["good_changed"] == got["good_stored_twice"] == got["stored_not_good"] == 0
    assert (got["bad_without_expected_reason"], got["wrong_reason_kinds"]) == (0, [])
    assert got["rows_added_by_re_exports"] == 0 and got["split_repeats"] > 0
    assert got["split_rows_one_file"] == got["split_rows_drop"] == 3000 and got["split_rows_differing"] == 0
