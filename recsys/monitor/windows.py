"""The two windows `trendrec drift` compares, read from the store's committed raw files with DuckDB.

The reference is what the production version was trained on: the ``reference_days`` days before its
cut-off (``reference_end``: the first day it did not see). The window is the last ``days`` days of the
log up to ``as_of`` (default: the last event day), never before the cut-off. Only the raw files of the
days asked for are opened (their folder names carry the day).

    python -c "from recsys.monitor.windows import reference_end; from recsys import registry; \
print(reference_end(registry.production('trendrec-data')))"
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from pipeline.eventdb import connect
from pipeline.store import Store
from recsys import registry

log = logging.getLogger(__name__)

TIME_KEY = "event_time_key"  # event_time in microseconds: what two repeated rows share
ORDERS = "orders"  # daily_counts' row of a day's orders
HOUR = "hour"  # local hour of event_time, a categorical column of the checks (a timezone shift moves it)
COLUMNS = (s.EVENT_DATE, s.ORDER_ID, s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE)
MEMORY = "1GB"


class MonitorError(TrendrecError):
    """The store holds nothing to compare: no production version, no events after its cut-off."""


@dataclass(frozen=True)
class Windows:
    """Reference [ref_start, ref_end) and window [start, end] (dates), with the version behind them."""

    version: str | None
    ref_start: datetime.date
    ref_end: datetime.date
    start: datetime.date
    end: datetime.date

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "reference": [str(self.ref_start), str(self.ref_end - datetime.timedelta(1))],
                "window": [str(self.start), str(self.end)]}


def reference_end(release: registry.Release) -> datetime.date | None:
    """The first day ``release`` did not train on: its customer scores' cut-off, else its next-basket
    training cut-off, else the day after its forecaster's hold-out (the data it was refitted on)."""
    nextbasket, forecast = release.part_metadata("nextbasket"), release.part_metadata("forecast")
    for value in ((nextbasket.get("scores") or {}).get("cutoff"), (nextbasket.get("train") or {}).get("cutoff")):
        if value:
            return datetime.date.fromisoformat(str(value)[:10])
    for value, shift in ((forecast.get("holdout_end"), 1), (forecast.get("cutoff"), 0)):
        if value:
            return datetime.date.fromisoformat(str(value)[:10]) + datetime.timedelta(days=shift)
    return None


def day_files(store: Store, start: datetime.date, end: datetime.date) -> list[str]:
    """The committed raw files of the days in [start, end]."""
    out = []
    for path in store.committed_raw_files():
        name = path.parent.name
        if name.startswith(f"{s.EVENT_DATE}="):
            try:
                day = datetime.date.fromisoformat(name.split("=", 1)[1])
            except ValueError:
                continue
            if start <= day <= end:
                out.append(str(path))
    return out


def last_day(store: Store) -> datetime.date:
    days = [p.parent.name.split("=", 1)[1] for p in store.committed_raw_files()]
    if not days:
        raise MonitorError(f"{store.root}: no committed events; run `trendrec ingest` first")
    return datetime.date.fromisoformat(max(days))


def choose_windows(store: Store, days: int, reference_days: int, as_of: datetime.date | None = None,
                   ref_end: datetime.date | None = None) -> Windows:
    """The windows for the production version; ``ref_end`` given replaces its cut-off."""
    release = registry.production(store)
    version = release.version if release is not None else None
    if ref_end is None:
        if release is None:
            raise MonitorError(f"no production model in {store.models}: run `trendrec push`, or give --reference-end")
        ref_end = reference_end(release)
        if ref_end is None:
            raise MonitorError(f"{release.version}'s metadata names no training cut-off; give --reference-end")
    end = as_of or last_day(store)
    start = max(end - datetime.timedelta(days=days - 1), ref_end)
    if start > end:
        raise MonitorError(f"no events after the reference's cut-off {ref_end} up to {end}: nothing to compare yet")
    return Windows(version, ref_end - datetime.timedelta(days=reference_days), ref_end, start, end)


