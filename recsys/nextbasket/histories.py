"""Customer histories: weekly purchase counts before a cut-off, built by DuckDB in customer batches.

The customer model reads, for every customer, how many purchase lines (quantity > 0; the demo keeps
cancellations as negative quantity, which are not purchases) fell in each of the ``lookback_weeks``
7-day blocks counted back from the cut-off (week 0 = the 7 days just before it; event_date < cutoff,
so the cut-off day itself is never read), per item and per segment, and the crowd's weekly sales per
item and per segment. DuckDB aggregates the parquet files (or a DataFrame) directly; customers are
split into ``hash(user_id) % n`` buckets of about ``batch_customers`` so memory follows the batch, not
the number of customers. One pass over the events writes the (bucket, customer, item, segment, week)
counts of the customers asked for (``users``, a shard's, or every known one) to a temporary DuckDB table
sorted by bucket, and each batch reads only its bucket's rows; a sample of 5,000 customers reads their
lines only, not the whole log's. The crowd tables come straight from the window's lines, guests' included,
in small groups: one scan counts (item, week), (segment, week) and (item, segment), another the (customer,
item) first and last weeks of the repeat rates; ``WeeklyCrowd`` counts them once for several weekly cut-offs
(fit_recommender's 8, whose lookbacks share all weeks but one) and gives each cut-off the same tables.
The connection is held to ``customers.memory_limit``: DuckDB spills what does not fit into the store's
.tmp/ (its disk, not the system's temp dir). Guests (null user_id) cannot have a history: they are
counted, logged and left out; a log with guests only raises ``GuestOnlyLogError`` for the caller to fall
back on.

    python -c "from datetime import date; from recsys.nextbasket.histories import *; \
con = open_store('/tmp/cust-store'); print(next(iter_histories(con, date(2011, 12, 3))).user_item.head())"
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.errors import TrendrecError
from pipeline.sampling import in_shard_sql
from pipeline.schemas import PURCHASES, WEEK
from pipeline.eventdb import view_over_frame, view_over_store

log = logging.getLogger(__name__)

EVENT_COLUMNS = (s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE)
BUYERS = "buyers"  # known customers who bought the item in the lookback
REPEAT_RATE = "repeat_rate"  # share of them who bought it in two weeks or more
_VIEW = f"""CREATE OR REPLACE VIEW events AS SELECT CAST({s.USER_ID} AS VARCHAR) AS {s.USER_ID},
    CAST({s.ITEM_ID} AS VARCHAR) AS {s.ITEM_ID}, CAST({s.SEGMENT} AS VARCHAR) AS {s.SEGMENT},
    CAST({s.QUANTITY} AS DOUBLE) AS {s.QUANTITY}, CAST({s.EVENT_DATE} AS DATE) AS {s.EVENT_DATE} FROM """
_WINDOW = f"{s.QUANTITY} > 0 AND {s.EVENT_DATE} >= $start AND {s.EVENT_DATE} < $cutoff"
_LINES = "_history_lines"  # iter_histories' temporary table of (bucket, user, item, segment, week) lines
_CROWD = "_history_crowd"  # _crowd's temporary (item, week), (segment, week), (item, segment) line counts
_WEEKS = "_history_weeks"  # WeeklyCrowd's (item, segment, week) line counts, weeks counted from its latest cut-off
_REPEATS = "_history_repeats"  # WeeklyCrowd's buyers and repeat rate of each item at each of its cut-offs
_USERS = "_history_users"  # a shard's customers and their batch (iter_histories with a shard)
_GUESTS_KNOWN = f"count(*) FILTER ({s.USER_ID} IS NULL), count(*) FILTER ({s.USER_ID} IS NOT NULL)"  # lines
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

    @cached_property
    def codes(self) -> Codes:
        """The same tables as integer codes, built once per batch (retrieval and features both read them)."""
        return Codes.encode(self)


@dataclass(frozen=True)
class Codes:
    """One batch of histories as integer codes into sorted vocabularies: what the NumPy retrieval and
    features index into. Rows are sorted by their codes, then week; a code of -1 means "not in the batch"."""

    users: pa.Array  # distinct user ids of the batch, sorted
    items: pa.Array  # distinct item ids bought in the lookback (guests included), sorted
    segments: pa.Array  # distinct segments bought in the lookback, sorted
    user_item: tuple[np.ndarray, ...]  # (user, item, week, purchases) of hist.user_item
    user_segment: tuple[np.ndarray, ...]  # (user, segment, week, purchases)
    crowd_item: tuple[np.ndarray, ...]  # (item, week, purchases)
    crowd_segment: tuple[np.ndarray, ...]  # (segment, week, purchases)
    item_segment: np.ndarray  # segment code of each item code (-1: none)
    item_buyers: np.ndarray  # BUYERS of each item code, float32 (0: none)
    item_repeat_rate: np.ndarray  # REPEAT_RATE of each item code (0: none)

    @classmethod
    def encode(cls, hist: Histories) -> Codes:
        users = _vocabulary(hist.user_segment[s.USER_ID])
        items = _vocabulary(hist.crowd_item[s.ITEM_ID])
        segments = _vocabulary(hist.crowd_segment[s.SEGMENT])
        item_segment = np.full(len(items), -1, np.int64)
        item_segment[code(hist.item_segment[s.ITEM_ID], items)] = code(hist.item_segment[s.SEGMENT], segments)
        repeat = hist.item_repeat
        rows = code(repeat[s.ITEM_ID], items)
        buyers = np.zeros(len(items), repeat[BUYERS].dtype)
        rate = np.zeros(len(items), repeat[REPEAT_RATE].dtype)
        buyers[rows], rate[rows] = repeat[BUYERS].to_numpy(), repeat[REPEAT_RATE].to_numpy()
        return cls(users, items, segments,
                   _long(hist.user_item, (s.USER_ID, users), (s.ITEM_ID, items)),
                   _long(hist.user_segment, (s.USER_ID, users), (s.SEGMENT, segments)),
                   _long(hist.crowd_item, (s.ITEM_ID, items)), _long(hist.crowd_segment, (s.SEGMENT, segments)),
                   item_segment, buyers, rate)


def code(values: pd.Series | pa.Array, vocabulary: pa.Array) -> np.ndarray:
    """Position of each value in ``vocabulary`` (int64), -1 where it is absent or null."""
    found = pc.index_in(pa.array(values), value_set=vocabulary)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _vocabulary(values: pd.Series) -> pa.Array:
    distinct = pc.unique(pa.array(values).drop_null())
    return distinct.take(pc.sort_indices(distinct))


def _long(frame: pd.DataFrame, *keys: tuple[str, pa.Array]) -> tuple[np.ndarray, ...]:
    """Key codes, week and purchases of a long table, sorted by the codes and then the week."""
    cols = [code(frame[name], vocabulary) for name, vocabulary in keys]
    cols += [frame[WEEK].to_numpy(np.int64), frame[PURCHASES].to_numpy(np.float32)]
    order = np.lexsort(cols[-2::-1])
    return tuple(c[order] for c in cols)


def open_events(events: pd.DataFrame,
                cfg: CustomerModelConfig = CustomerModelConfig()) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``events`` over a DataFrame of raw events (validated here)."""
    return view_over_frame(events, EVENT_COLUMNS, _VIEW, cfg.memory_limit)


