"""The cold-start protocol: its three populations, its item lists and the weight a release chooses, by hand."""

import datetime

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.evaluation.coldstart import (
    GRID,
    choose_weight,
    popularity,
    population_targets,
    rising,
    score_ranking,
    summary,
    trend_ranking,
)

D = datetime.date
CUT = D(2024, 1, 29)  # a Monday: the target week is 29 Jan .. 4 Feb


def _log(rows):
    """(user, item, segment, day, order) rows -> a raw event frame with quantity 1."""
    frame = pd.DataFrame(rows, columns=[s.USER_ID, s.ITEM_ID, s.SEGMENT, s.EVENT_DATE, s.ORDER_ID])
    return frame.assign(**{s.QUANTITY: 1.0})


EVENTS = _log([
    ("old", "a", "x", D(2024, 1, 10), "o1"), ("old", "b", "y", D(2024, 1, 10), "o1"),
    ("old", "c", "z", D(2024, 1, 30), "o2"), ("old", "a", "x", D(2024, 1, 30), "o2"),  # known: c, a
    ("new", "b", "y", D(2024, 1, 31), "o3"), ("new", "c", "z", D(2024, 1, 31), "o3"),  # first purchase in week
    (None, "c", "z", D(2024, 2, 1), "g1"), (None, "a", "x", D(2024, 2, 1), "g1"),  # a guest order
    (None, "b", "y", D(2024, 2, 2), "g2"),  # another
    ("late", "a", "x", D(2024, 2, 6), "o4"),  # after the target week: no list
])


def _pairs(frame):
    return sorted(map(tuple, frame[[s.USER_ID, s.ITEM_ID]].to_numpy()))


def test_each_population_has_its_own_lists_and_targets():
    scored = pd.DataFrame({s.USER_ID: ["old"], s.ITEM_ID: ["a"]})  # the customer model scores a for "old"
    got = population_targets(EVENTS, CUT, scored)
    assert _pairs(got["new_customers"]) == [("new", "b"), ("new", "c")]  # "old" bought before the week
    assert _pairs(got["guest_orders"]) == [("order:g1", "a"), ("order:g1", "c"), ("order:g2", "b")]
    assert _pairs(got["outside_candidates"]) == [("old", "c")]  # a is among its scored candidates
    assert population_targets(EVENTS, CUT, None)["outside_candidates"] is None
    assert population_targets(EVENTS.drop(columns=[s.ORDER_ID]), CUT, None)["guest_orders"] is None


def test_popularity_counts_a_guest_order_as_a_buyer_and_rising_puts_growth_first():
    log = _log([(u, "old_hit", "x", D(2023, 12, 20), None) for u in "pqrs"]  # popular 40 days back
               + [(u, "old_hit", "x", D(2024, 1, 20), None) for u in "pq"]
               + [(None, "riser", "y", D(2024, 1, 25), o) for o in ("g1", "g2", "g3")])
    assert popularity(log, CUT).to_dict() == {"riser": 3.0, "old_hit": 2.0}  # three guest orders, two customers
    assert list(rising(log, CUT).index) == ["riser", "old_hit"]  # old_hit fell from 4 buyers to 2


def test_trend_ranking_is_the_blend_rule_on_one_list():
    base = pd.Series([3.0, 2.0, 1.0], index=["a", "b", "c"])
    segments, trends = {"a": "down", "b": "flat", "c": "up"}, {"down": -0.5, "flat": 0.0, "up": 0.5}
    assert list(trend_ranking(base, segments, trends, 0.0).index) == ["a", "b", "c"]
    # base pct a 1, b 2/3, c 1/3; trend pct a 1/3, b 2/3, c 1. w = 1: the trend order; w = 0.6: a .6, b 2/3,
    # c .7333; w = 0.5: all three 2/3, ties go to the higher base pct: the shop's order
    assert list(trend_ranking(base, segments, trends, 1.0).index) == ["c", "b", "a"]
    assert list(trend_ranking(base, segments, trends, 0.6).index) == ["c", "b", "a"]
    assert list(trend_ranking(base, segments, trends, 0.5).index) == ["a", "b", "c"]
    assert list(trend_ranking(base, {}, trends, 1.0).index) == ["a", "b", "c"]  # no segment known: neutral


def test_a_customers_scored_candidates_are_left_out_of_their_list():
    ranking = pd.Series([5.0, 4.0, 3.0], index=["a", "b", "c"])
    targets = pd.DataFrame({s.USER_ID: ["u", "v"], s.ITEM_ID: ["c", "c"]})
    exclude = pd.DataFrame({s.USER_ID: ["u", "u"], s.ITEM_ID: ["a", "b"]})
    rows = score_ranking(ranking, targets, exclude, k=1)  # u's list is c alone; v's is a
    assert rows.set_index(s.USER_ID)["recall"].to_dict() == {"u": 1.0, "v": 0.0}
    assert summary([rows], k=1) == {"recall@1": 0.5, "ndcg@1": 0.5, "phr@1": 0.5, "lists": 2}


def _week(bought):
    """Popular-but-falling a (segment down) before the cut-off, rising-segment c; ``bought`` in the week."""
    before = [(f"p{i}", "a", "down", D(2024, 1, 20), f"a{i}") for i in range(3)]
    before += [(f"q{i}", "c", "up", D(2024, 1, 21), f"c{i}") for i in range(2)]
    week = [(f"n{i}", item, seg, D(2024, 1, 30), f"n{i}") for i, (item, seg) in enumerate(bought)]
    return _log(before + week)


def test_the_weight_is_chosen_only_where_trends_help_on_the_week():
    trends = {"down": -0.5, "up": 0.5}
    helped = choose_weight(_week([("c", "up")] * 3), CUT, trends, None, n=50)
    assert helped["helped"] and helped["weight"] > 0  # c, ranked second by popularity, first with trends
    assert helped["ndcg@10"]["0.0"] == pytest.approx(1 / np.log2(3))
    assert helped["populations"] == {"new_customers": 3}
    hurt = choose_weight(_week([("a", "down")] * 3), CUT, trends, None, n=50)
    assert hurt["weight"] == 0.0 and not hurt["helped"]  # trends push the bought item down: off
    assert hurt["ndcg@10"]["0.0"] == 1.0 and set(hurt["ndcg@10"]) == {str(w) for w in GRID}
    nothing = choose_weight(_week([]), CUT, trends, None, n=50)
    assert nothing["weight"] == 0.0 and not nothing["helped"] and nothing["populations"] == {}
