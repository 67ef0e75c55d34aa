"""The nightly run at scale, measured (issue 35): every stage of the retrain on a re-buying shop, as the DAGs run it.

It writes benchmarks/rebuy_shop.py's shop (default 100 M lines, 1 M customers, 50 k items over two
years; ``--events/--customers/--items/--days`` scale it down), ingests every day but the last as the
store's history (setup, untimed), then times the night, each stage one `trendrec <command> --json` in a
process of its own with a config written for the shop: the last day's ingest, then ``recsys.flow.RETRAIN``
(aggregate, the three families' training, judge) as the ``trendrec_retrain`` DAG chains it, the push,
and the ``trendrec_rerank`` DAG's rerank of the shop's lists for every customer active in the last 28
days. The lists stand in for the shop's own recommender (`trendrec candidates`): built between the
judge and the push, timed but outside the night's total.

Per stage: wall time (spawn to exit, imports included), peak RSS of the stage's process tree (the
largest process, from os.wait4 through benchmarks/harness.py's launcher), the load average just before
and the CPU seconds other processes used meanwhile, and rows or pairs per second where the stage's JSON
summary counts them. The config's training budgets (``[customers] train_customers``, ``[value]
train_customers``) are the defaults, printed with the table. ``--json PATH`` writes it all.

    .venv/bin/python benchmarks/nightly_scale.py --events 1000000 --customers 10000 --items 2000 \\
        --data /tmp/nightly-1m --json /tmp/nightly-1m.json
    .venv/bin/python benchmarks/nightly_scale.py --stages     # the stage list, from recsys.flow
    .venv/bin/python benchmarks/nightly_scale.py --check      # the shop's re-buy structure, on a tiny shop
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from harness import ROOT, TRENDREC, run_child, setup_logging
from rebuy_shop import HISTORY, LAST_DAY, Shop, customers, generate
from shapes import CONFIG

sys.path.insert(0, str(ROOT))
from recsys.flow import RETRAIN, stage  # noqa: E402  (standard library only at import)

NIGHT = ("ingest", *RETRAIN, "push", "rerank")  # flow stage names, in the order the night runs them
LISTS = "lists/base.parquet"  # the shop's lists, inside the store
LIST_LENGTH = 20
RECENT_DAYS = 28  # a customer is active when they bought in these days (candidates' default)
# per stage: keys of its JSON summary that count what it processed, the first one found wins
COUNTS = {"ingest": ("rows_in", "rows", "events"), "aggregate": ("events", "rows_in", "rows"),
          "push": ("pairs", "scored_pairs", "customers"), "rerank": ("pairs", "rows", "candidates")}


def night() -> list[tuple[str, str]]:
    """(flow stage, `trendrec` command) of every stage of the night, in order."""
    return [(name, stage(name).command) for name in NIGHT]


def write_config(work: Path, store: Path) -> Path:
    """shapes.toml's column mapping plus the store and the lists; every other key is the default."""
    path = work / "nightly.toml"
    text = CONFIG.read_text(encoding="utf-8")
    path.write_text(f'store = "{store}"\n{text}\n[rerank]\ncandidates = "{store / LISTS}"\n', encoding="utf-8")
    return path


def _count(name: str, summary: dict) -> int | None:
    for key in COUNTS.get(name, ()):
        if isinstance(summary.get(key), int):
            return summary[key]
    return None


def _measure(label: str, argv: list[str], work: Path, results: list[dict], in_total: bool = True) -> dict:
    done = run_child(argv, work, label)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    row = {"stage": label, "command": " ".join(argv[1:3]), "seconds": round(done.seconds, 2),
           "peak_rss_mib": round(done.peak_rss / 2**20), "load_before": [round(v, 2) for v in done.load],
           "others_cpu_s": None if done.others_cpu_s is None else round(max(done.others_cpu_s, 0), 1),
           "count": _count(label, summary), "in_total": in_total, "summary": summary}
    row["per_second"] = round(row["count"] / done.seconds) if row["count"] else None
    results.append(row)
    return row


