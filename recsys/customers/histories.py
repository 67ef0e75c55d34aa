"""Customer histories: weekly purchase counts before a cut-off, built by DuckDB in customer batches.

The customer model reads, for every customer, how many purchase lines (quantity > 0; the demo keeps
cancellations as negative quantity, which are not purchases) fell in each of the ``lookback_weeks``
7-day blocks counted back from the cut-off (week 0 = the 7 days just before it; event_date < cutoff,
so the cut-off day itself is never read), per item and per segment, and the crowd's weekly sales per
item and per segment. DuckDB aggregates the parquet files (or a DataFrame) directly; customers are
split into ``hash(user_id) % n`` buckets of about ``batch_customers`` so memory follows the batch, not
the number of customers. Guests (null user_id) cannot have a history: they are counted, logged and
left out; a log with guests only raises ``GuestOnlyLogError`` for the caller to fall back on.

    python -c "from datetime import date; from recsys.customers.histories import *; \
con = open_store('/tmp/cust-store'); print(next(iter_histories(con, date(2011, 12, 3))).user_item.head())"
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.errors import TrendrecError
from pipeline.schemas import PURCHASES, WEEK
from pipeline.store import Store

log = logging.getLogger(__name__)

EVENT_COLUMNS = (s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE)
BUYERS = "buyers"  # known customers who bought the item in the lookback
REPEAT_RATE = "repeat_rate"  # share of them who bought it in two weeks or more
_VIEW = f"""CREATE OR REPLACE VIEW events AS SELECT CAST({s.USER_ID} AS VARCHAR) AS {s.USER_ID},
    CAST({s.ITEM_ID} AS VARCHAR) AS {s.ITEM_ID}, CAST({s.SEGMENT} AS VARCHAR) AS {s.SEGMENT},
    CAST({s.QUANTITY} AS DOUBLE) AS {s.QUANTITY}, CAST({s.EVENT_DATE} AS DATE) AS {s.EVENT_DATE} FROM """
_WINDOW = f"{s.QUANTITY} > 0 AND {s.EVENT_DATE} >= $start AND {s.EVENT_DATE} < $cutoff"
_WEEK = f"CAST((date_diff('day', {s.EVENT_DATE}, $cutoff) - 1) // 7 AS INTEGER) AS {WEEK}"


class CustomerModelError(TrendrecError):
    """The customer model's inputs or saved files are not what it expects."""


class NoCustomerHistoryError(CustomerModelError):
    """No purchase by a known customer in the lookback: there is nothing to learn a customer from."""


class GuestOnlyLogError(NoCustomerHistoryError):
    """Every purchase in the lookback is a guest's (null user_id): fall back to non-personal lists."""


@dataclass(frozen=True)
class Histories:
    """Weekly purchase counts of one batch of customers (long tables, week 0 = latest)."""

    cutoff: date
    weeks: int
    user_item: pd.DataFrame  # user_id, item_id, week, purchases
    user_segment: pd.DataFrame  # user_id, segment, week, purchases
    crowd_item: pd.DataFrame  # item_id, week, purchases (every customer and guest)
    crowd_segment: pd.DataFrame  # segment, week, purchases
    item_segment: pd.DataFrame  # item_id, segment (the item's most frequent segment)
    item_repeat: pd.DataFrame  # item_id, buyers (known customers), repeat_rate (share buying it in >= 2 weeks)

    @property
    def users(self) -> np.ndarray:
        return self.user_segment[s.USER_ID].unique()


