"""The figures of issue #20's closing note for ingest: a big hostile CSV, what became of every record.

Writes tests/ingest/fuzz_log.py's log (``--good`` good rows of 12 shapes, ``--bad`` bad records of 59
kinds, blank lines and CRLF; seed ``--seed``), ingests it into a fresh store with the default reader
blocks, and prints one JSON object: records, accepted, quarantined, lost, good rows not stored on
their physical line or with any wrong value, bad records without their expected reason, seconds.
Every "wrong" figure should be 0. Asserts nothing.

    flock /tmp/trendrec-cpu.lock .venv/bin/python benchmarks/ingest_fuzz.py --good 200000 --bad 120000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the repository's packages

from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store
from tests.ingest.fuzz_log import COLUMNS, figures, write_fuzz_log
from tests.ingest.stores import ingest_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=200_000)
    parser.add_argument("--bad", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trendrec-fuzz-") as tmp:
        log = write_fuzz_log(Path(tmp) / "fuzz.csv", good=args.good, bad=args.bad, seed=args.seed)
        cfg = ingest_config(Path(tmp), COLUMNS, returns="quarantine")
        started = time.perf_counter()
        summary = run_ingest(cfg, log.path)
        seconds = time.perf_counter() - started
        out = figures(log, summary, Store(cfg.store))
        size = log.path.stat().st_size
    print(json.dumps({**out, "file_mb": round(size / 1e6, 1),
                      "ingest_seconds": round(seconds, 2)}, indent=1))


if __name__ == "__main__":
    main()
