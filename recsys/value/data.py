"""What the customer value models read: one row per customer and day, built by DuckDB from the raw log.

A customer-day holds the distinct orders with a purchase line (quantity > 0; a day counts as one
BG/NBD transaction however many orders it has), the gross value of its purchase lines and its net
value (purchases plus returns, quantity × price). Returns net within the day, so an order cancelled
the same day adds nothing; a day with returns only has no order and a negative net. Guests (null
user_id) cannot be followed: their lines are counted and left out. Every query reads
``event_date < end`` only, so a cut-off never sees a later day. ``hash(user_id) % n`` buckets let
scoring stream customers in batches (``bucket_customer_days``: the log read once for all of them).

    python -c "from datetime import date; from recsys.value.data import *; \
con = open_value_store('/tmp/trendrec-demo'); print(customer_days(con, date(2011, 9, 10)).head())"
"""

from __future__ import annotations

import logging
import math
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ValueConfig
from pipeline.sampling import in_shard_sql, sample_customers
from pipeline.errors import TrendrecError
from pipeline.eventdb import view_over_frame, view_over_store

log = logging.getLogger(__name__)


class ValueModelError(TrendrecError):
    """The value models' inputs or saved files are not what they expect."""


DAY = "day"  # the customer-day's date
ORDERS = "orders"  # distinct orders with a purchase line that day
GROSS = "gross"  # sum of quantity * price of the purchase lines
NET = "net"  # sum of quantity * price of every line (returns are negative)
VALUE_EVENT_COLUMNS = (s.USER_ID, s.ORDER_ID, s.QUANTITY, s.PRICE, s.EVENT_DATE)
_VIEW = f"""CREATE OR REPLACE VIEW value_events AS SELECT CAST({s.USER_ID} AS VARCHAR) AS {s.USER_ID},
    CAST({s.ORDER_ID} AS VARCHAR) AS {s.ORDER_ID}, CAST({s.QUANTITY} AS DOUBLE) AS {s.QUANTITY},
    CAST({s.PRICE} AS DOUBLE) AS {s.PRICE}, CAST({s.EVENT_DATE} AS DATE) AS {s.EVENT_DATE} FROM """
_DAYS = f"""SELECT {s.USER_ID}, {s.EVENT_DATE} AS {DAY},
    greatest(count(DISTINCT {s.ORDER_ID}) FILTER ({s.QUANTITY} > 0),
             (count(*) FILTER ({s.QUANTITY} > 0) > 0)::INTEGER) AS {ORDERS},
    coalesce(sum({s.QUANTITY} * {s.PRICE}) FILTER ({s.QUANTITY} > 0), 0) AS {GROSS},
    sum({s.QUANTITY} * {s.PRICE}) AS {NET}
  FROM value_events WHERE {s.USER_ID} IS NOT NULL AND {s.EVENT_DATE} >= $start AND {s.EVENT_DATE} < $end"""
_EPOCH = date(1900, 1, 1)
_FIRST_DAY = date(1, 1, 1)  # before any day of a log (the forecast's one pass reads every day)
_BUCKETS = "_value_buckets"  # the forecast's customer-days with their batch (bucket_customer_days)


def open_value_events(events: pd.DataFrame, cfg: ValueConfig = ValueConfig()) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``value_events`` over a DataFrame of raw events."""
    return view_over_frame(events, VALUE_EVENT_COLUMNS, _VIEW, cfg.memory_limit)


def open_value_store(root: str, cfg: ValueConfig = ValueConfig()) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``value_events`` over the store's committed raw parquet files."""
    return view_over_store(root, _VIEW, cfg.memory_limit)


def last_event_day(con: duckdb.DuckDBPyConnection) -> date:
    last = con.execute(f"SELECT max({s.EVENT_DATE}) FROM value_events").fetchone()[0]
    if last is None:
        raise ValueModelError("the event log is empty: nothing to forecast customer value from")
    return last


def customer_days(con: duckdb.DuckDBPyConnection, end: date, start: date = _EPOCH,
                  bucket: tuple[int, int] | None = None, shard: tuple[int, int] = (0, 1),
                  users: np.ndarray | None = None) -> pd.DataFrame:
    """Customer-days with ``start <= day < end`` (user_id, day, orders, gross, net), sorted.

    ``bucket = (i, n)`` keeps the customers with ``hash(user_id) % n = i`` (streamed scoring);
    ``shard = (k, n)`` those of shard k of n (pipeline.sampling's stable hash, the same in every process);
    ``users`` only those customers.
    """
    sql = _DAYS + in_shard_sql(s.USER_ID, shard)
    if bucket is not None:
        sql += f" AND hash({s.USER_ID}) % {int(bucket[1])} = {int(bucket[0])}"
    if users is not None:
        con.register("_value_users", pd.DataFrame({s.USER_ID: pd.Series(users, dtype=str)}))
        sql += f" AND {s.USER_ID} IN (SELECT {s.USER_ID} FROM _value_users)"
    try:
        frame = con.execute(sql + " GROUP BY 1, 2 ORDER BY 1, 2", {"start": start, "end": end}).df()
    finally:
        if users is not None:
            con.unregister("_value_users")
    frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    return frame


