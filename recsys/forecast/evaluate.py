"""Score a trained candidate on the hold-out against the single baselines and production.

The hold-out is the ``evaluate.holdout_days`` days right after the candidate's training cutoff; the
candidate (the combination of recsys.forecast.combination), each single baseline (every statistical
member alone: seasonal naive, AutoETS, AutoTheta, MSTL, year-ago) and the production model (if any) all forecast from
the same cutoff with the same history, so their errors are comparable. MASE (Hyndman & Koehler)
is the deciding metric because it is scale-free across segments of very different volume: a
value below 1 beats the seasonal-naive forecast's in-sample error.

The verdict (recsys.runs.Verdict, ``forecast/verdict.json``) says whether the run's forecaster is blessed
and, when it is not, what a release would hold instead (``ships``): production's forecaster when the
evaluation scored it, else the single baseline with the lowest hold-out MASE.

    trendrec evaluate trendrec-data/models/runs/<run id>/ --json
"""

from __future__ import annotations

import logging
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_json, write_json
from recsys import registry
from recsys.forecast import metrics as m
from recsys.forecast.train import PART
from recsys.runs import EVALUATION_FILE, FINGERPRINT_KEY, TRAIN_FILE, Run, Verdict, fingerprint, run_ref, write_verdict
from recsys.forecast.combination import load_forecaster
from recsys.forecast.members import STATISTICAL, statistical_forecasts

log = logging.getLogger(__name__)

BASELINES = STATISTICAL  # the single baselines the candidate must beat: every statistical member alone


class EvaluationError(TrendrecError):
    """The candidate or the data cannot be evaluated (missing train.json, no hold-out days...)."""


def decide_blessing(model_mase: float | None, baselines: dict[str, float | None], production_mase: float | None,
                    margin: float, has_production: bool) -> tuple[bool, str]:
    """Blessed iff MASE < best baseline * (1 - margin) and, when a production model exists, < its MASE.

    ``baselines`` maps each single baseline (every statistical member) to its MASE; the
    best finite one is the bar, so a candidate that only beats seasonal naive is not enough.
    """
    if model_mase is None or not math.isfinite(model_mase):
        return False, f"forecaster MASE is undefined ({model_mase}); nothing to compare"
    finite = {k: v for k, v in baselines.items() if v is not None and math.isfinite(v)}
    if not finite:
        return False, f"every baseline MASE is undefined ({baselines}); cannot judge the candidate"
    best = min(finite, key=lambda k: (finite[k], k))
    bar = finite[best] * (1.0 - margin)
    if not model_mase < bar:
        return False, (f"forecaster MASE {model_mase:.4f} does not beat the best baseline, {best} "
                       f"{finite[best]:.4f}, by margin {margin:g} (needs < {bar:.4f})")
    beaten = f"forecaster MASE {model_mase:.4f} beats the best baseline, {best} {finite[best]:.4f} (margin {margin:g})"
    if has_production:
        if production_mase is None or not math.isfinite(production_mase):
            return False, f"production MASE is undefined ({production_mase}) on this hold-out; keeping it"
        if not model_mase < production_mase:
            return False, f"forecaster MASE {model_mase:.4f} does not beat production {production_mase:.4f}"
        return True, f"{beaten} and production {production_mase:.4f}"
    return True, f"{beaten}; there was no production model to compare with"


