"""Top-10 lists per customer from LSTMRecommender, trained on the weeks before the cut-off only.

``lstm_recommender(events, cutoff, users)`` is the ranking function the evaluation harness calls;
``lstm_recommender_store(root, cutoff, users)`` does the same over the store's committed raw files
(the production path). Both train a fresh model: training cut-offs are the ``train_weeks`` weekly
cut-offs before ``cutoff`` (cutoff - 7, - 14, ...); each one's features come from data before it and
its labels from the 7 days after it, which all end by ``cutoff``, so the week being predicted is
never read. The latest labelled week (cutoff - 7) is the validation set, with full candidate lists.
Training customers bought in the ``active_days`` before their cut-off and in its label week; where
more than ``train_customers`` do, a sample of that many (stratified by their purchase lines in those
days, pipeline.sampling) trains, so training time stops growing with the shop; negatives are
subsampled (``train_negatives`` per customer-week), positives all kept. The validation week's
customers are bounded the same way by the ``validation_customers`` budget (``validation_customers()``
gives that sample, which the judge scores the baselines on too), so its pairs, at most the budget x
``n_candidates``, stop growing with the shop as well.

    python -c "from datetime import date; import numpy as np; from recsys.nextbasket.recommend import *; \
print(lstm_recommender_store('/tmp/cust-store', date(2011, 12, 3), np.array(['12347', '12748'])))"
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CustomerModelConfig
from pipeline.eventdb import release_buffers
from pipeline.sampling import sample_customers
from pipeline.schemas import LABEL, SCORE
from pipeline.store import Store
from recsys.nextbasket.retrieval import retrieve
from recsys.nextbasket.features import build_features
from recsys.nextbasket.histories import (
    NoCustomerHistoryError,
    WeeklyCrowd,
    active_users,
    check_customers,
    iter_histories,
    open_events,
    open_store,
    purchase_lines,
    purchased_items,
)
from recsys.nextbasket.model import LSTMRecommender

log = logging.getLogger(__name__)

RESULT_COLUMNS = [s.USER_ID, s.ITEM_ID, SCORE]
Trend = dict[str, float] | None


def lstm_recommender(events: pd.DataFrame, cutoff: date, users: np.ndarray,
                     cfg: CustomerModelConfig = CustomerModelConfig(), trend: Trend = None) -> pd.DataFrame:
    """[user_id, item_id, score], up to ``top_k`` rows per user, best first; events before ``cutoff`` only."""
    cutoff = _as_date(cutoff)
    return recommend(open_events(events, cfg), cutoff, users, cfg, trend, _run_dir(cfg.log_dir, cutoff))


def lstm_recommender_store(root: str | Path, cutoff: date, users: np.ndarray,
                           cfg: CustomerModelConfig = CustomerModelConfig(), trend: Trend = None) -> pd.DataFrame:
    """As lstm_recommender, reading the store's committed raw files (later events are filtered out).

    TensorBoard logs go to the store's runs/ unless ``log_dir`` is set.
    """
    cutoff = _as_date(cutoff)
    run_dir = _run_dir(cfg.log_dir or str(Store(root).runs), cutoff)
    return recommend(open_store(str(root), cfg), cutoff, users, cfg, trend, run_dir)


def retrieved_pairs(events: pd.DataFrame, cutoff: date, users: np.ndarray,
                    cfg: CustomerModelConfig = CustomerModelConfig()) -> pd.DataFrame:
    """(user_id, item_id) the model retrieves and scores for ``users`` at ``cutoff`` (events before it only);
    empty when no customer has a history (the model then scores nobody)."""
    con = open_events(events[pd.to_datetime(events[s.EVENT_DATE]) < pd.Timestamp(_as_date(cutoff))], cfg)
    try:
        pairs = [retrieve(hist, cfg)[[s.USER_ID, s.ITEM_ID]] for hist in iter_histories(con, _as_date(cutoff), cfg,
                                                                                       users)]
    except NoCustomerHistoryError:
        pairs = []
    return pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=[s.USER_ID, s.ITEM_ID])


def recommend(con: duckdb.DuckDBPyConnection, cutoff: date, users: np.ndarray, cfg: CustomerModelConfig,
              trend: Trend = None, run_dir: Path | None = None) -> pd.DataFrame:
    """Train on the weeks before ``cutoff`` and rank ``users``; popularity when no customer history exists."""
    try:
        check_customers(con, cutoff, cfg)
        model = fit_recommender(con, cutoff, cfg, trend, run_dir)
        return rank_users(model, con, cutoff, users, cfg, trend)
    except NoCustomerHistoryError as exc:
        log.warning("customer model cannot run (%s); falling back to the recent best sellers for every user", exc)
        return popular_lists(con, cutoff, users, cfg)


def fit_recommender(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig, trend: Trend = None,
                    run_dir: Path | None = None) -> LSTMRecommender:
    """An LSTMRecommender fitted on training cut-offs cutoff - 14 ... and validated on cutoff - 7 (their
    crowd tables counted once for all, WeeklyCrowd)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    parts = []
    with WeeklyCrowd(con, cutoff - timedelta(weeks=1), cfg.train_weeks, cfg) as crowd:
        for k in range(2, cfg.train_weeks + 1):
            try:
                parts.append(labelled_pairs(con, cutoff - timedelta(weeks=k), cfg, trend, rng, crowd=crowd))
            except NoCustomerHistoryError as exc:
                log.info("training cut-off %s skipped: %s", cutoff - timedelta(weeks=k), exc)
        if not parts:
            raise NoCustomerHistoryError(f"no training cut-off before {cutoff} has customer history")
        train = _stack(parts)
        val = labelled_pairs(con, cutoff - timedelta(weeks=1), cfg, trend, None, cfg.validation_customers, crowd)
    release_buffers(con, cfg.memory_limit)  # the histories' queries are done: their memory goes to training
    log.info("customer model at %s: %d training pairs (%.1f %% positive), %d validation pairs, features %.1f s",
             cutoff, len(train[2]), 100 * train[2].mean(), len(val[2]), time.perf_counter() - t0)
    return LSTMRecommender(cfg).fit(train, val, run_dir)