def bucket_customer_days(con: duckdb.DuckDBPyConnection, end: date, batch_customers: int,
                         shard: tuple[int, int] = (0, 1)) -> int:
    """The customer-days before ``end`` of shard ``shard``, in one pass over the log, into a temporary table
    sorted by batch; the number of batches n: ``ceil(customers / batch_customers)`` (at least 1).

    Batch i (``read_bucket``) is ``customer_days(con, end, bucket=(i, n), shard=shard)``, the same frame, but
    the log is read once however many batches there are, not once per batch. DuckDB keeps the table within
    the connection's memory limit and spills the rest; sorted by batch, a batch's read skips the other
    batches' row groups. ``drop_buckets`` removes it.
    """
    days = _DAYS + in_shard_sql(s.USER_ID, shard) + " GROUP BY 1, 2"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_BUCKETS}_days AS {days}", {"start": _FIRST_DAY, "end": end})
    try:
        customers = con.execute(f"SELECT count(DISTINCT {s.USER_ID}) FROM {_BUCKETS}_days").fetchone()[0]
        n_buckets = max(1, math.ceil(customers / batch_customers))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_BUCKETS} AS SELECT hash({s.USER_ID}) % {n_buckets} "
                    f"AS _bucket, * FROM {_BUCKETS}_days ORDER BY _bucket")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_BUCKETS}_days")
    return n_buckets


def read_bucket(con: duckdb.DuckDBPyConnection, bucket: int) -> pd.DataFrame:
    """Batch ``bucket`` of ``bucket_customer_days``'s table: its customer-days from 1900 on, sorted (the
    columns and types of ``customer_days``)."""
    sql = (f"SELECT {s.USER_ID}, {DAY}, {ORDERS}, {GROSS}, {NET} FROM {_BUCKETS} WHERE _bucket = $bucket "
           f"AND {DAY} >= $start ORDER BY 1, 2")
    frame = con.execute(sql, {"bucket": bucket, "start": _EPOCH}).df()
    frame[DAY] = pd.to_datetime(frame[DAY]).dt.date
    return frame


def drop_buckets(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP TABLE IF EXISTS {_BUCKETS}")


def fit_days(con: duckdb.DuckDBPyConnection, end: date, cfg: ValueConfig) -> tuple[pd.DataFrame, dict[str, int]]:
    """The customer-days before ``end`` that the backtest and the members' fits read, and
    {"customers": whose days they are, "of": the customers before ``end``}.

    Every customer's when at most ``cfg.fit_customers`` (0: no bound) have a day before ``end``; else a
    sample of that many, stratified by their customer-days (pipeline.sampling, ``cfg.seed``: the same
    customers for the same log), so that memory and time follow the budget, not the shop. The forecast
    still scores every customer (``bucket_customer_days``, in batches).
    """
    sql = (f"SELECT {s.USER_ID}, count(*) AS n FROM (SELECT DISTINCT {s.USER_ID}, {s.EVENT_DATE} FROM value_events "
           f"WHERE {s.USER_ID} IS NOT NULL AND {s.EVENT_DATE} < $end) GROUP BY 1 ORDER BY 1")
    active = con.execute(sql, {"end": end}).fetchnumpy()
    users, n = np.asarray(active[s.USER_ID], dtype=object), len(active[s.USER_ID])
    keep = sample_customers(users, np.asarray(active["n"]), cfg.fit_customers, cfg.seed)
    if keep.all():
        return customer_days(con, end), {"customers": n, "of": n}
    log.info("value backtest and fits: %d of %d customers sampled (value.fit_customers)", keep.sum(), n)
    return customer_days(con, end, users=users[keep]), {"customers": int(keep.sum()), "of": n}


def guest_lines(con: duckdb.DuckDBPyConnection, end: date) -> int:
    """Lines before ``end`` without a customer id: left out of every value model, reported in the summary."""
    sql = f"SELECT count(*) FROM value_events WHERE {s.USER_ID} IS NULL AND {s.EVENT_DATE} < $end"
    return int(con.execute(sql, {"end": end}).fetchone()[0])


def window_spend(days: pd.DataFrame, users: np.ndarray, start: date, end: date) -> np.ndarray:
    """Net spend of each of ``users`` in ``[start, end)``, floored at 0 (a customer who returns more owes nothing)."""
    inside = days[(days[DAY] >= start) & (days[DAY] < end)]
    net = inside.groupby(s.USER_ID)[NET].sum()
    return np.maximum(net.reindex(pd.Index(users, dtype=object)).fillna(0.0).to_numpy(dtype=np.float64), 0.0)
