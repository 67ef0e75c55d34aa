"""A small seeded event log for the customer value tests, with the three edge customers.

``value_events()``: 120 regular customers buying on and off over 2011 (Poisson visits, a few
dropping out), plus ``ONE`` (a single order), ``RETURNS`` (returns only), ``SAMEDAY`` (three
orders, all on one day) and guest lines (null user_id). ``TINY`` is a ValueConfig small enough to
train the LSTM in seconds.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ValueConfig

START = date(2011, 1, 3)
END = date(2011, 12, 31)  # first day after the log
ONE, RETURNS, SAMEDAY = "one", "returns", "sameday"
TINY = ValueConfig(horizon_days=28, seq_weeks=8, train_cutoffs=2, train_step_days=14, units=4, dense_units=8,
                   epochs=2, batch_size=64, patience=1, seed=3)


def value_events(seed: int = 0) -> pd.DataFrame:
    """Raw events (user_id, order_id, quantity, price, event_date); see the module doc."""
    rng = np.random.default_rng(seed)
    rows, n_days = [], (END - START).days
    for u in range(120):
        rate, life = rng.gamma(2.0, 0.02), rng.integers(60, n_days + 200)
        first = int(rng.integers(0, 200))
        for d in range(first, min(n_days, first + life)):
            if d == first or rng.random() < rate:
                rows.append((f"c{u}", f"o{u}-{d}", float(rng.integers(1, 6)), float(rng.gamma(3.0, 5.0)),
                             START + timedelta(days=d)))
    rows += [(ONE, "one-1", 2.0, 10.0, date(2011, 6, 1)), (ONE, "one-1", 1.0, 5.0, date(2011, 6, 1)),
             (RETURNS, "ret-1", -2.0, 10.0, date(2011, 5, 2)), (RETURNS, "ret-2", -1.0, 4.0, date(2011, 7, 9))]
    rows += [(SAMEDAY, f"same-{i}", 1.0, 20.0, date(2011, 4, 4)) for i in range(3)]
    rows += [(None, f"guest-{i}", 1.0, 3.0, date(2011, 3, 1) + timedelta(days=i)) for i in range(5)]
    frame = pd.DataFrame(rows, columns=[s.USER_ID, s.ORDER_ID, s.QUANTITY, s.PRICE, s.EVENT_DATE])
    return frame.sort_values(s.EVENT_DATE, kind="stable").reset_index(drop=True)
