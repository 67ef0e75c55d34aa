"""Hostile ingest figures: a drop of hostile CSV, JSON lines and parquet, overlapping re-exports of it, and
a repeat split over files; what became of every record and whether each ingest's count adds up.

Writes, under a temporary folder, one drop (a folder ingested at once) of benchmarks/fuzz_log.py's CSV
(``--good``/``--bad``: good rows of 12 shapes, bad records of its kinds, blank lines and CRLF) and
fuzz_formats.py's JSON lines and parquet files (``--json-good``/``--json-bad``, ``--parquet-good``/
``--parquet-bad``); ingests it; then ingests into the same store the re-exports of its good rows that
fuzz_exports.py writes as pandas and as a database client would (each must add 0 rows); then a log with
genuine repeats (``--split-rows`` lines), as one file into one store and cut into ``--split-files``
files of one drop into another (both must store the same rows; each ingested into the other store adds
0). Prints one JSON object (or ``--table``): per ingest its counts and whether ``rows_in == accepted +
quarantined + duplicate`` holds, the bad kinds per format, and every "wrong" figure (good rows lost,
changed or stored twice, rows stored that are no good row, bad records without their expected reason),
each of which should be 0. Asserts nothing; tests/ingest/test_ingest_fuzz.py runs it small.

    flock /tmp/trendrec-cpu.lock .venv/bin/python benchmarks/ingest_fuzz.py --table
    .venv/bin/python benchmarks/ingest_fuzz.py --good 200000 --bad 120000 --json-good 40000 --json-bad 20000
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling generators

import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from fuzz_exports import write_database_export, write_pandas_export, write_split_drop  # noqa: E402
from fuzz_formats import JSON_BAD_KINDS, PARQUET_BAD_KINDS, write_jsonl, write_parquet_files  # noqa: E402
from fuzz_log import BAD_KINDS, CANONICAL, COLUMNS, write_fuzz_log  # noqa: E402

from pipeline.config import Config, IngestConfig, load_config  # noqa: E402
from pipeline.ingest import csv_reader  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.store import Store  # noqa: E402

KEY = ["source_file", "source_line"]


def fuzz_config(store: Path) -> Config:
    """Defaults on ``store``; the log is bad on purpose, so no share of refused rows fails it."""
    ingest = IngestConfig(columns=COLUMNS, returns="quarantine", max_reject_share=1.0)
    return dataclasses.replace(load_config(None), store=str(store), ingest=ingest)


def _table(files: list[Path]) -> pd.DataFrame:
    return pd.concat([pq.read_table(f).to_pandas() for f in files]) if files else pd.DataFrame(columns=KEY)


def ingest(log: list[dict], name: str, cfg: Config, source: Path, **expect: int) -> dict:
    """Ingest ``source``, add one row to ``log``: the counts, the identity, whether ``expect`` held."""
    started = time.perf_counter()
    s = run_ingest(cfg, source)
    row = {"ingest": name, "rows_in": s["rows_in"], "accepted": s["rows_accepted"],
           "quarantined": s["rows_quarantined"], "duplicate": s["rows_duplicate"],
           "filtered_or_dropped": s["rows_filtered"] + s["rows_dropped"],
           "seconds": round(time.perf_counter() - started, 2)}
    row["identity"] = row["rows_in"] == row["accepted"] + row["quarantined"] + row["duplicate"]
    row["as_expected"] = all(row[k] == v for k, v in expect.items())
    log.append(row)
    return s


def compare(good: pd.DataFrame, bad: pd.DataFrame, store: Store) -> dict:
    """How many records did not end as written: good rows lost, changed, stored twice; rows stored that
    are no good row; bad records without their expected reason (and those kinds)."""
    raw, refused = _table(store.committed_raw_files()), _table(sorted(store.quarantine.glob("*.parquet")))
    both = good.merge(raw, on=KEY, how="outer", suffixes=("", "_got"), indicator=True)
    found = both[both["_merge"] == "both"]
    differs = pd.Series(False, index=found.index)
    for column in CANONICAL:
        want, got = found[column].astype(object), found[f"{column}_got"].astype(object)
        differs |= ~((want == got) | (want.isna() & got.isna()))
    reasons = refused[KEY].assign(got=refused["reason"].str.split(":", n=1).str[0])
    kinds = bad.merge(reasons, on=KEY, how="left")
    wrong = kinds["got"] != kinds["reason"]
    return {"good_lost": int((both["_merge"] == "left_only").sum()),
            "good_changed": int(differs.sum()),
            "good_stored_twice": int(raw.duplicated(KEY).sum()),
            "stored_not_good": int((both["_merge"] == "right_only").sum()),
            "bad_without_expected_reason": int(wrong.sum()),
            "wrong_reason_kinds": sorted(set(kinds.loc[wrong, "kind"]))}


def hostile_drop(work: Path, args: argparse.Namespace, log: list[dict]) -> tuple[Config, pd.DataFrame, dict]:
    """The drop of CSV, JSON lines and parquet, ingested; returns its config, its good rows, the figures."""
    drop = work / "drop"
    drop.mkdir()
    fuzz = write_fuzz_log(drop / "fuzz.csv", good=args.good, bad=args.bad, seed=args.seed)
    good_j, bad_j = write_jsonl(drop / "fuzz.jsonl", args.json_good, args.json_bad, args.seed + 1)
    good_p, bad_p = write_parquet_files(drop, args.parquet_good, args.parquet_bad, args.seed + 2)
    good = pd.concat([fuzz.good.assign(source_file="fuzz.csv"), good_j.assign(source_file="fuzz.jsonl"), good_p])
    bad = pd.concat([fuzz.bad.assign(source_file="fuzz.csv"), bad_j.assign(source_file="fuzz.jsonl"), bad_p])
    cfg = fuzz_config(work / "store")
    ingest(log, "hostile drop: csv + jsonl + 4 parquet", cfg, drop, accepted=len(good), quarantined=len(bad),
           duplicate=0)
    kinds = {"csv": fuzz.bad["kind"].nunique(), "jsonl": bad_j["kind"].nunique(), "parquet": bad_p["kind"].nunique()}
    out = {"records": len(good) + len(bad), "good": len(good), "bad": len(bad), "bad_kinds": kinds,
           "bad_kinds_total": sum(kinds.values()), "kinds_defined": len(BAD_KINDS) + len(JSON_BAD_KINDS) +
           len(PARQUET_BAD_KINDS), **compare(good, bad, Store(cfg.store))}
    return cfg, good, out


def re_exports(work: Path, cfg: Config, good: pd.DataFrame, log: list[dict]) -> dict:
    """Overlapping re-exports ingested after the original: each adds 0 rows; the store's rows stay."""
    store = Store(cfg.store)
    before = _table(store.committed_raw_files())
    n = write_pandas_export(good[good["source_file"] == "fuzz.csv"], work / "pandas-export.csv")
    ingest(log, "re-export written by pandas", cfg, work / "pandas-export.csv", accepted=0, quarantined=0, duplicate=n)
    n = write_database_export(good, work / "database-export.csv")
    ingest(log, "re-export written by a database client", cfg, work / "database-export.csv", accepted=0,
           quarantined=0, duplicate=n)
    after = _table(store.committed_raw_files())
    return {"rows_added_by_re_exports": len(after) - len(before)}