# --- run_evaluate: I/O around the pure parts ------------------------------------------------------
def run_evaluate(cfg: Config, run: Run) -> dict[str, Any]:
    """Forecast the hold-out with the run's forecaster, the baselines and production; write evaluation.json
    and the verdict.

    Overall MAE, RMSE, MAPE, sMAPE and R² are computed on the pooled (segment, day) values of the
    hold-out; overall MASE is the mean of the per-segment MASEs (each segment has its own scale),
    over the segments whose training series has a non-zero naive error. Non-finite values are
    reported as null so the summary stays strict JSON. A re-run reuses the evaluation only when the
    forecaster, the evaluation settings and production are the same.
    """
    store = Store(cfg.store)
    part_dir = run.part(PART)
    train = _read_train(part_dir)
    cutoff = date.fromisoformat(str(train["cutoff"]))
    prod = registry.read_production(store)
    key = fingerprint(cfg.to_dict()["evaluate"], {"forecaster": train.get(FINGERPRINT_KEY),
                                                  "production": prod and prod["version"]})
    if (part_dir / EVALUATION_FILE).is_file():
        done = read_json(part_dir / EVALUATION_FILE)
        if done.get(FINGERPRINT_KEY) == key or registry.pushed_as(store, run_ref(store, run)):
            # The same inputs, or already part of a version's record: a re-run (same DAG date) keeps it.
            log.info("%s already evaluated on the same forecaster and production; reusing it", part_dir)
            return done | {"reused": True}
    daily = read_daily(store)
    history = daily[daily[s.DATE] <= cutoff].reset_index(drop=True)
    actual = _holdout_actuals(daily, cutoff, cfg.evaluate.holdout_days, cfg.model.target, store.daily_path)
    days = actual[s.DATE].nunique()
    forecasts, prod_version = _forecast_all(cfg, part_dir, store, history, cutoff, days)
    joined = _join(actual, forecasts, part_dir)
    per_segment, overall = _metrics(joined, history, list(forecasts), cfg.model.target, cfg.evaluate.season)
    overall.setdefault("production", None)
    baselines = {name: overall[name]["mase"] for name in BASELINES}
    blessed, reason = decide_blessing(overall["model"]["mase"], baselines,
                                      (overall["production"] or {}).get("mase"), cfg.evaluate.margin,
                                      "production" in forecasts)
    summary = {
        "run_dir": str(run.root), "cutoff": str(cutoff), "target": cfg.model.target,
        "holdout_start": str(joined[s.DATE].min()), "holdout_end": str(joined[s.DATE].max()),
        "holdout_days": int(joined[s.DATE].nunique()), "production_version": prod_version,
        "metrics": overall, "per_segment": per_segment, "blessed": blessed, "reason": reason,
        FINGERPRINT_KEY: key,
    }
    verdict = forecast_verdict(summary)
    write_verdict(part_dir, verdict)
    write_json(summary, part_dir / EVALUATION_FILE)  # last: its fingerprint marks the judgement complete
    _log_to_tensorboard(store, run, overall, blessed)
    log.info("evaluated %s: %s", part_dir, reason)
    return summary | {"verdict": verdict.to_json(), "reused": False}


