"""The command-line shell shared by every trendrec subcommand, and the data subcommands.

A subcommand is a ``Command``: a help line, a function adding its arguments, and a function
``(config, args) -> dict`` that calls exactly one stage. The shell adds ``--config``, ``--store``,
``--json`` and ``-v`` to each, prints a short human summary (or exactly one JSON object on stdout
with ``--json``), and turns expected failures (``TrendrecError``) into a one-line reason on stderr
and exit code 1. The full ``trendrec`` program (recsys.cli) adds the model subcommands.

    trendrec ingest data/demo/online_retail.parquet --store ./trendrec-data --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.config import ENV_CONFIG, ENV_STORE, Config, load_config
from pipeline.errors import TrendrecError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    help: str  # one line shown by `trendrec --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the subcommand's own arguments
    run: Callable[[Config, argparse.Namespace], dict]  # calls one stage, returns its summary
    title: str = ""  # first line of the human summary


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="file, directory or glob (default: `source` in the config)")


def _run_ingest(cfg: Config, args: argparse.Namespace) -> dict:
    from pipeline.ingest.ingest import run_ingest

    return run_ingest(cfg, args.source)


def _run_aggregate(cfg: Config, args: argparse.Namespace) -> dict:
    from pipeline.aggregate.aggregate import run_aggregate

    return run_aggregate(cfg)


PIPELINE_COMMANDS: dict[str, Command] = {
    "ingest": Command("validate an event log into raw/ (bad rows to quarantine/)", _ingest_arguments,
                      _run_ingest, "ingested"),
    "aggregate": Command("roll raw events up into aggregates/daily and month_weekday", _no_arguments,
                         _run_aggregate, "aggregated"),
}


def build_parser(commands: dict[str, Command], prog: str = "trendrec") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=f"TOML config file (default: ${ENV_CONFIG} or built-in defaults)")
    common.add_argument("--store", help=f"store directory (default: ${ENV_STORE}, the config's, ./trendrec-data)")
    common.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser = argparse.ArgumentParser(prog=prog, description="Learn shopping trends and re-rank recommendations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        p = sub.add_parser(name, parents=[common], help=command.help, description=command.help)
        command.add_arguments(p)
    return parser


def format_summary(title: str, summary: dict[str, Any]) -> str:
    """A short human summary: scalars one per line, nested tables flattened one level."""
    lines = [title] if title else []
    for key, value in summary.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
            lines.append(f"  {key}: {inner}")
        elif isinstance(value, list):
            shown = ", ".join(_fmt(v) for v in value[:5]) + (" ..." if len(value) > 5 else "")
            lines.append(f"  {key}: {shown}")
        else:
            lines.append(f"  {key}: {_fmt(value)}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def run_cli(commands: dict[str, Command], argv: list[str] | None = None) -> int:
    args = build_parser(commands).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter off the terminal
    command = commands[args.command]
    try:
        cfg = load_config(args.config, store=args.store)
        # With --json, stdout carries exactly one JSON object: anything a library prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            summary = command.run(cfg, args)
    except TrendrecError as exc:
        print(f"trendrec {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"trendrec {args.command}: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary, default=str, sort_keys=False))
    else:
        print(format_summary(f"trendrec {args.command}: {command.title or 'done'}", summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The data-only program (`python -m pipeline.cli`): ingest and aggregate."""
    return run_cli(PIPELINE_COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
