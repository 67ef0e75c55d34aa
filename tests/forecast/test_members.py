"""The statistical members that read a year back (year_ago, MSTL), by hand and without leakage; fitted in
worker processes, the same forecasts bit for bit."""

import datetime

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import ModelConfig
from recsys.forecast import combination as cb
from recsys.forecast import members as mb

D = datetime.date
START = D(2022, 1, 3)  # a Monday


def _frame(y: np.ndarray, segment: str = "x") -> pd.DataFrame:
    days = [START + datetime.timedelta(days=i) for i in range(len(y))]
    return pd.DataFrame({s.SEGMENT: segment, s.DATE: days, s.REVENUE: y})


def _year_ago(y: np.ndarray, horizon: int = 14) -> np.ndarray:
    daily = _frame(y)
    cutoff = daily[s.DATE].iloc[-1]
    out = mb.statistical_forecasts(daily, s.REVENUE, cutoff, horizon, 7, [mb.YEAR_AGO])[mb.YEAR_AGO]
    assert list(out[s.DATE]) == [cutoff + datetime.timedelta(days=h) for h in range(1, horizon + 1)]
    return out[s.FORECAST].to_numpy()


def test_year_ago_without_a_year_is_the_mean_of_the_last_four_same_weekdays():
    week = np.array([1.0, 2, 3, 4, 5, 6, 7])
    y = np.concatenate([m * week for m in [1.0] * 9 + [2.0, 3.0, 5.0, 7.0]])  # 91 days
    # every forecast day: the same weekday in the last four observed weeks, (2 + 3 + 5 + 7) / 4 times the week
    np.testing.assert_allclose(_year_ago(y, 14), np.tile(4.25 * week, 2))
    # the cut-off on a Thursday: Friday to Sunday's last four are weeks 2, 3, 5 and the one before (1)
    np.testing.assert_allclose(_year_ago(y[:-3], 7), np.r_[2.75 * week[4:], 4.25 * week[:4]])


def test_year_ago_carries_last_years_change_onto_this_years_level():
    n = mb.YEAR + 60
    y = np.full(n, 10.0)
    y[n - mb.YEAR - mb.RECENT:n - mb.YEAR] = 5.0  # a year ago the same four weeks sold half as much...
    y[n - mb.YEAR:n - mb.YEAR + 14] = 15.0  # ...and the two weeks after them three times that
    y[n - 40:] = 8.0  # today's level: 8
    # day h: 8 * (mean of last year's 7 days around it, 3 either side) / 5
    around = np.array([(3 * 5 + 4 * 15) / 7, (2 * 5 + 5 * 15) / 7, (5 + 6 * 15) / 7, *[15.0] * 8,
                       (6 * 15 + 10) / 7, (5 * 15 + 2 * 10) / 7, (4 * 15 + 3 * 10) / 7])
    np.testing.assert_allclose(_year_ago(y, 14), 8.0 * around / 5.0)


def test_year_ago_clips_last_years_change():
    n = mb.YEAR + 60
    y = np.full(n, 10.0)
    y[n - mb.YEAR - mb.RECENT:n - mb.YEAR] = 1.0  # 10 / 1: a change of 10x is read as 4x
    np.testing.assert_allclose(_year_ago(y, 7), 10.0 * mb.RATIO_BOUNDS[1])


def test_mstl_reads_a_yearly_cycle_with_two_years_of_history():
    t = np.arange(3 * mb.YEAR)
    y = 100 + 60 * np.sin(2 * np.pi * t / mb.YEAR) + 10 * np.sin(2 * np.pi * t / 7)
    cut = 3 * mb.YEAR - 120  # the cycle turns up over the next weeks
    daily = _frame(y[:cut])
    truth = y[cut:cut + 28]
    forecasts = mb.statistical_forecasts(daily, s.REVENUE, daily[s.DATE].iloc[-1], 28, 7,
                                         [mb.MSTL, "auto_ets", mb.YEAR_AGO])
    error = {m: np.abs(f[s.FORECAST].to_numpy() - truth).mean() for m, f in forecasts.items()}
    assert error[mb.MSTL] < 0.3 * error["auto_ets"], error
    assert error[mb.YEAR_AGO] < 0.5 * error["auto_ets"], error
    short = _frame(y[:mb.YEAR + 30])  # under two years: a weekly MSTL, which cannot know the cycle
    weekly = mb.statistical_forecasts(short, s.REVENUE, short[s.DATE].iloc[-1], 28, 7, [mb.MSTL])[mb.MSTL]
    assert np.isfinite(weekly[s.FORECAST]).all() and len(weekly) == 28


