"""Reading the store's parquet tables: any of them (``read_parquet``) and one reader per table.

Each typed reader returns a pandas frame (dates as ``datetime.date``) and fails with a StoreError
that names the command to run first: ``read_daily`` (aggregates/daily.parquet), ``read_events``
(the committed raw events) and ``read_trends`` (a version's trend.parquet, checked by
``check_trends``, which the service also uses). pipeline.store re-exports them all; the paths they
read are the Store's.

    python -c "from pipeline.tables import read_daily; from pipeline.store import Store; print(read_daily(Store('./trendrec-data')))"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.errors import StoreError


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read one parquet file or a directory of them, with the columns stored in the files.

    Hive keys in directory names (``year_month=...``) are not added as columns: in this store they
    only repeat what the files hold, and pyarrow would add them as dictionary columns.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path} does not exist; run the stage that writes it first")
    return pq.read_table(path, columns=columns, partitioning=None)


# --- one reader per table: pandas frames, dates as datetime.date, StoreError naming the next command;
# ``store`` is a pipeline.store.Store, which imports this module ---
def read_daily(store: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """aggregates/daily.parquet (DAILY_SCHEMA) with ``date`` as datetime.date values, in file order."""
    path = store.daily_path
    if not path.exists():
        raise StoreError(f"{path} not found: run `trendrec aggregate` first")
    daily = read_parquet(path, columns).to_pandas()
    if daily.empty:
        raise StoreError(f"{path} is empty: run `trendrec aggregate` on ingested events first")
    if s.DATE in daily:
        daily[s.DATE] = pd.to_datetime(daily[s.DATE]).dt.date
    return daily


def read_events(store: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """The committed raw events (RAW_SCHEMA columns, default all) with ``event_date`` as datetime.date."""
    files = store.committed_raw_files()
    if not files:
        raise StoreError(f"no committed events in {store.raw}: run `trendrec ingest` first")
    # date32 converts to datetime.date objects (pyarrow's date_as_object default): no conversion needed
    return pa.concat_tables([pq.read_table(f, columns=columns, partitioning=None) for f in files]).to_pandas()


def read_trends(path: str | os.PathLike) -> pd.DataFrame:
    """A version's trend.parquet: segment, trend, forecast_sum, recent_sum (and the quantile band)."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path} not found: push a model first (`trendrec push`)")
    try:
        trends = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError, KeyError) as exc:  # what damaged bytes raise (fuzzed)
        reason = " ".join(str(exc).split())[:200]
        raise StoreError(f"{path} cannot be read (corrupt or truncated?): {reason}; push the model again") from exc
    return check_trends(trends, path)


def check_trends(trends: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """The one check of a trend table, for batch re-ranking and the service alike: the segment and
    trend columns, one row per segment, every trend a finite number in [-1, 1]."""
    missing = [c for c in (s.SEGMENT, s.TREND) if c not in trends]
    if missing:
        raise StoreError(f"{path}: missing column(s) {', '.join(missing)}; push the model again")
    trend = pd.to_numeric(trends[s.TREND], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(trend) & (np.abs(trend) <= 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise StoreError(f"{path}: row {row + 1} (segment {trends[s.SEGMENT].iloc[row]!r}) has trend "
                         f"{trends[s.TREND].iloc[row]!r}; expected a finite number in [-1, 1]: push the model again")
    dup = trends[s.SEGMENT].astype(str).duplicated()
    if dup.any():
        raise StoreError(f"{path}: segment {trends[s.SEGMENT][dup].iloc[0]!r} appears more than once; "
                         f"push the model again")
    return trends
