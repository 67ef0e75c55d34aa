"""The ranking function: no future leak, a due repurchase comes first, a guest-only log falls back."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import Config, CustomerModelConfig, IngestConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.schemas import SCORE
from pipeline.store import Store
from recsys.nextbasket.retrieval import retrieve
from recsys.nextbasket.features import build_features
from pipeline.sampling import sample_customers
from recsys.nextbasket import recommend
from recsys.nextbasket.histories import (
    active_users,
    iter_histories,
    open_events,
    open_store,
    purchase_lines,
    purchased_items,
)
from recsys.nextbasket.recommend import labelled_pairs, lstm_recommender, validation_customers
from tests.nextbasket.conftest import make_events

CFG = CustomerModelConfig(lookback_weeks=10, seq_weeks=4, recent_weeks=2, train_weeks=6, n_candidates=10,
                          units=8, dense_units=16, epochs=30, patience=30, batch_size=32, learning_rate=1e-2,
                          histogram_freq=0, monitor="val_loss")
# start of week 15 of the cyclic log: "A" bought X in week 13 (odd weeks) and Y, Z in week 14, so X is
# the one due in [CUTOFF, CUTOFF + 7)
CUTOFF = date(2011, 1, 3) + timedelta(weeks=15)


def _inputs(events: pd.DataFrame, cutoff: date):
    con = open_events(events)
    out = [labelled_pairs(con, cutoff - timedelta(weeks=k), CFG, None, np.random.default_rng(0))
           for k in range(1, CFG.train_weeks + 1)]
    for hist in iter_histories(con, cutoff, CFG):
        out.append(build_features(hist, retrieve(hist, CFG), CFG))
    return out


def test_truncating_the_log_after_the_cutoff_changes_nothing(cyclic_events):
    before = cyclic_events[pd.to_datetime(cyclic_events[s.EVENT_DATE]) < pd.Timestamp(CUTOFF)]
    assert len(before) < len(cyclic_events)
    for full, cut in zip(_inputs(cyclic_events, CUTOFF), _inputs(before, CUTOFF), strict=True):
        for a, b in zip(full, cut, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_item_due_on_a_two_week_cycle_comes_first(cyclic_events):
    events = cyclic_events[pd.to_datetime(cyclic_events[s.EVENT_DATE]) < pd.Timestamp(CUTOFF)]
    ranked = lstm_recommender(events, CUTOFF, np.array(["A", "u1"]), CFG)
    a = ranked[ranked[s.USER_ID] == "A"]
    assert a[s.ITEM_ID].iloc[0] == "X"  # due this week; Y and Z were bought last week
    assert list(ranked.columns) == [s.USER_ID, s.ITEM_ID, SCORE]
    assert (ranked.groupby(s.USER_ID).size() <= CFG.top_k).all()
    assert ranked.groupby(s.USER_ID)[SCORE].is_monotonic_decreasing.all()


def test_guest_only_log_falls_back_to_best_sellers(caplog):
    caplog.set_level(logging.WARNING)
    guests = make_events([(None, "x", "s1", 1.0, "2011-03-10"), (None, "x", "s1", 1.0, "2011-03-11"),
                          (None, "y", "s1", 1.0, "2011-03-01")])
    ranked = lstm_recommender(guests, date(2011, 3, 15), np.array(["a", "b"]), CFG)
    assert "guests'" in caplog.text and "falling back to the recent best sellers" in caplog.text
    assert ranked[ranked[s.USER_ID] == "a"][s.ITEM_ID].tolist() == ["x", "y"]
    assert set(ranked[s.USER_ID]) == {"a", "b"}


def test_store_path_reads_the_same_inputs_as_a_dataframe(cyclic_events, tmp_path):
    csv = tmp_path / "events.csv"
    cyclic_events.assign(event_time=cyclic_events[s.EVENT_DATE].astype(str) + "T12:00:00").to_csv(csv, index=False)
    names = ("event_time", s.USER_ID, s.ITEM_ID, s.SEGMENT, s.QUANTITY, s.PRICE, s.ORDER_ID)
    cfg = Config(store=str(tmp_path / "store"), ingest=IngestConfig(columns={n: n for n in names}, returns="keep"))
    Store(cfg.store).ensure()
    run_ingest(cfg, csv)
    hists = [list(iter_histories(con, CUTOFF, CFG)) for con in (open_store(cfg.store), open_events(cyclic_events))]
    for a, b in zip(*hists, strict=True):
        pd.testing.assert_frame_equal(a.user_item, b.user_item)
        pd.testing.assert_frame_equal(a.crowd_segment, b.crowd_segment)


def test_training_customers_are_a_budgeted_sample_and_a_large_budget_changes_nothing(cyclic_events):
    con = open_events(cyclic_events)
    at = CUTOFF - timedelta(weeks=2)

    def pairs(budget: int, seed: int = 42):
        cfg = dataclasses.replace(CFG, train_customers=budget, seed=seed)
        return labelled_pairs(con, at, cfg, None, np.random.default_rng(0))

    everyone = pairs(0)
    assert len(everyone[4]) == 60  # every customer bought in the week
    for a, b in zip(pairs(60), everyone, strict=True):  # a budget >= the customers: the same arrays
        np.testing.assert_array_equal(a, b)
    sample = pairs(12)
    assert len(sample[4]) == 12 and len(sample[2]) < len(everyone[2])
    for a, b in zip(pairs(12), sample, strict=True):  # same seed, same sample
        np.testing.assert_array_equal(a, b)
    validation = labelled_pairs(con, at, dataclasses.replace(CFG, train_customers=12), None, None)
    assert len(validation[4]) == 60  # no rng: the validation week keeps every customer


def _two_tiers(events: pd.DataFrame) -> pd.DataFrame:
    """The cyclic log with every line of customers u1 ... u29 twice: two activity tiers of 30."""
    busy = events[events[s.USER_ID].isin([f"u{u}" for u in range(1, 30)])]
    return pd.concat([events, busy], ignore_index=True)


def test_the_validation_week_is_the_budgets_stratified_sample_and_a_large_budget_changes_nothing(cyclic_events):
    con = open_events(_two_tiers(cyclic_events))
    at = CUTOFF - timedelta(weeks=1)  # the validation week of a model for CUTOFF
    everyone = labelled_pairs(con, at, CFG, None, None)  # the path before the budget: every customer
    assert len(everyone[4]) == 60
    for budget in (0, 60, 1000):  # no budget, or one no smaller than the customers: the same arrays
        cfg = dataclasses.replace(CFG, validation_customers=budget)
        assert len(validation_customers(con, CUTOFF, cfg)) == 60
        for a, b in zip(labelled_pairs(con, at, cfg, None, None, budget), everyone, strict=True):
            np.testing.assert_array_equal(a, b)
    cfg = dataclasses.replace(CFG, validation_customers=12)
    sample = validation_customers(con, CUTOFF, cfg)
    assert len(sample) == 12 and np.array_equal(sample, validation_customers(con, CUTOFF, cfg))  # same seed
    users = np.intersect1d(active_users(con, at, CFG.active_days), purchased_items(con, at, CUTOFF)[s.USER_ID])
    assert np.array_equal(sample, users[sample_customers(users, purchase_lines(con, at, CFG.active_days, users),
                                                         12, CFG.seed)])
    busy = sum(u not in ("A", "u0") and int(u[1:]) < 30 for u in sample)
    assert 5 <= busy <= 7  # each tier (half the tenths by activity) keeps about half; by chance 0 ... 12
    other = validation_customers(con, CUTOFF, dataclasses.replace(cfg, seed=7))
    assert len(other) == 12 and not np.array_equal(other, sample)  # another seed, another sample
    pairs = labelled_pairs(con, at, cfg, None, None, 12)
    bought = purchased_items(con, at, CUTOFF)
    np.testing.assert_array_equal(pairs[4], bought[bought[s.USER_ID].isin(sample)].groupby(s.USER_ID).size())
    assert set(pairs[3]) == set(range(12)) and len(pairs[2]) < len(everyone[2])


def test_fit_recommender_validates_on_the_validation_budget(cyclic_events, monkeypatch):
    seen = {}

    class Spy:  # stands in for LSTMRecommender: keeps what fit_recommender hands it
        def __init__(self, cfg):
            pass

        def fit(self, train, val, run_dir):
            seen["train"], seen["val"] = train, val
            return self

    monkeypatch.setattr(recommend, "LSTMRecommender", Spy)
    con = open_events(cyclic_events)
    for budget, customers in ((12, 12), (0, 60)):
        recommend.fit_recommender(con, CUTOFF, dataclasses.replace(CFG, validation_customers=budget))
        assert len(seen["val"][4]) == customers
        assert len(seen["train"][2]) > 0
