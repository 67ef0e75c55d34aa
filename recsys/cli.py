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

    trendrec demo                       # every stage in-process on the bundled data
    trendrec ingest data/demo/online_retail.parquet --json
    trendrec train --json               # one stage, one JSON object on stdout
    trendrec models list | promote v0002 | rollback
    trendrec status                     # what is in production, where the logs are
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.abc
import importlib.util
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.config import CONFIG_FILE, DEFAULTS, ENV_CONFIG, ENV_STORE, Config, load_config, locate_config
from pipeline.errors import StoreError, TrendrecError
from pipeline.store import Store, check_names
from recsys import flow
from recsys.report.text import format_summary

log = logging.getLogger(__name__)


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trendrec")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


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


OS_ERRORS = {  # errno -> (what happened, what to do)
    errno.ENOSPC: ("no space left on the device", "free some space or give another --store, then run it again"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or give another --store, then run it again"),
    errno.EROFS: ("the file system is read-only", "give a writable --store, or remount it read-write"),
    errno.EFBIG: ("a file would pass the file-size limit", "raise `ulimit -f`, then run it again"),
    errno.EACCES: ("permission denied", "give a --store (or file) this user may write, or fix its owner"),
    errno.EPERM: ("operation not permitted", "give a --store (or file) this user may write, or fix its owner"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.EMFILE: ("too many open files", "raise `ulimit -n`, then run it again"),
    errno.EIO: ("an input/output error", "check the disk, then run it again"),
}


OWN_MESSAGES = {  # the start of an OSError's own message -> what to do
    "No usable temporary directory": "none of them took a test file: free some space, set TMPDIR to a writable "
                                     "folder, or raise `ulimit -f`, then run it again",
}


def failure_line(exc: BaseException, store: str | None = None) -> str:
    """One line for any failure: a TrendrecError's own message; an OSError as a sentence with its errno
    name and path (ENOSPC, EROFS, EFBIG...), or its own message when it has one that names no OS error
    (tempfile's); another error whose message names an OS error (TensorFlow's file errors are its own
    types) as that OS error; anything else its type and message, as a likely bug."""
    if isinstance(exc, TrendrecError):
        text = str(exc)
    elif isinstance(exc, OSError):
        code = exc.errno if isinstance(exc.errno, int) else _errno_in(str(exc))
        if not exc.filename and exc.strerror and code and os.strerror(code) not in exc.strerror:
            advice = next((a for start, a in OWN_MESSAGES.items() if exc.strerror.startswith(start)), "see -v")
            text = f"{exc.strerror} ({errno.errorcode.get(code, type(exc).__name__)}): {advice}"
        else:
            text = _os_line(exc, code, store)
    else:
        code = next((c for c in OS_ERRORS if os.strerror(c) in str(exc)), None)
        text = (f"{_os_line(exc, code, store)} ({type(exc).__name__})" if code else
                f"{type(exc).__name__}: {exc} (unexpected; run again with -v for the traceback)")
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= 1000 else line[:997] + "..."


def _os_line(exc: BaseException, code: int | None, store: str | None) -> str:
    """``what (ENAME) at where: what to do`` of an OS failure with errno ``code``."""
    what, advice = OS_ERRORS.get(code, (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, "see -v"))
    name = errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__
    where = getattr(exc, "filename", None) or (f"the store {store}" if store else "the store")
    return f"{what} ({name}) at {where}: {advice}"


def _errno_in(message: str) -> int | None:
    """The errno of an OSError that carries it only in its text, as pyarrow's do: ``[Errno 28] ...``."""
    found = re.search(r"errno (\d+)", message, flags=re.IGNORECASE)
    return int(found.group(1)) if found else None


TF_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3"}  # TensorFlow's C++ log levels; TF_ENABLE_ONEDNN_OPTS (numerics) is left alone
QUIET_LOGGERS = ("tensorflow", "absl", "h5py")  # Python loggers that warn about TensorFlow's internals


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up noise off stderr (`-v` shows it): its C++ log level, its Python
    loggers, and the lines its libraries write while they load ("All log messages before
    absl::InitializeLog()", oneDNN's notice), which no variable silences, so file descriptor 2 points at
    /dev/null while `tensorflow` itself is imported. TensorFlow is not imported here."""
    for key, value in TF_QUIET.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, and runs its module body with file descriptor 2 on /dev/null."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _without_stderr(spec.loader.exec_module)  # type: ignore[method-assign]
        return spec


def _without_stderr(function: Callable[[Any], None]) -> Callable[[Any], None]:
    def run(module: Any) -> None:
        sys.stderr.flush()
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
            function(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
    return run


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


if __name__ == "__main__":
    sys.exit(main())
