"""Every `trendrec` command under three OS faults: a read-only store, a full disk, a file-size limit.

Builds a store (``--shop tiny``: the whole flow on a 10 % sample of the demo data, twice, so production
has a history, plus a judged run not pushed yet and a new log ingested but not aggregated, so every
command has work to do; ``--shop quick``: a synthetic log ingested and aggregated, two placeholder
releases pushed, a second log ingested), then runs each command in a child process under each fault:

- ``read-only``: as root the store is bind-mounted onto itself read-only (EROFS); otherwise its files
  lose their write bits (EACCES);
- ``disk-full``: the store lives on a small tmpfs of its own, filled up to the last byte (ENOSPC); needs
  root (mount), otherwise skipped and said so;
- ``file-size``: ``RLIMIT_FSIZE`` 0 in the child, SIGXFSZ ignored, so any write that grows a file fails
  (EFBIG); runs everywhere.

A cell is ``ok`` when the command either ran and wrote nothing (a command that only reads) or ended with
exit 1, exactly one line on stderr (``trendrec CMD: error: ...``) and, with ``--json``, one JSON error
object on stdout, no traceback; and in both cases the store (every path, file's bytes and link target)
is byte-for-byte what it was. Prints the matrix (command x fault: ok or FAIL, and why: ``ran``, or the
errno the line names) and one JSON line per cell with ``--json``. tests/core/test_cli_faults.py runs it quick.

    .venv/bin/python benchmarks/cli_faults.py --shop tiny
    .venv/bin/python benchmarks/cli_faults.py --shop quick --commands ingest,rerank --faults file-size
    .venv/bin/python benchmarks/cli_faults.py --shop tiny --work /tmp/faults --commands evaluate,push,demo,report
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_shops import build_quick, build_tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("read-only", "disk-full", "file-size")
COMMANDS = {  # row name -> the command line (store and config are added)
    "ingest": ["ingest", "{extra}"], "aggregate": ["aggregate"], "train": ["train", "--run-id", "faulted"],
    "nextbasket": ["nextbasket"], "value": ["value"], "evaluate": ["evaluate"], "push": ["push"],
    "rerank": ["rerank"], "models promote": ["models", "promote", "v0001"], "models rollback": ["models", "rollback"],
    "models list": ["models", "list"], "segments": ["segments"], "status": ["status"],
    "candidates": ["candidates", "--users", "50"], "report": ["report"],
    "evaluate-rerank": ["evaluate-rerank", "--weeks", "1", "--methods", "g_topfreq,p_topfreq"],
    "backtest": ["backtest", "--cutoffs", "1", "--run-id", "faulted"],
    "tune": ["tune", "--trials", "1", "--epochs", "1", "--tune-id", "faulted"], "demo": ["demo"],
}
NOT_RUN = {"serve": "a server runs until stopped; its own faults (a busy or bad port) are tests/serve's"}


class Unavailable(Exception):
    """A fault this machine cannot make (no root for a mount): the cell is skipped, with this reason."""


def tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root``: a folder, a link's target or a file's sha256."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(folder) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        raise Unavailable(f"mount {' '.join(args)} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def read_only(store: Path):
    if os.geteuid() == 0:  # root writes through any mode bits: a read-only bind mount of the store itself
        _mount("--bind", str(store), str(store))
        try:
            _mount("-o", "remount,bind,ro", str(store))
            yield "EROFS"
        finally:
            subprocess.run(["umount", str(store)], check=True)
        return
    modes = {p: p.lstat().st_mode for p in [store, *store.rglob("*")] if not p.is_symlink()}
    for p, mode in modes.items():
        p.chmod(mode & ~0o222)
    try:
        yield "EACCES"
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@contextlib.contextmanager
def disk_full(store: Path):
    """The store's own tmpfs (see ``disk_of``) filled to the last byte beside it."""
    if not os.path.ismount(store.parent):
        raise Unavailable("the store is not on a file system of its own (building one needs root: mount)")
    filler = store.parent / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 20, 4096, 1):
            try:
                while fh.write(b"\0" * size):
                    pass
            except OSError:  # ENOSPC: on to smaller writes, down to the last byte
                pass
    try:
        yield "ENOSPC"
    finally:
        filler.unlink()


@contextlib.contextmanager
def file_size(store: Path):
    yield "EFBIG"


def _size_limit() -> None:  # in the child, before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def run_command(argv: list[str], fault: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    env.pop("TRENDREC_STORE", None), env.pop("TRENDREC_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "recsys.cli", *argv, "--json"], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600, preexec_fn=_size_limit if fault == "file-size" else None)


