"""Re-rank candidate lists with the production release: its customer scores, else its segment trends.

``run_rerank`` reads the production release (``registry.production``): the segment trends of
``Release.trend_file`` (recsys.forecast.trends: a segment's forecast for the next ``horizon`` days
against its last ``horizon`` days, in [-1, 1]) and, of ``Release.scores_file``, the push-time
customer scores of just the users in the lists (recsys.rank.scores). No model runs and TensorFlow
is never imported: the scores are the ones the release was pushed with, the same the service reads.
Every row goes through ``recsys.rank.signals.rank_rows``, the service's path too: a pair the release
scored is ranked by its probability, any other by its segment's trend, and a segment the release
does not know (or none) is neutral; all blended with the shop's ``base_score`` by the rank-safe rule
of ``recsys.rank.blend`` (only the order of base_score within a list counts). Each output row names
the signal that ranked it (``customer_model``, ``segment_trend`` or ``base``); unknown segments are
counted in the summary and logged. The shop's column names are mapped by ``[rerank.columns]``, and a
row without a segment gets its item's from the store's events (pipeline.lists): the rows filled and
the items the events never had (``unknown_items``) are in the summary too.

    trendrec rerank --candidates data/demo/candidates.parquet --json
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.lists import map_columns, source_names, with_store_segments
from pipeline.store import Store, sweep_temp, write_parquet, writing_into
from recsys import registry
from recsys.rank.blend import SIGNALS
from recsys.rank.scores import ScoreIndex
from recsys.rank.signals import ReleaseSignals, rank_rows, trend_weight
from recsys.monitor.skew import SkewCounter, count_lists, scored_items

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (*s.CANDIDATE_COLUMNS, s.TREND, s.SCORE, s.SIGNAL, s.FINAL_SCORE, s.RANK)


class RerankError(TrendrecError):
    """Candidate lists or trend scores are missing or malformed."""


def rerank(candidates: pd.DataFrame, trends: pd.DataFrame, weight: float,
           scores: pd.DataFrame | ScoreIndex | None = None, customer_weight: float = 1.0) -> pd.DataFrame:
    """Re-order each user's list by the blend rule of ``recsys.rank.blend`` (rank-safe in base_score).

    ``trends`` (segment, trend) and ``scores`` (user_id, item_id, score, or a ScoreIndex: the
    customer model's push-time probabilities) are looked up as a release's (``rank_candidates``).
    The inputs are not modified.
    """
    _require(trends, (s.SEGMENT, s.TREND), "trend scores")
    dup = trends[s.SEGMENT][trends[s.SEGMENT].duplicated()]
    if len(dup):
        raise RerankError(f"trend scores: segment(s) {sorted(dup.unique())} appear more than once")
    return rank_candidates(candidates, ReleaseSignals.of(trends, scores), weight, customer_weight)


def rank_candidates(candidates: pd.DataFrame, signals: ReleaseSignals, weight: float,
                    customer_weight: float = 1.0) -> pd.DataFrame:
    """Every list of ``candidates`` through ``rank_rows``: the release's signals, blended per user.

    A pair without a score falls back to its segment's trend, and a segment the trends do not know
    (or null) is neutral and shows ``signal = "base"``. User and item ids are compared with the score
    table's as strings. Users keep the order in which they first appear, every row is kept, ties go
    to the higher base_score, then keep their input order; rank is 1-based per user.
    """
    _check(candidates, weight, customer_weight)
    base = candidates[s.BASE_SCORE].to_numpy(float)
    codes = pd.factorize(candidates[s.USER_ID])[0]
    if len(signals.scores):
        users, items = candidates[s.USER_ID].astype(str).tolist(), candidates[s.ITEM_ID].astype(str).tolist()
    else:  # no score table: every lookup misses, no ids to convert
        users, items = None, [None] * len(candidates)
    ranked = rank_rows(signals, codes, users, items, candidates[s.SEGMENT].tolist(), base, weight,
                       customer_weight)
    order = ranked.blended.order
    columns = {c: candidates[c].array.take(order) for c in s.CANDIDATE_COLUMNS}
    columns |= {s.TREND: np.nan_to_num(ranked.trend)[order], s.SCORE: ranked.score[order],
                s.SIGNAL: np.asarray(SIGNALS, dtype=object)[ranked.blended.signal[order]],
                s.FINAL_SCORE: ranked.blended.final[order], s.RANK: ranked.blended.rank}
    return pd.DataFrame(columns, copy=False)[list(OUTPUT_COLUMNS)]


def _check(candidates: pd.DataFrame, weight: float, customer_weight: float) -> None:
    for name, value in (("weight", weight), ("customer_weight", customer_weight)):
        if not 0.0 <= value <= 1.0:
            raise RerankError(f"rerank {name} must be in [0, 1], got {value}")
    _require(candidates, s.CANDIDATE_COLUMNS, "candidates")
    if candidates[s.USER_ID].isna().any():
        raise RerankError(f"candidates: {s.USER_ID} must not be null")
    base = candidates[s.BASE_SCORE].to_numpy(float)
    if not np.isfinite(base).all():
        row = int(np.flatnonzero(~np.isfinite(base))[0])
        raise RerankError(f"candidates: {s.BASE_SCORE} must be finite; row {row} has {base[row]}")


def unknown_segments(candidates: pd.DataFrame, trends: pd.DataFrame) -> dict[str, int]:
    """{segment: candidate rows} of the segments the trend table does not know (blend.unknown_segments)."""
    signals = ReleaseSignals.of(trends)
    segments = candidates[s.SEGMENT].tolist()
    return signals.unknown_segments(segments, signals.trend_of(segments))


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RerankError(f"{what}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def read_candidates(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Candidate lists from parquet or CSV (by suffix), validated: required columns, no null ids.

    ``columns`` ([rerank.columns]) maps the shop's names to trendrec's (pipeline.lists.map_columns);
    the segment column is optional: a list without one gets null segments, for the store to fill.
    """
    path, names = Path(path), source_names(columns or {})
    if not path.is_file():
        raise RerankError(f"candidate file {path} not found")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, dtype={names[c]: str for c in (s.USER_ID, s.ITEM_ID, s.SEGMENT)})
    else:
        raise RerankError(f"candidate file {path}: expected a .parquet or .csv file")
    frame = map_columns(frame, columns or {}, f"candidate file {path}", (s.USER_ID, s.ITEM_ID, s.BASE_SCORE),
                        RerankError)
    for column in (s.USER_ID, s.ITEM_ID):
        bad = frame[column].isna().to_numpy()
        if bad.any():
            raise RerankError(f"candidate file {path}: row {int(np.argmax(bad)) + 1} has no {column} "
                              f"(column {names[column]})")
    score = pd.to_numeric(frame[s.BASE_SCORE], errors="coerce")
    if score.isna().any():
        raise RerankError(f"candidate file {path}: row {int(np.argmax(score.isna().to_numpy())) + 1} "
                          f"has a non-numeric {s.BASE_SCORE} (column {names[s.BASE_SCORE]})")
    segment = (frame[s.SEGMENT].map(str, na_action="ignore") if s.SEGMENT in frame.columns  # missing stays missing
               else pd.Series(None, index=frame.index, dtype=object))
    return frame.assign(**{s.BASE_SCORE: score.astype(float), s.SEGMENT: segment})


