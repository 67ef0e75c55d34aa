"""`trendrec drift`: is what the shop sends now still what the production version was trained on?

The last ``days`` days (default 7) are compared with the reference, the ``reference_days`` (default
28) days before the production version's cut-off (recsys.monitor.windows). Each check has a value, a
threshold and a verdict; the defaults (``THRESHOLDS``) follow Evidently's data-drift preset where it
has one and were checked on clean weeks of the Online Retail demo, the bakery and synthetic shops:

- ``numeric:<column>`` (quantity, price): PSI over the reference's deciles > 0.25. Evidently's PSI default
  is 0.1; clean weeks of the demo log reach 0.1-0.2 in the run-up to Christmas, so the classical
  "significant shift" line 0.25 is used. A unit change (cents, dozens) gives PSI > 2.
- ``categorical:<column>`` (segment, local hour of day): Jensen-Shannon distance > 0.1 (Evidently's
  default), or > the distance sampling alone reaches in 999 of 1,000 cases when that is higher (a small
  shop's week: distances.js_noise_floor, counted in orders), widened by the shop's own overdispersion: how
  much more than independent draws its own last ``DISPERSION_WEEKS`` (8) weeks before the cut-off moved, each
  against its 28 days before (their mean chi-squared per degree of freedom, ``reference_dispersion``, from
  daily counts; an F quantile, since it is estimated). The hour
  of day counts each order once, and fails only when the reference's hours moved by a whole number of hours
  are within that bound of the window's (distances.clock_shift): it watches the clock, not the shop's hours.
- ``volume:rows``: a day's rows against the median of the reference's days of the same weekday, outside
  [1/3, 3]; ``volume:repeats``: a day whose rows repeat an earlier row of that day in every field
  (time, order, customer, item, quantity, price) more than the reference's share + 0.25 (a day sent twice).
- ``schema``: the raw columns, their types and the source columns they were mapped from, as the
  ingest statistics (pipeline.ingest.stats) recorded them for the reference's and the window's commits.
- ``segments``: a segment with at least ``MIN_SEGMENT_ROWS`` rows in the window that the reference never
  had (new), or one the reference's shares expect ``MIN_SEGMENT_ROWS`` rows of and the window has none
  (vanished).
- ``unknown:user_id`` / ``unknown:item_id``: the window's share of rows whose customer / item has no
  event before the cut-off, against the same share of the reference's last ``days`` days + 0.25.
- ``skew:*`` (recsys.monitor.skew): what the service and the batch could not score, against the release's own.

The verdicts are written to monitor/drift/<window end>.json (a re-run for the same window replaces it).

    trendrec drift --json
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.ingest.stats import ensure_ingest_stats, read_ingest_stats
from pipeline.store import Store, write_json
from recsys.monitor import distances, skew
from recsys.monitor.check import Check, num
from recsys.monitor.windows import (HOUR, ORDERS, TIME_KEY, Windows, choose_windows, daily_counts, read_window,
                                    unknown_shares)

log = logging.getLogger(__name__)

DAYS, REFERENCE_DAYS = 7, 28
THRESHOLDS = {"psi": 0.25, "js": 0.1, "volume_low": 1 / 3, "volume_high": 3.0, "repeats": 0.25,
              "unknown": 0.25, "skew": 0.25}
NUMERIC = (s.QUANTITY, s.PRICE)
CATEGORICAL = (s.SEGMENT, HOUR)
DISPERSION_WEEKS = 8  # weeks before the cut-off whose movement sets a categorical check's noise (reference_dispersion)
MIN_SEGMENT_ROWS = 20
MIN_SEGMENT_SHARE = 0.05  # of the window's rows: smaller segments come and go with the catalogue
REPEAT_KEY = [s.EVENT_DATE, TIME_KEY, s.ORDER_ID, s.USER_ID, s.ITEM_ID, s.QUANTITY, s.PRICE]


def check_numeric(ref: pd.DataFrame, cur: pd.DataFrame, column: str, threshold: float) -> Check:
    value = distances.psi(ref[column].to_numpy(float), cur[column].to_numpy(float))
    q = lambda frame: num(float(frame[column].median())) if len(frame) else None  # noqa: E731
    passed = not np.isfinite(value) or value <= threshold
    why = "" if passed else (f"column {column}: PSI {value:.3f} > {threshold} (median {q(ref)} in the reference, "
                             f"{q(cur)} now)")
    return Check(f"numeric:{column}", num(value), threshold, passed, why,
                 {"method": "psi", "reference_median": q(ref), "median": q(cur)})


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    if column == HOUR:  # an order's lines share its time: count each order once, not each line
        frame = frame.drop_duplicates([s.ORDER_ID, s.USER_ID, TIME_KEY])
    return frame[column].astype(str).value_counts().to_dict()


def reference_dispersion(daily: pd.DataFrame, column: str, ref_end: datetime.date, days: int = DAYS,
                         reference_days: int = REFERENCE_DAYS, weeks: int = DISPERSION_WEEKS) -> tuple[float, int]:
    """How much more than sampling noise this shop's own weeks move: over the ``weeks`` windows of ``days``
    days before ``ref_end`` whose ``reference_days`` before them the log holds, each compared with those days
    as the window is, the mean ``js_dispersion`` and the degrees of freedom behind it ((1.0, 0) when none).
    ``daily``: windows.daily_counts of those days."""
    part, orders = daily[daily["column"] == column], daily[daily["column"] == ORDERS]
    if part.empty:
        return 1.0, 0
    part_day, order_day = pd.to_datetime(part["day"]).to_numpy(), pd.to_datetime(orders["day"]).to_numpy()
    values, df = [], 0
    for i in range(1, weeks + 1):
        start = np.datetime64(ref_end - datetime.timedelta(days=days * i))
        before, after = start - np.timedelta64(reference_days, "D"), start + np.timedelta64(days, "D")
        if before < part_day.min():
            break
        ref, cur = (part_day >= before) & (part_day < start), (part_day >= start) & (part_day < after)
        p, q = (part[rows].groupby("value")["n"].sum().to_dict() for rows in (ref, cur))
        n = int(orders["n"].to_numpy()[(order_day >= before) & (order_day < start)].sum())
        m = int(orders["n"].to_numpy()[(order_day >= start) & (order_day < after)].sum())
        k = len(set(p) | set(q))
        value = distances.js_dispersion(distances.js_distance(p, q), k, n, m)
        if np.isfinite(value):
            values.append(value)
            df += k - 1
    return (float(np.mean(values)), df) if values else (1.0, 0)


def check_categorical(ref: pd.DataFrame, cur: pd.DataFrame, column: str, threshold: float,
                      dispersion: tuple[float, int] = (1.0, 0)) -> Check:
    """Jensen-Shannon distance against the chance floor widened by ``dispersion`` (reference_dispersion)."""
    p, q = _counts(ref, column), _counts(cur, column)
    value = distances.js_distance(p, q)
    # an order's lines are not independent draws: the chance floor counts orders (lines without an order: rows),
    # widened by how much the shop's own clean weeks moved beyond such draws
    dispersion, df = dispersion
    floor = distances.js_noise_floor(len(set(p) | set(q)), _orders(ref), _orders(cur), dispersion=dispersion,
                                     dispersion_df=df)
    threshold = round(max(threshold, floor), 6)
    moved = sorted(set(p) | set(q), key=lambda k: -abs(q.get(k, 0) / max(len(cur), 1) - p.get(k, 0) / max(len(ref), 1)))
    passed = not np.isfinite(value) or value <= threshold
    details = {"method": "jensen_shannon", "chance_floor": num(floor), "reference_dispersion": num(dispersion),
               "dispersion_df": df}
    why = "" if passed else f"column {column}: Jensen-Shannon distance {value:.3f} > {threshold}; most moved: {moved[:3]}"
    if column == HOUR and not passed:
        # what the hour of day is watched for is a clock: a shift of every order, not the shop's own hours changing
        shift, shifted = distances.clock_shift(p, q)
        details |= {"clock_shift_hours": shift, "shifted_distance": num(shifted)}
        passed = shift == 0 or shifted > threshold  # a clock shift leaves the shifted hours within noise
        why = "" if passed else (f"{why}; the window's hours are the reference's moved by {shift:+d} h (distance "
                                 f"{shifted:.3f} then): a clock or timezone change?")
        if passed:
            log.info("column %s moved beyond noise (%.3f > %s; most moved %s), but no clock shift explains it",
                     column, value, threshold, moved[:3])
    return Check(f"categorical:{column}", num(value), threshold, passed, why, details)


def _orders(frame: pd.DataFrame) -> int:
    with_order = frame[s.ORDER_ID].notna()
    return int(frame.loc[with_order, s.ORDER_ID].nunique() + (~with_order).sum())


def _closures(ref_days: pd.Series, median: pd.Series, low: float) -> tuple[int, int]:
    """Days of the reference's calendar with no rows or under ``low`` x their weekday's median: the shop's
    own closures (holidays), which make a near-empty day in the window normal rather than a fault."""
    if ref_days.empty:
        return 0, 0
    index = pd.to_datetime(ref_days.index)
    calendar = pd.date_range(index.min(), index.max())
    rows = pd.Series(ref_days.to_numpy(), index=index).reindex(calendar, fill_value=0)
    return int((rows.to_numpy() < low * median.reindex(calendar.dayofweek).to_numpy()).sum()), len(calendar)


def check_volume(ref: pd.DataFrame, cur: pd.DataFrame, low: float, high: float) -> Check:
    ref_days = ref.groupby(s.EVENT_DATE).size()
    weekday = pd.Series(pd.to_datetime(ref_days.index).dayofweek, index=ref_days.index)
    median = ref_days.groupby(weekday.to_numpy()).median()
    closures, calendar = _closures(ref_days, median, low)
    ratios = {}
    for day, n in cur.groupby(s.EVENT_DATE).size().items():
        expected = median.get(pd.Timestamp(day).dayofweek)
        if expected:
            ratios[str(day)[:10]] = n / expected
    bad = {d: r for d, r in ratios.items() if not low <= r <= high}
    lows = sorted((r, d) for d, r in bad.items() if r < low)
    # as many low days as the reference's closure rate gives this window (rounded up) are closures
    allowed = int(np.ceil(closures * len(ratios) / calendar)) if closures else 0
    for _, d in lows[:allowed]:
        del bad[d]
    worst = max(ratios.values(), key=lambda r: abs(np.log(r)), default=float("nan"))
    why = "; ".join(f"rows of {d}: {r:.2f} x the median of the reference's same weekdays" for d, r in bad.items())
    return Check("volume:rows", num(worst), [low, high], not bad, why,
                 {"per_day": {d: num(r) for d, r in ratios.items()}, "reference_closures": closures,
                  "closures_allowed": allowed})


def _repeat_share(frame: pd.DataFrame) -> pd.Series:
    """Per day, the share of rows equal in every event field to an earlier row of the day."""
    if frame.empty:
        return pd.Series(dtype=float)
    return frame[REPEAT_KEY].duplicated().groupby(frame[s.EVENT_DATE].to_numpy()).mean()


def check_repeats(ref: pd.DataFrame, cur: pd.DataFrame, margin: float) -> Check:
    base = float(_repeat_share(ref).mean()) if len(ref) else 0.0
    per_day = _repeat_share(cur)
    bad = per_day[per_day > base + margin]
    why = "; ".join(f"{share:.0%} of the rows of {str(day)[:10]} repeat an earlier row of the day in every field "
                    f"(reference {base:.1%}): a day sent twice?" for day, share in bad.items())
    return Check("volume:repeats", num(float(per_day.max()) if len(per_day) else 0.0), num(base + margin),
                 bad.empty, why, {"reference_share": num(base)})


def check_schema(store: Store, windows: Windows) -> Check:
    def schemas_of(start: datetime.date, end: datetime.date) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for record in read_ingest_stats(store):
            days = [d["date"] for d in record.get("days", [])]
            if days and days[0] <= str(end) and days[-1] >= str(start):
                schema = record.get("schema") or {}
                for col, kind in (schema.get("columns") or {}).items():
                    found[col] = (kind, (schema.get("mapped_from") or {}).get(col))
        return found
    ref = schemas_of(windows.ref_start, windows.ref_end - datetime.timedelta(days=1))
    cur = schemas_of(windows.start, windows.end)
    changed = sorted(c for c in set(ref) | set(cur) if ref and cur and ref.get(c) != cur.get(c))
    why = "; ".join(f"column {c}: {ref.get(c)} in the reference, {cur.get(c)} now (type, source column)" for c in changed)
    return Check("schema", float(len(changed)), 0.0, not changed, why)


def check_segments(ref: pd.DataFrame, cur: pd.DataFrame, min_rows: int = MIN_SEGMENT_ROWS,
                   min_share: float = MIN_SEGMENT_SHARE) -> Check:
    # a segment under min_share of the rows coming or going is the catalogue's own churn (a seasonal
    # product, a new line), not a feed fault: a renamed or lost segment that matters holds a real share
    p, q = ref[s.SEGMENT].value_counts(), cur[s.SEGMENT].value_counts()
    new = sorted(str(k) for k, n in q.items() if k not in p.index and n >= max(min_rows, min_share * len(cur)))
    expected = p / max(len(ref), 1) * len(cur)
    gone = sorted(str(k) for k, n in expected.items() if n >= max(min_rows, min_share * len(cur)) and k not in q.index)
    why = "; ".join(part for part in (f"new segment(s) in column {s.SEGMENT}: {new}" if new else "",
                                      f"vanished segment(s) in column {s.SEGMENT}: {gone}" if gone else "") if part)
    return Check("segments", float(len(new) + len(gone)), 0.0, not (new or gone), why, {"new": new, "vanished": gone})


def check_unknown(store: Store, windows: Windows, margin: float) -> list[Check]:
    span = windows.end - windows.start
    own_start = max(windows.ref_end - datetime.timedelta(days=span.days + 1), windows.ref_start)
    own = unknown_shares(store, own_start, own_start, windows.ref_end - datetime.timedelta(days=1))
    now = unknown_shares(store, windows.ref_end, windows.start, windows.end)
    checks = []
    for column, what in ((s.USER_ID, "customers"), (s.ITEM_ID, "items")):
        limit = (own[column] if np.isfinite(own[column]) else 0.0) + margin
        value = now[column]
        passed = not np.isfinite(value) or value <= limit
        why = "" if passed else (f"column {column}: {value:.0%} of the window's rows name {what} unseen before the "
                                 f"cut-off {windows.ref_end} (reference {own[column]:.0%}): re-keyed ids?")
        checks.append(Check(f"unknown:{column}", num(value), num(limit), passed, why,
                            {"reference_share": num(own[column])}))
    return checks


def run_drift(cfg: Config, days: int = DAYS, reference_days: int = REFERENCE_DAYS,
              as_of: datetime.date | None = None, reference_end: datetime.date | None = None,
              thresholds: dict[str, float] | None = None, write: bool = True) -> dict[str, Any]:
    """Every check on the store of ``cfg``; one JSON-ready object. ``thresholds`` override ``THRESHOLDS``."""
    store = Store(cfg.store)
    limits = THRESHOLDS | (thresholds or {})
    ensure_ingest_stats(store, dict(cfg.ingest.columns), cfg.ingest.timezone)
    windows = choose_windows(store, days, reference_days, as_of, reference_end)
    ref = read_window(store, windows.ref_start, windows.ref_end - datetime.timedelta(days=1), cfg.ingest.timezone)
    cur = read_window(store, windows.start, windows.end, cfg.ingest.timezone)
    span = datetime.timedelta(days=days * DISPERSION_WEEKS + reference_days)
    daily = daily_counts(store, windows.ref_end - span, windows.ref_end - datetime.timedelta(days=1),
                         cfg.ingest.timezone)
    checks = [*(check_numeric(ref, cur, c, limits["psi"]) for c in NUMERIC),
              *(check_categorical(ref, cur, c, limits["js"], reference_dispersion(daily, c, windows.ref_end, days,
                                                                                 reference_days))
                for c in CATEGORICAL),
              check_volume(ref, cur, limits["volume_low"], limits["volume_high"]),
              check_repeats(ref, cur, limits["repeats"]), check_schema(store, windows),
              check_segments(ref, cur), *check_unknown(store, windows, limits["unknown"]),
              *skew.check_skew(store, windows, ref, limits["skew"])]
    failed = [c.check for c in checks if not c.passed]
    result = {**windows.to_json(), "rows": {"reference": len(ref), "window": len(cur)}, "passed": not failed,
              "failed": failed, "checks": [asdict(c) for c in checks]}
    for c in checks:
        if not c.passed:
            log.warning("drift %s: %s", c.check, c.reason)
    if write:
        result["record"] = str(write_json(result, store.drift / f"{windows.end}.json"))
    return result
