"""Turn the production model's forecast into a trend per segment and blend it into candidate lists.

The trend of a segment compares the forecast for the next ``horizon`` days with what was sold in
the last ``horizon`` days: (forecast - recent) / (forecast + recent + eps). The score is bounded in
[-1, 1] whatever the segment's volume (a big and a small segment are comparable), symmetric (twice
as much reads +1/3, half as much -1/3), and 0 for a segment with no sales and no forecast instead of
a division by zero. Re-ranking multiplies each candidate's base_score by (1 + weight * trend), so a
weight of 0.3 moves a score by at most 30 %, items of one segment keep their relative order, and
a non-negative score never changes sign.

    trendrec rerank --candidates data/demo/candidates.parquet --json
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, read_trends, write_parquet
from recsys import registry

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (*s.CANDIDATE_COLUMNS, s.TREND, s.FINAL_SCORE, s.RANK)


class RerankError(TrendrecError):
    """Candidate lists or trend scores are missing or malformed."""


def rerank(candidates: pd.DataFrame, trends: pd.DataFrame, weight: float) -> pd.DataFrame:
    """Re-order each user's list by final_score = base_score * (1 + weight * trend).

    A segment without a trend gets 0 (neutral). Users keep the order in which they first appear,
    every row is kept, ties keep their input order (stable sort on the input position) and rank is
    1-based per user. The inputs are not modified. Vectorised: no per-user Python work, so it
    runs at millions of candidates per second (benchmarks/rerank_bench.py).
    """
    if not 0.0 <= weight <= 1.0:
        raise RerankError(f"rerank weight must be in [0, 1], got {weight}")
    _require(candidates, s.CANDIDATE_COLUMNS, "candidates")
    _require(trends, (s.SEGMENT, s.TREND), "trend scores")
    dup = trends[s.SEGMENT][trends[s.SEGMENT].duplicated()]
    if len(dup):
        raise RerankError(f"trend scores: segment(s) {sorted(dup.unique())} appear more than once")
    if candidates[s.USER_ID].isna().any():
        raise RerankError(f"candidates: {s.USER_ID} must not be null")
    trend = _segment_trends(candidates[s.SEGMENT], trends)
    final = candidates[s.BASE_SCORE].to_numpy(float) * (1.0 + weight * trend)
    codes = pd.factorize(candidates[s.USER_ID])[0]
    order, rank = rank_order(codes, final)
    columns = {c: candidates[c].array.take(order) for c in s.CANDIDATE_COLUMNS[1:]}
    users = candidates[s.USER_ID].array  # each user's block stays where it was when lists are contiguous
    columns[s.USER_ID] = users.copy() if (np.diff(codes) >= 0).all() else users.take(order)
    columns |= {s.TREND: trend[order], s.FINAL_SCORE: final[order], s.RANK: rank}
    return pd.DataFrame(columns, copy=False)[list(OUTPUT_COLUMNS)]


def _segment_trends(segments: pd.Series, trends: pd.DataFrame) -> np.ndarray:
    """Each row's trend; 0 for a segment absent from ``trends`` or null. Arrow hash lookup when it can."""
    known = np.append(trends[s.TREND].to_numpy(float), 0.0)  # the last slot is the neutral 0
    missing = len(known) - 1
    try:
        seg = pa.array(segments)
        if not (pa.types.is_string(seg.type) or pa.types.is_large_string(seg.type)):
            raise pa.ArrowInvalid("not strings")
        index = pc.index_in(seg, value_set=pa.array(trends[s.SEGMENT].astype(str)).cast(seg.type))
        index = pc.fill_null(index, missing).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        lookup = pd.Series(np.arange(missing), index=trends[s.SEGMENT])
        index = segments.map(lookup).fillna(missing).to_numpy(np.int64)
    return known[index]


