"""The one exception family that trendrec raises for expected failures, and its kinds.

The CLI prints these as a one-line reason on stderr (no traceback) and exits non-zero; anything
else is a bug and keeps its traceback. ``ConfigError`` is also importable from
``pipeline.config``, where it is raised most.

    python -c "from pipeline.errors import TrendrecError; print(TrendrecError.__doc__)"
"""


class TrendrecError(Exception):
    """An expected failure with a message a user can act on (bad input, missing stage output...)."""


class ConfigError(TrendrecError):
    """The configuration file or an override is invalid."""
