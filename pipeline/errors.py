"""The one exception family that trendrec raises for expected failures, and its kinds.

The CLI prints these as a one-line reason on stderr (no traceback) and exits non-zero. Any other
exception is unexpected: the CLI still ends it in one line (OS errors as a sentence naming the path and
the errno), and `-v` prints its traceback above that line for a bug report. ``ConfigError`` and ``StoreError`` are also importable from
``pipeline.config`` and ``pipeline.store``, where they are raised most.

    python -c "from pipeline.errors import TrendrecError; print(TrendrecError.__doc__)"
"""


class TrendrecError(Exception):
    """An expected failure with a message a user can act on (bad input, missing stage output...)."""


class ConfigError(TrendrecError):
    """The configuration file or an override is invalid."""


class StoreError(TrendrecError):
    """A path escapes the store or the store is not in the expected state."""
