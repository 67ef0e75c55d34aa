"""The ``trendrec`` subcommands: each a ``Command`` (help line, arguments, one stage call), in one table.

Part of the one ``trendrec`` program: ``recsys.cli`` builds its parser from ``COMMANDS`` and re-exports
the public names of this module; callers import ``recsys.cli``, never this module. Every flow
stage is a command (``stage_command``: its arguments become the stage's options); the commands that are
not a stage (tune, backtest, candidates, models, segments, evaluate-rerank, serve, report, status,
demo) are listed here with their arguments. Stage modules are imported when their command runs.

    trendrec models list | promote v0002 | rollback
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config import ENV_STORE, Config
from pipeline.errors import StoreError, TrendrecError
from pipeline.store import Store
from recsys import flow


@dataclass(frozen=True)
class Command:
    help: str  # one line shown by `trendrec --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the subcommand's own arguments
    run: Callable[[Config, argparse.Namespace], dict]  # calls one stage, returns its summary
    title: str = ""  # first line of the human summary
    aliases: tuple[str, ...] = ()  # older names still accepted


COMMON = ("command", "config", "store", "json", "verbose")  # the shell's own arguments, not a stage's options


def stage_command(stage: flow.Stage) -> Command:
    """The `trendrec` subcommand of a flow stage: its arguments become the stage's options."""
    def run(cfg: Config, args: argparse.Namespace) -> dict:
        if stage.cli:  # the command does more than the stage (e.g. `value` also judges and prints figures)
            module, _, function = stage.cli.partition(":")
            return getattr(importlib.import_module(module), function)(cfg, args)
        options = {k: v for k, v in vars(args).items() if k not in COMMON and v is not None}
        return flow.run_stage(stage.name, cfg, progress=_progress, **options)

    return Command(stage.help, stage.add_arguments, run, stage.title, stage.aliases)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _candidates_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=iso_day, help="first day not used, YYYY-MM-DD (default: the day after the last event)")
    parser.add_argument("--users", type=flow.count, default=500, help="users kept, a deterministic sample (500)")
    parser.add_argument("--n", type=flow.count, default=20, help="candidates per user (20)")
    parser.add_argument("--recent-days", type=flow.count, default=28, help="window of activity and popularity (28)")
    parser.add_argument("--output", default="candidates/base.parquet", help="parquet file inside the store")


def _run_candidates(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.evaluation.candidates import write_candidates

    return write_candidates(cfg, as_of=args.as_of, users=args.users, n=args.n, recent_days=args.recent_days,
                            output=args.output)


def _progress(line: str) -> None:
    """Progress of a long stage, one line each, on stderr (stdout carries the summary or the JSON)."""
    print(line, file=sys.stderr, flush=True)


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=flow.count, default=6, help="trials, the configured model first (6)")
    parser.add_argument("--tune-id", help="search name (default: UTC time): runs/tune-<id>/, tune/<id>/")
    parser.add_argument("--epochs", type=flow.count, help="epoch cap per trial (default: min(model.epochs, 15))")


def _run_tune(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.tune import run_tune

    return run_tune(cfg, trials=args.trials, tune_id=args.tune_id, epochs=args.epochs,
                    progress=_progress)


def _run_segments(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.segments import list_segments

    return list_segments(cfg)


def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "promote", "rollback"], nargs="?", default="list")
    parser.add_argument("version", nargs="?", help="version to promote, e.g. v0002")


