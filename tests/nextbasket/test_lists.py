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
