"""The segment-trend weight a push would choose at each date, and why (recsys.evaluation.coldstart.choose_weight).

For a push at date d the release rule chooses on the week [d - 7, d): the cold-start lists of that week,
popularity re-ranked by segment trends as known before it. Here the trends come from the published
combination refitted on the daily table before the week (recsys.offline.cold_start.CutoffTrends, as
``evaluate-rerank``'s cold-start section does; a real push takes them from the forecaster it ships). Prints
and writes, per date, the chosen weight, the reason, NDCG@10 per weight and each weight's gains. Needs a
store the log was ingested and aggregated into (``trendrec ingest`` and ``trendrec aggregate``).

    .venv/bin/python benchmarks/trend_weight_choice.py --store DIR --ensemble 1 2011-12-10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from datetime import date
from pathlib import Path

from pipeline.config import load_config
from pipeline.store import Store, read_daily, read_events
from recsys.evaluation.protocol import EVENT_COLUMNS
from recsys.offline.cold_start import CutoffTrends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pushes", nargs="+", type=date.fromisoformat, help="push dates (the week before is judged)")
    parser.add_argument("--config", default="trendrec.toml")
    parser.add_argument("--store", required=True, help="a store holding the ingested, aggregated log")
    parser.add_argument("--ensemble", type=int, default=None, help="LSTM seeds of the refit (1 for time)")
    parser.add_argument("--out", type=Path, default=None, help="write the choices as JSON here")
    args = parser.parse_args()
    cfg = load_config(args.config, store=args.store)
    if args.ensemble is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, ensemble=args.ensemble))
    store = Store(cfg.store)
    start = time.perf_counter()
    events = read_events(store, EVENT_COLUMNS)
    trends = CutoffTrends(read_daily(store), cfg)
    out = {}
    for push in args.pushes:
        choice = trends.chosen(events, push)
        out[push.isoformat()] = choice
        ndcg = " ".join(f"{w}:{v:.4f}" for w, v in choice["ndcg@10"].items() if v is not None)
        print(f"push {push}: weight {choice['weight']:g}, {choice['reason']}; NDCG@10 by weight {ndcg}; "
              f"lists {choice['populations']}", flush=True)
    print(f"{time.perf_counter() - start:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
