"""Next-basket baselines and the LSTMRecommender of issue 16 side by side, through ``recsys.evaluation.protocol``.

Runs g_topfreq, p_topfreq, base (the demo candidate builder), TIFU-kNN tuned on the validation week
before each cut-off, TIFU-kNN at each of the paper's three fixed settings and, with ``--seeds``, the
LSTMRecommender (recsys.nextbasket, retrained at every cut-off on data before it, once per seed:
``lstm_recommender[seed N]``), on ``--weeks`` weekly cut-offs ending at the last full week of the log.
With two or more seeds it also prints the LSTMRecommender's mean ± std over seeds and the number of
cut-offs where each seed beats the best baseline. Prints the pooled table, the table per cut-off,
the seconds each method took (summed over cut-offs, TIFU-kNN's tuning included) and the customer
count; ``--json`` prints the protocol's result object instead (with a "seconds" entry added).

The machine is shared: timings are what this run measured, not a promise.

    PYTHONPATH=. nice -n 5 .venv/bin/python benchmarks/nbr_baselines.py --store /tmp/nbr-store --weeks 6
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial

COLUMNS = ("recall@10", "ndcg@10", "phr@10", "repeat_recall@10", "explore_recall@10")


BASELINES = ("g_topfreq", "p_topfreq", "base", "tifu_knn")


def build_methods(seeds: list[int]) -> dict:
    import dataclasses

    from pipeline.config import CustomerModelConfig
    from recsys.nextbasket.recommend import lstm_recommender
    from recsys.evaluation.baselines import base, g_topfreq, p_topfreq
    from recsys.evaluation.tifu_knn import PAPER_PARAMS, tifu_knn

    methods = {"g_topfreq": g_topfreq, "p_topfreq": p_topfreq, "base": base, "tifu_knn": tifu_knn}
    for name, params in PAPER_PARAMS.items():
        methods[f"tifu_knn[{name}]"] = partial(tifu_knn, params=params)
    for seed in seeds:
        cfg = dataclasses.replace(CustomerModelConfig(), seed=seed)
        methods[f"lstm_recommender[seed {seed}]"] = partial(lstm_recommender, cfg=cfg)
    return methods


def seed_summary(result: dict, seeds: list[int]) -> list[str]:
    """Mean ± std over seeds (pooled) and, per seed, the cut-offs where it beats the best baseline."""
    import statistics

    names = [f"lstm_recommender[seed {seed}]" for seed in seeds]
    lines = []
    for column in ("recall@10", "ndcg@10", "explore_recall@10"):
        values = [result["pooled"][n][column] or 0.0 for n in names]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"lstm_recommender {column}: {statistics.mean(values):.4f} ± {spread:.4f} over {len(values)} seeds")
    for name in names:
        wins = sum(row[name]["recall@10"] > max(row[b]["recall@10"] for b in BASELINES) for row in result["cutoffs"])
        lines.append(f"{name} beats the best baseline's recall@10 at {wins} of {len(result['cutoffs'])} cut-offs")
    return lines


def table(block: dict, names: list[str]) -> list[str]:
    lines = [f"  {'method':<22}" + "".join(f"{c:>19}" for c in COLUMNS) + f"{'users':>7}"]
    for name in names:
        row = block[name]
        cells = "".join(f"{'-':>19}" if row[c] is None else f"{row[c]:>19.4f}" for c in COLUMNS)
        lines.append(f"  {name:<22}{cells}{row['users']:>7}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="store with ingested events")
    parser.add_argument("--weeks", type=int, default=6, help="weekly cut-offs")
    parser.add_argument("--json", action="store_true", help="print the result object as JSON")
    parser.add_argument("--verbose", action="store_true", help="log each cut-off and TIFU-kNN's choice")
    parser.add_argument("--seeds", default="", help="LSTMRecommender seeds, e.g. 42,43,44 (default: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from pipeline.store import Store, read_events
    from recsys.offline.evaluate_rerank import timed
    from recsys.evaluation.protocol import last_cutoffs, run_protocol

    started = time.perf_counter()
    events = read_events(Store(args.store))
    read_s = time.perf_counter() - started
    cutoffs = last_cutoffs(events, args.weeks)
    seconds: dict[str, float] = {}
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    result = run_protocol(events, timed(build_methods(seeds), seconds), cutoffs)
    total_s = time.perf_counter() - started
    if args.json:
        print(json.dumps(result | {"seconds": {k: round(v, 2) for k, v in seconds.items()}}, indent=2))
        return 0
    names = list(result["pooled"])
    users = next(iter(result["pooled"].values()))["users"]
    print(f"{len(events)} events read in {read_s:.1f}s; cut-offs {', '.join(str(c) for c in cutoffs)}")
    print(f"pooled over {len(result['cutoffs'])} cut-offs, {users} customer-weeks:")
    print("\n".join(table(result["pooled"], names)))
    for row in result["cutoffs"]:
        print(f"cut-off {row['cutoff']} ({row[names[0]]['users']} customers):")
        print("\n".join(table(row, names)))
    print("seconds per method (all cut-offs): " + ", ".join(f"{n} {seconds[n]:.1f}" for n in names))
    if seeds:
        print("\n".join(seed_summary(result, seeds)))
    print(f"total {total_s:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
