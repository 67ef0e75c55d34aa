"""Push-time customer scores: every active customer's retrieved items with the model's buy probability.

Serving must answer in milliseconds without TensorFlow, so the customer model runs once, when a
version is pushed: every customer with a purchase in the lookback gets their ``n_candidates``
items scored, batch by batch (memory follows ``batch_customers``, not the number of
customers), in ``customers.shards`` shards by a stable hash of the customer id (each shard reads its own
customers' histories and writes its own file, in customer order; the sharded DAG runs one task per
shard), merged into ``nextbasket/scores.parquet`` of the version (user_id, item_id, segment, source,
score), sorted by user then score: the same bytes for any number of shards. A shop's own list pairs the
candidates lack can be scored in the same pass (``write_scores(lists=...)``) or by a second pass over their
customers' histories (``add_list_scores``, after the sharded DAG's join): the same rows. This module only
writes the table (and ``score_pairs`` / ``score_lists`` score a shop's own pairs with a loaded model, for offline checks); re-ranking,
batch and service alike, reads it back without TensorFlow through ``recsys.rank.scores``.

    python -c "import pyarrow.parquet as pq; \
print(pq.read_table('/tmp/trendrec-demo/models/v0001/customers/scores.parquet').slice(0, 5))"
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
from pipeline.store import atomic_path
from recsys.nextbasket.retrieval import SOURCES, Retrieved, retrieved_codes
from recsys.nextbasket.histories import (Codes, CustomerModelError, Histories, code, customer_cutoff, iter_histories,
                                         open_store)

if TYPE_CHECKING:  # the model (and TensorFlow) is only needed to compute scores, not to read them
    from recsys.nextbasket.features import FeatureTables
    from recsys.nextbasket.model import LSTMRecommender

log = logging.getLogger(__name__)

CUSTOMERS_DIR = "customers"  # in a candidate and in a version: the customer model's files
SCORES_FILE = f"{CUSTOMERS_DIR}/scores.parquet"
MODEL_FILE = "model.keras"  # the LSTMRecommender in customers/ (recsys.nextbasket.model.MODEL_FILE, without Keras)
SCORE_CHUNK = 8  # predict steps (of score_batch pairs) whose features are built at a time: bounds memory
JOINED_ROWS = 1 << 20  # rows per row group of the joined scores (pyarrow's default): fixed, whatever the shards
LIST_SOURCE = "shop_list"  # the source of a listed pair the model did not retrieve
# a shop's lists in DuckDB (``_numbered``): a pair listed twice once, with its first row's segment ('' for none)
_LISTED = f"{s.USER_ID}, {s.ITEM_ID}, coalesce(CAST({s.SEGMENT} AS VARCHAR), '') AS {s.SEGMENT}"
_FIRST_LISTED = f"QUALIFY row_number() OVER (PARTITION BY {s.USER_ID}, {s.ITEM_ID} ORDER BY _row) = 1 ORDER BY _row"
SCORE_ORDER = [(s.USER_ID, "ascending"), (SCORE, "descending"), (s.ITEM_ID, "ascending")]  # the table's rows
SCORES_SCHEMA = pa.schema([(s.USER_ID, pa.string()), (s.ITEM_ID, pa.string()), (s.SEGMENT, pa.string()),
                           (SOURCE, pa.string()), (SCORE, pa.float32())])


def write_scores(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, path: Path,
                 cfg: CustomerModelConfig, trend: dict[str, float] | None = None,
                 lists: pd.DataFrame | None = None) -> dict[str, Any]:
    """Score every customer of the lookback at ``cutoff`` into ``path``: each of the ``cfg.shards`` shards in
    turn (``write_scores_shard``) into a folder beside it, then ``join_scores``, as the sharded DAG does; one
    shard is written into ``path`` itself (its file has the join's row groups: the same bytes, without
    reading and writing the table a second time).

    ``lists``: a shop's own (user_id, item_id[, segment]) pairs, scored in the same pass over the histories
    (``write_scores_shard``): the table is the one ``add_list_scores`` makes of the table without them."""
    path, started = Path(path), time.perf_counter()
    folder = path.with_name(f".{path.name}.shards")
    shutil.rmtree(folder, ignore_errors=True)
    listed = listed_pairs(con, lists) if lists is not None else None
    held = scored = 0
    try:
        for shard in range(cfg.shards):  # one shard: its file, in the join's row groups, is the table itself
            done = write_scores_shard(model, con, cutoff, path if cfg.shards == 1 else
                                      score_shard_path(folder, shard, cfg.shards), cfg, shard, trend, listed)
            held, scored = held + done.get("list_pairs_held", 0), scored + done.get("list_pairs_scored", 0)
        joined = join_scores(folder, cfg.shards, path) if cfg.shards > 1 else {
            "customers": done["customers"], "pairs": done["pairs"] + scored, "shards": 1}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if listed is not None:  # as write_scores and add_list_scores count: the candidates, the pairs they lacked
        joined |= {"pairs": joined["pairs"] - scored, "list_pairs": len(listed) - held, "list_pairs_scored": scored}
    seconds = time.perf_counter() - started
    return joined | {"seconds": round(seconds, 1), "cutoff": cutoff.isoformat(),
                     "pairs_per_second": round(joined["pairs"] / seconds) if seconds else None}


def score_shard_path(folder: Path, shard: int, shards: int) -> Path:
    """The scores of one shard's customers, until the join."""
    return Path(folder) / f"scores-{shard:04d}-of-{shards:04d}.parquet"


