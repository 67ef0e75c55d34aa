"""Column names and Arrow schemas of every table trendrec stores.

Each stage refers to columns through these constants, never through string literals, so a rename
happens in one place (the TFX ``features.py`` habit). Inspect them with::

    python -c "from pipeline import schemas; print(schemas.RAW_SCHEMA)"
"""

from __future__ import annotations

import pyarrow as pa

# --- canonical event columns (raw/) ---------------------------------------------------------
EVENT_TIME = "event_time"  # UTC timestamp of the event
EVENT_DATE = "event_date"  # local calendar date of the event (partition key)
ORDER_ID = "order_id"  # invoice / basket id; optional in the source
USER_ID = "user_id"  # customer id; nullable (guest checkouts)
ITEM_ID = "item_id"  # product id
SEGMENT = "segment"  # what trends are learned for: category, country, item group...
QUANTITY = "quantity"  # units in the event
PRICE = "price"  # unit price
SOURCE_FILE = "source_file"  # file the row came from (lineage)
SOURCE_LINE = "source_line"  # 1-based data row number within that file

# Fields a mapping may name; the value is whether a row without it is rejected.
MAPPABLE_FIELDS: dict[str, bool] = {
    EVENT_TIME: True,
    ITEM_ID: True,
    QUANTITY: True,
    PRICE: True,
    USER_ID: False,
    ORDER_ID: False,
    SEGMENT: False,
}

RAW_SCHEMA = pa.schema(
    [
        pa.field(EVENT_TIME, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(EVENT_DATE, pa.date32(), nullable=False),
        pa.field(ORDER_ID, pa.string()),
        pa.field(USER_ID, pa.string()),
        pa.field(ITEM_ID, pa.string(), nullable=False),
        pa.field(SEGMENT, pa.string(), nullable=False),
        pa.field(QUANTITY, pa.float64(), nullable=False),
        pa.field(PRICE, pa.float64(), nullable=False),
        pa.field(SOURCE_FILE, pa.string(), nullable=False),
        pa.field(SOURCE_LINE, pa.int64(), nullable=False),
    ]
)

# --- quarantine/ ------------------------------------------------------------------------------
REASON = "reason"  # why the row was refused, e.g. "bad_timestamp: 'x' is not a timestamp"
RAW_ROW = "raw_row"  # the original row as JSON text

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field(SOURCE_FILE, pa.string(), nullable=False),
        pa.field(SOURCE_LINE, pa.int64(), nullable=False),
        pa.field(REASON, pa.string(), nullable=False),
        pa.field(RAW_ROW, pa.string(), nullable=False),
    ]
)

# --- aggregates/ ------------------------------------------------------------------------------
DATE = "date"  # calendar day of the aggregate
YEAR = "year"
MONTH = "month"  # 1..12
WEEKDAY = "weekday"  # 0 = Monday .. 6 = Sunday (ISO order, as pandas .dayofweek)
EVENTS = "events"  # number of event rows
REVENUE = "revenue"  # sum of quantity * price
USERS = "users"  # distinct non-null user ids
ITEMS = "items"  # distinct item ids
DAYS = "days"  # days that contributed to a month x weekday cell
YEAR_MONTH = "year_month"  # hive partition key of aggregates/daily.parquet ("YYYY-MM"); not a column
ALL_SEGMENTS = "__all__"  # month x weekday row over every segment; ingest never yields "__" names
OTHER_SEGMENT = "__other__"  # segments outside the top N, when aggregate.top_n is set
RESERVED_SEGMENTS = (ALL_SEGMENTS, OTHER_SEGMENT)

MEASURES = (EVENTS, QUANTITY, REVENUE, USERS)
DAILY_MEASURES = (EVENTS, QUANTITY, REVENUE, USERS, ITEMS)
PER_DAY = {m: f"{m}_per_day" for m in DAILY_MEASURES}  # month x weekday means: total / days

DAILY_SCHEMA = pa.schema(
    [
        pa.field(SEGMENT, pa.string(), nullable=False),
        pa.field(DATE, pa.date32(), nullable=False),
        pa.field(YEAR, pa.int16(), nullable=False),
        pa.field(MONTH, pa.int8(), nullable=False),
        pa.field(WEEKDAY, pa.int8(), nullable=False),
        pa.field(EVENTS, pa.int64(), nullable=False),
        pa.field(QUANTITY, pa.float64(), nullable=False),
        pa.field(REVENUE, pa.float64(), nullable=False),
        pa.field(USERS, pa.int64(), nullable=False),
        pa.field(ITEMS, pa.int64(), nullable=False),
    ]
)

