"""WeeklyCrowd: the crowd tables of weekly cut-offs counted once for all equal each cut-off's own (issue 35).

fit_recommender reads 8 weekly cut-offs whose 52-week lookbacks overlap in all weeks but one; WeeklyCrowd
counts the (item, segment, week) lines and each (customer, item)'s first and last weeks of all of them in
one pass each. Every cut-off's tables must be exactly (frames, dtypes, order) what iter_histories counts
from that cut-off's own window (``_crowd``), and hold the values of an independent pandas reference, on a
random log with guests, cancellations, null segments and items sold in two segments.

    .venv/bin/python -m pytest tests/nextbasket/test_weekly_crowd.py -q
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from recsys.nextbasket import histories
from recsys.nextbasket.histories import WeeklyCrowd, iter_histories, open_events
from tests.nextbasket.test_histories_sample import CFG, CUTOFF, _random_log, _reference, _same, _table

CROWD = ("crowd_item", "crowd_segment", "item_segment", "item_repeat")
N = 3  # cut-offs: CUTOFF, CUTOFF - 7 days, CUTOFF - 14 days; the log spans their lookbacks (70 days back)


@pytest.mark.parametrize("seed", [0, 3])
def test_each_cutoffs_tables_are_those_of_its_own_window(seed):
    events = _random_log(seed)
    con = open_events(events, CFG)
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        for j in range(N):
            at = CUTOFF - timedelta(weeks=j)
            got = crowd.tables(at)
            own = histories._crowd(con, {"start": at - timedelta(weeks=CFG.lookback_weeks), "cutoff": at})
            want = _reference(events, CFG, at)
            for name, keys, frame, expected in zip(CROWD, (2, 2, 1, 1), got, own, strict=True):
                pd.testing.assert_frame_equal(frame, expected, check_exact=True)
                _same(_table(frame, keys), want[name])
            assert len(got[0]) and len(got[3])
    # the cut-offs differ: a table shared by mistake would pass the loop for one cut-off only
    assert _reference(events, CFG, CUTOFF)["crowd_item"] != _reference(events, CFG, CUTOFF - timedelta(weeks=2))[
        "crowd_item"]


def test_iter_histories_with_a_weekly_crowd_gives_the_same_histories():
    events = _random_log(1)
    con = open_events(events, CFG)
    users = np.array(sorted(events["user_id"].dropna().unique())[::2], dtype=object)
    at = CUTOFF - timedelta(weeks=1)
    alone = list(iter_histories(con, at, CFG, users))
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        shared = list(iter_histories(con, at, CFG, users, crowd=crowd))
    assert len(alone) == len(shared) > 1
    for a, b in zip(alone, shared, strict=True):
        for name in ("user_item", "user_segment", *CROWD):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def test_a_date_outside_the_cutoffs_is_refused_and_the_tables_are_dropped():
    con = open_events(_random_log(2), CFG)
    with WeeklyCrowd(con, CUTOFF, N, CFG) as crowd:
        for at in (CUTOFF + timedelta(weeks=1), CUTOFF - timedelta(weeks=N), CUTOFF - timedelta(days=3)):
            with pytest.raises(ValueError, match="weekly cut-offs"):
                crowd.tables(at)
    tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not tables & {histories._WEEKS, histories._REPEATS}
