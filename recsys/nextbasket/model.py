"""LSTMRecommender: the probability that a customer buys a candidate item in the next 7 days.

Unlike the segment forecaster (recsys.forecast.forecaster, which predicts a shop's daily demand),
this model ranks items for one customer. A pointwise classifier is enough for that: for each
(customer, item) pair it reads the weekly purchase sequence of recsys.nextbasket.features through an
LSTM (or GRU) and the repeat-cycle statics through a dense branch, and outputs a sigmoid probability;
a customer's list is their retrieved items sorted by it. Counts are log1p-scaled and normalised with
statistics of the training cut-offs only, inside the model (so a saved model scores raw features).
fit() reads the pairs where they lie, a batch at a time (``PairBatches``), and the statistics are
summed in chunks, so training holds the pairs once and memory stays near their own size.
The recurrent layer keeps Keras' fused-kernel settings (tanh / sigmoid, recurrent_dropout=0, no
unroll), so on a GPU it runs cuDNN; dropout sits between layers instead. ``distribute = "mirrored"``
builds it in a MirroredStrategy scope (pipeline.distribute), so fit() splits each batch over the devices.

    python -c "from recsys.nextbasket.model import LSTMRecommender; m = LSTMRecommender(); \
m.build(16, 14); m.model.summary()"
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import keras
import numpy as np

from pipeline.config import CustomerModelConfig
from pipeline.distribute import strategy_scope
from recsys.nextbasket.callbacks import RecallAtK
from recsys.nextbasket.features import SEQ_CHANNELS, STATIC_FEATURES
from recsys.nextbasket.histories import CustomerModelError

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
RECALL_LOG = "val_recall_at_10"  # the epoch log key of RecallAtK(k=10), read by EarlyStopping


@keras.saving.register_keras_serializable(package="trendrec")
class SignedLog1p(keras.layers.Layer):
    """sign(x) * log1p(|x|): compresses heavy-tailed counts and keeps the sign of trends and due weeks."""

    def call(self, x):
        return keras.ops.sign(x) * keras.ops.log1p(keras.ops.abs(x))


def signed_log1p(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class LSTMRecommender:
    """Keras 3 model of next-week repurchase and discovery for (customer, item) pairs; see the module doc."""

    def __init__(self, config: CustomerModelConfig = CustomerModelConfig()):
        self.config = config
        self.model: keras.Model | None = None
        self.history: dict[str, list[float]] = {}

    def build(self, seq_weeks: int, n_static: int, seq: np.ndarray | None = None,
              static: np.ndarray | None = None) -> keras.Model:
        """Build the network; ``seq`` / ``static`` (training data only) give the normalisation statistics."""
        keras.utils.set_random_seed(self.config.seed)
        with strategy_scope(self.config.distribute):  # "mirrored": fit() splits each batch over the devices
            self.model = self._network(seq_weeks, n_static, seq, static)
        return self.model

    def _network(self, seq_weeks: int, n_static: int, seq: np.ndarray | None,
                 static: np.ndarray | None) -> keras.Model:
        cfg = self.config
        seq_in = keras.Input((seq_weeks, len(SEQ_CHANNELS)), name="sequence")
        static_in = keras.Input((n_static,), name="static")
        x = _normaliser(seq, axis=(0, 1), name="seq_norm")(SignedLog1p(name="seq_log1p")(seq_in))
        rnn = keras.layers.LSTM if cfg.cell == "lstm" else keras.layers.GRU
        x = rnn(cfg.units, activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0,
                unroll=False, use_bias=True, name=cfg.cell)(x)
        x = keras.layers.Dropout(cfg.dropout)(x)
        z = _normaliser(static, axis=(0,), name="static_norm")(SignedLog1p(name="static_log1p")(static_in))
        h = keras.layers.Concatenate()([x, z])
        h = keras.layers.Dense(cfg.dense_units, activation="relu")(h)
        h = keras.layers.Dropout(cfg.dropout)(h)
        h = keras.layers.Dense(cfg.dense_units // 2, activation="relu")(h)
        out = keras.layers.Dense(1, activation="sigmoid", name="buy_prob")(h)
        model = keras.Model([seq_in, static_in], out, name="customer_lstm_recommender")
        model.compile(optimizer=keras.optimizers.AdamW(cfg.learning_rate, weight_decay=cfg.weight_decay),
                      loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
        return model

    def fit(self, train: tuple[np.ndarray, np.ndarray, np.ndarray], val: tuple, run_dir: Path | None = None):
        """Train on (seq, static, label); ``val`` = (seq, static, label, user codes, targets per user code)."""
        cfg = self.config
        seq, static, y = train
        self.build(seq.shape[1], static.shape[1], seq, static)
        callbacks = [RecallAtK(val, k=10, batch_size=cfg.score_batch),
                     keras.callbacks.EarlyStopping(monitor=cfg.monitor, mode="min" if "loss" in cfg.monitor else "max",
                                                   patience=cfg.patience, min_delta=cfg.min_delta,
                                                   restore_best_weights=True)]
        if run_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir), histogram_freq=cfg.histogram_freq))
        hist = self.model.fit(PairBatches((seq, static, y), cfg.batch_size, cfg.seed),
                              validation_data=PairBatches(val[:3], cfg.score_batch), epochs=cfg.epochs,
                              shuffle=False, verbose=0, callbacks=callbacks)
        self.history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        log.info("customer model trained %d epochs: %s; %s by epoch: %s", len(hist.history["loss"]),
                 {k: round(v[-1], 4) for k, v in self.history.items()}, cfg.monitor,
                 [round(v, 5) for v in self.history.get(cfg.monitor, [])])
        return self

    def score(self, seq: np.ndarray, static: np.ndarray) -> np.ndarray:
        """Buy probabilities of the pairs, ``score_batch`` pairs per step (memory bounded by the batch)."""
        if self.model is None:
            raise CustomerModelError("score() before fit() or load()")
        step, n = self.config.score_batch, len(seq)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, step):
            chunk = [seq[start:start + step], static[start:start + step]]
            size = len(chunk[0])
            if size < step:  # pad the last chunk: one input shape, so the predict step is traced once
                chunk = [np.concatenate([c, np.zeros((step - size, *c.shape[1:]), c.dtype)]) for c in chunk]
            out[start:start + size] = np.asarray(self.model.predict_on_batch(chunk)).reshape(-1)[:size]
        return out

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {"config": self.config.to_json(), "seq_channels": list(SEQ_CHANNELS),
                "static_features": list(STATIC_FEATURES), "history": self.history}
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> LSTMRecommender:
        directory = Path(directory)
        try:
            meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
            config = CustomerModelConfig.from_json(meta["config"])
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise CustomerModelError(f"{directory / CONFIG_FILE} is missing or malformed: {exc!r}") from exc
        if meta.get("static_features") != list(STATIC_FEATURES):
            raise CustomerModelError(f"{directory}: saved static features differ from this code's STATIC_FEATURES")
        rec = cls(config)
        rec.model = keras.saving.load_model(directory / MODEL_FILE, safe_mode=True)
        rec.history = meta.get("history", {})
        return rec


class PairBatches(keras.utils.PyDataset):
    """(sequence, static) inputs and labels of ``arrays`` in batches of ``batch_size`` pairs, in a new random
    order every epoch when ``seed`` is given (a seeded NumPy generator: the same order every run).

    fit() on NumPy arrays copies them whole into one tensor first (Keras' array adapter), which doubles
    the memory of a million-pair training set; this reads each batch from the arrays where they lie.
    """

    def __init__(self, arrays: tuple[np.ndarray, np.ndarray, np.ndarray], batch_size: int, seed: int | None = None):
        super().__init__()  # one worker, no processes: batches come in order, reproducibly
        self.arrays, self.batch_size = arrays, int(batch_size)
        self.size = len(arrays[2])
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._order = None if self._rng is None else self._rng.permutation(self.size)

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __getitem__(self, index: int):
        lo, hi = index * self.batch_size, min((index + 1) * self.batch_size, self.size)
        rows = slice(lo, hi) if self._order is None else np.sort(self._order[lo:hi])  # sorted: a cheaper gather
        seq, static, y = (a[rows] for a in self.arrays)
        return (seq, static), y

    def on_epoch_end(self) -> None:
        if self._rng is not None:
            self._order = self._rng.permutation(self.size)


NORM_CHUNK = 1 << 18  # rows per chunk of the normalisation statistics (float64 temporaries of this size only)


def _normaliser(data: np.ndarray | None, axis: tuple[int, ...], name: str) -> keras.layers.Layer:
    """A Normalization layer with the training data's mean / variance (after signed log1p), or identity.

    Summed over chunks of ``NORM_CHUNK`` rows (two passes: the mean, then the squared deviations from it),
    so the float64 copies are a chunk's, not the data's; data of one chunk gives NumPy's own mean and var.
    """
    if data is None:
        return keras.layers.Identity(name=name)
    mean, var = _moments(data, axis)
    return keras.layers.Normalization(mean=mean, variance=np.maximum(var, 1e-6), name=name)


def _moments(data: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of signed_log1p(data) over ``axis`` (which includes axis 0), by chunks."""
    if len(data) <= NORM_CHUNK:
        z = signed_log1p(data.astype(np.float64))
        return z.mean(axis=axis), z.var(axis=axis)
    chunks = range(0, len(data), NORM_CHUNK)
    count = np.prod([data.shape[a] for a in axis])  # values summed into each statistic
    total = sum(signed_log1p(data[i:i + NORM_CHUNK].astype(np.float64)).sum(axis=axis) for i in chunks)
    mean = total / count
    squares = sum(np.square(signed_log1p(data[i:i + NORM_CHUNK].astype(np.float64)) - mean).sum(axis=axis)
                  for i in chunks)
    return mean, squares / count
