"""The trendrec flow, written once: the ordered list of stages and ``run_all``.

ingest → aggregate → train → customers → value → evaluate → push → rerank. Each stage is one call into its package
(pipeline.ingest, pipeline.aggregate, recsys.forecast, recsys.nextbasket (and its value models), recsys.registry through
recsys.forecast.publish, recsys.rank) that takes the config and what the stage before it returned,
and returns a small summary of counts and paths. `trendrec demo`, the ``trendrec_pipeline`` DAG
(one task per stage, in this order) and the tests all run the flow through this module, so the
order cannot drift between them; ``run_all(cfg, last="push")`` runs a slice.

This module imports only the standard library at load time (each stage imports its package when it
runs), so an Airflow DAG file can read the stage list at parse time for free.

    trendrec demo --store /tmp/trendrec-demo
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config import Config

log = logging.getLogger(__name__)

SKIPPED = "skipped"  # key of a summary whose stage had nothing to do (the DAG marks the task skipped)


@dataclass(frozen=True)
class Stage:
    name: str
    help: str  # one line: what the stage does
    run: Callable[..., dict[str, Any]]  # (cfg, upstream summary, **options) -> summary


def _ingest(cfg: Config, upstream: dict, *, source: str | None = None, **_: Any) -> dict[str, Any]:
    from pipeline.ingest.ingest import run_ingest

    return run_ingest(cfg, source)


def _aggregate(cfg: Config, upstream: dict, **_: Any) -> dict[str, Any]:
    from pipeline.aggregate.aggregate import run_aggregate

    return run_aggregate(cfg)


def _train(cfg: Config, upstream: dict, *, run_key: str | None = None, **_: Any) -> dict[str, Any]:
    from recsys.forecast.train import run_train

    return run_train(cfg, run_id=run_key)


def _customers(cfg: Config, upstream: dict, *, run_key: str | None = None, **_: Any) -> dict[str, Any]:
    from recsys.nextbasket.train import train_customer_model
    from recsys.nextbasket.judge import judge_customer_model

    trained = train_customer_model(cfg, upstream["candidate_dir"], run_key)
    judged = judge_customer_model(cfg, upstream["candidate_dir"], trained)
    return {"candidate_dir": upstream["candidate_dir"], "customer_model": trained, "customer_evaluation": judged}


def _value(cfg: Config, upstream: dict, *, run_key: str | None = None, horizon_days: int | None = None,
           **_: Any) -> dict[str, Any]:
    from recsys.value.stage import run_value

    summary = run_value(cfg, upstream["candidate_dir"], horizon_days, run_key)
    return {"candidate_dir": upstream["candidate_dir"], "customer_value": summary}


def _evaluate(cfg: Config, upstream: dict, **_: Any) -> dict[str, Any]:
    from recsys.nextbasket.publish import blessed_because
    from recsys.forecast.evaluate import run_evaluate
    from recsys.forecast.publish import version_verdict

    summary = run_evaluate(cfg, upstream["candidate_dir"])
    # "blessed" judges the segment forecaster; "pushable" says whether push makes a version (the DAG's branch)
    pushable, why = version_verdict(summary, blessed_because(summary["candidate_dir"]))
    return summary | {"pushable": pushable, "push_reason": why}


def _push(cfg: Config, upstream: dict, **_: Any) -> dict[str, Any]:
    from recsys.nextbasket.publish import assemble_customers, blessed_because
    from recsys.value.stage import assemble_value
    from recsys.forecast.publish import publish

    candidate = upstream["candidate_dir"]
    # A blessed customer model is pushed even when the forecaster candidate is not (publish keeps
    # production's forecaster, or the best single baseline's): re-ranking is what the shop runs for.
    return publish(cfg, candidate, extra=lambda staging: assemble_customers(cfg, staging)
                   | assemble_value(candidate, staging), also_blessed=blessed_because(candidate))


def _rerank(cfg: Config, upstream: dict, *, candidates: str | None = None, output: str | None = None,
            **_: Any) -> dict[str, Any]:
    from recsys import registry
    from recsys.rank.rerank import run_rerank

    if registry.read_production(cfg.store) is None:
        return {SKIPPED: f"no model in production in {cfg.store}: nothing to re-rank with"}
    return run_rerank(cfg, candidates, output)


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "validate the event log into raw/ (bad rows to quarantine/)", _ingest),
    Stage("aggregate", "roll events up by segment and day into aggregates/", _aggregate),
    Stage("train", "train a segment-forecaster candidate (TensorBoard logs in runs/)", _train),
    Stage("customers", "train the customer model (LSTMRecommender) and judge it against the baselines",
          _customers),
    Stage("value", "forecast every customer's spend over the next H days (BG/NBD + GG, LSTM, ensemble)", _value),
    Stage("evaluate", "score the candidate on the hold-out against baselines and production", _evaluate),
    Stage("push", "version and promote the candidate if its forecaster or customer model is blessed", _push),
    Stage("rerank", "re-rank candidate lists with the production model", _rerank),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def run_stage(name: str, cfg: Config, upstream: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Run one stage by name with the summary of the stage before it (see ``run_all`` for options)."""
    stage = next((s for s in STAGES if s.name == name), None)
    if stage is None:
        raise ValueError(f"unknown stage {name!r}: expected one of {', '.join(STAGE_NAMES)}")
    return stage.run(cfg, upstream or {}, **options)


def run_all(cfg: Config, *, first: str = STAGE_NAMES[0], last: str = STAGE_NAMES[-1],
            **options: Any) -> dict[str, dict[str, Any]]:
    """Run the stages from ``first`` to ``last`` in order, in this process; {stage: summary}.

    Options go to the stages that take them: ``source`` (ingest), ``run_key`` (train: the candidate
    and TensorBoard run name), ``horizon_days`` (value), ``candidates`` and ``output`` (rerank).
    """
    names = STAGE_NAMES[STAGE_NAMES.index(first): STAGE_NAMES.index(last) + 1]
    summaries: dict[str, dict[str, Any]] = {}
    upstream: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        upstream = run_stage(name, cfg, upstream, **options)
        summaries[name] = upstream
        log.info("%s done in %.1f s", name, time.monotonic() - started)
    return summaries
