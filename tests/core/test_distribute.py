"""The three families' networks train under tf.distribute.MirroredStrategy with the same shapes as on one device.

The strategy runs over two logical CPU devices, set up in a subprocess: a logical device
configuration is fixed for the life of a TensorFlow process, so it must not reach the other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.distribute import strategy_scope
from tests.conftest import ROOT

SCRIPT = r'''
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from pipeline.config import CustomerModelConfig, ModelConfig, ValueConfig
from recsys.forecast.nn import windows as w
from recsys.forecast.nn.network import build_model
from recsys.nextbasket.features import SEQ_CHANNELS, STATIC_FEATURES
from recsys.nextbasket.model import LSTMRecommender
from recsys.value.ziln import ValueLSTM

rng = np.random.default_rng(0)
n = 160  # every first batch full: Keras 3 cannot trace an evaluation whose first batch splits unevenly


def described(model, loss):
    return {"replicas": model.distribute_strategy.num_replicas_in_sync, "finite": bool(np.isfinite(loss[-1])),
            "shapes": [list(v.shape) for v in model.weights]}  # auto names (dense_3) count up per process


out = {}
for distribute in ("none", "mirrored"):
    seq, static = rng.random((n, 4, len(SEQ_CHANNELS))), rng.random((n, len(STATIC_FEATURES)))
    label = (np.arange(n) % 3 == 0).astype("float32")
    groups = np.arange(n) // 8
    targets = np.bincount(groups, weights=label).astype(int)
    rec = LSTMRecommender(CustomerModelConfig(seq_weeks=4, units=4, dense_units=8, epochs=1, batch_size=16,
                                              histogram_freq=0, distribute=distribute))
    rec.fit((seq, static, label), (seq, static, label, groups, targets))
    value = ValueLSTM(ValueConfig(units=4, dense_units=8, epochs=1, batch_size=16, distribute=distribute))
    spend = np.where(rng.random(n) < 0.5, 0.0, rng.gamma(2.0, 10.0, n))
    value.fit(rng.random((n, 6, 3)), rng.random((n, 5)), spend, np.arange(n))
    cfg = ModelConfig(lookback=28, horizon=7, units=4, epochs=1, batch_size=16, base_seasons=4, distribute=distribute)
    forecaster = build_model(cfg, n_segments=3)
    x = {"history": rng.random((n, 28, len(w.HISTORY_FEATURES))), "future": rng.random((n, 7, len(w.CALENDAR_FEATURES))),
         "segment": rng.integers(0, 3, n).astype("int32")}
    fit = forecaster.fit(x, rng.random((n, 7)), epochs=1, batch_size=16, verbose=0)
    out[distribute] = {"nextbasket": described(rec.model, rec.history["loss"]),
                       "value": described(value.model, value.history["loss"]),
                       "forecast": described(forecaster, fit.history["loss"])}
print(json.dumps(out))
'''


@pytest.mark.slow
def test_mirrored_strategy_over_two_devices_trains_the_same_shapes_in_every_family():
    env = os.environ | {"PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for family in ("nextbasket", "value", "forecast"):
        one, mirrored = out["none"][family], out["mirrored"][family]
        assert one["replicas"] == 1 and mirrored["replicas"] == 2, family
        assert mirrored["shapes"] == one["shapes"] and mirrored["finite"] and one["finite"], family


def test_distribute_is_checked_for_every_family(tmp_path):
    assert type(strategy_scope("none")).__name__ == "nullcontext"  # no TensorFlow without a strategy
    for section in ("customers", "value"):
        path = tmp_path / f"{section}.toml"
        path.write_text(f"[{section}]\ndistribute = 'tpu'\n")
        with pytest.raises(ConfigError, match=f"{section}.distribute must be one of none, mirrored"):
            load_config(path)
        path.write_text(f"[{section}]\ndistribute = 'mirrored'\n")
        assert getattr(load_config(path), section).distribute == "mirrored"
