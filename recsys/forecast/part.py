"""The segment forecaster as a part of a release: train, judge, assemble (recsys.runs.Part).

    python -c "from recsys.forecast.part import PART; print(PART.name, PART.files)"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.config import Config
from recsys.forecast.publish import SHIPPED, assemble
from recsys.runs import Part, Run, Verdict, read_verdict


def train(cfg: Config, run: Run, *, progress: Callable[[str], None] | None = None, **_: Any) -> dict[str, Any]:
    """Fit the combination on the days before the hold-out into ``run/forecast/`` (recsys.forecast.train)."""
    from recsys.forecast.train import run_train

    return run_train(cfg, run, progress=progress)


def judge(cfg: Config, run: Run) -> Verdict:
    """Score the run's forecaster on the hold-out against the single baselines and production."""
    from recsys.forecast.evaluate import run_evaluate

    run_evaluate(cfg, run)
    return read_verdict(run.part(PART.name))


PART = Part(name="forecast", title="segment forecaster", files=SHIPPED, train=train, judge=judge,
            assemble=assemble)
