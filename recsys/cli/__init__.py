"""The one ``trendrec`` program: every stage and operation as a subcommand.

A subcommand is a ``Command``: a help line, a function adding its arguments, and a function
``(config, args) -> dict`` that calls exactly one stage. The shell adds ``--config``, ``--store``,
``--json`` and ``-v`` to each, prints a short human summary with results as tables
(``recsys.report.text``; or exactly one JSON object on stdout with ``--json``), and turns every
failure into a one-line reason on stderr and exit code 1 (with ``--json``, stdout then carries
``{"error": ..., "stage": ...}``): a ``TrendrecError`` its message, an ``OSError`` a sentence with its
errno name and path (``failure_line``), anything else its type and message (the traceback only with
``-v``). A refused argument (empty, a count below 1, a port outside 1..65535) is one line, exit 2. The config is ``--config``, else the nearest
``trendrec.toml`` in the working directory or a parent, else ``$TRENDREC_CONFIG``, else the built-in
defaults (``pipeline.config.locate_config``); every summary starts with the ``config`` and ``store`` it
used. TensorFlow's start-up noise stays off stderr unless ``-v``. Stage modules are imported when their
command runs, so ``--help`` stays fast.
The subcommands and their table are in ``recsys.cli.commands``, the failure lines in
``recsys.cli.failures``, the quieting of TensorFlow in ``recsys.cli.noise``; this module, the shell,
re-exports their public names: callers import ``recsys.cli`` only (``python -m recsys.cli`` runs it).

    trendrec demo                       # every stage in-process on the bundled data
    trendrec ingest data/demo/online_retail.parquet --json
    trendrec train --json               # one stage, one JSON object on stdout
    trendrec models list | promote v0002 | rollback
    trendrec status                     # what is in production, where the logs are
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
from typing import Any

from pipeline.config import CONFIG_FILE, DEFAULTS, ENV_CONFIG, ENV_STORE, load_config, locate_config
from pipeline.errors import TrendrecError
from pipeline.store import check_names
from recsys.cli.commands import (  # noqa: F401  (re-exported: callers import recsys.cli only)
    COMMANDS, COMMON, Command, _no_arguments, iso_day, port, stage_command)
from recsys.cli.failures import OS_ERRORS, OWN_MESSAGES, failure_line  # noqa: F401
from recsys.cli.noise import QUIET_LOGGERS, TF_QUIET, quiet_tensorflow  # noqa: F401
from recsys.report.text import format_summary

log = logging.getLogger(__name__)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trendrec")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class UsageError(Exception):
    """A command line argparse refused: ``(prog, reason)``, e.g. ``("trendrec serve", "argument --port: ...")``."""


class _Parser(argparse.ArgumentParser):
    """argparse whose refusals are one line (`trendrec CMD: error: ...`) raised to `run_cli`, not printed."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(self.prog, f"{message} (see `{self.prog} --help`)")


def build_parser(commands: dict[str, Command], prog: str = "trendrec") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=f"TOML config file (default: the nearest {CONFIG_FILE} in the working "
                                         f"directory or a parent, else ${ENV_CONFIG}, else built-in defaults)")
    common.add_argument("--store", help=f"store directory (default: ${ENV_STORE}, the config's, ./trendrec-data)")
    common.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="log progress to stderr (and an unexpected error's traceback)")
    parser = _Parser(prog=prog, description="Learn shopping trends and re-rank recommendations.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        p = sub.add_parser(name, parents=[common], help=command.help, description=command.help,
                           aliases=list(command.aliases))
        command.add_arguments(p)
    return parser


def run_cli(commands: dict[str, Command], argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(commands).parse_args(argv)
    except UsageError as exc:  # a bad argument: one line, exit 2 as argparse's own
        return _refuse(f"{exc.args[0]}: error", exc.args[1], _command_in(commands, argv), "--json" in argv, 2)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        quiet_tensorflow()
    name = _canonical(commands, args.command)
    command, store = commands[name], args.store
    try:
        _check_arguments(args)
        path, origin = locate_config(args.config)
        cfg = load_config(path, store=args.store)
        store = cfg.store
        log.info("config: %s (%s); store: %s", path or DEFAULTS, origin, cfg.store)
        # With --json, stdout carries exactly one JSON object: anything a library prints goes to stderr.
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            summary = command.run(cfg, args)
        used = {"config": str(path) if path else DEFAULTS, "store": cfg.store}
        if args.json:
            output = json.dumps(used | summary, default=str, sort_keys=False)
        else:
            used["config"] += f" ({origin})" if path else ""
            output = format_summary(f"trendrec {args.command}: {command.title or 'done'}", used | summary, name)
    except KeyboardInterrupt:
        return _refuse(f"trendrec {args.command}", "interrupted", args.command, args.json, 130)
    except Exception as exc:  # every failure ends in one line (and one JSON object); see failure_line
        if args.verbose and not isinstance(exc, TrendrecError):
            traceback.print_exception(exc, file=sys.stderr)  # for a bug report
        return _refuse(f"trendrec {args.command}: error", failure_line(exc, store), args.command, args.json, 1)
    print(output)
    return 0


def _refuse(head: str, reason: str, stage: str | None, as_json: bool, code: int) -> int:
    """Print `HEAD: REASON` on stderr (and, with --json, one error object on stdout); return ``code``."""
    print(f"{head}: {reason}", file=sys.stderr)
    if as_json:  # a script reading stdout still gets exactly one object
        print(json.dumps({"error": reason, "stage": stage}))
    return code


def _command_in(commands: dict[str, Command], argv: list[str]) -> str | None:
    """The subcommand named in a command line argparse refused, if any."""
    names = set(commands) | {a for c in commands.values() for a in c.aliases}
    return next((a for a in argv if a in names), None)


def _canonical(commands: dict[str, Command], name: str) -> str:
    """The command's own name when it was called by an alias (`customers` for `nextbasket`)."""
    return name if name in commands else next(c for c, command in commands.items() if name in command.aliases)


PATH_ARGUMENTS = ("config", "store", "source", "run", "candidates", "lists", "output")  # names checked up front
POSITIONALS = ("source", "run", "action", "version")  # shown without dashes
OPTION_NAMES = {"run_key": "--run-id"}  # options whose dest differs from their name


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse any empty argument (`ingest ""`, `--config ""`: it would silently mean the default) and
    over-long path names."""
    for name, value in vars(args).items():
        if isinstance(value, str) and not value.strip():
            label = name if name in POSITIONALS else OPTION_NAMES.get(name, "--" + name.replace("_", "-"))
            hint = "$TRENDREC_STORE or the config's" if name == "store" else "the default"
            raise TrendrecError(f"{label} is empty: give a value, or leave {label} out to use {hint}")
    for name in PATH_ARGUMENTS:
        if getattr(args, name, None):
            check_names(getattr(args, name), f"--{name}" if name not in ("source", "run") else name)


def main(argv: list[str] | None = None) -> int:
    return run_cli(COMMANDS, argv)
