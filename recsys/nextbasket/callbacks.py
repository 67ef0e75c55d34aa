"""Ranking metrics during training: validation Recall@k per epoch, for EarlyStopping and TensorBoard.

The loss and AUC judge pairs one at a time; what the shop sees is each customer's top k. This callback
scores the validation week's full candidate lists after every epoch and writes ``val_recall_at_<k>``
into the epoch logs, where EarlyStopping (listed after it) and TensorBoard pick it up.

    python -c "import numpy as np; from recsys.nextbasket.callbacks import recall_at_k; \
print(recall_at_k(np.array([0, 0, 1]), np.array([.9, .1, .5]), np.array([1, 0, 1]), np.array([2, 1]), 1))"
"""

from __future__ import annotations

import keras
import numpy as np


def recall_at_k(groups: np.ndarray, scores: np.ndarray, labels: np.ndarray, n_targets: np.ndarray, k: int) -> float:
    """Mean over groups (customers, codes 0..G-1) of hits in the top k by score / targets of the group.

    ``n_targets[g]`` counts every item the customer bought, also those outside the candidates.
    """
    order = np.lexsort((-scores, groups))
    g = groups[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    pos = np.arange(len(g)) - np.repeat(start, np.diff(np.r_[start, len(g)]))
    hits = np.bincount(g[pos < k], weights=labels[order][pos < k], minlength=len(n_targets))
    keep = n_targets > 0
    return float(np.mean(hits[keep] / n_targets[keep])) if keep.any() else float("nan")


class RecallAtK(keras.callbacks.Callback):
    """Adds ``val_recall_at_<k>`` to the epoch logs; ``val`` = (seq, static, label, groups, n_targets)."""

    def __init__(self, val: tuple, k: int = 10, batch_size: int = 16_384):
        super().__init__()
        self.val, self.k, self.batch_size = val, k, batch_size

    def on_epoch_end(self, epoch, logs=None):
        seq, static, labels, groups, n_targets = self.val
        scores = self.model.predict([seq, static], batch_size=self.batch_size, verbose=0).reshape(-1)
        value = recall_at_k(groups, scores, labels, n_targets, self.k)
        if logs is not None:
            logs[f"val_recall_at_{self.k}"] = value
