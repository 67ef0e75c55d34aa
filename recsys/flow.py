"""The trendrec flow, written once: the ordered stages, their commands, and ``run_all``.

ingest → aggregate → train_forecast → train_nextbasket → train_value → judge → push → rerank. Each stage
is one call into its package (pipeline.ingest, pipeline.aggregate, each model family's part —
recsys.forecast, recsys.nextbasket, recsys.value —, the release rule recsys.release, recsys.rank) that
takes the config and what the stage before it returned, and returns a small summary of counts and paths.
A stage also names its `trendrec` command, the arguments the command adds and the Airflow task's time
limit: `trendrec demo`, the CLI's stage commands (recsys.cli), the ``trendrec_pipeline`` DAG (one task
per stage; a ``Sharded`` stage — the value forecast, push-time scoring — is a task, a task per shard of
customers and a join task, ``run_step``), the ``trendrec_retrain`` DAG (``RETRAIN``) and the tests all come from this list, so the
order cannot drift between them; ``run_all(cfg, last="push")`` runs a slice. The DAGs wire each stage after
the stages it waits for (``upstream_of``: the one before it, unless it names others): train_nextbasket and
train_value both wait only for train_forecast, so workers train them side by side, and judge waits for both;
the order above is one the graph allows, and what every sequential runner follows. ``MONITOR`` (drift,
live results) runs after the push on its own schedule: the ``trendrec_monitor`` DAG and the
`trendrec drift` / `trendrec live` commands.

The training stages and judge/push share one training run (recsys.runs): the run named by the
``run_key`` option (the DAG's logical date, `trendrec train --run-id`), the one the stage before passed
on (``run_dir``), or the latest one.

This module imports only the standard library at load time (each stage imports its package when it
runs), so an Airflow DAG file can read the stage list at parse time for free.

    trendrec demo --store /tmp/trendrec-demo
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.config import Config
    from recsys.runs import Run

log = logging.getLogger(__name__)

SKIPPED = "skipped"  # key of a summary whose stage had nothing to do (the DAG marks the task skipped)
SHARDS = "shards"  # key of a sharded stage's prepared summary: the shard numbers (the DAG's .expand)
SHARD = "shard"  # key of one shard task's input: its shard number
RUN_DIR = "run_dir"  # key of a summary that names the training run the next stage works on


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True)
class Sharded:
    """How a customer stage runs in ``customers.shards`` shards by a stable hash of the customer id.

    ``prepare`` does what every shard shares and names the shards (its summary's ``SHARDS``); ``shard``
    works on one shard's customers and writes only that shard's files (a re-run replaces them); ``join``
    makes the stage's output from this run's shard files and refuses a missing one. The DAGs run them as
    a task, a mapped task (``.expand`` over the shards) and a task; the stage's ``run`` (the CLI,
    ``run_all``) does the same steps in one process, every shard in turn, and writes the same bytes.
    """

    prepare: Callable[..., dict[str, Any]]  # (cfg, upstream, **options) -> summary with SHARDS and RUN_DIR
    shard: Callable[..., dict[str, Any]]  # (cfg, prepared summary, shard, **options) -> one shard's summary
    join: Callable[..., dict[str, Any]]  # (cfg, prepared summary, **options) -> the stage's summary


@dataclass(frozen=True)
class Stage:
    name: str  # family and verb: the Airflow task id
    help: str  # one line: what the stage does (also the command's help)
    run: Callable[..., dict[str, Any]]  # (cfg, upstream summary, **options) -> summary
    command: str  # the `trendrec` subcommand that runs it
    aliases: tuple[str, ...] = ()  # older names of the command, still accepted
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    title: str = ""  # first line of the command's human summary
    timeout_minutes: int = 60  # the Airflow task's execution_timeout
    cli: str = ""  # "module:function" (cfg, args) -> summary, for a command that does more than the stage
    sharded: Sharded | None = None  # the stage's steps when the DAGs split it in shards of customers
    after: tuple[str, ...] | None = None  # what it waits for in the DAGs (None: the stage before it)


def _run(cfg: Config, upstream: dict, options: dict[str, Any], new: bool = False) -> Run:
    """The training run a stage works on: the upstream's, a named one, the latest, or (``new``) a fresh one."""
    from pipeline.store import Store
    from recsys import runs

    store = Store(cfg.store)
    path = upstream.get(RUN_DIR) or options.get("run")
    if path:
        return runs.inside(store, path)
    if options.get("run_key") or new:
        return runs.create(store, options.get("run_key"))
    return runs.latest_or_new(store)


