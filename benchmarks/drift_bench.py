"""Injected drifts and clean weeks on three shops: what `trendrec drift` catches and what it flags wrongly.

Each shop's log is ingested once with its own config; its raw events, read back in trendrec's column
names, become the base of every store the benchmark builds (ingested with a config that maps the
columns to themselves, so one fault code serves every shop):

- clean weeks: every week from the 6th of the log to the last full one, compared with the 28 days
  before it (``run_drift(reference_end=week start, as_of=week end)``): any failed check is a false alarm;
- faults: the log before the last full week, then that week with one fault injected, ingested as a
  second file into a fresh store; the fault is caught when the check meant for it fails (and the
  other checks that fail are listed).

Shops: the Online Retail demo (data/demo), the Bread Basket bakery (../shared/data; no customer id
and no price: its unknown-customer and price checks have nothing to compare) and a synthetic ``zipf``
shop of benchmarks/shapes.py (two years, ``--synthetic-rows`` lines).

    PYTHONPATH=. .venv/bin/python benchmarks/drift_bench.py --work /tmp/drift-bench
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import shapes  # noqa: E402

from pipeline import schemas as s  # noqa: E402
from pipeline.config import Config, IngestConfig, load_config  # noqa: E402
from pipeline.ingest.ingest import run_ingest  # noqa: E402
from pipeline.store import Store  # noqa: E402
from pipeline.tables import read_events  # noqa: E402
from recsys.monitor.drift import run_drift  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BAKERY = ROOT.parent / "shared" / "data" / "bakery_breadbasket" / "BreadBasket_DMS.parquet"
CANONICAL = (s.EVENT_TIME, s.ITEM_ID, s.QUANTITY, s.PRICE, s.USER_ID, s.ORDER_ID, s.SEGMENT)
# the fault, and the check that must catch it
FAULTS = {"prices_x100": "numeric:price", "quantities_in_dozens": "numeric:quantity",
          "day_sent_twice": "volume:repeats", "segment_renamed": "segments", "items_rekeyed": "unknown:item_id",
          "timezone_plus_6h": "categorical:hour", "segment_vanishes": "segments"}


def inject(week: pd.DataFrame, fault: str) -> pd.DataFrame:
    week = week.copy()
    top = week[s.SEGMENT].value_counts().index[0]
    if fault == "prices_x100":
        week[s.PRICE] *= 100
    elif fault == "quantities_in_dozens":
        week[s.QUANTITY] = np.round(week[s.QUANTITY] / 12, 3)
    elif fault == "day_sent_twice":
        day = week[s.EVENT_DATE].iloc[len(week) // 2]
        week = pd.concat([week, week[week[s.EVENT_DATE] == day]], ignore_index=True)
    elif fault == "segment_renamed":
        week[s.SEGMENT] = week[s.SEGMENT].replace({top: f"{top}_renamed"})
    elif fault == "items_rekeyed":
        week[s.ITEM_ID] = "K" + week[s.ITEM_ID].astype(str)
    elif fault == "timezone_plus_6h":
        week[s.EVENT_TIME] = week[s.EVENT_TIME] + pd.Timedelta(hours=6)
    elif fault == "segment_vanishes":
        week = week[week[s.SEGMENT] != top]
    return week


def shop_events(name: str, work: Path, synthetic_rows: int) -> pd.DataFrame:
    """The shop's raw events in trendrec's names (ingested once with its own config)."""
    store = work / f"{name}-source-store"
    if name == "online_retail":
        cfg, source = load_config(ROOT / "trendrec.toml", store=str(store)), ROOT / "data/demo/online_retail.parquet"
    elif name == "bakery":
        cfg = dataclasses.replace(Config(store=str(store)), ingest=IngestConfig(
            columns={s.EVENT_TIME: "Date", s.ITEM_ID: "Item", s.ORDER_ID: "Transaction", s.SEGMENT: "Item"},
            time_column="Time", timezone="Europe/London"))
        source = BAKERY
    else:
        source = work / "zipf.csv"
        if not source.exists():
            shapes.generate("zipf", synthetic_rows, source)
        cfg = load_config(ROOT / "benchmarks/shapes.toml", store=str(store))
    if not (store / "raw").exists():
        run_ingest(cfg, str(source))
    return read_events(Store(cfg.store))


def canonical_config(store: Path) -> Config:
    """Columns mapped to themselves; the three shops' zone (event_time is UTC, so only event_date and the
    hour of day use it: in UTC, a UK shop's hours move by one at each daylight-saving change)."""
    return dataclasses.replace(Config(store=str(store)), ingest=IngestConfig(
        columns={c: c for c in CANONICAL}, returns="keep", max_reject_share=1.0, timezone="Europe/London"))