def open_events(events: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``events`` over a DataFrame of raw events (validated here)."""
    return view_over_frame(events, EVENT_COLUMNS, _VIEW)


def open_store(root: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``events`` over the store's committed raw parquet files."""
    return view_over_store(root, _VIEW)


def view_over_frame(events: pd.DataFrame, columns: tuple[str, ...], view_sql: str) -> duckdb.DuckDBPyConnection:
    """A connection where ``view_sql`` (``CREATE VIEW ... FROM ``) reads ``columns`` of a DataFrame."""
    missing = [c for c in columns if c not in events.columns]
    if missing:
        log.error("events lack columns %s (have %s)", missing, list(events.columns))
        raise CustomerModelError(f"events lack columns {missing}; expected {list(columns)}")
    con = duckdb.connect()
    con.register("events_in", events[list(columns)])
    con.execute(view_sql + "events_in")
    return con


def view_over_store(root: str, view_sql: str) -> duckdb.DuckDBPyConnection:
    """A connection where ``view_sql`` reads the store's committed raw parquet files."""
    files = [str(p) for p in Store(root).committed_raw_files()]
    if not files:
        raise CustomerModelError(f"{root}: no committed raw files; run `trendrec ingest` first")
    con = duckdb.connect()
    con.execute(view_sql + f"read_parquet({files!r})")
    return con


def iter_histories(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig = CustomerModelConfig(),
                   users: np.ndarray | None = None) -> Iterator[Histories]:
    """Histories of every known customer with a purchase in the lookback (or of ``users``), in batches."""
    params = {"start": cutoff - timedelta(weeks=cfg.lookback_weeks), "cutoff": cutoff}
    check_customers(con, cutoff, cfg)
    crowd = _crowd(con, params)
    where = f"{_WINDOW} AND {s.USER_ID} IS NOT NULL"
    if users is not None:
        con.register("users_in", pd.DataFrame({s.USER_ID: pd.Series(users, dtype=str)}))
        where += f" AND {s.USER_ID} IN (SELECT {s.USER_ID} FROM users_in)"
    n_users = con.execute(f"SELECT count(DISTINCT {s.USER_ID}) FROM events WHERE {where}", params).fetchone()[0]
    n_buckets = max(1, math.ceil(n_users / cfg.batch_customers))
    log.info("histories at %s: %d customers in %d batch(es)", cutoff, n_users, n_buckets)
    for bucket in range(n_buckets):
        batch = f"{where} AND hash({s.USER_ID}) % {n_buckets} = {bucket}"
        user_segment = _counts(con, batch, (s.USER_ID, s.SEGMENT), params)
        if len(user_segment):  # a hash bucket can be empty
            yield Histories(cutoff, cfg.lookback_weeks, _counts(con, batch, (s.USER_ID, s.ITEM_ID), params),
                            user_segment, *crowd)


def customer_cutoff(con: duckdb.DuckDBPyConnection) -> date:
    """The day after the last event in the log: the first day the customer model predicts."""
    last = con.execute(f"SELECT max({s.EVENT_DATE}) FROM events").fetchone()[0]
    if last is None:
        raise NoCustomerHistoryError("the event log is empty")
    return last + timedelta(days=1)


def purchased_items(con: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """Distinct (user_id, item_id) that known customers bought in [start, end): the labels and targets."""
    sql = (f"SELECT DISTINCT {s.USER_ID}, {s.ITEM_ID} FROM events WHERE {_WINDOW} AND {s.USER_ID} IS NOT NULL "
           f"ORDER BY ALL")
    return con.execute(sql, {"start": start, "cutoff": end}).df()


def active_users(con: duckdb.DuckDBPyConnection, cutoff: date, days: int) -> np.ndarray:
    """Known customers with a purchase in the ``days`` before the cut-off, sorted."""
    sql = f"SELECT DISTINCT {s.USER_ID} FROM events WHERE {_WINDOW} AND {s.USER_ID} IS NOT NULL ORDER BY 1"
    frame = con.execute(sql, {"start": cutoff - timedelta(days=days), "cutoff": cutoff}).df()
    return frame[s.USER_ID].to_numpy(dtype=object)


def check_customers(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig) -> None:
    """Raise GuestOnlyLogError / NoCustomerHistoryError unless a known customer bought in the lookback."""
    params = {"start": cutoff - timedelta(weeks=cfg.lookback_weeks), "cutoff": cutoff}
    sql = (f"SELECT count(*) FILTER ({s.USER_ID} IS NULL), count(*) FILTER ({s.USER_ID} IS NOT NULL) "
           f"FROM events WHERE {_WINDOW}")
    guests, known = con.execute(sql, params).fetchone()
    if guests:
        log.info("histories before %s: %d guest purchase lines (null user_id) left out; %d by known customers",
                 params["cutoff"], guests, known)
    if known == 0:
        what = f"all {guests} purchase lines are guests' (null user_id)" if guests else "there are no purchases"
        msg = f"no customer history in [{params['start']}, {params['cutoff']}): {what}"
        log.info(msg)
        raise (GuestOnlyLogError if guests else NoCustomerHistoryError)(msg)


def _counts(con: duckdb.DuckDBPyConnection, where: str, keys: tuple[str, ...], params: dict) -> pd.DataFrame:
    cols = ", ".join(keys)
    sql = (f"SELECT {cols}, {WEEK}, count(*)::FLOAT AS {PURCHASES} FROM "
           f"(SELECT *, {_WEEK} FROM events WHERE {where}) GROUP BY ALL ORDER BY ALL")
    return con.execute(sql, params).df()


def _crowd(con: duckdb.DuckDBPyConnection, params: dict) -> tuple[pd.DataFrame, ...]:
    """The tables every batch shares: crowd item / segment weeks, item segments, item repeat rates."""
    crowd_item = _counts(con, _WINDOW, (s.ITEM_ID,), params)
    crowd_segment = _counts(con, _WINDOW, (s.SEGMENT,), params)
    sql = (f"SELECT {s.ITEM_ID}, mode({s.SEGMENT} ORDER BY {s.SEGMENT}) AS {s.SEGMENT} FROM events "
           f"WHERE {_WINDOW} GROUP BY 1 ORDER BY 1")
    item_segment = con.execute(sql, params).df()
    sql = (f"SELECT {s.ITEM_ID}, count(*)::FLOAT AS {BUYERS}, avg((n >= 2)::FLOAT) AS {REPEAT_RATE} FROM "
           f"(SELECT {s.USER_ID}, {s.ITEM_ID}, count(DISTINCT {WEEK}) AS n FROM (SELECT *, {_WEEK} FROM events "
           f"WHERE {_WINDOW} AND {s.USER_ID} IS NOT NULL) GROUP BY 1, 2) GROUP BY 1 ORDER BY 1")
    return crowd_item, crowd_segment, item_segment, con.execute(sql, params).df()
