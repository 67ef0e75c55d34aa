"""What the store holds now: what production ships per part, each part's verdict, the latest run, where outputs are.

``store_status`` answers "what is in production, how good is it, where are the logs and the re-ranked
lists": it is what `make demo` prints after the Airflow run. What is shown is what ships: the segment
forecaster's member, hold-out metrics and training curve are those of the forecaster the version holds
(``forecaster_view``: the run's, production's carried forward, or a baseline member alone), never those
of a run's forecaster that was not blessed. Production is always read through ``registry.production``,
which checks every file's digest; versions written before parts existed (forecaster at the version's
root, ``segment_forecaster`` in metadata.json) are read too.

Two times are kept apart: ``production_version`` is the pointer as it is now (models/production.json),
while ``at_push`` is what the release rule said when the version was built. ``latest_run`` is the newest
training run (recsys.runs.latest), each part's verdict and the version it was pushed as, if any.
``status_lines`` turns all that into the sentences the report and notebook 02 print.

    trendrec status --json
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_json
from recsys import registry, runs
from recsys.monitor.gate import trailing_reason
from recsys.monitor.summary import last_verdicts, monitor_lines
from recsys.report.segment_trends import trend_weight_status

log = logging.getLogger(__name__)

METRICS = ("mase", "mae", "rmse", "mape", "smape", "r2")  # every hold-out metric evaluate writes
HIGHER_IS_BETTER = frozenset({"r2"})
BASELINE = "seasonal_naive"
STATISTICAL = ("seasonal_naive", "auto_ets", "auto_theta", "mstl", "year_ago")  # recsys.forecast.members.STATISTICAL
PARTS = registry.PART_NAMES  # in release order
LSTM_FILE = "model.keras"  # a forecaster with an LSTM member holds it (recsys.forecast.publish.LSTM_FILES)
_LEGACY_SOURCE = {"candidate": "run", "production": "production"}  # old segment_forecaster.source -> ships
_METRICS_KEY = {"run": "model", "production": "production"}  # ships -> its name in evaluation metrics


class StatusError(TrendrecError):
    """The store cannot be described (a run or version record that cannot be read)."""


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
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _better(metric: str, model: float, baseline: float) -> bool:
    return model > baseline if metric in HIGHER_IS_BETTER else model < baseline


def compare_with_baseline(metrics: dict[str, Any], per_segment: dict[str, Any],
                          baseline: str = BASELINE, shipped: str = "model") -> dict[str, Any]:
    """Where the shipped forecaster beats ``baseline`` and where it loses: per metric, and per segment on MASE.

    ``shipped`` is the evaluation's name of the forecaster the version holds ("model": the run's;
    "production"; or a baseline member). A tie counts as neither. Per segment, MASE ranks the two
    forecasters as MAE does (same scale).
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


# --- what a version holds ---------------------------------------------------------------------------
def forecaster_view(release: registry.Release) -> dict[str, Any]:
    """The segment forecaster ``release`` holds, the same for every layout: what it is and how it scored.

    ``ships`` is "run", "production" or a baseline member; ``name`` its key in ``metrics`` (the
    evaluation's figures on the hold-out); ``holdout_mase`` its MASE there; ``verdict`` the run's
    forecaster verdict (synthesised from metadata.json for a version written before verdicts);
    ``has_lstm`` whether the forecaster the version holds has an LSTM (and so a training curve).
    """
    part = release.part_metadata("forecast")
    view = _forecaster_fields(release.metadata, part) if part else _legacy_forecaster_fields(release.metadata)
    name = _METRICS_KEY.get(view["ships"], view["ships"])
    figures = view["metrics"].get(name) or {}
    recorded = view.pop("recorded_mase")
    folder = release.part("forecast")
    view |= {"name": name, "holdout_mase": figures.get("mase") if _finite(figures.get("mase")) else recorded,
             "member": _member(view["ships"]), "folder": str(folder) if folder else None,
             "has_lstm": bool(folder is not None and view["ships"] in _METRICS_KEY and (folder / LSTM_FILE).is_file())}
    view["label"] = _forecaster_label(view)
    return view


