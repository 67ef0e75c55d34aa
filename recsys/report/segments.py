"""``trendrec segments``: the production model's segments, their trends, and how items map to them.

A shop that sends its own candidate lists must use the segment names the model was trained on; a
segment it does not know is neutral in re-ranking (and reported). This view lists, per segment of
the production version's trend table (read through registry.production, every digest checked), its
trend and how many distinct items the ingested events put in it (with a few examples), plus the rule
that assigns segments at ingest (the shop's own column, or ``segment_from`` + ``segment_rules``), so
lists can be built to match.

    trendrec segments --json
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_trends
from recsys import registry

EXAMPLES = 5  # example item ids per segment


class SegmentsError(TrendrecError):
    """Nothing in production, or a production version without a trend table."""


def list_segments(cfg: Config) -> dict[str, Any]:
    """Each segment of production's trend table: its trend, its items (with examples), and the ingest rule."""
    store = Store(cfg.store)
    release = registry.production(store)  # every file checked against its digest
    if release is None:
        raise SegmentsError(f"no model in production in {store.models}: run `trendrec push` first")
    if release.trend_file is None:
        raise SegmentsError(f"production {release.version} at {release.path} holds no {registry.TREND_FILE}")
    trends = read_trends(release.trend_file)
    items = _items_per_segment(store)
    rows = []
    for seg, trend in sorted(zip(trends[s.SEGMENT].astype(str), trends[s.TREND].astype(float))):
        n, examples = items.get(seg, (0, []))
        rows.append({"segment": seg, "trend": round(trend, 4), "items": n, "example_items": examples})
    ing = cfg.ingest
    column = ing.columns.get(s.SEGMENT)
    rule = (f"the event log's column {column!r}" if column else
            f"the first of {len(ing.segment_rules)} rules on column {ing.segment_from!r} that matches"
            if ing.segment_from and ing.segment_rules else "none: every event gets the default")
    return {"model_version": release.version, "segments": rows, "assigned_by": rule,
            "segment_default": ing.segment_default}


def _items_per_segment(store: Store) -> dict[str, tuple[int, list[str]]]:
    files = [str(p) for p in store.committed_raw_files()]
    if not files:
        return {}
    sql = (f"SELECT {s.SEGMENT}, count(DISTINCT {s.ITEM_ID}), list(DISTINCT {s.ITEM_ID} ORDER BY {s.ITEM_ID}) "
           f"FROM read_parquet({files!r}) GROUP BY 1")
    with duckdb.connect() as con:
        return {str(seg): (int(n), list(examples[:EXAMPLES])) for seg, n, examples in con.execute(sql).fetchall()}
