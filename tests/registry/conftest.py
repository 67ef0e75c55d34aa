"""Registry fixtures: versions pushed through the new ``registry.push`` (parts, a run reference).

- ``part_assembler(trends, ships=..., ...)``: an assembler filling ``forecast/`` (trend.parquet, a
  combination.json and placeholder LSTM files) and, when asked, ``nextbasket/`` and ``value/``; its
  metadata is what recsys.release records per part.
- ``push_parts(cfg, trends, run=None, **part_assembler fields) -> "vNNNN"``: a new production version
  judged against today's production, whose parts record what ships (tests/conftest.py's
  ``push_version`` is the plain one the other packages use).
"""

import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.store import Store, write_json, write_parquet
from recsys import registry

FORECAST = "forecast"


def _part_assembler(trends: pd.DataFrame, ships: str = "run", holdout_mase: float = 0.5,
                    baseline_mase: float = 1.0, nextbasket: str | None = None, value: str | None = None):
    def assemble(staging: Path) -> dict:
        forecast = staging / FORECAST
        forecast.mkdir()
        write_parquet(pa.Table.from_pandas(trends, preserve_index=False), forecast / registry.TREND_FILE)
        write_json({"members": ["lstm", "seasonal_naive"], "weights": [0.5, 0.5]}, forecast / "combination.json")
        (forecast / "model.keras").write_bytes(b"placeholder: this test never loads the model")
        (forecast / "recommender.json").write_text("{}")
        parts = {FORECAST: {"ships": ships, "verdict": {"blessed": ships == "run", "reason": "test"},
                            "holdout_mase": holdout_mase, "baseline": "seasonal_naive",
                            "baseline_mase": baseline_mase}}
        for name, shipped in (("nextbasket", nextbasket), ("value", value)):
            if shipped is not None:
                (staging / name).mkdir()
                (staging / name / "model.json").write_text(f'{{"ships": "{shipped}"}}')
                parts[name] = {"ships": shipped}
        return {"parts": parts, "segments": [str(s) for s in trends["segment"]]}
    return assemble


@pytest.fixture
def part_assembler():
    """``part_assembler(trends, ships="run", holdout_mase=0.5, baseline_mase=1.0, nextbasket=None,
    value=None)``: an assembler for registry.push (see the module docstring)."""
    return _part_assembler


def _push_version(cfg, trends: pd.DataFrame, run: str | None = None, **fields) -> str:
    store = Store(cfg.store).ensure()
    prod = registry.read_production(store)
    run = run or f"models/runs/by-test-{time.time_ns()}"
    result = registry.push(cfg, run, _part_assembler(trends, **fields), against=prod and prod["version"],
                           reason="test: a hand-made trend table")
    assert result["pushed"], result
    return result["version"]


@pytest.fixture
def push_parts():
    """``push_parts(cfg, trends, run=None, **part_assembler fields) -> "vNNNN"``: a new production version."""
    return _push_version