def judge(name: str, done: subprocess.CompletedProcess, changed: list[str]) -> dict:
    """The cell: what happened and whether it is ok (see the module docstring)."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    try:
        out = json.loads(done.stdout)
    except ValueError:
        out = None
    head = f"trendrec {name.split()[0]}: error: "
    cell = {"rc": done.returncode, "stderr_lines": len(lines), "traceback": "Traceback" in done.stderr,
            "changed": changed[:5], "line": lines[-1][:300] if lines else ""}
    if done.returncode == 0:
        cell["outcome"] = "ran, wrote nothing"
        cell["ok"] = isinstance(out, dict) and "error" not in out and not cell["traceback"] and not changed
    else:
        cell["outcome"] = "one line"
        cell["ok"] = (done.returncode == 1 and len(lines) == 1 and lines[0].startswith(head) and not cell["traceback"]
                      and isinstance(out, dict) and set(out) == {"error", "stage"} and not changed)
    return cell


def matrix(store: Path, config: Path, extra: Path, commands: list[str], faults: list[str]) -> list[dict]:
    pristine = store.parent.parent / "pristine"
    shutil.rmtree(pristine, ignore_errors=True)
    shutil.copytree(store, pristine, symlinks=True)
    makers = {"read-only": read_only, "disk-full": disk_full, "file-size": file_size}
    cells = []
    for name in commands:
        argv = [a.format(extra=extra) for a in COMMANDS[name]] + ["--config", str(config), "--store", str(store)]
        for fault in faults:
            before = tree(store)
            try:
                with makers[fault](store) as errno_name:
                    done = run_command(argv, fault, store.parent.parent)
            except Unavailable as exc:
                cells.append({"command": name, "fault": fault, "ok": None, "outcome": f"skipped: {exc}"})
                continue
            after = tree(store)
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            cell = {"command": name, "fault": fault, "expected_errno": errno_name, **judge(name, done, changed)}
            cells.append(cell)
            print(json.dumps(cell), file=sys.stderr, flush=True)  # progress: the cell, as it ends
            if changed:  # put the store back for the next cell
                shutil.rmtree(store)
                shutil.copytree(pristine, store, symlinks=True)
    return cells


def _why(cell: dict) -> str:
    """How a cell ended: ``ran``, the errno its line names (``EROFS``), else its exit code."""
    if cell.get("rc") == 0:
        return "ran"
    named = re.search(r"\(([A-Z][A-Z0-9]{2,})\)", cell.get("line", ""))
    return named.group(1) if named else f"rc {cell.get('rc', '-')}"


def print_matrix(cells: list[dict], faults: list[str]) -> None:
    rows = list(dict.fromkeys(c["command"] for c in cells))
    mark = {True: "ok", False: "FAIL", None: "skipped"}
    print(f"{'command':18}" + "".join(f"{f:>22}" for f in faults))
    for row in rows:
        mine = {c["fault"]: c for c in cells if c["command"] == row}
        texts = []
        for f in faults:
            c = mine.get(f)
            texts.append("-" if c is None else f"{mark[c['ok']]} ({_why(c)})")
        print(f"{row:18}" + "".join(f"{t:>22}" for t in texts))
    for name, why in NOT_RUN.items():
        print(f"{name:18}not run: {why}")
    bad = [c for c in cells if c["ok"] is False]
    print(f"cells: {len(cells)}, ok: {sum(c['ok'] is True for c in cells)}, failed: {len(bad)}, "
          f"skipped: {sum(c['ok'] is None for c in cells)}")
    for c in bad:
        print(f"FAIL {c['command']} / {c['fault']}: rc {c['rc']}, {c['stderr_lines']} stderr lines, traceback "
              f"{c['traceback']}, changed {c['changed']}: {c['line']}")


def _shop(work: Path, store: Path, shop: str) -> tuple[Path, Path, Path]:
    """The shop's store at ``store``, built once per ``work`` (kept as work/built-<shop>, copied in again
    on the next run: the store's files name absolute paths, so it always lives at the same place)."""
    built, saved = work / f"built-{shop}", work / f"built-{shop}.json"
    if saved.is_file():
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(built, store, symlinks=True)
        config, extra = json.loads(saved.read_text())
        return store, Path(config), Path(extra)
    store, config, extra = (build_tiny if shop == "tiny" else build_quick)(work, store)
    shutil.rmtree(built, ignore_errors=True)
    shutil.copytree(store, built, symlinks=True)
    saved.write_text(json.dumps([str(config), str(extra)]))
    return store, config, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shop", choices=["tiny", "quick"], default="tiny")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma list of COMMANDS' names")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--json", action="store_true", help="one JSON line per cell after the matrix")
    parser.add_argument("--work", type=Path, help="build the shop here once and reuse it (the tiny shop's build "
                                                  "trains three runs: minutes); default: a temporary folder")
    args = parser.parse_args()
    commands, faults = args.commands.split(","), args.faults.split(",")
    unknown = sorted(set(commands) - set(COMMANDS)) + sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown command or fault: {', '.join(unknown)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="trendrec-faults-"))
    disk = work / "disk"
    disk.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(disk)]).returncode == 0
    try:
        store, config, extra = _shop(work, disk / "store", args.shop)
        cells = matrix(store, config, extra, commands, faults)
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print_matrix(cells, faults)
    if args.json:
        for c in cells:
            print(json.dumps(c))


if __name__ == "__main__":
    main()