def split_repeats(work: Path, rows: int, files: int, log: list[dict]) -> dict:
    """One log with repeats, as one file and as a drop of ``files`` files: the same rows stored."""
    shape = write_split_drop(work / "split", work / "whole.csv", rows, files)
    one, many = fuzz_config(work / "one-file"), fuzz_config(work / "split-drop")
    lines = shape["lines"]
    ingest(log, "repeats as one file", one, work / "whole.csv", accepted=lines, duplicate=0)
    ingest(log, f"repeats as a drop of {files} files", many, work / "split", accepted=lines, duplicate=0)
    stored = [_table(Store(c.store).committed_raw_files())[CANONICAL] for c in (one, many)]
    counts = [s.astype(str).value_counts() for s in stored]
    ingest(log, "the drop after the file", one, work / "split", accepted=0, duplicate=lines)
    ingest(log, "the file after the drop", many, work / "whole.csv", accepted=0, duplicate=lines)
    return {"split_repeats": shape["repeats"], "split_rows_one_file": len(stored[0]),
            "split_rows_drop": len(stored[1]), "split_rows_differing": int(counts[0].sub(counts[1], fill_value=0)
                                                                            .abs().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=200_000, help="good CSV rows (200,000)")
    parser.add_argument("--bad", type=int, default=120_000, help="bad CSV records (120,000)")
    parser.add_argument("--json-good", type=int, default=20_000)
    parser.add_argument("--json-bad", type=int, default=10_000)
    parser.add_argument("--parquet-good", type=int, default=20_000)
    parser.add_argument("--parquet-bad", type=int, default=10_000)
    parser.add_argument("--split-rows", type=int, default=20_000, help="lines of the log split over files")
    parser.add_argument("--split-files", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--block-bytes", type=int, help="reader block size (small: more fast-path/re-scan switches)")
    parser.add_argument("--table", action="store_true", help="print tables instead of one JSON object")
    args = parser.parse_args()
    if args.block_bytes:
        csv_reader.BLOCK_BYTES = args.block_bytes
    log: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="trendrec-fuzz-") as tmp:
        cfg, good, figures = hostile_drop(Path(tmp), args, log)
        figures |= re_exports(Path(tmp), cfg, good, log)
        figures |= split_repeats(Path(tmp), args.split_rows, args.split_files, log)
    figures |= {"rows_ingested": sum(r["rows_in"] for r in log), "ingests": log}
    if not args.table:
        print(json.dumps(figures, indent=1))
        return
    print(pd.DataFrame(log).to_string(index=False))
    print("\n".join(f"{k}: {v}" for k, v in figures.items() if k != "ingests"))


if __name__ == "__main__":
    main()
