"""The customer histories as trendrec builds them against one DuckDB query, on logs of several shapes.

For each shape of benchmarks/shapes.py (``--shapes``, default all) a CSV of ``--rows`` lines is
generated and ingested with ``trendrec ingest`` (untimed; both reused from ``--data``, the same stores
as aggregate_bench.py). The cut-off is the day after the last event (``customer_cutoff``), the
lookback the default 52 weeks. Then ``--repeat`` pairs run interleaved, each in its own child process
(harness.py: wall time from spawn to exit, interpreter start and imports included; peak RSS):

* reference: what a user would write instead, one DuckDB query with default settings over
  ``STORE/raw/event_date=*/*.parquet`` computing the purchase lines (quantity > 0) of every known
  customer × item × week of the lookback, written to a parquet file with ``COPY ... TO``;
* trendrec: ``recsys.nextbasket.histories.iter_histories`` over the store as push and training run it
  (default ``[customers] batch_customers``): every batch's customer × item and customer × segment
  weekly counts plus the crowd tables every batch shares, as pandas frames.

The two customer × item × week row counts are compared (a mismatch is logged). Issue 21's target:
at most 1.0× the query's time on every shape. Run it alone, under the shared lock:

    flock /tmp/trendrec-cpu.lock .venv/bin/python benchmarks/customer_histories.py --rows 2000000 --data /var/tmp/trendrec-shapes
    .venv/bin/python benchmarks/customer_histories.py --shapes zipf --rows 200000 --repeat 1   # a quick check

Figures: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, run from anywhere

import duckdb
import harness
from aggregate_bench import ensure_store
from harness import ROOT, ShapeResult, log, run_child

from pipeline import schemas as s

REFERENCE_SQL = f"""
SELECT {s.USER_ID}, {s.ITEM_ID}, CAST((date_diff('day', {s.EVENT_DATE}, DATE '{{cutoff}}') - 1) // 7 AS INTEGER) AS week,
       count(*) AS purchases
FROM read_parquet('{{files}}', hive_partitioning = false)
WHERE {s.QUANTITY} > 0 AND {s.USER_ID} IS NOT NULL
  AND {s.EVENT_DATE} >= DATE '{{cutoff}}' - INTERVAL 52 WEEK AND {s.EVENT_DATE} < DATE '{{cutoff}}'
GROUP BY ALL
"""
# argv: the raw files' glob, the cut-off, the output file
REFERENCE = f"""
import sys, duckdb
con = duckdb.connect()
sql = {REFERENCE_SQL!r}.format(files=sys.argv[1], cutoff=sys.argv[2])
con.execute("COPY (" + sql + ") TO '" + sys.argv[3] + "' (FORMAT parquet)")
print(con.sql("SELECT count(*) FROM read_parquet(?)", params=[sys.argv[3]]).fetchall()[0][0])
"""
# argv: the store, the cut-off; prints the customer x item x week rows and the batches
TRENDREC = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from datetime import date
from recsys.nextbasket.histories import iter_histories, open_store
rows = batches = 0
for hist in iter_histories(open_store(sys.argv[1]), date.fromisoformat(sys.argv[2])):
    rows, batches = rows + len(hist.user_item), batches + 1
print(rows, batches)
"""


def _cutoff(store: Path) -> str:
    files = str(store / "raw" / "event_date=*" / "*.parquet")
    sql = f"SELECT CAST(max({s.EVENT_DATE}) AS DATE) + 1 FROM read_parquet('{files}', hive_partitioning = false)"
    return duckdb.connect().execute(sql).fetchone()[0].isoformat()  # recsys.nextbasket.histories.customer_cutoff


def bench_shape(args: argparse.Namespace, work: Path, shape: str) -> ShapeResult:
    """Interleaved DuckDB/trendrec pairs over one shape's raw parquet, then one fixed-cost run."""
    store, tiny = ensure_store(args, work, shape, args.rows), ensure_store(args, work, shape, harness.TINY_ROWS)
    files, out, cutoff = str(store / "raw" / "event_date=*" / "*.parquet"), work / f"histories-{shape}.parquet", \
        _cutoff(store)
    result = ShapeResult()
    for i in range(args.repeat):
        log.info("%s, pair %d of %d (cut-off %s):", shape, i + 1, args.repeat, cutoff)
        result.refs.append(run_child([sys.executable, "-c", REFERENCE, files, cutoff, str(out)], work, "DuckDB query"))
        out.unlink()
        result.ours.append(run_child([sys.executable, "-c", TRENDREC, str(store), cutoff], work, "trendrec histories"))
    result.fixed = [run_child([sys.executable, "-c", TRENDREC, str(tiny), _cutoff(tiny)], work,
                              f"trendrec histories ({harness.TINY_ROWS:,} lines)")]
    ref_rows = int(result.refs[-1].stdout.split()[-1])
    rows, batches = map(int, result.ours[-1].stdout.split()[-2:])
    if ref_rows != rows:
        log.warning("%s: DuckDB counted %d customer x item x week rows, trendrec %d", shape, ref_rows, rows)
    result.extra = {"rows": args.rows, "cutoff": cutoff, "history_rows": rows, "reference_history_rows": ref_rows,
                    "batches": batches}
    return result


EXTRA_ROWS = (("customer x item x week rows", "history_rows", "{:,}"),
              ("  the same, DuckDB", "reference_history_rows", "{:,}"), ("batches", "batches", "{:,}"))


def main() -> None:
    harness.main("histories", "customer histories vs one DuckDB query", __doc__.splitlines()[0], bench_shape,
                 EXTRA_ROWS)


if __name__ == "__main__":
    main()
