"""RecallAtK (recsys.nextbasket.callbacks) reports the next-basket protocol's Recall@10 on the same lists.

    .venv/bin/python -m pytest tests/nextbasket/test_callbacks.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.evaluation.metrics import score_users, summarise
from recsys.nextbasket.callbacks import RecallAtK, mean_recall_at_k


class FixedScores:
    """Stands in for the Keras model: the callback only calls predict()."""

    def __init__(self, scores: np.ndarray):
        self.scores = scores

    def predict(self, inputs, batch_size=None, verbose=0):
        return self.scores.reshape(-1, 1)


def candidate_lists(seed: int = 7, users: int = 40) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidates (user code, item, score, label) of 5-30 items each, and targets that include items
    outside the candidates; user 0 has no target, user 1 no candidate."""
    rng = np.random.default_rng(seed)
    cands, targets = [], []
    for g in range(users):
        n = 0 if g == 1 else int(rng.integers(5, 31))
        items = [f"i{j}" for j in rng.choice(60, size=n, replace=False)]
        cands += [(g, item, float(rng.random())) for item in items]
        if g == 0:
            continue
        bought = set(rng.choice(items, size=min(n, int(rng.integers(1, 6))), replace=False)) if n else set()
        bought |= {f"x{j}" for j in range(int(rng.integers(0 if bought else 1, 3)))}  # never a candidate
        targets += [(f"u{g:02d}", item) for item in sorted(bought)]
    cand = pd.DataFrame(cands, columns=["code", s.ITEM_ID, "score"])
    tgt = pd.DataFrame(targets, columns=[s.USER_ID, s.ITEM_ID])
    cand[s.USER_ID] = cand["code"].map(lambda g: f"u{g:02d}")
    cand["label"] = cand.set_index([s.USER_ID, s.ITEM_ID]).index.isin(tgt.set_index([s.USER_ID, s.ITEM_ID]).index)
    return cand, tgt


def test_callback_value_equals_the_protocols_recall_at_10():
    cand, tgt = candidate_lists()
    users = 40
    n_targets = np.bincount(tgt[s.USER_ID].str[1:].astype(int), minlength=users)
    val = (None, None, cand["label"].to_numpy(int), cand["code"].to_numpy(), n_targets)
    callback = RecallAtK(val, k=10)
    callback.set_model(FixedScores(cand["score"].to_numpy()))
    logs: dict = {}
    callback.on_epoch_end(0, logs)

    # the protocol's input: the same lists as (user, item, rank), ranked by pandas, not by the metrics module
    ranked = cand.sort_values([s.USER_ID, "score"], ascending=[True, False])
    ranked[s.RANK] = ranked.groupby(s.USER_ID).cumcount() + 1
    protocol = summarise(score_users(ranked, tgt, tgt.iloc[:0], k=10), k=10)
    assert protocol["users"] == users - 1  # user 0 has no target; user 1 (no list) scores 0
    assert 0 < protocol["recall@10"] < 1
    # the per-customer figures are the same function's; only the final mean is NumPy's here, pandas' there
    assert logs["val_recall_at_10"] == pytest.approx(protocol["recall@10"], rel=1e-12, abs=0)


def test_mean_recall_over_no_target_is_nan():
    value = mean_recall_at_k(np.array([0, 0]), np.array([0.5, 0.2]), np.array([0, 0]), np.array([0]), 10)
    assert np.isnan(value)
