"""Training runs: the latest by recorded creation time, only runs of the store, each part complete or absent.

The probe's defects: a run named ``manual-check`` shadowed every later run named by the clock (the
latest was taken by name); a killed stage left a part half old, half new. A part is now switched in
whole (``switch_folder``) and a failed training leaves the part as it was.
"""

from __future__ import annotations

import dataclasses
import os

import pandas as pd
import pytest

from pipeline.config import IngestConfig, load_config
from pipeline.store import Store, write_json
from recsys import flow, runs
from recsys.runs import FINGERPRINT_KEY, TRAIN_FILE


def test_latest_is_the_newest_by_recorded_creation_time_never_by_name(tmp_path):
    store = Store(tmp_path)
    named = runs.create(store, "manual-check")  # sorts after every clock-named run id
    later = runs.create(store)  # named by the clock, e.g. 20261207T012345Z
    assert later.run_id < named.run_id and later.created_ns > named.created_ns
    assert runs.latest(store).run_id == later.run_id
    assert runs.create(store, "manual-check") == named  # the same id opens the same run
    assert runs.latest(store).run_id == later.run_id


def test_no_run_says_what_to_run(tmp_path):
    with pytest.raises(runs.RunError, match="run `trendrec train` first"):
        runs.latest(Store(tmp_path))
    assert runs.latest_or_new(Store(tmp_path)).root.parent == Store(tmp_path).training_runs


def test_inside_takes_only_runs_of_the_store(tmp_path):
    store = Store(tmp_path / "store")
    run = runs.create(store, "ok")
    assert runs.inside(store, run.root) == run
    assert runs.inside(store, "models/runs/ok") == run  # relative to the store
    outside = tmp_path / "outside"
    outside.mkdir()
    write_json({"run_id": "outside", "created_ns": 1}, outside / runs.RUN_FILE)
    with pytest.raises(Exception, match="outside the store"):
        runs.inside(store, outside)
    (store.training_runs / "link").symlink_to(outside)
    with pytest.raises(Exception, match="outside the store"):
        runs.inside(store, store.training_runs / "link")
    with pytest.raises(runs.RunError, match="not a training run"):
        runs.inside(store, store.models)
    (store.training_runs / "bare").mkdir()
    with pytest.raises(runs.RunError, match="not a training run"):
        runs.inside(store, store.training_runs / "bare")