def write_scores_shard(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, path: Path,
                       cfg: CustomerModelConfig, shard: int, trend: dict[str, float] | None = None,
                       listed: ListedPairs | None = None) -> dict[str, Any]:
    """Score the customers of shard ``shard`` of ``cfg.shards`` (their histories only, pipeline.sampling's
    stable hash) into ``path``, in customer order; a temporary file renamed at the end, so a re-run of the
    shard replaces it whole.

    ``listed`` (``listed_pairs``): a shop's pairs; each batch scores its customers' pairs that its candidates
    lack with its candidates (source ``shop_list``, the listed segment), in the same pass over the histories.
    A pair's score does not depend on the rows sharing its predict step (benchmarks/README.md, issue 35)."""
    started, held, scored = time.perf_counter(), 0, 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, SCORES_SCHEMA) as parquet:
        writer = _RowGroups(parquet)  # the join's row groups: one shard's file is the joined table
        for hist in iter_histories(con, cutoff, cfg, shard=(shard, cfg.shards)):
            table, n_held, n_scored = _score_batch(model, hist, cfg, trend, listed)
            writer.write(table)
            held, scored = held + n_held, scored + n_scored
            log.info("customer scores at %s, shard %d of %d: %d customers, %d pairs so far", cutoff, shard,
                     cfg.shards, writer.customers, writer.rows)
        writer.close()
    done = {"shard": shard, "shards": cfg.shards, "customers": writer.customers, "pairs": writer.rows - scored,
            "path": str(path), "seconds": round(time.perf_counter() - started, 1)}
    return done if listed is None else done | {"list_pairs_held": held, "list_pairs_scored": scored}


def join_scores(folder: Path, shards: int, path: Path) -> dict[str, Any]:
    """The ``shards`` shard files of ``folder`` merged into ``path`` in customer order (each shard is already
    in that order), in row groups of ``JOINED_ROWS``: the same bytes whatever the number of shards. Memory
    follows a few row groups, not the number of pairs. A missing shard file is refused, named."""
    paths = [score_shard_path(folder, k, shards) for k in range(shards)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CustomerModelError(f"cannot join the push-time scores: shard file(s) {missing} missing; "
                                 f"run those shards first")
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, SCORES_SCHEMA) as parquet:
        writer = _RowGroups(parquet)
        for chunk in _merged(paths):
            writer.write(chunk)
        writer.close()
    return {"customers": writer.customers, "pairs": writer.rows, "shards": shards}


