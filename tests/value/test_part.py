"""The value part (recsys.value.part): one fingerprinted set per run, the published model, judge and assemble.

Each test trains on a fresh store holding only a hand-made log (no forecaster run, no candidate): the
seeded log of tests/value/conftest.py plus ``RAMPING`` customers who bought once in February and then
every few days from September on, whom BG/NBD's long-run frequency underrates. ``overconfident`` swaps
the LSTM for a hand-made member that ranks customers by their recent spend but forecasts five times it:
it ranks the ramping customers better, so it wins weight in the blend on the ranking figures, and drags
the ensemble's total far above BG/NBD + GG's, so the ensemble must not ship.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig, load_config
from pipeline.store import Store, read_json
from recsys import runs
from recsys.runs import FINGERPRINT_KEY, TRAIN_FILE, Verdict
from recsys.value import part
from recsys.value.choice import choose, no_worse
from recsys.value.data import ValueModelError
from recsys.value.stage import SUMMARY_FILE, VALUE_FILE
from tests.value.conftest import TINY, value_events

ROOT = Path(__file__).resolve().parents[2]
SETS = ("value.parquet", "value.json", "models.json", TRAIN_FILE)
RAMPING = 40  # customers who buy every few days from September on


def hand_made_events() -> pd.DataFrame:
    """The seeded log plus the ramping customers (see the module doc)."""
    rng = np.random.default_rng(1)
    rows = [(f"r{u}", f"r{u}-0", 1.0, 30.0, date(2011, 2, 1)) for u in range(RAMPING)]
    for u in range(RAMPING):
        day = date(2011, 9, 1) + timedelta(days=int(rng.integers(0, 10)))
        while day < date(2011, 12, 31):
            rows.append((f"r{u}", f"r{u}-{day}", 1.0, float(rng.gamma(8.0, 10.0)), day))
            day += timedelta(days=int(rng.integers(2, 7)))
    ramping = pd.DataFrame(rows, columns=[s.USER_ID, s.ORDER_ID, s.QUANTITY, s.PRICE, s.EVENT_DATE])
    return pd.concat([value_events(), ramping]).sort_values(s.EVENT_DATE, kind="stable").reset_index(drop=True)


def make_store(folder: Path, value=TINY):
    """A config on a fresh store with the seeded value log ingested (nothing else run)."""
    from pipeline.ingest.ingest import run_ingest

    events = hand_made_events()
    events = events.assign(item="i1", event_time=pd.to_datetime(events[s.EVENT_DATE]).dt.strftime("%Y-%m-%d 12:00:00"))
    events.drop(columns=[s.EVENT_DATE]).to_csv(folder / "events.csv", index=False)
    columns = {"event_time": "event_time", "item_id": "item", "quantity": s.QUANTITY, "price": s.PRICE,
               "user_id": s.USER_ID, "order_id": s.ORDER_ID}
    cfg = dataclasses.replace(load_config(None), store=str(folder / "store"), value=value,
                              ingest=IngestConfig(columns=columns, returns="keep"))
    run_ingest(cfg, folder / "events.csv")
    return cfg


class Overconfident:
    """A stand-in LSTM: ranks by recent spend (static feature 9), at five times its level."""

    def __init__(self, cfg):
        self.cap, self.history = float("inf"), {"loss": [0.0]}

    def fit(self, seq, static, y, groups, run_dir=None):
        return self

    def predict(self, seq, static):
        mean = 5.0 * np.expm1(static[:, 9].astype(np.float64)) + 1.0
        return np.ones(len(mean)), mean, 0.5 * mean, 2.0 * mean

    def save(self, directory):
        Path(directory, "lstm.json").write_text("{}", encoding="utf-8")

    @classmethod
    def load(cls, directory, config):  # what a forecast shard scores with
        return cls(config)


@pytest.fixture
def overconfident(monkeypatch):
    monkeypatch.setattr("recsys.value.ziln.ValueLSTM", Overconfident)


@pytest.fixture
def trained(tmp_path, overconfident):
    """(cfg, run, summary) after one train on a fresh store."""
    cfg = make_store(tmp_path)
    run = runs.create(Store(cfg.store))
    return cfg, run, part.train(cfg, run)


def _set_state(run) -> tuple:
    """(train.json's fingerprint, value.json's horizon, value.parquet's horizon) of the run's value set."""
    out = run.part("value")
    horizon = pq.read_table(out / VALUE_FILE, columns=[s.HORIZON_DAYS]).column(0).to_pylist()[0]
    return read_json(out / TRAIN_FILE)[FINGERPRINT_KEY], read_json(out / SUMMARY_FILE)["holdout_days"], horizon


def test_a_fresh_store_without_a_forecaster_run_trains_the_value_set(trained):
    cfg, run, summary = trained
    assert summary["trained"] and summary["reused"] is False
    assert summary["guest_lines"] == 5 and "customers_without_id" not in summary  # lines, not customers
    assert all((run.part("value") / f).is_file() for f in SETS)
    assert not (run.part("forecast")).exists()  # no `trendrec train` was needed
    assert not list(run.root.glob(".value.*"))  # nothing left beside the set


def test_the_ensemble_losing_to_bgnbd_on_validation_ships_a_model_that_does_not(trained):
    cfg, run, summary = trained
    figures = summary["models"]  # the last H days: the validation window of the shipped forecast
    assert not no_worse(figures["ensemble"], figures["bgnbd_gg"])  # the hand-made member drags the ensemble
    verdict = part.judge(cfg, run)
    assert not verdict.blessed and verdict.ships == summary["published"] == choose(figures) != "ensemble"
    assert no_worse(figures[verdict.ships], figures["bgnbd_gg"])
    assert verdict.baseline == "bgnbd_gg" and verdict.value == figures[verdict.ships]["spearman"]
    assert runs.read_verdict(run.part("value")) == verdict
    table = pq.read_table(run.part("value") / VALUE_FILE).to_pandas()
    np.testing.assert_array_equal(table[s.EXPECTED_SPEND], table[s.MEMBER_SPEND[verdict.ships]])


def test_an_unchanged_setting_reuses_the_set_and_a_changed_one_recomputes(trained, monkeypatch):
    cfg, run, first = trained
    before = _set_state(run)
    again = part.train(cfg, run)
    assert again["reused"] is True and _set_state(run) == before
    assert part.json_object(again)["reused"] is True

    computed = []

    def fit_value(*args, **kwargs):
        computed.append(args)
        raise KeyError("stop: only whether it recomputes matters here")

    monkeypatch.setattr(part, "fit_value", fit_value)
    for changed in (dataclasses.replace(cfg, value=dataclasses.replace(cfg.value, seed=4)),
                    dataclasses.replace(cfg, value=dataclasses.replace(cfg.value, ridge_l2=2.0))):
        with pytest.raises(KeyError):
            part.train(changed, run)
    assert len(computed) == 2 and _set_state(run) == before  # both recomputed; the failed tries changed nothing


def test_a_new_horizon_recomputes_the_whole_set(trained):
    cfg, run, _ = trained
    summary = part.train(cfg, run, horizon_days=35)
    assert summary["reused"] is False and summary["holdout_days"] == 35
    fp, horizon_json, horizon_parquet = _set_state(run)
    assert horizon_json == horizon_parquet == 35
    assert read_json(run.part("value") / TRAIN_FILE)["settings"]["horizon_days"] == 35
    assert part.train(cfg, run, horizon_days=35)["reused"] is True


@pytest.mark.parametrize("where", ["parquet", "members"])
def test_a_train_failing_mid_write_leaves_the_old_set(trained, monkeypatch, where):
    """The probe's defect: the 30-day parquet beside a value.json still saying 90, then "already computed"."""
    cfg, run, _ = trained
    before = _set_state(run)
    if where == "parquet":  # the forecast's writer fails after its first batch
        import pyarrow.parquet as pq_module

        real, calls = pq_module.ParquetWriter.write_table, []

        def write_table(self, table, *args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                raise OSError("disk full")
            return real(self, table, *args, **kwargs)

        monkeypatch.setattr(pq_module.ParquetWriter, "write_table", write_table)
        cfg = dataclasses.replace(cfg, value=dataclasses.replace(cfg.value, batch_customers=20))
    else:  # the forecast is written, the members' files fail
        def save_members(*args):
            raise OSError("disk full")

        monkeypatch.setattr("recsys.value.stage._save_members", save_members)
    with pytest.raises(OSError):
        part.train(cfg, run, horizon_days=35)
    assert _set_state(run) == before and not list(run.root.glob(".value.*"))
    monkeypatch.undo()
    assert part.train(dataclasses.replace(cfg, value=TINY), run, horizon_days=35)["reused"] is False


def test_a_kill_between_the_renames_leaves_no_set_and_the_rerun_recomputes(trained, monkeypatch):
    cfg, run, _ = trained
    real = os.rename

    def rename(a, b):
        if Path(b) == run.part("value"):  # the old set is aside, the new one not yet in
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(part.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        part.train(cfg, run, horizon_days=35)
    assert not run.part("value").exists()  # none, never a mix
    monkeypatch.undo()
    assert part.train(cfg, run)["reused"] is False and not list(run.root.glob(".value.*"))


KILLED = """
import dataclasses, os, signal, sys
sys.path.insert(0, {root!r})
import recsys.value.stage, recsys.value.ziln
from pipeline.config import load_config
from pipeline.store import Store
from recsys import runs
from recsys.value import part
from tests.value.conftest import TINY
from tests.value.test_part import Overconfident
recsys.value.ziln.ValueLSTM = Overconfident
def killed(*args):
    os.kill(os.getpid(), signal.SIGKILL)
recsys.value.stage._save_members = killed  # the members fitted; their files, value.parquet and value.json not yet
cfg = dataclasses.replace(load_config(None), store={store!r}, value=TINY)
part.train(cfg, runs.inside(Store(cfg.store), {run!r}), horizon_days=35)
"""


def test_a_sigkilled_train_leaves_the_old_complete_set(trained):
    cfg, run, _ = trained
    before = _set_state(run)
    script = KILLED.format(root=str(ROOT), store=cfg.store, run=str(run.root))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert _set_state(run) == before
    assert [p.name for p in run.root.glob(".value.*")]  # the half-built set, beside the complete old one
    assert part.train(cfg, run)["reused"] is True  # the old set, still whole
    assert part.train(cfg, run, horizon_days=35)["reused"] is False and not list(run.root.glob(".value.*"))


def test_assemble_copies_the_set_and_refuses_a_stale_verdict(trained, tmp_path):
    cfg, run, summary = trained
    verdict = part.judge(cfg, run)
    target = tmp_path / "version" / "value"
    meta = part.assemble(cfg, run, target, verdict, None)
    assert meta["ships"] == verdict.ships and meta["verdict"] == verdict.to_json()
    assert meta["holdout_days"] == TINY.horizon_days and meta["models"] == summary["models"]
    assert meta["forecast_cutoff"] == summary["forecast"]["cutoff"]
    assert {p.name for p in target.iterdir()} >= set(part.FILES)
    stale = dataclasses.replace(verdict, details={FINGERPRINT_KEY: "an earlier set"})
    with pytest.raises(ValueModelError, match="judge the run again"):
        part.assemble(cfg, run, tmp_path / "other", stale, None)


def test_assemble_without_a_value_set_carries_production_or_nothing(tmp_path):
    cfg = make_store(tmp_path)
    run = runs.create(Store(cfg.store))
    verdict = Verdict("value", False, "spearman", None, "bgnbd_gg", None, "not trained", ships="production")
    assert part.assemble(cfg, run, tmp_path / "v1" / "value", verdict, None) == {}
    assert not (tmp_path / "v1" / "value").exists()
    production = tmp_path / "v0" / "value"
    production.mkdir(parents=True)
    (production / VALUE_FILE).write_bytes(b"parquet")
    os.symlink("/etc/passwd", production / "link")
    meta = part.assemble(cfg, run, tmp_path / "v2" / "value", verdict, production)
    assert meta["ships"] == "production" and [p.name for p in (tmp_path / "v2" / "value").iterdir()] == [VALUE_FILE]


def test_the_rule_on_hand_made_figures():
    base = {"spearman": 0.5, "norm_gini": 0.6, "top_decile_capture": 0.4, "total_error": 0.1}
    better = {"spearman": 0.6, "norm_gini": 0.7, "top_decile_capture": 0.5, "total_error": -0.05}
    off = better | {"total_error": -0.3}  # better ranking, a worse total
    assert choose({"bgnbd_gg": base, "ensemble": better, "lstm": better}) == "ensemble"
    assert choose({"bgnbd_gg": base, "ensemble": off, "lstm": off, "rfm": better}) == "rfm"
    assert choose({"bgnbd_gg": base, "ensemble": off, "lstm": better | {"spearman": 0.55},
                   "rfm": better}) == "rfm"  # the best qualifying member by Spearman
    assert choose({"bgnbd_gg": base, "ensemble": off, "lstm": off}) == "bgnbd_gg"
    assert choose({"bgnbd_gg": base, "ensemble": dict(base)}) == "ensemble"  # ties are no worse
    assert not no_worse(better | {"spearman": float("nan")}, base)
    assert no_worse(better, base | {"spearman": float("nan")})


def test_value_json_has_the_issue_keys_then_published_verdict_reused(trained):
    cfg, run, _ = trained
    args = type("Args", (), {"json": True, "horizon_days": None})()
    out = part.run_value_command(cfg, args, run)
    assert list(out) == ["calibration_end", "holdout_days", "customers", "models", "published", "verdict", "reused"]
    assert set(out["models"]) == {"bgnbd_gg", "lstm", "ensemble"} and out["reused"] is True
    assert out["published"] == out["verdict"]["ships"] and json.dumps(out)


def test_the_sharded_steps_give_the_one_process_set_byte_for_byte(trained, tmp_path):
    """As the DAG runs them: prepare, each shard on its own (any order, one retried), then finish."""
    cfg, run, _ = trained
    one = (run.part("value") / VALUE_FILE).read_bytes()
    sharded = dataclasses.replace(cfg, customers=dataclasses.replace(cfg.customers, shards=3))
    other = runs.create(Store(cfg.store), "sharded")
    assert part.prepare(sharded, other) == {"shards": [0, 1, 2], "reused": False}
    for shard in (2, 0, 2, 1):  # shard 2 retried: its file replaced whole
        done = part.forecast_shard(sharded, other, shard)
        assert Path(done["path"]).name == f"value-{shard:04d}-of-0003.parquet" and done["customers"] > 0
    summary = part.finish(sharded, other)
    assert summary["reused"] is False and summary["forecast"]["shards"] == 3
    assert (other.part("value") / VALUE_FILE).read_bytes() == one
    assert not list(other.root.glob(".value.*"))
    again = part.prepare(sharded, other)  # the same settings and log: nothing to redo, whatever the shards
    assert again["reused"] is True and part.forecast_shard(sharded, other, 0)["reused"] is True
    assert part.finish(sharded, other)["reused"] is True


def test_finish_refuses_a_missing_shard_and_names_it(tmp_path, overconfident):
    cfg = make_store(tmp_path)
    cfg = dataclasses.replace(cfg, customers=dataclasses.replace(cfg.customers, shards=2))
    run = runs.create(Store(cfg.store))
    part.prepare(cfg, run)
    part.forecast_shard(cfg, run, 0)
    with pytest.raises(ValueModelError, match="value-0001-of-0002.parquet"):
        part.finish(cfg, run)
    assert not run.part("value").exists()
    part.forecast_shard(cfg, run, 1)  # the missing shard run: the join goes through
    assert part.finish(cfg, run)["trained"] is True
