"""The built network's settings, predict's contract, save/load round trip and refusal of bad files."""

import dataclasses
import datetime
import json

import keras
import numpy as np
import pytest

from pipeline import schemas as s
from pipeline.schemas import FORECAST
from recsys.forecast.forecaster import SegmentForecaster
from recsys.forecast.nn.network import ModelError, build_model
from tests.conftest import SMALL_MODEL, make_tiny_daily


@pytest.mark.parametrize("cell, layer_type", [("lstm", keras.layers.LSTM), ("gru", keras.layers.GRU)])
def test_recurrent_layers_keep_cudnn_settings_and_dropout_between(cell, layer_type):
    cfg = dataclasses.replace(SMALL_MODEL, cell=cell, layers=3, dropout=0.3)
    model = build_model(cfg, n_segments=3)
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert [type(layer) for layer in rnns] == [layer_type] * 3
    for i, layer in enumerate(rnns):
        assert layer.cell.activation.__name__ == "tanh"
        assert layer.cell.recurrent_activation.__name__ == "sigmoid"
        assert layer.cell.recurrent_dropout == 0 and layer.unroll is False
        after = model.get_layer(f"dropout_{i}")
        assert isinstance(after, keras.layers.Dropout) and after.rate == pytest.approx(0.3)
        assert after.input is layer.output  # every recurrent layer is followed by dropout...
        nxt = model.get_layer(f"{cell}_{i + 1}") if i < 2 else model.get_layer("encoded")
        assert any(t is after.output for t in keras.tree.flatten(nxt.input))  # ...which feeds the next
    assert [layer.return_sequences for layer in rnns] == [True, True, False]
    assert set(model.input) == {"history", "future", "segment"} and model.output_shape == (None, cfg.horizon)


@pytest.mark.slow
def test_predict_gives_horizon_days_after_cutoff_per_segment(trained_forecaster, trained_daily):
    rec, horizon = trained_forecaster, SMALL_MODEL.horizon
    assert rec.segments == ["a", "b", "c"]
    out = rec.predict(trained_daily)
    assert list(out.columns) == [s.SEGMENT, s.DATE, FORECAST] and len(out) == 3 * horizon
    last = max(trained_daily[s.DATE])
    for _, part in out.groupby(s.SEGMENT):
        assert list(part[s.DATE]) == [last + datetime.timedelta(days=h) for h in range(1, horizon + 1)]
    assert (out[FORECAST] >= 0).all() and np.isfinite(out[FORECAST]).all()
    # segment c is 100x segment a: forecasts are back on the original scale
    means = out.groupby(s.SEGMENT)[FORECAST].mean()
    assert means["c"] > 10 * means["a"]


@pytest.mark.slow
def test_predict_at_an_earlier_cutoff_zero_pads_and_ignores_later_days(trained_forecaster, trained_daily):
    cutoff = datetime.date(2024, 1, 25)  # b starts Jan 21: only 5 of 14 lookback days exist
    out = trained_forecaster.predict(trained_daily, cutoff)
    assert sorted(out[s.SEGMENT].unique()) == ["a", "b", "c"]
    assert out[s.DATE].min() == datetime.date(2024, 1, 26)
    early = trained_daily[trained_daily[s.DATE] <= cutoff]
    np.testing.assert_allclose(trained_forecaster.predict(early, cutoff)[FORECAST], out[FORECAST], rtol=1e-6)


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_predictions(trained_forecaster, trained_daily, tmp_path):
    trained_forecaster.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "recommender.json").read_text())
    assert meta["segments"] == ["a", "b", "c"] and set(meta["scales"]) == {"a", "b", "c"}
    assert meta["config"]["horizon"] == SMALL_MODEL.horizon
    assert meta["features"]["history"][0] == "target_scaled"
    loaded = SegmentForecaster.load(tmp_path / "m")
    assert loaded.config == SMALL_MODEL and loaded.scales == trained_forecaster.scales
    np.testing.assert_allclose(loaded.predict(trained_daily)[FORECAST],
                               trained_forecaster.predict(trained_daily)[FORECAST], rtol=1e-6)


