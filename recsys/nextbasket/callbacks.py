"""Ranking metrics during training: validation Recall@k per epoch, for EarlyStopping and TensorBoard.

The loss and AUC judge pairs one at a time; what the shop sees is each customer's top k. This callback
scores the validation week's full candidate lists after every epoch and writes ``val_recall_at_<k>``
into the epoch logs, where EarlyStopping (listed after it) and TensorBoard pick it up. Recall@k itself
is recsys.evaluation.metrics.recall_at_k, the definition the next-basket protocol scores with, so the
epoch figure and the protocol's Recall@k cannot drift apart.

    python -c "import numpy as np; from recsys.nextbasket.callbacks import mean_recall_at_k; \
print(mean_recall_at_k(np.array([0, 0, 1]), np.array([.9, .1, .5]), np.array([1, 0, 1]), np.array([2, 1]), 1))"
"""

from __future__ import annotations

import keras
import numpy as np

from recsys.evaluation.metrics import ranks_by_score, recall_at_k


def mean_recall_at_k(groups: np.ndarray, scores: np.ndarray, labels: np.ndarray, n_targets: np.ndarray,
                     k: int) -> float:
    """Mean over groups (customers, codes 0..G-1) with a target of Recall@k of the lists ranked by score.

    ``n_targets[g]`` counts every item the customer bought, also those outside the retrieved items.
    """
    per_group = recall_at_k(groups, ranks_by_score(groups, scores), labels, n_targets, k)
    defined = per_group[~np.isnan(per_group)]  # customers without a target have no recall
    return float(np.mean(defined)) if defined.size else float("nan")


class RecallAtK(keras.callbacks.Callback):
    """Adds ``val_recall_at_<k>`` to the epoch logs; ``val`` = (seq, static, label, groups, n_targets)."""

    def __init__(self, val: tuple, k: int = 10, batch_size: int = 16_384):
        super().__init__()
        self.val, self.k, self.batch_size = val, k, batch_size

    def on_epoch_end(self, epoch, logs=None):
        seq, static, labels, groups, n_targets = self.val
        scores = self.model.predict([seq, static], batch_size=self.batch_size, verbose=0).reshape(-1)
        value = mean_recall_at_k(groups, scores, labels, n_targets, self.k)
        if logs is not None:
            logs[f"val_recall_at_{self.k}"] = value
