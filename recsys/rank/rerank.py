"""Re-rank candidate lists with the production version: the customer model's scores, else segment trends.

The segment trend (recsys.forecast.trends) compares a segment's forecast for the next ``horizon``
days with its last ``horizon`` days, bounded in [-1, 1]. The customer model (recsys.nextbasket)
scored every active customer's candidates at push time (``customers/scores.parquet`` in the
version). Both are blended with the shop's ``base_score`` by the rank-safe rule of
``recsys.rank.blend``: only the order of base_score within a list counts, so logits, negative or
unnormalised scores re-rank the same as probabilities. Each output row says which signal ranked it
(``customer_model``, ``segment_trend`` or ``base`` for a segment the model does not know); unknown
segments are counted in the summary and logged.

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
from recsys.nextbasket.histories import NoCustomerHistoryError
from recsys.nextbasket.scores import CUSTOMERS_DIR, MODEL_FILE, SCORES_FILE, read_scores, score_lists
from recsys.rank.blend import SIGNALS, blend
from recsys.rank.blend import unknown_segments as count_unknown

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = (*s.CANDIDATE_COLUMNS, s.TREND, s.SCORE, s.SIGNAL, s.FINAL_SCORE, s.RANK)


class RerankError(TrendrecError):
    """Candidate lists or trend scores are missing or malformed."""


def rerank(candidates: pd.DataFrame, trends: pd.DataFrame, weight: float, scores: pd.DataFrame | None = None,
           customer_weight: float = 1.0) -> pd.DataFrame:
    """Re-order each user's list by the blend rule of ``recsys.rank.blend`` (rank-safe in base_score).

    ``scores`` (user_id, item_id, score) are the customer model's push-time probabilities; a pair
    without one falls back to its segment's trend, and a segment absent from ``trends`` (or null) is
    neutral and shows ``signal = "base"``. Users keep the order in which they first appear, every row
    is kept, ties go to the higher base_score, then keep their input order; rank is 1-based per user.
    The inputs are not modified. Vectorised: no per-user Python work.
    """
    for name, value in (("weight", weight), ("customer_weight", customer_weight)):
        if not 0.0 <= value <= 1.0:
            raise RerankError(f"rerank {name} must be in [0, 1], got {value}")
    _require(candidates, s.CANDIDATE_COLUMNS, "candidates")
    _require(trends, (s.SEGMENT, s.TREND), "trend scores")
    dup = trends[s.SEGMENT][trends[s.SEGMENT].duplicated()]
    if len(dup):
        raise RerankError(f"trend scores: segment(s) {sorted(dup.unique())} appear more than once")
    if candidates[s.USER_ID].isna().any():
        raise RerankError(f"candidates: {s.USER_ID} must not be null")
    base = candidates[s.BASE_SCORE].to_numpy(float)
    if not np.isfinite(base).all():
        row = int(np.flatnonzero(~np.isfinite(base))[0])
        raise RerankError(f"candidates: {s.BASE_SCORE} must be finite; row {row} has {base[row]}")
    trend = _segment_trends(candidates[s.SEGMENT], trends)
    prob = _customer_scores(candidates, scores)
    codes = pd.factorize(candidates[s.USER_ID])[0]
    out = blend(codes, base, trend, prob, weight, customer_weight)
    order = out.order
    columns = {c: candidates[c].array.take(order) for c in s.CANDIDATE_COLUMNS}
    columns |= {s.TREND: np.nan_to_num(trend)[order], s.SCORE: prob[order],
                s.SIGNAL: np.asarray(SIGNALS, dtype=object)[out.signal[order]],
                s.FINAL_SCORE: out.final[order], s.RANK: out.rank}
    return pd.DataFrame(columns, copy=False)[list(OUTPUT_COLUMNS)]


def customer_scores(cfg: Config, store: Store, version_dir: Path, candidates: pd.DataFrame) -> pd.DataFrame | None:
    """The version's customer model scores the shop's own lists; None when the version has none.

    The batch path runs the model on exactly the shop's (customer, item) pairs; a log without
    customer history left falls back to the push-time scores of the model's own candidates.
    """
    model_dir = version_dir / CUSTOMERS_DIR
    if not (model_dir / MODEL_FILE).is_file():
        return None
    try:
        return score_lists(store.root, model_dir, candidates, cfg.customers)
    except NoCustomerHistoryError as exc:
        log.warning("customer model cannot score these lists (%s): using its push-time scores", exc)
        return read_scores(version_dir / SCORES_FILE, candidates[s.USER_ID].unique().tolist())


def unknown_segments(candidates: pd.DataFrame, trends: pd.DataFrame) -> dict[str, int]:
    """{segment: candidate rows} of the segments the trend table does not know (blend.unknown_segments)."""
    seg, known = candidates[s.SEGMENT], trends[s.SEGMENT]
    return count_unknown(seg[~seg.isin(known)], frozenset(known.astype(str)))  # only the unknown rows, vectorised


def _customer_scores(candidates: pd.DataFrame, scores: pd.DataFrame | None) -> np.ndarray:
    """Each row's customer-model probability; NaN where the pair was not scored."""
    if scores is None or scores.empty or candidates.empty:
        return np.full(len(candidates), np.nan)
    keys = [s.USER_ID, s.ITEM_ID]
    left = candidates[keys].astype(str)
    merged = left.merge(scores[[*keys, s.SCORE]].astype({s.USER_ID: str, s.ITEM_ID: str}), on=keys, how="left")
    return merged[s.SCORE].to_numpy(float)


