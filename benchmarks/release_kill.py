"""SIGKILL the release stages of `trendrec` at random moments; count half states, stuck re-runs, leftovers.

A child process (``--build``) makes benchmarks/fault_shops.py's tiny shop and four states of it,
each kept as a pristine copy: ``base`` (the shop as built, no run ``fourth``: what ``train --run-id
fourth`` starts from), ``trained`` (run ``fourth`` with its forecast part only), ``parts`` (its
next-basket and value parts trained too), ``judged`` (judged, not pushed; production v0002 with v0001
in its history). Per stage, one unkilled run on its state gives the reference (its duration, what a
reader sees after it, the store's paths); each trial then restores the state (same path: a store's
files name absolute paths), forks `trendrec <stage>` (``recsys.cli.main`` in a process forked from
this one, which has imported no TensorFlow), kills it with SIGKILL at a random moment inside that
duration (an unkilled run that fails stops the script with its stderr), and checks:

- ``half``: production.json does not parse, production does not load (``registry.production``), a
  listed version fails ``verify_version``, or what the stage's reader sees is neither the old nor the
  new state (a part folder with other files than the reference's, a judged set of some parts or a mix of
  verdicts push refuses, a re-ranked file with other bytes, production on a third version; the paths it
  added and removed are printed);
- ``stuck``: the re-run (what an Airflow retry does) fails, or what a reader sees after it is not
  what it saw after the unkilled run (a rollback killed after it finished is not run again: that
  would roll back one version more);
- ``leftovers``: paths after the re-run that the unkilled run did not leave (digits in names count as
  one), and their count; ``young_temp`` apart: a killed production.json write's temp file, which the
  registry sweeps at its next push, promote or rollback once it is 60 s old (a younger one may be a
  live writer's).

    .venv/bin/python benchmarks/release_kill.py --kills 20
    .venv/bin/python benchmarks/release_kill.py --shop quick --kills 3 --stages promote,rollback,rerank
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stage_kill import run_stage, wait  # noqa: E402  (forks `trendrec <argv>`, waits for it)

from pipeline.store import Store  # noqa: E402
from recsys import registry, runs  # noqa: E402

RUN = "models/runs/fourth"
STAGES = {  # stage -> (pristine state it starts from, command line)
    "promote": ("judged", ["models", "promote", "v0001"]),
    "rollback": ("judged", ["models", "rollback"]),
    "rerank": ("judged", ["rerank"]),
    "push": ("judged", ["push", RUN]),
    "evaluate": ("parts", ["evaluate", RUN]),
    "value": ("trained", ["value", RUN]),
    "nextbasket": ("trained", ["nextbasket", RUN]),
    "train": ("base", ["train", "--run-id", RUN.rsplit("/", 1)[1]]),
}
PARTS = {"train": "forecast", "value": "value", "nextbasket": "nextbasket"}  # stage -> the run folder it writes


def build(work: Path, shop: str) -> None:
    """The shop at work/store and its pristine states (run in a child: it trains, so TensorFlow loads).
    The quick shop trains nothing: it has the ``judged`` state's production and history only."""
    from fault_shops import build_quick, build_tiny

    from pipeline.config import load_config
    from recsys import flow

    store, config, _ = (build_tiny if shop == "tiny" else build_quick)(work, work / "store")
    shutil.copy(config, work / "shop.toml")
    if shop == "quick":
        shutil.copytree(store, work / "judged", symlinks=True)
        return
    shutil.copytree(store, work / "base", symlinks=True)
    cfg = load_config(config)
    run_dir = flow.run_stage("train_forecast", cfg, run_key="fourth")["run_dir"]
    shutil.copytree(store, work / "trained", symlinks=True)
    for stage in ("train_nextbasket", "train_value"):
        flow.run_stage(stage, cfg, {"run_dir": run_dir})
    shutil.copytree(store, work / "parts", symlinks=True)
    flow.run_stage("judge", cfg, {"run_dir": run_dir})
    shutil.copytree(store, work / "judged", symlinks=True)


def restore(work: Path, stage: str) -> Store:
    """The stage's pristine state at work/store; for rerank without the lists an earlier rerank wrote
    (a re-rank already up to date writes nothing)."""
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(work / STAGES[stage][0], store, symlinks=True)
    if stage == "rerank":
        shutil.rmtree(store / "reranked", ignore_errors=True)
    return Store(store)


def seen(stage: str, store: Store) -> object:
    """What the stage's reader sees now; raises registry.RegistryError on a broken release."""
    prod = registry.read_production(store)
    if prod is not None:
        registry.production(store)  # production loads
    for version in registry.versions(store):
        registry.verify_version(store, version)
    run = store.root / RUN
    if stage in PARTS:
        part = run / PARTS[stage]
        return sorted(str(p.relative_to(part)) for p in part.rglob("*")) if part.exists() else None
    if stage == "evaluate":  # what push reads: the last complete judge's set (RunError on a mix: a half state)
        return tuple(sorted(runs.judged_verdicts(runs.inside(store, run))))
    if stage == "rerank":  # the outputs, reranked/<name>.parquet; a killed write's .<name>.parquet.*.tmp is
        # none (no reader's *.parquet glob matches it): a leftover, if the re-run does not sweep it
        return sorted((p.name, p.read_bytes()) for p in store.reranked.glob("*.parquet") if p.is_file())
    return prod and (prod["version"], tuple(prod.get("history", [])))


