"""The NumPy candidates and features equal today's pandas ones value for value (issue 21).

The second half of this file keeps the pandas code as it was before the rewrite; random logs
with ties everywhere (small counts), guests, cancellations, items sold in two segments, customers
with more past items than the list keeps, several batches and segment trends (some clipped at -0.9)
must give the same candidate frames and the same float32 feature arrays, exactly.

    .venv/bin/python -m pytest tests/nextbasket/test_vectorised.py -q
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import CAND_RANK, PURCHASES, SCORE, SOURCE, WEEK
from recsys.nextbasket.retrieval import retrieve
from recsys.nextbasket.features import STATIC_FEATURES, build_features
from recsys.nextbasket.histories import BUYERS, REPEAT_RATE, Histories, iter_histories, open_events
from tests.nextbasket.conftest import RANDOM_CONFIGS, RANDOM_CUTOFF, random_log

TREND = {"s0": 0.5, "s1": -2.0, "s3": 0.0, "s4": -0.3}


def _foreign_pairs(pairs: pd.DataFrame, cfg: CustomerModelConfig, rng: np.random.Generator) -> pd.DataFrame:
    """A shop's own list as score_pairs builds it: a subsample, repeats, unknown items and segments."""
    part = pairs.sample(frac=0.3, random_state=int(rng.integers(1 << 30)))
    users = part[s.USER_ID].to_numpy()
    extra = pd.DataFrame({s.USER_ID: users[: len(users) // 3], s.ITEM_ID: "unknown", s.SEGMENT: "",
                          s.CAND_RANK: float(cfg.n_candidates)})
    other = part.assign(**{s.SEGMENT: "s5", s.CAND_RANK: part[s.CAND_RANK].astype(float)})
    return pd.concat([part, extra, other, part.head(7)], ignore_index=True)


@pytest.mark.parametrize(("seed", "cfg", "trend"), [(0, RANDOM_CONFIGS[0], None), (1, RANDOM_CONFIGS[0], TREND),
                                                     (2, RANDOM_CONFIGS[1], TREND), (3, RANDOM_CONFIGS[1], None)])
def test_candidates_and_features_equal_the_pandas_reference(seed, cfg, trend):
    rng = np.random.default_rng(seed)
    batches = list(iter_histories(open_events(random_log(seed)), RANDOM_CUTOFF, cfg))
    assert len(batches) >= (2 if cfg.batch_customers < 100 else 1)
    capped = 0
    for hist in batches:
        want = reference_candidates(hist, cfg, trend)
        got = retrieve(hist, cfg, trend)
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

    cfg = dataclasses.replace(RANDOM_CONFIGS[0], score_batch=64, units=4, dense_units=8)
    monkeypatch.setattr(scores, "SCORE_CHUNK", 2)  # features built 128 pairs at a time: several chunks
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    con = open_events(random_log(4))
    summary = scores.write_scores(model, con, RANDOM_CUTOFF, tmp_path / "scores.parquet", cfg, TREND)
    want = []
    for hist in iter_histories(con, RANDOM_CUTOFF, cfg):
        pairs = reference_candidates(hist, cfg, TREND)
        pairs[SCORE] = model.score(*reference_features(hist, pairs, cfg, TREND))
        want.append(pairs)
    want = pd.concat(want, ignore_index=True).sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True])
    want = want.reset_index(drop=True)[scores.SCORES_SCHEMA.names]  # the shards' join: in customer order
    assert len(want) > 4 * 2 * cfg.score_batch and summary["pairs"] == len(want)
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "scores.parquet").to_pandas(), want)