# Totals are sums of daily values (users and items: user-days and item-days); means are per day.
MONTH_WEEKDAY_SCHEMA = pa.schema(
    [
        pa.field(SEGMENT, pa.string(), nullable=False),
        pa.field(MONTH, pa.int8(), nullable=False),
        pa.field(WEEKDAY, pa.int8(), nullable=False),
        pa.field(DAYS, pa.int64(), nullable=False),
        pa.field(EVENTS, pa.int64(), nullable=False),
        pa.field(QUANTITY, pa.float64(), nullable=False),
        pa.field(REVENUE, pa.float64(), nullable=False),
        pa.field(USERS, pa.int64(), nullable=False),
        pa.field(ITEMS, pa.int64(), nullable=False),
    ]
    + [pa.field(PER_DAY[m], pa.float64(), nullable=False) for m in DAILY_MEASURES]
)

# --- forecasts and the trend table (models/<version>/trend.parquet) ----------------------------
FORECAST = "forecast"  # a forecaster's point forecast (the median of a quantile model)
FORECAST_SUM = "forecast_sum"  # forecast target over the next horizon days
RECENT_SUM = "recent_sum"  # actual target over the last horizon days
TREND_LOW = "trend_low"  # trend at the lowest forecast quantile (quantile models only)
TREND_HIGH = "trend_high"  # trend at the highest forecast quantile (quantile models only)

# --- candidates and re-ranked lists -----------------------------------------------------------
BASE_SCORE = "base_score"  # the upstream recommender's score (higher is better)
TREND = "trend"  # the segment's trend score from the production model
FINAL_SCORE = "final_score"  # the blend of base_score and the signal (recsys.rank.blend), in [0, 1]
SIGNAL = "signal"  # what ranked a candidate: customer_model, segment_trend or base
RANK = "rank"  # 1-based position within the user's list

CANDIDATE_COLUMNS = (USER_ID, ITEM_ID, SEGMENT, BASE_SCORE)

# --- customer histories, candidates and scores (recsys.nextbasket) ---------------------------
WEEK = "week"  # 0 = the 7 days just before the cut-off, 1 = the 7 days before those, ...
PURCHASES = "purchases"  # purchase lines (quantity > 0) in the week
SCORE = "score"  # the model's probability that the customer buys the item in the next 7 days
LABEL = "label"  # 1 when the customer bought the item in the 7 days after a training cut-off
SOURCE = "source"  # which candidate generator proposed the item (see SOURCES)
CAND_RANK = "cand_rank"  # 0-based position of the item in the customer's candidate list

# --- customer value (recsys.value): customers/value/value.parquet in a version ---------
EXPECTED_SPEND = "expected_spend"  # the ensemble's expected net spend over the next horizon_days
EXPECTED_ORDERS = "expected_orders"  # BG/NBD's expected purchase days over the next horizon_days
SPEND_P10 = "spend_p10"  # 10 % quantile of the spend (the LSTM's ZILN band, scaled to the ensemble's mean)
SPEND_P90 = "spend_p90"  # 90 % quantile of the spend
P_ALIVE = "p_alive"  # BG/NBD's probability that the customer is still active (0 without any purchase)
HORIZON_DAYS = "horizon_days"  # the H of the row
CUTOFF = "cutoff"  # first day forecast (the day after the last event read)
MEMBER_SPEND = {m: f"spend_{m}" for m in ("bgnbd_gg", "lstm", "rfm")}  # each ensemble member's expected spend

VALUE_SCHEMA = pa.schema(
    [pa.field(USER_ID, pa.string(), nullable=False), pa.field(EXPECTED_SPEND, pa.float64()),
     pa.field(EXPECTED_ORDERS, pa.float64()), pa.field(SPEND_P10, pa.float64()), pa.field(SPEND_P90, pa.float64()),
     pa.field(P_ALIVE, pa.float64()), pa.field(HORIZON_DAYS, pa.int32()), pa.field(CUTOFF, pa.date32())]
    + [pa.field(name, pa.float64()) for name in MEMBER_SPEND.values()]
)