def read_window(store: Store, start: datetime.date, end: datetime.date, timezone: str = "UTC") -> pd.DataFrame:
    """The events of the days [start, end] with their time key and local hour, as a DataFrame (empty when none)."""
    files = day_files(store, start, end)
    if not files:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*COLUMNS, TIME_KEY, HOUR)})
    con = connect(store.tmp, MEMORY)
    try:
        con.execute(f"SET TimeZone = '{timezone}'")
        return con.execute(f"SELECT {', '.join(COLUMNS)}, epoch_us({s.EVENT_TIME}) AS {TIME_KEY}, hour({s.EVENT_TIME}) AS {HOUR} FROM read_parquet({files!r})"
                           ).df()
    finally:
        con.close()


def daily_counts(store: Store, start: datetime.date, end: datetime.date, timezone: str = "UTC") -> pd.DataFrame:
    """Per day of [start, end], in one DuckDB pass: each segment's rows, each local hour's orders (an order
    counted once, as the hour check counts them) and the day's orders (``ORDERS``; a line without an order
    counts as one). Columns day, column, value, n; empty when no file covers the days."""
    files = day_files(store, start, end)
    if not files:
        return pd.DataFrame({"day": pd.Series(dtype=object), "column": pd.Series(dtype=object),
                             "value": pd.Series(dtype=object), "n": pd.Series(dtype="int64")})
    con = connect(store.tmp, MEMORY)
    try:
        con.execute(f"SET TimeZone = '{timezone}'")
        return con.execute(f"""
            WITH e AS (SELECT {s.EVENT_DATE} AS day, {s.ORDER_ID} AS o, {s.USER_ID} AS u, {s.EVENT_TIME} AS t,
                              coalesce(CAST({s.SEGMENT} AS VARCHAR), 'None') AS seg FROM read_parquet({files!r}))
            SELECT day, '{s.SEGMENT}' AS column, seg AS value, count(*) AS n FROM e GROUP BY ALL
            UNION ALL SELECT day, '{HOUR}', CAST(hour(t) AS VARCHAR), count(DISTINCT (o, u, t)) FROM e GROUP BY ALL
            UNION ALL SELECT day, '{ORDERS}', '', count(DISTINCT o) + count(*) FILTER (WHERE o IS NULL) FROM e
            GROUP BY ALL""").df()
    finally:
        con.close()


def unknown_shares(store: Store, before: datetime.date, start: datetime.date, end: datetime.date) -> dict[str, float]:
    """Share of the known-customer rows of [start, end] whose customer has no event before ``before``,
    and share of all its rows whose item has none."""
    history, window = day_files(store, datetime.date.min, before - datetime.timedelta(days=1)), day_files(store, start, end)
    if not window:
        return {s.USER_ID: float("nan"), s.ITEM_ID: float("nan")}
    con = connect(store.tmp, MEMORY)
    try:
        seen = (lambda col: f"SELECT DISTINCT {col} FROM read_parquet({history!r})") if history else (
            lambda col: f"SELECT NULL::VARCHAR AS {col} WHERE false")
        users, items = con.execute(f"""
            WITH w AS (SELECT {s.USER_ID}, {s.ITEM_ID} FROM read_parquet({window!r})),
                 u AS ({seen(s.USER_ID)}), i AS ({seen(s.ITEM_ID)})
            SELECT avg(CASE WHEN w.{s.USER_ID} IS NULL THEN NULL ELSE (u.{s.USER_ID} IS NULL)::INT END),
                   avg((i.{s.ITEM_ID} IS NULL)::INT)
            FROM w LEFT JOIN u ON w.{s.USER_ID} = u.{s.USER_ID} LEFT JOIN i ON w.{s.ITEM_ID} = i.{s.ITEM_ID}""").fetchone()
    finally:
        con.close()
    nan = float("nan")
    return {s.USER_ID: nan if users is None else float(users), s.ITEM_ID: nan if items is None else float(items)}
