"""The next-basket model (``LSTMRecommender``) as a part of a release: train, judge, assemble.

    python -c "from recsys.nextbasket.part import PART; print(PART.name, PART.files)"
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Config
from pipeline.store import Store
from recsys import registry
from recsys.nextbasket.publish import SHIPPED, assemble
from recsys.runs import Part, Run, Verdict, read_verdict

NAME = "nextbasket"


def train(cfg: Config, run: Run, **_: Any) -> dict[str, Any]:
    """Fit the LSTMRecommender for next week into ``run/nextbasket/`` (recsys.nextbasket.train)."""
    from recsys.nextbasket.train import train_customer_model

    return train_customer_model(cfg, run)


def judge(cfg: Config, run: Run) -> Verdict:
    """Compare the run's model with P-TopFreq, TIFU-kNN and the others on its validation week."""
    from recsys.nextbasket.judge import judge_customer_model, nextbasket_verdict

    result = judge_customer_model(cfg, run)
    verdict = read_verdict(run.part(NAME))
    if verdict is None:  # nothing trained (a guest-only log): production's model, if any, stays
        verdict = nextbasket_verdict(result, registry.production(Store(cfg.store)))
    return verdict


PART = Part(name=NAME, title="next-basket model (LSTMRecommender)", files=SHIPPED, train=train, judge=judge,
            assemble=assemble)
