"""SIGKILL a process in the middle of push and of promote/rollback, again and again; count bad states.

A child process pushes placeholder runs one after another (``registry.push`` with an assembler that
fills a forecast part), or flips production with promote and rollback; the parent kills it with
SIGKILL at a random moment, then checks the store: a ``half`` state is a production.json that does
not parse or names a version that fails ``verify_version``, or a listed version that fails it; a
``stuck`` push is one whose re-run (what an Airflow retry does) leaves the killed run's version out of
production; ``leftovers`` counts models/ temp files and staging/trash folders still there after that
re-run (the registry's lock file excepted); ``resumed`` counts the kills that landed between a
version's rename and production.json (finished by the re-run).

    .venv/bin/python benchmarks/registry_kill.py --kills 20
    .venv/bin/python benchmarks/registry_kill.py --kills 20 --modes push --widen 0.05
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_shops import placeholder_assembler  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.store import Store, read_json, write_json  # noqa: E402
from recsys import registry  # noqa: E402

assemble = placeholder_assembler(["a", "b"], model_bytes=256 * 1024)  # enough model bytes to take some time


def push(cfg, run: str) -> dict:
    """Push ``run`` judged against today's production (what recsys.release passes)."""
    prod = registry.read_production(cfg.store)
    return registry.push(cfg, f"models/runs/{run}", assemble, against=prod and prod["version"],
                         reason="benchmark")


def child(mode: str, store_dir: str, widen: float) -> None:
    """Loop forever: push new runs (writing the in-flight name first), or promote/rollback.

    ``widen`` > 0 sleeps that long before every production.json write (a slow disk), so more kills
    land between a version's rename and the pointer's move, the window issue 20 found.
    """
    cfg = dataclasses.replace(load_config(None), store=store_dir)
    if widen > 0:
        write = registry._write_production
        registry._write_production = lambda *a: (time.sleep(widen), write(*a))[1]
    store = Store(store_dir)
    print("ready", flush=True)
    while True:
        if mode == "push":
            run = f"c{time.time_ns()}"
            write_json(run, store.root / "inflight")  # atomic: a kill never leaves half a name
            push(cfg, run)
        else:
            prod = registry.read_production(store)
            registry.rollback(store) if prod["history"] else registry.promote(store, registry.versions(store)[-1])


def check(cfg, mode: str) -> dict[str, int]:
    """Half states now; then the re-run of an interrupted push; then stuck and left-over counts."""
    store = Store(cfg.store)
    half = 0
    try:
        prod = registry.read_production(store)
        if prod is not None:
            registry.verify_version(store, prod["version"])
        for version in registry.versions(store):
            registry.verify_version(store, version)
    except registry.RegistryError as exc:
        print("half:", exc, file=sys.stderr)
        half = 1
    stuck, resumed = 0, int(any((store.models / v / registry.PENDING_FILE).exists()
                                  for v in registry.versions(store)))
    if mode == "push" and (store.root / "inflight").is_file():
        run = read_json(store.root / "inflight")
        try:
            result = push(cfg, run)
        except registry.RegistryError as exc:  # e.g. production moved before a resumed push finished
            result = {"version": registry.pushed_as(store, f"models/runs/{run}"), "error": str(exc)}
        version = result.get("version")
        stuck = int(version is not None and registry.read_production(store)["version"] != version)
    registry.clean_stale(store, older_than=0.0)  # the re-run's own sweep, without the live-file grace
    leftovers = len([p for p in store.models.glob(".*") if p.name != registry.LOCK_FILE])
    return {"half": half, "stuck": stuck, "resumed": resumed, "leftovers": leftovers}


def run(mode: str, kills: int, seed: int, widen: float) -> dict[str, int]:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"trendrec-kill-{mode}-"))
    cfg = dataclasses.replace(load_config(None), store=str(root / "store"))
    Store(cfg.store).ensure()
    for name in ("seed1", "seed2"):  # two versions, so rollback has somewhere to go
        push(cfg, name)
    totals = {"kills": 0, "half": 0, "stuck": 0, "resumed": 0, "leftovers": 0}
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, __file__, "--child", mode, cfg.store, str(widen)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        totals["kills"] += 1
        for key, value in check(cfg, mode).items():
            totals[key] += value
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per mode (20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="push,promote", help="push, promote or both (default)")
    parser.add_argument("--widen", type=float, default=0.0,
                        help="seconds slept before each production.json write in the child (0)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "STORE", "WIDEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return
    for mode in args.modes.split(","):
        print(json.dumps({"mode": mode, "widen": args.widen, **run(mode, args.kills, args.seed, args.widen)}),
              flush=True)


if __name__ == "__main__":
    main()
