"""Version folders built by hand for the report tests: what status, report and notebook 02 must show.

Each builder writes a complete ``models/vNNNN/`` with metadata.json and the digests of every file
(registry.file_digests), then points models/production.json at it, so reading goes through
registry.production exactly as in a real store. No push is involved (its API is being rewritten).

- ``baseline_version(cfg)``: the new layout, the run's forecaster NOT blessed and nothing in production,
  so the version ships the baseline ``auto_ets`` alone; the forecast folder still holds the run's
  train.json (the rejected LSTM's curve, the defect this guards) and the value part ships ``ensemble``.
  Its run folder ``models/runs/r-baseline/`` holds the verdicts.
- ``carried_version(cfg)``: the new layout, production's forecaster carried forward (ships "production").
- ``legacy_version(cfg)``: the layout before parts: the LSTM of tests/fixtures/forecaster_pre_layout at
  the version's root, ``segment_forecaster`` and ``metrics`` in metadata.json, customers/value/value.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, write_json
from recsys import registry
from tests.conftest import ROOT, SMALL_MODEL

LEGACY_FORECASTER = ROOT / "tests" / "fixtures" / "forecaster_pre_layout"
SEGMENTS = ("a", "b", "c")
CUTOFF, HOLDOUT_END = "2024-05-15", "2024-05-22"
REJECTED_HISTORY = {"loss": [0.9, 0.7, 0.6], "val_loss": [1.0, 0.8, 0.75]}  # the run's LSTM, not shipped
CARRIED_HISTORY = {"loss": [0.5, 0.4], "val_loss": [0.55, 0.45]}  # production's LSTM, carried forward
METRICS = {"model": {"mase": 1.24, "mae": 12.0, "rmse": 20.0, "mape": 30.0, "smape": 25.0, "r2": 0.4},
           "seasonal_naive": {"mase": 1.30, "mae": 13.0, "rmse": 21.0, "mape": 31.0, "smape": 26.0, "r2": 0.3},
           "auto_ets": {"mase": 1.214, "mae": 11.5, "rmse": 19.0, "mape": 29.0, "smape": 24.0, "r2": 0.45},
           "auto_theta": {"mase": 1.25, "mae": 12.1, "rmse": 20.1, "mape": 30.1, "smape": 25.1, "r2": 0.41},
           "production": None}
PER_SEGMENT = {seg: {name: {"mase": m["mase"] + d} for name, m in METRICS.items() if m}
               for seg, d in zip(SEGMENTS, (-0.1, 0.0, 0.1))}
VALUE_MODELS = {"bgnbd_gg": {"spearman": 0.5, "mae": 10.0}, "rfm": {"spearman": 0.45, "mae": 11.0},
                "ensemble": {"spearman": 0.55, "mae": 9.5}}
VALUE_SUMMARY = {"calibration_end": "2024-03-01", "holdout_days": 30, "customers": 40, "models": VALUE_MODELS,
                 "deciles": {m: [{"decile": d, "predicted": 10.0 / d, "actual": 9.0 / d} for d in range(1, 11)]
                             for m in VALUE_MODELS}}


def _trends() -> pd.DataFrame:
    return pd.DataFrame({s.SEGMENT: list(SEGMENTS), s.TREND: [0.2, -0.1, 0.05]})


def _verdict(part: str, blessed: bool, metric: str, value: float, baseline: str, baseline_value: float,
             ships: str, reason: str) -> dict:
    return {"part": part, "blessed": blessed, "metric": metric, "value": value, "baseline": baseline,
            "baseline_value": baseline_value, "reason": reason, "ships": ships, "against": None, "details": {}}


FORECAST_VERDICT = _verdict("forecast", False, "mase", 1.24, "auto_ets", 1.214, "auto_ets",
                            "forecaster MASE 1.2400 does not beat the best baseline, auto_ets 1.2140, by margin 0")
VALUE_VERDICT = _verdict("value", True, "spearman", 0.55, "bgnbd_gg", 0.5, "ensemble",
                         "the ensemble is no worse than BG/NBD + GG on every rule figure")


def _finish(store: Store, version: str, meta: dict) -> Path:
    """metadata.json with every file's digest, and production.json pointing at ``version``."""
    path = store.models / version
    write_json(meta | {"version": version, registry.FILES_KEY: registry.file_digests(path)},
               path / registry.METADATA_FILE)
    prod = registry.read_production(store)
    history = (prod["history"] + [prod["version"]]) if prod else []
    write_json({"version": version, "history": history}, store.models / registry.PRODUCTION_FILE)
    return path