def write_events(frame: pd.DataFrame, path: Path) -> Path:
    frame[list(CANONICAL)].to_parquet(path, index=False)
    return path


def run_shop(name: str, work: Path, synthetic_rows: int) -> dict:
    events = shop_events(name, work, synthetic_rows)
    days = pd.to_datetime(events[s.EVENT_DATE])
    first, last = days.min().date(), days.max().date()
    base_store = work / f"{name}-clean"
    cfg = canonical_config(base_store)
    if not (base_store / "raw").exists():
        run_ingest(cfg, str(write_events(events, work / f"{name}-all.parquet")))
    clean, alarms = 0, {}
    week = first + datetime.timedelta(days=35)
    while week + datetime.timedelta(days=6) <= last:
        result = run_drift(cfg, reference_end=week, as_of=week + datetime.timedelta(days=6), write=False)
        clean += 1
        for check in result["failed"]:
            alarms.setdefault(check, []).append(str(week))
        week += datetime.timedelta(days=7)
    cut = last - datetime.timedelta(days=6)
    before, target = events[days < pd.Timestamp(cut)], events[days >= pd.Timestamp(cut)]
    caught = {}
    for fault, check in FAULTS.items():
        if fault == "prices_x100" and not (events[s.PRICE] != 0).any():
            caught[fault] = {"caught": None, "failed": [], "note": "the shop exports no price"}
            continue
        store = work / f"{name}-{fault}"
        fcfg = canonical_config(store)
        if not (store / "raw").exists():
            run_ingest(fcfg, str(write_events(before, work / f"{name}-before.parquet")))
            run_ingest(fcfg, str(write_events(inject(target, fault), work / f"{name}-{fault}.parquet")))
        result = run_drift(fcfg, reference_end=cut, as_of=last, write=False)
        caught[fault] = {"caught": check in result["failed"], "failed": result["failed"]}
    return {"shop": name, "days": [str(first), str(last)], "rows": len(events), "clean_weeks": clean,
            "false_alarms": {k: len(v) for k, v in alarms.items()}, "false_alarm_weeks": alarms, "faults": caught}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/drift-bench"))
    parser.add_argument("--shops", nargs="+", default=["online_retail", "bakery", "synthetic"])
    parser.add_argument("--synthetic-rows", type=int, default=300_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    args.work.mkdir(parents=True, exist_ok=True)
    results = [run_shop(shop, args.work, args.synthetic_rows) for shop in args.shops]
    for r in results:
        caught = sum(bool(f["caught"]) for f in r["faults"].values())
        kinds = sum(f["caught"] is not None for f in r["faults"].values())
        print(f"{r['shop']}: {r['rows']} rows {r['days'][0]}..{r['days'][1]}; faults caught {caught}/{kinds}; "
              f"false alarms on {r['clean_weeks']} clean weeks: {r['false_alarms'] or 0}")
        for fault, f in r["faults"].items():
            verdict = "n/a" if f["caught"] is None else "caught" if f["caught"] else "MISSED"
            print(f"  {fault:22s} {verdict:6s}  failed: {', '.join(f['failed']) or f.get('note', '')}")
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
