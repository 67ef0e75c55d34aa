"""Every write of `trendrec rerank` resolves inside the store: a reranked/ that is a symlink to a folder
outside is refused in one line, for the default target as for ``--output``, and nothing lands outside."""

import pandas as pd
import pytest

from pipeline.store import Store, StoreError
from recsys.rank.rerank import run_rerank

CANDIDATES = pd.DataFrame({"user_id": ["u1"], "item_id": ["x"], "segment": ["up"], "base_score": [1.0]})


@pytest.mark.parametrize("output", [None, "reranked/custom.parquet"])
def test_a_reranked_symlink_out_of_the_store_is_refused(small_config, tmp_path, output):
    store = Store(small_config.store).ensure()
    outside = tmp_path / "outside"
    outside.mkdir()
    store.reranked.rmdir()
    store.reranked.symlink_to(outside, target_is_directory=True)
    CANDIDATES.to_parquet(tmp_path / "lists.parquet")
    with pytest.raises(StoreError, match="outside the store") as refused:
        run_rerank(small_config, tmp_path / "lists.parquet", output=output)
    assert "\n" not in str(refused.value)
    assert list(outside.iterdir()) == []
