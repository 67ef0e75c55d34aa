"""What watching a shop costs: ingest statistics and `trendrec drift` against the ingest itself.

Generates a ``zipf`` log of benchmarks/shapes.py (``--rows`` lines, two years), ingests it with
benchmarks/shapes.toml into a fresh store (the statistics record is written at the commit, inside the
timed ingest), then times the statistics again on the committed files alone (``write_ingest_stats``,
the same call) and one `trendrec drift` run (the last 7 days against the 28 days before the cut-off
``--days-before-end`` days before the log's end). Ratios are against the ingest without its statistics
(the ingest's time less the statistics' time).

    PYTHONPATH=. .venv/bin/python benchmarks/monitor_cost.py --rows 20000000 --work /var/tmp/monitor-cost
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapes  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.ingest.stats import write_ingest_stats  # noqa: E402
from pipeline.store import Store  # noqa: E402
from recsys.monitor.drift import run_drift  # noqa: E402
from recsys.monitor.windows import last_day  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/monitor-cost"))
    parser.add_argument("--repeat", type=int, default=2, help="timings of the statistics and drift (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    args.work.mkdir(parents=True, exist_ok=True)
    log_file = args.work / f"zipf-{args.rows}.csv"
    if not log_file.exists():
        shapes.generate("zipf", args.rows, log_file)
    store = args.work / "store"
    shutil.rmtree(store, ignore_errors=True)
    cfg = load_config(ROOT / "benchmarks" / "shapes.toml", store=str(store))
    started = time.perf_counter()
    summary = run_ingest(cfg, str(log_file))
    ingest = time.perf_counter() - started
    st = Store(store)
    digest = next(st.commits.glob("*.json")).stem
    stats = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        write_ingest_stats(st, digest, dict(cfg.ingest.columns), cfg.ingest.timezone)
        stats.append(time.perf_counter() - t)
    end = last_day(st)
    cut = end - datetime.timedelta(days=6)
    drift = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        run_drift(cfg, reference_end=cut, as_of=end, write=False)
        drift.append(time.perf_counter() - t)
    stat_s, drift_s = sorted(stats)[len(stats) // 2], sorted(drift)[len(drift) // 2]
    alone = ingest - stat_s
    print(json.dumps({"rows": args.rows, "rows_accepted": summary["rows_accepted"], "ingest_with_stats_s": round(ingest, 2),
                      "stats_s": [round(x, 2) for x in stats], "drift_s": [round(x, 2) for x in drift],
                      "stats_over_ingest": round(stat_s / alone, 4), "drift_over_ingest": round(drift_s / alone, 4)}))


if __name__ == "__main__":
    main()
