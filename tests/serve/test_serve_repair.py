"""A production version that failed to load is loaded again once it is repaired, without production.json
changing: a request stats the broken version's files (no hash) and reloads when one changed, or after
``RETRY_SECONDS``; until then requests do not load it again."""

import pandas as pd

from pipeline import schemas as s
from pipeline.store import Store
from recsys import registry
from recsys.serve.app import TrendState

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})


def _broken_v0002(small_config, push_version):
    store = Store(small_config.store).ensure()
    assert push_version(small_config, TRENDS) == "v0001"
    state = TrendState(store)
    state.refresh()
    assert push_version(small_config, TRENDS.assign(**{s.TREND: [-0.5, 0.5]})) == "v0002"
    trend = next((store.models / "v0002").rglob(registry.TREND_FILE))
    good = trend.read_bytes()
    trend.write_bytes(b"PAR1 truncated")
    state.refresh()
    assert (state.version, state.reload_error is not None) == ("v0001", True)  # degraded: v0001 serves
    return state, trend, good


def test_a_repaired_version_is_loaded_at_the_next_request(small_config, push_version, monkeypatch):
    state, trend, good = _broken_v0002(small_config, push_version)
    calls = []
    real = registry.production
    monkeypatch.setattr(registry, "production", lambda *a: calls.append(1) or real(*a))
    state.refresh()
    state.refresh()
    assert calls == []  # nothing changed and no retry is due: a stat per file, no load
    trend.write_bytes(good)  # the repair, in place; production.json unchanged
    state.refresh()
    assert (state.version, state.reload_error, state.trends) == ("v0002", None, {"up": -0.5, "down": 0.5})
    assert calls == [1]


def test_a_failed_load_is_retried_after_the_interval(small_config, push_version, monkeypatch):
    state, _, _ = _broken_v0002(small_config, push_version)
    calls = []
    real = registry.production
    monkeypatch.setattr(registry, "production", lambda *a: calls.append(1) or real(*a))
    state._retry_at = 0.0  # as if RETRY_SECONDS had passed
    state.refresh()
    assert calls == [1] and state.version == "v0001" and "v0002" in state.reload_error
