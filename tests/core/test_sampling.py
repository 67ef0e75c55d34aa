"""Stable customer hashes (NumPy and DuckDB agree, independent of the process) and the training sample."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd

from pipeline.sampling import in_shard_sql, sample_customers, shard_of, stable_hash, stable_hash_sql
from tests.conftest import ROOT


def test_stable_hash_is_md5_and_duckdb_computes_the_same():
    ids = ["12345", "17850", "", "é-ü", "C0001"]
    expected = [int.from_bytes(hashlib.md5(i.encode()).digest()[:8], "little") for i in ids]
    assert stable_hash(ids).tolist() == expected
    con = duckdb.connect()
    con.register("t", pd.DataFrame({"user_id": ids}))
    in_sql = [r[0] for r in con.execute(f"SELECT {stable_hash_sql('user_id')} FROM t").fetchall()]
    assert in_sql == expected
    shards = [r[0] for r in con.execute(f"SELECT {stable_hash_sql('user_id')} % 3 FROM t").fetchall()]
    assert shard_of(ids, 3).tolist() == shards
    for k in range(3):  # the condition the customer stages add to their queries selects shard_of's rows
        rows = [r[0] for r in con.execute(f"SELECT user_id FROM t WHERE true{in_shard_sql('user_id', (k, 3))}")
                .fetchall()]
        assert rows == [i for i, shard in zip(ids, shard_of(ids, 3)) if shard == k]
    assert in_shard_sql("user_id", (0, 1)) == in_shard_sql("user_id", None) == ""  # nothing to select, no MD5


def test_shards_do_not_depend_on_the_process():
    code = "from pipeline.sampling import shard_of; print(shard_of([str(i) for i in range(50)], 4).tolist())"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env=os.environ | {"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1
    assert runs.pop().strip() == str(shard_of([str(i) for i in range(50)], 4).tolist())


def test_a_budget_no_smaller_than_the_customers_keeps_everyone():
    users = np.array([f"c{i}" for i in range(50)])
    assert sample_customers(users, np.arange(50), 50, seed=1).all()
    assert sample_customers(users, np.arange(50), 0, seed=1).all()  # 0: no budget


def test_the_sample_has_the_budget_each_activity_stratum_its_share_and_the_seed_decides():
    users = np.array([f"c{i}" for i in range(1000)])
    activity = np.where(np.arange(1000) < 900, 1, 50)  # 10 % heavy buyers
    keep = sample_customers(users, activity, 100, seed=7)
    assert keep.sum() == 100
    assert keep[activity == 50].sum() == 10  # the heavy tenth keeps its tenth, not a chance draw
    deciles = np.arange(1000) * 10 // 1000  # activity = position: the deciles are blocks of 100
    assert np.bincount(deciles[sample_customers(users, np.arange(1000), 100, seed=7)]).tolist() == [10] * 10
    assert (sample_customers(users, activity, 100, seed=7) == keep).all()
    assert not (sample_customers(users, activity, 100, seed=8) == keep).all()
    shuffled = np.random.default_rng(0).permutation(1000)  # the order the customers come in does not matter
    assert set(users[shuffled][sample_customers(users[shuffled], activity[shuffled], 100, seed=7)]) == set(users[keep])