def run_rerank(cfg: Config, candidates_path: str | Path | None = None,
               output: str | Path | None = None) -> dict[str, Any]:
    """Re-rank a candidate file with the production release into reranked/<name>.parquet.

    ``lists_changed`` counts the users whose order differs from ordering by base_score alone;
    ``signals`` counts the rows each signal ranked; ``unknown_segments`` the rows per segment the
    production trend table does not know (they are neutral: a warning names them);
    ``segments_from_store`` the rows whose segment came from the store's events and ``unknown_items``
    the rows without a segment whose item the events never had (count and the first items).
    """
    store = Store(cfg.store)
    path = candidates_path or cfg.rerank.candidates
    if not path:
        raise RerankError("no candidate file: pass --candidates or set rerank.candidates in the config")
    path = Path(path)
    # the default too goes through Store.output: a reranked/ that is a symlink out of the store is refused
    target = store.output(output if output is not None else Path(store.reranked.name) / f"{path.stem}.parquet")
    candidates, looked_up = with_store_segments(read_candidates(path, cfg.rerank.columns), store,
                                                cfg.aggregate.memory_limit)
    _warn_unknown_items(looked_up["unknown_items"], store)
    signals = production_signals(store, candidates[s.USER_ID].astype(str).unique())
    weight = trend_weight(cfg.rerank.weight, signals)
    result = rank_candidates(candidates, signals, weight, cfg.rerank.customer_weight)
    unknown = _warn_unknown(candidates, signals)
    with writing_into(target):  # one rerank into a folder at a time: a killed one's temp files go
        sweep_temp(target)
        write_parquet(pa.Table.from_pandas(result, preserve_index=False), target)
        _count_skew(store, candidates, signals, target)
    log.info("re-ranked %d rows for %d users with %s into %s", len(result), result[s.USER_ID].nunique(),
             signals.version, target)
    counts = result[s.SIGNAL].value_counts()
    return {"rows": len(result), "users": int(result[s.USER_ID].nunique()), "model_version": signals.version,
            "candidates": str(path), "output": str(target),
            "lists_changed": _lists_changed(candidates, signals, result),
            "weight": weight, "weight_from": "config" if cfg.rerank.weight is not None else "release",
            "customer_weight": cfg.rerank.customer_weight,
            "signals": {name: int(counts.get(name, 0)) for name in SIGNALS},
            "customers_scored": int(result.loc[result[s.SIGNAL] == "customer_model", s.USER_ID].nunique()),
            "unknown_segments": unknown, **looked_up}