def paths(store: Store) -> set[str]:
    """Every path of the store, digit runs as '#' (names carry times and process ids)."""
    return {re.sub(r"\d+", "#", str(p.relative_to(store.root))) for p in store.root.rglob("*")}


def trial(work: Path, stage: str, argv: list[str], delay: float, old, new, new_paths: set[str]) -> dict:
    store = restore(work, stage)
    old_paths = paths(store)
    pid = run_stage(argv)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    wait(pid)
    out = {"half": 0, "stuck": 0, "leftovers": 0, "young_temp": 0, "landed": "old"}
    try:
        now = seen(stage, store)
        out["landed"] = "old" if now == old else "new" if now == new else "between"
        out["half"] = int(out["landed"] == "between")
    except Exception as exc:  # noqa: BLE001 - any failure to read the release is a half state
        out["half"], out["landed"] = 1, f"broken: {type(exc).__name__}"
    if out["half"]:
        print(f"half: {stage} after {delay:.2f} s: {out['landed']}: {sorted(paths(store) - old_paths)[:6]} "
              f"more, {sorted(old_paths - paths(store))[:6]} fewer paths than before", file=sys.stderr)
    # a rollback that finished before the kill is done: run again it would roll back one version more
    err = work / f"{stage}.rerun.stderr"
    rc = 0 if stage == "rollback" and out["landed"] == "new" else wait(run_stage(argv, stderr=err))
    try:
        again = seen(stage, store)
    except Exception as exc:  # noqa: BLE001
        again = f"broken: {exc}"
    if rc != 0 or again != new:
        out["stuck"] = 1
        why = err.read_text().strip().splitlines()[-1:] if rc and err.is_file() else []
        print(f"stuck: {stage} after {delay:.2f} s: rc {rc} {why}", file=sys.stderr)
    extra = sorted(paths(store) - new_paths)
    young = [p for p in extra if p.startswith(f"models/.{registry.PRODUCTION_FILE}.") and p.endswith(".tmp")]
    out["young_temp"], extra = len(young), [p for p in extra if p not in young]
    out["leftovers"] = len(extra)
    if extra:
        print(f"leftovers: {stage} after {delay:.2f} s: {extra[:6]}", file=sys.stderr)
    return out


def run(work: Path, stage: str, kills: int, seed: int) -> dict:
    argv = [*STAGES[stage][1], "--config", str(work / "shop.toml")]
    rng = random.Random(seed)
    store = restore(work, stage)
    old = seen(stage, store)
    began, err = time.monotonic(), work / f"{stage}.stderr"
    if wait(run_stage(argv, stderr=err)) != 0:
        raise SystemExit(f"the unkilled {stage} failed: trendrec {' '.join(argv)}\n{err.read_text()[-3000:]}")
    duration = time.monotonic() - began
    new, new_paths = seen(stage, store), paths(store)
    totals = {"stage": stage, "kills": 0, "half": 0, "stuck": 0, "leftovers": 0, "young_temp": 0, "landed": {},
              "run_seconds": round(duration, 1), "changed": old != new}
    print(f"{stage}: unkilled run {duration:.1f} s", file=sys.stderr, flush=True)
    for _ in range(kills):
        got = trial(work, stage, argv, rng.uniform(0.0, duration), old, new, new_paths)
        print(f"{stage}: kill {totals['kills'] + 1} of {kills}: {json.dumps(got)}", file=sys.stderr, flush=True)
        totals["kills"] += 1
        for key in ("half", "stuck", "leftovers", "young_temp"):
            totals[key] += got[key]
        totals["landed"][got["landed"]] = totals["landed"].get(got["landed"], 0) + 1
    return totals


def print_table(rows: list[dict]) -> None:
    print(f"{'stage':12}{'kills':>6}{'half':>6}{'stuck':>7}{'leftovers':>11}{'young temp':>12}{'run s':>8}  landed")
    for r in rows:
        print(f"{r['stage']:12}{r['kills']:>6}{r['half']:>6}{r['stuck']:>7}{r['leftovers']:>11}{r['young_temp']:>12}"
              f"{r['run_seconds']:>8}  {json.dumps(r['landed'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per stage (20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma list of {', '.join(STAGES)}")
    parser.add_argument("--shop", choices=["tiny", "quick"], default="tiny",
                        help="quick: placeholder releases, no training (promote, rollback and rerank only)")
    parser.add_argument("--work", type=Path, help="keep (and reuse) the built shop here")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.build, args.shop)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="trendrec-release-kill-"))
    if not (work / "judged").is_dir():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, __file__, "--build", str(work), "--shop", args.shop], check=True)
    rows = []
    try:
        for stage in args.stages.split(","):
            rows.append(run(work, stage, args.kills, args.seed))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)


if __name__ == "__main__":
    main()
