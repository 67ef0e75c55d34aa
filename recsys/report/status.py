"""What the store holds now: production model, its metrics beside the baseline's, where outputs are.

``store_status`` answers "what is in production, how good is it, where are the logs and the
re-ranked lists": it is what `make demo` prints after the Airflow run. Two times are kept apart:
``production_version`` is the pointer as it is now (models/production.json, moved by push, promote
and rollback), while ``at_evaluation`` is what the evaluation said when that version was a candidate
(the production it was compared with then, and why it was blessed). Every hold-out metric is shown
for the model and the seasonal-naive baseline, with the metrics and the segments where the model
loses (``compare_with_baseline``); ``status_lines`` turns that into the sentences the report prints.

    trendrec status
"""

from __future__ import annotations

import logging
import math
from typing import Any

from pipeline.config import Config
from pipeline.store import Store, read_json
from recsys import registry

log = logging.getLogger(__name__)

METRICS = ("mase", "mae", "rmse", "mape", "smape", "r2")  # every hold-out metric evaluate writes
HIGHER_IS_BETTER = frozenset({"r2"})
BASELINE = "seasonal_naive"


def _metrics(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if metrics is None else {k: metrics.get(k) for k in METRICS}


def _ingested(store: Store) -> dict[str, int]:
    """Totals over every committed ingest (one commit record per source file)."""
    totals = {"files_ingested": 0, "rows_accepted": 0, "rows_quarantined": 0}
    for commit in sorted(store.commits.glob("*.json")) if store.commits.is_dir() else []:
        record = read_json(commit)
        totals["files_ingested"] += 1
        totals["rows_accepted"] += record["rows_accepted"]
        totals["rows_quarantined"] += record["rows_quarantined"]
    return totals


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _better(metric: str, model: float, baseline: float) -> bool:
    return model > baseline if metric in HIGHER_IS_BETTER else model < baseline


def compare_with_baseline(metrics: dict[str, Any], per_segment: dict[str, Any],
                          baseline: str = BASELINE, shipped: str = "model") -> dict[str, Any]:
    """Where the model beats ``baseline`` and where it loses: per hold-out metric, and per segment on MASE.

    ``shipped`` is the evaluation's name of the forecaster the version holds ("model", the candidate,
    unless the version kept production's or a baseline's). A tie counts as neither. Per segment,
    MASE ranks the two forecasters as MAE does (same scale).
    """
    model, base = metrics.get(shipped) or {}, metrics.get(baseline) or {}
    pairs = [(k, model.get(k), base.get(k)) for k in METRICS if _finite(model.get(k)) and _finite(base.get(k))]
    segments = {seg: ((v.get(shipped) or {}).get("mase"), (v.get(baseline) or {}).get("mase"))
                for seg, v in sorted(per_segment.items())}
    segments = {seg: (a, b) for seg, (a, b) in segments.items() if _finite(a) and _finite(b)}
    return {"model_beats_baseline_on": [k for k, a, b in pairs if _better(k, a, b)],
            "model_loses_on": [k for k, a, b in pairs if _better(k, b, a)],
            "segments_compared": len(segments),
            "segments_model_wins": sum(a < b for a, b in segments.values()),
            "segments_model_loses": [seg for seg, (a, b) in segments.items() if a > b]}


def store_status(cfg: Config) -> dict[str, Any]:
    """Production now, what its evaluation said then, every metric beside the baseline's, where outputs are."""
    store = Store(cfg.store)
    prod = registry.read_production(store)
    status: dict[str, Any] = {"store": str(store.root), **_ingested(store),
                              "production_version": prod and prod["version"]}  # now: models/production.json
    if prod:
        model_dir = registry.verify_version(store, prod["version"])  # files as pushed, or a one-line error
        meta = registry.read_metadata(model_dir)
        evaluation = read_json(model_dir / "evaluation.json") if (model_dir / "evaluation.json").is_file() else {}
        metrics = meta.get("metrics") or {}
        kept = meta.get("segment_forecaster") or {"source": "candidate"}  # versions before it: the candidate
        shipped = {"candidate": "model", "production": "production"}.get(kept["source"], kept.get("member"))
        status.update({
            "segment_forecaster": kept,
            "production_history": prod["history"],
            "model_dir": str(model_dir),
            "trained_until": meta.get("cutoff"),
            "holdout_end": meta.get("holdout_end"),
            "at_evaluation": {"pushed_at": meta.get("created_at"), "production_then": meta.get("replaced"),
                              "blessed_because": meta.get("reason")},  # as it was then, not now
            "model_metrics": _metrics(metrics.get(shipped)),
            "seasonal_naive_metrics": _metrics(metrics.get(BASELINE)),
            **compare_with_baseline(metrics, evaluation.get("per_segment") or {}, shipped=shipped),
        })
        status["customer_model"] = customer_status(meta)
    status["latest_candidate"] = latest_candidate(store)
    status["ranking"] = ranking_status(store)
    status["versions"] = [m["version"] for m in registry.list_models(store)]
    status["tensorboard"] = f"tensorboard --logdir {store.runs} --host 127.0.0.1"
    status["reranked"] = sorted(str(p) for p in store.reranked.glob("*.parquet")) if store.reranked.is_dir() else []
    return status


def latest_candidate(store: Store) -> dict[str, Any] | None:
    """The newest evaluated candidate: the version it was pushed as, or why it was not pushed."""
    root = store.models / "candidates"
    evaluated = sorted(p for p in root.iterdir() if (p / "evaluation.json").is_file()) if root.is_dir() else []
    if not evaluated:
        return None
    candidate = evaluated[-1]
    evaluation = read_json(candidate / "evaluation.json")
    customers = candidate / "customers" / "evaluation.json"
    judged = read_json(customers) if customers.is_file() else {}
    return {"candidate": candidate.name, "pushed_as": registry.pushed_as(store, candidate),
            "forecaster_blessed": bool(evaluation.get("blessed")), "forecaster_reason": evaluation.get("reason"),
            "customer_model_blessed": bool(judged.get("blessed")),
            "customer_model_reason": judged.get("reason", "no customer model trained")}


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


def status_lines(status: dict[str, Any]) -> list[str]:
    """The production part of ``store_status`` as sentences: now, then, and where the model loses."""
    latest = status.get("latest_candidate")
    if not status.get("production_version"):
        return [] if latest is None else [_not_pushed(latest)]
    then = status["at_evaluation"]
    history = ", ".join(status["production_history"]) or "none"
    lines = [f"Production now: {status['production_version']} (models/production.json; earlier: {history}), "
             f"trained until {status['trained_until']}, hold-out to {status['holdout_end']}.",
             f"At its evaluation (pushed {then['pushed_at']}; production then: {then['production_then'] or 'none'}):"
             f" {then['blessed_because']}."]
    kept = status.get("segment_forecaster") or {}
    if kept.get("source") == "baseline":
        lines.append(f"Its segment forecaster is the baseline {kept['member']} alone (the candidate was not blessed).")
    elif kept.get("source") == "production":
        lines.append(f"Its segment forecaster is {kept['version']}'s, carried forward (the candidate was not blessed).")
    wins, losses = status["model_beats_baseline_on"], status["model_loses_on"]
    lines.append(f"Against seasonal naive on the hold-out: better on {', '.join(wins) or 'no metric'}; "
                 f"worse on {', '.join(losses) or 'no metric'}.")
    lost = status["segments_model_loses"]
    lines.append(f"Segments (MASE): the model wins {status['segments_model_wins']} of "
                 f"{status['segments_compared']} and loses {len(lost)}"
                 + (f": {', '.join(lost)}." if lost else "."))
    if latest is not None and latest["pushed_as"] is None:
        lines.append(_not_pushed(latest))
    return lines


def _not_pushed(latest: dict[str, Any]) -> str:
    return (f"The latest candidate, {latest['candidate']}, is not in a version: segment forecaster "
            f"{'blessed' if latest['forecaster_blessed'] else 'not blessed'} ({latest['forecaster_reason']}); "
            f"customer model {'blessed' if latest['customer_model_blessed'] else 'not blessed'} "
            f"({latest['customer_model_reason']}).")