def test_the_join_of_the_score_shards_is_byte_for_byte_the_one_process_table(tmp_path, monkeypatch):
    """One shard writes the table in place (no join), in the join's row groups: the bytes of N shards joined."""
    from pipeline.sampling import shard_of
    from recsys.nextbasket import scores
    from recsys.nextbasket.histories import CustomerModelError
    from recsys.nextbasket.model import LSTMRecommender

    monkeypatch.setattr(scores, "JOINED_ROWS", 100)  # several row groups, each spanning batches
    cfg = dataclasses.replace(RANDOM_CONFIGS[0], score_batch=64, units=4, dense_units=8, batch_customers=7)
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    con = open_events(random_log(5))
    one = scores.write_scores(model, con, RANDOM_CUTOFF, tmp_path / "one.parquet", cfg, TREND)
    groups = pq.ParquetFile(tmp_path / "one.parquet").metadata
    assert groups.num_row_groups > 2 and {groups.row_group(i).num_rows for i in range(groups.num_row_groups - 1)} \
        == {100} and not list(tmp_path.glob(".one.parquet*"))  # no shard folder or temporary file left
    three = dataclasses.replace(cfg, shards=3)
    folder, users = tmp_path / "shards", set()
    for shard in (2, 0, 2, 1):  # any order, each its own task; shard 2 retried: its file replaced whole
        done = scores.write_scores_shard(model, con, RANDOM_CUTOFF, scores.score_shard_path(folder, shard, 3), three,
                                         shard, TREND)
        written = pq.read_table(done["path"]).column(s.USER_ID).to_pylist()
        assert done["customers"] > 0 and set(shard_of(written, 3)) == {shard} and written == sorted(written)
        users |= set(written)
    assert sorted(p.name for p in folder.iterdir()) == [f"scores-{k:04d}-of-0003.parquet" for k in range(3)]
    joined = scores.join_scores(folder, 3, tmp_path / "three.parquet")
    assert (tmp_path / "three.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()
    assert joined["pairs"] == one["pairs"] and joined["customers"] == one["customers"] == len(users)
    cli = scores.write_scores(model, con, RANDOM_CUTOFF, tmp_path / "cli.parquet", three, TREND)
    assert cli["pairs"] == one["pairs"]
    assert (tmp_path / "cli.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()  # shards in turn
    scores.score_shard_path(folder, 1, 3).unlink()
    with pytest.raises(CustomerModelError, match="scores-0001-of-0003.parquet"):
        scores.join_scores(folder, 3, tmp_path / "missing.parquet")


def test_the_join_merges_in_customer_order_across_batches_of_the_files(tmp_path, monkeypatch):
    """Files read a few rows at a time: a customer's rows split across two batches stay together."""
    from recsys.nextbasket import scores

    monkeypatch.setattr(scores, "JOINED_ROWS", 3)
    rows = {0: [("a", "x", 0.9), ("a", "y", 0.5), ("a", "z", 0.1), ("a", "w", 0.05), ("d", "x", 0.3)],
            1: [("b", "x", 0.7), ("c", "y", 0.2), ("c", "x", 0.2), ("e", "z", 0.4)]}
    for shard, table in rows.items():
        frame = pd.DataFrame(table, columns=[s.USER_ID, s.ITEM_ID, SCORE]).assign(**{s.SEGMENT: "s", SOURCE: "past"})
        frame[SCORE] = frame[SCORE].astype(np.float32)
        frame = frame.sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True])
        pq.write_table(pa.Table.from_pandas(frame[scores.SCORES_SCHEMA.names], schema=scores.SCORES_SCHEMA,
                                            preserve_index=False), scores.score_shard_path(tmp_path, shard, 2))
    summary = scores.join_scores(tmp_path, 2, tmp_path / "joined.parquet")
    got = pq.read_table(tmp_path / "joined.parquet")
    assert list(zip(got[s.USER_ID].to_pylist(), got[s.ITEM_ID].to_pylist())) == [
        ("a", "x"), ("a", "y"), ("a", "z"), ("a", "w"), ("b", "x"), ("c", "x"), ("c", "y"), ("d", "x"), ("e", "z")]
    assert summary == {"customers": 5, "pairs": 9, "shards": 2}
    assert [got.num_rows for got in [pq.ParquetFile(tmp_path / "joined.parquet").read_row_group(i)
                                     for i in range(3)]] == [3, 3, 3]


def test_the_shops_pairs_score_as_the_pandas_merges_scored_them(monkeypatch):
    """score_pairs in integer codes (issue 35) gives the bits of the merge of each batch's retrieved
    frame and item segments that it replaced: several batches and predict chunks, list pairs in and
    out of the customer's retrieved list, repeats, unknown items and customers, a segment trend."""
    from recsys.nextbasket import scores
    from recsys.nextbasket.model import LSTMRecommender

    cfg = dataclasses.replace(RANDOM_CONFIGS[0], score_batch=64, units=4, dense_units=8)
    monkeypatch.setattr(scores, "SCORE_CHUNK", 2)
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    con, rng = open_events(random_log(6)), np.random.default_rng(6)
    retrieved = pd.concat([reference_candidates(h, cfg, TREND) for h in iter_histories(con, RANDOM_CUTOFF, cfg)])
    listed = retrieved.sample(frac=0.4, random_state=6)[[s.USER_ID, s.ITEM_ID]]
    users, items = retrieved[s.USER_ID].unique(), [f"i{k:02d}" for k in range(70)] + ["unknown"]
    other = pd.DataFrame({s.USER_ID: rng.choice(list(users) + ["nobody"], 600), s.ITEM_ID: rng.choice(items, 600)})
    lists = pd.concat([listed, other, listed.head(9)], ignore_index=True).sample(frac=1.0, random_state=7)
    got = scores.score_pairs(model, con, RANDOM_CUTOFF, lists, cfg, TREND)
    assert len(lists) > 4 * 2 * cfg.score_batch and np.isnan(got).any() and np.isfinite(got).sum() > len(listed)
    want = _reference_score_pairs(model, con, lists, cfg, TREND)
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))


