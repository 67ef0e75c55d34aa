"""What the store holds now: production model, its metrics beside the baseline's, where outputs are.

``store_status`` answers "what is in production, how good is it, where are the logs and the
re-ranked lists": it is what `make demo` prints after the Airflow run.

    trendrec status
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.config import Config
from pipeline.store import Store, read_json
from recsys import registry

log = logging.getLogger(__name__)

_HEADLINE = ("mase", "mae", "rmse", "smape", "r2")


def _headline(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if metrics is None else {k: metrics.get(k) for k in _HEADLINE}


def _ingested(store: Store) -> dict[str, int]:
    """Totals over every committed ingest (one commit record per source file)."""
    totals = {"files_ingested": 0, "rows_accepted": 0, "rows_quarantined": 0}
    for commit in sorted(store.commits.glob("*.json")) if store.commits.is_dir() else []:
        record = read_json(commit)
        totals["files_ingested"] += 1
        totals["rows_accepted"] += record["rows_accepted"]
        totals["rows_quarantined"] += record["rows_quarantined"]
    return totals


def store_status(cfg: Config) -> dict[str, Any]:
    """Production version with its hold-out metrics beside the baseline's, and where outputs are."""
    store = Store(cfg.store)
    prod = registry.read_production(store)
    status: dict[str, Any] = {"store": str(store.root), **_ingested(store),
                              "production_version": prod and prod["version"]}
    if prod:
        meta = read_json(registry.version_dir(store, prod["version"]) / registry.METADATA_FILE)
        metrics = meta.get("metrics", {})
        status.update({
            "model_dir": str(registry.version_dir(store, prod["version"])),
            "trained_until": meta.get("cutoff"),
            "holdout_end": meta.get("holdout_end"),
            "model_metrics": _headline(metrics.get("model")),
            "seasonal_naive_metrics": _headline(metrics.get("seasonal_naive")),
            "blessed_because": meta.get("reason"),  # the evaluation's reason, as it was at push time
        })
        status["customer_model"] = customer_status(meta)
    status["ranking"] = ranking_status(store)
    status["versions"] = [m["version"] for m in registry.list_models(store)]
    status["tensorboard"] = f"tensorboard --logdir {store.runs} --host 127.0.0.1"
    status["reranked"] = sorted(str(p) for p in store.reranked.glob("*.parquet")) if store.reranked.is_dir() else []
    return status


def customer_status(meta: dict[str, Any]) -> dict[str, Any]:
    """The version's customer model: where it came from, its validation figure beside the best baseline's."""
    info = meta.get("customers") or {}
    if not info.get("model"):
        return {"model": None, "reason": info.get("reason", "this version has no customer model: segment trends rank")}
    evaluation, scores = info.get("evaluation") or {}, info.get("scores") or {}
    best = evaluation.get("best_baseline")
    return {"model": "this version's" if info["model"] == "candidate" else f"carried from {info['model']}",
            "val_recall@10": (evaluation.get("model") or {}).get("recall@10"), "best_baseline": best,
            "best_baseline_recall@10": (evaluation.get("baselines") or {}).get(best),
            "validation_week_from": evaluation.get("validation_cutoff"),
            "customers_scored": scores.get("customers"), "scored_for": scores.get("cutoff")}


def ranking_status(store: Store) -> dict[str, Any] | str:
    """Pooled Recall@10 / NDCG@10 per method of the last `trendrec evaluate-rerank`, or what to run."""
    path = store.reranked / "evaluation.json"
    if not path.is_file():
        return "not evaluated yet: run `trendrec evaluate-rerank` (every method retrained at 6 weekly cut-offs)"
    result = read_json(path)
    pooled = result.get("pooled") or {}
    return {"cutoffs": len(result.get("cutoffs") or []),
            **{name: {k: row.get(k) for k in ("recall@10", "ndcg@10", "users")} for name, row in pooled.items()},
            "wins_over_best_baseline": result.get("wins_over_best_baseline")}
