"""The lists `trendrec push --lists` hands the next-basket model: the shop's names mapped as batch re-ranking maps them."""

import pytest

from pipeline import schemas as s
from recsys.nextbasket.publish import ListsError, read_lists

MAPPING = {"user_id": "customer", "item_id": "sku", "base_score": "logit"}


def test_read_lists_maps_the_shops_columns(tmp_path):
    (tmp_path / "shop.csv").write_text("customer,sku,logit\n17850,y,0.9\n,x,0.1\n17850,x,0.5\n")
    got = read_lists(tmp_path / "shop.csv", MAPPING)
    assert list(got.columns) == [s.USER_ID, s.ITEM_ID]  # no segment: push fills it from the store
    assert got.values.tolist() == [["17850", "y"], ["", "x"], ["17850", "x"]]
    with pytest.raises(ListsError, match=r"shop\.csv: missing column\(s\) user_id, item_id.*\[rerank\.columns\]"):
        read_lists(tmp_path / "shop.csv")


def _old_rule(table, lists, prob_of):
    """What add_list_scores wrote before it went through DuckDB (pandas and pyarrow, the table held whole)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from recsys.nextbasket.scores import SCORE_ORDER, SCORES_SCHEMA

    have = table.select([s.USER_ID, s.ITEM_ID]).to_pandas()
    pairs = lists[[s.USER_ID, s.ITEM_ID]].astype(str).drop_duplicates()
    pairs = pairs.merge(have.assign(_have=True), on=[s.USER_ID, s.ITEM_ID], how="left")
    pairs = pairs[pairs["_have"].isna()].drop(columns="_have").reset_index(drop=True)
    prob = np.array([prob_of(u, i) for u, i in zip(pairs[s.USER_ID], pairs[s.ITEM_ID])])
    keep = np.isfinite(prob)
    segment = lists.drop_duplicates([s.USER_ID, s.ITEM_ID]).astype({s.USER_ID: str, s.ITEM_ID: str}) \
        .set_index([s.USER_ID, s.ITEM_ID])[s.SEGMENT]
    added = pairs[keep].assign(score=prob[keep].astype(np.float32), source="shop_list")
    added[s.SEGMENT] = segment.reindex(pd.MultiIndex.from_frame(added[[s.USER_ID, s.ITEM_ID]])).fillna("") \
        .astype(str).to_numpy()
    whole = pa.concat_tables([table, pa.Table.from_pandas(added[SCORES_SCHEMA.names], schema=SCORES_SCHEMA,
                                                          preserve_index=False)])
    return whole.take(pc.sort_indices(whole, SCORE_ORDER))


def test_the_shops_pairs_join_the_scores_as_the_table_held_whole_did(tmp_path, monkeypatch):
    """New pairs found, scored once (first row's segment), unknown customers left out, existing scores kept,
    and the rewritten table sorted by user, score descending, item: the rows of the pandas rule, exactly."""
    import hashlib

    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.nextbasket import scores as sc

    def prob_of(user, item):  # a customer "u9" has no history: NaN, as score_pairs gives
        return np.nan if user == "u9" else int(hashlib.md5(f"{user}/{item}".encode()).hexdigest()[:6], 16) / 2**24

    rng = np.random.default_rng(5)
    held = pd.DataFrame({s.USER_ID: [f"u{i % 7}" for i in range(60)], s.ITEM_ID: [f"i{i % 11}" for i in range(60)]})
    held = held.drop_duplicates().reset_index(drop=True)
    table = pa.Table.from_pandas(held.assign(**{s.SEGMENT: "Cups", "source": "repeat",
                                                "score": rng.random(len(held)).astype(np.float32)}),
                                 schema=sc.SCORES_SCHEMA, preserve_index=False)
    table = table.take(pa.compute.sort_indices(table, sc.SCORE_ORDER))
    path = tmp_path / "scores.parquet"
    pq.write_table(table, path)
    lists = pd.DataFrame({s.USER_ID: ["u1", "u1", "u8", "u8", "u9", "u2", "u8", "u3"],
                          s.ITEM_ID: ["i1", "i99", "i5", "i5", "i1", "i40", "i41", "i42"],
                          s.SEGMENT: ["Mugs", "Bags", "Lamps", "Other", "Mugs", None, "", "Toys"]})
    monkeypatch.setattr(sc, "score_pairs", lambda model, con, cutoff, pairs, cfg: np.array(
        [prob_of(u, i) for u, i in zip(pairs[s.USER_ID], pairs[s.ITEM_ID])]))
    con = duckdb.connect()
    got = sc.add_list_scores(None, con, None, lists, path, None)
    assert got == {"list_pairs": 6, "list_pairs_scored": 5}  # u1/i1 held; u8/i5 twice; u9 unknown
    written = pq.read_table(path, schema=sc.SCORES_SCHEMA)
    assert written.equals(_old_rule(table, lists, prob_of))
    assert written.to_pandas().set_index([s.USER_ID, s.ITEM_ID]).loc[("u8", "i5"), s.SEGMENT] == "Lamps"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("shards", [1, 3])
def test_the_shops_pairs_scored_with_the_candidates_give_the_table_of_the_second_pass(tmp_path, monkeypatch, shards):
    """write_scores(lists=...) scores the listed pairs in the candidates' pass over the histories: the same
    rows, order and float bits as write_scores then add_list_scores (a second pass), whatever the shards."""
    import dataclasses

    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from recsys.nextbasket import scores as sc
    from recsys.nextbasket.features import STATIC_FEATURES
    from recsys.nextbasket.histories import open_events
    from recsys.nextbasket.model import LSTMRecommender
    from tests.nextbasket.conftest import RANDOM_CONFIGS, RANDOM_CUTOFF, random_log

    cfg = dataclasses.replace(RANDOM_CONFIGS[0], score_batch=64, units=4, dense_units=8, batch_customers=7,
                              shards=shards)
    monkeypatch.setattr(sc, "SCORE_CHUNK", 2)  # several predict chunks per batch
    model = LSTMRecommender(cfg)
    model.build(cfg.seq_weeks, len(STATIC_FEATURES))
    exact = model.score
    monkeypatch.setattr(model, "score", lambda seq, static: np.round(exact(seq, static), 2))  # ties: items sort them
    con = open_events(random_log(6))
    old = tmp_path / "old.parquet"
    sc.write_scores(model, con, RANDOM_CUTOFF, old, cfg)  # the push: no segment trends
    held = pq.read_table(old).to_pandas()
    rng = np.random.default_rng(3)
    some = held.sample(40, random_state=1)[[s.USER_ID, s.ITEM_ID]]  # pairs the candidates hold
    users = held[s.USER_ID].unique()
    lists = pd.concat([
        some.assign(**{s.SEGMENT: "s1"}),
        pd.DataFrame({s.USER_ID: rng.choice(users, 300), s.ITEM_ID: [f"i{k:02d}" for k in rng.integers(0, 70, 300)],
                      s.SEGMENT: rng.choice(["s0", "s5", "", None], 300)}),
        pd.DataFrame({s.USER_ID: rng.choice(users, 30), s.ITEM_ID: rng.choice(["a0", "i00x", "zz", "i5"], 30),
                      s.SEGMENT: None}),  # items not sold in the lookback, sorted among the sold ones
        pd.DataFrame({s.USER_ID: ["nobody", "u999"], s.ITEM_ID: ["i01", "i02"], s.SEGMENT: "s0"}),  # no history
    ], ignore_index=True)
    lists = pd.concat([lists, lists.sample(50, random_state=2).assign(**{s.SEGMENT: "again"})], ignore_index=True)
    added = sc.add_list_scores(model, con, RANDOM_CUTOFF, lists, old, cfg)
    new = tmp_path / "new.parquet"
    con.execute("SELECT 1 FROM range(3)").fetchone()  # a result left open, as customer_cutoff leaves it
    got = sc.write_scores(model, con, RANDOM_CUTOFF, new, cfg, lists=lists)
    assert added["list_pairs_scored"] > 200 and {k: got[k] for k in added} == added
    assert got["pairs"] == len(held) and got["customers"] == held[s.USER_ID].nunique()  # the candidates, as before
    want, have = pq.read_table(old), pq.read_table(new)
    assert have.equals(want) and have.column("score").to_numpy().tobytes() == want.column("score").to_numpy().tobytes()