def _reference_score_pairs(model, con, pairs: pd.DataFrame, cfg: CustomerModelConfig,
                           trend: dict[str, float] | None) -> np.ndarray:
    """score_pairs as it was before issue 35: each batch's rows merged with its retrieved frame and the
    items' segments in pandas, then scored at once."""
    rows = pairs[[s.USER_ID, s.ITEM_ID]].astype(str).reset_index(drop=True)
    rows["_row"] = np.arange(len(rows))
    out = np.full(len(rows), np.nan)
    for hist in iter_histories(con, RANDOM_CUTOFF, cfg, rows[s.USER_ID].unique()):
        own = reference_candidates(hist, cfg, trend)[[s.USER_ID, s.ITEM_ID, CAND_RANK]]
        part = rows[rows[s.USER_ID].isin(hist.users)].merge(own, on=[s.USER_ID, s.ITEM_ID], how="left")
        part = part.merge(hist.item_segment, on=s.ITEM_ID, how="left")
        part = part.fillna({CAND_RANK: cfg.n_candidates, s.SEGMENT: ""})
        out[part["_row"].to_numpy()] = model.score(*reference_features(hist, part, cfg, trend))
    return out


# --- the reference: today's pandas candidates and features (issue 21), frozen --------------------------
# A verbatim copy of recsys/nextbasket/candidates.py and features.py as they were before the NumPy rewrite
# (commit 0c207e7), but for STATIC_FEATURES named REFERENCE_STATICS; kept in this module, the only one
# that uses it, because test modules import nothing from each other but conftest.

SOURCES = ("past", "rising", "popular")
EXPLORE_SHARE = 0.2
TOP_SEGMENTS = 3
DECAY = 0.9
REFERENCE_STATICS = (
    "weeks_since_last", "weeks_bought", "lines_bought", "interval", "weeks_since_due", "due_ratio", "segment_trend",
    "item_growth", "item_recent", "user_weeks", "repeat_share", "user_since_last", "segment_share", "cand_rank",
    "decayed_weeks", "decayed_share", "item_buyers", "item_repeat_rate",
)
_TIER, _KEY = "_tier", "_key"
def reference_candidates(hist: Histories, cfg: CustomerModelConfig = CustomerModelConfig(),
                     trend: dict[str, float] | None = None) -> pd.DataFrame:
    """Up to ``n_candidates`` (user_id, item_id, segment, source, cand_rank) per customer of the batch."""
    n = cfg.n_candidates
    past = _past(hist)
    explore = pd.concat([_rising(hist, cfg, trend or {}, n), _popular(hist, cfg, n)], ignore_index=True)
    both = pd.concat([past, explore], ignore_index=True).sort_values([s.USER_ID, _TIER, _KEY], kind="stable")
    both = both.drop_duplicates([s.USER_ID, s.ITEM_ID], keep="first")
    both = both[(both[_TIER] > 0) | (both.groupby([s.USER_ID, _TIER]).cumcount() < n - int(n * EXPLORE_SHARE))]
    both = both.sort_values([s.USER_ID, _TIER, _KEY], kind="stable")
    both[CAND_RANK] = both.groupby(s.USER_ID).cumcount()
    out = both[both[CAND_RANK] < n].merge(hist.item_segment, on=s.ITEM_ID, how="left")
    out[SOURCE] = np.asarray(SOURCES)[out["_src"].to_numpy()]
    return out[[s.USER_ID, s.ITEM_ID, s.SEGMENT, SOURCE, CAND_RANK]].reset_index(drop=True)