def _ingest(cfg: Config, upstream: dict, *, source: str | None = None, **_: Any) -> dict[str, Any]:
    from pipeline.ingest.ingest import run_ingest

    return run_ingest(cfg, source)


def _aggregate(cfg: Config, upstream: dict, **_: Any) -> dict[str, Any]:
    from pipeline.aggregate.aggregate import run_aggregate

    return run_aggregate(cfg)


def _train(part: str) -> Callable[..., dict[str, Any]]:
    """The stage that trains one family's part into the run."""
    def train(cfg: Config, upstream: dict, **options: Any) -> dict[str, Any]:
        from recsys.release import parts

        run = _run(cfg, upstream, options, new=part == "forecast" and not upstream.get(RUN_DIR))
        found = next(p for p in parts() if p.name == part)
        rest = {k: v for k, v in options.items() if k not in ("run", "run_key")}  # they named the run, done
        return {RUN_DIR: str(run.root), **found.train(cfg, run, **rest)}

    return train


def _judge(cfg: Config, upstream: dict, **options: Any) -> dict[str, Any]:
    from pipeline.store import Store
    from recsys import registry, release, runs

    run = runs.resolve(Store(cfg.store), upstream.get(RUN_DIR) or options.get("run"))
    verdicts = release.judge(cfg, run)
    pushable, why = release.decide(verdicts, registry.read_production(Store(cfg.store)) is not None)
    return {RUN_DIR: str(run.root), "pushable": pushable, "push_reason": why,
            "verdicts": {name: verdict.to_json() for name, verdict in verdicts.items()}}


def _push(cfg: Config, upstream: dict, *, lists: str | None = None, ignore_drift: bool = False,
          drift_checked: bool = False, sharded: bool = False, **options: Any) -> dict[str, Any]:
    from pipeline.store import Store
    from recsys import release, runs
    from recsys.monitor.gate import gate_drift

    if not drift_checked:  # the retrain DAG checks drift in a task of its own (drift_gate) before this one
        gate = gate_drift(cfg, ignore_drift)
        if gate["held"]:
            return {"pushed": False, "held_by": "drift", "reason": gate["reason"], "drift": gate}
    run = runs.resolve(Store(cfg.store), upstream.get(RUN_DIR) or options.get("run"))
    # the shop's lists the model scores at push: --lists, else the config's lists file when it exists
    default = cfg.rerank.candidates if cfg.rerank.candidates and Path(cfg.rerank.candidates).is_file() else None
    return release.push(cfg, run, lists=lists or default, sharded=sharded)


def _value_prepare(cfg: Config, upstream: dict, **options: Any) -> dict[str, Any]:
    from recsys.value import part

    run = _run(cfg, upstream, options)
    return {RUN_DIR: str(run.root), **part.prepare(cfg, run, **options)}


def _value_shard(cfg: Config, prepared: dict, shard: int, **_: Any) -> dict[str, Any]:
    from recsys.value import part

    return part.forecast_shard(cfg, _prepared_run(cfg, prepared), shard)


def _value_join(cfg: Config, prepared: dict, **_: Any) -> dict[str, Any]:
    from recsys.value import part

    return {RUN_DIR: prepared[RUN_DIR], **part.finish(cfg, _prepared_run(cfg, prepared))}


