"""The value metrics on a fixture worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.value.metrics import decile_table, gini, value_metrics

PRED = np.array([3.0, 2.0, 1.0, 0.0])
ACTUAL = np.array([10.0, 0.0, 5.0, 0.0])


def test_metrics_match_the_hand_computation():
    m = value_metrics(PRED, ACTUAL)
    # ordered by prediction the actuals are 10, 0, 5, 0: cumulative 10, 10, 15, 15 -> (50/15 - 2.5) / 4
    assert gini(ACTUAL, PRED) == pytest.approx((50 / 15 - 2.5) / 4)
    # the perfect order 10, 5, 0, 0: cumulative 10, 15, 15, 15 -> (55/15 - 2.5) / 4; ratio 5/7
    assert m["norm_gini"] == pytest.approx(5 / 7)
    # ranks 4,3,2,1 vs 4,1.5,3,1.5: covariance 3, variances 5 and 4.5
    assert m["spearman"] == pytest.approx(3 / np.sqrt(5 * 4.5))
    assert m["top_decile_capture"] == pytest.approx(10 / 15)  # ceil(4 / 10) = 1 customer: the first
    assert m["mae"] == pytest.approx((7 + 2 + 4 + 0) / 4)
    assert m["total_error"] == pytest.approx(6 / 15 - 1)


def test_perfect_order_and_ties_are_deterministic():
    actual = np.array([0.0, 4.0, 1.0, 9.0])
    assert value_metrics(actual * 2, actual)["norm_gini"] == pytest.approx(1.0)
    flat = value_metrics(np.ones(4), actual)  # every prediction tied: customer order decides, the same each run
    again = value_metrics(np.ones(4), actual)
    assert np.isnan(flat.pop("spearman")) and flat == {k: v for k, v in again.items() if k != "spearman"}
    assert flat["top_decile_capture"] == pytest.approx(0.0)  # the tie goes to the first customer (spent 0)


def test_decile_table_means():
    pred, actual = np.arange(20, dtype=float), np.arange(20, dtype=float)[::-1]
    table = decile_table(pred, actual)
    assert list(table["decile"]) == list(range(1, 11)) and set(table["customers"]) == {2}
    assert table["predicted"].iloc[0] == pytest.approx(18.5) and table["actual"].iloc[0] == pytest.approx(0.5)