def rank_order(codes: np.ndarray, final: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order (users by ``codes`` ascending, then -final, then input position) and 1-based ranks.

    Lists are padded into a users x longest-list matrix and sorted along rows (one small stable
    sort per list, all in C); a very skewed set of list lengths falls back to a global lexsort.
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    contiguous = bool((np.diff(codes) >= 0).all())
    counts = np.bincount(codes)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    width = int(counts.max())
    if contiguous and n == len(counts) * width:  # the usual batch: equal lists, one block per user
        cols = np.argsort(-final.reshape(len(counts), width), axis=1, kind="stable")
        return (cols + starts[:, None]).ravel(), np.tile(np.arange(1, width + 1), len(counts))
    grouped = np.arange(n) if contiguous else np.argsort(codes, kind="stable")
    if len(counts) * width > 4 * n + 1024:
        order = np.lexsort((np.arange(n), -final, codes))
        return order, np.arange(n) - starts[codes[order]] + 1
    keys = np.full((len(counts), width), np.nan)  # NaN pads sort after every real (even NaN) score
    row = codes[grouped]
    keys[row, np.arange(n) - starts[row]] = -final[grouped]
    cols = np.argsort(keys, axis=1, kind="stable")
    valid = np.arange(width)[None, :] < counts[:, None]
    order = grouped[(cols + starts[:, None])[valid]]
    return order, np.broadcast_to(np.arange(1, width + 1), keys.shape)[valid]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RerankError(f"{what}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def read_candidates(path: str | Path) -> pd.DataFrame:
    """Candidate lists from parquet or CSV (by suffix), validated: required columns, no null ids."""
    path = Path(path)
    if not path.is_file():
        raise RerankError(f"candidate file {path} not found")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={s.USER_ID: str, s.ITEM_ID: str, s.SEGMENT: str})
    else:
        raise RerankError(f"candidate file {path}: expected a .parquet or .csv file")
    missing = [c for c in s.CANDIDATE_COLUMNS if c not in frame.columns]
    if missing:
        raise RerankError(f"candidate file {path}: missing column(s) {', '.join(missing)}; "
                          f"expected {', '.join(s.CANDIDATE_COLUMNS)}")
    for column in (s.USER_ID, s.ITEM_ID):
        bad = frame[column].isna().to_numpy()
        if bad.any():
            raise RerankError(f"candidate file {path}: row {int(np.argmax(bad)) + 1} has no {column}")
    score = pd.to_numeric(frame[s.BASE_SCORE], errors="coerce")
    if score.isna().any():
        raise RerankError(f"candidate file {path}: row {int(np.argmax(score.isna().to_numpy())) + 1} "
                          f"has a non-numeric {s.BASE_SCORE}")
    return frame.assign(**{s.BASE_SCORE: score.astype(float), s.SEGMENT: frame[s.SEGMENT].astype(str)})


def run_rerank(cfg: Config, candidates_path: str | Path | None = None,
               output: str | Path | None = None) -> dict[str, Any]:
    """Re-rank a candidate file with the production model's trend scores into reranked/<name>.parquet.

    ``lists_changed`` counts the users whose order differs from ordering by base_score alone.
    """
    store = Store(cfg.store)
    path = candidates_path or cfg.rerank.candidates
    if not path:
        raise RerankError("no candidate file: pass --candidates or set rerank.candidates in the config")
    path = Path(path)
    target = store.output(output) if output is not None else store.reranked / f"{path.stem}.parquet"
    candidates = read_candidates(path)
    prod = registry.read_production(store)
    if prod is None:
        raise RerankError(f"no production model in {store.models}: run `trendrec push`")
    trends = read_trends(registry.verify_version(store, prod["version"]) / registry.TREND_FILE)
    result = rerank(candidates, trends, cfg.rerank.weight)
    unchanged = rerank(candidates, trends, 0.0)  # the lists as base_score alone orders them
    moved = (result[s.ITEM_ID].to_numpy() != unchanged[s.ITEM_ID].to_numpy())
    changed = int(pd.Series(moved).groupby(result[s.USER_ID].to_numpy()).any().sum())
    write_parquet(pa.Table.from_pandas(result, preserve_index=False), target)
    log.info("re-ranked %d rows for %d users with %s into %s", len(result), result[s.USER_ID].nunique(),
             prod["version"], target)
    return {"rows": len(result), "users": int(result[s.USER_ID].nunique()), "model_version": prod["version"],
            "candidates": str(path), "output": str(target), "lists_changed": changed,
            "weight": cfg.rerank.weight}