def _push_prepare(cfg: Config, upstream: dict, **options: Any) -> dict[str, Any]:
    from pipeline.store import Store
    from recsys import release, runs

    run = runs.resolve(Store(cfg.store), upstream.get(RUN_DIR) or options.get("run"))
    return {RUN_DIR: str(run.root), **release.prepare_push(cfg, run)}


def _push_shard(cfg: Config, prepared: dict, shard: int, **_: Any) -> dict[str, Any]:
    from recsys import release

    return release.push_shard(cfg, _prepared_run(cfg, prepared), shard)


def _push_join(cfg: Config, prepared: dict, **options: Any) -> dict[str, Any]:
    return _push(cfg, prepared, sharded=True, **options)


def _prepared_run(cfg: Config, prepared: dict) -> Run:
    from pipeline.store import Store
    from recsys import runs

    return runs.inside(Store(cfg.store), prepared[RUN_DIR])


def _rerank(cfg: Config, upstream: dict, *, candidates: str | None = None, output: str | None = None,
            **_: Any) -> dict[str, Any]:
    from recsys import registry
    from recsys.rank.rerank import run_rerank

    if registry.read_production(cfg.store) is None:
        return {SKIPPED: f"no model in production in {cfg.store}: nothing to re-rank with"}
    return run_rerank(cfg, candidates, output)


def _drift(cfg: Config, upstream: dict, *, days: int = 7, reference_days: int = 28, as_of: str | None = None,
           reference_end: str | None = None, **_: Any) -> dict[str, Any]:
    import datetime

    from recsys import registry
    from recsys.monitor.board import write_board
    from recsys.monitor.drift import run_drift

    from recsys.monitor.windows import MonitorError

    if reference_end is None and registry.read_production(cfg.store) is None:
        return {SKIPPED: f"no model in production in {cfg.store}: nothing to compare with"}
    day = lambda text: datetime.date.fromisoformat(text) if text else None  # noqa: E731
    try:
        result = run_drift(cfg, days=days, reference_days=reference_days, as_of=day(as_of),
                           reference_end=day(reference_end))
    except MonitorError as exc:  # e.g. no day after the version's cut-off yet: nothing to compare, not a fault
        return {SKIPPED: str(exc)}
    write_board(cfg.store)
    return result


def _live(cfg: Config, upstream: dict, *, weeks: int = 6, **_: Any) -> dict[str, Any]:
    from recsys import registry
    from recsys.monitor.board import write_board
    from recsys.monitor.live import run_live_results

    if registry.read_production(cfg.store) is None:
        return {SKIPPED: f"no model in production in {cfg.store}: nothing to judge"}
    result = run_live_results(cfg, weeks=weeks)
    write_board(cfg.store)
    return result


