"""Rolling-origin backtest: hand-checked metrics, AutoETS, no look-ahead, and the CLI's JSON and file."""

import dataclasses
import datetime
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.forecast import backtest as bt
from tests.conftest import ROOT
from tests.conftest import SMALL_MODEL, make_tiny_daily, write_daily

D = datetime.date
START = D(2024, 1, 1)
PATTERN = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 7.0])  # a closed Saturday


def _weekly(offsets) -> pd.DataFrame:
    """Segment "x": week k is PATTERN + offsets[k] (the closed day stays 0)."""
    values = np.concatenate([np.where(PATTERN > 0, PATTERN + o, 0.0) for o in offsets])
    days = [START + datetime.timedelta(days=i) for i in range(len(values))]
    return pd.DataFrame({s.SEGMENT: "x", s.DATE: days, s.REVENUE: values})


def test_seasonal_naive_metrics_by_hand():
    # Weeks: p, p+1, p+2, p+4 (open days). Cut-off after week 2: naive = p+1, actual p+2, in-sample naive
    # error 1 on the 6 open days of 7 -> scale 6/7, MAE 6/7, MASE 1. Cut-off after week 3: scale
    # (6 + 6) / 14 = 6/7, naive = p+2 vs p+4 -> MAE 12/7, MASE 2. Segment MASE = mean(1, 2) = 1.5.
    daily = _weekly([0, 1, 2, 4])
    cfg = dataclasses.replace(SMALL_MODEL, horizon=7)
    cutoffs = [START + datetime.timedelta(days=13), START + datetime.timedelta(days=20)]
    result = bt.backtest(daily, cfg, cutoffs, methods=("seasonal_naive",))
    seg = result["per_segment"]["x"]["seasonal_naive"]
    assert seg["mase"] == pytest.approx(1.5)
    assert seg["mae"] == pytest.approx((6 / 7 + 12 / 7) / 2)  # pooled over 14 cells
    assert seg["rmse"] == pytest.approx(math.sqrt((6 * 1 + 6 * 4) / 14))
    open_days = PATTERN[PATTERN > 0]
    assert seg["mape"] == pytest.approx(100 * np.mean(np.r_[1 / (open_days + 2), 2 / (open_days + 4)]))
    assert result["overall"]["seasonal_naive"]["mase"] == pytest.approx(1.5)
    assert [c["seasonal_naive"] for c in result["per_cutoff"]] == pytest.approx([1.0, 2.0])
    assert result["cutoffs"] == ["2024-01-14", "2024-01-21"] and result["horizon"] == 7


def test_auto_ets_forecasts_every_segment_and_day():
    rng = np.random.default_rng(0)
    daily = _weekly(range(12)).assign(**{s.REVENUE: lambda f: f[s.REVENUE] * (1 + 0.05 * rng.random(len(f)))})
    cfg = dataclasses.replace(SMALL_MODEL, horizon=7)
    cutoff = START + datetime.timedelta(days=76)
    forecasts, _ = bt.backtest_forecasts(daily, cfg, [cutoff], methods=("auto_ets", "seasonal_naive"))
    assert len(forecasts) == 7
    assert np.isfinite(forecasts["auto_ets"]).all() and (forecasts["auto_ets"] >= 0).all()
    # A steady trend plus a weekly cycle: AutoETS follows it at least as well as last week repeated.
    err = {m: np.abs(forecasts[m] - forecasts[bt.ACTUAL]).mean() for m in ("auto_ets", "seasonal_naive")}
    assert err["auto_ets"] <= err["seasonal_naive"]


def test_default_cutoffs_and_bad_arguments():
    assert bt.default_cutoffs(D(2024, 3, 31), 7, 3, 14) == [D(2024, 2, 25), D(2024, 3, 10), D(2024, 3, 24)]
    with pytest.raises(bt.BacktestError, match="must be >= 1"):
        bt.default_cutoffs(D(2024, 3, 31), 7, 0, 14)
    with pytest.raises(bt.BacktestError, match="unknown method"):
        bt.backtest_forecasts(_weekly([0, 1]), SMALL_MODEL, [START], methods=("prophet",))
    with pytest.raises(bt.BacktestError, match="hold-out rows"):  # nothing after the last day
        bt.backtest_forecasts(_weekly([0, 1]), SMALL_MODEL, [START + datetime.timedelta(days=13)],
                              methods=("seasonal_naive",))


@pytest.mark.slow
def test_no_cutoff_sees_a_later_day():
    """Poison every day after each cut-off: the forecasts of all methods must not move."""
    daily = make_tiny_daily()
    cfg = dataclasses.replace(SMALL_MODEL, epochs=1)
    cutoffs = [D(2024, 4, 20), D(2024, 5, 4)]
    clean, _ = bt.backtest_forecasts(daily, cfg, cutoffs)
    for cutoff in cutoffs:
        poisoned = daily.copy()
        later = pd.to_datetime(poisoned[s.DATE]).dt.date > cutoff
        poisoned.loc[later, s.REVENUE] = 1e9
        dirty, _ = bt.backtest_forecasts(poisoned, cfg, [cutoff])
        expected = clean[clean[bt.CUTOFF] == cutoff].reset_index(drop=True)
        assert (dirty[bt.ACTUAL] == 1e9).all()  # the poison did reach the actuals...
        for method in bt.METHODS:  # ...and no forecast
            np.testing.assert_allclose(dirty[method], expected[method], rtol=1e-5, err_msg=method)


@pytest.mark.slow
def test_cli_backtest_prints_one_json_object_and_writes_the_store(tmp_path):
    config = tmp_path / "trendrec.toml"
    config.write_text("[model]\nlookback = 14\nhorizon = 7\nunits = 4\nepochs = 1\nval_days = 21\n"
                      "patience = 1\n", encoding="utf-8")
    write_daily(tmp_path / "store", make_tiny_daily())
    out = subprocess.run([sys.executable, "-m", "recsys.cli", "backtest", "--config", str(config), "--store",
                          str(tmp_path / "store"), "--cutoffs", "2", "--step", "7", "--run-id", "bt1",
                          "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)  # exactly one JSON object
    assert summary["cutoffs"] == ["2024-05-15", "2024-05-22"]  # last day 2024-05-29 - 7, then 7 earlier
    saved = json.loads((tmp_path / "store" / "backtest" / "bt1.json").read_text())
    assert set(saved["overall"]) == set(bt.METHODS) and set(saved["per_segment"]) == {"a", "b", "c"}
    assert saved["overall"]["model"]["mase"] == pytest.approx(summary["mase"]["model"])


def test_cli_backtest_on_too_little_data_ends_in_one_line(tmp_path):
    """The forecaster's error reaches stderr once, as the CLI's line, not also as an ERROR log record (issue 31)."""
    write_daily(tmp_path / "store", make_tiny_daily(90))  # under lookback 84 + horizon 14 + val_days 42
    out = subprocess.run([sys.executable, "-m", "recsys.cli", "backtest", "--store", str(tmp_path / "store"),
                          "--cutoffs", "1", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        "trendrec backtest: error: " + json.loads(out.stdout)["error"]], out.stderr
    assert "too little data" in out.stderr
