"""Quantile forecasts: pinball loss by hand, ordered outputs, training, save/load and the trend band."""

import dataclasses

import numpy as np
import pytest

from pipeline import schemas as s
from pipeline.schemas import FORECAST
from recsys.forecast.forecaster import SegmentForecaster
from recsys.forecast.nn.network import build_model
from recsys.forecast.nn.quantiles import PinballLoss, QuantileOffsets, column_names, pinball
from pipeline.schemas import TREND_HIGH, TREND_LOW
from recsys.forecast.trends import compute_trend_scores
from recsys.forecast.nn.windows import CALENDAR_FEATURES, HISTORY_FEATURES
from tests.conftest import SMALL_MODEL, make_tiny_daily

QUANTILES = (0.1, 0.5, 0.9)


def test_pinball_loss_by_hand():
    # y = 1 for two days; forecasts q10 = 0, q50 = 1, q90 = 3 on day 1 and 2, 2, 2 on day 2.
    y = np.array([[1.0, 1.0]], "float32")
    pred = np.array([[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]], "float32")
    # day 1: q10 under by 1 -> 0.1 * 1; q50 exact -> 0; q90 over by 2 -> 0.1 * 2   (sum 0.3)
    # day 2: every quantile over by 1 -> (1 - q) * 1 = 0.9 + 0.5 + 0.1            (sum 1.5)
    expected = (0.3 + 1.5) / 6
    assert float(pinball(y, pred, QUANTILES)[0]) == pytest.approx(expected, rel=1e-6)
    assert float(PinballLoss(QUANTILES)(y, pred)) == pytest.approx(expected, rel=1e-6)
    assert PinballLoss.from_config(PinballLoss(QUANTILES).get_config()).quantiles == list(QUANTILES)


def test_quantile_offsets_are_ordered_around_the_median():
    layer = QuantileOffsets(3, 1)
    centre = np.array([[1.0, -2.0]], "float32")
    raw = np.array([[[0.0, 0.0], [-30.0, 5.0]]], "float32")  # gaps below / above for each day
    out = np.asarray(layer([centre, raw]))
    np.testing.assert_allclose(out[0, 0], [1 - np.log(2), 1, 1 + np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(out[0, 1, 1], -2.0)
    assert (np.diff(out, axis=-1) >= 0).all()
    assert column_names((0.05, 0.1, 0.5, 0.9)) == ["p5", "p10", "p50", "p90"]


def test_quantile_model_output_shape_and_seasonal_skip_on_every_quantile():
    cfg = dataclasses.replace(SMALL_MODEL, quantiles=QUANTILES, season_skip=7, base_seasons=1)
    model = build_model(cfg, n_segments=2)
    assert model.output_shape == (None, cfg.horizon, 3)
    history = np.zeros((1, cfg.lookback, len(HISTORY_FEATURES)), "float32")
    history[0, -7:, 0] = 10.0 * np.arange(7)  # the last week, repeated by the skip
    out = model.predict({"history": history, "future": np.zeros((1, cfg.horizon, len(CALENDAR_FEATURES)),
                                                                 "float32"),
                         "segment": np.array([1])}, verbose=0)[0]
    np.testing.assert_allclose(out[:, 1], 10.0 * np.arange(7), atol=1e-5)  # untrained median = naive
    assert (out[:, 0] < out[:, 1]).all() and (out[:, 1] < out[:, 2]).all()


@pytest.mark.slow
def test_quantile_model_trains_predicts_ordered_columns_and_round_trips(tmp_path):
    daily = make_tiny_daily()
    rec = SegmentForecaster(dataclasses.replace(SMALL_MODEL, quantiles=QUANTILES))
    result = rec.fit(daily)
    assert np.isfinite(result["best_val_loss"]) and np.isfinite(result["best_val_mae"])
    out = rec.predict(daily)
    assert list(out.columns) == [s.SEGMENT, s.DATE, FORECAST, "p10", "p50", "p90"]
    np.testing.assert_array_equal(out[FORECAST], out["p50"])
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert (out["p10"] < out["p90"]).any()
    rec.save(tmp_path / "m")
    loaded = SegmentForecaster.load(tmp_path / "m")
    assert loaded.config == rec.config and loaded.config.quantiles == QUANTILES
    np.testing.assert_allclose(loaded.predict(daily)[["p10", "p50", "p90"]], out[["p10", "p50", "p90"]],
                               rtol=1e-6)
    trends = compute_trend_scores(loaded, daily)
    assert list(trends.columns[:4]) == [s.SEGMENT, s.TREND, TREND_LOW, TREND_HIGH]
    assert (trends[TREND_LOW] <= trends[s.TREND] + 1e-12).all()
    assert (trends[s.TREND] <= trends[TREND_HIGH] + 1e-12).all()


@pytest.mark.slow
def test_peephole_quantile_candidate_trains_evaluates_and_pushes_with_a_trend_band(tiny_store):
    """train -> evaluate (MASE on the median) -> push (SavedModel export, trend file) all keep working."""
    from pipeline.config import EvaluateConfig
    from pipeline.store import Store, read_parquet
    from recsys import registry
    from recsys import release
    from recsys.forecast.evaluate import run_evaluate
    from recsys.forecast.train import run_train
    from recsys.runs import create as create_run, seal_verdicts

    model = dataclasses.replace(SMALL_MODEL, cell="peephole", quantiles=QUANTILES)
    cfg = dataclasses.replace(tiny_store, model=model, evaluate=EvaluateConfig(margin=-100.0))
    run = create_run(Store(cfg.store), "q")
    run_train(cfg, run)
    evaluation = run_evaluate(cfg, run)
    assert evaluation["blessed"] and np.isfinite(evaluation["metrics"]["model"]["mase"])
    seal_verdicts(run, ["forecast"])  # the judged set, as release.judge records it
    pushed = release.push(cfg, run)
    assert pushed["pushed"]
    trends = read_parquet(registry.load_release(Store(cfg.store), pushed["version"]).trend_file).to_pandas()
    assert {TREND_LOW, TREND_HIGH} <= set(trends.columns) and len(trends) == 3
    assert (trends[TREND_LOW] <= trends[TREND_HIGH]).all()
    # the report and notebook 02 shade the p10-p90 band of the production model's hold-out forecast
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import PolyCollection

    from recsys.report import plots, report

    holdout = report.holdout_frame(cfg)
    band = report.quantile_band(holdout.columns)
    assert band == ("p10", "p90")
    ahead = holdout.dropna(subset=["model"])
    assert len(ahead) and (ahead["p10"] <= ahead["model"]).all() and (ahead["model"] <= ahead["p90"]).all()
    fig = plots.plot_holdout(holdout, cfg.model.target, band)
    assert any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
