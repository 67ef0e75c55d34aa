"""A peephole LSTM cell (Gers & Schmidhuber 2000) for ``model.cell = "peephole"``.

In a plain LSTM the gates see only the input and the previous output h; with peepholes the input
and forget gates also see the previous cell state c, and the output gate the new one. The gates can
then time things by the memory itself (e.g. "seven days since the last peak"), which is why
peepholes were proposed for precise timing. Keras has no such cell, so this is a small
``keras.layers.Layer`` with a ``state_size``, wrapped in ``keras.layers.RNN``.

Not fused on GPU: cuDNN only implements the plain LSTM/GRU equations, so this cell runs Keras's
generic RNN loop (one step per time step) and on a GPU should be expected to be much slower than
``cell = "lstm"``. On CPU, where no fused kernel exists anyway, it costs about as much as the LSTM
(figures: benchmarks/README.md).

    python -c "import keras; from recsys.forecast.nn.cells import PeepholeLSTMCell; \\
print(keras.layers.RNN(PeepholeLSTMCell(4))(keras.ops.ones((2, 5, 3))).shape)"
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="trendrec")
class PeepholeLSTMCell(keras.layers.Layer):
    """One LSTM step with diagonal peephole weights from the cell state to the three gates.

        i = sigmoid(x W_i + h U_i + b_i + p_i * c_prev)      input gate
        f = sigmoid(x W_f + h U_f + b_f + p_f * c_prev)      forget gate (bias starts at 1)
        c = f * c_prev + i * tanh(x W_c + h U_c + b_c)
        o = sigmoid(x W_o + h U_o + b_o + p_o * c)           output gate peeks at the *new* state
        h = o * tanh(c)

    Kernels are stored as in keras.layers.LSTMCell (gate order i, f, c, o along the last axis).
    ``activation``, ``recurrent_activation`` and ``recurrent_dropout`` are fixed attributes so the
    same settings checks apply as for the built-in cells.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units
        self.activation = keras.activations.tanh
        self.recurrent_activation = keras.activations.sigmoid
        self.recurrent_dropout = 0.0

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * u), initializer="glorot_uniform",
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), initializer="orthogonal",
                                                name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * u,), initializer=_UnitForgetBias(u), name="bias")
        self.peephole = self.add_weight(shape=(3, u), initializer="zeros", name="peephole")

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + self.peephole[0] * c_prev)
        f = self.recurrent_activation(z_f + self.peephole[1] * c_prev)
        c = f * c_prev + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + self.peephole[2] * c)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="trendrec")
class _UnitForgetBias(keras.initializers.Initializer):
    """Zeros except 1 for the forget gate, as LSTMCell(unit_forget_bias=True): remember by default."""

    def __init__(self, units: int):
        self.units = units

    def __call__(self, shape, dtype=None):
        u = self.units
        return ops.concatenate([ops.zeros((u,), dtype), ops.ones((u,), dtype), ops.zeros((2 * u,), dtype)])

    def get_config(self):
        return {"units": self.units}
