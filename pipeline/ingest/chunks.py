"""One chunk of a source file judged, its good rows staged, every row counted, its refused rows made
quarantine rows (with their original text: a CSV record as written, a JSON object as JSON).

A CSV chunk's plainly good rows are judged on Arrow (pipeline.ingest.clean) and the rest by
validate_batch; a JSON lines or parquet chunk by validate_batch whole. Every row ends in one counter.

    python -c "from pipeline.ingest.chunks import needed_columns; from pipeline.config import load_config; print(needed_columns(load_config('trendrec.toml').ingest))"
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import clean
from pipeline.ingest.segments import assign_segments
from pipeline.ingest.sources import Chunk, IngestError
from pipeline.ingest.staging import FROM_ROWS, Staging
from pipeline.ingest.validate import DROPPED, FILTERED, validate_batch

_LINE = schemas.RAW_SCHEMA.field(schemas.SOURCE_LINE)


def needed_columns(cfg: IngestConfig) -> dict[str, str]:
    """What each source column is for: mapped fields plus the time, event-type and segment-rule columns."""
    unmapped = [f for f in (schemas.EVENT_TIME, schemas.ITEM_ID) if f not in cfg.columns]
    if unmapped:
        raise IngestError(f"config ingest.columns must map {unmapped}")
    needed = dict(cfg.columns)
    for name in ("time_column", "event_type_column", "segment_from"):
        if getattr(cfg, name) and not (name == "segment_from" and schemas.SEGMENT in cfg.columns):
            needed[name] = getattr(cfg, name)
    return needed


def _csv_lines(rows: pd.DataFrame, cfg: IngestConfig) -> list[str]:
    """Rows of a CSV as the text of their records: the fields joined by the file's delimiter, quoted
    only where the CSV rules need it (so a plain record comes back exactly as it was written)."""
    out = io.StringIO()
    quoting = csv.QUOTE_MINIMAL if cfg.csv_quote_char else csv.QUOTE_NONE
    writer = csv.writer(out, delimiter=cfg.csv_delimiter, quotechar=cfg.csv_quote_char or None,
                        quoting=quoting, escapechar=None if cfg.csv_quote_char else "\\", lineterminator="\n")
    texts = []
    for row in rows.itertuples(index=False):
        out.seek(0)
        out.truncate()
        writer.writerow(["" if v is None or v is pd.NA else v for v in row])
        texts.append(out.getvalue()[:-1])
    return texts


def _quarantine_rows(chunk: Chunk, lines: np.ndarray, reason: pd.Series, bad: np.ndarray,
                     name: str, cfg: IngestConfig) -> pd.DataFrame:
    """The refused rows (``bad`` of the chunk's frame, at source ``lines``) and the chunk's malformed
    records, as quarantine rows."""
    if not bad.any():
        texts = []
    elif chunk.raw_text is not None:
        texts = [t for t, b in zip(chunk.raw_text, bad) if b]
    elif chunk.csv:  # a CSV row refused by validation: its fields as CSV text
        texts = _csv_lines(chunk.pandas()[bad], cfg)
    else:
        texts = chunk.pandas()[bad].to_json(orient="records", lines=True, date_format="iso",
                                            default_handler=str).splitlines()
    rows = pd.DataFrame({schemas.SOURCE_FILE: name, schemas.SOURCE_LINE: lines[bad],
                         schemas.REASON: reason[bad].to_numpy(), schemas.RAW_ROW: texts})
    if chunk.malformed:
        lines, text, why = zip(*chunk.malformed)
        rows = pd.concat([rows, pd.DataFrame({schemas.SOURCE_FILE: name, schemas.SOURCE_LINE: list(lines),
                                              schemas.REASON: list(why), schemas.RAW_ROW: list(text)})])
    return rows


def process(chunk: Chunk, path: Path, cfg: IngestConfig, staging: Staging, counts: dict) -> pd.DataFrame:
    """Validate one chunk, stage its good rows, count every row; returns its quarantined rows.

    A CSV chunk's plainly good rows are judged on Arrow (pipeline.ingest.clean), the rest by
    validate_batch; any other chunk by validate_batch."""
    judged = clean.judge(chunk.table, cfg) if chunk.table is not None else None
    if judged is None:
        return _process_frame(chunk, path, cfg, staging, counts)
    if judged.ok.any():
        staging.write(judged.good.append_column(_LINE, pa.array(chunk.lines[judged.ok], pa.int64())))
    rest = Chunk(judged.frame, chunk.lines[judged.rest], None, chunk.malformed, True)
    _, bad = _count(counts, chunk, judged.ok, judged.reason)
    return _quarantine_rows(rest, rest.lines, judged.reason, bad, path.name, cfg)


def _process_frame(chunk: Chunk, path: Path, cfg: IngestConfig, staging: Staging, counts: dict) -> pd.DataFrame:
    """``process`` by validate_batch, for every row of the chunk."""
    batch = chunk.pandas().reset_index(drop=True)
    for column in set(needed_columns(cfg).values()) - set(batch.columns):
        batch[column] = None  # a JSON lines chunk in which no record has this key: each row misses it
    chunk.frame = batch
    canon, reason = validate_batch(batch, cfg)
    canon[schemas.SEGMENT] = assign_segments(batch, cfg)
    canon[schemas.SOURCE_LINE] = chunk.lines  # the file's name is added by the staging (one per staging)
    ok, bad = _count(counts, chunk, None, reason)
    if ok.any():
        staging.write(pa.Table.from_pandas(canon if ok.all() else canon[ok], schema=FROM_ROWS, preserve_index=False))
    return _quarantine_rows(chunk, chunk.lines, reason, bad, path.name, cfg)


def _count(counts: dict, chunk: Chunk, stored: np.ndarray | None, reason: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Every row of the chunk counted once: stored, filtered, dropped, or (later) quarantined. ``reason``:
    validate_batch's, for every row of the chunk or (the Arrow path, whose ``stored`` covers the chunk) for
    the rows it judged. Returns (stored, refused) of the rows ``reason`` is for."""
    ok = (reason == "").to_numpy()
    if ok.all():
        filtered = dropped = refused = np.zeros(len(ok), dtype=bool)
    else:
        filtered = reason.str.startswith(FILTERED + ":").to_numpy()
        dropped = reason.str.startswith(DROPPED + ":").to_numpy()
        refused = ~(ok | filtered | dropped)
    counts["rows_in"] += chunk.num_rows + len(chunk.malformed)
    counts["rows_accepted"] += int((ok if stored is None else stored).sum())
    counts["rows_filtered"] += int(filtered.sum())
    counts["rows_dropped"] += int(dropped.sum())
    return ok, refused