def test_every_member_scores_only_from_days_before_its_validation_cutoff():
    """Poison the days after a validation cut-off: no member's validation forecast may move."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * mb.YEAR + 70)
    y = (100 + 40 * np.sin(2 * np.pi * t / mb.YEAR)) * rng.lognormal(0, 0.1, len(t))
    daily = pd.concat([_frame(y, "a"), _frame(y[::-1].copy(), "b")], ignore_index=True)
    probe = cb.CombinedForecaster(ModelConfig(horizon=14), 7, {})
    origin = daily[s.DATE].max() - datetime.timedelta(days=28)
    cuts = [(origin, mb.STATISTICAL)]
    clean = cb.validation_table(daily, probe, cuts)
    poisoned = daily.assign(**{s.REVENUE: np.where(daily[s.DATE] > origin, 1e9, daily[s.REVENUE])})
    dirty = cb.validation_table(poisoned, probe, cuts)
    assert (dirty[cb.ACTUAL] == 1e9).all() and len(clean) == 2 * 14
    for member in mb.STATISTICAL:
        np.testing.assert_allclose(dirty[member], clean[member], rtol=1e-6, err_msg=member)


def _shop() -> pd.DataFrame:
    """Five segments: two years and more (yearly MSTL), under two, a short one, a flat one, and one that
    starts after the cut-off used below (absent from the forecasts)."""
    rng = np.random.default_rng(1)
    t = np.arange(2 * mb.YEAR + 60)
    y = (100 + 40 * np.sin(2 * np.pi * t / mb.YEAR) + 15 * np.sin(2 * np.pi * t / 7)) * rng.lognormal(0, 0.2, len(t))
    late = _frame(y[:10], "late")
    late[s.DATE] = late[s.DATE] + datetime.timedelta(days=len(t) - 10)
    return pd.concat([_frame(y, "long"), _frame(y[-mb.YEAR - 50:].copy(), "year"), _frame(y[-45:].copy(), "short"),
                      _frame(np.full(60, 5.0), "flat"), late], ignore_index=True)


def test_segments_fitted_in_worker_processes_give_one_processs_forecasts_bit_for_bit():
    daily = _shop()
    cutoff = daily[s.DATE].max() - datetime.timedelta(days=14)
    alone = mb.statistical_forecasts(daily, s.REVENUE, cutoff, 14, 7, mb.STATISTICAL, jobs=1)
    for jobs in (2, 3):
        split = mb.statistical_forecasts(daily, s.REVENUE, cutoff, 14, 7, mb.STATISTICAL, jobs=jobs)
        assert list(split) == list(alone)
        for member, frame in alone.items():
            assert sorted(frame[s.SEGMENT].unique()) == ["flat", "long", "short", "year"]
            pd.testing.assert_frame_equal(split[member], frame, check_exact=True, obj=f"{member}, jobs={jobs}")
            assert split[member][s.FORECAST].to_numpy().tobytes() == frame[s.FORECAST].to_numpy().tobytes()


def test_the_validation_table_is_the_same_in_processes(monkeypatch):
    daily = _shop()
    probe = cb.CombinedForecaster(ModelConfig(horizon=14), 7, {})
    last = daily[s.DATE].max()
    cuts = [(last - datetime.timedelta(days=d), mb.STATISTICAL) for d in (42, 28, 14)]
    monkeypatch.setenv(mb.JOBS_ENV, "1")
    alone = cb.validation_table(daily, probe, cuts)
    monkeypatch.setenv(mb.JOBS_ENV, "2")
    pd.testing.assert_frame_equal(cb.validation_table(daily, probe, cuts), alone, check_exact=True)


def test_member_jobs_reads_the_environment(monkeypatch):
    monkeypatch.delenv(mb.JOBS_ENV, raising=False)
    assert mb.member_jobs() == len(__import__("os").sched_getaffinity(0))
    monkeypatch.setenv(mb.JOBS_ENV, "3")
    assert mb.member_jobs() == 3
    for bad in ("0", "two", ""):
        monkeypatch.setenv(mb.JOBS_ENV, bad)
        with pytest.raises(mb.MemberError, match=mb.JOBS_ENV):
            mb.member_jobs()


def test_a_process_that_may_not_start_workers_fits_the_members_itself(monkeypatch, caplog):
    """A daemonic process (a task in Celery's prefork pool) may not have children: the members are then fitted
    in the process itself, with a warning once, and the forecasts are the same."""
    import multiprocessing

    daily = _shop()
    cutoff = daily[s.DATE].max() - datetime.timedelta(days=14)
    alone = mb.statistical_forecasts(daily, s.REVENUE, cutoff, 14, 7, mb.STATISTICAL, jobs=1)
    monkeypatch.setattr(mb, "_pool", None)
    monkeypatch.setattr(mb, "_pool_failed", [])
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)
    for _ in range(2):
        fitted = mb.statistical_forecasts(daily, s.REVENUE, cutoff, 14, 7, mb.STATISTICAL, jobs=2)
        for member, frame in alone.items():
            pd.testing.assert_frame_equal(fitted[member], frame, check_exact=True)
    assert mb._pool is None and len(mb._pool_failed) == 1
    assert sum("no worker processes here" in r.getMessage() for r in caplog.records) == 1