def labelled_pairs(con: duckdb.DuckDBPyConnection, at: date, cfg: CustomerModelConfig, trend: Trend,
                   rng: np.random.Generator | None, budget: int | None = None,
                   crowd: WeeklyCrowd | None = None) -> tuple:
    """(seq, static, label, user codes, targets per user) of the retrieved pairs at ``at``, labels from [at, at + 7).

    ``rng`` subsamples negatives to ``train_negatives`` per customer; None keeps every candidate.
    ``budget``: customers kept (``week_customers``), 0 = every one; None = ``train_customers`` with ``rng``
    (training), every one without. ``crowd``: the crowd tables of ``at`` (iter_histories).
    """
    if budget is None:
        budget = cfg.train_customers if rng is not None else 0
    bought = purchased_items(con, at, at + timedelta(weeks=1))
    users = week_customers(con, at, cfg, budget, bought)
    bought = bought[bought[s.USER_ID].isin(users)]  # the week's other buyers are never looked up
    n_targets = bought.groupby(s.USER_ID).size()
    seqs, statics, labels, groups = [], [], [], []
    for hist in iter_histories(con, at, cfg, users, crowd=crowd):
        pairs = retrieve(hist, cfg, trend)
        pairs[LABEL] = pairs.merge(bought.assign(_b=1.0), on=[s.USER_ID, s.ITEM_ID], how="left")["_b"].fillna(0.0)
        if rng is not None:
            pairs = _subsample(pairs, cfg.train_negatives, rng)
        seq, static = build_features(hist, pairs, cfg, trend)
        seqs.append(seq), statics.append(static), labels.append(pairs[LABEL].to_numpy(np.float32))
        groups.append(n_targets.index.get_indexer(pairs[s.USER_ID]))
    return (np.concatenate(seqs), np.concatenate(statics), np.concatenate(labels), np.concatenate(groups),
            n_targets.to_numpy())


def week_customers(con: duckdb.DuckDBPyConnection, at: date, cfg: CustomerModelConfig, budget: int,
                   bought: pd.DataFrame | None = None) -> np.ndarray:
    """The customers labelled at ``at``, sorted: active in the ``active_days`` before it and buying in
    [at, at + 7); where more than ``budget`` (> 0) are, the sample of ``budget`` stratified by their
    purchase lines in those days (pipeline.sampling, ``seed``: the same customers every time)."""
    if bought is None:
        bought = purchased_items(con, at, at + timedelta(weeks=1))
    users = np.intersect1d(active_users(con, at, cfg.active_days), bought[s.USER_ID].unique())
    if not len(users):
        raise NoCustomerHistoryError(f"no customer active in the {cfg.active_days} days before {at} bought in its week")
    if 0 < budget < len(users):
        keep = sample_customers(users, purchase_lines(con, at, cfg.active_days, users), budget, cfg.seed)
        log.info("cut-off %s: %d of %d customers sampled (a budget of %d)", at, keep.sum(), len(users), budget)
        users = users[keep]
    return users


