"""Metrics, seasonal naive and the blessing rule on hand-computed numbers; run_evaluate end to end."""

import json
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store, read_json, read_parquet, write_json
from recsys.forecast import evaluate as ev
from recsys.runs import create as create_run
from recsys.forecast import metrics

ACTUAL = np.array([1.0, 2.0, 3.0, 4.0])
FORECAST = np.array([2.0, 2.0, 1.0, 4.0])  # errors 1, 0, 2, 0


def test_mae_and_rmse_by_hand():
    assert metrics.mae(ACTUAL, FORECAST) == pytest.approx((1 + 0 + 2 + 0) / 4)
    assert metrics.rmse(ACTUAL, FORECAST) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))


def test_mape_skips_zero_actuals():
    # |2-1|/2 = 0.5 and |4-5|/4 = 0.25; the zero actual is left out -> 100 * 0.375
    assert metrics.mape([0.0, 2.0, 4.0], [1.0, 1.0, 5.0]) == pytest.approx(37.5)
    assert math.isnan(metrics.mape([0.0, 0.0], [1.0, 2.0]))


def test_smape_counts_both_zero_as_zero():
    # terms: 0 (0 vs 0), 2*1/(2+1) = 2/3, 2*2/(4+6) = 2/5 -> 100 * (2/3 + 2/5) / 3
    assert metrics.smape([0.0, 2.0, 4.0], [0.0, 1.0, 6.0]) == pytest.approx(100 * (2 / 3 + 2 / 5) / 3)


def test_r2_by_hand():
    # mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5; SS_res = 1 (last point off by 1)
    assert metrics.r2(ACTUAL, [1.0, 2.0, 3.0, 5.0]) == pytest.approx(1 - 1 / 5)
    assert metrics.r2(ACTUAL, FORECAST) == pytest.approx(0.0)  # SS_res = 5 = SS_tot
    assert math.isnan(metrics.r2([3.0, 3.0], [1.0, 2.0]))


def test_mase_by_hand():
    # season 2 on 1..6: |3-1| = |4-2| = |5-3| = |6-4| = 2 -> scale 2; forecast MAE (1 + 0) / 2 = 0.5
    assert metrics.mase([7.0, 8.0], [6.0, 8.0], np.arange(1.0, 7.0), season=2) == pytest.approx(0.25)


def test_mase_constant_or_short_training_series():
    flat = [3.0, 3.0, 3.0, 3.0]  # the seasonal-naive in-sample error is 0
    assert metrics.mase([3.0, 4.0], [3.0, 3.0], flat, season=2) == math.inf
    assert math.isnan(metrics.mase([3.0, 3.0], [3.0, 3.0], flat, season=2))  # 0 / 0
    assert math.isnan(metrics.mase([3.0], [2.0], [1.0, 2.0], season=2))  # no full season to scale by


def _history() -> pd.DataFrame:
    start = date(2024, 1, 1)
    a = [("a", start + timedelta(days=i), float(i + 1)) for i in range(11)]  # Jan 1..11: 1..11
    b = [("b", date(2024, 1, d), 100.0) for d in (8, 9, 10)]  # b starts on Jan 8
    return pd.DataFrame(a + b, columns=[s.SEGMENT, s.DATE, s.REVENUE])


def test_seasonal_naive_by_hand():
    out = metrics.seasonal_naive_forecast(_history(), date(2024, 1, 10), horizon=9, season=7, target=s.REVENUE)
    # h = 1..7 repeat Jan 4..10 (T+h-7); h = 8, 9 repeat Jan 4, 5 again (T+h-14). Jan 11 is after T.
    assert out.loc[out[s.SEGMENT] == "a", s.FORECAST].tolist() == [4, 5, 6, 7, 8, 9, 10, 4, 5]
    # b has no row before Jan 8: those days count as zero demand
    assert out.loc[out[s.SEGMENT] == "b", s.FORECAST].tolist() == [0, 0, 0, 0, 100, 100, 100, 0, 0]
    assert out[s.DATE].tolist()[:2] == [date(2024, 1, 11), date(2024, 1, 12)]
    assert list(out.columns) == [s.SEGMENT, s.DATE, s.FORECAST]


@pytest.mark.parametrize(
    ("model", "baseline", "production", "margin", "has_prod", "blessed"),
    [
        (0.8, 1.0, None, 0.0, False, True),
        (0.95, 1.0, None, 0.1, False, False),  # must be < 0.9
        (1.0, 1.0, None, 0.0, False, False),  # a tie is not better
        (0.8, 1.0, 0.7, 0.0, True, False),  # production is better
        (0.8, 1.0, 0.9, 0.0, True, True),
        (None, 1.0, None, 0.0, False, False),
        (0.8, None, None, 0.0, False, False),
    ],
)
def test_decide_blessing(model, baseline, production, margin, has_prod, blessed):
    ok, reason = ev.decide_blessing(model, {"seasonal_naive": baseline}, production, margin, has_prod)
    assert ok is blessed and reason


