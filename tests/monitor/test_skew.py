"""Training-serving skew: the batch rerank and the HTTP service (real uvicorn on loopback) count what the
production release could not score, per day, and `drift` compares those shares with the release's own."""

import datetime
import json

import httpx
import pandas as pd

from pipeline import schemas as s
from pipeline.store import Store
from recsys.monitor.drift import run_drift
from recsys.monitor.skew import SkewCounter, read_skew
from recsys.rank.rerank import run_rerank
from recsys.serve.app import create_app, serving
from tests.monitor.conftest import CUT, SEGMENTS, shop_store

TRENDS = pd.DataFrame({s.SEGMENT: list(SEGMENTS), s.TREND: [0.1, -0.1, 0.2, 0.0]})
# the release scored c001 (items br00, ca00) and c002 (br01)
SCORES = pd.DataFrame({s.USER_ID: ["c001", "c001", "c002"], s.ITEM_ID: ["br00", "ca00", "br01"],
                       s.SCORE: [0.9, 0.5, 0.4]})
TODAY = str(datetime.datetime.now(datetime.timezone.utc).date())


def test_the_batch_counts_what_it_could_not_score(tmp_path, push_version):
    cfg = shop_store(tmp_path)
    version = push_version(cfg, TRENDS, scores=SCORES)
    lists = pd.DataFrame({s.USER_ID: ["c001", "c001", "c001", "zz", "zz"],
                          s.ITEM_ID: ["br00", "xx", "br01", "ca00", "yy"],
                          s.SEGMENT: ["bread", "bread", "gone", "cakes", "gone"],
                          s.BASE_SCORE: [1.0, 0.5, 0.2, 1.0, 0.1]})
    lists.to_parquet(tmp_path / "lists.parquet")
    run_rerank(cfg, tmp_path / "lists.parquet")
    counts = read_skew(Store(cfg.store))
    assert counts == {TODAY: {version: {"lists": 2, "rows": 5, "unknown_customers": 1, "unknown_items": 2,
                                        "unknown_segments": 2}}}
    run_rerank(cfg, tmp_path / "lists.parquet")  # the same rerank again the same day replaces its counts
    assert read_skew(Store(cfg.store))[TODAY][version]["rows"] == 5
    lists.to_parquet(tmp_path / "other.parquet")  # another list, another output: counted beside the first
    run_rerank(cfg, tmp_path / "other.parquet")
    assert read_skew(Store(cfg.store))[TODAY][version]["rows"] == 10


def test_the_service_counts_per_request_and_writes_them_when_it_stops(tmp_path, push_version):
    cfg = shop_store(tmp_path)
    version = push_version(cfg, TRENDS, scores=SCORES)
    app = create_app(cfg)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        for user in ("c002", "stranger", None):
            body = {"user_id": user, "candidates": [{"item_id": "br01", "segment": "bread", "base_score": 1.0},
                                                    {"item_id": "nope", "segment": "shoes", "base_score": 0.5}]}
            assert http.post("/rerank", json=body).status_code == 200
    [record] = (Store(cfg.store).skew / TODAY).glob("serve-*.json")
    assert json.loads(record.read_text())["versions"] == {version: {
        "lists": 3, "rows": 6, "unknown_customers": 2, "unknown_items": 3, "unknown_segments": 3}}


def test_drift_fails_a_served_share_far_above_the_releases_own(tmp_path, push_version):
    cfg = shop_store(tmp_path)
    version = push_version(cfg, TRENDS, scores=SCORES)
    counter = SkewCounter(Store(cfg.store), "serve")
    counter.count(version, lists=10, rows=100, unknown_customers=9, unknown_items=80, unknown_segments=0)
    counter.flush()
    checks = {c["check"]: c for c in run_drift(cfg, reference_end=CUT, write=False)["checks"]}
    # the release scored 2 of the shop's 60 customers and 3 of its 60 items: its own shares are high
    assert checks["skew:customers"]["passed"] and checks["skew:customers"]["value"] == 0.9
    assert checks["skew:segments"]["passed"] and checks["skew:segments"]["details"]["release_share"] == 0.0
    counter.count(version, rows=100, unknown_segments=60)
    counter.flush()
    checks = {c["check"]: c for c in run_drift(cfg, reference_end=CUT, write=False)["checks"]}
    assert not checks["skew:segments"]["passed"]
    assert "segments: 30% of what was served" in checks["skew:segments"]["reason"]
