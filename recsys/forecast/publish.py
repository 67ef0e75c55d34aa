"""The segment forecaster's part of a release: what a version holds for it, and loading it back.

``assemble`` fills the version's ``forecast/`` folder (in the registry's staging copy) with the forecaster
the verdict ships (recsys.forecast.evaluate.forecast_verdict):

- ``run``: the run's own forecaster (blessed);
- ``production``: production's forecaster, carried forward unchanged;
- a baseline's name (e.g. ``auto_ets``): that statistical member alone, fitted on the run's training days,
  when nothing is in production (or production was not scored on this hold-out).

It then adds what serving needs without TensorFlow: a SavedModel export (for TF Serving, when the
forecaster has an LSTM) and the segment trend scores (``trend.parquet``, from the forecast after the
last day of the daily table). Loading goes the other way: the registry verifies the version's files,
this module loads the Keras model from them (``safe_mode=True``).

    trendrec push --json
"""

from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_json, write_json, write_parquet
from recsys import registry
from recsys.forecast.combination import COMBINATION_FILE, CombinedForecaster, load_forecaster, single_member
from recsys.forecast.trends import compute_trend_scores
from recsys.runs import EVALUATION_FILE, TRAIN_FILE, VERDICT_FILE, Run, Verdict

log = logging.getLogger(__name__)

SAVEDMODEL_DIR = "savedmodel"
LSTM_FILES = ("model.keras", "recommender.json")  # recsys.forecast.forecaster's MODEL_FILE and META_FILE
CONFIG_FILE = "config.json"
FORECASTER_FILES = (COMBINATION_FILE, *LSTM_FILES, TRAIN_FILE, CONFIG_FILE)  # a forecaster as a run writes it
SHIPPED = (COMBINATION_FILE, registry.TREND_FILE)  # what a version's forecast/ folder always holds


class PublishError(TrendrecError):
    """The verdict ships a forecaster that cannot be built (no production part, no baseline scored)."""


def assemble(cfg: Config, run: Run, target: Path, verdict: Verdict, production: Path | None,
             **_: Any) -> dict[str, Any]:
    """Fill ``target`` with the forecaster ``verdict.ships``, its SavedModel and trend.parquet; its metadata."""
    source = run.part("forecast")
    evaluation = read_json(source / EVALUATION_FILE)
    target.mkdir(parents=True, exist_ok=True)
    if verdict.ships == "run":
        registry.copy_part_files(source, target, [n for n in FORECASTER_FILES if (source / n).is_file()])
        holdout = ((evaluation.get("metrics") or {}).get("model") or {}).get("mase")
    elif verdict.ships == "production":
        if production is None:
            raise PublishError(f"{run.root}: the verdict keeps production's forecaster but nothing is in production")
        registry.copy_part_files(production, target, [n for n in FORECASTER_FILES if (production / n).is_file()])
        holdout = ((evaluation.get("metrics") or {}).get("production") or {}).get("mase")
        log.info("segment forecaster of %s not blessed: carrying production's forward", run.run_id)
    elif verdict.ships != "none":
        _fit_baseline(cfg, source, target, evaluation, verdict.ships)
        holdout = ((evaluation.get("metrics") or {}).get(verdict.ships) or {}).get("mase")
    else:
        raise PublishError(f"{run.root}: no segment forecaster to ship ({verdict.reason}); train again")
    for name in (EVALUATION_FILE, VERDICT_FILE):  # the judgement travels with the version, whatever ships
        registry.copy_part_files(source, target, [name])
    return _finish(cfg, target, evaluation, verdict, holdout)


def _finish(cfg: Config, target: Path, evaluation: dict[str, Any], verdict: Verdict,
            holdout: float | None) -> dict[str, Any]:
    """Add the SavedModel and trend.parquet to ``target``; return the part's metadata fields."""
    model = load_forecaster(target)
    if (target / LSTM_FILES[0]).is_file():
        model.export_savedmodel(target / SAVEDMODEL_DIR)
    trends = compute_trend_scores(model, read_daily(Store(cfg.store)))
    write_parquet(pa.Table.from_pandas(trends, preserve_index=False), target / registry.TREND_FILE)
    train = _read_optional(target / TRAIN_FILE)
    metrics = evaluation.get("metrics") or {}
    return {"ships": verdict.ships, "verdict": verdict.to_json(), "holdout_mase": holdout,
            "baseline": verdict.baseline, "baseline_mase": verdict.baseline_value,
            "metrics": metrics, "target": model.config.target, "horizon": model.config.horizon,
            "train_start": train.get("train_start"), "cutoff": train.get("cutoff"),
            "holdout_end": evaluation.get("holdout_end"), "segments": list(model.segments)}


def _fit_baseline(cfg: Config, source: Path, target: Path, evaluation: dict[str, Any], member: str) -> None:
    """The statistical ``member`` alone, fitted on the run's training days, saved into ``target``."""
    run_model = load_forecaster(source)  # its config and season; the LSTM is not loaded
    train = _read_optional(source / TRAIN_FILE)
    cutoff = date.fromisoformat(str(evaluation["cutoff"]))
    daily = read_daily(Store(cfg.store))
    history = daily[pd.to_datetime(daily[s.DATE]).dt.date <= cutoff].reset_index(drop=True)
    origins = [date.fromisoformat(o) for o in train.get("statistical_origins", train.get("validation_origins", []))]
    single_member(history, run_model.config, run_model.season, member, origins).save(target)
    registry.copy_part_files(source, target, [n for n in (CONFIG_FILE,) if (source / n).is_file()])
    # the run's training days, without the LSTM's training curve: the version holds no LSTM
    write_json({k: v for k, v in train.items() if k != "history"} | {"member": member}, target / TRAIN_FILE)
    log.info("segment forecaster not blessed and nothing in production: the version forecasts segments "
             "with %s alone", member)


def load_version(store: Store | str | os.PathLike, version: str) -> tuple[CombinedForecaster, dict[str, Any]]:
    """The forecaster of ``version`` and its metadata; RegistryError when its files are broken."""
    release = registry.load_release(store, version)
    return _load(release), release.metadata


def load_production(store: Store | str | os.PathLike) -> tuple[CombinedForecaster, dict[str, Any]] | None:
    """The production forecaster and its metadata, or None when nothing is in production.

    A missing or corrupt version raises RegistryError; production.json is never changed here.
    """
    release = registry.production(store)
    return None if release is None else (_load(release), release.metadata)


def _load(release: registry.Release) -> CombinedForecaster:
    folder = release.part("forecast")
    try:
        if folder is None:
            raise TrendrecError("it holds no segment forecaster")
        return load_forecaster(folder)
    except (TrendrecError, OSError, ValueError) as exc:
        raise registry.RegistryError(f"model version {release.version} at {release.path} cannot be loaded "
                                     f"(corrupt or truncated model files?): {exc}") from exc


def _read_optional(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}
