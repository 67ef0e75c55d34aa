"""Push-time scoring of the customer model at scale: pairs per second and peak RSS (issues 16 and 21).

Generates a synthetic log (benchmarks/shapes.py, ``--shape``, default long_tail: many one-off
customers) with about ``--customers`` distinct customers, ingests it into a fresh store, then scores
every customer of the lookback exactly as ``trendrec push`` does (recsys.nextbasket.scores.write_scores:
DuckDB histories in customer batches, candidates, features, the LSTMRecommender, a streamed parquet
writer) in a child process, so the peak RSS is the scoring's alone. The network is built with the
default settings and not trained: scoring cost does not depend on the weights. The scoring's own
peak is bounded by ``[customers] batch_customers`` (customers per DuckDB query), not by the number
of customers: ``--batch-customers`` shows the effect.

The machine is shared: the figures are what this run measured, not a promise.

    PYTHONPATH=. .venv/bin/python benchmarks/customer_scoring.py --customers 100000 --rows 3000000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def score_child(store: str, batch_customers: int) -> dict:
    """In this process: score every customer of ``store``; the figures and this process's peak RSS."""
    from pipeline.config import CustomerModelConfig
    from recsys.nextbasket.features import SEQ_CHANNELS, STATIC_FEATURES
    from recsys.nextbasket.histories import customer_cutoff, open_store
    from recsys.nextbasket.model import LSTMRecommender
    from recsys.nextbasket.scores import write_scores

    cfg = dataclasses.replace(CustomerModelConfig(), batch_customers=batch_customers)
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    assert model.model.inputs[0].shape[-1] == len(SEQ_CHANNELS)
    con = open_store(store)
    started = time.perf_counter()
    out = write_scores(model, con, customer_cutoff(con), Path(store) / "bench-scores.parquet", cfg)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    out["batch_customers"] = batch_customers
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="long_tail", help="a shape of benchmarks/shapes.toml")
    ap.add_argument("--rows", type=int, default=3_000_000, help="event lines to generate")
    ap.add_argument("--customers", type=int, default=100_000, help="printed beside the distinct customers found")
    ap.add_argument("--batch-customers", type=int, default=20_000, help="[customers] batch_customers")
    ap.add_argument("--data", default=None, help="directory for the log and the store (default: a temp dir)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.child:
        print(json.dumps(score_child(args.child, args.batch_customers)))
        return 0
    sys.path.insert(0, str(HERE))
    from shapes import generate

    work = Path(args.data or tempfile.mkdtemp(prefix="trendrec-scoring-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{args.shape}-{args.rows}.csv"
    if not log.exists():
        generate(args.shape, args.rows, log)
    store = work / f"store-{args.shape}-{args.rows}"
    if not (store / "raw").is_dir():
        subprocess.run([sys.executable, "-m", "recsys.cli", "ingest", str(log), "--config",
                        str(HERE / "shapes.toml"), "--store", str(store)], check=True, cwd=ROOT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.run([sys.executable, __file__, "--child", str(store), "--batch-customers",
                            str(args.batch_customers)], check=True, capture_output=True, text=True, env=env)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result |= {"shape": args.shape, "rows": args.rows, "load_avg": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
