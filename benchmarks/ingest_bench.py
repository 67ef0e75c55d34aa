"""`trendrec ingest` as the user runs it against a bare pyarrow CSV → parquet copy, on logs of several shapes.

For each shape of benchmarks/shapes.py (``--shapes``, default all) a CSV of ``--rows`` lines is
generated (or reused from ``--data``), then ``--repeat`` pairs run interleaved, each command in its own
child process (harness.py: wall time from spawn to os.wait4, process start included; peak RSS from
os.wait4):

* reference: a bare copy, pyarrow.csv.open_csv (16 MiB blocks; the id columns read as text, as a shop's
  ids are) → ParquetWriter (zstd), no validation;
* trendrec: ``.venv/bin/trendrec ingest FILE --config benchmarks/shapes.toml --store STORE --json`` on a
  fresh store each time.

Start-up is measured the same way: ``trendrec --help`` (interpreter, CLI and its pyarrow/pandas
imports) and the fixed cost, ``trendrec ingest`` of a 1,000-line log of the same shape into a fresh
store. One table prints every shape side by side (``--json``: one JSON object). Issue 21's target: at
most 1.25× the copy on every shape, peak RSS at most 0.75 GiB. Asserts nothing.

Isolation: the ratios move when anything else runs (issue 21: 1.48 → 2.21 with one busy core). Run it
alone: nothing else on the machine, under the lock that CPU-heavy jobs on the shared machine take
(``flock /tmp/trendrec-cpu.lock``). Each run logs (stderr) the load average before it and the CPU
seconds other processes used while it ran; the table sums the latter, which should stay near 0:

    flock /tmp/trendrec-cpu.lock .venv/bin/python benchmarks/ingest_bench.py --data /var/tmp/trendrec-shapes
    .venv/bin/python benchmarks/ingest_bench.py --shapes zipf --rows 200000 --repeat 1   # a quick check

Before each timed run, of either side, the log is read through once, untimed (harness.warm), so that
both read it from the page cache: on a machine whose cache holds less than the benchmark's files, the
side that ran first after the log was evicted read it from disk. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, run from anywhere

import harness
from harness import ShapeResult, log, run_child
from shapes import CONFIG

COPY = """
import sys, pyarrow as pa, pyarrow.csv as c, pyarrow.parquet as pq
text = {name: pa.string() for name in ("InvoiceNo", "StockCode", "CustomerID")}
reader = c.open_csv(sys.argv[1], read_options=c.ReadOptions(block_size=1 << 24),
                    convert_options=c.ConvertOptions(column_types=text))
with pq.ParquetWriter(sys.argv[2], reader.schema, compression="zstd") as w:
    for batch in reader:
        w.write_batch(batch)
"""


def _ingest(args: argparse.Namespace, csv: Path, store: Path, label: str) -> harness.Run:
    shutil.rmtree(store, ignore_errors=True)
    run = run_child([args.trendrec, "ingest", str(csv), "--config", str(CONFIG), "--store", str(store), "--json"],
                    store.parent, label, inputs=[csv])
    shutil.rmtree(store, ignore_errors=True)
    return run


def bench_shape(args: argparse.Namespace, work: Path, shape: str) -> ShapeResult:
    """Interleaved copy/ingest pairs on one shape's log, then the fixed-cost runs."""
    csv = harness.ensure_log(work, shape, args.rows, args.seed)
    tiny = harness.ensure_log(work, shape, harness.TINY_ROWS, args.seed)
    runs = work / f"runs-{shape}"
    runs.mkdir(exist_ok=True)
    result = ShapeResult()
    for i in range(args.repeat):
        log.info("%s, pair %d of %d:", shape, i + 1, args.repeat)
        result.refs.append(run_child([sys.executable, "-c", COPY, str(csv), str(runs / "copy.parquet")], runs,
                                     "bare pyarrow copy", inputs=[csv]))
        (runs / "copy.parquet").unlink()
        result.ours.append(_ingest(args, csv, runs / "store", "trendrec ingest"))
    result.fixed = [_ingest(args, tiny, runs / "store", f"trendrec ingest ({harness.TINY_ROWS:,} lines)")
                    for _ in range(args.repeat)]
    summary = json.loads(result.ours[-1].stdout)
    trendrec_s = sorted(o.seconds for o in result.ours)[len(result.ours) // 2]
    result.extra = {"rows": args.rows, "csv_mb": round(csv.stat().st_size / 1e6),
                    "rows_accepted": summary["rows_accepted"], "rows_quarantined": summary["rows_quarantined"],
                    "trendrec_rows_per_s": round(args.rows / trendrec_s)}
    shutil.rmtree(runs, ignore_errors=True)
    return result


EXTRA_ROWS = (("CSV MB", "csv_mb", "{:,}"), ("rows accepted", "rows_accepted", "{:,}"),
              ("trendrec lines/s (median)", "trendrec_rows_per_s", "{:,}"))


def main() -> None:
    harness.main("ingest", "trendrec ingest vs a bare pyarrow CSV -> parquet copy", __doc__.splitlines()[0], bench_shape, EXTRA_ROWS)


if __name__ == "__main__":
    main()
