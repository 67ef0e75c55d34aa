"""The HTTP service in a real uvicorn server on loopback: valid and invalid requests, limits, hot reload.

Versions here hold hand-written trend tables, pushed through the registry (the ``push_version``
fixture of tests/conftest.py); the service never loads model.keras, so placeholder model files do,
except in the promote/rollback test, which pushes the session's trained model as a real push would.
"""

import dataclasses
import json
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import IngestConfig
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store
from recsys import registry
from recsys.rank.rerank import rerank
from recsys.rank.signals import ReleaseSignals
from recsys.serve.app import create_app, rerank_list, serving
from recsys.serve.schema import REQUEST

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down"], s.TREND: [0.5, -0.5]})
LIST = [{"item_id": "x", "segment": "up", "base_score": 1.0},
        {"item_id": "y", "segment": "down", "base_score": 1.2},
        {"item_id": "z", "segment": "new", "base_score": 0.9},
        {"item_id": "w", "segment": None, "base_score": 1.2}]


@pytest.fixture
def store(small_config, push_version):
    store = Store(small_config.store).ensure()
    assert push_version(small_config, TRENDS) == "v0001"  # and production
    return store


@pytest.fixture
def client(small_config, store):
    app = create_app(small_config, max_bytes=2000, max_candidates=5)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def test_rerank_list_matches_the_batch_rerank():
    req = REQUEST.validate_python({"candidates": LIST})
    got, unknown = rerank_list(req, ReleaseSignals.of(TRENDS), 0.4)
    frame = pd.DataFrame(LIST).assign(**{s.USER_ID: "u"})
    batch = rerank(frame, TRENDS, 0.4)
    assert [i["item_id"] for i in got] == batch[s.ITEM_ID].tolist()
    assert [i["final_score"] for i in got] == batch[s.FINAL_SCORE].tolist()  # the same path: exact
    assert unknown == {"count": 2, "segments": ["<null>", "new"]}


def test_valid_request_by_hand(client, caplog):
    with caplog.at_level("WARNING", logger="recsys.serve.app"):
        resp = client.post("/rerank", json={"user_id": "u1", "weight": 0.4, "candidates": LIST})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # final = 0.6 * base_pct + 0.4 * trend_pct (recsys.rank.blend); base pcts z .25, x .5, y and w .875;
    # trends x .5, y -.5, z and w unknown (0) -> pcts x 1, y .25, z and w .625
    # w .525 + .25 = .775, x .3 + .4 = .7, y .525 + .1 = .625, z .15 + .25 = .4
    assert [i["item_id"] for i in body["items"]] == ["w", "x", "y", "z"]
    assert [i["final_score"] for i in body["items"]] == pytest.approx([0.775, 0.7, 0.625, 0.4])
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    assert [i["trend"] for i in body["items"]] == [0.0, 0.5, -0.5, 0.0]
    assert [i["signal"] for i in body["items"]] == ["base", "segment_trend", "segment_trend", "base"]
    assert body["unknown_segments"] == {"count": 2, "segments": ["<null>", "new"]}  # reported, not silent
    assert any("new" in r.getMessage() and "trendrec segments" in r.getMessage() for r in caplog.records)
    assert (body["user_id"], body["model_version"], body["weight"], body["customer_known"]) == ("u1", "v0001", 0.4, False)
    default = client.post("/rerank", json={"candidates": LIST[:1]}).json()
    assert default["weight"] == 0.0 and default["user_id"] is None  # no weight chosen by the release, none set
    assert client.post("/rerank", json={"candidates": []}).json()["items"] == []
    health = client.get("/health").json()
    assert health == {"status": "ok", "model_version": "v0001", "segments": 2, "customers": 0, "reload_error": None,
                      "live_results": None}


def _week(version, start, production, baseline):
    return [{"version": version, "family": "nextbasket", "start": start, "end": start, "method": m,
             "metric": "recall@10", "value": v, "customers": 10}
            for m, v in (("production", production), ("tifu_knn", baseline))]


def test_health_is_degraded_while_production_trails_on_live_results(client, store):
    from recsys.monitor.live import append_results

    append_results(store, _week("v0001", "2024-01-01", 0.30, 0.20) + _week("v0001", "2024-01-08", 0.10, 0.20))
    assert client.get("/health").json()["status"] == "ok"  # one week behind: under monitor.trailing_weeks (2)
    append_results(store, _week("v0001", "2024-01-15", 0.15, 0.25))  # the table changed: read again
    resp = client.get("/health")
    health = resp.json()
    assert resp.status_code == 200 and health["status"] == "degraded" and health["reload_error"] is None
    assert health["live_results"].startswith("production v0001 trails the best baseline on live results 2 week(s)")
    assert "Recall@10 0.1500 against tifu_knn 0.2500" in health["live_results"]
    assert health["live_results"].endswith("run `trendrec models rollback`")