def forecast_verdict(evaluation: dict[str, Any]) -> Verdict:
    """The Verdict of an evaluation: blessed or not, and what a release ships for the forecaster."""
    metrics = evaluation.get("metrics") or {}
    finite = {b: (metrics.get(b) or {}).get("mase") for b in BASELINES}
    finite = {b: v for b, v in finite.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    best = min(finite, key=lambda b: (finite[b], b)) if finite else None
    kept = kept_forecaster(evaluation)
    if evaluation.get("blessed"):
        ships = "run"
    else:
        ships = "none" if kept is None else ("production" if kept["source"] == "production" else kept["member"])
    return Verdict(part=PART, blessed=bool(evaluation.get("blessed")), metric="mase",
                   value=((metrics.get("model") or {}).get("mase")), baseline=best,
                   baseline_value=finite.get(best) if best else None, reason=str(evaluation.get("reason")),
                   ships=ships, against=evaluation.get("production_version"),
                   details={"cutoff": evaluation.get("cutoff"), "holdout_end": evaluation.get("holdout_end"),
                            "kept": kept})


def kept_forecaster(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The segment forecaster an unblessed run's release keeps: production's, else the best baseline.

    Production counts when the evaluation scored it (same target); the best baseline is the single
    statistical baseline with the lowest hold-out MASE, the bar the run's forecaster failed. None when
    no baseline has a finite MASE.
    """
    metrics = evaluation.get("metrics") or {}
    production = evaluation.get("production_version")
    if production and metrics.get("production"):
        return {"source": "production", "version": production, "holdout_mase": metrics["production"].get("mase"),
                "label": f"production's ({production}) carried forward"}
    scored = {m_: (metrics.get(m_) or {}).get("mase") for m_ in STATISTICAL}
    scored = {m_: v for m_, v in scored.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if not scored:
        return None
    member = min(scored, key=lambda m_: (scored[m_], m_))
    return {"source": "baseline", "member": member, "holdout_mase": scored[member],
            "label": f"the best single baseline on the hold-out, {member} (MASE {scored[member]:.4f})"}


def _forecast_all(cfg: Config, candidate_dir: Path, store: Store, history: pd.DataFrame, cutoff: date,
                  days: int) -> tuple[dict[str, pd.DataFrame], str | None]:
    """Forecasts of the candidate, the single baselines and production (if any) from the same cutoff."""
    from recsys.forecast.publish import load_production  # loads Keras: importing this module stays light

    target = cfg.model.target
    candidate = load_forecaster(candidate_dir)
    if candidate.config.target != target:
        raise EvaluationError(f"{candidate_dir} forecasts {candidate.config.target!r} but the config's "
                              f"model.target is {target!r}; evaluate with the config it was trained with")
    baselines = statistical_forecasts(history, target, cutoff, days, cfg.evaluate.season, BASELINES)
    forecasts = {"model": candidate.predict(history, cutoff), **baselines}
    production = load_production(store)
    if production is None:
        return forecasts, None
    if production[0].config.target != target:  # a changed target: production is no yardstick
        log.warning("production %s forecasts %r, not %r: judging the candidate against the baseline only",
                    production[1]["version"], production[0].config.target, target)
        return forecasts, production[1]["version"]
    forecasts["production"] = production[0].predict(history, cutoff)
    return forecasts, production[1]["version"]


def _log_to_tensorboard(store: Store, run: Run, overall: dict, blessed: bool) -> None:
    """Add the hold-out metrics to the run's TensorBoard logs (runs/<run id>/), when it has them."""
    from recsys.forecast.nn.callbacks import write_holdout  # imports TensorFlow, loaded already here

    logs = store.runs / run.run_id  # train names its TensorBoard run after the run id
    if logs.is_dir():
        write_holdout(logs, overall, blessed)


def _read_train(part_dir: Path) -> dict[str, Any]:
    path = part_dir / TRAIN_FILE
    if not path.is_file():
        raise EvaluationError(f"{path} not found: this run has no segment forecaster; run `trendrec train` first")
    train = read_json(path)
    if "cutoff" not in train:
        raise EvaluationError(f"{path} has no 'cutoff'; expected the training cutoff date (YYYY-MM-DD)")
    return train


def _holdout_actuals(daily: pd.DataFrame, cutoff: date, holdout_days: int, target: str,
                     path: Path) -> pd.DataFrame:
    end = cutoff + timedelta(days=holdout_days)
    actual = daily[(daily[s.DATE] > cutoff) & (daily[s.DATE] <= end)]
    if actual.empty:
        raise EvaluationError(f"{path} has no day after the training cutoff {cutoff} (last day "
                              f"{daily[s.DATE].max()}); the hold-out needs at least 1 day")
    return actual[[s.SEGMENT, s.DATE, target]].rename(columns={target: "actual"})


def _join(actual: pd.DataFrame, forecasts: dict[str, pd.DataFrame], candidate_dir: Path) -> pd.DataFrame:
    """Keep only the (segment, day) cells that every forecaster covers, so all score the same cells."""
    joined = actual
    for name, frame in forecasts.items():
        frame = frame[[s.SEGMENT, s.DATE, s.FORECAST]].assign(**{s.DATE: pd.to_datetime(frame[s.DATE]).dt.date})
        joined = joined.merge(frame.rename(columns={s.FORECAST: name}), on=[s.SEGMENT, s.DATE], how="inner")
    if joined.empty:
        raise EvaluationError(f"no hold-out day of {candidate_dir} is forecast by every model; "
                              f"expected forecasts for the days after the cutoff")
    if len(joined) < len(actual):
        log.warning("scoring %d of %d hold-out cells: the others are not forecast by every model",
                    len(joined), len(actual))
    return joined.sort_values([s.SEGMENT, s.DATE], kind="mergesort").reset_index(drop=True)


def _metrics(joined: pd.DataFrame, history: pd.DataFrame, names: list[str], target: str,
             season: int) -> tuple[dict, dict]:
    per_segment: dict[str, dict] = {}
    mases: dict[str, list[float]] = {name: [] for name in names}
    for segment, part in joined.groupby(s.SEGMENT, sort=True):
        train = history.loc[history[s.SEGMENT] == segment].sort_values(s.DATE)[target].to_numpy(float)
        scale = m.naive_scale(train, season)
        per_segment[segment] = {}
        for name in names:
            scores = m.score(part["actual"], part[name]) | {"mase": m.mase(part["actual"], part[name], train, season)}
            per_segment[segment][name] = m.finite_or_none(scores)
            if math.isfinite(scale) and scale > 0:
                mases[name].append(scores["mase"])
    overall = {}
    for name in names:
        pooled = m.score(joined["actual"], joined[name])
        pooled["mase"] = float(np.mean(mases[name])) if mases[name] else math.nan
        overall[name] = m.finite_or_none(pooled) | {"mase_segments": len(mases[name])}
    return per_segment, overall
