"""Ingest a shop's event log into the store: validated rows to raw/, refused rows to quarantine/.

The source (CSV or parquet, a file, a directory or a glob) is read in record batches, so memory
stays bounded by ``ingest.batch_rows`` whatever the file size. Each file is one transaction keyed
by the SHA-256 of its bytes: its rows are staged under raw/_staging/, renamed into
raw/event_date=.../part-<digest>.parquet, and become visible only when raw/_commits/<digest>.json
is written last. Readers (aggregate) list committed files only, so a crash at any moment leaves
the store as before or as after, and a re-run finishes the work. Ingesting a committed file again
adds nothing and reports its rows as duplicates.

    trendrec ingest data/demo/online_retail.parquet --config trendrec.toml
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline import schemas
from pipeline.config import Config, IngestConfig
from pipeline.errors import TrendrecError
from pipeline.io import Store, read_json, write_json, write_parquet
from pipeline.validate import validate_batch

log = logging.getLogger(__name__)


class IngestError(TrendrecError):
    """A source file cannot be ingested at all (unreadable, wrong format, a mapped column missing)."""


def resolve_sources(source: str | Path) -> list[Path]:
    """A file, a directory (its CSV and parquet files) or a glob → sorted list of files."""
    p = Path(source)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and _format_of(f, "auto") and not f.name.startswith(".")]
    elif p.exists():
        files = [p]
    else:
        files = [Path(f) for f in glob.glob(str(source)) if Path(f).is_file()]
    if not files:
        raise IngestError(f"{source}: no such file, or no CSV/parquet file matches")
    return sorted(files)


def _format_of(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    return ""


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


def _read_batches(path: Path, cfg: IngestConfig) -> Iterator[pa.RecordBatch]:
    fmt = _format_of(path, cfg.format)
    try:
        if fmt == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=cfg.batch_rows)
        elif fmt == "csv":
            # Every column as text: the validator parses and reports, so nothing is lost to type inference.
            names = pacsv.open_csv(path, parse_options=pacsv.ParseOptions(delimiter=cfg.csv_delimiter)).schema.names
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                parse_options=pacsv.ParseOptions(delimiter=cfg.csv_delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=True
                ),
            )
            yield from reader
        else:
            raise IngestError(f"{path}: unknown format; name it .csv or .parquet or set ingest.format")
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: cannot be read as {fmt}: {exc}") from None


def _check_columns(path: Path, names: list[str], cfg: IngestConfig) -> None:
    needed = {f: c for f, c in cfg.columns.items()}
    missing_required = [f for f, req in schemas.MAPPABLE_FIELDS.items() if req and f not in cfg.columns]
    if missing_required:
        raise IngestError(f"config ingest.columns must map {missing_required}")
    if cfg.segment_from and schemas.SEGMENT not in cfg.columns:
        needed["segment_from"] = cfg.segment_from
    absent = [f"{col!r} (for {field})" for field, col in needed.items() if col not in names]
    if absent:
        raise IngestError(f"{path}: column {', '.join(absent)} not found; the file has {names}")


class _Staging:
    """Per-day parquet writers under raw/_staging/<digest>/, committed by rename + commit file."""

    def __init__(self, store: Store, digest: str):
        self.store, self.digest = store, digest
        self.dir = store.raw / "_staging" / digest
        shutil.rmtree(self.dir, ignore_errors=True)  # leftovers of a crashed run of the same file
        self.dir.mkdir(parents=True)
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, good: pd.DataFrame) -> None:
        for day, part in good.groupby(schemas.EVENT_DATE, sort=True):
            key = str(day)
            if key not in self.writers:
                path = self.dir / f"event_date={key}" / f"part-{self.digest}.parquet"
                path.parent.mkdir()
                self.writers[key] = pq.ParquetWriter(path, schemas.RAW_SCHEMA, compression="zstd")
            table = pa.Table.from_pandas(part, schema=schemas.RAW_SCHEMA, preserve_index=False)
            self.writers[key].write_table(table)

    def commit(self, summary: dict) -> list[str]:
        for w in self.writers.values():
            w.close()
        files = []
        for key in sorted(self.writers):
            rel = f"event_date={key}/part-{self.digest}.parquet"
            target = self.store.raw / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            (self.dir / rel).replace(target)
            files.append(rel)
        write_json({**summary, "files": files}, self.store.commits / f"{self.digest}.json")
        shutil.rmtree(self.dir, ignore_errors=True)
        if not any(self.dir.parent.iterdir()):
            self.dir.parent.rmdir()
        return files


def _raw_rows_as_json(batch: pd.DataFrame) -> list[str]:
    return batch.to_json(orient="records", lines=True, date_format="iso", default_handler=str).splitlines()


def ingest_file(path: Path, cfg: Config, store: Store) -> dict:
    """Ingest one file as one transaction; returns its counts."""
    digest = file_digest(path)
    commit = store.commits / f"{digest}.json"
    if commit.exists():
        done = read_json(commit)
        log.info("%s already ingested (commit %s): nothing added", path, digest)
        return {"file": str(path), "digest": digest, "rows_in": done["rows_in"], "rows_accepted": 0,
                "rows_quarantined": done["rows_quarantined"], "rows_duplicate": done["rows_accepted"]}
    staging, bad_parts, counts, line = _Staging(store, digest), [], {"rows_in": 0, "rows_accepted": 0}, 0
    first_line = 2 if _format_of(path, cfg.ingest.format) == "csv" else 1  # CSV line 1 is the header
    for record_batch in _read_batches(path, cfg.ingest):
        if line == 0:
            _check_columns(path, record_batch.schema.names, cfg.ingest)
        batch = record_batch.to_pandas()
        batch.index = pd.RangeIndex(line, line + len(batch))
        canon, reason = validate_batch(batch, cfg.ingest)
        canon[schemas.SOURCE_FILE] = path.name
        canon[schemas.SOURCE_LINE] = batch.index.to_numpy() + first_line
        ok = reason == ""
        staging.write(canon[ok])
        if (~ok).any():
            bad_parts.append(pd.DataFrame({schemas.SOURCE_FILE: path.name,
                                           schemas.SOURCE_LINE: canon[schemas.SOURCE_LINE][~ok],
                                           schemas.REASON: reason[~ok],
                                           schemas.RAW_ROW: _raw_rows_as_json(batch[~ok])}))
        counts["rows_in"] += len(batch)
        counts["rows_accepted"] += int(ok.sum())
        line += len(batch)
    if line == 0:
        raise IngestError(f"{path}: the file holds no rows")
    quarantined = pd.concat(bad_parts) if bad_parts else pd.DataFrame(columns=schemas.QUARANTINE_SCHEMA.names)
    write_parquet(pa.Table.from_pandas(quarantined, schema=schemas.QUARANTINE_SCHEMA, preserve_index=False),
                  store.quarantine / f"{digest}.parquet")
    summary = {"file": str(path), "digest": digest, **counts, "rows_quarantined": len(quarantined),
               "rows_duplicate": 0, "reasons": quarantined[schemas.REASON].str.split(":").str[0].value_counts().to_dict()}
    staging.commit({k: v for k, v in summary.items() if k != "file"} | {"source": str(path)})
    return summary


def run_ingest(cfg: Config, source: str | Path | None = None) -> dict:
    """Ingest every file of ``source`` (default: the config's ``source``); returns the totals."""
    source = source or cfg.source
    if not source:
        raise IngestError("no input given: pass a file, directory or glob, or set `source` in the config")
    files = resolve_sources(source)
    store = Store(cfg.store).ensure()
    started = time.monotonic()
    per_file = [ingest_file(f, cfg, store) for f in files]
    totals = {k: sum(s[k] for s in per_file) for k in ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")}
    reasons: dict[str, int] = {}
    for s in per_file:
        for k, v in s.get("reasons", {}).items():
            reasons[k] = reasons.get(k, 0) + v
    if totals["rows_in"] != totals["rows_accepted"] + totals["rows_quarantined"] + totals["rows_duplicate"]:
        raise IngestError(f"row accounting broke: {totals}")  # a bug, never bad input
    log.info("ingested %d files: %s", len(files), json.dumps(totals))
    return {"files": [str(f) for f in files], **totals, "quarantine_reasons": reasons,
            "raw_dir": str(store.raw), "quarantine_dir": str(store.quarantine),
            "seconds": round(time.monotonic() - started, 2)}