def test_a_known_customer_is_ranked_by_the_push_time_scores(small_config, push_version):
    scores = pd.DataFrame({s.USER_ID: ["17850", "17850", "other"], s.ITEM_ID: ["z", "y", "x"],
                           s.SCORE: [0.4, 0.2, 0.9]})
    assert push_version(small_config, TRENDS, scores=scores) == "v0001"
    with serving(create_app(small_config)) as url, httpx.Client(base_url=url, timeout=10) as http:
        body = http.post("/rerank", json={"user_id": "17850", "candidates": LIST}).json()
        # z (0.4) and y (0.2) were scored for 17850: first, by probability; x and w by the trend path
        assert [i["item_id"] for i in body["items"]][:2] == ["z", "y"] and body["customer_known"]
        assert [i["signal"] for i in body["items"]][:2] == ["customer_model"] * 2
        assert [i["score"] for i in body["items"]][:2] == pytest.approx([0.4, 0.2])
        guest = http.post("/rerank", json={"candidates": LIST}).json()  # no user id: segment trends
        assert not guest["customer_known"] and "customer_model" not in {i["signal"] for i in guest["items"]}
        assert http.get("/health").json()["customers"] == 2


def test_a_numeric_user_id_and_items_without_a_segment(small_config, push_version, tmp_path):
    """A shop sending its numeric customer id and no segments: the id is its string, the store gives segments."""
    columns = {f: f for f in ("event_time", "item_id", "quantity", "price", "user_id", "segment")}
    cfg = dataclasses.replace(small_config, ingest=IngestConfig(columns=columns))
    (tmp_path / "events.csv").write_text("event_time,item_id,quantity,price,user_id,segment\n"
                                         "2024-01-01 10:00:00,x,1,1.0,17850,down\n"  # x's latest is "up"
                                         "2024-02-01 10:00:00,x,1,1.0,17850,up\n2024-01-05 10:00:00,y,2,2.0,9,down\n")
    run_ingest(cfg, tmp_path / "events.csv")
    scores = pd.DataFrame({s.USER_ID: ["17850"], s.ITEM_ID: ["z"], s.SCORE: [0.4]})
    assert push_version(cfg, TRENDS, scores=scores) == "v0001"
    cands = [{"item_id": "y", "base_score": 0.9}, {"item_id": "x", "segment": None, "base_score": 0.1},
             {"item_id": "nope", "segment": "", "base_score": 0.5}, {"item_id": "z", "base_score": 0.2}]
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as http:
        resp = http.post("/rerank", json={"user_id": 17850, "weight": 1.0, "candidates": cands})
        assert resp.status_code == 200, resp.text  # was 422: a number is read as its string
        body = resp.json()
        assert body["user_id"] == "17850" and body["customer_known"]  # the same customer as "17850"
        assert [(i["item_id"], i["signal"], i["trend"]) for i in body["items"]] == [
            ("z", "customer_model", 0.0), ("x", "segment_trend", 0.5), ("nope", "base", 0.0),
            ("y", "segment_trend", -0.5)]  # x and y got their segments from the store's events
        assert body["unknown_items"] == {"count": 2, "items": ["nope", "z"]}  # the events never had them
        for bad in (True, 17850.5, 2 ** 64):
            assert http.post("/rerank", json={"user_id": bad, "candidates": cands}).status_code == 422


@pytest.mark.parametrize("payload, reason", [
    ({"candidates": [{"item_id": "x", "segment": "up"}]}, "base_score"),
    ({"candidates": [{"item_id": "", "segment": "up", "base_score": 1}]}, "item_id"),
    ({"candidates": [{"item_id": "x", "base_score": "high"}]}, "base_score"),
    ({"candidates": LIST, "weight": 1.5}, "weight"),
    ({"candidates": LIST, "colour": "red"}, "colour"),
    ({"items": LIST}, "candidates"),
])
def test_invalid_requests_get_422_with_a_reason(client, payload, reason):
    resp = client.post("/rerank", json=payload)
    assert resp.status_code == 422
    assert reason in json.dumps(resp.json()["detail"])


