"""Ingest speed and memory against a bare pyarrow CSV → parquet copy of the same file, same run.

Generates N rows of a shop's CSV log in a temporary directory, then runs, each in a child process
(so that its peak RSS is its own, read from os.wait4): the bare copy (pyarrow.csv.open_csv →
ParquetWriter, no validation) and ``run_ingest`` on a fresh store. Prints seconds, rows/s, peak RSS
and the ratio ingest / copy (issue 3's target: at most 2). Asserts nothing: machines are shared.

Measured on the project's 2-core machine, 20 M rows (the default; about 2 minutes in all):
ingest 26.8 s (746k rows/s) vs bare copy 16.4 s = ratio 1.64, ingest peak RSS 1035 MiB (copy 814).
Two more runs: 27.9 s vs 20.1 s (1.39), 27.8 s vs 15.0 s (1.86); the copy's time varies most.
Before the issue-3 speed work (commit 8f1026b, same session): 63.6 s vs 15.0 s = 4.23, 1357 MiB.

    .venv/bin/python benchmarks/ingest_bench.py --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("ingest_bench")

CONFIG = """
store = "{store}"
[ingest]
batch_rows = {batch_rows}
timezone = "Europe/London"
returns = "keep"
segment_from = "desc"
segment_rules = [["christmas", "XMAS|CHRISTMAS"], ["kitchen", "MUG|CUP"]]
[ingest.columns]
event_time = "ts"
item_id = "item"
quantity = "qty"
price = "price"
user_id = "customer"
order_id = "order"
"""
COPY = """
import sys, pyarrow.csv as c, pyarrow.parquet as pq
reader = c.open_csv(sys.argv[1], read_options=c.ReadOptions(block_size=1 << 24))
with pq.ParquetWriter(sys.argv[2], reader.schema, compression="zstd") as w:
    for batch in reader:
        w.write_batch(batch)
"""
INGEST = """
import sys, json
from pipeline.config import load_config
from pipeline.ingest.ingest import run_ingest
print(json.dumps(run_ingest(load_config(sys.argv[1]), sys.argv[2])))
"""


def generate_csv(path: Path, rows: int, seed: int = 0, chunk: int = 2_000_000) -> None:
    """A year of events: minute timestamps, 5,000 items, 20,000 customers (10% guests), some returns."""
    rng = np.random.default_rng(seed)
    descs = pa.array(["RED XMAS MUG", "PAPER CUP", "TEA TOWEL", "CHRISTMAS STAR", "GARDEN SIGN"])
    with open(path, "wb") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            minutes = np.sort(rng.integers(0, 365 * 24 * 60, n)) + 28_401_120  # from 2024-01-01
            table = pa.table({
                "ts": pa.array(minutes.astype("datetime64[m]").astype("datetime64[s]")),
                "item": pa.array(np.char.add("A", rng.integers(0, 5000, n).astype(str))),
                "qty": pa.array(rng.integers(-2, 12, n)),
                "price": pa.array(np.round(rng.uniform(0.1, 20, n), 2)),
                "customer": pa.array(rng.integers(0, 20_000, n).astype(str)).take(pa.array(np.arange(n)))
                .to_pandas().where(rng.random(n) > 0.1, ""),
                "order": pa.array(np.char.add("o", (start + np.arange(n) // 4).astype(str))),
                "desc": descs.take(pa.array(rng.integers(0, 5, n))),
            })
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=start == 0))


def run_child(code: str, *args: str) -> tuple[float, int, str]:
    """Seconds, peak RSS (bytes) and stdout of ``python -c code args`` in a child process."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child failed ({status}): {code.strip().splitlines()[-1]}")
    return time.monotonic() - started, usage.ru_maxrss * 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="rows to generate (default 20 M)")
    parser.add_argument("--batch-rows", type=int, default=500_000, help="ingest.batch_rows for the run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="trendrec-bench-"))
    csv_path = tmp / "events.csv"
    t0 = time.monotonic()
    generate_csv(csv_path, args.rows)
    log.info("generated %s rows, %.0f MB in %.1f s", f"{args.rows:,}", csv_path.stat().st_size / 1e6,
             time.monotonic() - t0)
    (tmp / "c.toml").write_text(CONFIG.format(store=tmp / "store", batch_rows=args.batch_rows))
    copy_s, copy_rss, _ = run_child(COPY, str(csv_path), str(tmp / "copy.parquet"))
    ingest_s, ingest_rss, out = run_child(INGEST, str(tmp / "c.toml"), str(csv_path))
    summary = json.loads(out.strip().splitlines()[-1])
    result = {
        "rows": args.rows, "batch_rows": args.batch_rows, "rows_accepted": summary["rows_accepted"],
        "rows_quarantined": summary["rows_quarantined"],
        "copy_s": round(copy_s, 1), "ingest_s": round(ingest_s, 1), "ratio": round(ingest_s / copy_s, 2),
        "ingest_rows_per_s": round(args.rows / ingest_s), "copy_rows_per_s": round(args.rows / copy_s),
        "ingest_peak_rss_mib": round(ingest_rss / 2**20), "copy_peak_rss_mib": round(copy_rss / 2**20),
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    else:
        log.info("kept %s", tmp)


if __name__ == "__main__":
    main()
