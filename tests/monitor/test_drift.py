"""`trendrec drift` on a small synthetic shop ingested for real: each injected fault fails its check
with a reason naming the column, and the clean shop passes every check."""

import dataclasses
import datetime
import json

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store
from recsys.monitor.drift import THRESHOLDS, run_drift
from recsys.monitor.windows import MonitorError
from tests.conftest import trendrec_process
from tests.monitor.conftest import COLUMNS, CUT, make_shop, shop_config, shop_store


def test_an_unchanged_shop_passes_every_check(tmp_path):
    result = run_drift(shop_store(tmp_path), reference_end=CUT)
    assert result["passed"] and result["failed"] == [], result["failed"]
    assert result["window"] == [str(CUT), str(CUT + datetime.timedelta(days=6))]
    assert result["reference"] == [str(CUT - datetime.timedelta(days=28)), str(CUT - datetime.timedelta(days=1))]
    names = {c["check"] for c in result["checks"]}
    assert {"numeric:price", "numeric:quantity", "categorical:segment", "categorical:hour", "volume:rows",
            "volume:repeats", "schema", "segments", "unknown:user_id", "unknown:item_id"} <= names
    for check in result["checks"]:
        assert set(check) >= {"check", "value", "threshold", "passed", "reason"}
    assert json.loads(Store(tmp_path / "store").drift.joinpath(f"{result['window'][1]}.json").read_text())["passed"]


@pytest.mark.parametrize("fault, check, words", [
    ("cents", "numeric:price", "column price: PSI"),
    ("day_twice", "volume:repeats", f"rows of {CUT + datetime.timedelta(days=2)} repeat"),
    ("renamed", "segments", "new segment(s) in column segment: ['pastry']; vanished segment(s) in column segment: ['cakes']"),
    ("rekeyed", "unknown:item_id", "column item_id: 100% of the window's rows"),
    ("timezone", "categorical:hour", "column hour: Jensen-Shannon distance"),
])
def test_each_fault_fails_its_check_naming_the_column(tmp_path, fault, check, words):
    result = run_drift(shop_store(tmp_path, fault), reference_end=CUT)
    assert check in result["failed"], result["failed"]
    [found] = [c for c in result["checks"] if c["check"] == check]
    assert words in found["reason"] and found["value"] is not None
    assert not result["passed"]


def test_a_source_column_remapped_fails_the_schema_check(tmp_path):
    cfg = shop_config(tmp_path)
    events = make_shop()
    before = events[events[s.EVENT_TIME] < pd.Timestamp(CUT, tz="UTC")]
    week = events[events[s.EVENT_TIME] >= pd.Timestamp(CUT, tz="UTC")].rename(columns={s.PRICE: "unit_price"})
    before.to_parquet(tmp_path / "history.parquet", index=False)
    week.to_parquet(tmp_path / "week.parquet", index=False)
    run_ingest(cfg, str(tmp_path / "history.parquet"))
    moved = dataclasses.replace(cfg, ingest=IngestConfig(columns={c: c for c in COLUMNS} | {s.PRICE: "unit_price"}))
    run_ingest(moved, str(tmp_path / "week.parquet"))
    result = run_drift(moved, reference_end=CUT)
    assert result["failed"] == ["schema"]
    [schema] = [c for c in result["checks"] if c["check"] == "schema"]
    assert "column price: ('double', 'price') in the reference, ('double', 'unit_price') now" in schema["reason"]


def test_thresholds_can_be_overridden_and_a_rerun_gives_the_same_record(tmp_path):
    cfg = shop_store(tmp_path, "cents")
    loose = run_drift(cfg, reference_end=CUT, thresholds={"psi": 1e9}, write=False)
    assert "numeric:price" not in loose["failed"]
    first, second = (run_drift(cfg, reference_end=CUT) for _ in range(2))
    assert first == second
    assert THRESHOLDS["psi"] == 0.25 and THRESHOLDS["js"] == 0.1  # the documented defaults (README)


def test_no_days_after_the_cut_off_is_one_line(tmp_path):
    cfg = shop_store(tmp_path)
    with pytest.raises(MonitorError, match="no events after the reference's cut-off 2030-01-01"):
        run_drift(cfg, reference_end=datetime.date(2030, 1, 1))
    with pytest.raises(MonitorError, match="no production model .* give --reference-end"):
        run_drift(cfg)


def test_the_cli_prints_one_object_with_every_check(tmp_path):
    cfg = shop_store(tmp_path, "rekeyed")
    done = trendrec_process("drift", "--store", cfg.store, "--reference-end", str(CUT), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["failed"] == ["unknown:item_id"] and out["passed"] is False
    assert all({"check", "value", "threshold", "passed"} <= set(c) for c in out["checks"])
