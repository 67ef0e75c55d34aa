"""Re-exports of rows already ingested, as other tools write them, and a repeat split over files, for
benchmarks/ingest_fuzz.py.

- ``write_pandas_export``: what ``DataFrame.to_csv`` writes for a shop's rows read back with pandas: float
  customer ids (``17850.0``, an empty field for a guest), quantities as ``3.0``, times as
  ``2011-03-01 10:00:00+00:00``, quotes only where needed.
- ``write_database_export``: what a database client writes: every field quoted, ``\\N`` for NULL, ISO
  times with a ``T`` and a zone (``+02:00``: the same instant in another zone), prices with four decimals.
- ``write_split_drop``: a log whose genuine repeats (identical lines) straddle the boundaries when it is
  cut into several files of one drop; ingested as one file or as the drop, it must store the same rows.

Both re-exports hold rows the store already has: ingested after the original they must add nothing.

    PYTHONPATH=. python -c "import sys; sys.path.insert(0, 'benchmarks'); import fuzz_exports; print(fuzz_exports.__doc__)"
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

EXPORT_COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust",
                  "order_id": "order"}


def _frame(good: pd.DataFrame) -> pd.DataFrame:
    """Canonical rows as a shop's columns, read back the way pandas reads them: nullable ids become floats."""
    out = good[list(EXPORT_COLUMNS)].rename(columns=EXPORT_COLUMNS).reset_index(drop=True)
    out["cust"] = pd.to_numeric(out["cust"], errors="coerce").astype("float64")
    return out


def write_pandas_export(good: pd.DataFrame, path: Path) -> int:
    """``good``'s rows (numeric customer ids only) written by pandas; returns the row count."""
    rows = good[good["user_id"].isna() | good["user_id"].astype("str").str.fullmatch(r"\d{1,15}")]
    _frame(rows).to_csv(path, index=False)
    return len(rows)


def write_database_export(good: pd.DataFrame, path: Path) -> int:
    """``good``'s rows as a database client exports them (all quoted, \\N for NULL); returns the row count."""
    text = io.StringIO()
    out = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    out.writerow(list(EXPORT_COLUMNS.values()))
    for row in good.itertuples(index=False):
        ts = row.event_time.tz_convert("Europe/Berlin").isoformat(timespec="microseconds")
        cust = r"\N" if pd.isna(row.user_id) else row.user_id
        price = f"{row.price:.4f}" if float(f"{row.price:.4f}") == row.price else repr(row.price)  # a float32's
        out.writerow([ts, row.item_id, f"{row.quantity:.3f}", price, cust, row.order_id])
    path.write_text(text.getvalue(), encoding="utf-8")
    return len(good)


def write_split_drop(folder: Path, whole: Path, rows: int, files: int) -> dict:
    """A log of ``rows`` lines with a genuine repeat (the line before it written again) every 7th line,
    as one file ``whole`` and cut into ``files`` files in ``folder``, each cut between a line and its
    repeat; returns {lines, repeats}."""
    lines, repeats = [], 0
    for n in range(rows):
        if n % 7 == 6:
            lines.append(lines[-1])  # the same purchase twice: two purchases
            repeats += 1
        else:
            lines.append(f"2011-06-{1 + n % 28:02d} {n % 24:02d}:00:00,C{n % 40},{1 + n % 3},1.5,{30_000 + n % 90},"
                         f"s{n // 20}")
    header = ",".join(EXPORT_COLUMNS.values())
    whole.write_text("\n".join([header, *lines]) + "\n")
    folder.mkdir(parents=True, exist_ok=True)
    cuts = [len(lines) * k // files for k in range(files + 1)]
    cuts = [c + (6 - c % 7) if 0 < c < len(lines) else c for c in cuts]  # between a line and its repeat
    for k in range(files):
        part = lines[cuts[k]:cuts[k + 1]]
        (folder / f"part-{k:03d}.csv").write_text("\n".join([header, *part]) + "\n")
    return {"lines": len(lines), "repeats": repeats}
