"""Settings and column names of the customer model (issue #16), kept here until the merge.

``CustomerModelConfig`` will move into ``pipeline/config.py`` (as ``[customers]`` in the TOML file)
when this branch merges; until then it is a frozen dataclass of its own, passed explicitly and saved
as JSON next to every model, like the forecaster's ``ModelConfig``.

    python -c "from recsys.customers.config import CustomerModelConfig; print(CustomerModelConfig())"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.errors import TrendrecError

# --- columns of the history, candidate and score tables (move to pipeline/schemas.py at merge) ---
WEEK = "week"  # 0 = the 7 days just before the cut-off, 1 = the 7 days before those, ...
PURCHASES = "purchases"  # purchase lines (quantity > 0) in the week
SCORE = "score"  # the model's probability that the customer buys the item in the next 7 days
LABEL = "label"  # 1 when the customer bought the item in the 7 days after a training cut-off
SOURCE = "source"  # which candidate generator proposed the item (see SOURCES)
CAND_RANK = "cand_rank"  # 0-based position of the item in the customer's candidate list

CELLS = ("lstm", "gru")  # both run the fused cuDNN kernel on a GPU with the settings below


class CustomerModelError(TrendrecError):
    """The customer model's inputs or saved files are not what it expects."""


@dataclass(frozen=True)
class CustomerModelConfig:
    lookback_weeks: int = 52  # weeks of history read before the cut-off (features and candidates)
    seq_weeks: int = 8  # most recent weeks the recurrent layer reads (the statics cover the lookback)
    batch_customers: int = 20_000  # customers per DuckDB query (hash buckets): bounds memory
    n_candidates: int = 100  # candidates per customer when the shop gives none
    recent_weeks: int = 4  # window of "recent" popularity and growth (vs the 4 weeks before)
    active_days: int = 28  # a training customer bought in these days before the training cut-off
    train_weeks: int = 8  # weekly training cut-offs before the prediction cut-off (the last validates)
    train_negatives: int = 100  # non-bought candidates kept per training customer-week (>= n_candidates: all)
    cell: str = "lstm"  # lstm | gru
    units: int = 16  # recurrent units
    dense_units: int = 64  # units of the dense layers after the recurrent one
    dropout: float = 0.2  # dropout between layers (recurrent_dropout stays 0 for cuDNN)
    epochs: int = 8  # upper bound; early stopping usually ends sooner
    batch_size: int = 512  # training pairs per step
    patience: int = 2  # early-stopping patience in epochs
    monitor: str = "val_recall_at_10"  # early-stopping metric (mode max), or "val_loss"
    learning_rate: float = 3e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    score_batch: int = 16_384  # pairs per predict step when scoring
    top_k: int = 10  # rows per customer returned by the ranking function
    histogram_freq: int = 1  # TensorBoard weight histograms every N epochs; 0 = none
    log_dir: str = ""  # TensorBoard runs go to <log_dir>/customer-model-<cutoff>; "" = the store's runs/ or none
    seed: int = 42  # keras.utils.set_random_seed and negative sampling

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise CustomerModelError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if not 1 <= self.seq_weeks <= self.lookback_weeks:
            raise CustomerModelError(f"seq_weeks must be in [1, lookback_weeks], got {self.seq_weeks}")
        if 2 * self.recent_weeks > self.lookback_weeks or self.train_weeks < 2:
            raise CustomerModelError("need 2 * recent_weeks <= lookback_weeks and train_weeks >= 2")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> CustomerModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise CustomerModelError(f"unknown customer model settings {sorted(unknown)}")
        return cls(**values)


DEFAULT_CONFIG = CustomerModelConfig()  # the defaults above, shared (frozen) by every function's default argument
