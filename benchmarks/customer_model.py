"""Benchmark of the customer model (issue #16) on Online Retail at six weekly cut-offs, with baselines.

At each cut-off the population is the customers who bought in the 28 days before it and buy in the
7 days from it; targets are the distinct items each buys in that week. Reported per cut-off and
pooled (every customer-week weighs the same): Recall@10 (hits / targets) and NDCG@10 (binary, ideal =
min(10, targets) hits first) of LSTMRecommender, personal top-frequency and TIFU-kNN-lite (a personal
time-decayed frequency vector blended with its k nearest neighbours'), the candidate recall ceiling
(targets inside the 100 candidates), training and scoring seconds and scoring pairs per second.
The metrics are a local helper until recsys/rank/metrics.py lands.

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
from pipeline.schemas import SCORE
from recsys.customers.candidates import build_candidates
from recsys.customers.features import build_features
from recsys.customers.histories import active_users, iter_histories, open_store, purchased_items
from recsys.customers.recommend import fit_recommender, rank_users

CUTOFFS = [date(2011, 10, 29) + timedelta(weeks=i) for i in range(6)]
K = 10


def recall_ndcg(ranked: pd.DataFrame, targets: pd.DataFrame, k: int = K) -> pd.DataFrame:
    """Per user of ``targets``: recall@k and NDCG@k of ``ranked`` (user_id, item_id, score; best first)."""
    top = ranked.groupby(s.USER_ID, sort=False).head(k).copy()
    top["pos"] = top.groupby(s.USER_ID).cumcount()
    hit = top.merge(targets.assign(_hit=1.0), on=[s.USER_ID, s.ITEM_ID], how="left").fillna({"_hit": 0.0})
    hit["gain"] = hit["_hit"] / np.log2(hit["pos"] + 2.0)
    per = hit.groupby(s.USER_ID).agg(hits=("_hit", "sum"), dcg=("gain", "sum"))
    n = targets.groupby(s.USER_ID).size().rename("n")
    per = pd.concat([n, per], axis=1).fillna(0.0)
    ideal = np.cumsum(1.0 / np.log2(np.arange(k) + 2.0))[np.minimum(per["n"].to_numpy(int), k) - 1]
    return pd.DataFrame({"recall": per["hits"] / per["n"], "ndcg": per["dcg"] / ideal}, index=per.index)


def topfreq(con, cutoff: date, users: np.ndarray) -> pd.DataFrame:
    """p_topfreq: the customer's own items by purchase-line count over all history, then recency."""
    sql = (f"SELECT {s.USER_ID}, {s.ITEM_ID}, count(*) + max(epoch({s.EVENT_DATE})) / 1e12 AS {SCORE} "
           f"FROM events WHERE {s.QUANTITY} > 0 AND {s.EVENT_DATE} < $c AND {s.USER_ID} IS NOT NULL GROUP BY 1, 2")
    f = con.execute(sql, {"c": cutoff}).df()
    f = f[f[s.USER_ID].isin(users)].sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True])
    return f.groupby(s.USER_ID).head(K)


def tifu_knn(con, cutoff: date, users: np.ndarray, k_nn: int = 300, r_b: float = 0.9, alpha: float = 0.7,
             weeks: int = 52) -> pd.DataFrame:
    """TIFU-kNN-lite: weekly baskets decayed by r_b per week, blended alpha with the k nearest (cosine)."""
    sql = (f"SELECT DISTINCT {s.USER_ID}, {s.ITEM_ID}, (date_diff('day', {s.EVENT_DATE}, $c) - 1) // 7 AS w "
           f"FROM events WHERE {s.QUANTITY} > 0 AND {s.EVENT_DATE} < $c AND {s.EVENT_DATE} >= $st "
           f"AND {s.USER_ID} IS NOT NULL")
    f = con.execute(sql, {"c": cutoff, "st": cutoff - timedelta(weeks=weeks)}).df()
    uc, ic = pd.factorize(f[s.USER_ID]), pd.factorize(f[s.ITEM_ID])
    mat = np.zeros((len(uc[1]), len(ic[1])), np.float32)
    np.add.at(mat, (uc[0], ic[0]), r_b ** f["w"].to_numpy(float))
    unit = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-9)
    rows = uc[1].get_indexer(users)
    rows = rows[rows >= 0]
    sim = unit[rows] @ unit.T
    sim[np.arange(len(rows)), rows] = -1
    nn = np.argpartition(-sim, k_nn, axis=1)[:, :k_nn]
    score = alpha * mat[rows] + (1 - alpha) * mat[nn].mean(axis=1)
    top = np.argsort(-score, axis=1)[:, :K]
    return pd.DataFrame({s.USER_ID: np.repeat(uc[1][rows], K), s.ITEM_ID: ic[1][top.ravel()],
                         SCORE: np.take_along_axis(score, top, 1).ravel()})


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
    for name, ranked in (("lstm", lstm), ("topfreq", topfreq(con, cutoff, users)),
                         ("tifu", tifu_knn(con, cutoff, users))):
        m = recall_ndcg(ranked, targets)
        row[f"{name}_recall"], row[f"{name}_ndcg"] = m["recall"].sum(), m["ndcg"].sum()
    row.update(_ceiling_and_speed(con, cutoff, users, targets, cfg, model))
    return row


def _ceiling_and_speed(con, cutoff, users, targets, cfg, model) -> dict:
    hist = next(iter_histories(con, cutoff, cfg))  # every customer with history: a realistic scoring load
    t0 = time.perf_counter()
    pairs = build_candidates(hist, cfg)
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
              f"N@10={r['lstm_ndcg'] / r['users']:.4f} | topfreq {r['topfreq_recall'] / r['users']:.4f}/"
              f"{r['topfreq_ndcg'] / r['users']:.4f} | tifu {r['tifu_recall'] / r['users']:.4f}/"
              f"{r['tifu_ndcg'] / r['users']:.4f} | ceiling@{cfg.n_candidates} {r['ceiling'] / r['users']:.4f} | "
              f"train {r['train_s']:.1f}s ({r['epochs']} ep) score {r['score_s']:.1f}s | "
              f"predict {r['predict_pps']:,.0f} pairs/s, end-to-end {r['end2end_pps']:,.0f} pairs/s", flush=True)
    _summary(pd.DataFrame(rows))


def _summary(t: pd.DataFrame) -> None:
    n = t["users"].sum()
    pooled = {c: t[c].sum() / n for c in t.columns if c.endswith(("_recall", "_ndcg")) or c == "ceiling"}
    print(f"pooled over {n} customer-weeks: " + ", ".join(f"{k}={v:.4f}" for k, v in pooled.items()))
    for base in ("topfreq", "tifu"):
        wins = int(((t["lstm_recall"] > t[f"{base}_recall"]) & (t["lstm_ndcg"] > t[f"{base}_ndcg"])).sum())
        print(f"lstm beats {base} on recall and NDCG at {wins}/{len(t)} cut-offs")
    print(f"mean train {t['train_s'].mean():.1f}s, score {t['score_s'].mean():.1f}s per cut-off; "
          f"predict {t['predict_pps'].mean():,.0f} pairs/s (best {t['predict_pps'].max():,.0f}), end-to-end "
          f"{t['end2end_pps'].mean():,.0f} pairs/s; 1-min load average at the end {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (a shared machine: timings are upper bounds)")


if __name__ == "__main__":
    main()
