"""What push adds for the customer model: the model chosen for the version and its scores.

Called by the push stage on the registry's staging copy of the candidate (after the forecaster's
own files are in). The version's customer model is the candidate's when the gate blessed it
(recsys.nextbasket.judge), else production's (carried forward, so one bad week does not drop a good
model), else none. Its scores for every customer of the lookback are computed now, at the day
after the last event, into ``customers/scores.parquet``: serving then needs no TensorFlow. The
metadata fields returned land in the version's metadata.json under ``customers``. A version without
a customer model serves segment trends only.

    trendrec push --json
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.store import Store, read_json
from recsys import registry
from recsys.nextbasket.histories import NoCustomerHistoryError, customer_cutoff, open_store
from recsys.nextbasket.scores import CUSTOMERS_DIR, MODEL_FILE, SCORES_FILE, write_scores
from recsys.nextbasket.train import TRAIN_FILE

log = logging.getLogger(__name__)

EVALUATION_FILE = "evaluation.json"


def assemble_customers(cfg: Config, staging: Path) -> dict[str, Any]:
    """Fill ``staging/customers/`` (model + scores) or remove it; the ``customers`` metadata field."""
    from recsys.nextbasket.model import LSTMRecommender  # TensorFlow: only at push

    store = Store(cfg.store)
    target = staging / CUSTOMERS_DIR
    evaluation = _read(target / EVALUATION_FILE)
    source = "candidate"
    if not evaluation.get("blessed"):
        shutil.rmtree(target, ignore_errors=True)
        source = _carry_forward(store, target)
        if source is None:
            log.info("no customer model in this version (%s): serving uses segment trends",
                     evaluation.get("reason", "none trained"))
            return {"customers": {"model": None, "reason": evaluation.get("reason", "no customer model trained")}}
    con = open_store(str(store.root), cfg.customers)
    try:
        scored = write_scores(LSTMRecommender.load(target), con, customer_cutoff(con), staging / SCORES_FILE,
                              cfg.customers)
    except NoCustomerHistoryError as exc:
        shutil.rmtree(target, ignore_errors=True)
        return {"customers": {"model": None, "reason": f"nothing to score: {exc}"}}
    info = {"model": source, "evaluation": evaluation if source == "candidate" else _read(target / EVALUATION_FILE),
            "train": _read(target / TRAIN_FILE), "scores": scored}
    log.info("customer model (%s) scored %d pairs for %d customers in %.1f s", source, scored["pairs"],
             scored["customers"], scored["seconds"])
    return {"customers": info}


def blessed_because(candidate_dir: Path) -> str | None:
    """Why the candidate's customer model is blessed ("customer model: <gate reason>"), or None."""
    evaluation = _read(Path(candidate_dir) / CUSTOMERS_DIR / EVALUATION_FILE)
    return f"customer model: {evaluation.get('reason')}" if evaluation.get("blessed") else None


def _carry_forward(store: Store, target: Path) -> str | None:
    """Copy production's customer model (not its scores) into ``target``; its version, or None."""
    prod = registry.read_production(store)
    if prod is None:
        return None
    source = registry.verify_version(store, prod["version"]) / CUSTOMERS_DIR
    if not (source / MODEL_FILE).is_file():
        return None
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("scores.parquet"))
    log.info("customer model of this candidate not blessed: carrying %s's forward", prod["version"])
    return prod["version"]


def _read(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}