def item_growth(hist: Histories, cfg: CustomerModelConfig) -> pd.DataFrame:
    """Per item: crowd purchases in the last ``recent_weeks`` (recent) and the ``recent_weeks`` before (prev)."""
    ci = hist.crowd_item
    recent = ci[ci[WEEK] < cfg.recent_weeks].groupby(s.ITEM_ID)[PURCHASES].sum().rename("recent")
    prev = ci[(ci[WEEK] >= cfg.recent_weeks) & (ci[WEEK] < 2 * cfg.recent_weeks)]
    prev = prev.groupby(s.ITEM_ID)[PURCHASES].sum().rename("prev")
    out = pd.concat([recent, prev], axis=1).fillna(0.0).rename_axis(s.ITEM_ID).reset_index()
    return out.merge(hist.item_segment, on=s.ITEM_ID, how="left")


def _past(hist: Histories) -> pd.DataFrame:
    g = hist.user_item.groupby([s.USER_ID, s.ITEM_ID]).agg(n=(WEEK, "size"), last=(WEEK, "min")).reset_index()
    # most weeks bought first, then most recently bought
    return g.assign(**{_TIER: 0, _KEY: -g["n"] * 1000.0 + g["last"], "_src": 0})[
        [s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]


def _rising(hist: Histories, cfg: CustomerModelConfig, trend: dict[str, float], n: int) -> pd.DataFrame:
    growth = item_growth(hist, cfg)
    growth = growth.assign(rise=growth["recent"] - growth["prev"]).query("rise > 0")
    growth = growth.sort_values(["rise", s.ITEM_ID], ascending=[False, True])
    growth["_irank"] = growth.groupby(s.SEGMENT).cumcount()
    growth = growth[growth["_irank"] < n]
    seg = hist.user_segment.groupby([s.USER_ID, s.SEGMENT])[PURCHASES].sum().reset_index()
    seg["w"] = seg[PURCHASES] * (1.0 + seg[s.SEGMENT].map(trend).fillna(0.0).clip(lower=-0.9))
    seg = seg.sort_values([s.USER_ID, "w"], ascending=[True, False])
    seg["_srank"] = seg.groupby(s.USER_ID).cumcount()
    seg = seg[seg["_srank"] < TOP_SEGMENTS]
    out = seg[[s.USER_ID, s.SEGMENT, "_srank"]].merge(growth[[s.SEGMENT, s.ITEM_ID, "_irank"]], on=s.SEGMENT)
    out = out.assign(**{_TIER: 1, _KEY: out["_irank"] * TOP_SEGMENTS + out["_srank"], "_src": 1})
    return out[[s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]


def _popular(hist: Histories, cfg: CustomerModelConfig, n: int) -> pd.DataFrame:
    top = item_growth(hist, cfg).sort_values(["recent", s.ITEM_ID], ascending=[False, True]).head(n)
    users = pd.DataFrame({s.USER_ID: hist.users})
    out = users.merge(pd.DataFrame({s.ITEM_ID: top[s.ITEM_ID].to_numpy(), "_prank": np.arange(len(top))}),
                      how="cross")
    # after the risers of the same list position: 10_000 keeps popular behind every rising key
    out = out.assign(**{_TIER: 1, _KEY: 10_000 + out["_prank"], "_src": 2})
    return out[[s.USER_ID, s.ITEM_ID, _TIER, _KEY, "_src"]]
def reference_features(hist: Histories, pairs: pd.DataFrame, cfg: CustomerModelConfig = CustomerModelConfig(),
                   trend: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sequences (P, seq_weeks, 5), statics (P, len(REFERENCE_STATICS))) float32 for pairs of this batch.

    ``pairs`` has user_id, item_id, segment and cand_rank (as retrieve returns).
    """
    t = cfg.seq_weeks
    user_any = hist.user_segment.groupby([s.USER_ID, WEEK], as_index=False)[PURCHASES].sum()
    seq = np.stack([_weekly(hist.user_item, [s.USER_ID, s.ITEM_ID], pairs, t),
                    _weekly(hist.user_segment, [s.USER_ID, s.SEGMENT], pairs, t),
                    _weekly(user_any, [s.USER_ID], pairs, t),
                    _weekly(hist.crowd_item, [s.ITEM_ID], pairs, t),
                    _weekly(hist.crowd_segment, [s.SEGMENT], pairs, t)], axis=-1)
    return seq, _statics(hist, pairs, cfg, trend or {}, user_any)


def _weekly(long: pd.DataFrame, keys: list[str], pairs: pd.DataFrame, t: int) -> np.ndarray:
    """(len(pairs), t) counts of each pair's keys per week, oldest week first; zeros where none."""
    code = pairs.groupby(keys, sort=False).ngroup().to_numpy()
    uniq = pairs[keys].assign(_code=code).drop_duplicates("_code")
    m = long[long[WEEK] < t].merge(uniq, on=keys)
    dense = np.zeros((len(uniq), t), np.float32)
    dense[m["_code"].to_numpy(), t - 1 - m[WEEK].to_numpy()] = m[PURCHASES].to_numpy()
    return dense[code]


def _repeat_stats(hist: Histories) -> pd.DataFrame:
    ui = hist.user_item.sort_values([s.USER_ID, s.ITEM_ID, WEEK])
    gap = ui[WEEK].diff().where(ui.duplicated([s.USER_ID, s.ITEM_ID]))
    g = ui.assign(_gap=gap, _decay=DECAY ** ui[WEEK].to_numpy(np.float64)).groupby([s.USER_ID, s.ITEM_ID])
    return g.agg(weeks_since_last=(WEEK, "min"), weeks_bought=(WEEK, "size"), lines_bought=(PURCHASES, "sum"),
                 interval=("_gap", "median"), decayed_weeks=("_decay", "sum")).reset_index()


def _user_stats(hist: Histories, user_any: pd.DataFrame) -> pd.DataFrame:
    decay = user_any.assign(_decay=DECAY ** user_any[WEEK].to_numpy(np.float64))
    users = decay.groupby(s.USER_ID).agg(user_weeks=(WEEK, "size"), user_since_last=(WEEK, "min"),
                                         _total=(PURCHASES, "sum"), _decay_total=("_decay", "sum"))
    return users.reset_index()


def _statics(hist: Histories, pairs: pd.DataFrame, cfg: CustomerModelConfig, trend: dict[str, float],
             user_any: pd.DataFrame) -> np.ndarray:
    lb = float(cfg.lookback_weeks)
    x = pairs[[s.USER_ID, s.ITEM_ID, s.SEGMENT, CAND_RANK]].merge(
        _repeat_stats(hist), on=[s.USER_ID, s.ITEM_ID], how="left")
    x = x.merge(_user_stats(hist, user_any), on=s.USER_ID, how="left")
    seg = hist.user_segment.groupby([s.USER_ID, s.SEGMENT], as_index=False)[PURCHASES].sum()
    x = x.merge(seg.rename(columns={PURCHASES: "_seg"}), on=[s.USER_ID, s.SEGMENT], how="left")
    growth = item_growth(hist, cfg)[[s.ITEM_ID, "recent", "prev"]]
    x = x.merge(growth, on=s.ITEM_ID, how="left").merge(hist.item_repeat, on=s.ITEM_ID, how="left")
    x = x.fillna({BUYERS: 0.0, REPEAT_RATE: 0.0, "recent": 0.0, "prev": 0.0, "_seg": 0.0,
                  "weeks_bought": 0.0, "lines_bought": 0.0, "decayed_weeks": 0.0})
    x["weeks_since_last"] = x["weeks_since_last"].fillna(lb)
    x["interval"] = x["interval"].fillna(lb)
    x["weeks_since_due"] = x["weeks_since_last"] + 1.0 - x["interval"]
    x["due_ratio"] = (x["weeks_since_last"] + 1.0) / x["interval"].clip(lower=1.0)
    x["segment_trend"] = x[s.SEGMENT].map(trend).fillna(0.0) if trend else 0.0
    x["item_growth"] = np.log1p(x["recent"]) - np.log1p(x["prev"])
    x["item_recent"] = x["recent"]
    x["user_weeks"] = x["user_weeks"].fillna(0.0)
    x["user_since_last"] = x["user_since_last"].fillna(lb)
    x["repeat_share"] = x["weeks_bought"] / x["user_weeks"].clip(lower=1.0)
    x["segment_share"] = x["_seg"] / x["_total"].fillna(0.0).clip(lower=1.0)
    x["item_buyers"], x["item_repeat_rate"] = x[BUYERS], x[REPEAT_RATE]
    x["decayed_share"] = x["decayed_weeks"] / x["_decay_total"].fillna(0.0).clip(lower=1e-9)
    return x[list(REFERENCE_STATICS)].to_numpy(np.float32)
