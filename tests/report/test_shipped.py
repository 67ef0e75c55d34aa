"""What is shown is what ships: status, the report and `trendrec segments` on hand-built versions.

The versions are built by tests/report/conftest.py (no push): one whose forecaster verdict was not
blessed and ships the baseline auto_ets, one that carries production's forecaster forward, and one in
the layout before parts. Each is read through registry.production, every digest checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.store import Store
from recsys import registry
from recsys.report import report
from recsys.report.status import status_lines, store_status


def test_report_production_table_equals_status_when_a_baseline_ships(baseline_version):
    status = store_status(baseline_version)
    record = report.production_record(baseline_version.store)
    table = report.forecaster_table(record["forecaster"])
    shipped = table[table["role"] == "ships"]
    assert status["forecaster"]["ships"] == "auto_ets" == shipped.index.tolist()[0] == table.index[0]
    assert status["forecaster"]["holdout_mase"] == shipped["mase"].iloc[0] == 1.214
    assert status["model_metrics"]["mase"] == 1.214  # not the rejected combination's 1.24
    assert table.loc["model", "role"] == "run, not blessed" and table.loc["model", "mase"] == 1.24
    assert status["verdicts"]["forecast"]["blessed"] is False
    assert status["verdicts"]["forecast"]["ships"] == "auto_ets"
    assert status["verdicts"]["value"]["blessed"] is True and status["value_model"]["ships"] == "ensemble"


def test_no_training_curve_when_a_baseline_ships(baseline_version):
    """The version's forecast/ still holds the run's train.json: the rejected LSTM's curve is not shown."""
    record = report.production_record(baseline_version.store)
    assert (record["dir"] / "train.json").is_file() and not record["forecaster"]["has_lstm"]
    history, why = report.training_curve(record)
    assert history is None and "auto_ets" in why and "No training curve" in why


def test_status_lines_say_what_ships_and_every_verdict(baseline_version):
    lines = status_lines(store_status(baseline_version))
    assert lines[0].startswith("Production now: v0001")
    assert any("the baseline auto_ets alone" in line and "1.214" in line for line in lines)
    assert any(line.startswith("Verdict, forecast: not blessed (mase 1.24 vs auto_ets 1.214); ships auto_ets")
               for line in lines)
    assert any(line.startswith("Verdict, value: blessed") and "ships ensemble" in line for line in lines)
    assert lines[-1].startswith("The latest run, r-baseline, is pushed as v0001: forecast: not blessed")


def test_latest_run_reports_each_verdict_and_the_version_it_became(baseline_version):
    latest = store_status(baseline_version)["latest_run"]
    assert latest["run"] == "r-baseline" and latest["pushed_as"] == "v0001"
    assert {p: v["blessed"] for p, v in latest["verdicts"].items()} == {"forecast": False, "value": True}
    assert latest["verdicts"]["forecast"]["ships"] == "auto_ets"


def test_models_list_shows_what_each_version_ships(carried_version):
    rows = {row["version"]: row for row in registry.list_models(carried_version.store)}
    assert (rows["v0001"]["forecaster"], rows["v0001"]["mase"]) == ("auto_ets", 1.214)
    assert (rows["v0002"]["forecaster"], rows["v0002"]["mase"], rows["v0002"]["is_production"]) == (
        "production", 1.1, True)


def test_a_carried_forecaster_shows_its_own_curve_and_loss(carried_version):
    record = report.production_record(carried_version.store)
    status = store_status(carried_version)
    assert status["forecaster"]["ships"] == "production" and status["forecaster"]["holdout_mase"] == 1.1
    assert report.forecaster_table(record["forecaster"]).index[0] == "production"
    history, loss = report.training_curve(record)
    assert history == {"loss": [0.5, 0.4], "val_loss": [0.55, 0.45]} and loss == "mae"  # its config.json's
    assert "v0001" in status["forecaster"]["label"]


def test_run_report_with_a_baseline_shipped(baseline_version, month_weekday):
    month_weekday(baseline_version)
    out = report.run_report(baseline_version)
    names = {Path(p).stem for p in out["plots"]}
    assert {"holdout", "segment_mase", "trend_scores", "value_deciles"} <= names and "loss" not in names
    assert any(note.startswith("No training curve") for note in out["notes"])
    page = Path(out["html"]).read_text(encoding="utf-8")
    assert "Verdicts of the parts" in page and "does not beat the best baseline" in page
    assert "bgnbd_gg" in page and "spearman" in page  # the customer value table is rendered
    assert "<th>auto_ets</th>\n      <td>ships</td>" in page


def test_status_and_report_read_a_version_written_before_parts(legacy_version, month_weekday):
    status = store_status(legacy_version)
    assert status["forecaster"]["ships"] == "run" and status["forecaster"]["holdout_mase"] == 1.1
    assert status["verdicts"]["forecast"]["blessed"] is True and status["trained_until"] == "2024-05-15"
    assert status["value_model"]["ships"] == "ensemble" and status["customer_model"]["model"] is None
    record = report.production_record(legacy_version.store)
    assert record["dir"] == Path(legacy_version.store) / "models" / "v0001"
    assert report.training_curve(record)[1] == "pinball"  # its recommender.json: quantiles
    month_weekday(legacy_version)
    out = report.run_report(legacy_version)
    names = {Path(p).stem for p in out["plots"]}
    assert {"holdout", "loss", "value_deciles"} <= names


def test_segments_read_production_through_its_digests(baseline_version):
    from recsys.report.segments import list_segments

    assert [row["segment"] for row in list_segments(baseline_version)["segments"]] == ["a", "b", "c"]
    trend = Store(baseline_version.store).models / "v0001" / "forecast" / registry.TREND_FILE
    trend.write_bytes(trend.read_bytes()[:-8])  # truncated
    with pytest.raises(registry.RegistryError, match="does not match the digest"):
        list_segments(baseline_version)
