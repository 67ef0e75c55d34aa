"""The one exception family that trendrec raises for expected failures, and its kinds.

The CLI prints these as a one-line reason on stderr (no traceback) and exits non-zero; anything
else is a bug and keeps its traceback. ``ConfigError`` and ``StoreError`` are also importable from
``pipeline.config`` and ``pipeline.store``, where they are raised most.

    python -c "from pipeline.errors import TrendrecError; print(TrendrecError.__doc__)"
"""


class TrendrecError(Exception):
    """An expected failure with a message a user can act on (bad input, missing stage output...)."""


class ConfigError(TrendrecError):
    """The configuration file or an override is invalid."""


class StoreError(TrendrecError):
    """A path escapes the store or the store is not in the expected state."""