def test_a_switch_killed_between_its_renames_leaves_no_mix(tmp_path, monkeypatch):
    final, built = tmp_path / "part", tmp_path / ".part.new"
    for folder, text in ((final, "old"), (built, "new")):
        folder.mkdir()
        (folder / "a").write_text(text)
        (folder / "b").write_text(text)
    real, calls = os.rename, []

    def killed(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies after setting the old set aside
        real(src, dst)

    monkeypatch.setattr(runs.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        runs.switch_folder(built, final)
    assert not final.exists()  # none: never a mix of old and new
    monkeypatch.setattr(runs.os, "rename", real)
    runs.switch_folder(built, final)
    assert {p.name: p.read_text() for p in final.iterdir()} == {"a": "new", "b": "new"}


def _old_part(run, name):
    """A complete earlier result of part ``name`` whose fingerprint no longer matches (it must retrain)."""
    part = run.part(name)
    part.mkdir(parents=True)
    (part / "model.keras").write_bytes(b"the old model")
    write_json({FINGERPRINT_KEY: "older settings", "trained": True}, part / TRAIN_FILE)
    return {p.name: p.read_bytes() for p in part.iterdir()}


def test_a_forecaster_training_that_fails_leaves_the_old_part(tiny_store, monkeypatch):
    import recsys.forecast.combination as combination

    run = runs.create(Store(tiny_store.store), "failing")
    before = _old_part(run, "forecast")
    monkeypatch.setattr(combination, "fit_combination", lambda *a, **k: (_ for _ in ()).throw(MemoryError("OOM")))
    with pytest.raises(MemoryError):
        flow.run_stage("train_forecast", tiny_store, run_key="failing")
    assert {p.name: p.read_bytes() for p in run.part("forecast").iterdir()} == before
    assert not [p for p in run.root.iterdir() if p.name.startswith(".forecast.") and p.name != ".forecast.backup"]


def _customer_store(tmp_path):
    rows = ["ts,item,qty,price,customer,invoice"]
    day = pd.Timestamp("2024-01-01")
    for i in range(400):  # eight weeks of 20 customers buying from 7 items
        rows.append(f"{(day + pd.Timedelta(hours=3 * i)):%Y-%m-%d %H:%M:%S},A{i % 7},1,1.0,c{i % 20},i{i}")
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    ingest = IngestConfig(columns={"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price",
                                   "user_id": "customer", "order_id": "invoice"}, segment_default="other")
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=ingest)
    flow.run_stage("ingest", cfg, source=str(tmp_path / "log.csv"))
    return cfg


def test_a_nextbasket_training_that_fails_leaves_the_old_part(tmp_path, monkeypatch):
    import recsys.nextbasket.recommend as recommend

    cfg = _customer_store(tmp_path)
    run = runs.create(Store(cfg.store), "failing")
    before = _old_part(run, "nextbasket")
    monkeypatch.setattr(recommend, "fit_recommender", lambda *a, **k: (_ for _ in ()).throw(MemoryError("OOM")))
    with pytest.raises(MemoryError):
        flow.run_stage("train_nextbasket", cfg, run_key="failing")
    assert {p.name: p.read_bytes() for p in run.part("nextbasket").iterdir()} == before
    assert not [p for p in run.root.iterdir() if p.name.startswith(".nextbasket.")]


def _failing_fit(log_dir):
    """A fit that fails on a full disk after TensorFlow's summary writer made its event file in ``log_dir``."""
    import errno

    (log_dir / "train").mkdir(parents=True, exist_ok=True)
    (log_dir / "train" / "events.out.tfevents.1796626645.vm.32361.0.v2").write_bytes(b"")
    raise OSError(errno.ENOSPC, "No space left on device")


def _logs(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else None


def test_a_nextbasket_training_that_fails_leaves_no_tensorboard_file(tmp_path, monkeypatch):
    """benchmarks/cli_faults.py, `trendrec nextbasket` under a full disk on the tiny shop: the run's earlier
    logs stay, the failed fit's event file goes (it was left in runs/<run>-nextbasket/train/)."""
    import recsys.nextbasket.recommend as recommend

    cfg = _customer_store(tmp_path)
    run = runs.create(Store(cfg.store), "failing")
    logs = Store(cfg.store).runs / "failing-nextbasket"
    (logs / "train").mkdir(parents=True)
    (logs / "train" / "events.out.tfevents.1.earlier.v2").write_bytes(b"an earlier fit's")
    before = _logs(logs)
    monkeypatch.setattr(recommend, "fit_recommender", lambda *a, **k: _failing_fit(a[4]))
    with pytest.raises(OSError):
        flow.run_stage("train_nextbasket", cfg, run_key="failing")
    assert _logs(logs) == before and (logs / "train" / "events.out.tfevents.1.earlier.v2").read_bytes()


def test_a_value_training_that_fails_leaves_no_tensorboard_folder(tmp_path, monkeypatch):
    """`trendrec value` under a full disk on the tiny shop left runs/<run>-value/validation/train/events..."""
    import recsys.value.part as value

    cfg = _customer_store(tmp_path)
    runs.create(Store(cfg.store), "failing")
    monkeypatch.setattr(value, "fit_value", lambda *a, **k: _failing_fit(a[4]))
    with pytest.raises(OSError):
        flow.run_stage("train_value", cfg, run_key="failing")
    assert _logs(Store(cfg.store).runs / "failing-value") is None


def test_a_forecaster_training_that_fails_leaves_no_tensorboard_folder(tiny_store, monkeypatch):
    import recsys.forecast.combination as combination

    runs.create(Store(tiny_store.store), "failing")
    monkeypatch.setattr(combination, "fit_combination", lambda *a, log_dir, **k: _failing_fit(log_dir))
    with pytest.raises(OSError):
        flow.run_stage("train_forecast", tiny_store, run_key="failing")
    assert _logs(Store(tiny_store.store).runs / "failing") is None


def test_a_run_whose_run_json_cannot_be_written_leaves_no_folder(tmp_path, monkeypatch):
    """A full disk or a size limit at a run's first write: no new (empty) run folder is left behind."""
    import errno

    store = Store(tmp_path / "store").ensure()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        runs.create(store, "faulted")
    assert not (store.training_runs / "faulted").exists()