def count(text: str) -> int:
    """An argparse type: a whole number of 1 or more; 0 or a negative count is refused, never the default."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="file, directory or glob (default: `source` in the config)")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", dest="run_key",
                        help="name of the training run (default: UTC time); also the TensorBoard run name")


def _run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", nargs="?", help="training run folder, models/runs/<id> (default: the latest run)")


def _value_arguments(parser: argparse.ArgumentParser) -> None:
    _run_argument(parser)
    parser.add_argument("--horizon-days", type=count, help="days forecast and held out (default: value.horizon_days)")


def _push_arguments(parser: argparse.ArgumentParser) -> None:
    _run_argument(parser)
    parser.add_argument("--lists", help="the shop's candidate lists (parquet or CSV; default: rerank.candidates of "
                                        "the config): the next-basket model scores their pairs too")
    parser.add_argument("--ignore-drift", action="store_true",
                        help="push even when a `trendrec drift` check fails (this run only; monitor.drift_gate "
                             "in the config turns the gate off for good)")


def _rerank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", help="the shop's lists, parquet or CSV (default: the config's)")
    parser.add_argument("--output", help="where to write, inside the store (default: reranked/<name>.parquet)")


STAGES: tuple[Stage, ...] = (
    Stage("ingest", "validate the event log into raw/ (bad rows to quarantine/)", _ingest, "ingest",
          add_arguments=_ingest_arguments, title="ingested", timeout_minutes=60),
    Stage("aggregate", "roll events up by segment and day into aggregates/", _aggregate, "aggregate",
          title="aggregated", timeout_minutes=30),
    Stage("train_forecast", "train the segment forecaster into a new training run (TensorBoard logs in runs/)",
          _train("forecast"), "train", add_arguments=_train_arguments, title="trained the segment forecaster",
          timeout_minutes=240),
    Stage("train_nextbasket", "train the next-basket model (LSTMRecommender) into the training run",
          _train("nextbasket"), "nextbasket", aliases=("customers",), add_arguments=_run_argument,
          title="trained the next-basket model", timeout_minutes=240, after=("train_forecast",)),
    Stage("train_value", "forecast every customer's spend over the next H days (BG/NBD + GG, LSTM, ensemble)",
          _train("value"), "value", add_arguments=_value_arguments, title="customer value", timeout_minutes=120,
          cli="recsys.value.part:value_command", sharded=Sharded(_value_prepare, _value_shard, _value_join),
          after=("train_forecast",)),
    Stage("judge", "judge every trained part against its baselines and production: one verdict each", _judge,
          "evaluate", aliases=("judge",), add_arguments=_run_argument, title="judged", timeout_minutes=60,
          after=("train_nextbasket", "train_value")),
    Stage("push", "version the run's judged parts and make it production if a part is blessed", _push, "push",
          add_arguments=_push_arguments, title="push", timeout_minutes=60,
          sharded=Sharded(_push_prepare, _push_shard, _push_join)),
    Stage("rerank", "re-rank the shop's lists with the production release: its customer scores, else segment "
                    "trends", _rerank, "rerank",
          add_arguments=_rerank_arguments, title="re-ranked", timeout_minutes=60),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def iso_day(text: str) -> str:
    """An argparse type: a day as YYYY-MM-DD (kept as the text given)."""
    import datetime

    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day as YYYY-MM-DD, e.g. 2011-12-01, got {text!r}") from None
    return text


def _drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=count, help="recent days compared (default 7)")
    parser.add_argument("--reference-days", type=count,
                        help="days before the production version's cut-off they are compared with (default 28)")
    parser.add_argument("--as-of", type=iso_day, help="last day of the window (default: the last event day)")
    parser.add_argument("--reference-end", type=iso_day,
                        help="first day after the reference (default: the production version's cut-off)")


def _live_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weeks", type=count, help="weeks after the version's cut-off judged at most (default 6)")


# After the push, on their own schedule (the trendrec_monitor DAG): not part of run_all's order.
MONITOR: tuple[Stage, ...] = (
    Stage("drift", "compare the last days' events with what the production version was trained on", _drift,
          "drift", add_arguments=_drift_arguments, title="drift", timeout_minutes=30),
    Stage("live_results", "judge the production version's push-time scores on the weeks bought since its cut-off",
          _live, "live", add_arguments=_live_arguments, title="live results", timeout_minutes=60),
)
RETRAIN: tuple[str, ...] = STAGE_NAMES[STAGE_NAMES.index("aggregate"): STAGE_NAMES.index("judge") + 1]


def stage(name: str) -> Stage:
    found = next((s for s in STAGES + MONITOR if s.name == name), None)
    if found is None:
        raise ValueError(f"unknown stage {name!r}: expected one of {', '.join(STAGE_NAMES + tuple(m.name for m in MONITOR))}")
    return found


def upstream_of(name: str) -> tuple[str, ...]:
    """The stages ``name`` waits for in the DAGs, the first being the one whose summary it receives as
    ``upstream``: its ``after``, else the stage before it in ``STAGES`` (none for the first; a ``MONITOR``
    stage waits for none). The two customer families' trainings wait only for ``train_forecast``, which
    makes the training run (``RUN_DIR``): each writes only its own part of the run (its folder, built
    beside it and switched in whole, and its own TensorBoard folder), so workers train them side by side;
    ``judge`` waits for both."""
    found = stage(name)
    if found.after is not None:
        return found.after
    index = STAGE_NAMES.index(name) if name in STAGE_NAMES else 0
    return STAGE_NAMES[index - 1: index] if index else ()


def _check_order() -> None:
    """Every stage waits only for stages before it in STAGES: the sequential runners' order (``run_all``,
    ``RETRAIN``) is one the DAGs' graph allows."""
    for index, name in enumerate(STAGE_NAMES):
        late = [up for up in upstream_of(name) if up not in STAGE_NAMES[:index]]
        if late:
            raise ValueError(f"stage {name!r} waits for {', '.join(late)}, which is not a stage before it")


