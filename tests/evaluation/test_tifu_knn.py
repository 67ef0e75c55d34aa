"""TIFU-kNN: user vectors and one prediction worked out by hand; tuning blind to the target week."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipeline import schemas as s
from pipeline.sampling import sample_customers
from recsys.evaluation import tifu_knn as tifu_module
from recsys.evaluation.baselines import basket_table
from recsys.evaluation.protocol import before, eligible_targets, known_purchases
from recsys.evaluation.tifu_knn import GRID, PAPER_PARAMS, TifuParams, tifu_knn, tune_tifu_knn, user_vectors

from .conftest import frame, synthetic_events


def vector(baskets: list[set[str]], params: TifuParams) -> dict[str, float]:
    rows = [("u", f"o{j}", date(2024, 1, 1) + timedelta(days=j), item, 1)
            for j, basket in enumerate(baskets) for item in sorted(basket)]
    matrix, users, items = user_vectors(basket_table(frame(rows)), params)
    assert list(users) == ["u"]
    return dict(zip(items, matrix.toarray()[0]))


def test_two_baskets_each_its_own_group():
    # b1 = {a, b}, b2 = {b, c}; m = 7 > 2 baskets: G = 2 groups of one basket, r_b plays no part.
    # user = (r_g * b1 + b2) / 2 = (0.7 * b1 + b2) / 2 -> a 0.35, b 0.35 + 0.5 = 0.85, c 0.5.
    got = vector([{"a", "b"}, {"b", "c"}], TifuParams(10, 0.9, 0.7, 0.5, 7, "group"))
    assert got == pytest.approx({"a": 0.35, "b": 0.85, "c": 0.5})
    # the authors' code also decays b1 by r_b for the one basket after it: (0.7 * 0.9 * b1 + b2) / 2
    got = vector([{"a", "b"}, {"b", "c"}], TifuParams(10, 0.9, 0.7, 0.5, 7, "history"))
    assert got == pytest.approx({"a": 0.315, "b": 0.815, "c": 0.5})


def test_two_baskets_in_one_group():
    # m = 1: one group of 2 baskets, within-group decay: (r_b * b1 + b2) / 2 -> a 0.45, b 0.95, c 0.5.
    for decay in ("group", "history"):  # one group: both readings agree
        got = vector([{"a", "b"}, {"b", "c"}], TifuParams(10, 0.9, 0.7, 0.5, 1, decay))
        assert got == pytest.approx({"a": 0.45, "b": 0.95, "c": 0.5})


def test_uneven_groups_put_the_smaller_group_first():
    # 5 baskets, m = 2: groups {b0, b1} and {b2, b3, b4}. r_b = 0.5, r_g = 0.1, G = 2.
    # g0 = (0.5 * b0 + b1) / 2, g1 = (0.25 * b2 + 0.5 * b3 + b4) / 3; user = (0.1 * g0 + g1) / 2.
    got = vector([{"p"}, {"q"}, {"r"}, {"s"}, {"t"}], TifuParams(10, 0.5, 0.1, 0.5, 2, "group"))
    assert got == pytest.approx({"p": 0.1 * 0.25 / 2, "q": 0.1 * 0.5 / 2, "r": 0.25 / 3 / 2,
                                 "s": 0.5 / 3 / 2, "t": 1 / 3 / 2})
    # "history": r_b counts all later baskets: b0 0.5^4, b1 0.5^3 (then / 2 / 2 and r_g), b2 0.5^2 ...
    got = vector([{"p"}, {"q"}, {"r"}, {"s"}, {"t"}], TifuParams(10, 0.5, 0.1, 0.5, 2, "history"))
    assert got == pytest.approx({"p": 0.1 * 0.0625 / 2 / 2, "q": 0.1 * 0.125 / 2 / 2, "r": 0.25 / 3 / 2,
                                 "s": 0.5 / 3 / 2, "t": 1 / 3 / 2})


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="decay_over"):
        TifuParams(decay_over="basket")


def test_prediction_blends_own_vector_with_the_nearest_neighbour():
    # One basket each (vector = the basket): A {p}, B {p, q}, C {r}. cos(A, B) = 0.71, cos(A, C) = 0.
    # k = 1 neighbour (B), alpha 0.5: 0.5 * [1, 0, 0] + 0.5 * [1, 1, 0] = p 1.0, q 0.5; r (0) left out.
    events = frame([("A", "o1", date(2024, 1, 2), "p", 1), ("B", "o2", date(2024, 1, 3), "p", 1),
                    ("B", "o2", date(2024, 1, 3), "q", 1), ("C", "o3", date(2024, 1, 4), "r", 1)])
    out = tifu_knn(events, date(2024, 1, 8), np.array(["A"], dtype=object),
                   params=TifuParams(1, 0.9, 0.7, 0.5, 3))
    assert out[[s.ITEM_ID, "score"]].values.tolist() == [["p", 1.0], ["q", 0.5]]


def test_grid_holds_the_paper_settings():
    assert set(PAPER_PARAMS.values()) <= set(GRID)
    assert PAPER_PARAMS["dunnhumby"] == TifuParams(900, 0.9, 0.6, 0.2, 3, "history")
    assert {p.decay_over for p in GRID} == {"history", "group"}


SMALL_GRID = (TifuParams(3, 0.9, 0.7, 0.9, 3), TifuParams(30, 0.9, 0.6, 0.2, 3, "group"),
              TifuParams(10, 0.5, 0.5, 0.5, 1))


def test_tuning_never_sees_the_target_week():
    events = synthetic_events()
    cutoff = date(2024, 3, 11)
    chosen = tune_tifu_knn(events, cutoff, SMALL_GRID)
    day = pd.to_datetime(events[s.EVENT_DATE])
    target_week = (day >= pd.Timestamp(cutoff)) & (day < pd.Timestamp(cutoff + timedelta(days=7)))
    # replace the target week by another seed's purchases, or drop everything from the cut-off on
    other = synthetic_events(seed=99)
    other_day = pd.to_datetime(other[s.EVENT_DATE])
    other_week = (other_day >= pd.Timestamp(cutoff)) & (other_day < pd.Timestamp(cutoff + timedelta(days=7)))
    swapped = pd.concat([events[~target_week], other[other_week]])
    assert tune_tifu_knn(swapped, cutoff, SMALL_GRID) == chosen
    assert tune_tifu_knn(events[day < pd.Timestamp(cutoff)], cutoff, SMALL_GRID) == chosen


def test_tuning_reads_the_validation_week():
    # Control for the test above: the validation week [cutoff - 7, cutoff) does steer the choice.
    events = synthetic_events()
    cutoff = date(2024, 3, 11)
    day = pd.to_datetime(events[s.EVENT_DATE])
    val = (day >= pd.Timestamp(cutoff - timedelta(days=7))) & (day < pd.Timestamp(cutoff))
    choices = {tune_tifu_knn(events, cutoff, SMALL_GRID)}
    for seed in range(1, 6):
        other = synthetic_events(seed=seed)
        other_day = pd.to_datetime(other[s.EVENT_DATE])
        other_val = ((other_day >= pd.Timestamp(cutoff - timedelta(days=7)))
                     & (other_day < pd.Timestamp(cutoff)))
        choices.add(tune_tifu_knn(pd.concat([events[~val], other[other_val]]), cutoff, SMALL_GRID))
    assert len(choices) > 1



def test_tuning_on_a_budget_scores_a_stratified_sample_and_a_large_budget_changes_nothing(monkeypatch):
    events = synthetic_events()
    cutoff = date(2024, 3, 11)
    val_cut = cutoff - timedelta(days=7)
    week = eligible_targets(before(events, cutoff), val_cut)[s.USER_ID].unique()
    asked = []
    grid_lists = tifu_module._grid_lists

    def spy(events, cutoff, users, grid, k):
        asked.append(list(users))
        return grid_lists(events, cutoff, users, grid, k)

    monkeypatch.setattr(tifu_module, "_grid_lists", spy)
    everyone = tune_tifu_knn(events, cutoff, SMALL_GRID)
    assert asked.pop() == list(week) and len(week) > 10
    assert tune_tifu_knn(events, cutoff, SMALL_GRID, customers=len(week)) == everyone
    assert asked.pop() == list(week)  # a budget no smaller than the week: every customer, the same choice
    tune_tifu_knn(events, cutoff, SMALL_GRID, customers=10, seed=3)
    sample = asked.pop()
    recent = known_purchases(before(events, val_cut))
    recent = recent[pd.to_datetime(recent[s.EVENT_DATE]) >= pd.Timestamp(val_cut - timedelta(days=28))]
    lines = recent.groupby(s.USER_ID).size().reindex(week, fill_value=0).to_numpy()
    assert sample == list(week[sample_customers(week, lines, 10, 3)])  # stratified by purchase lines
    tune_tifu_knn(events, cutoff, SMALL_GRID, customers=10, seed=3)
    assert asked.pop() == sample  # the same seed, the same customers


def whole_row_top_items(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition, scoring every item of the row: the k-th largest score is the threshold; items above
    it stay, items equal to it in column order until the row has k; only positive scores count."""
    threshold = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    above, tied = scores > threshold, scores == threshold
    room = k - above.sum(axis=1, keepdims=True)
    return np.nonzero((above | (tied & (np.cumsum(tied, axis=1) <= room))) & (scores > 0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("items", [60, 2_000])
def test_scoring_only_the_candidate_items_gives_the_whole_row_lists(seed, items):
    # Values from a small set, with neighbours one ulp apart, so ties and near-ties (equal after
    # (1 - alpha) * mean rounds) are common; some rows have fewer than k positive items. With 2,000
    # items the k-th largest mean is bounded by slice maxima (8 * k slices), with 60 it is the row's own.
    rng = np.random.default_rng(seed)
    levels = np.array([0.0, 0.1, 0.3, np.nextafter(0.3, 1.0), 0.7, np.nextafter(0.7, 0.0), 1 / 3])
    mean = levels[rng.integers(0, len(levels), size=(40, items))] * (rng.random((40, items)) < 0.5)
    own = levels[rng.integers(0, len(levels), size=(40, items))] * (rng.random((40, items)) < 0.1)
    mean[:3, 5:] = 0.0  # rows with fewer than k positive items
    alphas = [0.2, 0.5, 0.7, 0.9, 0.0, 1.0]
    for k in (1, 3, 10, 60):
        for alpha, (rows, cols, scores) in zip(alphas, tifu_module._top_items(own, mean, alphas, k)):
            whole = alpha * own + (1.0 - alpha) * mean
            expected = whole_row_top_items(whole, k)
            assert np.array_equal(rows, expected[0]) and np.array_equal(cols, expected[1]), (alpha, k)
            assert np.array_equal(scores, whole[expected])


def test_an_item_one_rounding_below_the_kth_mean_still_competes():
    # Means one ulp apart round to the same 0.8 * mean; the tie then goes to the lower column, so the item
    # just below the k-th largest mean takes the one place: a candidate set cut exactly at the k-th mean
    # would have dropped it.
    high, alpha = 0.7, 0.2
    low = np.nextafter(high, 0.0)
    assert (1.0 - alpha) * low == (1.0 - alpha) * high
    mean = np.array([[low, high]])
    rows, cols, scores = tifu_module._top_items(np.zeros_like(mean), mean, [alpha], 1)[0]
    assert list(rows) == [0] and list(cols) == [0] and list(scores) == [(1.0 - alpha) * low]


def sparse_product_means(vectors, order: np.ndarray, counts: list[int]) -> dict[int, np.ndarray]:
    """The neighbour means as they were first taken: a 0/1 matrix of each count's further neighbours
    times the vectors, densified and added to the running total."""
    means, total, done = {}, np.zeros((order.shape[0], vectors.shape[1])), 0
    for n in counts:
        idx = order[:, done:n]
        rows = np.repeat(np.arange(len(order)), idx.shape[1])
        pick = sp.csr_matrix((np.ones(idx.size), (rows, idx.ravel())), shape=(len(order), vectors.shape[0]))
        total += (pick @ vectors).toarray()
        done = max(done, min(n, order.shape[1]))
        means[n] = total / max(done, 1)
    return means


@pytest.mark.parametrize("seed", range(3))
def test_neighbour_means_add_the_values_in_the_sparse_products_order(seed):
    # Random weights over a few popular items, so an item's sum over hundreds of neighbours depends on
    # the order of its additions; the means must be those of the sparse products, bit for bit.
    rng = np.random.default_rng(seed)
    vectors = sp.random(500, 40, density=0.3, random_state=seed, format="csr",
                        data_rvs=lambda size: rng.random(size) ** 3)
    order = np.stack([rng.permutation(500)[:300] for _ in range(17)])
    counts = [1, 7, 100, 300, 900]  # 900: more than there are neighbours
    got = tifu_module._neighbour_means(vectors, order, counts)
    expected = sparse_product_means(vectors, order, counts)
    assert list(got) == counts
    for n in counts:
        assert np.array_equal(got[n], expected[n]), n
    # control: these sums depend on the order of the additions (here descending user index)
    dense, first = vectors.toarray(), np.sort(order, axis=1)
    backwards = np.zeros((len(order), vectors.shape[1]))
    for place in range(first.shape[1] - 1, -1, -1):
        backwards += dense[first[:, place]]
    assert not np.array_equal(backwards / 300, sparse_product_means(vectors, order, [300])[300])
