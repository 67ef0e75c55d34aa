"""Reading a release's push-time score table: (customer, item) -> the customer model's probability.

The customer model scores every active customer's candidates once, when a version is pushed
(``recsys.nextbasket.scores.write_scores``, the only place TensorFlow runs for scores). Re-ranking
only reads that table back: ``scores.parquet`` (``registry.SCORES_FILE``) of the release's
nextbasket part, found through ``registry.Release.scores_file`` (``customers/`` in versions pushed
before parts). ``ScoreIndex`` holds it as integer codes: a user and an item vocabulary (dicts) and
one sorted int64 key per (user, item) pair, so looking up any rows is two dict lookups per row and
one ``np.searchsorted``. The batch rerank loads only the users of one batch of its lists, reading
only the row groups whose user_id range can hold them (the table is sorted by user_id); the service
loads every user.
Nothing here imports TensorFlow or a model.

    python -c "from recsys.rank.scores import ScoreIndex; \
print(ScoreIndex.load('/tmp/trendrec-demo/models/v0001/customers/scores.parquet').lookup('12347'))"
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.errors import TrendrecError

log = logging.getLogger(__name__)

COLUMNS = (s.USER_ID, s.ITEM_ID, s.SCORE)  # what re-ranking reads of the score table


class ScoresError(TrendrecError):
    """A release's score table cannot be read or holds something other than probabilities."""


def read_table(path: Path, users: Iterable[object] | None = None) -> pa.Table:
    """(user_id, item_id, score) of ``users`` (None: every user) from a score table.

    For ``users`` only the row groups whose user_id statistics (min, max) can hold one of them are read:
    the table is written sorted by user_id, so a batch of users reads its own groups, not the table.
    """
    try:
        file = pq.ParquetFile(path)
        groups = None if users is None else _groups_of(file, sorted({str(u) for u in users}))
        table = file.read(columns=list(COLUMNS)) if groups is None else file.read_row_groups(groups, list(COLUMNS))
    except (OSError, pa.ArrowException) as exc:  # also a missing column
        reason = " ".join(str(exc).split())[:160]
        raise ScoresError(f"{path}: cannot read customer scores ({reason}); push the model again") from exc
    if users is not None:
        wanted = pa.array(sorted({str(u) for u in users}), pa.string())
        wanted = wanted.cast(table.schema.field(s.USER_ID).type)
        table = table.filter(pc.is_in(table[s.USER_ID], value_set=wanted))
    return table


def _groups_of(file: pq.ParquetFile, users: list[str]) -> list[int]:
    """The row groups of ``file`` that may hold one of the sorted ``users`` (every group without string stats)."""
    at = file.schema_arrow.get_field_index(s.USER_ID)
    groups = []
    for k in range(file.metadata.num_row_groups):
        stats = file.metadata.row_group(k).column(at).statistics if at >= 0 else None
        lo, hi = (stats.min, stats.max) if stats is not None and stats.has_min_max else (None, None)
        if not (isinstance(lo, str) and isinstance(hi, str)) or bisect_right(users, hi) > bisect_left(users, lo):
            groups.append(k)
    return groups


def read_scores(path: Path, users: Iterable[object] | None = None) -> pd.DataFrame:
    """(user_id, item_id, score) of ``users`` (None: all) from a score table, as a DataFrame."""
    return read_table(path, users).to_pandas()


class ScoreIndex:
    """A score table in memory for per-row lookups; ``len()`` is the number of customers it scored."""

    def __init__(self, users: list[str], items: list[str], keys: np.ndarray, scores: np.ndarray):
        # keys: user code * len(items) + item code, sorted and unique; scores: float64, aligned with keys
        self.users, self.items, self.keys, self.scores = users, items, keys, scores
        self._user = {u: i for i, u in enumerate(users)}
        self._item = {item: i for i, item in enumerate(items)}

    @classmethod
    def empty(cls) -> ScoreIndex:
        """The index of a release without a customer model: every lookup misses."""
        return cls([], [], np.zeros(0, np.int64), np.zeros(0))

    @classmethod
    def load(cls, path: Path, users: Iterable[object] | None = None) -> ScoreIndex:
        """The score table at ``path``, only ``users`` when given (the batch: the users of its lists)."""
        return cls.from_table(read_table(path, users), str(path))

    @classmethod
    def from_frame(cls, scores: pd.DataFrame) -> ScoreIndex:
        """An index of a (user_id, item_id, score) frame; ids are compared as strings."""
        frame = scores[list(COLUMNS)].astype({s.USER_ID: str, s.ITEM_ID: str, s.SCORE: float})
        return cls.from_table(pa.Table.from_pandas(frame, preserve_index=False), "customer scores")

    @classmethod
    def from_table(cls, table: pa.Table, where: str) -> ScoreIndex:
        """Code users and items, sort the pair keys; a repeated pair keeps its first score."""
        if not table.num_rows:
            return cls.empty()
        score = table[s.SCORE].to_numpy().astype(np.float64)
        if not np.isfinite(score).all() or (score < 0).any() or (score > 1).any():
            raise ScoresError(f"{where}: customer scores must be probabilities in [0, 1]; "
                              f"push the model again")
        user, item = (pc.dictionary_encode(table[c].combine_chunks()) for c in (s.USER_ID, s.ITEM_ID))
        if user.null_count or item.null_count:
            raise ScoresError(f"{where}: a customer score without a {s.USER_ID} or {s.ITEM_ID}; "
                              f"push the model again")
        n_items = len(item.dictionary)
        key = user.indices.to_numpy().astype(np.int64) * n_items + item.indices.to_numpy()
        order = np.argsort(key, kind="stable")
        key, score = key[order], score[order]
        first = np.r_[True, key[1:] != key[:-1]]
        return cls(user.dictionary.to_pylist(), item.dictionary.to_pylist(), key[first], score[first])

    def __len__(self) -> int:
        return len(self.users)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._user

    def has_item(self, item_id: object) -> bool:
        """Whether any pair of the index names ``item_id``."""
        return item_id in self._item

    def probabilities(self, users: Sequence[object] | str | None, items: Sequence[object]) -> np.ndarray:
        """Each row's probability for (users[k], items[k]); NaN where the table has no such pair.

        ``users`` may be one id (or None) for every row: one list, as the service sends it; then the
        user's pairs are read once, as ``lookup`` gives them.
        """
        n = len(items)
        if users is None or isinstance(users, str):
            get, nan = self.lookup(users).get, np.nan
            return np.fromiter((get(x, nan) for x in items), np.float64, n)
        if not len(self.keys) or not n:
            return np.full(n, np.nan)
        user, item = self._user.get, self._item.get
        u = np.fromiter((user(x, -1) for x in users), np.int64, n)
        i = np.fromiter((item(x, -1) for x in items), np.int64, n)
        key = u * len(self.items) + i
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        hit = (u >= 0) & (i >= 0) & (self.keys[pos] == key)
        return np.where(hit, self.scores[pos], np.nan)

    def lookup(self, user_id: str | None) -> dict[str, float]:
        """{item_id: probability} the model gave ``user_id``; empty for an unknown customer or None."""
        u = self._user.get(user_id, -1) if user_id is not None else -1
        if u < 0:
            return {}
        n_items, items = len(self.items), self.items
        lo, hi = np.searchsorted(self.keys, [u * n_items, (u + 1) * n_items])
        codes = (self.keys[lo:hi] % n_items).tolist()
        return dict(zip([items[c] for c in codes], self.scores[lo:hi].tolist()))
