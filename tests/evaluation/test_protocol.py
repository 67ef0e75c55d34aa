"""recsys.evaluation.protocol on the hand-counted log of conftest.py (cut-offs 2024-01-29 and 2024-02-05).

Who counts. At 02-05 (active window [01-08, 02-05), target week [02-05, 02-12)): u1 targets {a, d}
(x is a return), u2 {b, e, f}; u3 was not active, u4 buys nothing, the guest never counts. At 01-29
(active [01-01, 01-29), target [01-29, 02-05)): only u2, target {c}; u4 buys then but was not active.

g_topfreq (distinct known buyers in the 28 days before): at 02-05 c 3 (u1, u2, u4; u1's return
ignored), b 2, a 1, e 1 (the guest's e does not count) -> [c, b, a, e]; at 01-29 b 2, c 2, a 1 ->
[b, c, a]. Gains: rank 1 -> 1, 2 -> 1/log2 3 = 0.63093, 3 -> 0.5, 4 -> 1/log2 5 = 0.43068.
- 02-05 u1: a@3 -> recall 1/2, NDCG 0.5 / (1 + 0.63093) = 0.30657; repeat 1 (a), explore 0 (d).
- 02-05 u2: b@2, e@4 -> recall 2/3, NDCG 1.06161 / 2.13093 = 0.49819; repeat 1, explore 1/2.
- 01-29 u2: c@2 -> recall 1, NDCG 0.63093; repeat 1 (c bought on 01-15), no explore target.
Pooled over the 3 customer-weeks: recall (1/2 + 2/3 + 1) / 3 = 0.72222 (the mean of the two cut-off
means would be 0.79167), NDCG 0.47856, PHR 1, repeat 1 (3 customers), explore (0 + 1/2) / 2 = 0.25.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.evaluation.baselines import g_topfreq
from recsys.evaluation.protocol import ProtocolError, eligible_targets, last_cutoffs, recommend, run_protocol

from .conftest import CUTOFF, EARLIER

L3, L5 = 1 / math.log2(3), 1 / math.log2(5)
KEYS = {"recall@10", "ndcg@10", "phr@10", "repeat_recall@10", "explore_recall@10", "users"}


def test_cutoffs_end_at_the_last_full_week(tiny_events):
    assert last_cutoffs(tiny_events, 2) == [EARLIER, CUTOFF]  # last event 02-11: 02-05 + 7 = 02-12
    retail_end = pd.DataFrame({s.EVENT_DATE: [pd.Timestamp("2011-12-09").date()]})
    assert [c.isoformat() for c in last_cutoffs(retail_end, 6)] == [
        "2011-10-29", "2011-11-05", "2011-11-12", "2011-11-19", "2011-11-26", "2011-12-03"]


def test_population_excludes_inactive_customers_and_guests(tiny_events):
    targets = eligible_targets(tiny_events, CUTOFF)
    assert targets.values.tolist() == [["u1", "a"], ["u1", "d"], ["u2", "b"], ["u2", "e"], ["u2", "f"]]
    assert eligible_targets(tiny_events, EARLIER).values.tolist() == [["u2", "c"]]


def test_run_protocol_pooled_and_per_cutoff_by_hand(tiny_events):
    result = run_protocol(tiny_events, {"g_topfreq": g_topfreq}, [CUTOFF, EARLIER])
    assert set(result) == {"pooled", "cutoffs"}
    assert [row["cutoff"] for row in result["cutoffs"]] == ["2024-01-29", "2024-02-05"]
    early, late = (row["g_topfreq"] for row in result["cutoffs"])
    assert early.pop("explore_recall@10") is None  # no new item among the targets: undefined, JSON null
    assert early == pytest.approx({"recall@10": 1.0, "ndcg@10": L3, "phr@10": 1.0, "repeat_recall@10": 1.0,
                                   "users": 1})
    assert late["recall@10"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    pooled = result["pooled"]["g_topfreq"]
    assert set(pooled) == KEYS
    assert pooled["recall@10"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # 0.72222
    assert pooled["ndcg@10"] == pytest.approx((0.5 / (1 + L3) + (L3 + L5) / (1 + L3 + 0.5) + L3) / 3)
    assert pooled["phr@10"] == 1.0
    assert pooled["repeat_recall@10"] == 1.0
    assert pooled["explore_recall@10"] == pytest.approx(0.25)
    assert pooled["users"] == 3
    json.dumps(result, allow_nan=False)  # plain Python values only, valid JSON


def test_users_given_to_methods_are_the_eligible_customers(tiny_events):
    seen = []

    def spy(events, cutoff, users):
        seen.append((cutoff, list(users), events[s.EVENT_DATE].max()))
        return g_topfreq(events, cutoff, users)

    run_protocol(tiny_events, {"spy": spy}, [EARLIER, CUTOFF])
    assert [(c, u) for c, u, _ in seen] == [(EARLIER, ["u2"]), (CUTOFF, ["u1", "u2"])]
    assert all(last < cutoff for cutoff, _, last in seen)  # never an event on or after the cut-off


def test_recommend_ranks_by_score_then_item_and_cuts_at_k(tiny_events):
    def method(events, cutoff, users):
        return pd.DataFrame({s.USER_ID: ["u1"] * 12 + ["zz"],
                             s.ITEM_ID: [f"i{j:02d}" for j in range(12)] + ["a"],
                             "score": [1.0] * 6 + [2.0] * 6 + [9.0]})

    out = recommend(method, tiny_events, CUTOFF, np.array(["u1"], dtype=object), k=10)
    assert out[s.ITEM_ID].tolist() == [f"i{j:02d}" for j in [6, 7, 8, 9, 10, 11, 0, 1, 2, 3]]
    assert out[s.RANK].tolist() == list(range(1, 11))  # zz was not asked for


@pytest.mark.parametrize("bad", [
    pd.DataFrame({s.USER_ID: ["u1"], s.ITEM_ID: ["a"]}),  # no score column
    pd.DataFrame({s.USER_ID: ["u1", "u1"], s.ITEM_ID: ["a", "a"], "score": [1.0, 0.5]}),  # duplicate
])
def test_a_method_breaking_the_contract_is_refused(tiny_events, bad):
    with pytest.raises(ProtocolError, match="method at 2024-02-05"):
        recommend(lambda *_: bad, tiny_events, CUTOFF, np.array(["u1"], dtype=object))


def test_no_method_or_empty_log_is_refused(tiny_events):
    with pytest.raises(ProtocolError, match="no method"):
        run_protocol(tiny_events, {}, [CUTOFF])
    with pytest.raises(ProtocolError, match="empty"):
        last_cutoffs(tiny_events.iloc[:0])


def test_a_population_scores_only_those_customers_and_all_of_them_changes_nothing(tiny_events):
    seen = []

    def spy(events, cutoff, users):
        seen.append(list(users))
        return g_topfreq(events, cutoff, users)

    everyone = run_protocol(tiny_events, {"spy": spy}, [EARLIER, CUTOFF])
    same = run_protocol(tiny_events, {"spy": spy}, [EARLIER, CUTOFF],
                        population={EARLIER: np.array(["u2"]), CUTOFF: np.array(["u1", "u2", "u3"])})
    assert same == everyone  # u3 does not count at CUTOFF: the eligible ones are the whole population
    one = run_protocol(tiny_events, {"spy": spy}, [CUTOFF], population={CUTOFF: np.array(["u2"])})
    assert seen[-1] == ["u2"] and one["pooled"]["spy"]["users"] == 1
    assert one["pooled"]["spy"]["recall@10"] == pytest.approx(2 / 3)  # u2's alone (see the docstring)


def test_the_history_held_for_the_repeat_split_is_the_scored_customers_alone(tiny_events, monkeypatch):
    # At CUTOFF with u2 alone: u1, u4 and the guest bought before it too, but only u2's pairs can split
    # u2's targets, so the protocol keeps no copy of theirs while every method runs.
    from recsys.evaluation import metrics

    held = []
    score_users = metrics.score_users

    def spy(ranked, targets, history, k):
        held.append(history)
        return score_users(ranked, targets, history, k)

    monkeypatch.setattr(metrics, "score_users", spy)
    one = run_protocol(tiny_events, {"g_topfreq": g_topfreq}, [CUTOFF], population={CUTOFF: np.array(["u2"])})
    assert set(held[-1][s.USER_ID]) == {"u2"}
    assert sorted(held[-1][s.ITEM_ID]) == ["b", "b", "c", "c"]  # o4 {b, c}, o5 {b}, o8 {c}
    assert one["pooled"]["g_topfreq"]["users"] == 1
