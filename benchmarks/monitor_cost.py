"""What watching a shop costs: ingest statistics and `trendrec drift` against the ingest itself.

Generates a ``zipf`` log of benchmarks/shapes.py (``--lines`` lines, two years) and ingests it with
benchmarks/shapes.toml into a fresh store, ``--pairs`` times each way, interleaved: with the statistics
switched off (the staging's ``Tally.add`` and ``recount`` and the ingest's ``write_ingest_stats`` replaced by
no-ops), then as trendrec does (counted in the ingest's pass, pipeline.ingest.tally, and written after
the commit). ``stats_over_ingest`` is the median over the pairs of (with - without) / without, in wall time;
``stats_cpu_over_ingest_cpu`` the same with the process's CPU time (all threads); ``tally_cpu_s`` the CPU the
tally's own calls used (thread time, summed over the threads that called it). Then, on the store with the
record, the record counted again from the committed files alone (the fallback for a commit without one:
``write_ingest_stats`` without a tally) and one `trendrec drift` run (the last 7 days against the 28 days
before), ``--repeat`` times each. Run it alone, under the CPU lock the speed benchmarks share:

    flock /tmp/trendrec-cpu.lock env PYTHONPATH=. .venv/bin/python benchmarks/monitor_cost.py \
        --lines 20000000 --work /var/tmp/monitor-cost
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
from pipeline.ingest import ingest, tally  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.ingest.stats import write_ingest_stats  # noqa: E402
from pipeline.store import Store  # noqa: E402
from recsys.monitor.drift import run_drift  # noqa: E402
from recsys.monitor.windows import last_day  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed_ingest(cfg, log_file: Path, store: Path, with_stats: bool) -> tuple[float, float, float, dict]:
    """(wall seconds, process CPU seconds, the tally's CPU seconds, summary) of one ingest into a fresh ``store``."""
    shutil.rmtree(store, ignore_errors=True)
    saved = ingest.write_ingest_stats, tally.Tally.add, tally.Tally.recount
    spent = [0.0]

    def timed_add(self, *args, **kwargs):
        started = time.thread_time()
        try:
            return saved[1](self, *args, **kwargs)
        finally:
            spent[0] += time.thread_time() - started
    if with_stats:
        tally.Tally.add = timed_add
    else:
        ingest.write_ingest_stats = lambda *args, **kwargs: None
        tally.Tally.add = tally.Tally.recount = lambda *args, **kwargs: None
    try:
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_ingest(cfg, str(log_file))
        return time.perf_counter() - started, time.process_time() - cpu, spent[0], summary
    finally:
        ingest.write_ingest_stats, tally.Tally.add, tally.Tally.recount = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", "--rows", dest="rows", type=int, default=2_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/monitor-cost"))
    parser.add_argument("--pairs", type=int, default=3, help="interleaved ingests without and with the statistics")
    parser.add_argument("--repeat", type=int, default=2, help="timings of the statistics and drift (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    args.work.mkdir(parents=True, exist_ok=True)
    log_file = args.work / f"zipf-{args.rows}.csv"
    if not log_file.exists():
        shapes.generate("zipf", args.rows, log_file)
    store = args.work / "store"
    cfg = load_config(ROOT / "benchmarks" / "shapes.toml", store=str(store))
    pairs = []
    for pair in range(args.pairs):
        without = timed_ingest(cfg, log_file, store, with_stats=False)
        with_ = timed_ingest(cfg, log_file, store, with_stats=True)
        pairs.append((without, with_))
        print(f"pair {pair + 1}: without {without[0]:.2f} s ({without[1]:.2f} s CPU), with {with_[0]:.2f} s "
              f"({with_[1]:.2f} s CPU, tally {with_[2]:.2f} s)", file=sys.stderr)
    summary = pairs[-1][1][3]
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    bare, wall = median([p[0][0] for p in pairs]), median([p[1][0] for p in pairs])
    bare_cpu, cpu = median([p[0][1] for p in pairs]), median([p[1][1] for p in pairs])
    wall_ratios = sorted((w[0] - b[0]) / b[0] for b, w in pairs)
    cpu_ratios = sorted((w[1] - b[1]) / b[1] for b, w in pairs)
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
    print(json.dumps({
        "rows": args.rows, "rows_accepted": summary["rows_accepted"],
        "ingest_without_stats_s": round(bare, 2), "ingest_with_stats_s": round(wall, 2),
        "stats_over_ingest": round(median(wall_ratios), 4), "stats_over_ingest_pairs": [round(r, 4) for r in wall_ratios],
        "cpu_without_stats_s": round(bare_cpu, 2), "cpu_with_stats_s": round(cpu, 2),
        "stats_cpu_over_ingest_cpu": round(median(cpu_ratios), 4),
        "stats_cpu_pairs": [round(r, 4) for r in cpu_ratios],
        "tally_cpu_s": [round(p[1][2], 2) for p in pairs],
        "stats_alone_s": [round(x, 2) for x in stats], "stats_alone_over_ingest": round(stat_s / bare, 4),
        "drift_s": [round(x, 2) for x in drift], "drift_over_ingest": round(drift_s / bare, 4)}))


if __name__ == "__main__":
    main()
