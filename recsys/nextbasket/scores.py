"""Push-time customer scores: every active customer's candidates with the model's buy probability.

Serving must answer in milliseconds without TensorFlow, so the customer model runs once, when a
version is pushed: every customer with a purchase in the lookback gets their ``n_candidates``
candidates scored, batch by batch (memory follows ``batch_customers``, not the number of
customers), streamed into ``customers/scores.parquet`` of the version (user_id, item_id, segment,
source, score), sorted by user then score. ``ScoreIndex`` reads it back for the service: one sorted
array of users with offsets, item ids and float32 scores, so a lookup is a binary search.

    python -c "from recsys.nextbasket.scores import ScoreIndex; \
print(ScoreIndex.load('/tmp/trendrec-demo/models/v0001/customers/scores.parquet').lookup('12347'))"
"""

from __future__ import annotations

import logging
import os
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.schemas import SCORE, SOURCE
from recsys.nextbasket.candidates import SOURCES, Candidates, build_candidates, candidate_codes
from recsys.nextbasket.histories import CustomerModelError, Histories, customer_cutoff, iter_histories, open_store

if TYPE_CHECKING:  # the model (and TensorFlow) is only needed to compute scores, not to read them
    from recsys.nextbasket.model import LSTMRecommender

log = logging.getLogger(__name__)

CUSTOMERS_DIR = "customers"  # in a candidate and in a version: the customer model's files
SCORES_FILE = f"{CUSTOMERS_DIR}/scores.parquet"
MODEL_FILE = "model.keras"  # the LSTMRecommender in customers/ (recsys.nextbasket.model.MODEL_FILE, without Keras)
SCORE_CHUNK = 8  # predict steps (of score_batch pairs) whose features are built at a time: bounds memory
SCORES_SCHEMA = pa.schema([(s.USER_ID, pa.string()), (s.ITEM_ID, pa.string()), (s.SEGMENT, pa.string()),
                           (SOURCE, pa.string()), (SCORE, pa.float32())])


