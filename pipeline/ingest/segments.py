"""What each event's segment is: the shop's own column, or a rule on another column, or the default.

The segment is what trends are learned for (a category, a product family, a country). A shop with
a category column maps it (``[ingest.columns] segment``); a shop without one derives segments from
another column with ordered regular-expression rules (``segment_from`` and ``segment_rules``: the
first matching rule wins, the rest get ``segment_default``), as the demo does with Online Retail's
item descriptions. Rules are matched once per distinct value, not once per row.

    python -c "from pipeline.config import load_config; print(load_config('trendrec.toml').ingest.segment_rules[:3])"
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest.ids import as_id


def assign_segments(batch: pd.DataFrame, cfg: IngestConfig) -> pd.Series:
    """The segment column if mapped, else the first matching rule on ``segment_from``, else the default."""
    column = cfg.columns.get(schemas.SEGMENT)
    if column:
        seg = as_id(batch[column])
        return seg.fillna(cfg.segment_default)
    if not (cfg.segment_from and cfg.segment_rules):
        return pd.Series(cfg.segment_default, index=batch.index, dtype="str")
    # Rules depend on the value only: match each distinct value once (a log repeats its descriptions).
    codes, uniques = pd.factorize(batch[cfg.segment_from].astype("str"))
    text = pd.Series(uniques, dtype="str").str.upper()
    names = np.full(len(text) + 1, cfg.segment_default, dtype=object)  # the last one: missing values
    assigned = np.zeros(len(text) + 1, dtype=bool)
    for name, pattern in cfg.segment_rules:
        hit = np.append(text.str.contains(pattern, regex=True, na=False).to_numpy(dtype=bool), False) & ~assigned
        names[hit] = name
        assigned |= hit
    codes = np.where(codes < 0, len(text), codes)
    return pd.Series(pa.array(names, type=pa.string()).take(codes).to_pandas(), index=batch.index, dtype="str")
