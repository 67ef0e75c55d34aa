"""Publish a blessed segment-forecaster candidate through the registry, and load what it published.

Publishing adds what serving needs without TensorFlow to a staging copy of the candidate: a
SavedModel export (for TF Serving) and the segment trend scores (trend.parquet, from the
forecast after the last day of the daily table); the registry (recsys.registry) then versions it
and moves the production pointer. Loading goes the other way: the registry verifies the
version's files, this module loads the Keras model from them (``safe_mode=True``).

    trendrec push --json
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_daily, read_json, write_parquet
from recsys import registry
from recsys.forecast.combination import CombinedForecaster, load_forecaster
from recsys.forecast.trends import compute_trend_scores

log = logging.getLogger(__name__)

SAVEDMODEL_DIR = "savedmodel"


def publish(cfg: Config, candidate_dir: str | Path,
            extra: Callable[[Path], dict[str, Any]] | None = None) -> dict[str, Any]:
    """registry.push of a forecaster candidate: blessed ones become the next production version.

    ``extra(staging)`` lets a later stage add its files to the same version (the flow passes the
    customer model's, recsys.customers.publish) and returns more metadata fields.
    """
    def assemble(staging: Path, version: str, evaluation: dict[str, Any]) -> dict[str, Any]:
        fields = _assemble(cfg, Path(candidate_dir), staging, evaluation)
        return fields | (extra(staging) if extra is not None else {})

    return registry.push(cfg, candidate_dir, assemble)


def _assemble(cfg: Config, candidate_dir: Path, staging: Path, evaluation: dict[str, Any]) -> dict[str, Any]:
    """Add the SavedModel and trend.parquet to ``staging``; return the forecaster's metadata fields."""
    model = load_forecaster(staging)  # the combination; the candidate's combination.json came with the copy
    model.export_savedmodel(staging / SAVEDMODEL_DIR)
    trends = compute_trend_scores(model, read_daily(Store(cfg.store)))
    write_parquet(pa.Table.from_pandas(trends, preserve_index=False), staging / registry.TREND_FILE)
    train = _read_optional(candidate_dir / "train.json", {})
    return {
        "config": _read_optional(candidate_dir / "config.json", cfg.to_dict()),  # as it was trained
        "target": model.config.target, "horizon": model.config.horizon,
        "train_start": train.get("train_start"), "cutoff": evaluation.get("cutoff", train.get("cutoff")),
        "holdout_end": evaluation.get("holdout_end"), "segments": list(model.segments),
    }


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