def open_store(root: str, cfg: CustomerModelConfig = CustomerModelConfig()) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view ``events`` over the store's committed raw parquet files."""
    return view_over_store(root, _VIEW, cfg.memory_limit)


def iter_histories(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig = CustomerModelConfig(),
                   users: np.ndarray | None = None, shard: tuple[int, int] | None = None,
                   crowd: WeeklyCrowd | None = None) -> Iterator[Histories]:
    """Histories of every known customer with a purchase in the lookback (or of ``users``), in batches.

    ``shard = (k, n)``: only the customers of shard k of n (pipeline.sampling's stable hash), in batches of
    consecutive customer ids, so that the batches come in customer order (push-time scoring's shards);
    the crowd tables are the whole log's all the same. ``crowd``: a WeeklyCrowd whose cut-offs include
    ``cutoff`` gives the crowd tables (the same values) instead of two scans of the window's lines.
    """
    params = {"start": cutoff - timedelta(weeks=cfg.lookback_weeks), "cutoff": cutoff}
    asked, shard_only = _asked(con, users), in_shard_sql(s.USER_ID, shard)
    # one scan for the guest check and the batch count (fetched to the end: the connection is free again)
    sql = (f"SELECT {_GUESTS_KNOWN}, count(DISTINCT {asked}) FILTER (WHERE {s.USER_ID} IS NOT NULL{shard_only}) "
           f"FROM events WHERE {_WINDOW}")
    (guests, known, n_users), = con.execute(sql, params).fetchall()
    _judge(guests, known, params)
    n_buckets = max(1, math.ceil(n_users / cfg.batch_customers))
    log.info("histories at %s: %d customers in %d batch(es)", cutoff, n_users, n_buckets)
    lines, every = (f"(SELECT * FROM (SELECT {asked} AS {s.USER_ID}, {s.ITEM_ID}, {s.SEGMENT}, {_WEEK} FROM events "
                    f"WHERE {_WINDOW}{only}) WHERE {s.USER_ID} IS NOT NULL)" for only in (shard_only, ""))
    try:
        # the one pass over the customers' lines: (bucket, user, item, segment, week) counts, sorted by bucket
        # so that each batch's read skips the other buckets' row groups; DuckDB keeps the table within
        # memory_limit and spills the rest to the connection's temp_directory; a shard's lines are those
        # that join its customers (_buckets' table): the table does not hash every line again
        bucket, join = _buckets(con, n_buckets, shard, lines, params, cfg)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_LINES} AS SELECT {bucket} AS _bucket, l.{s.USER_ID}, "
                    f"l.{s.ITEM_ID}, l.{s.SEGMENT}, l.{WEEK}, count(*)::FLOAT AS {PURCHASES} FROM {every} l{join} "
                    f"GROUP BY ALL ORDER BY _bucket", params)
        crowd = crowd.tables(cutoff) if crowd is not None else _crowd(con, params)
        for bucket in range(n_buckets):
            user_item, user_segment = (_bucket_counts(con, bucket, key) for key in (s.ITEM_ID, s.SEGMENT))
            if len(user_segment):  # a hash bucket can be empty
                yield Histories(cutoff, cfg.lookback_weeks, user_item, user_segment, *crowd)
    finally:
        for table in (_LINES, _USERS, _CROWD):
            con.execute(f"DROP TABLE IF EXISTS {table}")


