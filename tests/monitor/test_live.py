"""Live results: the production version's push-time scores judged on the weeks after its cut-off, counted
by hand on a tiny shop; P-TopFreq and TIFU-kNN beside it fitted at the cut-off (nothing after it)."""

import dataclasses
import datetime
import math

import pandas as pd
import pytest

from pipeline.config import IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline import schemas as s
from pipeline.store import Store, read_events
from recsys.evaluation.baselines import p_topfreq
from recsys.evaluation.protocol import EVENT_COLUMNS, run_protocol
from recsys.monitor.live import read_live_results, run_live_results
from tests.monitor.conftest import push_release

CUTOFF = datetime.date(2024, 3, 4)
D = lambda days: str(CUTOFF + datetime.timedelta(days=days))  # noqa: E731
# (day, customer, item): before the cut-off u1 bought a and b, u2 bought c; week 1 u1 buys a and d, u2 c;
# u9, new, buys z a lot in week 1 (a fit that saw week 1 would call z popular); week 2 u1 buys z
ROWS = [(-10, "u1", "a"), (-9, "u1", "b"), (-8, "u2", "c"), (-3, "u1", "a"),
        (1, "u1", "a"), (2, "u1", "d"), (3, "u2", "c"),
        *[(4, "u9", "z")] * 5, (5, "u8", "z"), (5, "u7", "z"),
        (8, "u1", "z"), (14, "u3", "a")]
SCORES = [("u1", "b", 0.9), ("u1", "d", 0.5), ("u2", "c", 0.7), ("u1", "z", 0.1)]


def _store(tmp_path):
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=IngestConfig(
        columns={f: f for f in ("event_time", "item_id", "quantity", "price", "user_id", "order_id", "segment")}))
    events = pd.DataFrame([{"event_time": f"{D(day)} 10:{n % 60:02d}:00", "item_id": item, "quantity": 1.0,
                            "price": 2.0, "user_id": user, "order_id": f"o{n}", "segment": "all"}
                           for n, (day, user, item) in enumerate(ROWS)])
    events.to_csv(tmp_path / "events.csv", index=False)
    run_ingest(cfg, tmp_path / "events.csv")
    return cfg


def _push(cfg, cutoff=CUTOFF):
    return push_release(cfg, cutoff, SCORES, segments=("all",))


def _figures(table, start, method):
    rows = table[(table["start"] == start) & (table["method"] == method) & (table["family"] == "nextbasket")]
    return dict(zip(rows["metric"], rows["value"])) | {"customers": int(rows["customers"].iloc[0])}


def test_live_results_counted_by_hand_and_appended_once(tmp_path):
    cfg = _store(tmp_path)
    version = _push(cfg)
    out = run_live_results(cfg)
    table = read_live_results(Store(cfg.store))
    assert sorted(table["start"].unique()) == [D(0), D(7)]  # the week from D(14) is not complete
    week1 = _figures(table, D(0), "production")
    # u1: targets a (repeat), d (explore); list b, d, z: d at rank 2. u2: target c (repeat) at rank 1.
    ndcg_u1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert week1 == pytest.approx({"recall@10": (0.5 + 1) / 2, "ndcg@10": (ndcg_u1 + 1) / 2, "phr@10": 1.0,
                                   "repeat_recall@10": (0 + 1) / 2, "explore_recall@10": 1.0, "customers": 2})
    assert _figures(table, D(7), "production")["recall@10"] == 1.0  # u1 buys z, scored at rank 3
    # P-TopFreq fitted at the cut-off never saw z (bought from week 1 on): a fit on week 1 would list it
    assert _figures(table, D(7), "p_topfreq")["recall@10"] == 0.0
    assert set(table["method"]) == {"production", "p_topfreq", "tifu_knn"} and set(table["version"]) == {version}
    # the first week is evaluate-rerank's protocol at a cut-off on the version's: the same baseline figures
    events = read_events(Store(cfg.store), EVENT_COLUMNS + [s.PRICE])
    protocol = run_protocol(events, {"p_topfreq": p_topfreq}, [CUTOFF])["cutoffs"][0]["p_topfreq"]
    assert _figures(table, D(0), "p_topfreq") == pytest.approx(protocol | {"customers": protocol.pop("users")})
    assert out["periods"][f"nextbasket:{D(0)}"]["production"] == 0.75
    again = run_live_results(cfg)  # the same weeks again: replaced, not appended
    assert again["rows"] == out["rows"]
    pd.testing.assert_frame_equal(read_live_results(Store(cfg.store)), table)


def test_a_version_without_weeks_after_its_cut_off_adds_nothing(tmp_path):
    cfg = _store(tmp_path)
    _push(cfg, cutoff=CUTOFF + datetime.timedelta(days=30))
    assert run_live_results(cfg)["rows"] == 0
    assert read_live_results(Store(cfg.store)).empty
