"""The shop's lists: [rerank.columns] maps their names, the store's events give rows without a segment one."""

import dataclasses

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.config import ConfigError, IngestConfig, load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.lists import ListColumnsError, fill_segments, item_segments, map_columns, with_store_segments
from pipeline.store import Store

# item a moved from "old" to "new": its latest event says "new"; b is "toys"
EVENTS = """event_time,item_id,quantity,price,user_id,segment
2024-01-01 10:00:00,a,1,1.0,17850,old
2024-02-01 10:00:00,a,1,1.0,17850,new
2024-01-05 10:00:00,b,2,2.0,9,toys
"""


def events_store(tmp_path) -> Store:
    columns = {f: f for f in ("event_time", "item_id", "quantity", "price", "user_id", "segment")}
    cfg = dataclasses.replace(load_config(None), store=str(tmp_path / "store"), ingest=IngestConfig(columns=columns))
    (tmp_path / "events.csv").write_text(EVENTS)
    run_ingest(cfg, tmp_path / "events.csv")
    return Store(cfg.store)


def test_map_columns_renames_the_shops_names_and_names_a_missing_one():
    shop = pd.DataFrame({"customer": ["1"], "sku": ["a"], "logit": [0.3], "item_id": ["stale"]})
    mapping = {"user_id": "customer", "item_id": "sku", "base_score": "logit"}
    got = map_columns(shop, mapping, "lists.csv", (s.USER_ID, s.ITEM_ID, s.BASE_SCORE))
    assert list(got.columns) == [s.USER_ID, s.ITEM_ID, s.BASE_SCORE]  # the mapped sku wins over a stale item_id
    assert got[s.ITEM_ID].tolist() == ["a"]
    with pytest.raises(ListColumnsError, match=r"lists\.csv: missing column\(s\) score \(rerank\.columns\.base_score\)"
                                               r".*customer, sku.*\[rerank\.columns\]"):
        map_columns(shop, {**mapping, "base_score": "score"}, "lists.csv", (s.USER_ID, s.ITEM_ID, s.BASE_SCORE))
    with pytest.raises(ListColumnsError, match="cat"):  # a segment mapped explicitly must be there
        map_columns(shop, {**mapping, "segment": "cat"}, "lists.csv", (s.USER_ID,))
    swapped = map_columns(pd.DataFrame({"user_id": ["i"], "item_id": ["u"]}), {"user_id": "item_id", "item_id": "user_id"},
                          "x", (s.USER_ID, s.ITEM_ID))
    assert swapped.to_dict("records") == [{"item_id": "i", "user_id": "u"}]


def test_item_segments_are_each_items_latest_and_empty_before_an_ingest(tmp_path):
    assert item_segments(events_store(tmp_path), "256MB") == {"a": "new", "b": "toys"}
    assert item_segments(Store(tmp_path / "empty"), "256MB") == {}


def test_missing_segments_are_filled_and_unknown_items_counted(tmp_path):
    segments, filled, unknown = fill_segments(["a", "b", "zz", "zz", "b", 7], ["mine", None, None, "", float("nan"), ""],
                                              {"a": "new", "b": "toys"})
    assert segments == ["mine", "toys", None, None, "toys", None]  # a row's own segment is kept
    assert (filled, unknown) == (2, {"count": 3, "items": ["7", "zz"]})
    lists = pd.DataFrame({s.ITEM_ID: ["a", "b", "zz"]})  # no segment column at all
    got, report = with_store_segments(lists, events_store(tmp_path), "256MB")
    assert got[s.SEGMENT].tolist() == ["new", "toys", None]
    assert report == {"segments_from_store": 2, "unknown_items": {"count": 1, "items": ["zz"]}}


@pytest.mark.parametrize("table, reason", [
    ("[rerank.columns]\nshoe = 'x'\n", "rerank.columns: unknown field"),
    ("[rerank.columns]\nuser_id = ''\n", "rerank.columns.user_id: expected the name of a column"),
    ("[rerank.columns]\nuser_id = 'id'\nitem_id = 'id'\n", r"\['id'\] mapped to more than one field"),
])
def test_rerank_columns_are_checked_when_the_config_loads(tmp_path, table, reason):
    (tmp_path / "t.toml").write_text(table)
    with pytest.raises(ConfigError, match=reason):
        load_config(tmp_path / "t.toml")
    (tmp_path / "ok.toml").write_text("[rerank.columns]\nuser_id = 'customer'\nitem_id = 'sku'\nbase_score = 'logit'\n")
    assert load_config(tmp_path / "ok.toml").rerank.columns == {"user_id": "customer", "item_id": "sku",
                                                                "base_score": "logit"}