def production_signals(store: Store, users: np.ndarray) -> ReleaseSignals:
    """The production release's trends and the push-time scores of ``users``; RerankError when none."""
    release = registry.production(store)
    if release is None:
        raise RerankError(f"no production model in {store.models}: run `trendrec push`")
    signals = ReleaseSignals.load(release, users)
    if release.scores_file is None:
        log.info("%s has no customer scores: every list is ranked by segment trends", release.version)
    return signals


def _count_skew(store: Store, candidates: pd.DataFrame, signals: ReleaseSignals, target: Path) -> None:
    """What this run could not score, into monitor/skew/ (recsys.monitor.skew: `trendrec drift` reads it).

    The record is named after the output, so re-running the same rerank the same day replaces it.
    """
    release = registry.production(store) if signals.version else None
    items = scored_items(release) if release is not None and release.version == signals.version else set()
    digest = hashlib.sha256(str(Path(target).resolve()).encode("utf-8")).hexdigest()[:16]
    counter = SkewCounter(store, "rerank", name=f"rerank-{digest}.json")
    counter.sweep()  # run_rerank holds its folder's lock: what is left under this name is a killed run's
    count_lists(counter, signals.version, candidates[s.USER_ID].astype(str).tolist(),
                candidates[s.ITEM_ID].astype(str).tolist(), candidates[s.SEGMENT].tolist(),
                signals.scores.__contains__, items.__contains__, signals.trends)
    counter.flush()


def _lists_changed(candidates: pd.DataFrame, signals: ReleaseSignals, result: pd.DataFrame) -> int:
    """Users whose re-ranked order differs from the order of base_score alone (weights 0)."""
    unchanged = rank_candidates(candidates, signals, 0.0, 0.0)
    moved = result[s.ITEM_ID].to_numpy() != unchanged[s.ITEM_ID].to_numpy()
    return int(pd.Series(moved).groupby(result[s.USER_ID].to_numpy()).any().sum())


def _warn_unknown_items(unknown: dict[str, Any], store: Store) -> None:
    if unknown["count"]:
        log.warning("%d candidate rows without a segment name items the events in %s never had; they are neutral: "
                    "%s", unknown["count"], store.raw, ", ".join(unknown["items"][:10]))


def _warn_unknown(candidates: pd.DataFrame, signals: ReleaseSignals) -> dict[str, int]:
    segments = candidates[s.SEGMENT].tolist()
    unknown = signals.unknown_segments(segments, signals.trend_of(segments))
    if unknown:
        log.warning("%d candidate rows in %d segment(s) the production model does not know are neutral: %s "
                    "(`trendrec segments` lists the known ones)", sum(unknown.values()), len(unknown),
                    ", ".join(list(unknown)[:10]))
    return unknown
