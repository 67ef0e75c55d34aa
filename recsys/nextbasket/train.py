"""The customers stage's training: fit an LSTMRecommender for next week into a candidate directory.

The model predicts the 7 days after the log's last full day (``cutoff`` = last event day + 1). It is
trained on the weekly cut-offs before that (recsys.nextbasket.recommend.fit_recommender: features
before each cut-off, labels in its week) and validated on the latest labelled week, cutoff - 7;
the best epoch's validation Recall@10 is what the blessing gate (recsys.nextbasket.judge) compares with
the baselines on that same week and the same customers (validation_customers.parquet: the
``[customers] validation_customers`` sample the model was validated on). Files go to the run's
``nextbasket/`` folder (model.keras, config.json, train.json, that list), built aside and switched in
whole, TensorBoard logs to ``runs/<run id>-nextbasket``. train.json records the fingerprint of the
settings and the committed ingests it read: a re-run reuses the model only when both are unchanged. A
log without known customers (guests only) trains nothing: the summary says so and serving falls back to
segment trends.

    trendrec customers --json
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.store import Store, read_json, removed_on_failure, write_json, write_parquet
from recsys.nextbasket.histories import NoCustomerHistoryError, check_customers, customer_cutoff, open_store
from recsys.runs import FINGERPRINT_KEY, TRAIN_FILE, Run, fingerprint, part_staging, raw_inputs, switch_folder

log = logging.getLogger(__name__)

PART = "nextbasket"  # the family's folder in a run and in a version
VALIDATION_FILE = "validation_customers.parquet"  # in run/nextbasket/: the validation week's customers (user_id)


def train_customer_model(cfg: Config, run: Run) -> dict[str, Any]:
    """Fit into ``run/nextbasket/``; a re-run reuses the model when settings and data are unchanged."""
    started = time.monotonic()
    store = Store(cfg.store)
    out_dir = run.part(PART)
    key = fingerprint(cfg.to_dict()["customers"], raw_inputs(store))
    if (out_dir / TRAIN_FILE).is_file():
        done = read_json(out_dir / TRAIN_FILE)
        if done.get(FINGERPRINT_KEY) == key:
            log.info("customer model in %s already trained on the same settings and data; reusing it", out_dir)
            return done | {"reused": True}
        log.info("settings or data changed since %s was trained; training again", out_dir)
    con = open_store(str(store.root), cfg.customers)
    try:
        cutoff = customer_cutoff(con)
        check_customers(con, cutoff, cfg.customers)  # a guest-only log says so, before any training
        run_dir = store.ensure().runs / f"{run.run_id}-{PART}"
        with removed_on_failure(run_dir):  # TensorFlow's event files of a failed fit (a full disk) go too
            summary = _fit_and_commit(cfg, con, cutoff, run, run_dir, key)
    except NoCustomerHistoryError as exc:
        log.warning("no customer model: %s; serving falls back to segment trends", exc)
        return {"trained": False, "reason": f"no customer model: {exc}; re-ranking uses segment trends"}
    log.info("customer model for %s: validation Recall@10 %.4f after %d epochs (%s)", cutoff,
             summary["val_recall@10"] or float("nan"), summary["epochs_run"], out_dir)
    return summary | {"seconds": round(time.monotonic() - started, 1), "reused": False}


def _fit_and_commit(cfg: Config, con, cutoff, run: Run, run_dir: Path, key: str) -> dict[str, Any]:
    """Fit, save into a folder beside ``run/nextbasket/``, then switch it in whole."""
    from recsys.evaluation.tensorboard import write_ranking_summary  # TensorFlow: only when a model is trained
    from recsys.nextbasket.recommend import fit_recommender, validation_customers

    staging, held = part_staging(run, PART)
    try:
        model = fit_recommender(con, cutoff, cfg.customers, None, run_dir)
        validated = validation_customers(con, cutoff, cfg.customers)  # fit_recommender's: the same function
        history = model.history.get("val_recall_at_10", [])
        best = max(range(len(history)), key=history.__getitem__) if history else None
        summary = {"trained": True, "cutoff": cutoff.isoformat(),
                   "validation_cutoff": (cutoff - timedelta(weeks=1)).isoformat(),
                   "val_recall@10": history[best] if best is not None else None, "epochs_run": len(history),
                   "best_epoch": None if best is None else best + 1, "validation_customers": len(validated),
                   "tensorboard": str(run_dir), FINGERPRINT_KEY: key}
        model.save(staging)
        write_parquet(pa.table({s.USER_ID: pa.array(validated, pa.string())}), staging / VALIDATION_FILE)
        write_ranking_summary(run_dir, cfg.customers, {"val_recall_at_10": summary["val_recall@10"]})
        write_json(summary, staging / TRAIN_FILE)
        switch_folder(staging, run.part(PART))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(held)
    return summary
