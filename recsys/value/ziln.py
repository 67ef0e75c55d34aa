"""ValueLSTM: a customer's spend over the next H days from their weekly history, with a ZILN output.

Most customers spend nothing in a given quarter and the rest spend amounts spread over orders of
magnitude, so a squared-error regression is pulled by a few whales and predicts small positive
amounts for everyone. The zero-inflated lognormal (ZILN, Wang, Liu & Miao 2019) models both parts:
one logit for P(spend > 0) and a lognormal (mu, sigma) for the amount when positive. The expected
value is p·exp(mu + sigma²/2); quantiles come from the mixture (0 below 1 - p).

The network reads the weekly sequence of recsys.value.features through an LSTM with
Keras' fused-kernel settings (tanh / sigmoid, recurrent_dropout=0, no unroll: cuDNN on a GPU),
dropout after it, the RFM statics through a Normalization layer holding the training statistics,
and one dense layer. AdamW, EarlyStopping on a customer split (restore_best_weights), TensorBoard
with the run's HParams, ``keras.utils.set_random_seed``. Saved as .keras, loaded with safe_mode=True.
``distribute = "mirrored"`` builds it in a MirroredStrategy scope (pipeline.distribute).

    python -c "from recsys.value.ziln import ValueLSTM; m = ValueLSTM(); m.build(26, 5, 12).summary()"
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from scipy import special

from pipeline.config import ValueConfig
from pipeline.distribute import strategy_scope
from recsys.value.data import ValueModelError

log = logging.getLogger(__name__)

MODEL_FILE = "lstm.keras"
PREDICT_BATCH = 8192  # customers per predict step
SIGMA_RANGE = (1e-3, 4.0)  # sigma is clipped: exp(sigma²/2) beyond 4 is a numerical accident, not a forecast


@keras.saving.register_keras_serializable(package="trendrec")
def ziln_loss(y_true, y_pred):
    """Negative log-likelihood of the zero-inflated lognormal; ``y_pred`` = (logit, mu, raw sigma)."""
    y = keras.ops.reshape(keras.ops.cast(y_true, "float32"), (-1,))
    positive = keras.ops.cast(y > 0, "float32")
    logit, mu = y_pred[:, 0], y_pred[:, 1]
    sigma = keras.ops.clip(keras.ops.softplus(y_pred[:, 2]), *SIGMA_RANGE)
    bce = keras.ops.binary_crossentropy(positive, logit, from_logits=True)
    log_y = keras.ops.log(keras.ops.where(positive > 0, y, keras.ops.ones_like(y)))
    log_pdf = -log_y - keras.ops.log(sigma) - 0.5 * np.log(2 * np.pi) - keras.ops.square(log_y - mu) / (2 * keras.ops.square(sigma))
    return bce - positive * log_pdf


def ziln_moments(out: np.ndarray, quantiles: tuple[float, ...] = (0.1, 0.9)) -> tuple[np.ndarray, ...]:
    """(p, expected value, *quantiles) of the ZILN parameters ``out`` = (logit, mu, raw sigma) rows."""
    out = np.asarray(out, dtype=np.float64)
    p = special.expit(out[:, 0])
    mu = out[:, 1]
    sigma = np.clip(np.logaddexp(0.0, out[:, 2]), *SIGMA_RANGE)
    mean = p * np.exp(np.minimum(mu + sigma ** 2 / 2, 50.0))
    qs = []
    for q in quantiles:  # P(Y <= y) = (1 - p) + p * Phi((log y - mu) / sigma) for y > 0
        inner = np.clip((q - (1 - p)) / np.maximum(p, 1e-12), 1e-12, 1 - 1e-12)
        qs.append(np.where(q <= 1 - p, 0.0, np.exp(np.minimum(mu + sigma * special.ndtri(inner), 50.0))))
    return (p, mean, *qs)


class ValueLSTM:
    """Keras 3 ZILN model of a customer's next-H-days spend; see the module doc."""

    def __init__(self, config: ValueConfig = ValueConfig()):
        self.config = config
        self.model: keras.Model | None = None
        self.history: dict[str, list[float]] = {}
        self.cap = float("inf")  # the largest spend of a training window: no forecast goes above it

    def build(self, seq_weeks: int, n_channels: int, n_static: int, static: np.ndarray | None = None,
              y: np.ndarray | None = None) -> keras.Model:
        """The network; ``static`` and ``y`` (training data only) give the normalisation and output start."""
        keras.utils.set_random_seed(self.config.seed)
        with strategy_scope(self.config.distribute):  # "mirrored": fit() splits each batch over the devices
            self.model = self._network(seq_weeks, n_channels, n_static, static, y)
        return self.model

    def _network(self, seq_weeks: int, n_channels: int, n_static: int, static: np.ndarray | None,
                 y: np.ndarray | None) -> keras.Model:
        cfg = self.config
        seq_in = keras.Input((seq_weeks, n_channels), name="sequence")
        static_in = keras.Input((n_static,), name="static")
        x = keras.layers.LSTM(cfg.units, activation="tanh", recurrent_activation="sigmoid", recurrent_dropout=0.0,
                              unroll=False, name="lstm")(seq_in)
        x = keras.layers.Dropout(cfg.dropout)(x)
        z = _normaliser(static)(static_in)
        h = keras.layers.Concatenate()([x, z])
        h = keras.layers.Dense(cfg.dense_units, activation="relu")(h)
        h = keras.layers.Dropout(cfg.dropout)(h)
        out = keras.layers.Dense(3, name="ziln", bias_initializer=keras.initializers.Constant(_start(y)))(h)
        model = keras.Model([seq_in, static_in], out, name="customer_value_lstm")
        model.compile(optimizer=keras.optimizers.AdamW(cfg.learning_rate, weight_decay=cfg.weight_decay), loss=ziln_loss)
        return model

    def fit(self, seq: np.ndarray, static: np.ndarray, y: np.ndarray, groups: np.ndarray,
            run_dir: Path | None = None) -> ValueLSTM:
        """Train on (seq, static, spend); customers (``groups``) of a ``val_share`` draw stop it early."""
        cfg = self.config
        val = _split(groups, cfg.val_share, cfg.seed)
        self.build(seq.shape[1], seq.shape[2], static.shape[1], static[~val], y[~val])
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                   restore_best_weights=True)]
        if run_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir), histogram_freq=cfg.histogram_freq))
        hist = self.model.fit([seq[~val], static[~val]], y[~val], validation_data=([seq[val], static[val]], y[val]),
                              epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=0,
                              callbacks=callbacks)
        self.history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.cap = float(np.max(y)) if len(y) else float("inf")
        log.info("value LSTM: %d epochs, best val_loss %.4f", len(self.history["loss"]), min(self.history["val_loss"]))
        return self

    def predict(self, seq: np.ndarray, static: np.ndarray) -> tuple[np.ndarray, ...]:
        """(p, expected spend, p10, p90) per customer, each at most ``cap``.

        exp(mu + sigma²/2) explodes for the odd customer a short or unlucky fit gives a large sigma
        (a 2-epoch fit on a 10 % sample forecast 775 times the actual total): the training windows'
        largest spend bounds every figure.
        """
        if self.model is None:
            raise ValueModelError("ValueLSTM.predict() before fit() or load()")
        p, *values = ziln_moments(self._raw(seq, static))
        return (p, *(np.minimum(v, self.cap) for v in values))

    def _raw(self, seq: np.ndarray, static: np.ndarray) -> np.ndarray:
        """The network's outputs, PREDICT_BATCH rows per step, the last step padded: every step has one
        shape, so a customer's forecast does not depend on the batch or shard that scored it (the CPU
        kernels round a row differently with the number of rows around it)."""
        out = np.empty((len(seq), 3), dtype=np.float32)
        for start in range(0, len(seq), PREDICT_BATCH):
            chunk = [seq[start:start + PREDICT_BATCH], static[start:start + PREDICT_BATCH]]
            size = len(chunk[0])
            chunk = [np.concatenate([c, np.zeros((PREDICT_BATCH - size, *c.shape[1:]), c.dtype)]) for c in chunk]
            out[start:start + size] = np.asarray(self.model.predict_on_batch(chunk))[:size]
        return out

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        meta = {"history": self.history, "cap": self.cap}
        (directory / "lstm.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path, config: ValueConfig) -> ValueLSTM:
        model = cls(config)
        model.model = keras.saving.load_model(Path(directory) / MODEL_FILE, safe_mode=True)
        meta = json.loads((Path(directory) / "lstm.json").read_text(encoding="utf-8"))
        model.history, model.cap = meta.get("history", {}), float(meta.get("cap", "inf"))
        return model


def _normaliser(static: np.ndarray | None) -> keras.layers.Layer:
    if static is None:
        return keras.layers.Identity(name="static_norm")
    return keras.layers.Normalization(mean=static.mean(axis=0), variance=np.maximum(static.var(axis=0), 1e-6),
                                      name="static_norm")


def _start(y: np.ndarray | None) -> list[float]:
    """Output biases at the training data's zero share and log-spend mean / spread: a sane first epoch."""
    if y is None or not np.any(y > 0):
        return [0.0, 0.0, 1.0]
    positive = y[y > 0]
    p = float(np.clip(np.mean(y > 0), 0.01, 0.99))
    sigma = float(np.clip(np.std(np.log(positive)), 0.2, 3.0))
    return [float(special.logit(p)), float(np.mean(np.log(positive))), float(np.log(np.expm1(sigma)))]


def _split(groups: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the rows of a seeded ``share`` of the distinct groups (customers): the early-stopping set."""
    distinct = np.unique(groups)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(distinct, size=max(1, round(share * len(distinct))), replace=False)
    return pd.Index(chosen).get_indexer(groups) >= 0  # hashed: np.isin compares object arrays pair by pair
