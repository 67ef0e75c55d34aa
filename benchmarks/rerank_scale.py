"""A store for timing `trendrec rerank` at a shop's scale (issue 35): one pushed release and the shop's lists.

The release is made through the registry's own push (``registry.push``), as the tests make theirs: 40
segment trends, a chosen segment-trend weight (0.05) and push-time scores of 100 random items for every
customer, sorted by user_id in row groups of ``JOINED_ROWS`` as ``recsys.nextbasket.scores`` writes them.
The lists (``lists.parquet``, written by ``write_parquet``) hold 20 random items a customer, grouped by
customer as `trendrec candidates` writes them, one row in 41 in a segment no trend knows. It writes
``DIR/store``, ``DIR/lists.parquet`` and ``DIR/rerank.toml``; time the rerank with it (each code's own
``PYTHONPATH``), then ``cmp`` the outputs:

    .venv/bin/python benchmarks/rerank_scale.py /var/tmp/rerank-1m --customers 1000000
    PYTHONPATH=$PWD /usr/bin/time -v .venv/bin/trendrec rerank --config /var/tmp/rerank-1m/rerank.toml \\
        --output reranked/after.parquet --json
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import load_config
from pipeline.store import Store, write_parquet
from recsys import registry
from recsys.nextbasket.scores import JOINED_ROWS, SCORES_SCHEMA

N_SEGMENTS, SCORED, LISTED, ITEMS = 40, 100, 20, 50_000


def build(root: Path, n_users: int, seed: int = 0) -> None:
    """The store with release v0001, the lists and the config under ``root``."""
    cfg = dataclasses.replace(load_config(None), store=str(root / "store"))
    Store(cfg.store).ensure()
    rng = np.random.default_rng(seed)
    segments = [f"seg{k}" for k in range(N_SEGMENTS)]
    trends = pd.DataFrame({s.SEGMENT: segments, s.TREND: rng.uniform(-1, 1, N_SEGMENTS)})
    users = np.array([f"c{k:07d}" for k in range(n_users)], dtype=object)

    def items(n: int) -> np.ndarray:
        return np.char.add("i", rng.integers(0, ITEMS, n).astype(str)).astype(object)

    def assemble(staging: Path) -> dict:
        (staging / "forecast").mkdir(parents=True)
        for name in ("model.keras", "recommender.json", "combination.json"):  # never loaded by rerank
            (staging / "forecast" / name).write_text("{}")
        trends.to_parquet(staging / "forecast" / registry.TREND_FILE)
        (staging / "nextbasket").mkdir()
        with pq.ParquetWriter(staging / "nextbasket" / registry.SCORES_FILE, SCORES_SCHEMA) as writer:
            for lo in range(0, n_users, 10_000):
                user = np.repeat(users[lo:lo + 10_000], SCORED)
                frame = pd.DataFrame({s.USER_ID: user, s.ITEM_ID: items(len(user)), s.SCORE:
                                      rng.random(len(user)).astype(np.float32)})
                frame = frame.assign(**{c: "" for c in SCORES_SCHEMA.names if c not in frame})
                writer.write_table(pa.Table.from_pandas(frame[SCORES_SCHEMA.names], schema=SCORES_SCHEMA,
                                                        preserve_index=False), row_group_size=JOINED_ROWS)
        return {"parts": {"forecast": {"ships": "run", "holdout_mase": None, "metrics": {}},
                          "nextbasket": {"ships": "run"}},
                "segments": segments, registry.TREND_WEIGHT_KEY: {"weight": 0.05}}

    registry.push(cfg, "models/runs/rerank-scale-0001", assemble, against=None, reason="rerank_scale.py")
    user = np.repeat(users, LISTED)
    lists = pd.DataFrame({s.USER_ID: user, s.ITEM_ID: items(len(user)),
                          s.SEGMENT: np.array([*segments, "unknown"], dtype=object)[
                              rng.integers(0, N_SEGMENTS + 1, len(user))],
                          s.BASE_SCORE: rng.random(len(user))})
    write_parquet(pa.Table.from_pandas(lists, preserve_index=False), root / "lists.parquet")
    (root / "rerank.toml").write_text(f'store = "{root / "store"}"\n\n[rerank]\n'
                                      f'candidates = "{root / "lists.parquet"}"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="an empty folder for the store, the lists and the config")
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    build(args.root, args.customers)
    print(f"wrote {args.root / 'rerank.toml'}")


if __name__ == "__main__":
    main()
