"""The ``trendrec`` program: the data subcommands of pipeline.cli plus the model subcommands.

    trendrec demo                       # every stage in-process on the bundled data
    trendrec train --json               # one stage, one JSON object on stdout
    trendrec tune --trials 6            # hyper-parameter search; best config in tune/<id>/best.toml
    trendrec backtest --cutoffs 4 --step 14 --json   # model vs baselines on rolling cut-offs
    trendrec models list | promote v0002 | rollback
    trendrec status                     # what is in production, where the logs are
"""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import PIPELINE_COMMANDS, Command, run_cli
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store


def _latest_candidate(cfg: Config) -> str:
    root = Store(cfg.store).models / "candidates"
    runs = sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not runs:
        raise TrendrecError(f"no trained candidate in {root}: run `trendrec train` first")
    return str(runs[-1])


def _candidate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidate", nargs="?", help="candidate directory (default: the latest trained)")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", help="name of the run (default: UTC time); also the TensorBoard run name")


def _run_train(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.train import run_train

    return run_train(cfg, run_id=args.run_id)


def _tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=6, help="trials, the configured model first (6)")
    parser.add_argument("--tune-id", help="search name (default: UTC time): runs/tune-<id>/, tune/<id>/")
    parser.add_argument("--epochs", type=int, help="epoch cap per trial (default: min(model.epochs, 15))")


def _run_tune(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.tune import run_tune

    return run_tune(cfg, trials=args.trials, tune_id=args.tune_id, epochs=args.epochs,
                    progress=lambda line: print(line, file=sys.stderr, flush=True))


def _run_evaluate(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.evaluate import run_evaluate

    return run_evaluate(cfg, args.candidate or _latest_candidate(cfg))


def _run_push(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.registry import push

    return push(cfg, args.candidate or _latest_candidate(cfg))


def _rerank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", help="candidate lists, parquet or CSV (default: the config's)")
    parser.add_argument("--output", help="where to write, inside the store (default: reranked/<name>.parquet)")


def _run_rerank(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.rank.rerank import run_rerank

    return run_rerank(cfg, args.candidates, args.output)


def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["list", "promote", "rollback"], nargs="?", default="list")
    parser.add_argument("version", nargs="?", help="version to promote, e.g. v0002")


def _run_models(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys import registry

    store = Store(cfg.store)
    if args.action == "promote":
        if not args.version:
            raise TrendrecError("models promote needs a version, e.g. `trendrec models promote v0002`")
        return registry.promote(store, args.version)
    if args.action == "rollback":
        return registry.rollback(store)
    return {"models": registry.list_models(store)}


def _run_status(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.status import store_status

    return store_status(cfg)


def _run_demo(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.status import run_demo

    return run_demo(cfg)


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", help="directory inside the store (default: report/)")


def _run_report(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.report.report import run_report

    return run_report(cfg, args.output)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def _run_serve(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.serve.app import run_serve

    return run_serve(cfg, host=args.host, port=args.port)


def _evaluate_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,0.8", help="blend weights to sweep")
    parser.add_argument("--weeks", type=int, default=6, help="number of weekly cut-offs at the end of the data")


def _run_evaluate_rerank(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.rank.evaluation import run_evaluate_rerank

    weights = [float(w) for w in args.weights.split(",") if w.strip()]
    return run_evaluate_rerank(cfg, weights=weights, weeks=args.weeks)


def _backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cutoffs", type=int, default=4, help="number of rolling cut-offs (default 4)")
    parser.add_argument("--step", type=int, help="days between cut-offs (default: the model's horizon)")
    parser.add_argument("--run-id", help="name of the result, backtest/<run id>.json (default: UTC time)")


def _run_backtest(cfg: Config, args: argparse.Namespace) -> dict:
    from recsys.forecast.backtest import run_backtest

    return run_backtest(cfg, cutoffs=args.cutoffs, step=args.step, run_id=args.run_id)


COMMANDS: dict[str, Command] = {
    **PIPELINE_COMMANDS,
    "train": Command("train an LSTMRecommender candidate (TensorBoard logs in runs/)", _train_arguments,
                     _run_train, "trained a candidate"),
    "tune": Command("search units, layers, dropout, lookback and cell on the validation days (HParams)",
                    _tune_arguments, _run_tune, "tuned"),
    "evaluate": Command("score a candidate on the hold-out against baselines and production", _candidate_argument,
                        _run_evaluate, "evaluated"),
    "backtest": Command("rolling-origin backtest of the model vs seasonal naive and AutoETS",
                        _backtest_arguments, _run_backtest, "backtested"),
    "push": Command("version and promote a blessed candidate", _candidate_argument, _run_push, "push"),
    "rerank": Command("re-rank candidate lists with the production model's trends", _rerank_arguments,
                      _run_rerank, "re-ranked"),
    "models": Command("list, promote or roll back model versions", _models_arguments, _run_models, "models"),
    "evaluate-rerank": Command("offline HitRate/NDCG of base vs re-ranked lists at weekly cut-offs",
                               _evaluate_rerank_arguments, _run_evaluate_rerank, "re-rank evaluation"),
    "serve": Command("serve re-rank requests over HTTP with the production model", _serve_arguments,
                     _run_serve, "server stopped"),
    "report": Command("write the key plots as PNG and a self-contained HTML page", _report_arguments,
                      _run_report, "report written"),
    "status": Command("show the production model, its metrics and where outputs are", lambda p: None,
                      _run_status, "status"),
    "demo": Command("run every stage in-process on the config's data (no Airflow)", lambda p: None,
                    _run_demo, "demo finished"),
}


def main(argv: list[str] | None = None) -> int:
    return run_cli(COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
