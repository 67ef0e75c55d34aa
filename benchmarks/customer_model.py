"""Benchmark of the customer model (issue #16) on Online Retail at six weekly cut-offs: accuracy, ceiling, speed.

At each cut-off the population is the customers who bought in the 28 days before it and buy in the
7 days from it; targets are the distinct items each buys in that week. Reported per cut-off and
pooled (every customer-week weighs the same): Recall@10 and NDCG@10 of the LSTMRecommender
(recsys.evaluation.metrics), the candidate recall ceiling (targets inside the 100 candidates), training and
scoring seconds and scoring pairs per second. The baselines, in the same protocol and run, are in
benchmarks/nbr_baselines.py (``--seeds`` adds this model there).

    PYTHONPATH=. nice -n 5 python benchmarks/customer_model.py --store /tmp/cust-store
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from recsys.nextbasket.retrieval import retrieve
from recsys.nextbasket.features import build_features
from recsys.nextbasket.histories import active_users, iter_histories, open_store, purchased_items
from recsys.nextbasket.recommend import fit_recommender, rank_users
from recsys.evaluation.metrics import score_users

CUTOFFS = [date(2011, 10, 29) + timedelta(weeks=i) for i in range(6)]
K = 10


def recall_ndcg(ranked: pd.DataFrame, targets: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per customer of ``targets``: recall@10 and NDCG@10 of ``ranked`` (best first), by recsys.evaluation.metrics."""
    ranked = ranked.assign(**{s.RANK: ranked.groupby(s.USER_ID, sort=False).cumcount() + 1})
    return score_users(ranked, targets, history, K).set_index(s.USER_ID)[["recall", "ndcg"]]


def evaluate_cutoff(con, cutoff: date, cfg: CustomerModelConfig) -> dict:
    targets = purchased_items(con, cutoff, cutoff + timedelta(weeks=1))
    users = np.intersect1d(active_users(con, cutoff, 28), targets[s.USER_ID].unique())
    targets = targets[targets[s.USER_ID].isin(users)]
    t0 = time.perf_counter()
    model = fit_recommender(con, cutoff, cfg)
    t1 = time.perf_counter()
    lstm = rank_users(model, con, cutoff, users, cfg)
    t2 = time.perf_counter()
    row = {"cutoff": str(cutoff), "users": len(users), "train_s": t1 - t0, "score_s": t2 - t1,
           "epochs": len(model.history.get("loss", []))}
    m = recall_ndcg(lstm, targets, purchased_items(con, cutoff - timedelta(weeks=520), cutoff))
    row["lstm_recall"], row["lstm_ndcg"] = m["recall"].sum(), m["ndcg"].sum()
    row.update(_ceiling_and_speed(con, cutoff, users, targets, cfg, model))
    return row


def _ceiling_and_speed(con, cutoff, users, targets, cfg, model) -> dict:
    hist = next(iter_histories(con, cutoff, cfg))  # every customer with history: a realistic scoring load
    t0 = time.perf_counter()
    pairs = retrieve(hist, cfg)
    seq, static = build_features(hist, pairs, cfg)
    t1 = time.perf_counter()
    model.score(seq, static)
    t2 = time.perf_counter()
    inside = targets.merge(pairs[[s.USER_ID, s.ITEM_ID]], on=[s.USER_ID, s.ITEM_ID])
    ceiling = (inside.groupby(s.USER_ID).size() / targets.groupby(s.USER_ID).size()).fillna(0.0)
    return {"ceiling": ceiling.reindex(users).fillna(0.0).sum(), "pairs": len(pairs),
            "predict_pps": len(pairs) / (t2 - t1), "end2end_pps": len(pairs) / (t2 - t0)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="/tmp/cust-store")
    p.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. units=16 cell=gru")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    over = {k: type(getattr(CustomerModelConfig(), k))(v) for k, v in (a.split("=", 1) for a in args.set)}
    cfg = dataclasses.replace(CustomerModelConfig(), **over)
    con = open_store(args.store)
    rows = []
    for cutoff in CUTOFFS:
        rows.append(evaluate_cutoff(con, cutoff, cfg))
        r = rows[-1]
        print(f"{r['cutoff']} users={r['users']} lstm R@10={r['lstm_recall'] / r['users']:.4f} "
              f"N@10={r['lstm_ndcg'] / r['users']:.4f} | ceiling@{cfg.n_candidates} {r['ceiling'] / r['users']:.4f} | "
              f"train {r['train_s']:.1f}s ({r['epochs']} ep) score {r['score_s']:.1f}s | "
              f"predict {r['predict_pps']:,.0f} pairs/s, end-to-end {r['end2end_pps']:,.0f} pairs/s", flush=True)
    _summary(pd.DataFrame(rows))


def _summary(t: pd.DataFrame) -> None:
    n = t["users"].sum()
    pooled = {c: t[c].sum() / n for c in t.columns if c.endswith(("_recall", "_ndcg")) or c == "ceiling"}
    print(f"pooled over {n} customer-weeks: " + ", ".join(f"{k}={v:.4f}" for k, v in pooled.items()))
    print(f"mean train {t['train_s'].mean():.1f}s, score {t['score_s'].mean():.1f}s per cut-off; "
          f"predict {t['predict_pps'].mean():,.0f} pairs/s (best {t['predict_pps'].max():,.0f}), end-to-end "
          f"{t['end2end_pps'].mean():,.0f} pairs/s; 1-min load average at the end {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (a shared machine: timings are upper bounds)")


if __name__ == "__main__":
    main()
