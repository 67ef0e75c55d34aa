"""The simple baselines on the hand-counted log of conftest.py, and the leak test for every method.

Order at the 2024-02-05 cut-off (counts worked out in the conftest story):
- g_topfreq: distinct known buyers in [01-08, 02-05): c 3, b 2, a 1, e 1 -> [c, b, a, e].
- p_topfreq u1: baskets o1 {a, b} (01-10), o2 {a, c} (01-20; o3 is a return): a 2, c 1 (last 01-20),
  b 1 (last 01-10) -> [a, c, b], filled with g_topfreq's e -> [a, c, b, e].
- p_topfreq u2: o4 {b, c} (01-15), o5 {b} (01-25), o8 {c} (02-01): b 2 and c 2, c bought later ->
  [c, b], filled -> [c, b, a, e].
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.evaluation.baselines import DAY, SEQ, base, basket_table, g_topfreq, p_topfreq
from recsys.evaluation.protocol import before, recommend
from recsys.evaluation.tifu_knn import TifuParams, tifu_knn

from .conftest import CUTOFF, frame, synthetic_events

USERS = np.array(["u1", "u2"], dtype=object)


def lists(recs: pd.DataFrame) -> dict[str, list[str]]:
    ranked = recs.sort_values([s.USER_ID, "score", s.ITEM_ID], ascending=[True, False, True])
    return ranked.groupby(s.USER_ID)[s.ITEM_ID].apply(list).to_dict()


def test_g_topfreq_order_by_distinct_buyers(tiny_events):
    out = g_topfreq(tiny_events, CUTOFF, USERS)
    assert lists(out) == {"u1": ["c", "b", "a", "e"], "u2": ["c", "b", "a", "e"]}
    assert out.loc[out[s.USER_ID] == "u1", "score"].tolist() == [3, 2, 1, 1]


def test_p_topfreq_order_frequency_then_recency_then_fill(tiny_events):
    expected = {"u1": ["a", "c", "b", "e"], "u2": ["c", "b", "a", "e"]}
    assert lists(p_topfreq(tiny_events, CUTOFF, USERS)) == expected


def test_p_topfreq_breaks_same_basket_ties_by_popularity():
    # u1 bought y and z once, in one basket: same count, same day. z has 2 recent buyers (u1, u2), y 1.
    events = frame([("u1", "o1", date(2024, 1, 20), "y", 1), ("u1", "o1", date(2024, 1, 20), "z", 1),
                    ("u2", "o2", date(2024, 1, 21), "z", 1)])
    assert lists(p_topfreq(events, CUTOFF, np.array(["u1"], dtype=object), k=2)) == {"u1": ["z", "y"]}


def test_baskets_are_orders_when_present_else_days(tiny_events):
    u1 = tiny_events[tiny_events[s.USER_ID] == "u1"]
    by_order = basket_table(before(u1, CUTOFF))
    assert by_order.groupby(SEQ)[s.ITEM_ID].apply(sorted).tolist() == [["a", "b"], ["a", "c"]]  # o3 a return
    same_day = frame([("u", "o1", date(2024, 1, 3), "a", 1), ("u", "o2", date(2024, 1, 3), "b", 1)])
    assert basket_table(same_day)[SEQ].tolist() == [0, 1]  # two orders on one day: two baskets
    by_day = basket_table(same_day.drop(columns=[s.ORDER_ID]))
    assert by_day[SEQ].tolist() == [0, 0] and by_day[DAY].nunique() == 1


def test_baskets_are_numbered_by_first_day_then_key():
    # u: o2 spans 01-05 and 01-06 (its day: 01-05); c on 01-05 has no order id, so its basket is the day's,
    # key "@<day>", which sorts before "o2" on the same day; o1 sorts before o2 but comes later (01-07).
    # c twice in one basket is one row; d is a return, in no basket.
    events = frame([("u", "o2", date(2024, 1, 5), "a", 1), ("u", "o2", date(2024, 1, 6), "b", 1),
                    ("u", None, date(2024, 1, 5), "c", 1), ("u", None, date(2024, 1, 5), "c", 2),
                    ("u", "o1", date(2024, 1, 7), "a", 1), ("u", "o3", date(2024, 1, 7), "d", -1),
                    ("v", "o4", date(2024, 1, 2), "a", 1)])
    table = basket_table(events)
    jan5 = (date(2024, 1, 5) - date(1970, 1, 1)).days
    assert sorted(zip(table[s.USER_ID], table[s.ITEM_ID], table[SEQ])) == [
        ("u", "a", 1), ("u", "a", 2), ("u", "b", 1), ("u", "c", 0), ("v", "a", 0)]
    assert table.loc[table[s.ITEM_ID] == "b", DAY].tolist() == [jan5]
    assert table[s.USER_ID].tolist() == ["u", "u", "u", "u", "v"]  # the log's order, first row of each kept


def test_base_is_the_candidate_builder_top_k(tiny_events):
    out = base(tiny_events, CUTOFF, USERS, k=2)
    assert out.groupby(s.USER_ID).size().tolist() == [2, 2]
    assert out.groupby(s.USER_ID)["score"].is_monotonic_decreasing.all()


METHODS = {
    "g_topfreq": g_topfreq, "p_topfreq": p_topfreq, "base": base,
    "tifu_fixed": lambda e, c, u: tifu_knn(e, c, u, params=TifuParams(5, 0.9, 0.7, 0.7, 3)),
    "tifu_tuned": lambda e, c, u: tifu_knn(e, c, u, grid=(TifuParams(5, 0.9, 0.7, 0.7, 3),
                                                          TifuParams(20, 0.8, 0.5, 0.3, 2))),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_truncating_the_log_after_the_cutoff_changes_nothing(name):
    events = synthetic_events()
    cutoff = date(2024, 3, 11)
    users = np.asarray(sorted(events[s.USER_ID].dropna().unique()), dtype=object)
    method = METHODS[name]
    full = recommend(method, events, cutoff, users)
    cut = recommend(method, before(events, cutoff), cutoff, users)
    assert len(full) > 0
    pd.testing.assert_frame_equal(full, cut)
    # and each method ignores later rows on its own, even if a caller forgets to truncate
    pd.testing.assert_frame_equal(method(events, cutoff, users).reset_index(drop=True),
                                  method(before(events, cutoff), cutoff, users).reset_index(drop=True))
