"""The blessing gate's population: the baselines are scored on the customers the model was validated on.

    .venv/bin/python -m pytest tests/nextbasket/test_judge.py -q
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import Config, CustomerModelConfig, IngestConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, read_json
from recsys.nextbasket import judge
from recsys.nextbasket.histories import customer_cutoff, open_store
from recsys.nextbasket.recommend import validation_customers
from recsys.nextbasket.train import VALIDATION_FILE, train_customer_model
from recsys.runs import EVALUATION_FILE, TRAIN_FILE
from recsys.runs import create as create_run

TINY = CustomerModelConfig(lookback_weeks=10, seq_weeks=4, recent_weeks=2, train_weeks=3, n_candidates=10,
                           units=4, dense_units=8, epochs=1, batch_size=64, histogram_freq=0, bless_margin=-1.0)


@pytest.fixture
def cyclic_store(cyclic_events, tmp_path) -> Config:
    """``cyclic_events`` (60 customers, all buying in the last full week) ingested into a store."""
    csv = tmp_path / "events.csv"
    cyclic_events.assign(event_time=cyclic_events[s.EVENT_DATE].astype(str) + "T12:00:00").to_csv(csv, index=False)
    names = ("event_time", s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.ORDER_ID)
    cfg = Config(store=str(tmp_path / "store"), ingest=IngestConfig(columns={n: n for n in names}, returns="keep"),
                 customers=TINY)
    Store(cfg.store).ensure()
    run_ingest(cfg, csv)
    return cfg


def _spies(monkeypatch) -> dict:
    """Every baseline replaced by one that records the customers it is asked for (and TIFU-kNN's bound),
    and answers with global top-frequency's lists."""
    asked: dict = {}
    top = judge.BASELINES["g_topfreq"]

    def spy(name):
        def method(events, cutoff, users, **kwargs):
            asked[name] = (np.asarray(users).tolist(), kwargs)
            return top(events, cutoff, users)
        return method

    monkeypatch.setattr(judge, "BASELINES", {name: spy(name) for name in judge.BASELINES})
    monkeypatch.setattr(judge, "tifu_knn", spy("tifu_knn"))
    return asked


@pytest.mark.slow
def test_the_baselines_are_scored_on_the_model_validation_sample(cyclic_store, monkeypatch):
    cfg = dataclasses.replace(cyclic_store, customers=dataclasses.replace(TINY, validation_customers=12))
    run = create_run(Store(cfg.store))
    trained = train_customer_model(cfg, run)
    assert trained["trained"] and trained["validation_customers"] == 12
    con = open_store(cfg.store, cfg.customers)
    sample = validation_customers(con, customer_cutoff(con), cfg.customers)
    written = pq.read_table(run.part("nextbasket") / VALIDATION_FILE).column(s.USER_ID).to_pylist()
    assert written == sample.tolist() and len(sample) == 12
    asked = _spies(monkeypatch)
    result = judge.judge_customer_model(cfg, run)
    assert set(asked) == {"g_topfreq", "p_topfreq", "base", "tifu_knn"}
    for users, _ in asked.values():  # every method, the model's 12 customers
        assert users == sample.tolist()
    assert asked["tifu_knn"][1] == {"tune_customers": 12, "seed": TINY.seed}  # its tuning week bounded too
    assert "12 customers" in result["reason"]


@pytest.mark.slow
def test_a_budget_no_smaller_than_the_week_judges_as_before(cyclic_store):
    cfg = dataclasses.replace(cyclic_store, customers=dataclasses.replace(TINY, validation_customers=1000))
    run = create_run(Store(cfg.store))
    trained = train_customer_model(cfg, run)
    assert trained["validation_customers"] == 60  # every customer of the week
    out_dir = run.part("nextbasket")
    now = judge._compare(cfg, read_json(out_dir / TRAIN_FILE), out_dir)
    (out_dir / VALIDATION_FILE).unlink()  # a run without the list: every customer of the week, as before
    before = judge._compare(cfg, read_json(out_dir / TRAIN_FILE), out_dir)
    assert now == before and "60 customers" in now["reason"]
    assert not (out_dir / EVALUATION_FILE).exists()


def _sorted(frame):
    return frame.sort_values(list(frame.columns), kind="mergesort").reset_index(drop=True)


def test_the_baselines_read_every_event_when_the_shop_is_within_the_judge_budget(cyclic_store):
    val_cut = customer_cutoff(open_store(cyclic_store.store, cyclic_store.customers)) - judge.timedelta(weeks=1)
    events, read = judge.judge_events(cyclic_store, val_cut, None)  # judge_customers 50,000 > 60 customers
    assert read == {"customers": 60, "of": 60}
    expected = judge.read_events(Store(cyclic_store.store), judge.EVENT_COLUMNS)
    assert events.equals(expected)


def test_on_a_larger_shop_the_baselines_read_the_validated_customers_and_a_seeded_sample(cyclic_store):
    cfg = dataclasses.replace(cyclic_store, customers=dataclasses.replace(TINY, judge_customers=20))
    val_cut = customer_cutoff(open_store(cfg.store, cfg.customers)) - judge.timedelta(weeks=1)
    validated = np.array([f"u{u}" for u in range(30, 42)], dtype=object)
    events, read = judge.judge_events(cfg, val_cut, validated)
    assert read == {"customers": 20, "of": 60}
    users = set(events[s.USER_ID])
    assert len(users) == 20 and set(validated) <= users  # every validated customer, 8 others
    everything = judge.read_events(Store(cfg.store), judge.EVENT_COLUMNS)
    end = val_cut + judge.timedelta(days=7)
    theirs = everything[everything[s.USER_ID].isin(users) & (everything[s.EVENT_DATE] < end)]
    assert _sorted(events).equals(_sorted(theirs))  # each chosen customer's every line before the week's end
    again, _ = judge.judge_events(cfg, val_cut, validated)
    assert set(again[s.USER_ID]) == users  # the seed picks the same sample
    other = dataclasses.replace(cfg, customers=dataclasses.replace(cfg.customers, seed=7))
    assert set(judge.judge_events(other, val_cut, validated)[0][s.USER_ID]) != users
