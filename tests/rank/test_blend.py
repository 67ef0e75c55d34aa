"""The blend rule: rank-safe in base_score (shift, scale, sign, size), one rule for batch and service."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import schemas as s
from recsys.rank.blend import SIGNALS, blend
from recsys.rank.rerank import rerank
from recsys.rank.signals import ReleaseSignals
from recsys.serve.app import rerank_list
from recsys.serve.schema import REQUEST

TRENDS = pd.DataFrame({s.SEGMENT: ["christmas", "garden", "bags"], s.TREND: [0.205, -0.3, 0.0]})


def _order(base, segments, weight=0.3, scores=None, users=None):
    n = len(base)
    cands = pd.DataFrame({s.USER_ID: users if users is not None else ["u"] * n,
                          s.ITEM_ID: [f"i{i}" for i in range(n)], s.SEGMENT: segments, s.BASE_SCORE: base})
    return rerank(cands, TRENDS, weight, scores)[s.ITEM_ID].tolist()


def test_a_negative_base_score_does_not_invert_the_trend():
    # the case: a christmas item (trend +0.205) at -0.4 beside a garden item (trend -0.3) at -0.4
    # the old rule base * (1 + w * trend) sent the rising item *down* (-0.4246 < -0.364)
    assert _order([-0.4, -0.4], ["christmas", "garden"]) == ["i0", "i1"]
    assert _order([0.4, 0.4], ["christmas", "garden"]) == ["i0", "i1"]  # the same as for positive scores


@settings(max_examples=60, deadline=None)
@given(base=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=12),
       shift=st.floats(-1e6, 1e6), scale=st.floats(1e-3, 1e3), weight=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
       seed=st.integers(0, 1000))
def test_the_order_is_invariant_to_shift_and_positive_scale(base, shift, scale, weight, seed):
    rng = np.random.default_rng(seed)
    segments = rng.choice(["christmas", "garden", "bags", "shoes"], len(base)).tolist()
    base = np.round(np.asarray(base), 2)  # keep ties exact after shifting and scaling
    ref = _order(base, segments, weight)
    ranks = pd.Series(base).rank(method="dense").to_numpy()  # same order, new values: logits, huge, tiny
    assert _order(ranks + shift, segments, weight) == ref
    assert _order(ranks * scale, segments, weight) == ref
    assert _order(ranks * 1e12 - 5e12, segments, weight) == ref


def test_huge_and_negative_scores_keep_a_sane_order():
    base = [-1e300, 1e300, -3.0, 0.0, 5e-324]
    # weight 0: exactly the base order
    assert _order(base, ["bags"] * 5, weight=0.0) == ["i1", "i4", "i3", "i2", "i0"]
    final = rerank(pd.DataFrame({s.USER_ID: ["u"] * 5, s.ITEM_ID: list("abcde"), s.SEGMENT: ["christmas"] * 5,
                                 s.BASE_SCORE: base}), TRENDS, 0.3)[s.FINAL_SCORE]
    assert np.isfinite(final).all() and final.between(0, 1).all()


def test_non_finite_base_scores_are_refused():
    from recsys.rank.rerank import RerankError

    with pytest.raises(RerankError, match="row 1 has nan"):
        _order([1.0, float("nan")], ["bags", "bags"])


@pytest.mark.parametrize("with_scores", [False, True])
def test_the_service_and_the_batch_give_the_same_order_and_scores(with_scores):
    rng = np.random.default_rng(3)
    n = 40
    items = [f"i{i}" for i in range(n)]
    segments = rng.choice(["christmas", "garden", "bags", "shoes"], n).tolist()
    base = rng.normal(size=n).round(1)  # ties included
    scored = {f"i{i}": float(rng.random()) for i in rng.choice(n, 10, replace=False)} if with_scores else {}
    req = REQUEST.validate_python({"user_id": "u", "candidates": [
        {"item_id": i, "segment": g, "base_score": float(b)} for i, g, b in zip(items, segments, base)]})
    scores = pd.DataFrame({s.USER_ID: "u", s.ITEM_ID: list(scored), s.SCORE: list(scored.values())})
    served, _ = rerank_list(req, ReleaseSignals.of(TRENDS, scores if with_scores else None), 0.3, 1.0)
    batch = rerank(pd.DataFrame({s.USER_ID: "u", s.ITEM_ID: items, s.SEGMENT: segments, s.BASE_SCORE: base}),
                   TRENDS, 0.3, scores if with_scores else None, 1.0)
    assert [i["item_id"] for i in served] == batch[s.ITEM_ID].tolist()
    assert [i["final_score"] for i in served] == batch[s.FINAL_SCORE].tolist()  # the same path: exact
    assert [i["signal"] for i in served] == batch[s.SIGNAL].tolist()


def test_blend_groups_lists_and_ranks_within_each():
    codes = np.array([0, 0, 1, 1, 1])
    out = blend(codes, np.array([1.0, 2.0, 3.0, 1.0, 2.0]), np.full(5, np.nan), np.full(5, np.nan), 0.3, 1.0)
    assert out.order.tolist() == [1, 0, 2, 4, 3] and out.rank.tolist() == [1, 2, 1, 2, 3]
    assert [SIGNALS[c] for c in out.signal] == ["base"] * 5


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=40))
def test_percentiles_match_pandas_average_ranks(rows):
    from recsys.rank.blend import _pct

    codes = pd.factorize(np.array([c for c, _ in rows]))[0]  # lists interleaved, as a file may hold them
    values = np.array([v for _, v in rows], float)
    expected = pd.Series(values).groupby(codes).rank(method="average").to_numpy() / np.bincount(codes)[codes]
    np.testing.assert_allclose(_pct(codes, values), expected)


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_unknown_segments_are_named_alike_for_the_batch_and_the_service(missing):
    from recsys.rank.blend import unknown_segments

    assert unknown_segments(["up", missing, "x", "x", 7], {"up"}) == {"7": 1, "<null>": 1, "x": 2}
    assert unknown_segments(iter(["up"]), {"up": 0.5}) == {}  # a dict of trends works as the known set
