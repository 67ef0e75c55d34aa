"""Tiny hand-made event logs for the customer model tests."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from pipeline import schemas as s

COLUMNS = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.EVENT_DATE, s.ORDER_ID]


def make_events(rows: list[tuple]) -> pd.DataFrame:
    """rows of (user_id or None, item_id, segment, quantity, event_date)."""
    frame = pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE])
    frame[s.PRICE] = 1.0
    frame[s.ORDER_ID] = [f"o{i}" for i in range(len(frame))]
    frame[s.EVENT_DATE] = pd.to_datetime(frame[s.EVENT_DATE]).dt.date
    return frame[COLUMNS]


@pytest.fixture
def cyclic_events() -> pd.DataFrame:
    """60 customers over 20 weeks (2011-01-03 + 7k, Mondays): each buys two items every 2 weeks in one
    phase and two in the other, so every week each customer buys two items that were due. Customer
    "A" buys "X" in the odd weeks only and "Y", "Z" in the even weeks."""
    start, rows = date(2011, 1, 3), []
    for u in range(60):
        user = "A" if u == 0 else f"u{u}"
        for week in range(20):
            day = start + timedelta(weeks=week, days=u % 5)
            phase_items = (["X"], ["Y", "Z"]) if u == 0 else ([f"i{u % 7}", f"j{u % 5}"], [f"k{u % 6}", f"m{u % 4}"])
            for item in phase_items[week % 2 == 0]:
                rows.append((user, item, "seg" + item[0], 1.0, day))
    return make_events(rows)