def write_scores(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, path: Path,
                 cfg: CustomerModelConfig, trend: dict[str, float] | None = None) -> dict[str, Any]:
    """Score every customer of the lookback at ``cutoff`` into ``path`` (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    started, rows, users = time.perf_counter(), 0, 0
    try:
        with pq.ParquetWriter(tmp, SCORES_SCHEMA) as writer:
            for hist in iter_histories(con, cutoff, cfg):
                table, n_users = _score_batch(model, hist, cfg, trend)
                writer.write_table(table)
                rows, users = rows + table.num_rows, users + n_users
                log.info("customer scores at %s: %d customers, %d pairs so far", cutoff, users, rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    return {"customers": users, "pairs": rows, "seconds": round(seconds, 1),
            "pairs_per_second": round(rows / seconds) if seconds else None, "cutoff": cutoff.isoformat()}


def _score_batch(model: LSTMRecommender, hist: Histories, cfg: CustomerModelConfig,
                 trend: dict[str, float] | None) -> tuple[pa.Table, int]:
    """The scores table of one batch (sorted by user, score descending, item) and its customers.

    Candidates stay integer codes and features are built ``SCORE_CHUNK`` predict steps at a time, so
    memory follows the chunk; the chunks start at multiples of ``score_batch``, so the network sees
    the same padded steps as when it scored the whole batch at once.
    """
    from recsys.nextbasket.features import FeatureTables, segment_trend

    cand, codes = candidate_codes(hist, cfg, trend), hist.codes
    tables, segment = FeatureTables.build(codes, cfg), cand.segment
    trends = segment_trend(codes.segments.to_pylist(), segment, trend)
    score = np.empty(len(cand.user), np.float32)
    step = SCORE_CHUNK * cfg.score_batch
    for lo in range(0, len(score), step):
        part = slice(lo, lo + step)
        score[part] = model.score(*tables.pairs(cand.user[part], cand.item[part], segment[part],
                                                cand.rank[part].astype(np.float64), trends[part]))
    order = _score_order(cand, score)
    segments = pa.array(codes.segments.to_pylist() + [None], pa.string())  # code -1: no segment
    columns = [codes.users.take(cand.user[order]), codes.items.take(cand.item[order]),
               segments.take(segment[order]), pa.array(SOURCES).take(cand.source[order]), pa.array(score[order])]
    table = pa.Table.from_arrays([col.cast(f.type) for col, f in zip(columns, SCORES_SCHEMA)], schema=SCORES_SCHEMA)
    return table, len(np.unique(cand.user))


def _score_order(cand: Candidates, score: np.ndarray) -> np.ndarray:
    """Rows sorted by user, score descending, then item (codes sort as the ids: the vocabularies are sorted)."""
    return np.lexsort((cand.item, -score, cand.user))


def score_pairs(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, pairs: pd.DataFrame,
                cfg: CustomerModelConfig, trend: dict[str, float] | None = None) -> np.ndarray:
    """The model's probability for each (user_id, item_id) row of a shop's own lists; NaN without history.

    The features are those of push-time scoring; an item outside the customer's own candidate list
    gets ``cand_rank = n_candidates`` (behind it), and its segment is the one the events give it.
    """
    from recsys.nextbasket.features import build_features

    rows = pairs[[s.USER_ID, s.ITEM_ID]].astype(str).reset_index(drop=True)
    rows["_row"] = np.arange(len(rows))
    out = np.full(len(rows), np.nan)
    for hist in iter_histories(con, cutoff, cfg, rows[s.USER_ID].unique()):
        own = build_candidates(hist, cfg, trend)[[s.USER_ID, s.ITEM_ID, s.CAND_RANK]]
        part = rows[rows[s.USER_ID].isin(hist.users)].merge(own, on=[s.USER_ID, s.ITEM_ID], how="left")
        part = part.merge(hist.item_segment, on=s.ITEM_ID, how="left")
        part = part.fillna({s.CAND_RANK: cfg.n_candidates, s.SEGMENT: ""})
        out[part["_row"].to_numpy()] = model.score(*build_features(hist, part, cfg, trend))
    log.info("scored %d of %d candidate rows with the customer model at %s", int(np.isfinite(out).sum()),
             len(out), cutoff)
    return out


def score_lists(root: str | Path, model_dir: Path, candidates: pd.DataFrame,
                cfg: CustomerModelConfig) -> pd.DataFrame:
    """(user_id, item_id, score) of a shop's lists by the model in ``model_dir``, at the store's latest data.

    Loads TensorFlow (the batch re-ranking path; the service reads push-time scores instead).
    Customers without history in the lookback get no row.
    """
    from recsys.nextbasket.model import LSTMRecommender

    con = open_store(str(root), cfg)
    prob = score_pairs(LSTMRecommender.load(model_dir), con, customer_cutoff(con), candidates, cfg)
    keep = np.isfinite(prob)
    out = pd.DataFrame({s.USER_ID: candidates[s.USER_ID].astype(str).to_numpy()[keep],
                        s.ITEM_ID: candidates[s.ITEM_ID].astype(str).to_numpy()[keep], SCORE: prob[keep]})
    return out.drop_duplicates([s.USER_ID, s.ITEM_ID]).reset_index(drop=True)


def read_scores(path: Path, users: list[str] | None = None) -> pd.DataFrame:
    """(user_id, item_id, score) of ``users`` (None: all) from a scores file."""
    table = pq.read_table(path, columns=[s.USER_ID, s.ITEM_ID, SCORE])
    if users is not None:
        table = table.filter(pc.is_in(table[s.USER_ID], value_set=pa.array(sorted(set(map(str, users))))))
    return table.to_pandas()


class ScoreIndex:
    """A scores file in memory for per-request lookups: users sorted once, a binary search per user."""

    def __init__(self, users: np.ndarray, offsets: np.ndarray, items: np.ndarray, scores: np.ndarray):
        self.users, self.offsets, self.items, self.scores = users, offsets, items, scores

    @classmethod
    def load(cls, path: Path) -> ScoreIndex:
        try:
            table = pq.read_table(path, columns=[s.USER_ID, s.ITEM_ID, SCORE])
        except (OSError, pa.ArrowException) as exc:
            raise CustomerModelError(f"{path}: cannot read customer scores ({exc}); push the model again") from exc
        table = table.sort_by([(s.USER_ID, "ascending")])
        user = table[s.USER_ID].to_numpy(zero_copy_only=False)
        starts = np.r_[0, np.flatnonzero(user[1:] != user[:-1]) + 1] if len(user) else np.zeros(0, np.int64)
        scores = table[SCORE].to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
            raise CustomerModelError(f"{path}: customer scores must be probabilities in [0, 1]")
        return cls(user[starts], np.r_[starts, len(user)], table[s.ITEM_ID].to_numpy(zero_copy_only=False),
                   scores)

    def __len__(self) -> int:
        return len(self.users)

    def lookup(self, user_id: str | None) -> dict[str, float]:
        """{item_id: probability} the model gave ``user_id``; empty for an unknown customer or None."""
        if user_id is None or not len(self.users):
            return {}
        i = int(np.searchsorted(self.users, user_id))
        if i >= len(self.users) or self.users[i] != user_id:
            return {}
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return dict(zip(self.items[lo:hi].tolist(), self.scores[lo:hi].tolist()))
