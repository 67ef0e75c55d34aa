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
the items the events never had (``unknown_items``) are in the summary too. The file is ranked
``[rerank] batch_users`` users at a time (recsys.rank.listfile: users in first-appearance order), each
batch with only its users' scores, and written through one parquet writer: memory follows the batch,
not the number of customers, and the file, summary and skew record are those of a single batch.

    trendrec rerank --candidates data/demo/candidates.parquet --json
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.lists import MAX_LISTED, item_segments, with_store_segments
from pipeline.store import Store, sweep_temp, write_parquet_batches, writing_into
from recsys import registry
from recsys.rank.blend import SIGNALS
# RerankError and read_candidates are re-exported: callers import them from here
from recsys.rank.listfile import ListFile, RerankError, read_candidates  # noqa: F401
from recsys.rank.scores import ScoreIndex
from recsys.rank.signals import ReleaseSignals, rank_rows, trend_weight
from recsys.monitor.skew import SkewCounter, count_lists, scored_items

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (*s.CANDIDATE_COLUMNS, s.TREND, s.SCORE, s.SIGNAL, s.FINAL_SCORE, s.RANK)


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


def run_rerank(cfg: Config, candidates_path: str | Path | None = None,
               output: str | Path | None = None) -> dict[str, Any]:
    """Re-rank a candidate file with the production release into reranked/<name>.parquet.

    ``lists_changed`` counts the users whose order differs from ordering by base_score alone;
    ``signals`` counts the rows each signal ranked; ``unknown_segments`` the rows per segment the
    production trend table does not know (they are neutral: a warning names them);
    ``segments_from_store`` the rows whose segment came from the store's events and ``unknown_items``
    the rows without a segment whose item the events never had (count and the first items).
    The lists go ``[rerank] batch_users`` users at a time (recsys.rank.listfile), each batch with its
    users' push-time scores only, into one parquet writer: memory follows the batch, and the file and
    the summary are the ones a single batch gives.
    """
    store = Store(cfg.store)
    path = candidates_path or cfg.rerank.candidates
    if not path:
        raise RerankError("no candidate file: pass --candidates or set rerank.candidates in the config")
    path = Path(path)
    # the default too goes through Store.output: a reranked/ that is a symlink out of the store is refused
    target = store.output(output if output is not None else Path(store.reranked.name) / f"{path.stem}.parquet")
    lists = ListFile.open(path, cfg.rerank.columns, cfg.rerank.batch_users)
    release = _production(store)
    signals = production_signals(store, ())  # the trends; the scores are read batch by batch
    weight = trend_weight(cfg.rerank.weight, signals)
    known = item_segments(store, cfg.aggregate.memory_limit) if lists.missing_segments else None
    tally = _Tally(store, release, target)
    with writing_into(target):  # one rerank into a folder at a time: a killed one's temp files go
        sweep_temp(target)
        tally.skew.sweep()  # what is left under the skew record's name is a killed run's too
        ranked = (tally.add(*_rank_batch(frame, store, cfg, release, signals, weight, known))
                  for frame in lists.batches())
        first = next(ranked)
        schema = _file_schema(first)
        write_parquet_batches(_arrow_batches(itertools.chain([first], ranked), schema), schema, target)
        tally.skew.flush()
    _warn_unknown_items(tally.unknown_items, store)
    _warn_unknown(tally.unknown)
    log.info("re-ranked %d rows for %d users in %d batch(es) with %s into %s", tally.rows, tally.users,
             lists.n_batches, signals.version, target)
    return {"rows": tally.rows, "users": tally.users, "model_version": signals.version,
            "candidates": str(path), "output": str(target), "lists_changed": tally.lists_changed,
            "weight": weight, "weight_from": "config" if cfg.rerank.weight is not None else "release",
            "customer_weight": cfg.rerank.customer_weight, "signals": tally.signals,
            "customers_scored": tally.customers_scored, "unknown_segments": dict(sorted(tally.unknown.items())),
            "segments_from_store": tally.segments_from_store, "unknown_items": tally.unknown_items}


def production_signals(store: Store, users: Iterable[object] | None) -> ReleaseSignals:
    """The production release's trends and the push-time scores of ``users``; RerankError when none."""
    release = _production(store)
    signals = ReleaseSignals.load(release, users)
    if release.scores_file is None:
        log.info("%s has no customer scores: every list is ranked by segment trends", release.version)
    return signals


def _production(store: Store) -> registry.Release:
    release = registry.production(store)
    if release is None:
        raise RerankError(f"no production model in {store.models}: run `trendrec push`")
    return release


