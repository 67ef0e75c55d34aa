"""Reading the shop's list file for re-ranking: whole (``read_candidates``) or in batches of users (``ListFile``).

A list file is parquet or CSV (by suffix) with the shop's column names (``[rerank.columns]``,
pipeline.lists.map_columns). ``read_candidates`` reads it whole and validates it: the required
columns, no null ids, a numeric base_score. ``ListFile.open`` first reads only its user and segment
columns, one parquet row group at a time: the users in the order in which they first appear, cut into
batches of ``batch_users`` (``[rerank] batch_users``), and whether any row lacks a segment. Then
``batches()`` gives each batch's rows, in file order and validated as ``read_candidates`` validates
them (an error names the row of the file), reading only the row groups that hold the batch: a file
grouped by user, as `trendrec candidates` writes it, is read about once. So the batches, one after the
other, are the whole file with its users' rows brought together: ``recsys.rank.rerank`` ranks one
batch at a time and its output is the one-batch output. A CSV file is read whole (pandas), then cut
the same way; only parquet keeps memory to a batch.

    python -c "from recsys.rank.listfile import ListFile; \
print([len(b) for b in ListFile.open('data/demo/candidates.parquet', {}, 1000).batches()])"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.errors import TrendrecError
from pipeline.lists import map_columns, source_names

REQUIRED = (s.USER_ID, s.ITEM_ID, s.BASE_SCORE)


class RerankError(TrendrecError):
    """Candidate lists or trend scores are missing or malformed."""


def read_candidates(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Candidate lists from parquet or CSV (by suffix), validated: required columns, no null ids.

    ``columns`` ([rerank.columns]) maps the shop's names to trendrec's (pipeline.lists.map_columns);
    the segment column is optional: a list without one gets null segments, for the store to fill.
    """
    path = _checked_path(path)
    frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else _read_csv(path, columns or {})
    return validate_lists(frame, path, columns or {})


def validate_lists(frame: pd.DataFrame, path: Path, columns: Mapping[str, str],
                   rows: np.ndarray | None = None) -> pd.DataFrame:
    """``frame`` (rows of the file at ``path``; ``rows``: their 0-based rows in the file, None: all rows in
    order) mapped to trendrec's names and checked; a failure names the file's row and column."""
    names = source_names(columns)
    frame = map_columns(frame, columns, f"candidate file {path}", REQUIRED, RerankError)

    def row(bad: np.ndarray) -> int:
        k = int(np.argmax(bad))
        return (k if rows is None else int(rows[k])) + 1

    for column in (s.USER_ID, s.ITEM_ID):
        bad = frame[column].isna().to_numpy()
        if bad.any():
            raise RerankError(f"candidate file {path}: row {row(bad)} has no {column} (column {names[column]})")
    score = pd.to_numeric(frame[s.BASE_SCORE], errors="coerce")
    if score.isna().any():
        raise RerankError(f"candidate file {path}: row {row(score.isna().to_numpy())} "
                          f"has a non-numeric {s.BASE_SCORE} (column {names[s.BASE_SCORE]})")
    segment = (frame[s.SEGMENT].map(str, na_action="ignore") if s.SEGMENT in frame.columns  # missing stays missing
               else pd.Series(None, index=frame.index, dtype=object))
    return frame.assign(**{s.BASE_SCORE: score.astype(float), s.SEGMENT: segment})