@pytest.mark.slow
def test_load_refuses_truncated_missing_or_corrupt_files(trained_forecaster, tmp_path):
    trained_forecaster.save(tmp_path / "m")
    path = tmp_path / "m" / "model.keras"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        SegmentForecaster.load(tmp_path / "m")
    path.unlink()
    with pytest.raises(ModelError, match="model.keras not found"):
        SegmentForecaster.load(tmp_path / "m")
    (tmp_path / "m" / "recommender.json").write_text('{"config": ')
    with pytest.raises(ModelError, match="not valid JSON"):
        SegmentForecaster.load(tmp_path / "m")
    with pytest.raises(ModelError, match="not found"):
        SegmentForecaster.load(tmp_path / "nothing")


@pytest.mark.slow
def test_export_savedmodel_writes_a_tf_savedmodel(trained_forecaster, tmp_path):
    trained_forecaster.export_savedmodel(tmp_path / "sm")
    assert (tmp_path / "sm" / "saved_model.pb").is_file()


def test_fit_refuses_non_finite_targets_and_too_little_data():
    daily = make_tiny_daily(n_days=60)
    bad = daily.assign(**{s.REVENUE: daily[s.REVENUE].where(daily.index != 5, np.inf)})
    with pytest.raises(ModelError, match="non-finite revenue"):
        SegmentForecaster(SMALL_MODEL).fit(bad)
    with pytest.raises(ModelError, match="too little data"):
        SegmentForecaster(dataclasses.replace(SMALL_MODEL, val_days=3)).fit(daily)  # val_days < horizon


@pytest.mark.slow
def test_diverging_training_raises_instead_of_returning_a_model():
    cfg = dataclasses.replace(SMALL_MODEL, learning_rate=1e30, epochs=1)
    with pytest.raises(ModelError, match="diverged"):
        SegmentForecaster(cfg).fit(make_tiny_daily(n_days=60))


def test_predict_before_fit_is_refused(tiny_daily):
    with pytest.raises(ModelError, match="not trained"):
        SegmentForecaster(SMALL_MODEL).predict(tiny_daily)


def test_untrained_model_starts_at_the_seasonal_naive_forecast():
    """The residual head is zero-initialised: before training, output = last week repeated."""
    import keras

    from pipeline.config import ModelConfig
    from recsys.forecast.forecaster import build_model
    from recsys.forecast.nn.windows import HISTORY_FEATURES, CALENDAR_FEATURES

    cfg = ModelConfig(lookback=14, horizon=10, units=4, season_skip=7, base_seasons=1, base_statistic="mean",
                      closed_days=False)
    model = build_model(cfg, n_segments=2)
    history = np.zeros((1, 14, len(HISTORY_FEATURES)), dtype="float32")
    history[0, :, 0] = np.arange(14)  # last week: 7..13
    out = model.predict({"history": history, "future": np.zeros((1, 10, len(CALENDAR_FEATURES)), "float32"),
                         "segment": np.array([1])}, verbose=0)
    np.testing.assert_allclose(out[0], [7, 8, 9, 10, 11, 12, 13, 7, 8, 9])
    assert isinstance(model.get_layer("seasonal_naive"), keras.layers.Layer)


@pytest.mark.slow
def test_mirrored_strategy_builds_in_its_scope_and_fits():
    import tensorflow as tf

    cfg = dataclasses.replace(SMALL_MODEL, distribute="mirrored", epochs=1)
    model = build_model(cfg, n_segments=3)
    assert isinstance(model.distribute_strategy, tf.distribute.MirroredStrategy)
    rec = SegmentForecaster(cfg)
    result = rec.fit(make_tiny_daily(n_days=90))
    assert result["epochs_run"] == 1 and np.isfinite(result["best_val_loss"])
    assert isinstance(rec.model.distribute_strategy, tf.distribute.MirroredStrategy)


