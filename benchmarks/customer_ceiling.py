"""What hindsight about the target week buys the customer model (issue 16): a ceiling on its inputs.

The LSTMRecommender reaches Recall@10 of about 0.23 on Online Retail's six weekly cut-offs
(2011-10-29 ... 2011-12-03) where issue 16 asks 0.24. Wider networks, twice the training weeks,
ranking losses and extra inputs all land within the seeds' spread (benchmarks/README.md). This script
asks whether the limit is the training data (the weeks before a cut-off differ from the one being
predicted: the Christmas rush) or the inputs, by letting the model see the answer:

* ``product``: the model as shipped (``recsys.nextbasket.recommend.fit_recommender``: labelled pairs of
  the weekly cut-offs before the cut-off, early stopping on the week before it);
* ``hindsight``: the same training pairs plus the target week's own labelled pairs of half of the
  scored customers, with early stopping on those; scored on the other half, then the halves swap.
  The model knows what this very week's crowd bought and which epoch ranks this week best;
* ``in_sample``: trained and early-stopped (up to 40 epochs) on the target week's labelled pairs of
  the very customers it is scored on: memorisation, an upper bound no honest model reaches.

Every mode ranks the same 100 retrieved items per customer (``recsys.nextbasket.retrieval.retrieve``) with the same features
(``build_features``); the population and metrics are issue 16's protocol (``recsys.evaluation.protocol``):
customers who bought in the 28 days before the cut-off and in the target week, Recall@10 and NDCG@10 by
``recsys.evaluation.metrics``, pooled over customer-weeks; mean ± std over ``--seeds``.

    PYTHONPATH=. nice -n 5 .venv/bin/python benchmarks/customer_ceiling.py --store /tmp/cust-store --seeds 42,43,44
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from recsys.nextbasket.histories import active_users, open_store, purchased_items
from recsys.nextbasket.model import LSTMRecommender
from recsys.nextbasket.recommend import fit_recommender, labelled_pairs, rank_users
from recsys.evaluation.metrics import score_users, summarise
from recsys.evaluation.protocol import rank_lists

CUTOFFS = [date(2011, 10, 29) + timedelta(weeks=i) for i in range(6)]
MODES = ("product", "hindsight", "in_sample")
K = 10


def _scored(model: LSTMRecommender, con, cutoff: date, users: np.ndarray, targets: pd.DataFrame,
            history: pd.DataFrame, cfg: CustomerModelConfig) -> pd.DataFrame:
    ranked = rank_lists(rank_users(model, con, cutoff, users, cfg), users, cutoff, K, "lstm_recommender")
    return score_users(ranked, targets[targets[s.USER_ID].isin(users)], history, K)


def _half(pairs: tuple, half: int) -> tuple:
    """The labelled pairs of the customers with ``code % 2 == half``; the others' targets set to 0."""
    seq, static, label, groups, n_targets = pairs
    keep = groups % 2 == half
    n_targets = np.where(np.arange(len(n_targets)) % 2 == half, n_targets, 0)
    return seq[keep], static[keep], label[keep], groups[keep], n_targets


def run_mode(mode: str, con, cutoff: date, cfg: CustomerModelConfig) -> pd.DataFrame:
    """Per-customer metrics of one mode at one cut-off."""
    targets = purchased_items(con, cutoff, cutoff + timedelta(weeks=1))
    users = np.intersect1d(active_users(con, cutoff, 28), targets[s.USER_ID].unique())
    history = purchased_items(con, cutoff - timedelta(weeks=520), cutoff)
    if mode == "product":
        return _scored(fit_recommender(con, cutoff, cfg), con, cutoff, users, targets, history, cfg)
    week = labelled_pairs(con, cutoff, cfg, None, None)  # the target week's pairs: hindsight
    if mode == "in_sample":
        deep = dataclasses.replace(cfg, epochs=40, patience=6)
        model = LSTMRecommender(deep).fit(week[:3], week)
        return _scored(model, con, cutoff, users, targets, history, cfg)
    rng = np.random.default_rng(cfg.seed)
    before = [labelled_pairs(con, cutoff - timedelta(weeks=k), cfg, None, rng) for k in range(2, cfg.train_weeks + 1)]
    frames = []
    for half in (0, 1):  # labelled_pairs' user codes are positions in the sorted users, as here
        seen = _half(week, half)
        train = tuple(np.concatenate([p[i] for p in before] + [seen[i]]) for i in range(3))
        model = LSTMRecommender(cfg).fit(train, seen)
        frames.append(_scored(model, con, cutoff, users[np.arange(len(users)) % 2 != half], targets, history, cfg))
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="/tmp/cust-store", help="a store holding Online Retail (trendrec ingest)")
    p.add_argument("--seeds", default="42", help="comma-separated seeds, e.g. 42,43,44")
    p.add_argument("--modes", default=",".join(MODES))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    con = open_store(args.store)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    pooled: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for seed in (int(x) for x in args.seeds.split(",")):
        cfg = dataclasses.replace(CustomerModelConfig(), seed=seed)
        for mode in modes:
            t0, frames = time.perf_counter(), []
            for cutoff in CUTOFFS:
                frames.append(run_mode(mode, con, cutoff, cfg))
                m = summarise(frames[-1], K)
                print(f"seed {seed} {mode:9s} {cutoff} customers {m['users']:4d} Recall@10 {m['recall@10']:.4f} "
                      f"NDCG@10 {m['ndcg@10']:.4f}", flush=True)
            m = summarise(pd.concat(frames, ignore_index=True), K)
            pooled[mode].append((m["recall@10"], m["ndcg@10"]))
            print(f"seed {seed} {mode:9s} pooled over {m['users']} customer-weeks: Recall@10 {m['recall@10']:.4f} "
                  f"NDCG@10 {m['ndcg@10']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\nmode        Recall@10        NDCG@10          seeds")
    for mode, runs in pooled.items():
        r, n = np.array(runs).T
        print(f"{mode:11s} {r.mean():.4f} ± {r.std():.4f}  {n.mean():.4f} ± {n.std():.4f}  {len(runs)}")


if __name__ == "__main__":
    main()
