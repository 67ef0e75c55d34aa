"""The NumPy candidates and features equal today's pandas ones value for value (issue 21).

tests/nextbasket/reference_pandas.py keeps the pandas code as it was before the rewrite; random logs
with ties everywhere (small counts), guests, cancellations, items sold in two segments, customers
with more past items than the list keeps, several batches and segment trends (some clipped at -0.9)
must give the same candidate frames and the same float32 feature arrays, exactly.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import SCORE
from recsys.nextbasket.candidates import build_candidates
from recsys.nextbasket.features import STATIC_FEATURES, build_features
from recsys.nextbasket.histories import iter_histories, open_events
from tests.nextbasket.conftest import make_events
from tests.nextbasket.reference_pandas import STATIC_FEATURES as REFERENCE_STATICS
from tests.nextbasket.reference_pandas import reference_candidates, reference_features

CUTOFF = date(2011, 6, 1)
CONFIGS = (
    CustomerModelConfig(lookback_weeks=10, seq_weeks=4, recent_weeks=2, n_candidates=12, batch_customers=40),
    CustomerModelConfig(lookback_weeks=6, seq_weeks=6, recent_weeks=3, n_candidates=5, batch_customers=1_000),
)
TREND = {"s0": 0.5, "s1": -2.0, "s3": 0.0, "s4": -0.3}


def _random_log(seed: int) -> pd.DataFrame:
    """About 3,000 lines of 150 customers (a few heavy ones), 70 items in 6 segments, 14 weeks, 5 % guests."""
    rng = np.random.default_rng(seed)
    n = 3_000
    users = np.where(rng.random(n) < 0.05, None, np.array([f"u{k:03d}" for k in rng.zipf(1.3, n) % 150]))
    items = rng.zipf(1.2, n) % 70
    segments = np.where(rng.random(n) < 0.1, (items + 1) % 6, items % 6)  # some items sell in two segments
    qty = np.where(rng.random(n) < 0.05, -1.0, rng.integers(1, 4, n).astype(float))
    days = rng.integers(-98, 7, n)  # a week after the cut-off too: never read
    return make_events([(u, f"i{i:02d}", f"s{g}", q, CUTOFF + timedelta(days=int(d)))
                        for u, i, g, q, d in zip(users, items, segments, qty, days)])


def _foreign_pairs(pairs: pd.DataFrame, cfg: CustomerModelConfig, rng: np.random.Generator) -> pd.DataFrame:
    """A shop's own list as score_pairs builds it: a subsample, repeats, unknown items and segments."""
    part = pairs.sample(frac=0.3, random_state=int(rng.integers(1 << 30)))
    users = part[s.USER_ID].to_numpy()
    extra = pd.DataFrame({s.USER_ID: users[: len(users) // 3], s.ITEM_ID: "unknown", s.SEGMENT: "",
                          s.CAND_RANK: float(cfg.n_candidates)})
    other = part.assign(**{s.SEGMENT: "s5", s.CAND_RANK: part[s.CAND_RANK].astype(float)})
    return pd.concat([part, extra, other, part.head(7)], ignore_index=True)


@pytest.mark.parametrize(("seed", "cfg", "trend"), [(0, CONFIGS[0], None), (1, CONFIGS[0], TREND),
                                                     (2, CONFIGS[1], TREND), (3, CONFIGS[1], None)])
def test_candidates_and_features_equal_the_pandas_reference(seed, cfg, trend):
    rng = np.random.default_rng(seed)
    batches = list(iter_histories(open_events(_random_log(seed)), CUTOFF, cfg))
    assert len(batches) >= (2 if cfg.batch_customers < 100 else 1)
    capped = 0
    for hist in batches:
        want = reference_candidates(hist, cfg, trend)
        got = build_candidates(hist, cfg, trend)
        pd.testing.assert_frame_equal(got, want)
        capped += int((want.groupby(s.USER_ID)["source"].apply(lambda v: (v == "past").sum())
                       == cfg.n_candidates - int(cfg.n_candidates * 0.2)).sum())
        for pairs in (want, _foreign_pairs(want, cfg, rng)):
            for a, b in zip(build_features(hist, pairs, cfg, trend), reference_features(hist, pairs, cfg, trend),
                            strict=True):
                assert a.dtype == b.dtype == np.float32
                np.testing.assert_array_equal(a, b)
    assert capped > 0  # some customer had more past items than the list keeps


def test_the_static_feature_names_are_those_of_the_reference():
    assert STATIC_FEATURES == REFERENCE_STATICS


def test_push_time_scores_equal_those_of_the_pandas_path(tmp_path, monkeypatch):
    from recsys.nextbasket import scores
    from recsys.nextbasket.model import LSTMRecommender

    cfg = dataclasses.replace(CONFIGS[0], score_batch=64, units=4, dense_units=8)
    monkeypatch.setattr(scores, "SCORE_CHUNK", 2)  # features built 128 pairs at a time: several chunks
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    con = open_events(_random_log(4))
    summary = scores.write_scores(model, con, CUTOFF, tmp_path / "scores.parquet", cfg, TREND)
    want = []
    for hist in iter_histories(con, CUTOFF, cfg):
        pairs = reference_candidates(hist, cfg, TREND)
        pairs[SCORE] = model.score(*reference_features(hist, pairs, cfg, TREND))
        want.append(pairs.sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True]))
    want = pd.concat(want, ignore_index=True)[scores.SCORES_SCHEMA.names]
    assert len(want) > 4 * 2 * cfg.score_batch and summary["pairs"] == len(want)
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "scores.parquet").to_pandas(), want)