def _forecast_part(folder: Path, lstm: bool, history: dict, config_loss: str) -> None:
    """forecast/: trend.parquet, evaluation, train.json (with ``history``), config.json, the forecaster."""
    from recsys.forecast.combination import DEFAULT, CombinedForecaster

    folder.mkdir(parents=True)
    _trends().to_parquet(folder / registry.TREND_FILE)
    weights = {DEFAULT: {"lstm": 1.0}} if lstm else {DEFAULT: {"auto_ets": 1.0}}
    CombinedForecaster(SMALL_MODEL, 7, weights, segments=list(SEGMENTS)).save(folder)
    if lstm:  # never loaded by these tests: the curve and the loss come from the JSON files
        (folder / "model.keras").write_bytes(b"placeholder")
        (folder / "recommender.json").write_text("{}")
    write_json({"cutoff": CUTOFF, "holdout_end": HOLDOUT_END, "metrics": METRICS, "per_segment": PER_SEGMENT},
               folder / "evaluation.json")
    write_json({"history": history, "cutoff": CUTOFF, "train_start": "2024-01-01"}, folder / "train.json")
    write_json({"model": {"loss": config_loss, "quantiles": []}}, folder / "config.json")


def _value_part(folder: Path) -> None:
    folder.mkdir(parents=True)
    write_json(VALUE_SUMMARY, folder / "value.json")
    write_json(VALUE_VERDICT, folder / "verdict.json")


def _run(store: Store, run_id: str, verdicts: dict[str, dict]) -> str:
    root = store.training_runs / run_id
    write_json({"run_id": run_id, "created_ns": 1, "created_at": "2024-05-30T00:00:00+00:00"}, root / "run.json")
    for part, verdict in verdicts.items():
        write_json({"cutoff": CUTOFF}, root / part / "train.json")
        write_json(verdict, root / part / "verdict.json")
    return f"models/runs/{run_id}"


def _forecast_meta(ships: str, verdict: dict, mase: float | None) -> dict:
    return {"ships": ships, "verdict": verdict, "holdout_mase": mase, "baseline": "auto_ets",
            "baseline_mase": 1.214, "metrics": METRICS, "target": "revenue", "horizon": 7,
            "train_start": "2024-01-01", "cutoff": CUTOFF, "holdout_end": HOLDOUT_END, "segments": list(SEGMENTS)}


def build_baseline_version(cfg) -> str:
    """v0001: the run's forecaster not blessed, nothing in production: auto_ets ships (module docstring)."""
    store = Store(cfg.store).ensure()
    path = store.models / "v0001"
    _forecast_part(path / "forecast", lstm=False, history=REJECTED_HISTORY, config_loss="huber")
    write_json(FORECAST_VERDICT, path / "forecast" / "verdict.json")
    _value_part(path / "value")
    run = _run(store, "r-baseline", {"forecast": FORECAST_VERDICT, "value": VALUE_VERDICT})
    parts = {"forecast": _forecast_meta("auto_ets", FORECAST_VERDICT, 1.214),
             "value": {"ships": "ensemble", "verdict": VALUE_VERDICT, "holdout_days": 30, "models": VALUE_MODELS}}
    _finish(store, "v0001", {"created_at": "2024-05-30T00:00:00+00:00", "run": run, "replaced": None,
                             "reason": "value: the ensemble is no worse (forecast ships auto_ets)",
                             "segments": list(SEGMENTS), "parts": parts})
    return "v0001"


