"""LSTMRecommender: fused-kernel settings, safe_mode save/load round trip, Recall@k helper, and the training
data path that holds the pairs once (chunked statistics, batches read in place, cut-offs stacked as freed)."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from pipeline.config import ConfigError, CustomerModelConfig
from recsys.nextbasket.callbacks import mean_recall_at_k
from recsys.nextbasket.features import SEQ_CHANNELS, STATIC_FEATURES
from recsys.nextbasket.histories import CustomerModelError
from recsys.nextbasket import model as model_module
from recsys.nextbasket.model import CONFIG_FILE, MODEL_FILE, LSTMRecommender, PairBatches
from recsys.nextbasket.recommend import _stack

TINY = CustomerModelConfig(lookback_weeks=8, seq_weeks=4, recent_weeks=2, units=4, dense_units=8, epochs=1,
                           batch_size=32, train_weeks=2)


def _data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    seq = rng.poisson(1.0, (n, TINY.seq_weeks, len(SEQ_CHANNELS))).astype(np.float32)
    static = rng.normal(size=(n, len(STATIC_FEATURES))).astype(np.float32)
    y = (seq[:, -1, 0] > 1).astype(np.float32)
    return seq, static, y


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_layer_keeps_fused_cudnn_settings(cell):
    rec = LSTMRecommender(CustomerModelConfig(cell=cell, units=4))
    model = rec.build(4, len(STATIC_FEATURES))
    layer = model.get_layer(cell)
    conf = layer.get_config()
    assert isinstance(layer, keras.layers.LSTM if cell == "lstm" else keras.layers.GRU)
    assert conf["activation"] == "tanh" and conf["recurrent_activation"] == "sigmoid"
    assert conf["recurrent_dropout"] == 0 and conf["unroll"] is False and conf["use_bias"] is True
    if cell == "gru":
        assert conf["reset_after"] is True  # cuDNN's GRU variant
    assert any(isinstance(x, keras.layers.Dropout) for x in model.layers)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)


def test_bad_cell_is_refused():
    with pytest.raises(ConfigError, match="cell"):
        CustomerModelConfig(cell="peephole")
    with pytest.raises(ConfigError, match="min_delta"):
        CustomerModelConfig(min_delta=-0.001)


def test_early_stopping_counts_only_moves_larger_than_min_delta():
    seq, static, y = _data(300)
    groups = np.arange(300) // 10
    val = (seq, static, y, groups, np.bincount(groups, weights=y).astype(int) + 1)
    # Recall@10 lies in [0, 1]: no epoch can beat the first by more than 1, so patience 1 stops after the second
    cfg = dataclasses.replace(TINY, epochs=4, patience=1, histogram_freq=0)
    stopped = LSTMRecommender(dataclasses.replace(cfg, min_delta=1.0)).fit((seq, static, y), val)
    assert len(stopped.history["loss"]) == 2
    patient = LSTMRecommender(dataclasses.replace(cfg, patience=4)).fit((seq, static, y), val)
    assert len(patient.history["loss"]) == 4


@pytest.mark.slow
def test_save_load_round_trip_with_safe_mode(tmp_path):
    seq, static, y = _data(300)
    groups = np.arange(300) // 10
    n_targets = np.bincount(groups, weights=y).astype(int) + 1
    rec = LSTMRecommender(TINY).fit((seq, static, y), (seq, static, y, groups, n_targets), run_dir=tmp_path / "tb")
    assert "val_recall_at_10" in rec.history and "val_auc" in rec.history
    assert any((tmp_path / "tb").rglob("*tfevents*"))  # TensorBoard wrote its logs
    rec.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / CONFIG_FILE).read_text())["config"]["units"] == 4
    loaded = LSTMRecommender.load(tmp_path / "m")  # keras.saving.load_model(..., safe_mode=True)
    assert loaded.config == TINY
    np.testing.assert_allclose(loaded.score(seq, static), rec.score(seq, static), rtol=1e-5, atol=1e-6)
    (tmp_path / "m" / MODEL_FILE).unlink()
    (tmp_path / "m" / CONFIG_FILE).write_text("{}")
    with pytest.raises(CustomerModelError, match="malformed"):
        LSTMRecommender.load(tmp_path / "m")


def test_recall_at_k_by_hand():
    groups = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.7])
    labels = np.array([0, 1, 1, 1, 0])
    # user 0: top 2 = (0.9 miss, 0.8 hit) -> 1 of 3 targets; user 1: top 2 holds its one hit -> 1 of 1
    assert mean_recall_at_k(groups, scores, labels, np.array([3, 1]), 2) == pytest.approx((1 / 3 + 1) / 2)


@pytest.mark.parametrize("shape,axis", [((1000, 4, 5), (0, 1)), ((999, 18), (0,))])
def test_normalisation_statistics_by_chunks_equal_numpys_over_the_whole(monkeypatch, shape, axis):
    rng = np.random.default_rng(3)
    data = (rng.poisson(2.0, shape) * rng.choice([-1, 1], shape) * 10.0 ** rng.integers(0, 4, shape)).astype(np.float32)
    z = model_module.signed_log1p(data.astype(np.float64))
    monkeypatch.setattr(model_module, "NORM_CHUNK", 128)  # 8 chunks, the last one partial
    mean, var = model_module._moments(data, axis)
    np.testing.assert_allclose(mean, z.mean(axis=axis), rtol=1e-12)
    np.testing.assert_allclose(var, z.var(axis=axis), rtol=1e-10)
    monkeypatch.setattr(model_module, "NORM_CHUNK", len(data))  # one chunk: NumPy's own figures, to the bit
    one = model_module._moments(data, axis)
    assert np.array_equal(one[0], z.mean(axis=axis)) and np.array_equal(one[1], z.var(axis=axis))


def test_pair_batches_give_every_pair_once_an_epoch_in_a_seeded_order():
    seq, static, y = _data(1000)
    y = np.arange(1000, dtype=np.float32)  # the label names the row
    batches = PairBatches((seq, static, y), 64, seed=7)
    assert len(batches) == 16  # 15 full batches and one of 40

    def epoch(b):
        rows = [b[i] for i in range(len(b))]
        for (s_, st), lab in rows:  # every input row travels with its label
            idx = lab.astype(int)
            assert np.array_equal(s_, seq[idx]) and np.array_equal(st, static[idx])
        b.on_epoch_end()
        return [lab.astype(int) for _, lab in rows]

    first, second = epoch(batches), epoch(batches)
    for order in (first, second):
        assert sorted(np.concatenate(order).tolist()) == list(range(1000))
        assert [len(o) for o in order] == [64] * 15 + [40]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # a new order every epoch
    assert all(np.array_equal(a, b) for a, b in zip(first, epoch(PairBatches((seq, static, y), 64, seed=7))))
    plain = epoch(PairBatches((seq, static, y), 300))  # no seed: the rows in their order (validation)
    assert np.array_equal(np.concatenate(plain), np.arange(1000))


def test_training_cut_offs_are_stacked_as_they_are_let_go():
    parts = [tuple(np.random.default_rng(k).normal(size=(n, *tail)).astype(np.float32) for tail in ((4, 5), (18,), ()))
             + (np.arange(n), np.ones(3)) for k, n in enumerate((5, 0, 7))]
    expected = [np.concatenate([p[i] for p in parts]) for i in range(3)]
    stacked = _stack(parts)
    assert parts == []  # each cut-off's arrays were released as they were copied
    for got, want in zip(stacked, expected):
        assert got.dtype == want.dtype and np.array_equal(got, want)