def _asked(con: duckdb.DuckDBPyConnection, users: np.ndarray | None) -> str:
    """The SQL of a line's customer if one of ``users`` (all when None), else NULL."""
    if users is None:
        return s.USER_ID
    con.register("users_in", pd.DataFrame({s.USER_ID: pd.Series(users, dtype=str)}))
    # a CASE, not WHERE ... IN: DuckDB plans that IN as a semi join that hashes every line of the window and
    # probes it with the sample (twice the time at 26 M lines); here the sample is the hash table
    return f"CASE WHEN {s.USER_ID} IN (SELECT {s.USER_ID} FROM users_in) THEN {s.USER_ID} END"


def _buckets(con: duckdb.DuckDBPyConnection, n_buckets: int, shard: tuple[int, int] | None, lines: str,
             params: dict, cfg: CustomerModelConfig) -> tuple[str, str]:
    """The SQL of each line's batch and the join it needs: a hash bucket, or (a shard) the rank of the
    customer's id among the shard's customers divided by ``batch_customers`` (a table of the shard's
    customers, ``_USERS``)."""
    if shard is None:
        return f"hash(l.{s.USER_ID}) % {n_buckets}", ""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_USERS} AS SELECT {s.USER_ID}, (row_number() OVER (ORDER BY "
                f"{s.USER_ID}) - 1) // {int(cfg.batch_customers)} AS _bucket FROM (SELECT DISTINCT {s.USER_ID} "
                f"FROM {lines})", params)
    return "u._bucket", f" JOIN {_USERS} u ON l.{s.USER_ID} = u.{s.USER_ID}"


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


def purchase_lines(con: duckdb.DuckDBPyConnection, cutoff: date, days: int, users: np.ndarray) -> np.ndarray:
    """Purchase lines of each of ``users`` in the ``days`` before the cut-off (0 for none), in their order:
    the activity a training sample is stratified by."""
    con.register("activity_users", pd.DataFrame({s.USER_ID: pd.Series(users, dtype=str)}))
    sql = (f"SELECT {s.USER_ID}, count(*) AS n FROM events WHERE {_WINDOW} AND {s.USER_ID} IN "
           f"(SELECT {s.USER_ID} FROM activity_users) GROUP BY 1")
    counts = con.execute(sql, {"start": cutoff - timedelta(days=days), "cutoff": cutoff}).df()
    con.unregister("activity_users")
    return counts.set_index(s.USER_ID)["n"].reindex(pd.Index(users, dtype=str), fill_value=0).to_numpy(np.int64)


def check_customers(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig) -> None:
    """Raise GuestOnlyLogError / NoCustomerHistoryError unless a known customer bought in the lookback."""
    params = {"start": cutoff - timedelta(weeks=cfg.lookback_weeks), "cutoff": cutoff}
    sql = f"SELECT {_GUESTS_KNOWN} FROM events WHERE {_WINDOW}"
    (guests, known), = con.execute(sql, params).fetchall()  # fetched to the end: the connection is free again
    _judge(guests, known, params)


def _judge(guests: int, known: int, params: dict) -> None:
    """Log the guests' purchase lines left out; raise when no known customer bought in the window."""
    if guests:
        log.info("histories before %s: %d guest purchase lines (null user_id) left out; %d by known customers",
                 params["cutoff"], guests, known)
    if known == 0:
        what = f"all {guests} purchase lines are guests' (null user_id)" if guests else "there are no purchases"
        msg = f"no customer history in [{params['start']}, {params['cutoff']}): {what}"
        log.info(msg)
        raise (GuestOnlyLogError if guests else NoCustomerHistoryError)(msg)


def _bucket_counts(con: duckdb.DuckDBPyConnection, bucket: int, key: str) -> pd.DataFrame:
    """(user_id, key, week, purchases) of one bucket's customers, sorted."""
    sql = (f"SELECT {s.USER_ID}, {key}, {WEEK}, sum({PURCHASES})::FLOAT AS {PURCHASES} "
           f"FROM {_LINES} WHERE _bucket = {int(bucket)} GROUP BY ALL ORDER BY ALL")
    return _frame(con, sql)


def _crowd(con: duckdb.DuckDBPyConnection, params: dict) -> tuple[pd.DataFrame, ...]:
    """The tables every batch shares, from the window's lines: crowd item / segment weeks (every customer
    and guest), item segments (the most lines, ties to the first segment), item repeat rates (known
    customers). One scan counts the three small groupings, another the (customer, item) weeks."""
    lines = f"(SELECT {s.USER_ID}, {s.ITEM_ID}, {s.SEGMENT}, {_WEEK} FROM events WHERE {_WINDOW})"
    # each grouping set and its GROUPING() value: a bit for each key left out (item 4, segment 2, week 1)
    sets = {(s.ITEM_ID, WEEK): 2, (s.SEGMENT, WEEK): 4, (s.ITEM_ID, s.SEGMENT): 1}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_CROWD} AS SELECT GROUPING({s.ITEM_ID}, {s.SEGMENT}, {WEEK}) "
                f"AS _set, {s.ITEM_ID}, {s.SEGMENT}, {WEEK}, count(*) AS n FROM {lines} "
                f"GROUP BY GROUPING SETS ({', '.join(f'({a}, {b})' for a, b in sets)})", params)
    crowd = [_frame(con, f"SELECT {key}, {WEEK}, n::FLOAT AS {PURCHASES} FROM {_CROWD} "
                         f"WHERE _set = {sets[key, WEEK]} ORDER BY ALL") for key in (s.ITEM_ID, s.SEGMENT)]
    sql = (f"SELECT {s.ITEM_ID}, first({s.SEGMENT} ORDER BY {s.SEGMENT} IS NULL, n DESC, {s.SEGMENT}) AS {s.SEGMENT} "
           f"FROM {_CROWD} WHERE _set = {sets[s.ITEM_ID, s.SEGMENT]} GROUP BY 1 ORDER BY 1")
    item_segment = _frame(con, sql)
    con.execute(f"DROP TABLE {_CROWD}")
    # bought in two weeks or more <=> its first and last weeks differ (cheaper than count(DISTINCT week))
    sql = (f"SELECT {s.ITEM_ID}, count(*)::FLOAT AS {BUYERS}, avg(repeated::FLOAT) AS {REPEAT_RATE} FROM "
           f"(SELECT {s.USER_ID}, {s.ITEM_ID}, min({WEEK}) <> max({WEEK}) AS repeated FROM {lines} "
           f"WHERE {s.USER_ID} IS NOT NULL GROUP BY 1, 2) GROUP BY 1 ORDER BY 1")
    return *crowd, item_segment, _frame(con, sql, params)


