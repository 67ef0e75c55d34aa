"""Models saved before the package moved into stage folders still load and forecast the same.

tests/fixtures/forecaster_pre_layout/ was written by the code as it was before the move (the segment
model was then called LSTMRecommender and lived in recsys/model.py): a peephole-LSTM quantile model
with level exponents, so every custom Keras class the network uses (trendrec>PeepholeLSTMCell,
SeasonalRepeat, OpenDays, LevelAdjust, QuantileOffsets, PinballLoss, MedianAbsoluteError) is
looked up by its registered name. The fixture also holds the forecast that code made.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd

from pipeline import schemas as s
from recsys.forecast.forecaster import SegmentForecaster
from tests.conftest import ROOT, make_tiny_daily

FIXTURE = ROOT / "tests" / "fixtures" / "forecaster_pre_layout"


def test_registered_names_in_the_fixture_are_the_ones_the_code_registers():
    import keras

    import recsys.forecast.nn.network  # noqa: F401  (registers the custom classes)

    config = json.loads(zipfile.ZipFile(FIXTURE / "model.keras").read("config.json"))
    names = set()

    def walk(node):
        if isinstance(node, dict):
            if str(node.get("registered_name", "")).startswith("trendrec>"):
                names.add(node["registered_name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    assert len(names) >= 7, names
    for name in names:
        assert keras.saving.get_registered_object(name) is not None, name


def test_a_model_saved_before_the_move_loads_safely_and_forecasts_the_same():
    model = SegmentForecaster.load(FIXTURE)  # keras safe_mode=True inside
    assert model.config.cell == "peephole" and model.config.quantiles == (0.1, 0.5, 0.9)
    expected = pd.read_csv(FIXTURE / "expected_forecast.csv")
    out = model.predict(make_tiny_daily())
    assert list(out.columns) == list(expected.columns)
    assert out[s.SEGMENT].tolist() == expected[s.SEGMENT].tolist()
    assert [str(d) for d in out[s.DATE]] == expected[s.DATE].tolist()
    np.testing.assert_allclose(out[[s.FORECAST, "p10", "p50", "p90"]].to_numpy(),
                               expected[[s.FORECAST, "p10", "p50", "p90"]].to_numpy(), rtol=1e-5)
