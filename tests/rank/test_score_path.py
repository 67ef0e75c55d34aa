"""One score path: the batch (run_rerank) and a real HTTP service rank the same lists of one release alike.

The release is built by hand, as the registry lays one out: trend table, push-time scores, metadata.json
with the file digests, production.json. Both paths must give every list the same order, final scores,
probabilities, trends and signals: pairs the release scored by the customer model, the other pairs by
their segment's trend, unknown segments (and none) neutral. Neither path may import TensorFlow.
"""

import dataclasses
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.store import Store, write_json
from recsys import registry
from recsys.nextbasket.scores import SCORES_SCHEMA
from recsys.rank.rerank import run_rerank
from recsys.rank.scores import ScoreIndex, ScoresError
from recsys.serve.app import create_app, serving
from tests.conftest import ROOT

TRENDS = pd.DataFrame({s.SEGMENT: ["up", "down", "flat"], s.TREND: [0.5, -0.5, 0.0]})
SCORES = pd.DataFrame({  # what the release was pushed with; "zz" and "other" are in no list
    s.USER_ID: ["17850", "17850", "17850", "u2", "other"],
    s.ITEM_ID: ["a", "b", "zz", "c", "a"],
    s.SCORE: [0.4, 0.2, 0.99, 0.9, 0.95]})
LISTS = {  # user -> [(item, segment, base_score)]
    "17850": [("a", "up", 1.0), ("b", "down", 1.2), ("c", "new", 0.9), ("d", None, 1.1), ("e", "up", 0.5)],
    "u2": [("c", "flat", -1.0), ("x", "down", 2.0), ("y", "up", -3.0)],
    "guest": [("a", "up", 1.0), ("b", "down", 1.0), ("q", "shoes", 5.0)],  # scored items, but not for them
}
LAYOUTS = {"legacy": {"forecast": ".", "nextbasket": "customers"},
           "parts": {"forecast": "forecast", "nextbasket": "nextbasket"}}


@pytest.fixture(autouse=True)
def _own_warnings(monkeypatch):
    """The service logs each unknown segment once per process: keep this module's off the others' tests."""
    import recsys.serve.app

    monkeypatch.setattr(recsys.serve.app, "_WARNED", set())


def write_release(models: Path, version: str, layout: str) -> Path:
    """models/<version> in ``layout`` with TRENDS and SCORES, digests in metadata.json, and production."""
    folder = models / version
    forecast, nextbasket = (folder / LAYOUTS[layout][part] for part in ("forecast", "nextbasket"))
    for path in (forecast, nextbasket):
        path.mkdir(parents=True, exist_ok=True)
    TRENDS.to_parquet(forecast / registry.TREND_FILE, index=False)
    for part in (forecast, nextbasket):  # a model that is loaded fails: re-ranking must not load one
        (part / "model.keras").write_bytes(b"placeholder: re-ranking never loads a model")
        (part / "recommender.json").write_text("{}")
    full = SCORES.assign(**{s.SEGMENT: "", s.SOURCE: "test"})[SCORES_SCHEMA.names]
    pq.write_table(pa.Table.from_pandas(full, schema=SCORES_SCHEMA, preserve_index=False),
                   nextbasket / registry.SCORES_FILE)
    meta = {"version": version, registry.FILES_KEY: registry.file_digests(folder)}
    if layout == "parts":
        meta["parts"] = {"forecast": {}, "nextbasket": {"scores": {"pairs": len(SCORES)}}}
    write_json(meta, folder / registry.METADATA_FILE)
    write_json({"version": version, "history": []}, models / registry.PRODUCTION_FILE)
    return folder


def _batch(cfg, tmp_path) -> tuple[dict, pd.DataFrame]:
    rows = [(user, item, seg, base) for user, items in LISTS.items() for item, seg, base in items]
    path = tmp_path / "lists.parquet"
    pd.DataFrame(rows, columns=list(s.CANDIDATE_COLUMNS)).to_parquet(path, index=False)
    summary = run_rerank(cfg, path)
    return summary, pd.read_parquet(summary["output"])


def _served(cfg) -> dict[str, dict]:
    with serving(create_app(cfg)) as url, httpx.Client(base_url=url, timeout=10) as http:
        out = {}
        for user, items in LISTS.items():
            cands = [{"item_id": i, "segment": seg, "base_score": base} for i, seg, base in items]
            resp = http.post("/rerank", json={"user_id": user, "candidates": cands})
            assert resp.status_code == 200, resp.text
            out[user] = resp.json()
        return out


