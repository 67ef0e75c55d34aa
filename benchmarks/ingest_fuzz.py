"""The figures of issue #20's closing note for ingest: a big hostile CSV, what became of every record.

Writes benchmarks/fuzz_log.py's log (``--good`` good rows of 12 shapes, ``--bad`` bad records of 59
kinds, blank lines and CRLF; seed ``--seed``), ingests it into a fresh store with the default reader
blocks (or ``--block-bytes``), and prints one JSON object: records, accepted, quarantined, lost, good
rows not stored on their physical line or with any wrong value, bad records without their expected
reason, the rows counted duplicate, filtered or dropped, seconds. Every "wrong" figure should be 0.
Asserts nothing; tests/ingest/test_ingest_fuzz.py runs it small and checks the figures.

    flock /tmp/trendrec-cpu.lock .venv/bin/python benchmarks/ingest_fuzz.py --good 200000 --bad 120000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the repository's packages
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling fuzz_log

from fuzz_log import COLUMNS, figures, write_fuzz_log  # noqa: E402

from pipeline.config import Config, IngestConfig, load_config  # noqa: E402
from pipeline.ingest import csv_reader  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.store import Store  # noqa: E402


def fuzz_config(tmp: Path) -> Config:
    """Defaults on ``tmp/store``; the log is bad on purpose, so no share of refused rows fails it."""
    ingest = IngestConfig(columns=COLUMNS, returns="quarantine", max_reject_share=1.0)
    return dataclasses.replace(load_config(None), store=str(tmp / "store"), ingest=ingest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=200_000)
    parser.add_argument("--bad", type=int, default=120_000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--block-bytes", type=int, help="reader block size (small: more fast-path/re-scan switches)")
    args = parser.parse_args()
    if args.block_bytes:
        csv_reader.BLOCK_BYTES = args.block_bytes
    with tempfile.TemporaryDirectory(prefix="trendrec-fuzz-") as tmp:
        log = write_fuzz_log(Path(tmp) / "fuzz.csv", good=args.good, bad=args.bad, seed=args.seed)
        cfg = fuzz_config(Path(tmp))
        started = time.perf_counter()
        summary = run_ingest(cfg, log.path)
        seconds = time.perf_counter() - started
        out = figures(log, summary, Store(cfg.store))
        size = log.path.stat().st_size
    counted = {k: summary[k] for k in ("rows_duplicate", "rows_filtered", "rows_dropped")}
    print(json.dumps({**out, **counted, "file_mb": round(size / 1e6, 1),
                      "ingest_seconds": round(seconds, 2)}, indent=1))


if __name__ == "__main__":
    main()
