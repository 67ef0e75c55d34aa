"""Whether a CSV file is in time order, told before it is read: from the times of the lines after a few
places spread over it. A log that is not (several exports one after another, a database export ordered
by customer or item) is staged through the day spill alone (pipeline.ingest.staging, ``in_order``), so
no day file is written during the read only to be read back and written again at the dedup pass. A wrong
answer costs time only: either way the same rows are stored.

    python -c "from pathlib import Path; from pipeline.ingest.order import rises; from pipeline.config import load_config; print(rises(Path('events.csv'), load_config('trendrec.toml').ingest))"
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest import csv_reader
from pipeline.ingest.sources import digests_inline

PROBES = 16  # places of a CSV file whose times tell whether it is in time order (``rises``)


def rises(path: Path, cfg: IngestConfig, probes: int = PROBES) -> bool | None:
    """Whether the times of a plain CSV file rise from start to end, judged on the line after each of
    ``probes`` places spread over the file (None: cannot tell; an epoch, a strptime format, separate
    date and time columns, values that span lines). Several time-ordered exports one after another, or
    a log ordered by customer or item, fall somewhere; a log in time order does not at these distances
    (a 16th of the file apart) even with a few late rows."""
    column = cfg.columns.get(schemas.EVENT_TIME)
    if not digests_inline(path, cfg) or cfg.csv_newlines_in_values or cfg.time_column or cfg.timestamp_format:
        return None
    try:  # a file that cannot be read is for the reader to report, with its own words
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            names, _ = csv_reader.read_header(fh, cfg)
            if column not in names:
                return None
            texts = []
            for k in range(1, probes + 1):
                fh.seek(size * k // (probes + 1))
                lines = fh.read(1 << 14).splitlines()[1:-1]  # whole lines after the place
                table = csv_reader.parse_line(lines[0], names, cfg) if lines else None
                if table is not None and table.num_rows == 1:
                    texts.append(table.column(column)[0].as_py())
        times = pc.cast(pa.array(texts, pa.string()), pa.timestamp("us")).to_numpy().view(np.int64)
    except (OSError, EOFError, ValueError, pa.ArrowException):  # UnicodeDecodeError and ArrowInvalid included
        return None
    if len(times) < probes // 2 or (times == np.iinfo(np.int64).min).any():
        return None
    return bool((np.diff(times) >= 0).all())