def _segment_trends(segments: pd.Series, trends: pd.DataFrame) -> np.ndarray:
    """Each row's trend; NaN for a segment absent from ``trends`` or null. Arrow hash lookup when it can."""
    known = np.append(trends[s.TREND].to_numpy(float), np.nan)  # the last slot: unknown
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
    """Re-rank a candidate file with the production version into reranked/<name>.parquet.

    ``lists_changed`` counts the users whose order differs from ordering by base_score alone;
    ``signals`` counts the rows each signal ranked; ``unknown_segments`` the rows per segment the
    production trend table does not know (they are neutral: a warning names them).
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
    version_dir = registry.verify_version(store, prod["version"])
    trends = read_trends(version_dir / registry.TREND_FILE)
    scores = customer_scores(cfg, store, version_dir, candidates)
    result = rerank(candidates, trends, cfg.rerank.weight, scores, cfg.rerank.customer_weight)
    unchanged = rerank(candidates, trends, 0.0, None, 0.0)  # the lists as base_score alone orders them
    moved = (result[s.ITEM_ID].to_numpy() != unchanged[s.ITEM_ID].to_numpy())
    changed = int(pd.Series(moved).groupby(result[s.USER_ID].to_numpy()).any().sum())
    unknown = unknown_segments(candidates, trends)
    if unknown:
        log.warning("%d candidate rows in %d segment(s) the production model does not know are neutral: %s "
                    "(`trendrec segments` lists the known ones)", sum(unknown.values()), len(unknown),
                    ", ".join(list(unknown)[:10]))
    if scores is None:
        log.info("%s has no customer model: every list is ranked by segment trends", prod["version"])
    write_parquet(pa.Table.from_pandas(result, preserve_index=False), target)
    log.info("re-ranked %d rows for %d users with %s into %s", len(result), result[s.USER_ID].nunique(),
             prod["version"], target)
    signals = result[s.SIGNAL].value_counts()
    return {"rows": len(result), "users": int(result[s.USER_ID].nunique()), "model_version": prod["version"],
            "candidates": str(path), "output": str(target), "lists_changed": changed,
            "weight": cfg.rerank.weight, "customer_weight": cfg.rerank.customer_weight,
            "signals": {name: int(signals.get(name, 0)) for name in SIGNALS},
            "customers_scored": int(result.loc[result[s.SIGNAL] == "customer_model", s.USER_ID].nunique()),
            "unknown_segments": unknown}
