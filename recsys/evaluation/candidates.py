"""A simple base recommender: the candidate lists that ``trendrec rerank`` re-orders.

For every user who bought something in the ``recent_days`` before ``as_of``, it blends the items
the user bought most often (all history before ``as_of``) with the items most often bought by
everyone in those recent days. It stands in for a shop's real recommender, which would hand
trendrec its own lists; it exists so the demo has candidate lists to re-rank.

    trendrec candidates --as-of 2011-12-01 --users 500 --output candidates/base.parquet
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_events, write_parquet

log = logging.getLogger(__name__)

PERSONAL_WEIGHT = 0.7  # share of the user's own purchase frequency in base_score; the rest is popularity
CANDIDATE_SCHEMA = pa.schema([(s.USER_ID, pa.string()), (s.ITEM_ID, pa.string()), (s.SEGMENT, pa.string()),
                              (s.BASE_SCORE, pa.float64())])
_COUNT = "_count"
EVENT_COLUMNS = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE]  # what build_candidates reads


class CandidatesError(TrendrecError):
    """The event log cannot produce candidate lists."""


def build_candidates(events: pd.DataFrame, as_of: date, n: int = 20, recent_days: int = 28) -> pd.DataFrame:
    """Up to ``n`` candidates per user active in [as_of - recent_days, as_of), best first.

    base_score = 0.7 * personal + 0.3 * popularity, both in [0, 1]: personal is the number of
    purchase lines of the item by the user divided by the user's most bought item's count,
    popularity is the item's purchase lines in the recent days divided by the top item's. Lines
    are counted rather than units so one bulk order does not dominate. Returns (quantity <= 0) and
    guest events (no user) are ignored. Ties break by item id, users come sorted: deterministic.
    """
    if n < 1 or recent_days < 1:
        raise CandidatesError(f"n and recent_days must be >= 1, got n={n}, recent_days={recent_days}")
    day = pd.to_datetime(events[s.EVENT_DATE])
    keep = (day < pd.Timestamp(as_of)) & (events[s.QUANTITY] > 0) & events[s.USER_ID].notna()
    before = events.loc[keep, [s.USER_ID, s.ITEM_ID, s.SEGMENT]].assign(_day=day[keep])
    recent = before[before["_day"] >= pd.Timestamp(as_of - timedelta(days=recent_days))]
    if recent.empty:
        return pd.DataFrame({name: pd.Series(dtype=str if name != s.BASE_SCORE else float)
                             for name in s.CANDIDATE_COLUMNS})
    users = pd.Series(sorted(recent[s.USER_ID].unique()), name=s.USER_ID)
    popular = _top(recent.groupby(s.ITEM_ID).size().rename(_COUNT).reset_index(), [], n)
    own = before[before[s.USER_ID].isin(users)].groupby([s.USER_ID, s.ITEM_ID]).size().rename(_COUNT)
    own = own.reset_index()
    pool = pd.concat([_top(own, [s.USER_ID], n)[[s.USER_ID, s.ITEM_ID]],
                      users.to_frame().merge(popular[[s.ITEM_ID]], how="cross")]).drop_duplicates()
    own["personal"] = own[_COUNT] / own.groupby(s.USER_ID)[_COUNT].transform("max")
    pool = pool.merge(own[[s.USER_ID, s.ITEM_ID, "personal"]], on=[s.USER_ID, s.ITEM_ID], how="left")
    item_counts = recent.groupby(s.ITEM_ID).size()
    pool["popularity"] = pool[s.ITEM_ID].map(item_counts / item_counts.max())
    pool = pool.fillna({"personal": 0.0, "popularity": 0.0})
    pool[s.BASE_SCORE] = PERSONAL_WEIGHT * pool["personal"] + (1 - PERSONAL_WEIGHT) * pool["popularity"]
    pool[s.SEGMENT] = pool[s.ITEM_ID].map(_item_segments(before))
    pool = pool.sort_values([s.USER_ID, s.BASE_SCORE, s.ITEM_ID], ascending=[True, False, True],
                            kind="mergesort")
    out = pool.groupby(s.USER_ID, sort=False).head(n)
    return out[list(s.CANDIDATE_COLUMNS)].reset_index(drop=True)


def _top(counts: pd.DataFrame, by: list[str], n: int) -> pd.DataFrame:
    """The ``n`` highest counts (per ``by`` group), ties broken by item id."""
    ordered = counts.sort_values([*by, _COUNT, s.ITEM_ID], ascending=[True] * len(by) + [False, True],
                                 kind="mergesort")
    return ordered.groupby(by, sort=False).head(n) if by else ordered.head(n)


def _item_segments(events: pd.DataFrame) -> pd.Series:
    """Each item's most frequent segment (ties by name): segment rules may differ per description."""
    counts = events.groupby([s.ITEM_ID, s.SEGMENT]).size().rename(_COUNT).reset_index()
    counts = counts.sort_values([s.ITEM_ID, _COUNT, s.SEGMENT], ascending=[True, False, True],
                                kind="mergesort")
    return counts.drop_duplicates(s.ITEM_ID).set_index(s.ITEM_ID)[s.SEGMENT]


def sample_users(candidates: pd.DataFrame, users: int) -> pd.DataFrame:
    """Keep the lists of ``users`` users chosen by a fixed hash of their id (stable across runs)."""
    ids = pd.Series(candidates[s.USER_ID].unique())
    order = pd.util.hash_pandas_object(ids, index=False).sort_values(kind="mergesort").index
    chosen = set(ids.iloc[order[:users]])
    return candidates[candidates[s.USER_ID].isin(chosen)].reset_index(drop=True)


def write_candidates(cfg: Config, *, as_of: str | date | None = None, users: int = 500, n: int = 20,
                     recent_days: int = 28, output: str = "candidates/base.parquet") -> dict[str, Any]:
    """Build lists for a deterministic sample of ``users`` from the store's events, into ``output``."""
    store = Store(cfg.store)
    target = store.output(output)
    events = read_events(store, EVENT_COLUMNS)
    day = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    day = day or max(events[s.EVENT_DATE]) + timedelta(days=1)
    lists = sample_users(build_candidates(events, day, n, recent_days), users)
    write_parquet(pa.Table.from_pandas(lists, schema=CANDIDATE_SCHEMA, preserve_index=False), target)
    log.info("wrote %d candidates for %d users as of %s to %s", len(lists), lists[s.USER_ID].nunique(), day, target)
    return {"rows": len(lists), "users": int(lists[s.USER_ID].nunique()), "as_of": str(day), "output": str(target)}
