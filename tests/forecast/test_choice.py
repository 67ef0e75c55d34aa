"""The "best" rule by hand: the best member alone unless the combination is clearly better on validation."""

import datetime

import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.forecast import choice as ch

D = datetime.date
ORIGINS = [D(2024, 3, 1), D(2024, 3, 15), D(2024, 3, 29), D(2024, 4, 12)]


def _table(forecasts: dict[str, dict[datetime.date, float]]) -> pd.DataFrame:
    """Two segments, one day per origin, actual 10 and scale 1: a forecast's MASE is its absolute error."""
    rows = [{s.SEGMENT: seg, ch.ORIGIN: o, s.DATE: o + datetime.timedelta(days=1), ch.ACTUAL: 10.0, ch.SCALE: 1.0,
             **{m: f.get(o, float("nan")) for m, f in forecasts.items()}} for seg in ("a", "b") for o in ORIGINS]
    return pd.DataFrame(rows)


def _members(lstm: float) -> dict[str, dict[datetime.date, float]]:
    # auto_ets: error 1 everywhere; auto_theta: 2, 2, 0.5, 0.5 (mean 1.25, worse than ETS); the LSTM only on
    # the last two origins (its validation days), error |lstm - 10| there
    return {"auto_ets": dict.fromkeys(ORIGINS, 9.0),
            "auto_theta": dict(zip(ORIGINS, [12.0, 12.0, 10.5, 10.5])),
            "lstm": dict.fromkeys(ORIGINS[2:], lstm)}


def test_a_member_with_fewer_cutoffs_is_ranked_on_the_cutoffs_it_shares():
    per_origin = {m: ch.shop_mase(t := _table(_members(10.8)), t[m]) for m in ("auto_ets", "auto_theta", "lstm")}
    assert per_origin["lstm"].to_dict() == pytest.approx({ORIGINS[2]: 0.8, ORIGINS[3]: 0.8})
    # ETS (1.0) before Theta (1.25) on all four; the LSTM (0.8) beats ETS (1.0) on their two shared ones
    assert ch.rank_members(per_origin) == ["lstm", "auto_ets", "auto_theta"]
    worse = {m: ch.shop_mase(t := _table(_members(11.2)), t[m]) for m in ("auto_ets", "auto_theta", "lstm")}
    assert ch.rank_members(worse) == ["auto_ets", "auto_theta", "lstm"]  # 1.2 > 1.0 on the shared ones


def test_the_best_member_alone_unless_the_combination_is_clearly_better():
    members = ["lstm", "auto_ets", "auto_theta"]
    # LSTM 10.8 and ETS 9.0 err on opposite sides: weights 1 : 0.8 ** 8 (the LSTM 0.856) cancel most of it
    weights, seen = ch.best_weights(_table(_members(10.8)), members, 2, 8.0, 0.02)
    w_lstm = 1 / (1 + 0.8 ** 8)
    assert weights == pytest.approx({"lstm": w_lstm, "auto_ets": 1 - w_lstm}) and seen["combined"]
    combined = abs(w_lstm * 10.8 + (1 - w_lstm) * 9.0 - 10)
    assert seen["combination_mase_shared"] == pytest.approx(combined, abs=1e-6)
    assert seen["best_mase_shared"] == pytest.approx(0.8) and seen["ranking"] == ["lstm", "auto_ets", "auto_theta"]
    # the same, but the combination must be better by half: 0.541 is not below 0.8 * 0.5
    assert ch.best_weights(_table(_members(10.8)), members, 2, 8.0, 0.5)[0] == {"lstm": 1.0}
    # both too high: the combination (0.83) is worse than the LSTM alone (0.8)
    high = _members(10.8) | {"auto_ets": dict.fromkeys(ORIGINS, 11.0)}
    weights, seen = ch.best_weights(_table(high), members, 2, 8.0, 0.02)
    assert weights == {"lstm": 1.0} and not seen["combined"]
    assert ch.best_weights(_table(_members(10.8)), members, 1, 8.0, 0.0)[0] == {"lstm": 1.0}  # top_k 1