def run_night(args: argparse.Namespace, work: Path) -> dict:
    shop = Shop(args.events, args.customers, args.items, args.days, seed=args.seed)
    data = work / "shop"
    if not (data / LAST_DAY).exists():
        lines = generate(shop, data)
    else:
        lines = {name: sum(1 for _ in open(data / name, "rb")) - 1 for name in (HISTORY, LAST_DAY)}
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    config = write_config(work, store)
    common = ["--config", str(config), "--json"]
    setup: list[dict] = []
    _measure("ingest history (setup)", [args.trendrec, "ingest", str(data / HISTORY), *common], work, setup, False)
    results: list[dict] = []
    for name, command in night():
        if name == "push":  # the shop's lists, before the push scores them
            _measure("shop's lists (candidates)", [args.trendrec, "candidates", "--users", str(args.customers),
                                                   "--n", str(LIST_LENGTH), "--output", LISTS, *common],
                     work, results, False)
        extra = [str(data / LAST_DAY)] if name == "ingest" else ["--run-id", "nightly"] if name == "train_forecast" else []
        _measure(name, [args.trendrec, command, *extra, *common], work, results)
    from pipeline.config import load_config

    cfg = load_config(config)
    return {"shop": vars(shop), "lines": lines, "cpus": os.cpu_count(), "load_at_start": os.getloadavg(),
            "budgets": {"customers.train_customers": cfg.customers.train_customers,
                        "value.train_customers": cfg.value.train_customers},
            "setup": setup, "stages": results,
            "night_seconds": round(sum(r["seconds"] for r in results if r["in_total"]), 1),
            "night_peak_rss_mib": max(r["peak_rss_mib"] for r in results if r["in_total"])}


def print_table(record: dict) -> None:
    s = record["shop"]
    print(f"\nnightly run: {record['lines']} lines, {s['customers']:,} customers, {s['items']:,} items, "
          f"{s['days']} days; {record['cpus']} CPUs; budgets {record['budgets']}")
    print(f"{'stage':28}{'seconds':>9}{'peak RSS MiB':>14}{'count':>12}{'per s':>10}{'load before':>13}"
          f"{'others CPU s':>14}")
    for r in record["setup"] + record["stages"]:
        label = r["stage"] + ("" if r["in_total"] else " *")
        count = "-" if r["count"] is None else f"{r['count']:,}"
        rate = "-" if r["per_second"] is None else f"{r['per_second']:,}"
        print(f"{label:28}{r['seconds']:>9.1f}{r['peak_rss_mib']:>14,}{count:>12}{rate:>10}"
              f"{r['load_before'][0]:>13.2f}{r['others_cpu_s'] if r['others_cpu_s'] is not None else '?':>14}")
    print(f"{'the night':28}{record['night_seconds']:>9.1f}{record['night_peak_rss_mib']:>14,}")
    print("* not in the night's total (setup, or the shop's own recommender)")


def check() -> str:
    """A tiny shop's favourites come back at about their customer's cycle; the stage list is the flow's."""
    shop = Shop(events=60_000, customers=300, items=400, days=365, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        generate(shop, Path(tmp))
        log = pacsv.read_csv(Path(tmp) / HISTORY).to_pandas()
    people = customers(shop)
    log = log.dropna(subset=["CustomerID"])
    log["day"] = log["InvoiceDate"].dt.normalize()
    near = []
    for cid, rows in log.groupby("CustomerID"):
        c = int(cid) - 12_346
        favourite = f"{10_000 + people.favourites[c, 0]}{'A' if people.favourites[c, 0] % 5 == 0 else ''}"
        days = np.sort(rows.loc[rows["StockCode"].astype(str) == favourite, "day"].unique())
        if len(days) >= 5:
            gap = np.median(np.diff(days).astype("timedelta64[D]").astype(int))
            near.append(abs(gap - people.cycle[c]) <= max(2, people.cycle[c] // 4))
    assert len(near) >= 100, f"only {len(near)} customers re-bought their favourite 5 times"
    assert np.mean(near) >= 0.9, f"favourites recur at their cycle for {np.mean(near):.0%} only"
    assert [n for n, _ in night()] == ["ingest", *RETRAIN, "push", "rerank"]
    return "shop ok"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--events", 100_000_000), ("--customers", 1_000_000), ("--items", 50_000),
                          ("--days", 730), ("--seed", 0)):
        ap.add_argument(flag, type=lambda v: int(v.replace("_", "")), default=default)
    ap.add_argument("--data", type=Path, help="keep the shop and the store here (a shop found is reused)")
    ap.add_argument("--json", type=Path, help="write the record here")
    ap.add_argument("--trendrec", default=str(TRENDREC), help=f"the CLI to time (default {TRENDREC})")
    ap.add_argument("--stages", action="store_true", help="print the night's stages and commands, one a line")
    ap.add_argument("--check", action="store_true", help="check the shop's re-buy structure on a tiny shop")
    args = ap.parse_args()
    if args.stages or args.check:
        print("\n".join(f"{n} {c}" for n, c in night()) if args.stages else check())
        return
    setup_logging()
    work = args.data or Path(tempfile.mkdtemp(prefix="trendrec-nightly-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        record = run_night(args, work)
    finally:
        if not args.data:
            shutil.rmtree(work, ignore_errors=True)
    print_table(record)
    if args.json:
        args.json.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