class _RowGroups:
    """Tables in customer order written in row groups of exactly ``JOINED_ROWS`` rows (the last one shorter),
    the layout of the joined scores whatever tables they came in; counts the rows and distinct customers."""

    def __init__(self, writer: pq.ParquetWriter):
        self.writer, self.held, self.n_held = writer, [], 0
        self.rows, self.customers, self.last = 0, 0, None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        ids = table[s.USER_ID]
        self.customers += pc.count_distinct(ids).as_py() - (ids[0].as_py() == self.last)
        self.last, self.rows = ids[-1].as_py(), self.rows + table.num_rows
        self.held.append(table)
        self.n_held += table.num_rows
        if self.n_held >= JOINED_ROWS:
            whole = pa.concat_tables(self.held)
            cut = whole.num_rows - whole.num_rows % JOINED_ROWS
            self.writer.write_table(whole.slice(0, cut).combine_chunks(), row_group_size=JOINED_ROWS)
            self.held, self.n_held = [whole.slice(cut)], whole.num_rows - cut

    def close(self) -> None:
        """Write the rows held (fewer than ``JOINED_ROWS``)."""
        if self.n_held:
            self.writer.write_table(pa.concat_tables(self.held).combine_chunks(), row_group_size=JOINED_ROWS)
        self.held, self.n_held = [], 0


def _merged(paths: list[Path]) -> Iterator[pa.Table]:
    """The rows of several files, each sorted by customer and none sharing a customer, in customer order
    (then score descending, item): a k-way merge that holds one batch of each file."""
    streams = [pq.ParquetFile(p).iter_batches(batch_size=JOINED_ROWS) for p in paths]
    pending = [SCORES_SCHEMA.empty_table() for _ in paths]
    open_ = [True] * len(paths)
    while True:
        for i, stream in enumerate(streams):
            while open_[i] and pending[i].num_rows == 0:
                batch = next(stream, None)
                if batch is None:
                    open_[i] = False
                else:
                    pending[i] = pa.Table.from_batches([batch], SCORES_SCHEMA)
        live = [i for i in range(len(paths)) if pending[i].num_rows]
        if not live:
            return
        # rows up to the smallest last customer of a file still being read: no later row can come before them
        lasts = [pending[i][s.USER_ID][-1].as_py() for i in live if open_[i]]
        bound = min(lasts) if lasts else None
        parts = []
        for i in live:
            table = pending[i]
            n = table.num_rows if bound is None else pc.sum(pc.less_equal(table[s.USER_ID], bound)).as_py() or 0
            parts.append(table.slice(0, n))
            pending[i] = table.slice(n)
        chunk = pa.concat_tables(parts)
        if sum(part.num_rows > 0 for part in parts) > 1:  # one file's rows alone are in order already
            chunk = chunk.take(pc.sort_indices(chunk, SCORE_ORDER))
        yield chunk