@pytest.mark.parametrize("closed", [False, True])
def test_base_of_several_seasons_is_the_mean_of_the_same_weekdays(closed):
    """base_seasons = 2: each forecast day is the mean of that weekday in the last two weeks.

    With closed_days the untrained forecast is the same: the mask only silences the correction.
    """
    from pipeline.config import ModelConfig
    from recsys.forecast.nn.windows import CALENDAR_FEATURES, HISTORY_FEATURES

    cfg = ModelConfig(lookback=14, horizon=8, units=4, season_skip=7, base_seasons=2, closed_days=closed)
    model = build_model(cfg, n_segments=1)
    history = np.zeros((1, 14, len(HISTORY_FEATURES)), dtype="float32")
    history[0, :, 0] = [0, 1, 2, 3, 4, 0, 6, 2, 3, 4, 5, 6, 0, 8]  # day 6 of each week closed
    out = model.predict({"history": history, "future": np.zeros((1, 8, len(CALENDAR_FEATURES)), "float32"),
                         "segment": np.array([0])}, verbose=0)
    np.testing.assert_allclose(out[0], [1, 2, 3, 4, 5, 0, 7, 1])


@pytest.mark.slow
def test_ensemble_averages_its_members_and_survives_save_load(tmp_path):
    from recsys.forecast.nn.windows import latest_inputs

    cfg = dataclasses.replace(SMALL_MODEL, ensemble=2, epochs=1, scaling="naive", loss="mae")
    daily = make_tiny_daily()
    rec = SegmentForecaster(cfg)
    result = rec.fit(daily)
    assert len(result["member_val_loss"]) == 2
    inputs = latest_inputs(daily, cfg.target, cfg.lookback, cfg.horizon, rec.segments, rec.scales,
                           datetime.date(2024, 5, 29))
    members = [rec.model.get_layer(f"member_{i}") for i in range(2)]
    mean = np.mean([m.predict(inputs, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(rec.model.predict(inputs, verbose=0), mean, rtol=1e-5)
    rec.save(tmp_path)
    loaded = SegmentForecaster.load(tmp_path)  # safe_mode=True inside
    np.testing.assert_allclose(loaded.predict(daily)[FORECAST], rec.predict(daily)[FORECAST], rtol=1e-5)


def test_median_base_ignores_a_one_off_spike():
    """base_statistic = "median" over 3 weeks: a promotion day in one week does not move the base."""
    from recsys.forecast.forecaster import SeasonalRepeat

    history = np.zeros((1, 21, 5), dtype="float32")
    history[0, :, 0] = [0, 1, 2, 3, 4, 0, 6] + [2, 3, 4, 5, 6, 0, 8] + [1, 90, 3, 4, 5, 0, 7]
    base = SeasonalRepeat(7, 8, seasons=3, statistic="median")(history)
    np.testing.assert_allclose(np.asarray(base)[0], [1, 3, 3, 4, 5, 0, 7, 1])
    even = SeasonalRepeat(7, 7, seasons=2, statistic="median")(history[:, 7:])  # two weeks: their mean
    np.testing.assert_allclose(np.asarray(even)[0], [1.5, 46.5, 3.5, 4.5, 5.5, 0, 7.5])


def test_a_model_saved_before_the_base_options_loads_with_the_settings_it_was_trained_with(
        trained_forecaster, tmp_path):
    from recsys.forecast.forecaster import META_FILE, PRE_BACKTEST_OPTIONS

    trained_forecaster.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    for key in PRE_BACKTEST_OPTIONS:
        del meta["config"][key]
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    config = SegmentForecaster.load(tmp_path).config
    assert (config.scaling, config.loss, config.base_seasons) == ("mean", "huber", 1)
