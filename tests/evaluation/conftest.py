"""Event logs for the next-basket protocol tests: a hand-counted one and a seeded synthetic one.

``tiny_events`` is small enough to work every metric out by hand (see test_protocol.py). Its last
event is on 2024-02-11, so the last weekly cut-off is 2024-02-05 and the one before 2024-01-29.

- u1: orders o1 {a, b} on 01-10, o2 {a, c} on 01-20 (and o3, a return of c, the same day);
  buys a, d on 02-06 and returns x on 02-07.
- u2: o4 {b, c} on 01-15, o5 {b} on 01-25, o8 {c} on 02-01; buys b, e, f on 02-08.
- u3: o6 {a} on 2023-12-01 only, then a on 02-06 (not active in the 28 days before 02-05).
- u4: o7 {c, e} on 01-30, nothing after (no target week purchase).
- a guest (no user id) buys e, f on 02-02 and a on 02-11.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s

CUTOFF = date(2024, 2, 5)
EARLIER = date(2024, 1, 29)
_ROWS = [  # user, order, day, item, quantity
    ("u1", "o1", date(2024, 1, 10), "a", 1), ("u1", "o1", date(2024, 1, 10), "b", 2),
    ("u1", "o2", date(2024, 1, 20), "a", 1), ("u1", "o2", date(2024, 1, 20), "c", 1),
    ("u1", "o3", date(2024, 1, 20), "c", -1),
    ("u1", "o9", date(2024, 2, 6), "a", 1), ("u1", "o9", date(2024, 2, 6), "d", 5),
    ("u1", "o10", date(2024, 2, 7), "x", -1),
    ("u2", "o4", date(2024, 1, 15), "b", 1), ("u2", "o4", date(2024, 1, 15), "c", 1),
    ("u2", "o5", date(2024, 1, 25), "b", 3), ("u2", "o8", date(2024, 2, 1), "c", 1),
    ("u2", "o11", date(2024, 2, 8), "b", 1), ("u2", "o11", date(2024, 2, 8), "e", 1),
    ("u2", "o11", date(2024, 2, 8), "f", 1),
    ("u3", "o6", date(2023, 12, 1), "a", 1), ("u3", "o12", date(2024, 2, 6), "a", 1),
    ("u4", "o7", date(2024, 1, 30), "c", 1), ("u4", "o7", date(2024, 1, 30), "e", 1),
    (None, "o13", date(2024, 2, 2), "e", 1), (None, "o13", date(2024, 2, 2), "f", 1),
    (None, "o14", date(2024, 2, 11), "a", 1),
]


def frame(rows: list[tuple]) -> pd.DataFrame:
    """(user, order, day, item, quantity) tuples as an events frame with the raw column names."""
    users, orders, days, items, qty = zip(*rows)
    return pd.DataFrame({s.USER_ID: pd.Series(users, dtype=object), s.ORDER_ID: list(orders),
                         s.EVENT_DATE: list(days), s.ITEM_ID: list(items), s.SEGMENT: "seg",
                         s.QUANTITY: np.asarray(qty, dtype=float)})


@pytest.fixture
def tiny_events() -> pd.DataFrame:
    return frame(_ROWS)


def synthetic_events(seed: int = 0, users: int = 60, items: int = 30, days: int = 84,
                     start: date = date(2024, 1, 1)) -> pd.DataFrame:
    """A seeded log: each user buys on ~1 day in 6, mostly from 5 favourite items; a few guest rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        favourites = rng.choice(items, 5, replace=False)
        for d in np.flatnonzero(rng.random(days) < 1 / 6):
            picks = np.where(rng.random(3) < 0.7, rng.choice(favourites, 3), rng.integers(0, items, 3))
            day = start + timedelta(days=int(d))
            rows += [(f"u{u:02d}", f"u{u}-{d}", day, f"i{i:02d}", 1) for i in set(picks.tolist())]
    rows += [(None, "g1", start + timedelta(days=days - 1), "i00", 1)]
    return frame(rows)


@pytest.fixture
def synthetic() -> pd.DataFrame:
    return synthetic_events()
