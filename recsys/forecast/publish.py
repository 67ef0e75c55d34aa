"""Publish a blessed segment-forecaster candidate through the registry, and load what it published.

Publishing adds what serving needs without TensorFlow to a staging copy of the candidate: a
SavedModel export (for TF Serving, when the forecaster has an LSTM) and the segment trend scores
(trend.parquet, from the forecast after the last day of the daily table); the registry
(recsys.registry) then versions it and moves the production pointer. Loading goes the other way:
the registry verifies the version's files, this module loads the Keras model from them
(``safe_mode=True``).

A version is also pushed when the forecaster candidate is not blessed but another model of the
version is (the customer model: ``also_blessed``). Its segment forecaster is then production's,
carried forward unchanged, or, when nothing is in production (or production was not scored on
this hold-out), the best single baseline on the hold-out, e.g. AutoETS alone. The version's
``segment_forecaster`` metadata says which, with its hold-out MASE.

    trendrec push --json
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_json, write_parquet
from recsys import registry
from recsys.forecast.combination import COMBINATION_FILE, CombinedForecaster, load_forecaster, single_member
from recsys.forecast.members import STATISTICAL
from recsys.forecast.trends import compute_trend_scores

log = logging.getLogger(__name__)

SAVEDMODEL_DIR = "savedmodel"
LSTM_FILES = ("model.keras", "recommender.json")  # recsys.forecast.forecaster's MODEL_FILE and META_FILE
FORECASTER_FILES = (COMBINATION_FILE, *LSTM_FILES, "train.json", "config.json")  # what a carried one replaces


def publish(cfg: Config, candidate_dir: str | Path, extra: Callable[[Path], dict[str, Any]] | None = None,
            also_blessed: str | None = None) -> dict[str, Any]:
    """registry.push of a forecaster candidate: blessed ones become the next production version.

    ``extra(staging)`` lets a later stage add its files to the same version (the flow passes the
    customer model's, recsys.nextbasket.publish) and returns more metadata fields. ``also_blessed``
    is why that stage's model is blessed, or None: with it, an unblessed forecaster candidate still
    gives a version, whose segment forecaster is production's or the best single baseline's.
    """
    candidate_dir = Path(candidate_dir)
    evaluation = registry.read_evaluation(candidate_dir)
    decision = None if evaluation.get("blessed") else version_verdict(evaluation, also_blessed)

    def assemble(staging: Path, version: str, verdict: dict[str, Any]) -> dict[str, Any]:
        fields = _assemble(cfg, candidate_dir, staging, evaluation, bool(evaluation.get("blessed")))
        return fields | (extra(staging) if extra is not None else {})

    return registry.push(cfg, candidate_dir, assemble, decision)


def version_verdict(evaluation: dict[str, Any], also_blessed: str | None) -> tuple[bool, str]:
    """(whether the candidate gives a version, why): its forecaster is blessed, or ``also_blessed`` is set.

    What the push stage does and what the retrain DAG branches on (``pushable`` of the evaluate stage).
    """
    reason = str(evaluation.get("reason"))
    if evaluation.get("blessed"):
        return True, reason
    kept = _kept_forecaster(evaluation) if also_blessed else None
    if kept is None:
        return False, reason if not also_blessed else f"{reason}; and no baseline was scored to keep instead"
    return True, (f"{also_blessed}; the segment forecaster candidate is not blessed ({reason}), "
                  f"so the version keeps {kept['label']}")


def _kept_forecaster(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The segment forecaster an unblessed candidate's version keeps: production's, else the best baseline.

    Production counts when the evaluation scored it (same target); the best baseline is the single
    statistical baseline with the lowest hold-out MASE, the bar the candidate failed. None when no
    baseline has a finite MASE.
    """
    metrics = evaluation.get("metrics") or {}
    production = evaluation.get("production_version")
    if production and metrics.get("production"):
        return {"source": "production", "version": production, "holdout_mase": metrics["production"].get("mase"),
                "label": f"production's ({production}) carried forward"}
    scored = {m: (metrics.get(m) or {}).get("mase") for m in STATISTICAL}
    scored = {m: v for m, v in scored.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if not scored:
        return None
    member = min(scored, key=lambda m: (scored[m], m))
    return {"source": "baseline", "member": member, "holdout_mase": scored[member],
            "label": f"the best single baseline on the hold-out, {member} (MASE {scored[member]:.4f})"}


def _assemble(cfg: Config, candidate_dir: Path, staging: Path, evaluation: dict[str, Any],
              blessed: bool) -> dict[str, Any]:
    """Add the SavedModel and trend.parquet to ``staging``; return the forecaster's metadata fields.

    An unblessed candidate's forecaster files are first replaced by the kept forecaster's.
    """
    store = Store(cfg.store)
    if blessed:
        kept = {"source": "candidate", "holdout_mase": ((evaluation.get("metrics") or {}).get("model") or {})
                .get("mase")}
    else:
        kept = _kept_forecaster(evaluation)  # not None: version_verdict let the push through
        _replace_forecaster(store, candidate_dir, staging, evaluation, kept)
    model = load_forecaster(staging)  # the combination; the candidate's combination.json came with the copy
    if (staging / LSTM_FILES[0]).is_file():
        model.export_savedmodel(staging / SAVEDMODEL_DIR)
    trends = compute_trend_scores(model, read_daily(store))
    write_parquet(pa.Table.from_pandas(trends, preserve_index=False), staging / registry.TREND_FILE)
    train = _read_optional(staging / "train.json", {})
    return {
        "config": _read_optional(staging / "config.json", cfg.to_dict()),  # as it was trained
        "target": model.config.target, "horizon": model.config.horizon,
        "train_start": train.get("train_start"),
        "cutoff": evaluation.get("cutoff", train.get("cutoff")) if blessed else train.get("cutoff"),
        "holdout_end": evaluation.get("holdout_end"), "segments": list(model.segments),
        "segment_forecaster": {k: v for k, v in kept.items() if k != "label"},
    }


def _replace_forecaster(store: Store, candidate_dir: Path, staging: Path, evaluation: dict[str, Any],
                        kept: dict[str, Any]) -> None:
    """Swap the candidate's forecaster files in ``staging`` for production's or the best baseline's."""
    for name in FORECASTER_FILES if kept["source"] == "production" else (COMBINATION_FILE, *LSTM_FILES):
        (staging / name).unlink(missing_ok=True)
    if kept["source"] == "production":
        source = registry.verify_version(store, kept["version"])
        for name in FORECASTER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, staging / name)
        log.info("segment forecaster candidate not blessed: carrying %s's forward", kept["version"])
        return
    candidate = load_forecaster(candidate_dir)  # its config and season; the LSTM is not loaded
    train = _read_optional(staging / "train.json", {})
    cutoff = date.fromisoformat(str(evaluation["cutoff"]))
    daily = read_daily(store)
    history = daily[pd.to_datetime(daily[s.DATE]).dt.date <= cutoff].reset_index(drop=True)
    origins = [date.fromisoformat(o) for o in train.get("validation_origins", [])]
    single_member(history, candidate.config, candidate.season, kept["member"], origins).save(staging)
    log.info("segment forecaster candidate not blessed and nothing in production: the version forecasts "
             "segments with %s alone", kept["member"])


def load_version(store: Store | str | os.PathLike, version: str) -> tuple[CombinedForecaster, dict[str, Any]]:
    """The forecaster of ``version`` and its metadata; RegistryError when its files are broken."""
    path = registry.verify_version(store, version)
    try:
        metadata = read_json(path / registry.METADATA_FILE)
        model = load_forecaster(path)
    except (TrendrecError, OSError, ValueError) as exc:
        log.error("model version %s at %s cannot be loaded: %s", version, path, exc)
        raise registry.RegistryError(f"model version {version} at {path} cannot be loaded "
                                     f"(corrupt or truncated model files?): {exc}") from exc
    return model, metadata


def load_production(store: Store | str | os.PathLike) -> tuple[CombinedForecaster, dict[str, Any]] | None:
    """The production forecaster and its metadata, or None when nothing is in production.

    A missing or corrupt version raises RegistryError; production.json is never changed here.
    """
    prod = registry.read_production(store)
    return None if prod is None else load_version(store, prod["version"])


def _read_optional(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    return read_json(path) if path.is_file() else default