def _forecaster_fields(meta: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """forecaster_view's fields from a version's ``parts.forecast`` entry."""
    return {"ships": str(part.get("ships") or "run"), "metrics": part.get("metrics") or {},
            "verdict": part.get("verdict"), "recorded_mase": part.get("holdout_mase"),
            "baseline": part.get("baseline"), "baseline_mase": part.get("baseline_mase"),
            "cutoff": part.get("cutoff"), "holdout_end": part.get("holdout_end"),
            "carried_from": part.get("carried_from")}


def _legacy_forecaster_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """forecaster_view's fields from a version written before parts (``segment_forecaster``, top-level metrics)."""
    kept = meta.get("segment_forecaster") or {"source": "candidate"}  # versions before it: the candidate
    ships = _LEGACY_SOURCE.get(kept.get("source"), kept.get("member")) or "run"
    metrics = meta.get("metrics") or {}
    scored = {b: (metrics.get(b) or {}).get("mase") for b in STATISTICAL}
    scored = {b: v for b, v in scored.items() if _finite(v)}
    best = min(scored, key=lambda b: (scored[b], b)) if scored else None
    verdict = {"part": "forecast", "blessed": ships == "run", "metric": "mase",
               "value": (metrics.get("model") or {}).get("mase"), "baseline": best,
               "baseline_value": scored.get(best), "reason": meta.get("reason"), "ships": ships,
               "against": meta.get("replaced"), "details": {"kept": kept}}
    return {"ships": ships, "metrics": metrics, "verdict": verdict, "recorded_mase": kept.get("holdout_mase"),
            "baseline": best, "baseline_mase": scored.get(best), "cutoff": meta.get("cutoff"),
            "holdout_end": meta.get("holdout_end"), "carried_from": kept.get("version")}


def _member(ships: str) -> str:
    """What the forecaster is, in a few words: "the run's combination", "auto_ets", ..."""
    if ships == "run":
        return "combination"
    if ships == "production":
        return "production's combination"
    return ships


def _forecaster_label(view: dict[str, Any]) -> str:
    ships, verdict = view["ships"], view["verdict"] or {}
    if ships == "run":
        origin = f"carried unchanged from {view['carried_from']}" if view.get("carried_from") else "blessed"
        return f"the run's forecaster ({origin})"
    if ships == "production":
        earlier = verdict.get("against") or view.get("carried_from") or "the production then"
        return f"production's forecaster ({earlier}) carried forward: the run's was not blessed"
    why = f"carried unchanged from {view['carried_from']}" if view.get("carried_from") and not verdict \
        else "the run's forecaster was not blessed"
    return f"the baseline {ships} alone: {why} (no LSTM)"


def part_verdicts(release: registry.Release) -> dict[str, dict[str, Any] | None]:
    """{part: its verdict (a Verdict's JSON) or None} for every part the version holds or records."""
    out: dict[str, dict[str, Any] | None] = {}
    for name in PARTS:
        if name == "forecast":
            out[name] = forecaster_view(release)["verdict"] if release.part(name) is not None else None
            continue
        verdict = release.part_metadata(name).get("verdict")
        folder = release.part(name)
        legacy = release.metadata.get("customers") or {}
        if name == "nextbasket" and "parts" not in release.metadata and not legacy.get("model"):
            folder = None  # before parts, customers/ also held the value forecast: no next-basket model here
        if verdict is None and folder is not None:
            found = runs.read_verdict(folder)
            verdict = found.to_json() if found is not None else None
        if verdict is not None or folder is not None or release.part_metadata(name):
            out[name] = verdict
    return out


def verdict_line(verdict: dict[str, Any] | None, part: str) -> str:
    """One sentence: blessed or not, the metric against its baseline, what ships, why."""
    if verdict is None:
        return f"{part}: no verdict recorded (a version written before verdicts)"
    value, base = verdict.get("value"), verdict.get("baseline_value")
    figure = f"{verdict.get('metric')} {_fmt(value)} vs {verdict.get('baseline') or 'no baseline'} {_fmt(base)}"
    state = "blessed" if verdict.get("blessed") else "not blessed"
    return f"{part}: {state} ({figure}); ships {verdict.get('ships')}: {verdict.get('reason')}"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if _finite(value) else "n/a"


# --- the status ---------------------------------------------------------------------------------------
def store_status(cfg: Config) -> dict[str, Any]:
    """Production now and what each part ships, the latest run's verdicts, where outputs are."""
    store = Store(cfg.store)
    release = registry.production(store)  # every digest checked, or a one-line RegistryError
    status: dict[str, Any] = {"store": str(store.root), **_ingested(store),
                              "production_version": release and release.version}  # now: production.json
    if release is not None:
        status |= production_status(release)
        status["segment_trends"] = trend_weight_status(release, cfg.rerank.weight)
    status["latest_run"] = latest_run(store)
    status["ranking"] = ranking_status(store)
    status["versions"] = registry.versions(store)
    status["monitor"] = last_verdicts(store, release and release.version)  # drift and live results
    status["monitor"]["degraded"] = release and trailing_reason(store, cfg.monitor.trailing_weeks, release.version)
    status["tensorboard"] = f"tensorboard --logdir {store.runs} --host 127.0.0.1"
    status["reranked"] = sorted(str(p) for p in store.reranked.glob("*.parquet")) if store.reranked.is_dir() else []
    return status


def production_status(release: registry.Release) -> dict[str, Any]:
    """The status fields of a production release: its forecaster as shipped, each part's verdict."""
    meta, view = release.metadata, forecaster_view(release)
    folder = release.part("forecast")
    evaluation = _read_optional(folder / "evaluation.json") if folder is not None else {}
    forecaster = {k: view[k] for k in ("ships", "name", "member", "label", "holdout_mase", "baseline",
                                       "baseline_mase", "has_lstm", "carried_from")}
    return {
        "production_history": list(release.history), "model_dir": str(release.path),
        "forecaster": forecaster, "verdicts": part_verdicts(release),
        "trained_until": view["cutoff"], "holdout_end": view["holdout_end"],
        "at_push": {"pushed_at": meta.get("created_at"), "production_then": meta.get("replaced"),
                    "run": meta.get("run") or meta.get("candidate"), "reason": meta.get("reason")},
        "model_metrics": _metrics(view["metrics"].get(view["name"])),  # the forecaster the version holds
        "seasonal_naive_metrics": _metrics(view["metrics"].get(BASELINE)),
        **compare_with_baseline(view["metrics"], evaluation.get("per_segment") or {}, shipped=view["name"]),
        "customer_model": customer_status(release),
        "value_model": value_status(release),
    }


def customer_status(release: registry.Release) -> dict[str, Any]:
    """The version's next-basket model: what ships, its validation figure beside the best baseline's."""
    part = release.part_metadata("nextbasket")
    legacy = release.metadata.get("customers") or {}
    if part:
        against = (part.get("verdict") or {}).get("against") or "production"
        model = "this version's" if part.get("ships") == "run" else f"carried from {against}"
    elif legacy.get("model"):
        model = "this version's" if legacy["model"] == "candidate" else f"carried from {legacy['model']}"
    else:
        reason = legacy.get("reason", "this version has no next-basket model: segment trends rank")
        return {"model": None, "reason": reason}
    info = part or legacy
    evaluation, scores = info.get("evaluation") or {}, info.get("scores") or {}
    best = evaluation.get("best_baseline")
    return {"model": model, "val_recall@10": (evaluation.get("model") or {}).get("recall@10"),
            "best_baseline": best, "best_baseline_recall@10": (evaluation.get("baselines") or {}).get(best),
            "validation_week_from": evaluation.get("validation_cutoff"),
            "customers_scored": scores.get("customers"), "scored_for": scores.get("cutoff")}


def value_status(release: registry.Release) -> dict[str, Any]:
    """The version's customer value model: which model's forecast it publishes, and its verdict."""
    part = release.part_metadata("value") or release.metadata.get("value") or {}
    if release.part("value") is None and not part:
        return {"ships": None, "reason": "this version has no customer value forecast: run `trendrec value`"}
    verdict = part.get("verdict")
    ships = part.get("ships") or (verdict or {}).get("ships") or "ensemble"  # before verdicts: the ensemble
    return {"ships": ships, "holdout_days": part.get("holdout_days"), "verdict": verdict,
            "figures": (part.get("models") or {}).get(ships)}


def latest_run(store: Store) -> dict[str, Any] | None:
    """The newest training run (recsys.runs.latest): each part's verdict, and the version it became."""
    try:
        run = runs.latest(store)
    except runs.RunError:
        return None
    verdicts = {}
    for name in PARTS:
        verdict = runs.read_verdict(run.part(name))
        trained = (run.part(name) / runs.TRAIN_FILE).is_file()
        if verdict is not None or trained:
            verdicts[name] = verdict.to_json() if verdict is not None else None  # None: trained, not judged
    return {"run": run.run_id, "run_dir": str(run.root),
            "pushed_as": registry.pushed_as(store, runs.run_ref(store, run)), "verdicts": verdicts}


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


def _read_optional(path: Path) -> dict[str, Any]:
    try:
        return read_json(path) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise StatusError(f"{path} cannot be read ({exc}); push the version again") from exc


# --- sentences ----------------------------------------------------------------------------------------
def status_lines(status: dict[str, Any]) -> list[str]:
    """``store_status`` as sentences: production now, what it ships and why, where it loses, the latest run."""
    latest = status.get("latest_run")
    if not status.get("production_version"):
        return [] if latest is None else [_run_line(latest)]
    then, forecaster = status["at_push"], status["forecaster"]
    history = ", ".join(status["production_history"]) or "none"
    lines = [f"Production now: {status['production_version']} (models/production.json; earlier: {history}), "
             f"trained until {status['trained_until']}, hold-out to {status['holdout_end']}.",
             f"At its push ({then['pushed_at']}; production then: {then['production_then'] or 'none'}): "
             f"{then['reason']}.",
             f"Its segment forecaster is {forecaster['label']}; hold-out MASE {_fmt(forecaster['holdout_mase'])} "
             f"({forecaster['name']}).",
             *(f"Verdict, {verdict_line(v, part)}." for part, v in status["verdicts"].items())]
    if status.get("segment_trends"):
        lines.append(status["segment_trends"]["says"])
    value = status.get("value_model") or {}
    if value.get("ships"):
        lines.append(f"Customer value: the version publishes the {value['ships']} forecast.")
    wins, losses = status["model_beats_baseline_on"], status["model_loses_on"]
    lines.append(f"Against seasonal naive on the hold-out: better on {', '.join(wins) or 'no metric'}; "
                 f"worse on {', '.join(losses) or 'no metric'}.")
    lost = status["segments_model_loses"]
    lines.append(f"Segments (MASE): the shipped forecaster wins {status['segments_model_wins']} of "
                 f"{status['segments_compared']} and loses {len(lost)}" + (f": {', '.join(lost)}." if lost else "."))
    if latest is not None:
        lines.append(_run_line(latest))
    return lines + monitor_lines(status.get("monitor") or {})


def _run_line(latest: dict[str, Any]) -> str:
    pushed = f"pushed as {latest['pushed_as']}" if latest["pushed_as"] else "not in a version"
    judged = "; ".join(verdict_line(v, part) if v is not None else f"{part}: trained, not judged"
                       for part, v in latest["verdicts"].items())
    return f"The latest run, {latest['run']}, is {pushed}: {judged or 'nothing trained'}."
