"""What the shape benchmarks share: child-process timing, interleaved runs, the side-by-side table.

Every timed command runs in its own process, spawned by a small launcher (see LAUNCHER for why): its
wall time runs from the spawn to os.wait4's return (interpreter start and imports included), and its
peak RSS is the ru_maxrss that os.wait4 reports for it. The reference and trendrec alternate (ref, trendrec,
ref, trendrec, ...), so a machine that slows down part-way slows both; each pair gives one ratio and
the median of those ratios is reported. Two signs of a busy machine are logged with every run:
``os.getloadavg()`` just before it (on a quiet machine it still carries the benchmark's own previous
run, up to about 2 on 2 cores) and the CPU seconds that other processes used while it ran (the
machine's busy time from /proc/stat minus the child's own user + system time; near 0 when quiet).
Used by ingest_bench.py and aggregate_bench.py; not run on its own.

    .venv/bin/python benchmarks/ingest_bench.py --shapes zipf --rows 200000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shapes import SHAPES, generate

ROOT = Path(__file__).resolve().parents[1]
TRENDREC = Path(sys.executable).with_name("trendrec")  # the console script of the venv running this
TINY_ROWS = 1_000  # the fixed-cost run: the same command on a file this small
log = logging.getLogger("bench")


@dataclass
class Run:
    seconds: float
    peak_rss: int  # bytes
    stdout: str
    load: tuple[float, float, float]  # os.getloadavg() just before the run
    others_cpu_s: float | None  # CPU seconds other processes used during the run (None: no /proc/stat)
    cpu_s: float | None = None  # the command's own CPU seconds (user + system, its children included)


@dataclass
class ShapeResult:
    """The interleaved pairs of one shape plus its fixed-cost runs and anything worth printing."""

    refs: list[Run] = field(default_factory=list)
    ours: list[Run] = field(default_factory=list)
    fixed: list[Run] = field(default_factory=list)  # trendrec on TINY_ROWS lines of the same shape
    extra: dict = field(default_factory=dict)


# The timed command is started by this small launcher, not by the benchmark itself: Linux carries the
# peak RSS of a forking process into its child's ru_maxrss (measured: a child `sleep` of a 416 MiB parent
# reports 416 MiB), so a command forked straight from the benchmark, which holds a generator's chunks,
# would report at least the benchmark's size. The launcher (python -I -S, about 8 MiB) spawns the command,
# waits for it with os.wait4 and writes: wall seconds from spawn to exit, and its peak RSS in KiB.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as fh:
    fh.write(f"{seconds} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def warm(paths: list[Path]) -> float:
    """Read ``paths`` through once (untimed), so that the timed command finds them in the page cache;
    returns the seconds it took. On a machine whose page cache holds less than the benchmark's files (a VM
    here kept about 6 GiB of cache with 17 GiB free, so a shape's 1.6 GB log was partly evicted between
    pairs), the command that ran first after an eviction read from disk and the pair's ratio moved by
    up to 0.25; a slow warm-up in the log shows that it happened."""
    started, buffer = time.perf_counter(), bytearray(16 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as fh:
            while fh.readinto(buffer):
                pass
    return time.perf_counter() - started


def run_child(argv: list[str], cwd: Path, label: str, inputs: list[Path] = ()) -> Run:
    """Wall seconds, peak RSS and stdout of ``argv`` in a child process; exits with its stderr on failure.
    ``inputs``: files the command reads, read through first (``warm``, untimed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRENDREC_CONFIG", "TRENDREC_STORE")}
    warmed = warm(list(inputs)) if inputs else None
    load = os.getloadavg()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as measured:
        busy = _busy_cpu_s()
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, measured.name, *argv], cwd=cwd,
                                env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of the launcher and the command together
        others = None if busy is None else _busy_cpu_s() - busy - usage.ru_utime - usage.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0), err.seek(0)
        stdout, stderr, fields = out.read().decode(), err.read().decode(), measured.read().split()
    if proc.returncode != 0 or len(fields) != 2:
        raise SystemExit(f"{label} failed (exit {proc.returncode}): {' '.join(argv)[:200]}\n{stderr[-3000:]}")
    run = Run(float(fields[0]), int(fields[1]) * 1024, stdout, load, others, usage.ru_utime + usage.ru_stime)
    log.info("  %-34s %7.2f s  peak RSS %6.0f MiB  load before %.2f %.2f %.2f  others' CPU %s%s", label,
             run.seconds, run.peak_rss / 2**20, *load, "?" if others is None else f"{max(others, 0):.1f} s",
             "" if warmed is None else f"  inputs warmed in {warmed:.1f} s")
    return run


def _now() -> float:
    return time.perf_counter()


