"""What writing a log as one parquet file per day costs by itself, with the tools an ingest could build on.

Issue 34 asks for an ingest at most 1.25x the bare copy in any row order. trendrec's ingest validates,
keys and counts every line and writes one file per day and commit; in an order other than time order no
day is complete before the log ends. This script times the write alone, without any validation or keys,
so a design that builds on one of these tools cannot be cheaper than what it prints:

* ``copy``: the bare copy ingest_bench.py compares with (pyarrow ``open_csv`` -> one zstd ``ParquetWriter``);
* ``arrow_dataset``: Arrow's dataset writer partitioned by the day (``event_date=...`` directories), every
  day's file open (``max_open_files`` 4096), row groups of 64 Ki-1 Mi rows, zstd;
* ``duckdb``: one ``COPY (SELECT ... FROM read_csv(...)) TO ... (PARTITION_BY (event_date))`` with a 1 GB
  memory limit, zstd.

Run each under /usr/bin/time for wall time, CPU and peak RSS (the numbers: benchmarks/README.md):

    for d in copy arrow_dataset duckdb; do /usr/bin/time -f "$d %e s %U+%S s %M KiB" \\
        .venv/bin/python benchmarks/ingest_designs.py $d /var/tmp/trendrec-shapes/by_customer-20000000-s0.csv /var/tmp/out; done
"""

from __future__ import annotations

import argparse
import os
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

IDS = {"CustomerID": pa.string(), "StockCode": pa.string(), "InvoiceNo": pa.string()}  # ids stay text


def _reader(src: str) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=16 << 20),
                          convert_options=pacsv.ConvertOptions(column_types=IDS))


def copy(src: str, out: str) -> None:
    writer = None
    for batch in _reader(src):
        if writer is None:
            writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
        writer.write_batch(batch)
    if writer is not None:
        writer.close()


def arrow_dataset(src: str, out: str) -> None:
    def with_day():
        for batch in _reader(src):
            day = pc.cast(batch.column("InvoiceDate"), pa.date32())
            yield pa.RecordBatch.from_arrays([*batch.columns, day], names=[*batch.schema.names, "event_date"])
    schema = _reader(src).schema.append(pa.field("event_date", pa.date32()))
    ds.write_dataset(with_day(), out, schema=schema, format="parquet", partitioning=["event_date"],
                     partitioning_flavor="hive", max_open_files=4096, min_rows_per_group=1 << 16,
                     max_rows_per_group=1 << 20, existing_data_behavior="overwrite_or_ignore",
                     file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"))


def duckdb_copy(src: str, out: str) -> None:
    import duckdb
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in IDS)
    con.execute(f"COPY (SELECT *, CAST(InvoiceDate AS DATE) AS event_date FROM read_csv('{src}', types={{{types}}})) "
                f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (event_date))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("design", choices=("copy", "arrow_dataset", "duckdb"))
    parser.add_argument("csv", help="a log of benchmarks/shapes.py")
    parser.add_argument("out", help="the parquet file (copy) or directory written; replaced")
    args = parser.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    elif os.path.exists(args.out):
        os.remove(args.out)
    {"copy": copy, "arrow_dataset": arrow_dataset, "duckdb": duckdb_copy}[args.design](args.csv, args.out)


if __name__ == "__main__":
    main()
