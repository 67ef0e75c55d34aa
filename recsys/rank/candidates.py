"""A simple base recommender: the candidate lists that ``trendrec rerank`` re-orders.

For every user who bought something in the ``recent_days`` before ``as_of``, it blends the items
the user bought most often (all history before ``as_of``) with the items most often bought by
everyone in those recent days. It stands in for a shop's real recommender, which would hand
trendrec its own lists; it exists so the demo has candidate lists to re-rank.

    python -m recsys.rank.candidates --store ./trendrec-data --as-of 2011-12-01 --users 500 \
        --out data/demo/candidates.parquet
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from pipeline.store import Store, write_parquet

log = logging.getLogger(__name__)

PERSONAL_WEIGHT = 0.7  # share of the user's own purchase frequency in base_score; the rest is popularity
CANDIDATE_SCHEMA = pa.schema([(s.USER_ID, pa.string()), (s.ITEM_ID, pa.string()), (s.SEGMENT, pa.string()),
                              (s.BASE_SCORE, pa.float64())])
_COUNT = "_count"


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


def read_events(store: Store) -> pd.DataFrame:
    """The committed raw events, only the columns candidate building needs."""
    files = store.committed_raw_files()
    if not files:
        raise CandidatesError(f"no committed events in {store.raw}: run `trendrec ingest` first")
    columns = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE]
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files]).to_pandas()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.rank.candidates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="store holding ingested events")
    parser.add_argument("--as-of", type=date.fromisoformat,
                        help="first day not used (default: the day after the last event)")
    parser.add_argument("--users", type=int, default=500, help="number of users kept (deterministic sample)")
    parser.add_argument("--n", type=int, default=20, help="candidates per user")
    parser.add_argument("--recent-days", type=int, default=28, help="window of activity and popularity")
    parser.add_argument("--out", type=Path, default=Path("data/demo/candidates.parquet"),
                        help="parquet file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        events = read_events(Store(args.store))
        as_of = args.as_of or pd.to_datetime(events[s.EVENT_DATE]).max().date() + timedelta(days=1)
        lists = sample_users(build_candidates(events, as_of, args.n, args.recent_days), args.users)
        write_parquet(pa.Table.from_pandas(lists, schema=CANDIDATE_SCHEMA, preserve_index=False), args.out)
    except TrendrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(lists)} candidates for {lists[s.USER_ID].nunique()} users as of {as_of} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
