"""The per-segment combination: weights by hand, combining by hand, saving, bands, serving without TensorFlow."""

import dataclasses
import datetime
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import CombinationConfig, ConfigError, ModelConfig, load_config
from recsys.forecast import choice as ch
from recsys.forecast import combination as cb
from tests.conftest import ROOT

D = datetime.date
START = D(2024, 1, 1)
STATS_ONLY = CombinationConfig(members=("auto_ets", "auto_theta", "seasonal_naive"), rule="inverse")
SMALL = ModelConfig(lookback=14, horizon=7, val_days=21, quantiles=(0.1, 0.5, 0.9))


def _shop(n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    """"weekly": the same week repeated but for one early spike (seasonal naive is exact on validation); "noisy": level 50 + noise + weekly;
    "late": appears 10 days before the end (too short to score on validation)."""
    rng = np.random.default_rng(seed)
    days = [START + datetime.timedelta(days=i) for i in range(n_days)]
    week = np.array([5.0, 6, 7, 8, 9, 0, 3])
    noisy = 50 + 10 * np.sin(np.arange(n_days) * 2 * np.pi / 7) + rng.normal(0, 5, n_days)
    weekly = np.tile(week, n_days // 7 + 1)[:n_days]
    weekly[10] = 40.0  # one early spike: the naive scale is not 0, the validation error of naive is
    return pd.concat([
        pd.DataFrame({s.SEGMENT: "weekly", s.DATE: days, s.REVENUE: weekly}),
        pd.DataFrame({s.SEGMENT: "noisy", s.DATE: days, s.REVENUE: np.clip(noisy, 0, None)}),
        pd.DataFrame({s.SEGMENT: "late", s.DATE: days[-10:], s.REVENUE: np.full(10, 4.0)}),
    ], ignore_index=True)


def test_choose_weights_by_hand():
    mase = {"lstm": 1.0, "auto_ets": 2.0, "seasonal_naive": 4.0, "auto_theta": float("nan")}
    assert ch.choose_weights(mase, "inverse", 2) == pytest.approx({"lstm": 2 / 3, "auto_ets": 1 / 3})
    assert ch.choose_weights(mase, "inverse", 9) == pytest.approx({"lstm": 4 / 7, "auto_ets": 2 / 7,
                                                                   "seasonal_naive": 1 / 7})
    assert ch.choose_weights(mase, "select", 3) == {"lstm": 1.0}
    assert ch.choose_weights({"auto_ets": 0.0, "lstm": 0.5}, "inverse", 2) == {"auto_ets": 1.0}
    assert ch.choose_weights({"lstm": float("nan")}, "inverse", 2) == {}
    # power 8 (the default): 2 ** 8 = 256 to 1; a member 10 % worse keeps 1.1 ** -8 = 0.47 of the best's weight
    assert ch.choose_weights(mase, "inverse", 2, 8) == pytest.approx({"lstm": 256 / 257, "auto_ets": 1 / 257})
    close = ch.choose_weights({"lstm": 1.1, "auto_ets": 1.0}, "inverse", 2, 8)
    assert close == pytest.approx({"auto_ets": 1 / (1 + 1.1 ** -8), "lstm": 1.1 ** -8 / (1 + 1.1 ** -8)})
    assert ch.choose_weights(mase, "inverse", 2, 0) == pytest.approx({"lstm": 0.5, "auto_ets": 0.5})  # equal
    assert ch.choose_weights({"lstm": 1e-3, "auto_ets": 1e3}, "inverse", 2, 64)["lstm"] == pytest.approx(1.0)


def test_validation_origins_stay_inside_the_lstm_validation_days():
    last = D(2024, 3, 31)
    assert cb.validation_origins(last, 7, 3, 21) == [D(2024, 3, 10), D(2024, 3, 17), D(2024, 3, 24)]
    assert cb.validation_origins(last, 7, 5, 21) == [D(2024, 3, 10), D(2024, 3, 17), D(2024, 3, 24)]


def test_combine_forecasts_by_hand():
    day = D(2024, 2, 1)
    frame = lambda values: pd.DataFrame({s.SEGMENT: list(values), s.DATE: day, s.FORECAST: list(values.values())})
    forecasts = {"lstm": frame({"a": 10.0}),  # the LSTM does not know "new" or "b"
                 "auto_ets": frame({"a": 20.0, "b": 2.0, "new": 6.0}),
                 "seasonal_naive": frame({"a": 40.0, "b": 1.0, "new": 3.0})}
    weights = {"a": {"lstm": 0.75, "auto_ets": 0.25}, "b": {"lstm": 1.0},
               cb.DEFAULT: {"auto_ets": 0.5, "lstm": 0.5}}
    out = cb.combine_forecasts(forecasts, weights).set_index(s.SEGMENT)[s.FORECAST]
    assert out["a"] == pytest.approx(0.75 * 10 + 0.25 * 20)
    assert out["new"] == pytest.approx(6.0)  # DEFAULT's weights, the missing LSTM's share given up
    assert out["b"] == pytest.approx(1.0)  # no weighted member forecasts it: seasonal naive


def test_fit_chooses_per_segment_and_round_trips(tmp_path):
    daily = _shop()
    forecaster, result = cb.fit_combination(daily, SMALL, STATS_ONLY, 7)
    assert result["validation_origins"] == ["2024-04-08", "2024-04-15", "2024-04-22"]
    assert forecaster.weights["weekly"] == {"seasonal_naive": 1.0}  # exact: validation MASE 0
    assert set(forecaster.weights["noisy"]) <= {"auto_ets", "auto_theta", "seasonal_naive"}
    assert "late" not in forecaster.weights and sum(forecaster.weights[cb.DEFAULT].values()) == pytest.approx(1)
    assert forecaster.segments == ["late", "noisy", "weekly"] and not forecaster.uses_lstm
    out = forecaster.predict(daily)
    weekly = out[out[s.SEGMENT] == "weekly"]
    np.testing.assert_allclose(weekly[s.FORECAST], [6.0, 7, 8, 9, 0, 3, 5])  # 2024-04-30 is a Tuesday
    assert set(out[s.SEGMENT]) == {"late", "noisy", "weekly"} and len(out) == 3 * 7
    forecaster.save(tmp_path)
    saved = json.loads((tmp_path / cb.COMBINATION_FILE).read_text())
    assert saved["weights"]["weekly"] == {"seasonal_naive": 1.0} and "noisy" in saved["validation"]
    pd.testing.assert_frame_equal(cb.load_forecaster(tmp_path).predict(daily), out)


def test_rule_weights_pooled_gives_every_segment_the_shops_weights():
    validation = {"a": {"lstm": 1.0, "auto_ets": 3.0, "seasonal_naive": 2.0},
                  "b": {"lstm": 3.0, "auto_ets": 1.0, "seasonal_naive": 3.0}}  # means: 2, 2, 2.5
    pooled = ch.rule_weights(validation, "pooled", 2)
    assert pooled == {"a": pooled[cb.DEFAULT], "b": pooled[cb.DEFAULT], cb.DEFAULT: pooled[cb.DEFAULT]}
    assert pooled[cb.DEFAULT] == pytest.approx({"lstm": 0.5, "auto_ets": 0.5})  # 1/2 each, seasonal naive out
    inverse = ch.rule_weights(validation, "inverse", 2)
    assert inverse["a"] == pytest.approx({"lstm": 2 / 3, "seasonal_naive": 1 / 3})
    assert inverse["b"] == pytest.approx({"auto_ets": 0.75, "lstm": 0.25})  # tie at 3: MEMBERS order
    assert inverse[cb.DEFAULT] == pooled[cb.DEFAULT]
    assert ch.rule_weights({}, "pooled", 2) == {cb.DEFAULT: {"seasonal_naive": 1.0}}  # nothing scored
    sharp = ch.rule_weights(validation, "pooled", 3, 8)[cb.DEFAULT]  # means 2, 2, 2.5: 1, 1, 0.8 ** 8
    assert sharp == pytest.approx({"lstm": 1 / (2 + 0.8 ** 8), "auto_ets": 1 / (2 + 0.8 ** 8),
                                   "seasonal_naive": 0.8 ** 8 / (2 + 0.8 ** 8)})


def test_fit_with_the_default_rule_shares_one_weight_set(tmp_path):
    forecaster, _ = cb.fit_combination(_shop(), SMALL, dataclasses.replace(STATS_ONLY, rule="pooled"), 7)
    shared = forecaster.weights[cb.DEFAULT]
    assert CombinationConfig().rule == "best" and len(shared) == CombinationConfig().top_k
    assert all(w == shared for w in forecaster.weights.values())


def test_a_single_member_is_scored_on_the_validation_cutoffs_with_its_own_band():
    daily = _shop()
    fitted, result = cb.fit_combination(daily, SMALL, STATS_ONLY, 7)
    origins = [D.fromisoformat(o) for o in result["statistical_origins"]]
    assert len(origins) == 8 and origins[-3:] == [D(2024, 4, 8), D(2024, 4, 15), D(2024, 4, 22)]
    alone = cb.single_member(daily, SMALL, 7, "auto_ets", origins)
    assert alone.weights == {cb.DEFAULT: {"auto_ets": 1.0}} and not alone.uses_lstm
    # the same cut-offs and the same fits as the candidate's validation: the same MASE per segment
    assert {seg: v["auto_ets"] for seg, v in alone.validation.items()} == pytest.approx(
        {seg: v["auto_ets"] for seg, v in fitted.validation.items()})
    assert {"weekly", "noisy"} <= set(alone.residuals)  # per segment with validation days
    out = alone.predict(daily)
    assert (out["p10"] <= out[s.FORECAST]).all() and (out[s.FORECAST] <= out["p90"]).all()
    assert (out["p90"] - out["p10"])[out[s.SEGMENT] == "noisy"].gt(0).all()
    ets = cb.CombinedForecaster(SMALL, 7, {cb.DEFAULT: {"auto_ets": 1.0}}).predict(daily)
    np.testing.assert_allclose(out[s.FORECAST], ets[s.FORECAST])


def test_quantile_band_is_ordered_around_the_point_forecast():
    forecaster, _ = cb.fit_combination(_shop(), SMALL, STATS_ONLY, 7)
    out = forecaster.predict(_shop())
    assert list(out.columns) == [s.SEGMENT, s.DATE, s.FORECAST, "p10", "p50", "p90"]
    np.testing.assert_allclose(out["p50"], out[s.FORECAST])
    assert (out["p10"] <= out[s.FORECAST]).all() and (out[s.FORECAST] <= out["p90"]).all()
    noisy = out[out[s.SEGMENT] == "noisy"]
    assert (noisy["p90"] - noisy["p10"]).min() > 0  # noisy validation residuals: a real band


def test_a_combination_without_lstm_weight_serves_without_tensorflow(tmp_path):
    forecaster, _ = cb.fit_combination(_shop(), SMALL, STATS_ONLY, 7)
    forecaster.save(tmp_path / "v")
    _shop().to_parquet(tmp_path / "daily.parquet")
    code = ("import sys, pandas as pd\n"
            "from recsys.forecast.combination import load_forecaster\n"
            "from recsys.forecast.trends import compute_trend_scores\n"
            f"model = load_forecaster({str(tmp_path / 'v')!r})\n"
            f"trends = compute_trend_scores(model, pd.read_parquet({str(tmp_path / 'daily.parquet')!r}))\n"
            "assert len(trends) == 3, trends\n"
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_broken_combination_file_names_itself(tmp_path):
    (tmp_path / cb.COMBINATION_FILE).write_text('{"weights": {"a": {"prophet": 1}}', encoding="utf-8")
    with pytest.raises(cb.CombinationError, match="combination.json is malformed"):
        cb.load_forecaster(tmp_path)


def test_config_refuses_validation_cutoffs_the_lstm_trained_on(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[model]\nhorizon = 14\nval_days = 28\n[combination]\norigins = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="combination.origins"):
        load_config(path)
    path.write_text("[combination]\nmembers = [\"prophet\"]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="combination.members"):
        load_config(path)
    path.write_text("[combination]\npower = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="combination.power"):
        load_config(path)
    for bad in ("min_gain = -0.1", "min_gain = 1.0", "statistical_origins = 2"):
        path.write_text(f"[combination]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="combination.min_gain"):
            load_config(path)
    assert load_config(None).combination == dataclasses.replace(CombinationConfig())


@pytest.mark.slow
def test_push_computes_trend_parquet_from_the_combination(tiny_store, trained_forecaster, tiny_daily):
    from pipeline.store import Store, read_parquet
    from recsys import registry
    from recsys.forecast import publish
    from recsys.runs import Verdict

    weights = {"a": {"auto_ets": 1.0}, cb.DEFAULT: {"lstm": 0.5, "seasonal_naive": 0.5}}
    combination = cb.CombinedForecaster(trained_forecaster.config, 7, weights, lstm=trained_forecaster,
                                        segments=trained_forecaster.segments)
    staging = Store(tiny_store.store).models / "staging-test"
    combination.save(staging)  # the LSTM's files and combination.json, as a run's forecast/ holds them
    verdict = Verdict("forecast", True, "mase", 0.5, "auto_ets", 0.6, "test", ships="run")
    publish._finish(tiny_store, staging, {}, verdict, 0.5)
    trends = read_parquet(staging / registry.TREND_FILE).to_pandas().set_index(s.SEGMENT)
    expected = cb.load_forecaster(staging).predict(tiny_daily).groupby(s.SEGMENT)[s.FORECAST].sum()
    ets = cb.CombinedForecaster(trained_forecaster.config, 7, {cb.DEFAULT: {"auto_ets": 1.0}}).predict(tiny_daily)
    assert trends.loc["a", s.FORECAST_SUM] == pytest.approx(ets[ets[s.SEGMENT] == "a"][s.FORECAST].sum())
    np.testing.assert_allclose(trends[s.FORECAST_SUM], expected.reindex(trends.index), rtol=1e-6)
    lstm = trained_forecaster.predict(tiny_daily).groupby(s.SEGMENT)[s.FORECAST].sum()
    assert trends.loc["b", s.FORECAST_SUM] != pytest.approx(lstm["b"])  # b is half LSTM, half naive
