"""A simple base recommender: the candidate lists that ``trendrec rerank`` re-orders.

For every user who bought something in the ``recent_days`` before ``as_of``, it blends the items
the user bought most often (all history before ``as_of``) with the items most often bought by
everyone in those recent days. It stands in for a shop's real recommender, which would hand
trendrec its own lists; it exists so the demo has candidate lists to re-rank.

One DuckDB query (``_LISTS``) defines the lists, over a DataFrame (``build_candidates``: tests and the
offline evaluation) or over the store's committed raw files (``write_candidates``). The store path
chooses its ``--users`` sample among the active users first and builds only their lists, written to
parquet a row group at a time; DuckDB is held to ``[aggregate] memory_limit`` (like the aggregate step,
it reads the whole log; it spills to the store's .tmp/), so the command's memory is that limit plus one
row group, whatever the log's length (the whole log in pandas took about 150 bytes a line).

    trendrec candidates --as-of 2011-12-01 --users 500 --output candidates/base.parquet
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import AggregateConfig, Config
from pipeline.errors import TrendrecError
from pipeline.eventdb import view_over_frame, view_over_store
from pipeline.store import Store, write_parquet_batches

log = logging.getLogger(__name__)

PERSONAL_WEIGHT = 0.7  # share of the user's own purchase frequency in base_score; the rest is popularity
CANDIDATE_SCHEMA = pa.schema([(s.USER_ID, pa.string()), (s.ITEM_ID, pa.string()), (s.SEGMENT, pa.string()),
                              (s.BASE_SCORE, pa.float64())])
# the pandas metadata pa.Table.from_pandas gave the lists when they were a DataFrame: the file reads back
# into pandas as before, and a list written from the query's batches is the same file byte for byte
_FILE_SCHEMA = pa.Table.from_pandas(CANDIDATE_SCHEMA.empty_table().to_pandas(), schema=CANDIDATE_SCHEMA,
                                   preserve_index=False).schema
EVENT_COLUMNS = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE]  # what build_candidates reads
_U, _I, _SEG, _D = s.USER_ID, s.ITEM_ID, s.SEGMENT, s.EVENT_DATE
_VIEW = f"""CREATE OR REPLACE VIEW candidate_events AS SELECT CAST({_U} AS VARCHAR) AS {_U},
    CAST({_I} AS VARCHAR) AS {_I}, CAST({_SEG} AS VARCHAR) AS {_SEG},
    CAST({s.QUANTITY} AS DOUBLE) AS {s.QUANTITY}, CAST({_D} AS DATE) AS {_D} FROM """
# purchase lines (quantity > 0) of known users (guests have no list) before as_of: what the lists count
_BEFORE = f"""before AS (SELECT {_U}, {_I}, {_SEG}, {_D} FROM candidate_events
    WHERE {_D} < $as_of AND {s.QUANTITY} > 0 AND {_U} IS NOT NULL)"""
_ACTIVE = f"WITH {_BEFORE} SELECT DISTINCT {_U} FROM before WHERE {_D} >= $start ORDER BY {_U}"
# the lists of the users in the table candidate_users; every count is of lines, ties break by name
_LISTS = f"""WITH {_BEFORE},
  recent AS (SELECT {_I}, count(*) AS lines FROM before WHERE {_D} >= $start GROUP BY {_I}),
  popular AS (SELECT {_I}, lines / max(lines) OVER () AS popularity,
                     row_number() OVER (ORDER BY lines DESC, {_I}) AS rank FROM recent),
  own AS (SELECT {_U}, {_I}, count(*) AS lines FROM before
          WHERE {_U} IN (SELECT {_U} FROM candidate_users) GROUP BY {_U}, {_I}),
  personal AS (SELECT {_U}, {_I}, lines / max(lines) OVER (PARTITION BY {_U}) AS personal,
                      row_number() OVER (PARTITION BY {_U} ORDER BY lines DESC, {_I}) AS rank FROM own),
  pool AS (SELECT {_U}, {_I} FROM personal WHERE rank <= $n
           UNION SELECT {_U}, {_I} FROM candidate_users, popular WHERE rank <= $n),
  segment_lines AS (SELECT {_I}, {_SEG}, count(*) AS lines FROM before WHERE {_SEG} IS NOT NULL
                    GROUP BY {_I}, {_SEG}),
  segments AS (SELECT {_I}, {_SEG} FROM segment_lines
               QUALIFY row_number() OVER (PARTITION BY {_I} ORDER BY lines DESC, {_SEG}) = 1),
  scored AS (SELECT {_U}, {_I}, {_SEG}, $own_weight * coalesce(personal, 0) + $popular_weight
                    * coalesce(popularity, 0) AS {s.BASE_SCORE}
             FROM pool LEFT JOIN personal USING ({_U}, {_I}) LEFT JOIN popular USING ({_I})
                  LEFT JOIN segments USING ({_I}))