class WeeklyCrowd:
    """The crowd tables of ``n`` weekly cut-offs (``latest``, ``latest`` - 7 days, ...), counted in two scans
    of the lines of all their lookbacks together rather than two scans of each lookback: consecutive
    cut-offs' lookbacks share all their weeks but one. Weeks are counted back from ``latest`` (w); a cut-off
    j weeks earlier reads weeks [j, j + lookback_weeks), its week w - j. One temporary table holds the
    (item, segment, w) line counts (guests' included), from which each cut-off's crowd item / segment weeks
    and item segments are summed; another the buyers and repeat rate of each item at each cut-off, from each
    (customer, item)'s first and last week within each cut-off's lookback. Both are small (items x weeks,
    items x cut-offs); the (customer, item) grouping is DuckDB's, within the connection's memory_limit.
    ``tables(cutoff)`` gives exactly what ``iter_histories`` counts from that cut-off's own window. Use it
    as a context manager: the tables are dropped on exit."""

    def __init__(self, con: duckdb.DuckDBPyConnection, latest: date, n: int, cfg: CustomerModelConfig) -> None:
        self.con, self.latest, self.n, self.weeks = con, latest, int(n), int(cfg.lookback_weeks)
        params = {"start": latest - timedelta(weeks=self.n - 1 + self.weeks), "cutoff": latest}
        lines = f"(SELECT {s.USER_ID}, {s.ITEM_ID}, {s.SEGMENT}, {_WEEK} FROM events WHERE {_WINDOW})"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_WEEKS} AS SELECT {s.ITEM_ID}, {s.SEGMENT}, {WEEK}, "
                    f"count(*) AS n FROM {lines} GROUP BY ALL", params)
        # bought in two weeks or more of cut-off j's lookback <=> its first and last weeks there differ
        within = [f"{WEEK} >= {j} AND {WEEK} < {j + self.weeks}" for j in range(self.n)]
        first_last = ", ".join(f"min({WEEK}) FILTER ({w}) AS lo{j}, max({WEEK}) FILTER ({w}) AS hi{j}"
                               for j, w in enumerate(within))
        per_item = ", ".join(f"count(*) FILTER (lo{j} IS NOT NULL)::FLOAT AS b{j}, avg((lo{j} <> hi{j})::FLOAT) "
                             f"FILTER (lo{j} IS NOT NULL) AS r{j}" for j in range(self.n))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_REPEATS} AS SELECT {s.ITEM_ID}, {per_item} FROM "
                    f"(SELECT {s.USER_ID}, {s.ITEM_ID}, {first_last} FROM {lines} WHERE {s.USER_ID} IS NOT NULL "
                    f"GROUP BY 1, 2) GROUP BY 1", params)

    def __enter__(self) -> WeeklyCrowd:
        return self

    def __exit__(self, *exc: object) -> None:
        for table in (_WEEKS, _REPEATS):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def tables(self, cutoff: date) -> tuple[pd.DataFrame, ...]:
        """(crowd_item, crowd_segment, item_segment, item_repeat) at one of the cut-offs, as _crowd gives them."""
        j, rest = divmod((self.latest - cutoff).days, 7)
        if rest or not 0 <= j < self.n:
            raise ValueError(f"{cutoff} is not one of the {self.n} weekly cut-offs up to {self.latest}")
        window = f"FROM {_WEEKS} WHERE {WEEK} >= {j} AND {WEEK} < {j + self.weeks}"
        crowd = [_frame(self.con, f"SELECT {key}, CAST({WEEK} - {j} AS INTEGER) AS {WEEK}, sum(n)::BIGINT::FLOAT "
                                  f"AS {PURCHASES} {window} GROUP BY 1, 2 ORDER BY ALL")
                 for key in (s.ITEM_ID, s.SEGMENT)]
        counts = f"(SELECT {s.ITEM_ID}, {s.SEGMENT}, sum(n)::BIGINT AS n {window} GROUP BY 1, 2)"
        item_segment = _frame(self.con, f"SELECT {s.ITEM_ID}, first({s.SEGMENT} ORDER BY {s.SEGMENT} IS NULL, n DESC, "
                                         f"{s.SEGMENT}) AS {s.SEGMENT} FROM {counts} GROUP BY 1 ORDER BY 1")
        repeat = _frame(self.con, f"SELECT {s.ITEM_ID}, b{j} AS {BUYERS}, r{j} AS {REPEAT_RATE} FROM {_REPEATS} "
                                  f"WHERE b{j} > 0 ORDER BY 1")
        return *crowd, item_segment, repeat


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """The result as pandas through Arrow: the same dtypes as ``.df()`` (strings as pandas' Arrow-backed
    ``str``), about 7 times faster on a batch's million rows."""
    return con.sql(sql, params=params).to_arrow_table().to_pandas()
