"""SIGKILL `trendrec ingest` and `trendrec aggregate` at random moments; count what a reader could see.

Per stage, a base store is built once (an earlier log ingested and aggregated) and one unkilled run
of the stage on a copy of it gives the reference: its duration and its files. Each trial then runs
the stage on a fresh copy, kills it with SIGKILL at a random moment inside that duration, and checks:

- ``between``: what a DuckDB hive glob reads (``raw/**/*.parquet``; for aggregate
  ``aggregates/daily.parquet/*/*.parquet`` together with ``month_weekday.parquet``) is neither
  exactly the old row set nor exactly the new one;
- ``stuck``: the re-run (what an Airflow retry does) fails, or leaves files whose bytes differ from
  the unkilled run's;
- ``leftovers``: after the re-run, temporary files (``*.tmp``, ``.link-*``) outside ``.staging``,
  snapshot or aggregate sets beyond the current one and the one before it, spill files, and
  anything left in ``.staging/ingest``;
- ``phases``: where the kills landed, by what they left: for ingest ``undecided`` (before the
  commit decision), ``decided`` (decision written, nothing visible yet), ``visible`` (raw/ switched,
  the quarantine renames or the tidying left), ``done``; for aggregate ``old`` or ``new`` tables.

The stage runs as ``recsys.cli.main([stage, ...])`` in a process forked from a parent that has
already imported trendrec, so the kill lands in the stage's work rather than in seconds of imports.
The commit is a small part of that work; ``--widen S`` sleeps S seconds before each of its file
steps (hard links into a new raw snapshot or aggregate set, renames, symlink switches), so that more
kills land in it (a slow disk).

    .venv/bin/python benchmarks/stage_kill.py --kills 20
    .venv/bin/python benchmarks/stage_kill.py --kills 20 --widen 0.004
    .venv/bin/python benchmarks/stage_kill.py --kills 3 --days 30   # the test's size
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.ingest.staging import INTENT  # noqa: E402
from pipeline.snapshots import TMP_LINK, sets  # noqa: E402
from pipeline.store import RAW_SNAPSHOT, Store  # noqa: E402
from recsys import cli  # noqa: E402

CONFIG = """store = "{store}"
[ingest]
batch_rows = 5000
[ingest.columns]
event_time = "ts"
item_id = "item"
quantity = "qty"
price = "price"
user_id = "cust"
order_id = "order"
"""


def write_log(path: Path, days: int, first: int, rows_per_day: int, seed: int) -> None:
    """A CSV of ``days`` days from day ``first`` (2011-01-01 = 0), every 50th line refused."""
    rng = random.Random(seed)
    start = pd.Timestamp("2011-01-01")
    lines = ["ts,item,qty,price,cust,order"]
    for d in range(first, first + days):
        day = (start + pd.Timedelta(days=d)).strftime("%Y-%m-%d")
        for r in range(rows_per_day):
            lines.append(f"{day} {r % 24:02d}:{r % 60:02d}:00,I{rng.randrange(300)},{rng.randrange(1, 5)},"
                         f"{rng.randrange(1, 900) / 100},C{rng.randrange(200)},O{d}-{r // 3}")
    lines[1::50] = ["not-a-time,X,1,1,C1,O"] * len(lines[1::50])
    path.write_text("\n".join(lines) + "\n")


def run_stage(argv: list[str], stderr: Path | None = None) -> int:
    """Fork a process that runs ``trendrec <argv>``; returns its pid. Its output goes nowhere, or its
    stderr to the file ``stderr`` (to say why an unkilled run failed)."""
    pid = os.fork()
    if pid == 0:  # the child: the CLI, then out without running the parent's cleanup
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if stderr else devnull, 2)
        code = 1
        try:
            code = cli.main(argv)
        finally:
            os._exit(code)
    return pid


def wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def fingerprint(store: Store, stage: str) -> tuple:
    """(rows, order-free hash) of each table a hive glob reads for ``stage``."""
    globs = [f"{store.raw}/**/*.parquet"] if stage == "ingest" else [
        f"{store.daily_path}/*/*.parquet", str(store.month_weekday_path)]
    out = []
    con = duckdb.connect()  # closed again: no DuckDB threads live in this process when it forks
    try:
        for glob in globs:
            try:
                frame = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").df()
            except duckdb.IOException:  # nothing matches: an empty table
                frame = pd.DataFrame()
            out.append((len(frame), int(pd.util.hash_pandas_object(frame, index=False).sum()) if len(frame) else 0))
    finally:
        con.close()
    return tuple(out)


def file_bytes(store: Store, stage: str) -> dict[str, str]:
    """{path as a reader names it: sha256} of what ``stage`` writes."""
    roots = ([store.raw, store.quarantine, store.raw_keys] if stage == "ingest"
             else [store.daily_path, store.month_weekday_path])
    out = {}
    for root in roots:
        files = [root] if root.is_file() else [Path(d) / f for d, _, fs in os.walk(root) for f in fs]
        for f in files:
            out[str(f.relative_to(store.root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def leftovers(store: Store) -> list[str]:
    """Temporary files outside ingest staging, sets beyond two, spill files, and unfinished ingest staging."""
    staged = store.ingest_staging
    found = [str(p.relative_to(store.root)) for p in store.root.rglob("*")  # the scratch folder .tmp/ itself stays
             if (p.name.endswith(".tmp") or p.name.startswith(TMP_LINK)) and staged not in p.parents and p != store.tmp]
    for parent, prefix in ((store.snapshots, RAW_SNAPSHOT), (store.aggregate_versions, "")):
        found += [f"extra set {p.name}" for p in sets(parent, prefix)[:-2]]
    spill = store.aggregates_spill
    found += [str(p) for p in spill.iterdir()] if spill.is_dir() else []
    return found + ([f"staging {p.name}" for p in staged.iterdir()] if staged.is_dir() else [])


def phase(store: Store, digest_of_new: str) -> str:
    staged = store.ingest_staging / digest_of_new
    if (store.commits / f"{digest_of_new}.json").exists():
        return "visible" if staged.exists() else "done"
    return "decided" if (staged / INTENT).exists() else "undecided"


def copy_store(src: Path, dst: Path) -> Store:
    shutil.copytree(src, dst, symlinks=True)
    return Store(dst)


def prepare(work: Path, days: int, rows_per_day: int) -> tuple[Path, Path]:
    """The base store (old log ingested and aggregated) and the new log."""
    write_log(work / "old.csv", days, 0, rows_per_day, 1)
    write_log(work / "new.csv", days, days // 2, rows_per_day, 2)  # half its days overlap the old log's
    base = work / "base"
    (work / "base.toml").write_text(CONFIG.format(store=base))
    for argv in (["ingest", str(work / "old.csv")], ["aggregate"]):
        assert wait(run_stage([*argv, "--config", str(work / "base.toml")])) == 0, argv
    return base, work / "new.csv"


def trial_argv(stage: str, store: Path, log: Path, work: Path) -> list[str]:
    config = work / f"{store.name}.toml"
    config.write_text(CONFIG.format(store=store))
    return ([stage, str(log)] if stage == "ingest" else [stage]) + ["--config", str(config)]


def run(stage: str, kills: int, seed: int, days: int, rows_per_day: int) -> dict:
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix=f"trendrec-kill-{stage}-"))
    base, log = prepare(work, days, rows_per_day)
    if stage == "aggregate":  # the stage's input: the new log committed, not yet aggregated
        assert wait(run_stage(trial_argv("ingest", base, log, work))) == 0
    old = fingerprint(Store(base), stage)
    ref = copy_store(base, work / "reference")
    began = time.monotonic()
    assert wait(run_stage(trial_argv(stage, ref.root, log, work))) == 0
    duration = time.monotonic() - began
    new, new_bytes = fingerprint(ref, stage), file_bytes(ref, stage)
    digest = sorted(p.stem for p in ref.commits.glob("*.json") if p.stem not in
                    {c.stem for c in Store(base).commits.glob("*.json")})
    totals = {"stage": stage, "kills": 0, "between": 0, "stuck": 0, "leftovers": 0, "phases": {},
              "run_seconds": round(duration, 2), "changed": old != new}
    for k in range(kills):
        store = copy_store(base, work / f"t{k:03d}")
        argv = trial_argv(stage, store.root, log, work)
        pid = run_stage(argv)
        time.sleep(rng.uniform(0.0, duration))
        os.kill(pid, signal.SIGKILL)
        wait(pid)
        totals["kills"] += 1
        seen = fingerprint(store, stage)
        if seen not in (old, new):
            totals["between"] += 1
            print(f"between: trial {k}: {seen}", file=sys.stderr)
        where = phase(store, digest[0]) if stage == "ingest" else "new" if seen == new else "old"
        totals["phases"][where] = totals["phases"].get(where, 0) + 1
        if wait(run_stage(argv)) != 0 or fingerprint(store, stage) != new or file_bytes(store, stage) != new_bytes:
            totals["stuck"] += 1
            print(f"stuck: trial {k}", file=sys.stderr)
        left = leftovers(store)
        totals["leftovers"] += len(left)
        if left:
            print(f"leftovers: trial {k}: {left[:5]}", file=sys.stderr)
        shutil.rmtree(store.root)
    shutil.rmtree(work)
    return totals


def widen(seconds: float) -> None:
    """Sleep ``seconds`` before each file step of a commit, in this process and the ones it forks."""
    from pipeline import snapshots
    from pipeline.aggregate import aggregate
    from pipeline.ingest import staging

    def slow(step):
        return lambda *args, **kwargs: (time.sleep(seconds), step(*args, **kwargs))[1]

    for module, name in ((snapshots, "link_or_copy"), (staging, "link_or_copy"), (staging, "_rename"),
                         (aggregate, "link_or_copy"), (snapshots, "replace_symlink")):
        setattr(module, name, slow(getattr(module, name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs per stage (20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", default="ingest,aggregate", help="ingest, aggregate or both (default)")
    parser.add_argument("--days", type=int, default=400, help="days per log; the new log adds half as many (400)")
    parser.add_argument("--rows-per-day", type=int, default=100, help="events per day (100)")
    parser.add_argument("--widen", type=float, default=0.0, help="seconds slept before each commit file step (0)")
    args = parser.parse_args()
    if args.widen > 0:
        widen(args.widen)
    rows = []
    for stage in args.stages.split(","):
        rows.append({**run(stage, args.kills, args.seed, args.days, args.rows_per_day), "widen": args.widen})
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'stage':12}{'kills':>6}{'between':>9}{'stuck':>7}{'leftovers':>11}{'run s':>8}  phases")
    for r in rows:
        print(f"{r['stage']:12}{r['kills']:>6}{r['between']:>9}{r['stuck']:>7}{r['leftovers']:>11}"
              f"{r['run_seconds']:>8}  {json.dumps(r['phases'])}")


if __name__ == "__main__":
    main()
