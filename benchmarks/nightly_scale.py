"""The nightly run at scale (issue 35): a re-buying shop's retrain timed stage by stage, as the DAGs run it.

It writes benchmarks/rebuy_shop.py's shop (default 100 M lines, 1 M customers, 50 k items over two
years; ``--events/--customers/--items/--days`` scale it down), ingests every day but the last as the
store's history and aggregates it (the nights before: setup, timed apart), then times the night, each
stage one `trendrec <command> --json` in a process of its own with a config written for the shop: the
last day's ingest, then ``recsys.flow.RETRAIN`` (aggregate, the three families' training, judge) as the
``trendrec_retrain`` DAG runs it (``recsys.flow.upstream_of``: the next-basket and value trainings side by
side, two processes at once, as two workers or a LocalExecutor with parallelism 2 run them; the night counts
the longer; ``--one-at-a-time`` runs each alone), the push, and the ``trendrec_rerank`` DAG's rerank of the shop's
lists for every customer active in the last 28 days. The lists stand in for the shop's own recommender
(`trendrec candidates`): built between the judge and the push, timed but outside the night's total.

Per stage: wall time (spawn to exit, imports included), peak RSS of the stage's process tree (the
largest process, from os.wait4 through benchmarks/harness.py's launcher), its own CPU seconds (user +
system), the load average just before and the CPU seconds other processes used meanwhile, and rows or
pairs per second where the stage's JSON summary counts them. The config's budgets (``[customers] train_customers`` and ``validation_customers``,
``[value] train_customers``) are the defaults, printed with the table; ``--validation-customers N`` sets the
validation one. ``--json PATH`` writes it all.

    .venv/bin/python benchmarks/nightly_scale.py --events 1000000 --customers 10000 --items 2000 \\
        --data /tmp/nightly-1m --json /tmp/nightly-1m.json
    .venv/bin/python benchmarks/nightly_scale.py --table /tmp/nightly-1m.json   # its table again
    .venv/bin/python benchmarks/nightly_scale.py --data /var/tmp/n100m --json /var/tmp/n100m/a.json \
        --reuse-setup --until train_value     # the 100 M shop: the nights before kept, stop after value
    .venv/bin/python benchmarks/nightly_scale.py --data /var/tmp/n100m --json /var/tmp/n100m/b.json \
        --resume-from judge                   # ... and go on from the judge in the store it left
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from harness import ROOT, TRENDREC, log, run_child, setup_logging
from rebuy_shop import HISTORY, LAST_DAY, Shop, customers, generate
from shapes import CONFIG

sys.path.insert(0, str(ROOT))
from recsys.flow import RETRAIN, stage, upstream_of  # noqa: E402  (standard library only at import)

NIGHT = ("ingest", *RETRAIN, "push", "rerank")  # flow stage names, in the order the night runs them
LISTS = "lists/base.parquet"  # the shop's lists, inside the store
LIST_LENGTH = 20
RECENT_DAYS = 28  # a customer is active when they bought in these days (candidates' default)
# per stage: the key path in its JSON summary that counts what it processed, and what it counts
# (aggregate counts no events: a full aggregation reads the whole log; the next-basket model and the judge
# report no count of their own; the value stage counts the hold-out customers it judged, a sample when the shop
# has more than [value] fit_customers, not the customers it forecast)
COUNTS = {"ingest history (setup)": ("rows_in", "rows"), "ingest": ("rows_in", "rows"),
          "train_forecast": ("n_windows", "windows"),
          "train_value": ("customers", "hold-out customers"), "shop's lists (candidates)": ("rows", "pairs"),
          "push": ("parts.nextbasket.scores.pairs", "pairs"), "rerank": ("rows", "pairs")}


def night() -> list[tuple[str, str]]:
    """(flow stage, `trendrec` command) of every stage of the night, in order."""
    return [(name, stage(name).command) for name in NIGHT]


def write_config(work: Path, store: Path, validation_customers: int | None = None) -> Path:
    """shapes.toml's column mapping plus the store and the lists (and a validation budget when given);
    every other key is the default."""
    path = work / "nightly.toml"
    text = CONFIG.read_text(encoding="utf-8")
    lists = f'[rerank]\ncandidates = "{store / LISTS}"\n'
    if validation_customers is not None:
        lists += f"[customers]\nvalidation_customers = {validation_customers}\n"
    path.write_text(f'store = "{store}"\n{text}\n{lists}', encoding="utf-8")
    return path


def _count(row: dict, lines: dict[str, int]) -> tuple[int | None, str]:
    """(how many, of what) the stage of ``row`` processed, from its summary; lines: per file of the shop."""
    if "aggregate" in row["stage"] and row["summary"].get("mode") == "full":  # all the store holds by then
        return lines[HISTORY] + (0 if "setup" in row["stage"] else lines[LAST_DAY]), "events"
    path, unit = COUNTS.get(row["stage"], ("", ""))
    value: object = row["summary"]
    for key in filter(None, path.split(".")):
        value = value.get(key) if isinstance(value, dict) else None
    return (value, unit) if isinstance(value, int) else (None, "")


def _add_counts(record: dict) -> dict:
    for row in record["setup"] + record["stages"]:
        count, unit = _count(row, record["lines"])
        row.update(count=count, unit=unit, per_second=round(count / row["seconds"]) if count else None)
    return record


def _measure(label: str, argv: list[str], work: Path, results: list[dict], in_total: bool = True) -> dict:
    done = run_child(argv, work, label)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    row = {"stage": label, "command": " ".join(argv[1:3]), "seconds": round(done.seconds, 2),
           "peak_rss_mib": round(done.peak_rss / 2**20), "cpu_s": round(done.cpu_s, 1),
           "load_before": [round(v, 2) for v in done.load],
           "others_cpu_s": None if done.others_cpu_s is None else round(max(done.others_cpu_s, 0), 1),
           "in_total": in_total, "summary": summary}
    results.append(row)
    return row


def _shop_files(shop: Shop, data: Path) -> dict[str, int]:
    """The shop's two CSV files in ``data``, written unless there already; {file: lines}."""
    if not (data / LAST_DAY).exists():
        return generate(shop, data)
    return {name: sum(1 for _ in open(data / name, "rb")) - 1 for name in (HISTORY, LAST_DAY)}


