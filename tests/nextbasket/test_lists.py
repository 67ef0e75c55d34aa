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
