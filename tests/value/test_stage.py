"""The value stage in the flow: the small store's run, its registry version, `trendrec value --json`.

``small_store`` (tests/conftest.py) ran every stage, ``value`` included (2 epochs), on a 10 % sample
of the demo data and pushed the candidate; the value part lives in the training run ``small``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json
from recsys import registry
from recsys.value.stage import SUMMARY_FILE, VALUE_FILE

VALUE_DIR = "value"  # the value part's folder in a version
from tests.conftest import DEMO_CONFIG

METRIC_KEYS = {"spearman", "norm_gini", "top_decile_capture", "mae", "total_error"}


def test_the_forecast_is_versioned_with_the_models(small_store):
    store = Store(small_store.store)
    version = registry.read_production(store)["version"]
    path = registry.verify_version(store, version)
    table = pq.read_table(path / VALUE_DIR / VALUE_FILE)
    assert table.schema.equals(s.VALUE_SCHEMA) and table.num_rows > 100
    assert table.column(s.HORIZON_DAYS).to_pylist()[0] == small_store.value.horizon_days
    metadata = read_json(path / registry.METADATA_FILE)
    assert f"{VALUE_DIR}/{VALUE_FILE}" in metadata[registry.FILES_KEY]  # digested: rollback and verify cover it
    value = metadata["parts"]["value"]
    assert set(value["models"]) >= {"bgnbd_gg", "lstm", "ensemble"}
    assert value["ships"] == value["verdict"]["ships"]


def test_a_binding_fit_budget_judges_a_sample_and_forecasts_every_customer(small_store):
    """The small store's value set was fitted on 1,000 of its customers; its forecast covers them all."""
    run = Store(small_store.store).training_runs / "small"
    summary = read_json(run / VALUE_DIR / "value.json")
    sampled = summary["fit_customers"]
    assert sampled["customers"] == small_store.value.fit_customers < sampled["of"]
    assert summary["customers"] <= sampled["customers"]  # the hold-out judged on the sample's customers
    forecast = pq.read_table(run / VALUE_DIR / VALUE_FILE).column(s.USER_ID).to_pylist()
    assert summary["forecast"]["customers"] == len(set(forecast)) == sampled["of"] and sorted(forecast) == forecast


def _config_file(cfg, folder: Path) -> Path:
    """trendrec.toml with the [value] settings of ``cfg`` (the small store's short fit)."""
    import re

    text = DEMO_CONFIG.read_text(encoding="utf-8")
    head, value = text.split("[value]", 1)
    body, rest = value.split("\n[", 1)
    for key in ("horizon_days", "seq_weeks", "train_cutoffs", "train_step_days", "units", "epochs", "patience",
                "fit_customers"):
        body = re.sub(rf"^{key} = .*$", f"{key} = {getattr(cfg.value, key)}", body, flags=re.M)
    path = folder / "trendrec.toml"
    path.write_text(head + "[value]" + body + "\n[" + rest, encoding="utf-8")
    return path


def test_value_json_prints_exactly_the_issue_object(small_store, capsys, tmp_path):
    from recsys.cli import main

    run = Store(small_store.store).training_runs / "small"
    assert (run / "value" / SUMMARY_FILE).is_file()
    config = _config_file(small_store, tmp_path)  # the same [value] settings: the stored set is reused
    code = main(["value", "--config", str(config), "--store", small_store.store, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and list(out) == ["config", "store", "calibration_end", "holdout_days", "customers", "models",
                                       "published", "verdict", "reused"]  # every summary names its config and store
    assert out["reused"] is True and out["published"] == out["verdict"]["ships"]
    assert out["holdout_days"] == 90 and out["customers"] > 100
    assert set(out["models"]) == {"bgnbd_gg", "lstm", "ensemble"}
    assert all(set(m) == METRIC_KEYS for m in out["models"].values())


def test_tensorboard_run_has_the_value_hparams(small_store, hparams_of_run):
    run = Path(Store(small_store.store).runs / "small-value")
    assert hparams_of_run(run)["horizon_days"] == small_store.value.horizon_days
    assert list((run / "forecast").rglob("events.out.tfevents.*"))  # the forecast LSTM's training curves


def test_the_versioned_lstm_loads_in_safe_mode_and_predicts(small_store):
    import numpy as np

    from recsys.value.ziln import ValueLSTM

    path = registry.verify_version(Store(small_store.store), registry.read_production(small_store.store)["version"])
    model = ValueLSTM.load(path / VALUE_DIR, small_store.value)
    seq_weeks, n_static = model.model.inputs[0].shape[1], model.model.inputs[1].shape[1]
    p, mean, p10, p90 = model.predict(np.zeros((3, seq_weeks, 5), np.float32), np.zeros((3, n_static), np.float32))
    assert np.all((p >= 0) & (p <= 1)) and np.all(p10 <= p90) and np.all(mean <= model.cap)


def test_report_has_the_metrics_table_and_the_decile_chart(small_store):
    from recsys.report.value import load_value

    metrics, deciles, summary = load_value(small_store.store)
    assert list(metrics["model"]) == ["bgnbd_gg", "rfm", "lstm", "ensemble"]
    assert set(deciles["decile"]) == set(range(1, 11)) and summary["holdout_days"] == 90
    # the deciles hold every customer once per model, and their actual means add up to the total
    per_model = deciles.groupby("model").apply(lambda d: (d["customers"] * d["actual"]).sum(), include_groups=False)
    assert per_model.to_numpy() == pytest.approx([per_model.iloc[0]] * len(per_model))
    assert deciles.groupby("model")["customers"].sum().eq(summary["customers"]).all()