def _extra(name: str, data: Path) -> list[str]:
    """The arguments a stage of the night adds: the last day's file, the training run's name."""
    return {"ingest": [str(data / LAST_DAY)], "train_forecast": ["--run-id", "nightly"]}.get(name, [])


def run_night(args: argparse.Namespace, work: Path) -> dict:
    """The setup, then every stage of the night measured; the record (see ``print_table``)."""
    shop = Shop(args.events, args.customers, args.items, args.days, seed=args.seed)
    data, store, load = work / "shop", work / "store", os.getloadavg()
    lines = _shop_files(shop, data)
    setup_copy = work / "store-after-setup"
    config = write_config(work, store, args.validation_customers)
    common = ["--config", str(config), "--json"]
    setup: list[dict] = []
    results: list[dict] = []
    from pipeline.config import load_config

    cfg = load_config(config)
    record = {"shop": vars(shop), "lines": lines, "cpus": os.cpu_count(), "load_at_start": load,
              "budgets": {"customers.train_customers": cfg.customers.train_customers,
                          "customers.validation_customers": cfg.customers.validation_customers,
                          "value.train_customers": cfg.value.train_customers},
              "setup": setup, "stages": results}
    names = [n for n, _ in night()]
    start = names.index(args.resume_from) if args.resume_from else 0
    if start:  # the store as an earlier run of this shop left it (--until): neither reset nor set up again
        if not store.is_dir():
            raise SystemExit(f"--resume-from {args.resume_from}: no store in {work} to go on from")
        record["resumed_from"] = args.resume_from
    elif args.reuse_setup and setup_copy.is_dir():  # the nights before, kept by an earlier run of this shop
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(setup_copy, store, symlinks=True)
        record["setup_reused"] = str(setup_copy)
    else:  # the nights before: the history ingested and aggregated, so that tonight's aggregate is incremental
        shutil.rmtree(store, ignore_errors=True)
        history = ["ingest", str(data / HISTORY)]
        _measure("ingest history (setup)", [args.trendrec, *history, *common], work, setup, False)
        _measure("aggregate history (setup)", [args.trendrec, "aggregate", *common], work, setup, False)
        if args.reuse_setup:
            shutil.rmtree(setup_copy, ignore_errors=True)
            shutil.copytree(store, setup_copy, symlinks=True)
    commands = dict(night())
    record["one_at_a_time"] = bool(args.one_at_a_time)
    for group in side_by_side(names[start:], args.one_at_a_time):
        if "push" in group:  # the shop's lists, before the push scores them
            lists = ["candidates", "--users", str(args.customers), "--n", str(LIST_LENGTH), "--output", LISTS]
            _measure("shop's lists (candidates)", [args.trendrec, *lists, *common], work, results, False)
        argvs = {name: [args.trendrec, commands[name], *_extra(name, data), *common] for name in group}
        if len(group) == 1:
            _measure(group[0], argvs[group[0]], work, results)
        else:  # as the DAG's workers run them: each in a process of its own, at the same time
            log.info("side by side: %s", ", ".join(group))
            with ThreadPoolExecutor(len(group)) as pool:
                rows = list(pool.map(lambda name: _measure(name, argvs[name], work, []), group))
            for row in rows:
                results.append(row | {"side_by_side": [n for n in group if n != row["stage"]]})
        _summarise(record)
        if args.json:  # after every stage: a night stopped half-way leaves the stages it measured
            args.json.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        if args.until in group:
            break
    return record