SELECT {_U}, {_I}, {_SEG}, {s.BASE_SCORE} FROM scored
QUALIFY row_number() OVER (PARTITION BY {_U} ORDER BY {s.BASE_SCORE} DESC, {_I}) <= $n
ORDER BY {_U}, {s.BASE_SCORE} DESC, {_I}"""
BATCH_ROWS = 1 << 20  # rows fetched from the query at a time while the lists are written


class CandidatesError(TrendrecError):
    """The event log cannot produce candidate lists."""


def build_candidates(events: pd.DataFrame, as_of: date, n: int = 20, recent_days: int = 28,
                     memory_limit: str = AggregateConfig.memory_limit) -> pd.DataFrame:
    """Up to ``n`` candidates per user active in [as_of - recent_days, as_of), best first.

    base_score = 0.7 * personal + 0.3 * popularity, both in [0, 1]: personal is the number of
    purchase lines of the item by the user divided by the user's most bought item's count,
    popularity is the item's purchase lines in the recent days divided by the top item's. A user's
    pool is their own ``n`` most bought items and the ``n`` recent best sellers; each item carries its
    most frequent segment (ties by name). Lines are counted rather than units so one bulk order does
    not dominate. Returns (quantity <= 0) and guest events (no user) are ignored. Ties break by item
    id, users come sorted: deterministic.
    """
    _check(n, recent_days)
    con = view_over_frame(events, tuple(EVENT_COLUMNS), _VIEW, memory_limit)
    try:
        users = _active_users(con, as_of, recent_days)
        return _lists(con, users, as_of, n, recent_days).to_arrow_table().cast(CANDIDATE_SCHEMA).to_pandas()
    finally:
        con.close()


def choose_users(ids: pd.Series, users: int) -> pd.Series:
    """``users`` of the distinct ``ids``, chosen by a fixed hash of each id: the same ones in every run."""
    order = pd.util.hash_pandas_object(ids, index=False).sort_values(kind="mergesort").index
    return ids.iloc[order[:users]]


def sample_users(candidates: pd.DataFrame, users: int) -> pd.DataFrame:
    """Keep the lists of ``users`` users, ``choose_users`` among the sorted users of ``candidates``."""
    chosen = set(choose_users(pd.Series(sorted(candidates[s.USER_ID].unique())), users))
    return candidates[candidates[s.USER_ID].isin(chosen)].reset_index(drop=True)


def write_candidates(cfg: Config, *, as_of: str | date | None = None, users: int = 500, n: int = 20,
                     recent_days: int = 28, output: str = "candidates/base.parquet") -> dict[str, Any]:
    """The lists of ``users`` active users (``choose_users``) from the store's events, into ``output``:
    the same rows as ``sample_users(build_candidates(events, ...), users)``; ``as_of`` defaults to the
    day after the last event."""
    _check(n, recent_days)
    store = Store(cfg.store)
    target = store.output(output)
    con = view_over_store(cfg.store, _VIEW, cfg.aggregate.memory_limit)
    try:
        day = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        day = day or con.sql(f"SELECT max({_D}) FROM candidate_events").fetchall()[0][0] + timedelta(days=1)
        chosen = choose_users(_active_users(con, day, recent_days), users)
        batches = _lists(con, chosen, day, n, recent_days).to_arrow_reader(BATCH_ROWS)
        rows = write_parquet_batches(batches, _FILE_SCHEMA, target)
    finally:
        con.close()
    log.info("wrote %d candidates for %d users as of %s to %s", rows, len(chosen), day, target)
    return {"rows": rows, "users": len(chosen), "as_of": str(day), "output": str(target)}


def _check(n: int, recent_days: int) -> None:
    if n < 1 or recent_days < 1:
        raise CandidatesError(f"n and recent_days must be >= 1, got n={n}, recent_days={recent_days}")


def _active_users(con: duckdb.DuckDBPyConnection, as_of: date, recent_days: int) -> pd.Series:
    """The users with a purchase line in [as_of - recent_days, as_of), sorted."""
    start = as_of - timedelta(days=recent_days)
    got = con.sql(_ACTIVE, params={"as_of": as_of, "start": start}).to_arrow_table()
    return pd.Series(got.column(_U).to_pandas(), name=_U)


def _lists(con: duckdb.DuckDBPyConnection, users: pd.Series, as_of: date, n: int,
           recent_days: int) -> duckdb.DuckDBPyRelation:
    """The lists of ``users`` (each active before ``as_of``), a query not yet run."""
    con.register("candidate_users", pa.table({_U: pa.array(users, pa.string())}))
    # 1 - PERSONAL_WEIGHT as Python computes it (0.30000000000000004), not SQL's decimal 0.3: the same floats
    return con.sql(_LISTS, params={"as_of": as_of, "start": as_of - timedelta(days=recent_days), "n": n,
                                   "own_weight": PERSONAL_WEIGHT, "popular_weight": 1 - PERSONAL_WEIGHT})
