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
import pyarrow.compute as pc

from pipeline import schemas
from pipeline.config import IngestConfig
from pipeline.ingest.ids import arrow_ids, as_id


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
    names = _rule_names(pd.Series(uniques, dtype="str"), cfg)
    codes = np.where(codes < 0, len(uniques), codes)
    return pd.Series(names.take(codes).to_pandas(), index=batch.index, dtype="str")


def arrow_segments(table: pa.Table, cfg: IngestConfig) -> pa.Array:
    """``assign_segments`` of a table of text columns (as the CSV reader gives them), on Arrow."""
    column = cfg.columns.get(schemas.SEGMENT)
    if column:
        return arrow_ids(table.column(column).combine_chunks()).fill_null(cfg.segment_default)
    if not (cfg.segment_from and cfg.segment_rules):
        return pa.repeat(pa.scalar(cfg.segment_default, pa.string()), table.num_rows)
    encoded = pc.dictionary_encode(table.column(cfg.segment_from).combine_chunks())
    names = _rule_names(pd.Series(encoded.dictionary.to_pandas(), dtype="str"), cfg)
    return names.take(encoded.indices.fill_null(len(encoded.dictionary)))


def _rule_names(uniques: pd.Series, cfg: IngestConfig) -> pa.Array:
    """The segment of each distinct value, and the default after them (for missing values)."""
    text = uniques.str.upper()
    names = np.full(len(text) + 1, cfg.segment_default, dtype=object)
    assigned = np.zeros(len(text) + 1, dtype=bool)
    for name, pattern in cfg.segment_rules:
        hit = np.append(text.str.contains(pattern, regex=True, na=False).to_numpy(dtype=bool), False) & ~assigned
        names[hit] = name
        assigned |= hit
    return pa.array(names, type=pa.string())
