"""The DuckDB SQL of the aggregate stage, with the table's column names from pipeline.schemas.

DAYS_SQL scans a batch of raw files once for both the per-segment days and the all-segment days
(GROUPING SETS; segment NULL); ZERO_FILL_SQL adds, one month at a time, the zero rows of days without
sales inside each segment's active range; MONTH_WEEKDAY_SQL builds the month x weekday profile from the
daily table.

    python -c "from pipeline.aggregate.sql import DAYS_SQL; print(DAYS_SQL)"
"""

from __future__ import annotations

from pipeline import schemas as s

_SUMS = f"""count(*) AS {s.EVENTS}, sum({s.QUANTITY}) AS {s.QUANTITY},
    sum({s.QUANTITY} * {s.PRICE}) AS {s.REVENUE}, count(DISTINCT {s.USER_ID}) AS {s.USERS},
    count(DISTINCT {s.ITEM_ID}) AS {s.ITEMS}"""

# One scan gives both the per-segment days and the all-segment days (segment NULL).
DAYS_SQL = f"""
SELECT {{segment}} AS {s.SEGMENT}, {s.EVENT_DATE} AS {s.DATE}, {_SUMS}
FROM read_parquet($files, hive_partitioning = false)
GROUP BY GROUPING SETS ((1, {s.EVENT_DATE}), ({s.EVENT_DATE}))
"""

# One month ($start to $end, inclusive): each segment's days of the month inside its active range,
# zero where it sold nothing.
ZERO_FILL_SQL = f"""
WITH grid AS (
    SELECT {s.SEGMENT},
           CAST(unnest(generate_series(greatest(lo, $start), least(hi, $end), INTERVAL 1 DAY)) AS DATE) AS {s.DATE}
    FROM ranges WHERE lo <= $end AND hi >= $start
)
SELECT g.{s.SEGMENT}, g.{s.DATE}, year(g.{s.DATE}) AS {s.YEAR}, month(g.{s.DATE}) AS {s.MONTH},
       isodow(g.{s.DATE}) - 1 AS {s.WEEKDAY},
       {", ".join(f"coalesce(d.{m}, 0) AS {m}" for m in s.DAILY_MEASURES)}
FROM grid g LEFT JOIN (SELECT * FROM days WHERE {s.DATE} BETWEEN $start AND $end) d USING ({s.SEGMENT}, {s.DATE})
ORDER BY g.{s.SEGMENT}, g.{s.DATE}
"""

# Summed in date order: a float total must not depend on how DuckDB's threads split the rows, or a re-run
# on the same data would write a different revenue in the last bits.
_TOTALS = ", ".join(f"sum({m} ORDER BY {s.DATE}) AS {m}" for m in s.DAILY_MEASURES)
MONTH_WEEKDAY_SQL = f"""
WITH daily AS (SELECT * FROM read_parquet($daily, hive_partitioning = false)),
span AS (SELECT min({s.DATE}) AS lo, max({s.DATE}) AS hi FROM daily),
grid AS (SELECT CAST(unnest(generate_series(lo, hi, INTERVAL 1 DAY)) AS DATE) AS {s.DATE} FROM span),
alls AS (
    SELECT '{s.ALL_SEGMENTS}' AS {s.SEGMENT}, g.{s.DATE},
           {", ".join(f"coalesce(a.{m}, 0) AS {m}" for m in s.DAILY_MEASURES)}
    FROM grid g LEFT JOIN all_days a USING ({s.DATE})
), cells AS (
    SELECT {s.SEGMENT}, month({s.DATE}) AS {s.MONTH}, isodow({s.DATE}) - 1 AS {s.WEEKDAY},
           count(*) AS {s.DAYS}, {_TOTALS}
    FROM (SELECT {s.SEGMENT}, {s.DATE}, {", ".join(s.DAILY_MEASURES)} FROM daily
          UNION ALL BY NAME SELECT * FROM alls)
    GROUP BY ALL
)
SELECT *, {", ".join(f"CAST({m} AS DOUBLE) / {s.DAYS} AS {s.PER_DAY[m]}" for m in s.DAILY_MEASURES)}
FROM cells ORDER BY ALL
"""
