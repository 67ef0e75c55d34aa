"""The customers stage's training: fit an LSTMRecommender for next week into a candidate directory.

The model predicts the 7 days after the log's last full day (``cutoff`` = last event day + 1). It is
trained on the weekly cut-offs before that (recsys.nextbasket.recommend.fit_recommender: features
before each cut-off, labels in its week) and validated on the latest labelled week, cutoff - 7;
the best epoch's validation Recall@10 is what the blessing gate (recsys.nextbasket.judge) compares with
the baselines on that same week. Files go to ``<candidate>/customers/`` (model.keras, config.json,
train.json), TensorBoard logs to ``runs/<run id>-customers``. A log without known customers (guests
only) trains nothing: the summary says so and serving falls back to segment trends.

    trendrec customers --json
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.store import Store, read_json, write_json
from recsys.forecast.evaluate import candidate_in_store
from recsys.nextbasket.histories import NoCustomerHistoryError, check_customers, customer_cutoff, open_store
from recsys.nextbasket.scores import CUSTOMERS_DIR

log = logging.getLogger(__name__)

TRAIN_FILE = "train.json"  # in <candidate>/customers/: cut-off, validation figures, epochs


def train_customer_model(cfg: Config, candidate_dir: str | Path, run_id: str | None = None) -> dict[str, Any]:
    """Fit into ``<candidate_dir>/customers/``; a re-run of the same candidate reuses what it wrote."""
    from recsys.evaluation.tensorboard import write_ranking_summary  # TensorFlow: only when a model is trained
    from recsys.nextbasket.recommend import fit_recommender

    started = time.monotonic()
    store = Store(cfg.store)
    out_dir = candidate_in_store(store, candidate_dir) / CUSTOMERS_DIR
    if (out_dir / TRAIN_FILE).is_file():
        log.info("customer model in %s already trained; reusing it", out_dir)
        return read_json(out_dir / TRAIN_FILE) | {"reused": True}
    con = open_store(str(store.root), cfg.customers)
    try:
        cutoff = customer_cutoff(con)
        check_customers(con, cutoff, cfg.customers)  # a guest-only log says so, before any training
        run_dir = store.ensure().runs / f"{run_id or Path(candidate_dir).name}-customers"
        model = fit_recommender(con, cutoff, cfg.customers, None, run_dir)
    except NoCustomerHistoryError as exc:
        log.warning("no customer model: %s; serving falls back to segment trends", exc)
        return {"trained": False, "reason": f"no customer model: {exc}; re-ranking uses segment trends"}
    history = model.history.get("val_recall_at_10", [])
    best = max(range(len(history)), key=history.__getitem__) if history else None
    summary = {"trained": True, "cutoff": cutoff.isoformat(), "validation_cutoff": (cutoff - timedelta(weeks=1)).isoformat(),
               "val_recall@10": history[best] if best is not None else None, "epochs_run": len(history),
               "best_epoch": None if best is None else best + 1, "tensorboard": str(run_dir),
               "seconds": round(time.monotonic() - started, 1)}
    model.save(out_dir)
    write_ranking_summary(run_dir, cfg.customers, {"val_recall_at_10": summary["val_recall@10"]})
    write_json(summary, out_dir / TRAIN_FILE)  # last: its presence marks the training as committed
    log.info("customer model for %s: validation Recall@10 %.4f after %d epochs (%s)", cutoff,
             summary["val_recall@10"] or float("nan"), summary["epochs_run"], out_dir)
    return summary