def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have used since boot (/proc/stat: everything but idle and iowait)."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # guest time is in user already


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The flags both benchmarks take."""
    ap.add_argument("--shapes", default=",".join(SHAPES), type=_shape_list,
                    help=f"comma-separated shapes of benchmarks/shapes.py (default: {','.join(SHAPES)})")
    ap.add_argument("--rows", type=lambda v: int(v.replace("_", "")), default=20_000_000,
                    help="lines per generated log (default 20 M)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved reference/trendrec pairs (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument("--data", type=Path, help="keep generated logs (and stores) here and reuse them; "
                                             "default: a temporary directory, removed at the end")
    ap.add_argument("--trendrec", default=str(TRENDREC), help=f"the CLI to time (default {TRENDREC})")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _shape_list(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(SHAPES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown shape(s) {unknown}; choose from {','.join(SHAPES)}")
    return names


def ensure_log(data: Path, shape: str, rows: int, seed: int) -> Path:
    """The generated CSV of ``shape``, written once per (shape, rows, seed) into ``data``."""
    path = data / f"{shape}-{rows}-s{seed}.csv"
    if not path.exists():
        started = _now()
        generate(shape, rows, path, seed)
        log.info("generated %s: %s lines, %.0f MB in %.1f s", path.name, f"{rows:,}", path.stat().st_size / 1e6,
                 _now() - started)
    return path


def startup(trendrec: str, cwd: Path, repeat: int) -> list[Run]:
    """`trendrec --help`: interpreter start plus the CLI's imports (pyarrow and pandas among them)."""
    return [run_child([trendrec, "--help"], cwd, "trendrec --help") for _ in range(max(repeat, 1))]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(result: ShapeResult, help_runs: list[Run]) -> dict:
    """Medians, the median of the pairs' ratios, peak RSS (the largest over the runs) and start-up."""
    ratios = [o.seconds / r.seconds for r, o in zip(result.refs, result.ours)]
    ours_s = _median([o.seconds for o in result.ours])
    help_s = _median([h.seconds for h in help_runs])
    fixed_s = _median([f.seconds for f in result.fixed])
    return {
        "reference_s": round(_median([r.seconds for r in result.refs]), 2), "trendrec_s": round(ours_s, 2),
        "ratio": round(_median(ratios), 3), "ratios": [round(x, 3) for x in ratios],
        "reference_runs_s": [round(r.seconds, 2) for r in result.refs],
        "trendrec_runs_s": [round(o.seconds, 2) for o in result.ours],
        "reference_peak_rss_mib": round(max(r.peak_rss for r in result.refs) / 2**20),
        "trendrec_peak_rss_mib": round(max(o.peak_rss for o in result.ours) / 2**20),
        "startup_s": round(help_s, 2), "startup_share": round(help_s / ours_s, 3),
        "fixed_s": round(fixed_s, 2), "fixed_share": round(fixed_s / ours_s, 3),
        "others_cpu_s": round(sum(max(r.others_cpu_s or 0, 0) for r in result.refs + result.ours), 1),
        "load_before_runs": [[round(v, 2) for v in r.load] for r in result.refs + result.ours],
        **result.extra,
    }


ROWS = (  # (label, key, format) of the side-by-side table
    ("lines", "rows", "{:,}"),
    ("reference s (median)", "reference_s", "{:.2f}"),
    ("trendrec s (median)", "trendrec_s", "{:.2f}"),
    ("ratio trendrec/ref (median)", "ratio", "{:.2f}"),
    ("ratios of the pairs", "ratios", lambda v: " ".join(f"{x:.2f}" for x in v)),
    ("reference peak RSS MiB", "reference_peak_rss_mib", "{:,}"),
    ("trendrec peak RSS MiB", "trendrec_peak_rss_mib", "{:,}"),
    ("start-up s (trendrec --help)", "startup_s", "{:.2f}"),
    ("  share of trendrec s", "startup_share", "{:.0%}"),
    (f"fixed cost s ({TINY_ROWS:,} lines)", "fixed_s", "{:.2f}"),
    ("  share of trendrec s", "fixed_share", "{:.0%}"),
    ("others' CPU s during timed runs", "others_cpu_s", "{:.1f}"),
)


def report(bench: str, title: str, args: argparse.Namespace, results: dict[str, dict], extra_rows=()) -> None:
    """One JSON object (--json) or one table with every shape side by side, on stdout."""
    if args.json:
        print(json.dumps({"bench": bench, "title": title, "rows": args.rows, "repeat": args.repeat,
                          "seed": args.seed, "cpus": os.cpu_count(), "shapes": results}, indent=1))
        return
    names = list(results)
    width = max(14, *(len(n) + 2 for n in names), *(5 * args.repeat + 1 for _ in names))  # room for the pairs' ratios
    print(f"\n{title}: median of {args.repeat} interleaved pairs per shape, {os.cpu_count()} CPUs")
    print(f"{'':34}" + "".join(f"{n:>{width}}" for n in names))
    for label, key, fmt in (*ROWS, *extra_rows):
        cells = [results[n].get(key) for n in names]
        text = [("-" if c is None else fmt(c) if callable(fmt) else fmt.format(c)) for c in cells]
        print(f"{label:34}" + "".join(f"{t:>{width}}" for t in text))


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


def main(bench: str, title: str, description: str, bench_shape, extra_rows=()) -> None:
    """The shared command line: every shape of ``--shapes`` through ``bench_shape(args, work, shape)``."""
    ap = argparse.ArgumentParser(description=description)
    add_arguments(ap)
    args = ap.parse_args()
    setup_logging()
    work = args.data or Path(tempfile.mkdtemp(prefix=f"trendrec-{bench}-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        help_runs = startup(args.trendrec, work, args.repeat)
        results = {shape: summarise(bench_shape(args, work, shape), help_runs) for shape in args.shapes}
    finally:
        if not args.data:
            shutil.rmtree(work, ignore_errors=True)
    report(bench, title, args, results, extra_rows)