@pytest.mark.parametrize("layout", ["legacy", "parts"])
def test_batch_and_http_give_the_same_lists(small_config, tmp_path, layout):
    rerank = dataclasses.replace(small_config.rerank, weight=0.4, customer_weight=0.8)
    cfg = dataclasses.replace(small_config, rerank=rerank)
    write_release(Store(cfg.store).ensure().models, "v0001", layout)
    summary, batch = _batch(cfg, tmp_path)
    served = _served(cfg)
    assert summary["model_version"] == "v0001" and {b["model_version"] for b in served.values()} == {"v0001"}
    for user, body in served.items():
        rows = batch[batch[s.USER_ID] == user]
        items = body["items"]
        assert [i["item_id"] for i in items] == rows[s.ITEM_ID].tolist(), user
        assert [i["final_score"] for i in items] == rows[s.FINAL_SCORE].tolist(), user  # exact: one path
        assert [i["signal"] for i in items] == rows[s.SIGNAL].tolist(), user
        assert [i["trend"] for i in items] == rows[s.TREND].tolist(), user
        assert [i["rank"] for i in items] == rows[s.RANK].tolist(), user
        assert [np.nan if i["score"] is None else i["score"] for i in items] == pytest.approx(
            rows[s.SCORE].tolist(), nan_ok=True, rel=0, abs=0), user
    signal = {(u, i["item_id"]): i["signal"] for u, b in served.items() for i in b["items"]}
    # the release's pairs by the model; the rest fall back to the segment trend; unknown segments neutral
    assert [signal["17850", i] for i in "abcde"] == ["customer_model"] * 2 + ["base"] * 2 + ["segment_trend"]
    assert [signal["u2", i] for i in "cxy"] == ["customer_model"] + ["segment_trend"] * 2
    assert [signal["guest", i] for i in "abq"] == ["segment_trend"] * 2 + ["base"]
    score = {(u, i["item_id"]): i["score"] for u, b in served.items() for i in b["items"]}
    assert score["17850", "a"] == float(np.float32(0.4))  # the push-time probability, as stored
    assert score["guest", "a"] is None
    assert [served[u]["customer_known"] for u in LISTS] == [True, True, False]
    unknown = {}
    for body in served.values():
        assert body["unknown_segments"]["count"] == sum(1 for i in body["items"] if i["signal"] == "base")
        for seg in body["unknown_segments"]["segments"]:
            unknown[seg] = unknown.get(seg, 0) + 1
    assert summary["unknown_segments"] == unknown == {"<null>": 1, "new": 1, "shoes": 1}
    assert summary["signals"] == {"base": 3, "segment_trend": 5, "customer_model": 3}
    assert summary["customers_scored"] == 2


def test_a_release_without_scores_ranks_by_trends_in_both(small_config, tmp_path):
    folder = write_release(Store(small_config.store).ensure().models, "v0001", "legacy")
    (folder / "customers" / registry.SCORES_FILE).unlink()
    meta = registry.read_metadata(folder) | {registry.FILES_KEY: registry.file_digests(folder)}
    write_json(meta, folder / registry.METADATA_FILE)
    summary, batch = _batch(small_config, tmp_path)
    served = _served(small_config)
    assert summary["signals"]["customer_model"] == 0 and summary["customers_scored"] == 0
    for user, body in served.items():
        rows = batch[batch[s.USER_ID] == user]
        assert [i["item_id"] for i in body["items"]] == rows[s.ITEM_ID].tolist()
        assert [i["final_score"] for i in body["items"]] == rows[s.FINAL_SCORE].tolist()
        assert not body["customer_known"] and all(i["score"] is None for i in body["items"])


def test_score_index_reads_only_the_users_asked_for(tmp_path):
    folder = write_release(tmp_path / "models", "v0001", "legacy")
    path = folder / "customers" / registry.SCORES_FILE
    full, some = ScoreIndex.load(path), ScoreIndex.load(path, ["17850", "nobody"])
    assert (len(full), len(some)) == (3, 1) and "17850" in some and "u2" not in some
    assert some.lookup("17850") == pytest.approx({"a": 0.4, "b": 0.2, "zz": 0.99})
    rows = ["17850", "17850", "u2", "u2", None, "nobody"], ["b", "c", "c", "a", "a", "a"]
    got = full.probabilities(*rows)
    assert got[:3] == pytest.approx([0.2, np.nan, 0.9], nan_ok=True) and np.isnan(got[3:]).all()
    for user in ("17850", "u2", None, "nobody"):  # one id for a whole list (the service) reads the same
        items = ["a", "b", "c", "zz", "q"]
        np.testing.assert_array_equal(full.probabilities(user, items), full.probabilities([user] * 5, items))
    assert full.lookup(None) == {} and np.isnan(ScoreIndex.empty().probabilities(["u"], ["a"])).all()
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({s.USER_ID: ["u"], s.ITEM_ID: ["a"], s.SCORE: [1.5]}).to_parquet(bad)
    with pytest.raises(ScoresError, match="probabilities in \\[0, 1\\]"):
        ScoreIndex.load(bad)
    bad.write_bytes(b"PAR1 truncated")
    with pytest.raises(ScoresError, match="cannot read customer scores"):
        ScoreIndex.load(bad)


def test_rank_and_serve_import_no_tensorflow_and_no_model():
    code = ("import sys, recsys.rank.rerank, recsys.rank.signals, recsys.rank.scores, recsys.serve.app; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
            "or m.startswith(('recsys.nextbasket', 'recsys.forecast'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True, cwd=ROOT)  # this checkout's recsys
    assert out.stdout.strip() == "[]", out.stdout
