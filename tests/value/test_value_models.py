"""The value models end to end on a small seeded log: edge customers, guests, no leakage, the band."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from recsys.value.data import customer_days, guest_lines, open_value_events
from recsys.value.ensemble import blend, fit_members, level_scale, predict_members, training_windows
from recsys.value.features import build_features
from recsys.value.stage import score_table
from tests.value.conftest import END, ONE, RETURNS, SAMEDAY, TINY, value_events

CUTOFF = date(2011, 10, 1)


@pytest.fixture(scope="module")
def fitted():
    events = value_events()
    days = customer_days(open_value_events(events), END)
    return events, days, fit_members(days, CUTOFF, TINY)


def test_edge_customers_get_sane_values(fitted):
    events, days, members = fitted
    feats = build_features(days, CUTOFF, TINY.seq_weeks)
    row = {u: i for i, u in enumerate(feats.users)}
    assert feats.x[row[ONE]] == 0 and feats.x[row[SAMEDAY]] == 0 and feats.T[row[ONE]] > 0  # one day = frequency 0
    assert feats.static[row[RETURNS], 0] == 0  # no purchase
    weights = {"bgnbd_gg": 0.4, "lstm": 0.3, "rfm": 0.3}
    pred = predict_members(members, feats)
    table = score_table(members, weights, level_scale(pred.spend, weights), feats).to_pandas().set_index(s.USER_ID)
    numbers = table[[s.EXPECTED_SPEND, s.EXPECTED_ORDERS, s.SPEND_P10, s.SPEND_P90, s.P_ALIVE]]
    assert np.isfinite(numbers.to_numpy()).all() and (numbers.to_numpy() >= 0).all()
    assert (table[s.P_ALIVE] <= 1).all() and (table[s.SPEND_P10] <= table[s.SPEND_P90]).all()
    assert table.loc[RETURNS, [s.EXPECTED_SPEND, s.EXPECTED_ORDERS, s.P_ALIVE]].tolist() == [0.0, 0.0, 0.0]
    for user in (ONE, SAMEDAY):  # one purchase day: alive by BG/NBD's convention, a small positive forecast
        assert table.loc[user, s.P_ALIVE] == 1.0 and 0 < table.loc[user, s.EXPECTED_SPEND] < table[s.EXPECTED_SPEND].max()
    assert table.loc[SAMEDAY, s.EXPECTED_ORDERS] == pytest.approx(table.loc[ONE, s.EXPECTED_ORDERS], rel=0.5)
    assert None not in set(table.index) and guest_lines(open_value_events(events), END) == 5  # guests left out


def test_the_batched_forecast_predicts_once_and_matches_one_batch_at_the_level_of_all(fitted, tmp_path,
                                                                                     monkeypatch):
    import dataclasses

    import pandas as pd

    from recsys.value import stage
    from recsys.value.stage import write_forecast

    events, days, members = fitted
    weights = {"bgnbd_gg": 0.4, "lstm": 0.3, "rfm": 0.3}
    feats = build_features(days, CUTOFF, TINY.seq_weeks)
    pred = predict_members(members, feats)
    whole = score_table(members, weights, level_scale(pred.spend, weights), feats).to_pandas()
    predicted = []
    monkeypatch.setattr(stage, "predict_members", lambda m, f: predicted.append(len(f.users)) or predict_members(m, f))
    summary = write_forecast(open_value_events(events), members, weights,
                             dataclasses.replace(TINY, batch_customers=7), tmp_path)
    assert sum(predicted) == len(feats.users) and len(predicted) > 2  # every customer once, in batches
    assert summary["batches"] > 2 and summary["scale"] == pytest.approx(level_scale(pred.spend, weights))
    got = pd.read_parquet(tmp_path / "value.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["value.parquet"]  # the level-1 file is gone
    merged = whole.merge(got, on=s.USER_ID, suffixes=("", "_batched"))
    assert len(merged) == len(whole) == len(got) == summary["customers"]
    for column in (s.EXPECTED_SPEND, s.SPEND_P10, s.SPEND_P90, s.EXPECTED_ORDERS, s.P_ALIVE):
        np.testing.assert_allclose(merged[f"{column}_batched"], merged[column], rtol=1e-5, atol=1e-9)
    assert summary["expected_spend"] == pytest.approx(whole[s.EXPECTED_SPEND].sum(), rel=1e-6)


def test_truncating_the_log_after_the_cutoff_changes_nothing(fitted):
    events, days, members = fitted
    short = events[events[s.EVENT_DATE] < CUTOFF]
    short_days = customer_days(open_value_events(short), CUTOFF)
    a, b = build_features(days, CUTOFF, TINY.seq_weeks), build_features(short_days, CUTOFF, TINY.seq_weeks)
    for field in ("users", "x", "t_x", "T", "m_x", "static", "seq"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    again = fit_members(short_days, CUTOFF, TINY)
    assert again.bgnbd == members.bgnbd and again.gamma_gamma == members.gamma_gamma
    p, q = predict_members(members, a), predict_members(again, b)
    for name in p.spend:
        np.testing.assert_allclose(p.spend[name], q.spend[name], rtol=1e-5)


def test_blend_is_a_weighted_geometric_mean_at_the_members_level():
    spend = {"bgnbd_gg": np.array([0.0, 3.0, 99.0]), "lstm": np.array([0.0, 15.0, 9.0])}
    one = blend(spend, {"bgnbd_gg": 1.0, "lstm": 0.0}, scale=1.0)
    np.testing.assert_allclose(one, spend["bgnbd_gg"])
    half = blend(spend, {"bgnbd_gg": 0.5, "lstm": 0.5}, scale=1.0)
    np.testing.assert_allclose(half, [0.0, np.sqrt(4 * 16) - 1, np.sqrt(100 * 10) - 1])
    scaled = blend(spend, {"bgnbd_gg": 0.5, "lstm": 0.5})  # level: the weighted mean of the members' totals
    assert scaled.sum() == pytest.approx(0.5 * 102 + 0.5 * 24)



def test_lstm_forecasts_never_exceed_the_largest_training_spend():
    """exp(mu + sigma²/2) explodes for a wide sigma: the cap keeps the mean and the band finite and sane."""
    from recsys.value.ziln import ValueLSTM

    model = ValueLSTM(TINY)
    model.build(TINY.seq_weeks, 5, 3)
    layer = model.model.get_layer("ziln")
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.array([5.0, 10.0, 10.0], np.float32)])  # p ~ 1, mu 10, sigma 4
    model.cap = 250.0
    p, mean, p10, p90 = model.predict(np.zeros((2, TINY.seq_weeks, 5), np.float32), np.zeros((2, 3), np.float32))
    assert np.all(p > 0.99) and np.all(mean == 250.0) and np.all(p90 <= 250.0) and np.all(p10 <= p90)


def test_the_training_windows_take_the_budget_of_customers_and_a_large_budget_changes_nothing(fitted):
    _, days, _ = fitted
    everyone = training_windows(days, CUTOFF, dataclasses.replace(TINY, train_customers=0))
    n = days[days["day"] < CUTOFF][s.USER_ID].nunique()
    for a, b in zip(training_windows(days, CUTOFF, dataclasses.replace(TINY, train_customers=n)), everyone, strict=True):
        np.testing.assert_array_equal(a, b)
    sample = training_windows(days, CUTOFF, dataclasses.replace(TINY, train_customers=30))
    assert len(np.unique(sample[3])) <= 30 < len(np.unique(everyone[3]))
    assert set(sample[3]) <= set(everyone[3])
    again = training_windows(days, CUTOFF, dataclasses.replace(TINY, train_customers=30))
    np.testing.assert_array_equal(again[3], sample[3])  # the same seed, the same customers


def test_the_union_of_the_shards_is_byte_for_byte_the_one_process_forecast(fitted, tmp_path):
    from pipeline.sampling import shard_of
    from recsys.value.stage import join_forecast, shard_path, write_forecast, write_forecast_shard

    events, _, members = fitted
    weights = {"bgnbd_gg": 0.4, "lstm": 0.3, "rfm": 0.3}
    one = write_forecast(open_value_events(events), members, weights, dataclasses.replace(TINY, batch_customers=7),
                         tmp_path / "one")
    cfg = dataclasses.replace(TINY, batch_customers=5)
    users = set()
    for shard in (2, 0, 1):  # any order, each shard on its own connection (a worker of its own)
        summary = write_forecast_shard(open_value_events(events), members, weights, cfg, tmp_path / "three", shard, 3)
        written = pq.read_table(shard_path(tmp_path / "three", shard, 3)).column(s.USER_ID).to_pylist()
        assert summary["customers"] == len(written) > 0 and set(shard_of(written, 3)) == {shard}
        users |= set(written)
    joined = join_forecast(members.cutoff, weights, 3, tmp_path / "three")
    assert (tmp_path / "three" / "value.parquet").read_bytes() == (tmp_path / "one" / "value.parquet").read_bytes()
    assert joined["customers"] == one["customers"] == len(users) and joined["scale"] == one["scale"]
    assert [p.name for p in (tmp_path / "three").iterdir()] == ["value.parquet"]  # the shard files are gone


def _per_batch_shard(con, members, weights, cfg, path, shard):
    """The shard file as the forecast wrote it before the one pass: a count, then a log scan per batch."""
    from pipeline.sampling import in_shard_sql

    sql = f"SELECT count(DISTINCT user_id) FROM value_events WHERE user_id IS NOT NULL AND event_date < $end"
    customers = con.execute(sql + in_shard_sql("user_id", shard), {"end": members.cutoff}).fetchone()[0]
    n_buckets = max(1, -(-customers // cfg.batch_customers))
    with pq.ParquetWriter(path, s.VALUE_SCHEMA) as writer:
        for bucket in range(n_buckets):
            days = customer_days(con, members.cutoff, bucket=(bucket, n_buckets), shard=shard)
            if not days.empty:
                writer.write_table(score_table(members, weights, 1.0,
                                               build_features(days, members.cutoff, cfg.seq_weeks)))
    return n_buckets


def test_the_forecast_reads_the_log_once_and_writes_the_bytes_of_the_per_batch_scans(fitted, tmp_path):
    from recsys.value.data import bucket_customer_days, drop_buckets, read_bucket
    from recsys.value.stage import shard_path, write_forecast_shard

    events, _, members = fitted
    weights = {"bgnbd_gg": 0.4, "lstm": 0.3, "rfm": 0.3}
    con = open_value_events(events)
    for (shard, shards), batch in (((0, 1), 7), ((1, 3), 5), ((0, 2), 1_000_000)):
        cfg = dataclasses.replace(TINY, batch_customers=batch)
        before = tmp_path / f"before-{shard}-{shards}.parquet"
        n_buckets = _per_batch_shard(con, members, weights, cfg, before, (shard, shards))
        assert bucket_customer_days(con, members.cutoff, batch, (shard, shards)) == n_buckets
        for bucket in range(n_buckets):  # each batch the frame of its own scan, to the bit
            old = customer_days(con, members.cutoff, bucket=(bucket, n_buckets), shard=(shard, shards))
            assert read_bucket(con, bucket).equals(old)
        drop_buckets(con)
        summary = write_forecast_shard(con, members, weights, cfg, tmp_path, shard, shards)
        assert summary["batches"] == n_buckets
        assert shard_path(tmp_path, shard, shards).read_bytes() == before.read_bytes()
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0  # dropped


def test_a_join_with_a_shard_missing_names_it(fitted, tmp_path):
    from recsys.value.data import ValueModelError
    from recsys.value.stage import join_forecast, write_forecast_shard

    events, _, members = fitted
    write_forecast_shard(open_value_events(events), members, {"bgnbd_gg": 1.0}, TINY, tmp_path, 0, 2)
    with pytest.raises(ValueModelError, match="value-0001-of-0002.parquet"):
        join_forecast(members.cutoff, {"bgnbd_gg": 1.0}, 2, tmp_path)


def test_members_saved_and_loaded_forecast_the_same_bytes(fitted, tmp_path):
    """A forecast shard task scores with the members fit_value saved, not the ones in memory."""
    from recsys.value.stage import _save_members, load_members, write_forecast

    events, _, members = fitted
    weights = {"bgnbd_gg": 0.4, "lstm": 0.3, "rfm": 0.3}
    _save_members(members, weights, tmp_path / "saved")
    loaded, saved_weights = load_members(tmp_path / "saved", TINY)
    assert saved_weights == weights and loaded.lstm is not None and loaded.ridge is not None
    write_forecast(open_value_events(events), members, weights, TINY, tmp_path / "memory")
    write_forecast(open_value_events(events), loaded, saved_weights, TINY, tmp_path / "loaded", shards=2)
    assert (tmp_path / "loaded" / "value.parquet").read_bytes() == (tmp_path / "memory" / "value.parquet").read_bytes()


def test_fit_days_reads_every_customer_within_the_budget_and_a_seeded_stratified_sample_above_it():
    from recsys.value.data import fit_days

    events = value_events()
    con = open_value_events(events)
    whole = customer_days(con, END)
    n = whole[s.USER_ID].nunique()
    for budget in (0, n):  # no bound, or one that does not bind: exactly the days of before
        days, read = fit_days(con, END, dataclasses.replace(TINY, fit_customers=budget))
        assert read == {"customers": n, "of": n}
        assert days.equals(whole)
    cfg = dataclasses.replace(TINY, fit_customers=40)
    days, read = fit_days(con, END, cfg)
    chosen = days[s.USER_ID].unique()
    assert read == {"customers": 40, "of": n} and len(chosen) == 40 and None not in set(chosen)
    # each chosen customer's every day, as the whole read has it
    mine = whole[whole[s.USER_ID].isin(chosen)].reset_index(drop=True)
    assert days.reset_index(drop=True).equals(mine)
    # stratified by customer-days: the most and the least active tenth are both there
    active = whole.groupby(s.USER_ID).size().sort_values(kind="stable")
    assert set(active.index[: n // 10]) & set(chosen) and set(active.index[-(n // 10):]) & set(chosen)
    again, _ = fit_days(con, END, cfg)  # the same seed, the same customers; another seed, others
    other, _ = fit_days(con, END, dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert again.equals(days) and set(other[s.USER_ID]) != set(chosen)
    # the cut-off bounds what is counted and read
    early, read = fit_days(con, CUTOFF, cfg)
    assert early["day"].max() < CUTOFF and read["of"] == customer_days(con, CUTOFF)[s.USER_ID].nunique()



def test_the_early_stopping_customers_are_a_seeded_share_of_whole_customers():
    from recsys.value.ziln import _split

    groups = np.array([f"c{i % 37}" for i in range(400)], dtype=object)
    mask = _split(groups, 0.2, seed=3)
    chosen = set(groups[mask])
    assert len(chosen) == round(0.2 * 37) and not chosen & set(groups[~mask])  # whole customers, either side
    rng = np.random.default_rng(3)  # the same draw np.isin was given
    assert (mask == np.isin(groups, rng.choice(np.unique(groups), size=len(chosen), replace=False))).all()