@dataclass(frozen=True)
class ListedPairs:
    """(user_id, item_id) pairs as strings — a shop's distinct list pairs with their first row's segment ('' for
    none, ``listed_pairs``), or ``score_pairs``' rows as given — and each row's customer as an index into the
    distinct customers (batches find theirs by it)."""

    users: pa.Array
    items: pa.Array
    segments: pa.Array | None  # None: pairs scored without a segment of their own (score_pairs)
    distinct: pa.Array
    row_user: np.ndarray

    @classmethod
    def of(cls, users: pa.Array, items: pa.Array, segments: pa.Array | None = None) -> ListedPairs:
        """Pairs as given (one per row), indexed by their distinct customers."""
        distinct = pc.unique(users)
        return cls(users, items, segments, distinct,
                   pc.index_in(users, value_set=distinct).to_numpy(zero_copy_only=False))

    def __len__(self) -> int:
        return len(self.users)

    def of_batch(self, codes: Codes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows whose customer is in the batch (row order) and their user and item codes (item -1: not
        sold in the lookback)."""
        batch_user = code(self.distinct, codes.users)[self.row_user]
        rows = np.flatnonzero(batch_user >= 0)
        return rows, batch_user[rows], code(self.items.take(rows), codes.items)


def listed_pairs(con: duckdb.DuckDBPyConnection, lists: pd.DataFrame) -> ListedPairs:
    """The distinct pairs of a shop's lists as ``add_list_scores`` reads them: ids as strings, a pair listed
    twice once, with its first row's segment (cast by DuckDB, '' when none), in row order."""
    with con.cursor() as cur:  # its own connection to the store's database: free whatever ``con`` holds
        cur.register("_shop_lists", _numbered(lists))
        pairs = cur.sql(f"SELECT {_LISTED} FROM _shop_lists {_FIRST_LISTED}").to_arrow_table()
    users, items, segments = (pairs[name].combine_chunks().cast(pa.string())
                              for name in (s.USER_ID, s.ITEM_ID, s.SEGMENT))
    return ListedPairs.of(users, items, segments)


def _numbered(lists: pd.DataFrame) -> pd.DataFrame:
    """The lists' (user_id, item_id) as strings, their segment (None without the column) and row number."""
    return lists[[s.USER_ID, s.ITEM_ID]].astype(str).assign(
        **{s.SEGMENT: lists[s.SEGMENT] if s.SEGMENT in lists else None, "_row": np.arange(len(lists))})


def _score_batch(model: LSTMRecommender, hist: Histories, cfg: CustomerModelConfig,
                 trend: dict[str, float] | None, listed: ListedPairs | None = None) -> tuple[pa.Table, int, int]:
    """The scores table of one batch (sorted by user, score descending, item) and, of the listed pairs of
    its customers, the number its candidates hold and the number scored besides them.

    Retrieved pairs stay integer codes and features are built ``SCORE_CHUNK`` predict steps at a time, so
    memory follows the chunk; the chunks start at multiples of ``score_batch``, so the network sees
    the same padded steps as when it scored the whole batch at once. Listed pairs the candidates lack are
    scored after them, as ``_score_rows`` scores them (a pair's score does not depend on its step's rows).
    """
    from recsys.nextbasket.features import FeatureTables, segment_trend

    cand, codes = retrieved_codes(hist, cfg, trend), hist.codes
    tables, names = FeatureTables.build(codes, cfg), codes.segments.to_pylist()
    user, item, segment = cand.user, cand.item, cand.segment
    rank, trends = cand.rank.astype(np.float64), segment_trend(names, segment, trend)
    rows, n_held = np.zeros(0, np.int64), 0
    if listed is not None:
        rows, l_user, l_item = listed.of_batch(codes)
        l_rank, l_segment, l_trends, held = _pair_inputs(codes, cand, l_user, l_item, cfg, trend)
        new, n_held = ~held, int(held.sum())
        rows, l_item = rows[new], l_item[new]
        user, item = np.concatenate([user, l_user[new]]), np.concatenate([item, l_item])
        segment, rank = np.concatenate([segment, l_segment[new]]), np.concatenate([rank, l_rank[new]])
        trends = np.concatenate([trends, l_trends[new]])
    score = _predict(model, tables, user, item, segment, rank, trends, cfg)
    table = _batch_table(codes, cand, listed, rows, user, item, segment, score)
    return table, n_held, len(rows)


def _batch_table(codes: Codes, cand: Retrieved, listed: ListedPairs | None, rows: np.ndarray, user: np.ndarray,
                 item: np.ndarray, segment: np.ndarray, score: np.ndarray) -> pa.Table:
    """The scores table of a batch's candidates followed by its listed ``rows`` (their user, item, segment
    codes and scores), sorted by user, score descending, item id; each column is one take from its values:
    the batch's vocabulary (segment code -1: none), then the listed rows' ids and segments."""
    n_cand, names = len(cand.user), codes.segments.to_pylist()
    item_key, tie = 2 * item.astype(np.int64), np.zeros(len(item), np.int64)
    item_at, segment_at = item.astype(np.int64), np.where(segment >= 0, segment, len(names)).astype(np.int64)
    source_at = np.concatenate([cand.source, np.full(len(rows), len(SOURCES))]).astype(np.int64)
    items, segments = codes.items.cast(pa.string()), pa.array(names + [None], pa.string())
    if len(rows):
        at = np.arange(len(rows))
        item_at[n_cand:], segment_at[n_cand:] = len(items) + at, len(segments) + at
        unsold = n_cand + np.flatnonzero(item[n_cand:] < 0)  # no code: sorted by id among the sold items
        ids = listed.items.take(rows[unsold - n_cand]).to_numpy(zero_copy_only=False).astype(str)
        item_key[unsold] = 2 * np.searchsorted(items.to_numpy(zero_copy_only=False).astype(str), ids) - 1
        tie[unsold] = np.unique(ids, return_inverse=True)[1].reshape(-1)
        items = pa.concat_arrays([items, listed.items.take(rows)])
        segments = pa.concat_arrays([segments, listed.segments.take(rows)])
    order = np.lexsort((tie, item_key, -score, user))
    columns = [codes.users.take(user[order]), items.take(item_at[order]), segments.take(segment_at[order]),
               pa.array([*SOURCES, LIST_SOURCE]).take(source_at[order]), pa.array(score[order])]
    return pa.Table.from_arrays([col.cast(f.type) for col, f in zip(columns, SCORES_SCHEMA)], schema=SCORES_SCHEMA)


def _predict(model: LSTMRecommender, tables: FeatureTables, user: np.ndarray, item: np.ndarray,
             segment: np.ndarray, rank: np.ndarray, trends: np.ndarray, cfg: CustomerModelConfig) -> np.ndarray:
    """The network's scores of code pairs, features built ``SCORE_CHUNK`` predict steps at a time."""
    score, step = np.empty(len(user), np.float32), SCORE_CHUNK * cfg.score_batch
    for lo in range(0, len(score), step):
        part = slice(lo, lo + step)
        score[part] = model.score(*tables.pairs(user[part], item[part], segment[part], rank[part], trends[part]))
    return score


def add_list_scores(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, lists: pd.DataFrame,
                    path: Path, cfg: CustomerModelConfig) -> dict[str, Any]:
    """Add the model's scores of a shop's own (user_id, item_id) pairs to the scores table at ``path``.

    Pairs the table already holds keep their score; customers without history in the lookback get no
    row (re-ranking falls back to segment trends for them); a pair listed twice is scored once, with its
    first row's segment. The table is rewritten whole (temp file, then rename), sorted by user then score
    like ``write_scores``; new rows have source ``shop_list``. DuckDB (the histories' connection, held to
    its memory limit, spilling to the store's .tmp/) finds the new pairs and sorts the rewritten table, so
    memory follows the new pairs, not the table (80 M rows for the 803,032 customers of a 100 M-line shop).
    The one-process push scores the lists with the candidates instead (``write_scores``), with the same rows.
    """
    con.register("_shop_lists", _numbered(lists))
    try:
        sql = (f"SELECT {_LISTED} FROM _shop_lists l WHERE NOT EXISTS (SELECT 1 FROM read_parquet($path) h WHERE "
               f"h.{s.USER_ID} = l.{s.USER_ID} AND h.{s.ITEM_ID} = l.{s.ITEM_ID}) {_FIRST_LISTED}")
        pairs = con.sql(sql, params={"path": str(path)}).to_arrow_table().to_pandas()
    finally:
        con.unregister("_shop_lists")
    prob = score_pairs(model, con, cutoff, pairs, cfg) if len(pairs) else np.zeros(0)
    keep = np.isfinite(prob)
    added = pa.Table.from_pandas(pairs[keep].assign(**{SCORE: prob[keep].astype(np.float32), SOURCE: LIST_SOURCE})
                                 [SCORES_SCHEMA.names], schema=SCORES_SCHEMA, preserve_index=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    con.register("_added_scores", added)
    try:
        order = ", ".join(f"{name} {'ASC' if how == 'ascending' else 'DESC'}" for name, how in SCORE_ORDER)
        con.execute(f"COPY (SELECT * FROM read_parquet('{_quoted(path)}') UNION ALL SELECT * FROM _added_scores "
                    f"ORDER BY {order}) TO '{_quoted(tmp)}' (FORMAT parquet, ROW_GROUP_SIZE {JOINED_ROWS})")
        os.replace(tmp, path)
    finally:
        con.unregister("_added_scores")
        tmp.unlink(missing_ok=True)
    log.info("scored %d of the shop's %d new pairs with the next-basket model", int(keep.sum()), len(pairs))
    return {"list_pairs": int(len(pairs)), "list_pairs_scored": int(keep.sum())}


def _quoted(path: Path) -> str:
    """A path as the body of a SQL string literal (COPY takes no parameters)."""
    return str(path).replace("'", "''")


def score_pairs(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, pairs: pd.DataFrame,
                cfg: CustomerModelConfig, trend: dict[str, float] | None = None) -> np.ndarray:
    """The model's probability for each (user_id, item_id) row of a shop's own lists; NaN without history.

    The features are those of push-time scoring; an item outside the customer's own candidate list
    gets ``cand_rank = n_candidates`` (behind it), and its segment is the one the events give it.
    Each batch of histories scores its customers' rows, in row order, as integer codes of the batch
    (no pandas merge), ``SCORE_CHUNK`` predict steps at a time: memory follows the rows and the chunk.
    """
    rows = pairs[[s.USER_ID, s.ITEM_ID]].astype(str)
    listed = ListedPairs.of(pa.array(rows[s.USER_ID]), pa.array(rows[s.ITEM_ID]))  # every row, duplicates too
    out = np.full(len(rows), np.nan)
    for hist in iter_histories(con, cutoff, cfg, rows[s.USER_ID].unique()):
        picked, user, item = listed.of_batch(hist.codes)  # the batch's customers' rows, in row order
        out[picked] = _score_rows(model, hist, user, item, cfg, trend)
    log.info("scored %d of %d candidate rows with the customer model at %s", int(np.isfinite(out).sum()),
             len(out), cutoff)
    return out


def _score_rows(model: LSTMRecommender, hist: Histories, user: np.ndarray, item: np.ndarray,
                cfg: CustomerModelConfig, trend: dict[str, float] | None) -> np.ndarray:
    """Scores of (user, item) code pairs of one batch (item -1: not sold in the lookback), with the
    features of ``_pair_inputs``, in chunks that start at multiples of ``score_batch``."""
    from recsys.nextbasket.features import FeatureTables

    cand = retrieved_codes(hist, cfg, trend)
    rank, segment, trends, _ = _pair_inputs(hist.codes, cand, user, item, cfg, trend)
    return _predict(model, FeatureTables.build(hist.codes, cfg), user, item, segment, rank, trends, cfg)


def _pair_inputs(c: Codes, cand: Retrieved, user: np.ndarray, item: np.ndarray, cfg: CustomerModelConfig,
                 trend: dict[str, float] | None) -> tuple[np.ndarray, ...]:
    """(cand_rank, segment, segment trend, among the candidates) of (user, item) code pairs: the rank of the
    item in the customer's retrieved list (``n_candidates`` when not there), the item's segment of the
    events (none, as the segment ``""``, when it has none)."""
    from recsys.nextbasket.features import segment_trend

    key = cand.user.astype(np.int64) * len(c.items) + cand.item
    by_key = np.argsort(key, kind="stable")
    wanted = user.astype(np.int64) * len(c.items) + item
    at = np.minimum(np.searchsorted(key[by_key], wanted), max(len(key) - 1, 0))
    listed = (item >= 0) & (key[by_key[at]] == wanted) if len(key) else np.zeros(len(item), bool)
    rank = np.where(listed, cand.rank[by_key[at]] if len(key) else 0, cfg.n_candidates).astype(np.float64)
    names = c.segments.to_pylist()
    blank = names.index("") if "" in names else -1  # the code of a pair without a segment
    segment = np.where(item >= 0, c.item_segment[item], -1)
    segment = np.where(segment >= 0, segment, blank)
    trends = segment_trend(names + [""], np.where(segment >= 0, segment, len(names)), trend)
    return rank, segment, trends, listed


def score_lists(root: str | Path, model_dir: Path, candidates: pd.DataFrame,
                cfg: CustomerModelConfig) -> pd.DataFrame:
    """(user_id, item_id, score) of a shop's lists by the model in ``model_dir``, at the store's latest data.

    Loads TensorFlow: for offline checks against the push-time scores (re-ranking never calls it).
    Customers without history in the lookback get no row.
    """
    from recsys.nextbasket.model import LSTMRecommender

    con = open_store(str(root), cfg)
    prob = score_pairs(LSTMRecommender.load(model_dir), con, customer_cutoff(con), candidates, cfg)
    keep = np.isfinite(prob)
    out = pd.DataFrame({s.USER_ID: candidates[s.USER_ID].astype(str).to_numpy()[keep],
                        s.ITEM_ID: candidates[s.ITEM_ID].astype(str).to_numpy()[keep], SCORE: prob[keep]})
    return out.drop_duplicates([s.USER_ID, s.ITEM_ID]).reset_index(drop=True)
