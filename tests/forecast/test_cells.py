"""The peephole LSTM cell: output shapes, one step worked out by hand, and a safe-mode save/load."""

import dataclasses
import math

import keras
import numpy as np

from recsys.forecast.nn.cells import PeepholeLSTMCell
from recsys.forecast.forecaster import build_model
from recsys.forecast.nn.windows import CALENDAR_FEATURES, HISTORY_FEATURES
from tests.conftest import SMALL_MODEL


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_peephole_layer_shapes_with_and_without_sequences():
    x = np.ones((2, 5, 3), "float32")
    assert keras.layers.RNN(PeepholeLSTMCell(4))(x).shape == (2, 4)
    assert keras.layers.RNN(PeepholeLSTMCell(4), return_sequences=True)(x).shape == (2, 5, 4)
    cell = PeepholeLSTMCell(4)
    cell.build((None, 3))
    assert [tuple(v.shape) for v in cell.weights] == [(3, 16), (4, 16), (16,), (3, 4)]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.bias)[4:8], 1.0)  # unit forget bias


def test_one_step_matches_the_peephole_equations_by_hand():
    """units 1, input 1: x = 1, h_prev = 0.5, c_prev = 2, no recurrent kernel, no bias."""
    cell = PeepholeLSTMCell(1)
    cell.build((None, 1))
    cell.kernel.assign(np.array([[0.1, 0.2, 0.3, 0.4]], "float32"))  # gates i, f, c, o
    cell.recurrent_kernel.assign(np.zeros((1, 4), "float32"))
    cell.bias.assign(np.zeros(4, "float32"))
    cell.peephole.assign(np.array([[0.5], [-0.25], [1.0]], "float32"))  # p_i, p_f, p_o
    h, (h_state, c) = cell(np.array([[1.0]], "float32"), [np.array([[0.5]], "float32"),
                                                          np.array([[2.0]], "float32")])
    i = _sigmoid(0.1 + 0.5 * 2.0)  # sigmoid(1.1)
    f = _sigmoid(0.2 - 0.25 * 2.0)  # sigmoid(-0.3)
    c_new = f * 2.0 + i * math.tanh(0.3)
    o = _sigmoid(0.4 + 1.0 * c_new)  # the output gate peeks at the new state
    assert abs(float(c[0, 0]) - c_new) < 1e-6
    assert abs(float(h[0, 0]) - o * math.tanh(c_new)) < 1e-6
    assert float(h_state[0, 0]) == float(h[0, 0])


def test_peephole_model_saves_and_loads_in_safe_mode_with_identical_predictions(tmp_path):
    cfg = dataclasses.replace(SMALL_MODEL, cell="peephole", layers=2)
    model = build_model(cfg, n_segments=3)
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert [type(layer.cell) for layer in rnns] == [PeepholeLSTMCell] * 2 and not rnns[0].unroll
    assert rnns[0].cell.recurrent_dropout == 0 and rnns[0].cell.activation.__name__ == "tanh"
    for layer in rnns:  # non-zero peepholes, so a load that dropped them would show
        layer.cell.peephole.assign(np.full((3, cfg.units), 0.3, "float32"))
    rng = np.random.default_rng(0)
    inputs = {"history": rng.normal(size=(4, cfg.lookback, len(HISTORY_FEATURES))).astype("float32"),
              "future": rng.normal(size=(4, cfg.horizon, len(CALENDAR_FEATURES))).astype("float32"),
              "segment": np.array([0, 1, 2, 0], "int32")}
    model.optimizer.build(model.trainable_variables)  # as after fit(): the optimizer state is saved too
    model.save(tmp_path / "p.keras")
    loaded = keras.saving.load_model(tmp_path / "p.keras", safe_mode=True)
    assert type(loaded.get_layer("peephole_0").cell) is PeepholeLSTMCell
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