def side_by_side(names: list[str], one_at_a_time: bool = False) -> list[list[str]]:
    """The night's stages in the groups the DAGs run at once (``recsys.flow.upstream_of``): a stage joins
    the group before it when it waits for the same stages as the group's first one (so for none of the
    group's); each group waits for the one before. ``one_at_a_time``: every stage alone, in the flow's order
    (a LocalExecutor with parallelism 1)."""
    groups: list[list[str]] = []
    for name in names:
        if groups and not one_at_a_time and set(upstream_of(name)) == set(upstream_of(groups[-1][0])):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _summarise(record: dict) -> dict:
    """The counts and the night's totals, over the stages measured so far: stages run side by side count
    once, by the longest of them."""
    night_rows = [r for r in record["stages"] if r["in_total"]]
    together: dict[frozenset, float] = {}
    for r in night_rows:
        key = frozenset([r["stage"], *r.get("side_by_side", ())])
        together[key] = max(together.get(key, 0.0), r["seconds"])
    record.update(night_seconds=round(sum(together.values()), 1),
                  night_peak_rss_mib=max(r["peak_rss_mib"] for r in night_rows),
                  night_stages=[r["stage"] for r in night_rows])
    return _add_counts(record)


def print_table(record: dict) -> None:
    """The record as one Markdown table, a row per stage and one for the night."""
    s, lines = record["shop"], sum(record["lines"].values())
    budgets = ", ".join(f"{k} = {v:,}" for k, v in record["budgets"].items())
    print(f"\nnightly run: {lines:,} lines ({record['lines'][LAST_DAY]:,} on the last day), "
          f"{s['customers']:,} customers, {s['items']:,} items, {s['days']} days; {record['cpus']} CPUs; "
          f"{budgets}\n")
    print("| stage | seconds | CPU s | peak RSS MiB | count | per second | load before | others' CPU s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in record["setup"] + record["stages"]:
        label = r["stage"] + ("" if r["in_total"] else " *") + (" ‖" if r.get("side_by_side") else "")
        count = "-" if r["count"] is None else f"{r['count']:,} {r['unit']}"
        rate = "-" if r["per_second"] is None else f"{r['per_second']:,}"
        others = "?" if r["others_cpu_s"] is None else f"{r['others_cpu_s']:.0f}"
        cpu = "?" if r.get("cpu_s") is None else f"{r['cpu_s']:.0f}"  # records before the column have none
        print(f"| {label} | {r['seconds']:.1f} | {cpu} | {r['peak_rss_mib']:,} | {count} | {rate} | "
              f"{r['load_before'][0]:.1f} | {others} |")
    cpu = sum(r.get("cpu_s") or 0 for r in record["stages"] if r["in_total"])
    peak = record["night_peak_rss_mib"]
    print(f"| **the night** | **{record['night_seconds']:.1f}** | {cpu:.0f} | **{peak:,}** | | | | |")
    print("\n\\* not in the night's total: the nights before (setup), or the shop's own recommender")
    if any(r.get("side_by_side") for r in record["stages"]):
        print("\n‖ run side by side with the other ‖ stage, as the DAG's workers run them (parallelism 2): "
              "the night counts the longer; each one's seconds and others' CPU include the other's load")
    ran = record.get("night_stages")
    if ran and len(ran) < len(NIGHT):
        print(f"\nthe night stopped after {ran[-1]} (--until): {len(ran)} of its {len(NIGHT)} stages")
    if record.get("resumed_from"):
        print(f"\nthe night went on from {record['resumed_from']} in the store an earlier run left (--until): "
              "the stages before it are that run's")
    if record.get("setup_reused"):
        print(f"\nthe nights before were not run again: the store was copied from {record['setup_reused']}")


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
    ap.add_argument("--validation-customers", type=int, help="[customers] validation_customers (default: the "
                    "config's default)")
    ap.add_argument("--data", type=Path, help="keep the shop and the store here (a shop found is reused)")
    ap.add_argument("--json", type=Path, help="write the record here")
    ap.add_argument("--trendrec", default=str(TRENDREC), help=f"the CLI to time (default {TRENDREC})")
    ap.add_argument("--reuse-setup", action="store_true", help="keep a copy of the store after the setup in "
                    "--data (store-after-setup) and start from it when it is there (the nights before, not re-timed)")
    ap.add_argument("--until", choices=[n for n, _ in night()], help="stop after this stage of the night")
    ap.add_argument("--resume-from", choices=[n for n, _ in night()], help="go on from this stage with the store "
                    "an earlier run (--until) left in --data; the earlier stages are not run again")
    ap.add_argument("--one-at-a-time", action="store_true", help="run every stage alone, in the flow's order "
                    "(default: the stages the DAG runs at once, e.g. the two customer families' training, side by side)")
    ap.add_argument("--table", type=Path, help="print the table of a record written with --json, and stop")
    ap.add_argument("--stages", action="store_true", help="print the night's stages and commands, a line per group "
                    "of stages run at once (separated by ‖)")
    ap.add_argument("--check", action="store_true", help="check the shop's re-buy structure on a tiny shop")
    args = ap.parse_args()
    if args.stages or args.check:
        commands = dict(night())
        print("\n".join(" ‖ ".join(f"{n} {commands[n]}" for n in group)
                        for group in side_by_side(list(commands), args.one_at_a_time)) if args.stages else check())
        return
    if args.table:
        print_table(_add_counts(json.loads(args.table.read_text(encoding="utf-8"))))
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
