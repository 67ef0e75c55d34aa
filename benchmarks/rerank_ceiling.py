"""How much could any trend blend lift HitRate@10? Ceilings for `trendrec evaluate-rerank`.

Same protocol as ``trendrec evaluate-rerank`` (recsys/rerank_eval.py): weekly cut-offs at the end
of the store's events, the base recommender's lists of ``--candidates`` items, next week's
purchases as targets, final_score = base_score * (1 + weight * trend). Instead of the production
model's forecast, the trend here comes from tables that a model can at best approach:

* ``reorder``: HitRate@``--candidates`` — the best any re-ranking of these lists could reach at 10
  (every buyer with a target anywhere in the list counted as a hit);
* ``oracle_family``: each segment's *actual* change in the model's target from the week before the
  cut-off to the target week (a perfect segment-level trend: what the production model forecasts);
* ``oracle_item``: the same per item, in units (a perfect item-level trend);
* ``momentum_item``: last week against the week before, per item (a naive item-level trend).

Each trend goes through ``recsys.rank.rerank.trend_score`` and ``recsys.rank.rerank.rerank`` unchanged, and
its pooled lift is printed against the base ranking for every weight. Needs a store with ingested
events and aggregates (``make demo`` leaves one in ./trendrec-data); no model is loaded.

    .venv/bin/python benchmarks/rerank_ceiling.py --store trendrec-data
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="trendrec-data", help="store with raw events and aggregates")
    parser.add_argument("--config", default="trendrec.toml")
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--candidates", type=int, default=50, help="list length (rerank.eval_candidates)")
    parser.add_argument("--weights", default="0.1,0.3,0.5,1.0")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pandas as pd

    from pipeline import schemas as s
    from pipeline.config import load_config
    from pipeline.store import Store, read_daily, read_events
    from recsys.evaluation.candidates import EVENT_COLUMNS, build_candidates
    from recsys.forecast.trends import trend_score
    from recsys.rank.rerank import rerank
    from hitrate_sweep import K, RECENT_DAYS, evaluate_rerank, pool, score_lists  # benchmarks/ is on sys.path
    from recsys.evaluation.protocol import TARGET_DAYS, purchases, weekly_cutoffs

    store = Store(load_config(args.config, store=args.store).store)
    events = read_events(store, EVENT_COLUMNS)
    day = pd.to_datetime(events[s.EVENT_DATE]).dt.date
    cutoffs = weekly_cutoffs(day.max(), args.weeks)
    weights = [float(w) for w in args.weights.split(",")]
    week = timedelta(days=TARGET_DAYS)

    def change(sums, cutoff: date, lag: timedelta) -> pd.DataFrame:
        """trend_score(sum over [cutoff - lag, +week), sum over the week before that), per key."""
        fut, rec = sums(cutoff - lag, cutoff - lag + week), sums(cutoff - lag - week, cutoff - lag)
        keys = fut.index.union(rec.index)
        return pd.DataFrame({s.SEGMENT: keys.astype(str), s.TREND: trend_score(
            fut.reindex(keys, fill_value=0.0).to_numpy(float), rec.reindex(keys, fill_value=0.0).to_numpy(float))})

    daily = read_daily(store)
    daily_day = pd.to_datetime(daily[s.DATE]).dt.date
    target = load_config(args.config, store=args.store).model.target

    def family_sums(a: date, b: date) -> pd.Series:
        keep = (daily_day >= a) & (daily_day < b)
        return daily.loc[keep].groupby(s.SEGMENT)[target].sum()

    units = events[s.QUANTITY].astype(float)

    def item_sums(a: date, b: date) -> pd.Series:
        keep = (day >= a) & (day < b)
        return units[keep].groupby(events.loc[keep, s.ITEM_ID]).sum()

    by_item = events.assign(**{s.SEGMENT: events[s.ITEM_ID]})  # an item is its own segment
    report: dict = {"store": str(store.root), "cutoffs": [str(c) for c in cutoffs], "list_length": args.candidates}
    users = hits_k = hits_all = 0
    for cutoff in cutoffs:
        lists = rerank(build_candidates(events, cutoff, n=args.candidates, recent_days=RECENT_DAYS),
                       pd.DataFrame({s.SEGMENT: [], s.TREND: []}), 0.0)
        targets = purchases(events, cutoff)
        at_k, at_all = score_lists(lists, targets, K), score_lists(lists, targets, args.candidates)
        users, hits_k, hits_all = users + at_k["users"], hits_k + at_k["hits"], hits_all + at_all["hits"]
    report["reorder"] = {"users": users, "hit_rate_at_10": round(hits_k / users, 4),
                         f"hit_rate_at_{args.candidates}": round(hits_all / users, 4),
                         "max_hit_rate_lift": round(hits_all / hits_k - 1.0, 4)}
    print(json.dumps({"reorder": report["reorder"]}), flush=True)
    trends = {"oracle_family": (events, lambda c: change(family_sums, c, timedelta(0))),
              "oracle_item": (by_item, lambda c: change(item_sums, c, timedelta(0))),
              "momentum_item": (by_item, lambda c: change(item_sums, c, week))}
    for name, (frame, trend_at) in trends.items():
        table = evaluate_rerank(frame, trend_at, cutoffs, weights, n=args.candidates)
        report[name] = [{"weight": r.weight, "hit_rate": round(r.hit_rate, 4), "hit_rate_lift": round(r.hit_rate_lift, 4),
                         "ndcg_lift": round(r.ndcg_lift, 4)} for r in pool(table).itertuples()]
        print(json.dumps({name: report[name]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