def validation_customers(con: duckdb.DuckDBPyConnection, cutoff: date, cfg: CustomerModelConfig) -> np.ndarray:
    """The customers of the validation week [cutoff - 7, cutoff) of a model for ``cutoff``: those
    ``fit_recommender`` validates on (``validation_customers``' sample), whom the judge scores the
    baselines on."""
    return week_customers(con, cutoff - timedelta(weeks=1), cfg, cfg.validation_customers)


def rank_users(model: LSTMRecommender, con: duckdb.DuckDBPyConnection, cutoff: date, users: np.ndarray,
               cfg: CustomerModelConfig, trend: Trend = None) -> pd.DataFrame:
    """Top ``top_k`` retrieved items per user by the model's score, one customer batch at a time."""
    out = []
    for hist in iter_histories(con, cutoff, cfg, users):
        pairs = retrieve(hist, cfg, trend)
        pairs[SCORE] = model.score(*build_features(hist, pairs, cfg, trend))
        out.append(_top(pairs, cfg.top_k))
    ranked = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=RESULT_COLUMNS)
    missing = np.setdiff1d(np.asarray(users, dtype=object).astype(str), ranked[s.USER_ID].unique())
    if len(missing):
        log.info("%d users have no purchase in the lookback: they get the recent best sellers", len(missing))
        ranked = pd.concat([ranked, popular_lists(con, cutoff, missing, cfg)], ignore_index=True)
    return ranked.reset_index(drop=True)


def popular_lists(con: duckdb.DuckDBPyConnection, cutoff: date, users: np.ndarray,
                  cfg: CustomerModelConfig) -> pd.DataFrame:
    """The same ``top_k`` recent best sellers (purchase lines in the last ``recent_weeks``, guests too) per user."""
    sql = (f"SELECT {s.ITEM_ID}, count(*)::DOUBLE AS {SCORE} FROM events WHERE {s.QUANTITY} > 0 "
           f"AND {s.EVENT_DATE} >= $start AND {s.EVENT_DATE} < $cutoff GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {cfg.top_k}")
    top = con.execute(sql, {"start": cutoff - timedelta(weeks=cfg.recent_weeks), "cutoff": cutoff}).df()
    frame = pd.DataFrame({s.USER_ID: np.asarray(users, dtype=object).astype(str)}).merge(top, how="cross")
    return frame[RESULT_COLUMNS]


def _stack(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seq, static, label) of every training cut-off's pairs, one after the other; each part's arrays are
    let go as they are copied (``parts`` is emptied), so the peak is the result plus one part's array, not
    twice the training set."""
    sizes = [len(p[2]) for p in parts]
    out = tuple(np.empty((sum(sizes), *parts[0][i].shape[1:]), parts[0][i].dtype) for i in range(3))
    start = 0
    for size in sizes:
        part = list(parts.pop(0))
        for i in range(3):
            out[i][start:start + size], part[i] = part[i], None
        start += size
    return out


def _top(pairs: pd.DataFrame, k: int) -> pd.DataFrame:
    pairs = pairs.sort_values([s.USER_ID, SCORE, s.ITEM_ID], ascending=[True, False, True], kind="stable")
    return pairs[pairs.groupby(s.USER_ID).cumcount() < k][RESULT_COLUMNS]


def _subsample(pairs: pd.DataFrame, negatives: int, rng: np.random.Generator) -> pd.DataFrame:
    """Every positive and ``negatives`` random negatives per customer."""
    neg = pairs[LABEL].to_numpy() == 0
    key = pd.Series(np.where(neg, rng.random(len(pairs)), 2.0))  # positives sort last among the keys
    rank = key.groupby(pairs[s.USER_ID].to_numpy()).rank(method="first").to_numpy()
    return pairs[~neg | (rank <= negatives)].reset_index(drop=True)


def _run_dir(log_dir: str, cutoff: date) -> Path | None:
    return Path(log_dir) / f"customer-model-{cutoff}" if log_dir else None


def _as_date(cutoff: date | datetime) -> date:
    return cutoff.date() if isinstance(cutoff, datetime) else cutoff