def test_blessing_needs_the_best_single_baseline_not_only_seasonal_naive():
    baselines = {"seasonal_naive": 1.0, "auto_ets": 0.7, "auto_theta": None}
    ok, reason = ev.decide_blessing(0.8, baselines, None, 0.0, False)  # beats naive, loses to AutoETS
    assert not ok and "auto_ets 0.7000" in reason
    ok, reason = ev.decide_blessing(0.6, baselines, None, 0.0, False)
    assert ok and "best baseline, auto_ets" in reason


def _candidate(cfg, recommender, cutoff, run_id="run"):
    """A training run whose forecast/ part holds ``recommender``, trained up to ``cutoff``."""
    run = create_run(Store(cfg.store), run_id)
    path = run.part("forecast")
    recommender.save(path)
    write_json({"cutoff": str(cutoff), "train_start": "2024-01-01"}, path / "train.json")
    return run


@pytest.mark.slow
def test_run_evaluate_end_to_end(tiny_store, trained_forecaster, hparams_of_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    from recsys.forecast.nn.callbacks import write_hparams
    from tests.conftest import SMALL_MODEL

    cutoff = date(2024, 5, 15)  # tiny_daily ends on May 29: 14 hold-out days, the model forecasts 7
    cand = _candidate(tiny_store, trained_forecaster, cutoff)
    run = Store(tiny_store.store).runs / cand.run_id  # the run's TensorBoard logs, as train leaves them
    write_hparams(run, SMALL_MODEL)
    out = ev.run_evaluate(tiny_store, cand)
    # the metrics that decide promotion, in the run's HParams session beside its hyper-parameters
    acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
    acc.Reload()
    scalars = {tag: float(tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto))
               for tag in acc.Tags()["tensors"] if tag.startswith("holdout_")}
    assert scalars["holdout_mase"] == pytest.approx(out["metrics"]["model"]["mase"])
    assert scalars["holdout_mae"] == pytest.approx(out["metrics"]["model"]["mae"])
    assert scalars["holdout_seasonal_naive_mase"] == pytest.approx(out["metrics"]["seasonal_naive"]["mase"])
    assert scalars["holdout_blessed"] == float(out["blessed"])
    assert hparams_of_run(run)["units"] == SMALL_MODEL.units
    assert (out["cutoff"], out["holdout_start"], out["holdout_end"]) == ("2024-05-15", "2024-05-16",
                                                                         "2024-05-22")
    assert out["metrics"]["production"] is None and out["production_version"] is None
    assert set(out["per_segment"]) == {"a", "b", "c"} and isinstance(out["blessed"], bool) and out["reason"]
    assert {"seasonal_naive", "auto_ets", "auto_theta"} <= set(out["metrics"])  # every single baseline
    written = {k: v for k, v in out.items() if k not in ("verdict", "reused")}
    assert read_json(cand.part("forecast") / "evaluation.json") == json.loads(json.dumps(written))
    verdict = read_json(cand.part("forecast") / "verdict.json")
    assert verdict["metric"] == "mase" and verdict["value"] == out["metrics"]["model"]["mase"]
    assert verdict["blessed"] == out["blessed"] and verdict["ships"] in ("run", "seasonal_naive", "auto_ets", "auto_theta")
    assert ev.run_evaluate(tiny_store, cand)["reused"]  # same forecaster, settings and production
    # the baseline's numbers, recomputed here: segment a's May 16..22 against May 9..15
    daily = read_parquet(Store(tiny_store.store).daily_path).to_pandas().set_index([s.SEGMENT, s.DATE])
    a = daily.loc["a", s.REVENUE]
    actual = a.loc[date(2024, 5, 16):date(2024, 5, 22)].to_numpy()
    naive = a.loc[date(2024, 5, 9):date(2024, 5, 15)].to_numpy()
    train = a.loc[:cutoff].to_numpy()
    got = out["per_segment"]["a"]["seasonal_naive"]
    assert got["mae"] == pytest.approx(np.mean(np.abs(actual - naive)))
    scale = np.mean(np.abs(train[7:] - train[:-7]))  # in-sample seasonal-naive error up to the cutoff
    assert got["mase"] == pytest.approx(np.mean(np.abs(actual - naive)) / scale)
    model = out["metrics"]["model"]
    assert model["mase_segments"] == 3 and model["mase"] == pytest.approx(
        np.mean([out["per_segment"][g]["model"]["mase"] for g in "abc"]))


@pytest.mark.slow
def test_run_evaluate_needs_train_json_and_a_holdout(tiny_store, trained_forecaster, tmp_path):
    empty = create_run(Store(tiny_store.store), "empty")
    with pytest.raises(ev.EvaluationError, match="train.json not found"):
        ev.run_evaluate(tiny_store, empty)
    cand = _candidate(tiny_store, trained_forecaster, date(2024, 5, 29), "last")  # the last day: nothing after it
    with pytest.raises(ev.EvaluationError, match="at least 1 day"):
        ev.run_evaluate(tiny_store, cand)