def test_non_json_and_non_finite_scores_are_refused(client):
    assert client.post("/rerank", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    nan = b'{"candidates": [{"item_id": "x", "segment": "up", "base_score": NaN}]}'
    resp = client.post("/rerank", content=nan, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "finite" in resp.text


def test_size_limits_give_413(client):
    six = {"candidates": [LIST[0]] * 6}
    resp = client.post("/rerank", json=six)
    assert resp.status_code == 413 and "at most 5" in resp.json()["detail"]
    big = {"candidates": [{"item_id": "x" * 200, "segment": "s" * 200, "base_score": 1.0}] * 5}
    data = json.dumps(big).encode()
    assert len(data) > 2000
    resp = client.post("/rerank", json=big)
    assert resp.status_code == 413 and "2000 bytes" in resp.json()["detail"]
    chunks = (data[i:i + 500] for i in range(0, len(data), 500))
    resp = client.post("/rerank", content=chunks, headers={"content-type": "application/json"})  # chunked
    assert resp.status_code == 413
    assert client.get("/health").status_code == 200  # the server is still fine


def test_hot_reload_and_a_broken_version_keeps_serving(client, store, small_config, push_version):
    assert push_version(small_config, TRENDS.assign(**{s.TREND: [-0.5, 0.5]})) == "v0002"
    assert registry.read_production(store) == {"version": "v0002", "history": ["v0001"]}
    body = client.post("/rerank", json={"weight": 0.4, "candidates": LIST[:2]}).json()
    assert body["model_version"] == "v0002" and [i["item_id"] for i in body["items"]] == ["y", "x"]
    assert push_version(small_config, TRENDS) == "v0003"  # production, then broken before any request
    (store.models / "v0003" / registry.TREND_FILE).write_bytes(b"PAR1 truncated")
    assert registry.read_production(store) == {"version": "v0003", "history": ["v0001", "v0002"]}
    health = client.get("/health").json()
    assert health["model_version"] == "v0002" and "v0003" in health["reload_error"]
    assert health["status"] == "degraded"  # not "ok": production is v0003, and it is not what serves
    assert client.post("/rerank", json={"candidates": LIST[:2]}).json()["model_version"] == "v0002"


def test_no_production_model_answers_503_then_picks_one_up(small_config, push_version):
    Store(small_config.store).ensure()  # an empty store: nothing was ever pushed
    with serving(create_app(small_config)) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/health").status_code == 503
        resp = http.post("/rerank", json={"candidates": LIST})
        assert resp.status_code == 503 and "trendrec push" in resp.text
        assert push_version(small_config, TRENDS) == "v0001"
        assert http.post("/rerank", json={"candidates": LIST}).json()["model_version"] == "v0001"
        assert "RerankRequest" in http.get("/openapi.json").text


@pytest.mark.slow
def test_promote_and_rollback_are_picked_up_without_restart(small_config, trained_forecaster, push_version):
    store = Store(small_config.store).ensure()
    assert push_version(small_config, TRENDS, trained_forecaster) == "v0001"
    assert push_version(small_config, TRENDS.assign(**{s.TREND: [-0.5, 0.5]}), trained_forecaster) == "v0002"
    registry.rollback(store)  # v0001 in production, v0002 waiting
    assert registry.read_production(store) == {"version": "v0001", "history": []}
    with serving(create_app(small_config)) as url, httpx.Client(base_url=url, timeout=10) as http:
        first = http.post("/rerank", json={"weight": 0.6, "candidates": LIST[:2]}).json()
        assert first["model_version"] == "v0001" and first["items"][0]["item_id"] == "x"
        registry.promote(store, "v0002")
        promoted = http.post("/rerank", json={"weight": 0.6, "candidates": LIST[:2]}).json()
        assert promoted["model_version"] == "v0002" and promoted["items"][0]["item_id"] == "y"
        registry.rollback(store)
        assert http.get("/health").json()["model_version"] == "v0001"


def test_the_service_does_not_import_tensorflow():
    code = "import sys, recsys.serve.app; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_name_no_external_host_and_their_assets_are_served(client, page):
    """/docs and /redoc render offline: every script, style and icon comes from this server."""
    import re

    resp = client.get(page)
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", resp.text), resp.text  # no CDN, no fonts
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", resp.text)
    assets += re.findall(r"""url:\s*["']([^"']+)["']""", resp.text)  # swagger-ui loads the schema by URL
    assert any(a.endswith(".js") for a in assets), assets
    for url in assets:
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url


def test_a_reload_verifies_the_version_once(store, monkeypatch):
    from recsys.serve.app import TrendState

    calls = []
    real = registry.verify_version
    monkeypatch.setattr(registry, "verify_version", lambda *a: calls.append(a[1]) or real(*a))
    state = TrendState(store)
    state.refresh()
    assert state.version == "v0001" and state.trends == {"up": 0.5, "down": -0.5}
    assert calls == ["v0001"]  # trends and scores are read from the one verified directory