def _rank_batch(frame: pd.DataFrame, store: Store, cfg: Config, release: registry.Release,
                signals: ReleaseSignals, weight: float, known: Mapping[str, str] | None) -> tuple:
    """One batch's lists with their segments filled, its signals (its users' scores) and its ranked rows."""
    candidates, looked_up = with_store_segments(frame, store, cfg.aggregate.memory_limit, known)
    batch = signals.for_users(release, candidates[s.USER_ID].astype(str).unique())
    return candidates, batch, rank_candidates(candidates, batch, weight, cfg.rerank.customer_weight), looked_up


class _Tally:
    """The summary's counts and the skew record (monitor/skew/, recsys.monitor.skew), batch by batch.

    The record is named after the output, so re-running the same rerank the same day replaces it; it is
    written once, at the end, and counted on the day the run started."""

    def __init__(self, store: Store, release: registry.Release, target: Path):
        self.rows = self.users = self.lists_changed = self.customers_scored = self.segments_from_store = 0
        self.signals = dict.fromkeys(SIGNALS, 0)
        self.unknown: Counter[str] = Counter()
        self.unknown_items: dict[str, Any] = {"count": 0, "items": []}
        digest = hashlib.sha256(str(Path(target).resolve()).encode("utf-8")).hexdigest()[:16]
        self.skew = SkewCounter(store, "rerank", flush_seconds=math.inf, name=f"rerank-{digest}.json")
        self._items, self._version = scored_items(release), release.version
        self._day = datetime.datetime.now(datetime.timezone.utc).date()

    def add(self, candidates: pd.DataFrame, signals: ReleaseSignals, result: pd.DataFrame,
            looked_up: dict[str, Any]) -> pd.DataFrame:
        """Count one batch (its users are in no other batch); ``result`` back."""
        self.rows += len(result)
        self.users += int(result[s.USER_ID].nunique())
        self.lists_changed += _lists_changed(candidates, signals, result)
        counts = result[s.SIGNAL].value_counts()
        self.signals = {name: self.signals[name] + int(counts.get(name, 0)) for name in SIGNALS}
        self.customers_scored += int(result.loc[result[s.SIGNAL] == "customer_model", s.USER_ID].nunique())
        segments = candidates[s.SEGMENT].tolist()
        self.unknown.update(signals.unknown_segments(segments, signals.trend_of(segments)))
        self.segments_from_store += looked_up["segments_from_store"]
        unknown = looked_up["unknown_items"]
        self.unknown_items = {"count": self.unknown_items["count"] + unknown["count"],  # the first, sorted
                              "items": sorted({*self.unknown_items["items"], *unknown["items"]})[:MAX_LISTED]}
        count_lists(self.skew, self._version, candidates[s.USER_ID].astype(str).tolist(),
                    candidates[s.ITEM_ID].astype(str).tolist(), segments, signals.scores.__contains__,
                    self._items.__contains__, signals.trends, self._day)
        return result


def _file_schema(first: pd.DataFrame) -> pa.Schema:
    """The output's schema, from the first batch; a column all null there (segments none of its rows has)
    is typed as pandas types a column with some text (later batches may have some, as the whole file)."""
    schema = pa.Table.from_pandas(first, preserve_index=False).schema
    nulls = [f.name for f in schema if pa.types.is_null(f.type)]
    if not nulls:
        return schema
    text = pd.DataFrame({"t": np.array(["", None], dtype=object)}).dtypes["t"]  # str in pandas 3, else object
    return pa.Table.from_pandas(first.iloc[:0].astype(dict.fromkeys(nulls, text)), preserve_index=False).schema


def _arrow_batches(results: Iterable[pd.DataFrame], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for result in results:
        yield from pa.Table.from_pandas(result, preserve_index=False).cast(schema).to_batches()


def _lists_changed(candidates: pd.DataFrame, signals: ReleaseSignals, result: pd.DataFrame) -> int:
    """Users whose re-ranked order differs from the order of base_score alone (weights 0)."""
    unchanged = rank_candidates(candidates, signals, 0.0, 0.0)
    moved = result[s.ITEM_ID].to_numpy() != unchanged[s.ITEM_ID].to_numpy()
    return int(pd.Series(moved).groupby(result[s.USER_ID].to_numpy()).any().sum())


def _warn_unknown_items(unknown: dict[str, Any], store: Store) -> None:
    if unknown["count"]:
        log.warning("%d candidate rows without a segment name items the events in %s never had; they are neutral: "
                    "%s", unknown["count"], store.raw, ", ".join(unknown["items"][:10]))


def _warn_unknown(unknown: Mapping[str, int]) -> None:
    if unknown:
        log.warning("%d candidate rows in %d segment(s) the production model does not know are neutral: %s "
                    "(`trendrec segments` lists the known ones)", sum(unknown.values()), len(unknown),
                    ", ".join(sorted(unknown)[:10]))
