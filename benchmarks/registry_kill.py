"""SIGKILL a process in the middle of push and of promote/rollback, again and again; count bad states.

A child process pushes placeholder candidates one after another (or flips production with promote
and rollback); the parent kills it with SIGKILL at a random moment, then checks the store: a
``half`` state is a production.json that does not parse or names a version that fails
``verify_version``, or a listed version that fails it; a ``stuck`` push is one whose re-run (what an
Airflow retry does) leaves the killed candidate's blessed version out of production; ``leftovers``
counts models/ temp files and staging/trash directories still there after that re-run; ``resumed``
counts the kills that landed between a version's rename and production.json (finished by the re-run).

    .venv/bin/python benchmarks/registry_kill.py --kills 20
    .venv/bin/python benchmarks/registry_kill.py --kills 20 --modes push --widen 0.05
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from pipeline import schemas as s  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.store import Store, write_json  # noqa: E402
from recsys import registry  # noqa: E402

TRENDS = pd.DataFrame({s.SEGMENT: ["a", "b"], s.TREND: [0.5, -0.5]})


def assemble(staging, version, evaluation):
    TRENDS.to_parquet(staging / registry.TREND_FILE)
    return {"segments": ["a", "b"]}


def candidate(cfg, name: str) -> Path:
    """A blessed placeholder candidate evaluated against today's production (made once per name)."""
    store = Store(cfg.store)
    path = store.candidates / name
    if not (path / "evaluation.json").is_file():
        path.mkdir(parents=True, exist_ok=True)
        (path / "model.keras").write_bytes(os.urandom(256 * 1024))  # enough bytes to take some time
        (path / "recommender.json").write_text("{}")
        prod = registry.read_production(store)
        write_json({"blessed": True, "reason": "benchmark", "metrics": {},
                    "production_version": prod and prod["version"]}, path / "evaluation.json")
    return path


def child(mode: str, store_dir: str, widen: float) -> None:
    """Loop forever: push new candidates (writing the in-flight name first), or promote/rollback.

    ``widen`` > 0 sleeps that long before every production.json write (a slow disk), so more kills
    land between a version's rename and the pointer's move, the window issue 20 found.
    """
    cfg = dataclasses.replace(load_config(None), store=store_dir)
    if widen > 0:
        write = registry._write_production
        registry._write_production = lambda *a: (time.sleep(widen), write(*a))[1]
    store = Store(store_dir)
    print("ready", flush=True)
    n = len(list(store.candidates.iterdir()))
    while True:
        if mode == "push":
            n += 1
            (store.root / "inflight").write_text(f"c{n:05d}")
            registry.push(cfg, candidate(cfg, f"c{n:05d}"), assemble)
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
        path = candidate(cfg, (store.root / "inflight").read_text())
        try:
            result = registry.push(cfg, path, assemble)
        except registry.RegistryError as exc:  # e.g. stale evaluation: the candidate was never versioned
            result = {"version": registry.pushed_as(store, path), "error": str(exc)}
        version = result.get("version")
        stuck = int(version is not None and registry.read_production(store)["version"] != version)
    registry.clean_stale(store, older_than=0.0)  # the re-run's own sweep, without the live-file grace
    leftovers = len([p for p in store.models.glob(".*")])
    return {"half": half, "stuck": stuck, "resumed": resumed, "leftovers": leftovers}


def run(mode: str, kills: int, seed: int, widen: float) -> dict[str, int]:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix=f"trendrec-kill-{mode}-"))
    cfg = dataclasses.replace(load_config(None), store=str(root / "store"))
    Store(cfg.store).ensure()
    for name in ("seed1", "seed2"):  # two versions, so rollback has somewhere to go
        registry.push(cfg, candidate(cfg, name), assemble)
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