def build_carried_version(cfg) -> str:
    """The next version: the run's forecaster not blessed, production's (with its LSTM) carried forward."""
    store = Store(cfg.store).ensure()
    version = f"v{len(registry.versions(store)) + 1:04d}"
    path = store.models / version
    _forecast_part(path / "forecast", lstm=True, history=CARRIED_HISTORY, config_loss="mae")
    metrics = METRICS | {"production": {**METRICS["auto_ets"], "mase": 1.1}}
    verdict = FORECAST_VERDICT | {"ships": "production", "against": "v0001", "baseline_value": 1.214,
                                  "reason": "forecaster MASE 1.2400 does not beat production 1.1000"}
    write_json(verdict, path / "forecast" / "verdict.json")
    meta = _forecast_meta("production", verdict, 1.1) | {"metrics": metrics}
    _finish(store, version, {"created_at": "2024-06-06T00:00:00+00:00", "run": "models/runs/r-carried",
                             "replaced": "v0001", "reason": "nextbasket blessed (forecast ships production)",
                             "segments": list(SEGMENTS), "parts": {"forecast": meta}})
    return version


def build_legacy_version(cfg) -> str:
    """v0001 in the layout before parts, its forecaster the pre-layout LSTM (blessed candidate)."""
    store = Store(cfg.store).ensure()
    path = store.models / "v0001"
    shutil.copytree(LEGACY_FORECASTER, path, ignore=shutil.ignore_patterns("*.csv"))
    _trends().to_parquet(path / registry.TREND_FILE)
    metrics = {**METRICS, "model": {**METRICS["model"], "mase": 1.1}}
    write_json({"cutoff": CUTOFF, "holdout_end": HOLDOUT_END, "metrics": metrics, "per_segment": PER_SEGMENT,
                "blessed": True, "reason": "candidate MASE 1.1 beats seasonal naive 1.3"}, path / "evaluation.json")
    write_json({"history": CARRIED_HISTORY, "cutoff": CUTOFF}, path / "train.json")
    (path / "customers" / "value").mkdir(parents=True)
    write_json(VALUE_SUMMARY, path / "customers" / "value" / "value.json")
    _finish(store, "v0001", {
        "created_at": "2024-05-30T00:00:00+00:00", "candidate": "models/candidates/20240530", "metrics": metrics,
        "blessed": True, "reason": "candidate MASE 1.1 beats seasonal naive 1.3", "replaced": None,
        "cutoff": CUTOFF, "holdout_end": HOLDOUT_END, "segments": list(SEGMENTS),
        "segment_forecaster": {"source": "candidate", "holdout_mase": 1.1},
        "customers": {"model": None, "reason": "no customer model trained"},
        "value": {"holdout_days": 30, "models": VALUE_MODELS}})
    return "v0001"


@pytest.fixture
def baseline_version(tiny_store):
    """``tiny_store`` whose production is build_baseline_version's v0001; returns the config."""
    build_baseline_version(tiny_store)
    return tiny_store


@pytest.fixture
def carried_version(baseline_version):
    """``baseline_version`` plus v0002, which carries production's forecaster forward; returns the config."""
    build_carried_version(baseline_version)
    return baseline_version


@pytest.fixture
def legacy_version(tiny_store):
    """``tiny_store`` whose production is build_legacy_version's v0001 (the layout before parts)."""
    build_legacy_version(tiny_store)
    return tiny_store


def write_month_weekday(cfg) -> None:
    """aggregates' month x weekday table from the store's daily table (what `trendrec aggregate` writes)."""
    import pyarrow as pa

    from pipeline.store import read_daily, write_parquet

    store = Store(cfg.store)
    daily = read_daily(store)
    month_weekday = daily.groupby([s.SEGMENT, s.MONTH, s.WEEKDAY], as_index=False).agg(
        **{s.DAYS: (s.DATE, "count"), s.REVENUE: (s.REVENUE, "sum")})
    write_parquet(pa.Table.from_pandas(month_weekday, preserve_index=False), store.month_weekday_path)


@pytest.fixture
def month_weekday():
    """``month_weekday(cfg)``: write the store's month x weekday table (the report's first plot needs it)."""
    return write_month_weekday