@dataclass(frozen=True)
class ListFile:
    """A list file cut into batches of users in first-appearance order (``open``, then ``batches``)."""

    path: Path
    columns: Mapping[str, str]
    read: Callable[[int, list[str] | None], pd.DataFrame]  # row group k of the file: these columns (None: all)
    header: pd.DataFrame  # no rows, the file's columns
    offsets: np.ndarray  # the file row of each group's first row, and the number of rows last
    row_batches: list[np.ndarray]  # per group: each row's batch
    n_batches: int
    n_users: int
    missing_segments: bool  # some row has no segment (none, null or empty): the store fills them

    @classmethod
    def open(cls, path: str | Path, columns: Mapping[str, str], batch_users: int) -> ListFile:
        """Read the user (and segment) column of ``path``: the users' batches, whether segments are missing."""
        if batch_users < 1:
            raise RerankError(f"rerank.batch_users must be >= 1, got {batch_users}")
        path, names = _checked_path(path), source_names(columns)
        read, header, n_groups = _reader(path, columns)
        map_columns(header, columns, f"candidate file {path}", REQUIRED, RerankError)  # the columns, before any row
        user, segment = names[s.USER_ID], names[s.SEGMENT]
        wanted = [user, *([segment] if segment in header.columns else [])]
        batch_of: dict[object, int] = {}
        offsets, row_batches, missing = [0], [], segment not in header.columns
        for k in range(n_groups):
            group = read(k, wanted)
            row_batches.append(_assign_batches(group[user], batch_of, batch_users, path, user, offsets[-1]))
            offsets.append(offsets[-1] + len(group))
            if not missing and segment in group.columns:
                values = group[segment]
                missing = bool(values.isna().any() or (values.astype(object) == "").any())
        n_batches = max(1, -(-len(batch_of) // batch_users))  # an empty file is one empty batch
        return cls(path, columns, read, header, np.asarray(offsets), row_batches, n_batches, len(batch_of), missing)

    def batches(self) -> Iterator[pd.DataFrame]:
        """Each batch's rows, validated (``validate_lists``), in file order; batch after batch."""
        groups: dict[int, list[int]] = {}
        for k, batch in enumerate(self.row_batches):
            for b in np.unique(batch).tolist():
                groups.setdefault(b, []).append(k)
        held: tuple[int, pd.DataFrame] | None = None  # a group spanning two batches is read once
        for b in range(self.n_batches):
            pieces, rows = [self.header], [np.zeros(0, np.int64)]
            for k in groups.get(b, []):
                if held is None or held[0] != k:
                    held = (k, self.read(k, None))
                take = self.row_batches[k] == b
                pieces.append(held[1][take])
                rows.append(self.offsets[k] + np.flatnonzero(take))
            frame = pd.concat(pieces[1:], ignore_index=True) if len(pieces) > 2 else pieces[-1].reset_index(drop=True)
            yield validate_lists(frame, self.path, self.columns, np.concatenate(rows))


def _reader(path: Path, columns: Mapping[str, str]) -> tuple[Callable[[int, list[str] | None], pd.DataFrame],
                                                               pd.DataFrame, int]:
    """(read group k's columns (None: all) as read_parquet reads them, the empty frame of the file's columns,
    the number of groups): a parquet file's row groups, or a CSV file read whole as one group."""
    if path.suffix.lower() == ".parquet":
        file = pq.ParquetFile(path)
        return (lambda k, cols: file.read_row_group(k, columns=cols).to_pandas(),
                file.schema_arrow.empty_table().to_pandas(), file.num_row_groups)
    whole = _read_csv(path, columns)
    return (lambda k, cols: whole if cols is None else whole[cols]), whole.iloc[:0], 1


def _assign_batches(users: pd.Series, batch_of: dict[object, int], batch_users: int, path: Path, column: str,
                    offset: int) -> np.ndarray:
    """Each row's batch; a user first seen here joins the batches in order of first appearance."""
    null = users.isna().to_numpy()
    if null.any():
        raise RerankError(f"candidate file {path}: row {offset + int(np.argmax(null)) + 1} has no {s.USER_ID} "
                          f"(column {column})")
    codes, uniques = pd.factorize(users)
    batch = np.empty(len(uniques), np.int32)  # 4 bytes a row of the file: all that is held of it
    for k, u in enumerate(uniques.tolist()):
        batch[k] = batch_of.setdefault(u, len(batch_of)) // batch_users
    return batch[codes]


def _checked_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise RerankError(f"candidate file {path} not found")
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise RerankError(f"candidate file {path}: expected a .parquet or .csv file")
    return path


def _read_csv(path: Path, columns: Mapping[str, str]) -> pd.DataFrame:
    names = source_names(columns)
    return pd.read_csv(path, dtype={names[c]: str for c in (s.USER_ID, s.ITEM_ID, s.SEGMENT)})
