"""What watching a shop costs: ingest statistics and `trendrec drift` against the ingest itself.

Generates a ``zipf`` log of benchmarks/shapes.py (``--lines`` lines, two years) and ingests it with
benchmarks/shapes.toml into a fresh store twice: with the statistics record switched off (the ingest's
call to ``write_ingest_stats`` replaced by one that writes nothing), then as trendrec does (the record
written after the commit, from its raw files with DuckDB). ``stats_over_ingest`` is the difference of the
two wall times over the ingest without the record; ``stats_cpu_over_ingest_cpu`` the same with the
process's CPU time (steadier on a shared machine). Then, on the store with the record, the statistics
again on the committed files alone (``write_ingest_stats``, the same call; ``stats_alone_over_ingest``)
and one `trendrec drift` run (the last 7 days against the 28 days before), ``--repeat`` times each. Run it
alone, under the CPU lock the speed benchmarks share:

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
from pipeline.ingest import ingest  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.ingest.stats import write_ingest_stats  # noqa: E402
from pipeline.store import Store  # noqa: E402
from recsys.monitor.drift import run_drift  # noqa: E402
from recsys.monitor.windows import last_day  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed_ingest(cfg, log_file: Path, store: Path, with_stats: bool) -> tuple[float, float, dict]:
    """(wall seconds, process CPU seconds, summary) of one ingest into a fresh ``store``."""
    shutil.rmtree(store, ignore_errors=True)
    saved = ingest.write_ingest_stats
    if not with_stats:
        ingest.write_ingest_stats = lambda *args, **kwargs: None
    try:
        started, cpu = time.perf_counter(), time.process_time()
        summary = run_ingest(cfg, str(log_file))
        return time.perf_counter() - started, time.process_time() - cpu, summary
    finally:
        ingest.write_ingest_stats = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", "--rows", dest="rows", type=int, default=2_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/monitor-cost"))
    parser.add_argument("--repeat", type=int, default=2, help="timings of the statistics and drift (median)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    args.work.mkdir(parents=True, exist_ok=True)
    log_file = args.work / f"zipf-{args.rows}.csv"
    if not log_file.exists():
        shapes.generate("zipf", args.rows, log_file)
    store = args.work / "store"
    cfg = load_config(ROOT / "benchmarks" / "shapes.toml", store=str(store))
    bare, bare_cpu, _ = timed_ingest(cfg, log_file, store, with_stats=False)
    wall, cpu, summary = timed_ingest(cfg, log_file, store, with_stats=True)
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
        "stats_over_ingest": round((wall - bare) / bare, 4),
        "cpu_without_stats_s": round(bare_cpu, 2), "cpu_with_stats_s": round(cpu, 2),
        "stats_cpu_over_ingest_cpu": round((cpu - bare_cpu) / bare_cpu, 4),
        "stats_alone_s": [round(x, 2) for x in stats], "stats_alone_over_ingest": round(stat_s / bare, 4),
        "drift_s": [round(x, 2) for x in drift], "drift_over_ingest": round(drift_s / bare, 4)}))


if __name__ == "__main__":
    main()