def _run_models(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys import registry

    store = Store(cfg.store)
    if args.action == "promote":
        if not args.version:
            raise TrendrecError("models promote needs a version, e.g. `trendrec models promote v0002`")
        return registry.promote(store, args.version, keep=registry.keep_versions(cfg))
    if args.action == "rollback":
        return registry.rollback(store, keep=registry.keep_versions(cfg))
    return {"models": registry.list_models(store)}


def _run_status(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.status import store_status

    if not os.path.isdir(cfg.store):
        raise StoreError(f"no store at {cfg.store}: give the store with --store DIR or ${ENV_STORE} "
                         "(`trendrec ingest` creates one)")
    return store_status(cfg)


def _run_demo(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys import flow
    from recsys.report.status import store_status

    started = time.monotonic()
    done = flow.run_all(cfg)
    verdicts = done["judge"]["verdicts"]
    return {"rows_in": done["ingest"]["rows_in"], "rows_duplicate": done["ingest"]["rows_duplicate"],
            "epochs_run": done["train_forecast"]["epochs_run"],
            "blessed": {name: v["blessed"] for name, v in verdicts.items()},
            "pushed": done["push"].get("pushed"), "version": done["push"].get("version"),
            "ships": {name: (part or {}).get("ships") for name, part in (done["push"].get("parts") or {}).items()},
            "reranked_output": done["rerank"].get("output"),
            "seconds": round(time.monotonic() - started, 1), **store_status(cfg)}


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", help="directory inside the store (default: report/)")


def _run_report(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.report import run_report

    return run_report(cfg, args.output)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=port, default=8000, help="port (default 8000)")


def _run_serve(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.serve.app import run_serve

    return run_serve(cfg, host=args.host, port=args.port)


def _evaluate_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weeks", type=flow.count, default=6, help="weekly cut-offs at the end of the data (6)")
    parser.add_argument("--methods", help="comma list (default: g_topfreq, p_topfreq, base, tifu_knn, "
                                          "segment_trend, lstm_recommender)")
    parser.add_argument("--no-cold-start", dest="cold_start", action="store_false",
                        help="skip the cold-start section (new customers, guest orders, items outside the "
                             "scored candidates), which refits the segment forecaster at each cut-off")


def _run_evaluate_rerank(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.offline.evaluate_rerank import run_evaluate_rerank

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    return run_evaluate_rerank(cfg, weeks=args.weeks, methods=methods, cold_start=args.cold_start)


def _backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cutoffs", type=flow.count, default=4, help="number of rolling cut-offs (default 4)")
    parser.add_argument("--step", type=flow.count, help="days between cut-offs (default: the model's horizon)")
    parser.add_argument("--run-id", help="name of the result, backtest/<run id>.json (default: UTC time)")


def _run_backtest(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.backtest import run_backtest

    return run_backtest(cfg, cutoffs=args.cutoffs, step=args.step, run_id=args.run_id)


COMMANDS: dict[str, Command] = {
    **{stage.command: stage_command(stage) for stage in flow.STAGES + flow.MONITOR},
    "tune": Command("search units, layers, dropout, lookback and cell on the validation days (HParams)",
                    _tune_arguments, _run_tune, "tuned"),
    "backtest": Command("rolling-origin backtest of the combination beside each member: lstm, "
                        "seasonal_naive, auto_ets, auto_theta, mstl, year_ago (combination.members)",
                        _backtest_arguments, _run_backtest, "backtested"),
    "candidates": Command("build candidate lists with the simple base recommender (demo input)",
                          _candidates_arguments, _run_candidates, "candidates written"),
    "models": Command("list, promote or roll back model versions", _models_arguments, _run_models, "models"),
    "segments": Command("list the production model's segments, their trends and how items map to them",
                        _no_arguments, _run_segments, "segments"),
    "evaluate-rerank": Command("next-basket protocol: Recall/NDCG@10 of every method vs the baselines",
                               _evaluate_rerank_arguments, _run_evaluate_rerank, "re-rank evaluation"),
    "serve": Command("serve re-rank requests over HTTP with the production model", _serve_arguments,
                     _run_serve, "server stopped"),
    "report": Command("write the key plots as PNG and a self-contained HTML page", _report_arguments,
                      _run_report, "report written"),
    "status": Command("show the production model, its metrics and where outputs are", _no_arguments,
                      _run_status, "status"),
    "demo": Command("run every stage in-process on the config's data (no Airflow)", _no_arguments,
                    _run_demo, "demo finished"),
}


iso_day = flow.iso_day  # an argparse type: a day as YYYY-MM-DD (the flow's stage arguments use it too)


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (0 would mean any free port; refused)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}")
    return value
