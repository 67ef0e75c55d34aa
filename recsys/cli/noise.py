"""TensorFlow's start-up noise, kept off stderr unless ``-v``: ``quiet_tensorflow``.

Part of the one ``trendrec`` program: ``recsys.cli`` calls ``quiet_tensorflow`` before a command runs
and re-exports it; callers import ``recsys.cli``, never this module. TensorFlow is not imported here.

    python -c "from recsys.cli import quiet_tensorflow; quiet_tensorflow(); import tensorflow"
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

TF_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}  # TensorFlow's C++ log levels; TF_ENABLE_ONEDNN_OPTS (numerics) is left alone
QUIET_LOGGERS = ("tensorflow", "absl", "h5py")  # Python loggers that warn about TensorFlow's internals


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up noise off stderr (`-v` shows it): its C++ log level, its Python
    loggers, and the lines its libraries write while they load ("All log messages before
    absl::InitializeLog()", oneDNN's notice), which no variable silences, so file descriptor 2 points at
    /dev/null while `tensorflow` itself is imported. TensorFlow is not imported here."""
    for key, value in TF_QUIET.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, and runs its module body with file descriptor 2 on /dev/null."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _without_stderr(spec.loader.exec_module)  # type: ignore[method-assign]
        return spec


def _without_stderr(function: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            function(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
    return run
