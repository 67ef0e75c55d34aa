"""Event logs for the customer model tests: tiny hand-made ones, and a random one (random_log) with its
cut-off and two model shapes, which the vectorised paths and the lists are checked on."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig

COLUMNS = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.EVENT_DATE, s.ORDER_ID]


def make_events(rows: list[tuple]) -> pd.DataFrame:
    """rows of (user_id or None, item_id, segment, quantity, event_date)."""
    frame = pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.EVENT_DATE])
    frame[s.PRICE] = 1.0
    frame[s.ORDER_ID] = [f"o{i}" for i in range(len(frame))]
    frame[s.EVENT_DATE] = pd.to_datetime(frame[s.EVENT_DATE]).dt.date
    return frame[COLUMNS]


RANDOM_CUTOFF = date(2011, 6, 1)  # random_log's cut-off: 14 weeks before it, one after
RANDOM_CONFIGS = (  # two shapes of the customer model for random_log
    CustomerModelConfig(lookback_weeks=10, seq_weeks=4, recent_weeks=2, n_candidates=12, batch_customers=40),
    CustomerModelConfig(lookback_weeks=6, seq_weeks=6, recent_weeks=3, n_candidates=5, batch_customers=1_000),
)


def random_log(seed: int) -> pd.DataFrame:
    """About 3,000 lines of 150 customers (a few heavy ones), 70 items in 6 segments, 14 weeks, 5 % guests."""
    rng = np.random.default_rng(seed)
    n = 3_000
    users = np.where(rng.random(n) < 0.05, None, np.array([f"u{k:03d}" for k in rng.zipf(1.3, n) % 150]))
    items = rng.zipf(1.2, n) % 70
    segments = np.where(rng.random(n) < 0.1, (items + 1) % 6, items % 6)  # some items sell in two segments
    qty = np.where(rng.random(n) < 0.05, -1.0, rng.integers(1, 4, n).astype(float))
    days = rng.integers(-98, 7, n)  # a week after the cut-off too: never read
    return make_events([(u, f"i{i:02d}", f"s{g}", q, RANDOM_CUTOFF + timedelta(days=int(d)))
                        for u, i, g, q, d in zip(users, items, segments, qty, days)])


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