_check_order()


def run_stage(name: str, cfg: Config, upstream: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Run one stage by name with the summary of the stage before it (see ``run_all`` for options)."""
    return stage(name).run(cfg, upstream or {}, **options)


def run_step(name: str, step: str, cfg: Config, upstream: Any = None, **options: Any) -> Any:
    """One step of a sharded stage, as a DAG task runs it (map and reduce):

    - "prepare" (``upstream``: the stage before's summary): a list with one input per shard, the
      prepared summary plus ``SHARD``;
    - "shard" (``upstream``: one of those inputs): that shard's summary, with ``RUN_DIR``;
    - "join" (``upstream``: every shard's summary): the stage's summary.
    """
    sharded = stage(name).sharded
    if sharded is None or step not in ("prepare", "shard", "join"):
        raise ValueError(f"stage {name!r} has no step {step!r}: the sharded stages are "
                         f"{', '.join(s.name for s in STAGES if s.sharded)}, their steps prepare, shard and join")
    if step == "prepare":
        prepared = sharded.prepare(cfg, upstream or {}, **options)
        log.info("%s prepared: %s", name, prepared)
        return [prepared | {SHARD: k} for k in prepared[SHARDS]]
    if step == "shard":
        return {RUN_DIR: upstream[RUN_DIR], **sharded.shard(cfg, upstream, upstream[SHARD], **options)}
    done = [dict(summary) for summary in upstream]  # Airflow hands the mapped outputs over as a lazy sequence
    return sharded.join(cfg, {RUN_DIR: done[0][RUN_DIR], SHARDS: done}, **options)


def run_all(cfg: Config, *, first: str = STAGE_NAMES[0], last: str = STAGE_NAMES[-1],
            **options: Any) -> dict[str, dict[str, Any]]:
    """Run the stages from ``first`` to ``last`` in order, in this process; {stage: summary}.

    Options go to the stages that take them: ``source`` (ingest), ``run_key`` (the training run and
    TensorBoard run name), ``horizon_days`` (train_value), ``candidates`` and ``output`` (rerank).
    """
    names = STAGE_NAMES[STAGE_NAMES.index(first): STAGE_NAMES.index(last) + 1]
    if names[0] == "ingest" and not (options.get("source") or cfg.source):
        from pipeline.errors import ConfigError

        raise ConfigError("no event log to run on: the config sets no `source` (the built-in defaults?); "
                          "for the bundled demo pass `--config trendrec.toml` (the repository's), or set `source` "
                          "and [ingest.columns] in your config")
    summaries: dict[str, dict[str, Any]] = {}
    upstream: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        summary = run_stage(name, cfg, upstream, **options)
        summaries[name] = summary
        upstream = {RUN_DIR: summary[RUN_DIR]} if RUN_DIR in summary else upstream
        log.info("%s done in %.1f s", name, time.monotonic() - started)
    return summaries
