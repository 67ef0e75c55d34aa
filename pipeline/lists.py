"""The shop's candidate lists: their columns mapped to trendrec's, missing segments looked up in the store.

A shop's recommender writes its own column names (say ``customer, sku, logit``); ``[rerank.columns]``
maps them as ``[ingest.columns]`` maps an event log (trendrec field = the shop's column; an unmapped
field keeps its own name). A row without a segment (none, null or empty) gets its item's segment from
the events ingest stored (``item_segments``: each item's segment in its latest event, one entry per
item); an item the store never saw stays without one (neutral in re-ranking) and is counted. Batch
re-ranking (recsys.rank.rerank), the lists push scores (recsys.nextbasket.publish) and the service
(recsys.serve) all go through these functions.

    python -c "from pipeline.lists import item_segments; from pipeline.store import Store; \
print(len(item_segments(Store('./trendrec-data'), '1GB')))"
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipeline import schemas as s
from pipeline.eventdb import connect
from pipeline.errors import TrendrecError

LIST_FIELDS = s.CANDIDATE_COLUMNS  # the fields [rerank.columns] may map: user_id, item_id, segment, base_score
MAX_LISTED = 20  # unknown items named in a summary or response


class ListColumnsError(TrendrecError):
    """A shop's list file lacks a column its mapping names."""


def source_names(columns: Mapping[str, str]) -> dict[str, str]:
    """{trendrec field: the shop's column} of every list field; an unmapped field keeps its own name."""
    return {field: columns.get(field, field) for field in LIST_FIELDS}


def map_columns(frame: pd.DataFrame, columns: Mapping[str, str], where: str, required: Sequence[str],
                error: type[TrendrecError] = ListColumnsError) -> pd.DataFrame:
    """``frame`` with the shop's list columns renamed to trendrec's fields (``columns``: [rerank.columns]).

    A ``required`` field, or a segment the mapping names explicitly, whose column the file lacks is a
    ``error`` naming ``where``, the column and the setting. A column named like a field that the
    mapping takes from another column is dropped (the mapped one wins).
    """
    names = source_names(columns)
    needed = [*required, *([s.SEGMENT] if s.SEGMENT in columns and s.SEGMENT not in required else [])]
    missing = [f for f in needed if names[f] not in frame.columns]
    if missing:
        said = ", ".join(names[f] if names[f] == f else f"{names[f]} (rerank.columns.{f})" for f in missing)
        has = ", ".join(map(str, list(frame.columns)[:12]))
        raise error(f"{where}: missing column(s) {said}; the file has {has or 'none'}: map its own names "
                         f"in [rerank.columns] (field = \"column\")")
    renames = {names[f]: f for f in LIST_FIELDS if names[f] != f and names[f] in frame.columns}
    shadowed = [f for f in renames.values() if f in frame.columns and f not in renames]
    return frame.drop(columns=shadowed).rename(columns=renames)


def item_segments(store: Any, memory_limit: str) -> dict[str, str]:
    """{item_id: segment} of the store's committed events (a ``pipeline.store.Store``): each item's
    segment in its latest event (ties: the greater name); {} before the first ingest."""
    files = [str(p) for p in store.committed_raw_files()]
    if not files:
        return {}
    con = connect(store.tmp, memory_limit)
    try:
        got = con.execute(f"SELECT {s.ITEM_ID}, arg_max({s.SEGMENT}, struct_pack(t := {s.EVENT_TIME}, "
                          f"s := {s.SEGMENT})) FROM read_parquet(?) GROUP BY {s.ITEM_ID}", [files]).fetchall()
    finally:
        con.close()
    return dict(got)


def is_missing(segment: object) -> bool:
    """A row without a segment: None, NaN (pandas' missing) or the empty string."""
    return segment is None or segment == "" or (isinstance(segment, float) and math.isnan(segment))


def fill_segments(items: Sequence[object], segments: Sequence[object],
                  known: Mapping[str, str]) -> tuple[list[object], int, dict[str, Any]]:
    """Each row's segment: its own, else its item's in ``known`` (compared as strings), else None.

    Returns the segments, the rows filled from ``known`` and the unknown items: ``{"count": rows
    without a segment whose item ``known`` lacks, "items": the first MAX_LISTED of them, sorted}``.
    """
    out, filled, unknown = list(segments), 0, {}
    for k, segment in enumerate(out):
        if is_missing(segment):
            item = str(items[k])
            found = known.get(item)
            out[k] = found
            if found is None:
                unknown[item] = unknown.get(item, 0) + 1
            else:
                filled += 1
    return out, filled, {"count": sum(unknown.values()), "items": sorted(unknown)[:MAX_LISTED]}


def with_store_segments(frame: pd.DataFrame, store: Any, memory_limit: str,
                        known: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``frame`` (item_id and maybe segment) with every missing segment looked up in the store, and a
    report ``{"segments_from_store": rows filled, "unknown_items": {"count", "items"}}``. The store's
    map is read only when some row lacks a segment. ``known`` (``item_segments``, read once by a caller
    that goes batch by batch through a file some row of which lacks a segment) is used instead, and every
    batch's segment column is then the filled one, as the whole file's would be."""
    column = frame[s.SEGMENT] if s.SEGMENT in frame.columns else None
    # is_missing, vectorised first: a shop's lists can be millions of rows
    if known is None and (column is not None and not (column.isna() | (column == "")).any()
                          or column is None and not len(frame)):
        return frame, {"segments_from_store": 0, "unknown_items": {"count": 0, "items": []}}
    given = column.tolist() if column is not None else [None] * len(frame)
    if known is None and not any(is_missing(v) for v in given):
        return frame, {"segments_from_store": 0, "unknown_items": {"count": 0, "items": []}}
    known = item_segments(store, memory_limit) if known is None else known
    segments, filled, unknown = fill_segments(frame[s.ITEM_ID].tolist(), given, known)
    column = pd.Series(segments, index=frame.index, dtype=object)
    return frame.assign(**{s.SEGMENT: column}), {"segments_from_store": filled, "unknown_items": unknown}
