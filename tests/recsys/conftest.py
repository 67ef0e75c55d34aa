"""Shared recsys fixtures: a tiny daily table, a small config with its own store, a trained model.

``tiny_daily`` has three segments with a weekly pattern; ``b`` starts 20 days late and ``c`` is
100 times bigger than ``a``, so zero-padding and per-segment scaling are exercised. The trained
model is session-scoped (one fit of 2 epochs for the whole run); do not modify it or its frame.
"""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline import schemas as s
from pipeline.config import Config, ModelConfig, load_config
from pipeline.store import Store, write_parquet

START = datetime.date(2024, 1, 1)  # a Monday
SMALL_MODEL = ModelConfig(lookback=14, horizon=7, units=8, layers=1, epochs=2, batch_size=32, patience=2,
                          val_days=21, seed=7, base_seasons=2)


def make_tiny_daily(n_days: int = 150, start: datetime.date = START, seed: int = 0) -> pd.DataFrame:
    """A DAILY_SCHEMA frame: segments a (revenue ~100), b (~10, starts 20 days late), c (~10 000).

    Revenue follows a weekly cycle (weekends busier) plus 5 % noise; dates are python dates as in
    ``read_parquet(daily).to_pandas()``. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for segment, level, offset in (("a", 100.0, 0), ("b", 10.0, 20), ("c", 10_000.0, 0)):
        days = pd.date_range(start + datetime.timedelta(days=offset), periods=n_days - offset, freq="D")
        weekday = days.day_of_week.to_numpy()
        revenue = level * (1.0 + 0.6 * (weekday >= 5)) * (1.0 + 0.05 * rng.standard_normal(len(days)))
        parts.append(pd.DataFrame({
            s.SEGMENT: segment, s.DATE: days.date, s.YEAR: days.year, s.MONTH: days.month,
            s.WEEKDAY: weekday, s.EVENTS: np.rint(revenue / 5).astype(np.int64),
            s.QUANTITY: np.rint(revenue / 2), s.REVENUE: revenue,
            s.USERS: np.rint(revenue / 10).astype(np.int64),
            s.ITEMS: np.rint(revenue / 20).astype(np.int64),
        }))
    return pd.concat(parts, ignore_index=True)


def write_daily(store_root, daily: pd.DataFrame) -> Store:
    """Write ``daily`` as the store's aggregates/daily.parquet (DAILY_SCHEMA) and return the Store."""
    store = Store(store_root).ensure()
    write_parquet(pa.Table.from_pandas(daily, schema=s.DAILY_SCHEMA, preserve_index=False), store.daily_path)
    return store


@pytest.fixture
def tiny_daily() -> pd.DataFrame:
    """A fresh ``make_tiny_daily()`` frame (150 days, 3 segments) for each test."""
    return make_tiny_daily()


@pytest.fixture
def small_config(tmp_path) -> Config:
    """Default config with the store at ``tmp_path / "store"`` and SMALL_MODEL (2 epochs, 8 units)."""
    return dataclasses.replace(load_config(None), store=str(tmp_path / "store"), model=SMALL_MODEL)


@pytest.fixture
def tiny_store(small_config, tiny_daily) -> Config:
    """``small_config`` whose store holds ``tiny_daily`` as aggregates/daily.parquet."""
    write_daily(small_config.store, tiny_daily)
    return small_config


@pytest.fixture(scope="session")
def trained_daily() -> pd.DataFrame:
    """The frame ``trained_forecaster`` was fitted on: ``make_tiny_daily()`` (do not modify)."""
    return make_tiny_daily()


@pytest.fixture(scope="session")
def trained_forecaster(trained_daily):
    """An SegmentForecaster(SMALL_MODEL) fitted for 2 epochs on ``trained_daily``, shared by the session."""
    from recsys.forecast.forecaster import SegmentForecaster

    recommender = SegmentForecaster(SMALL_MODEL)
    recommender.fit(trained_daily)
    return recommender
