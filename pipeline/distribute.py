"""Where a Keras model's variables live: one device, or mirrored over every device of the machine.

The three model families build their networks inside ``strategy_scope(<section>.distribute)``:
``"none"`` is the default device (a GPU when there is one), ``"mirrored"`` a
``tf.distribute.MirroredStrategy`` over the machine's GPUs (or, without a GPU, its logical CPU
devices), so Keras' ``fit`` splits each batch over them and sums the gradients. Keras 3 needs nothing
else: a model built and compiled in the scope trains under it. Past one machine the same scope takes a
``MultiWorkerMirroredStrategy`` with a ``TF_CONFIG`` per worker. TensorFlow is imported only when a
strategy is asked for.

    python -c "from pipeline.distribute import strategy_scope; print(strategy_scope('mirrored'))"
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

DISTRIBUTE = ("none", "mirrored")  # the values of model.distribute, customers.distribute, value.distribute


def strategy_scope(distribute: str) -> contextlib.AbstractContextManager[Any]:
    """The scope to build and compile a model in for ``distribute`` (one of DISTRIBUTE)."""
    if distribute == "none":
        return contextlib.nullcontext()
    if distribute != "mirrored":
        raise ConfigError(f"distribute must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    return _mirrored().scope()


@functools.cache
def _mirrored() -> Any:
    """One MirroredStrategy per process: two of them in one process (the demo trains three families in a
    row) number their collective ops alike, and the second's gradient reduction then fails on a shape
    mismatch (measured with Keras 3.15 / TF 2.21)."""
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    log.info("MirroredStrategy over %d device(s): %s", len(devices), devices)
    return tf.distribute.MirroredStrategy(devices)
