"""TIFU-kNN (Hu et al., SIGIR 2020): time-decayed personal item frequency plus user-kNN, vectorised.

Why: it is the strongest simple next-basket baseline in Li et al.'s reality check (TOIS 2023); a
learned model that does not beat it is not worth its cost. Own implementation with scipy.sparse.

User vector. A customer's baskets b_0..b_(n-1) (binary item vectors, oldest first; orders, else days,
see ``baselines.basket_table``) are split into G = min(n, m) consecutive groups of near-equal size,
the smaller groups first (as the authors' code does; ``m`` is the number of groups, which is what
their code's ``group_size`` argument and the published settings mean). Group vector = (1/|g|) *
sum_i d_i b_i over its baskets; user vector = (1/G) * sum_g r_g^(m-1-g) v_g with g = m-G..m-1, so
the latest group has weight 1. The basket decay d_i has two readings, both in the grid:
``decay_over="group"``: d = r_b^(|g|-1-j), j the basket's place in its group (the paper's formula);
``decay_over="history"``: d = r_b^(n-1-i) over the whole history (the authors' code, with which the
published settings were tuned). On Online Retail "history" is the better of the two by about 0.004
Recall@10 (measured on the test weeks, for the record only).

Prediction. Neighbours: the ``neighbours`` users with the highest cosine similarity of user vectors
(the customer excluded; the authors' code uses Euclidean distance), found exactly with sparse
products in blocks of query users so memory stays bounded. score = alpha * own vector + (1 - alpha) *
mean of the neighbours' vectors; the top k items with a positive score, ties by item id.

Tuning (``tune_tifu_knn``): every setting of ``GRID`` (the paper's three, then their (r_b, r_g, m)
crossed with k in {100, 300, 900}, alpha in {0.2, 0.5, 0.7, 0.9} and both decay readings) is scored
by Recall@k on the validation week [cutoff - 7, cutoff) from the events before
cutoff - 7, with the protocol's population rule; the best wins (ties: first in GRID). It never reads
an event dated on or after the cut-off. ``tune_customers`` bounds that week's customers (the next-basket
judge passes ``[customers] validation_customers``): a sample stratified by purchase lines in the
28 days before it (pipeline.sampling, the same for the same seed); 0 tunes on every one.

    python -c "from recsys.evaluation.tifu_knn import GRID; print(len(GRID), GRID[0])"
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline import schemas as s
from pipeline.sampling import sample_customers
from recsys.evaluation import metrics
from recsys.evaluation.baselines import SEQ, basket_table
from recsys.evaluation.protocol import (ACTIVE_DAYS, K, SCORE, TARGET_DAYS, before, eligible_targets, known_purchases,
                                        rank_lists)

log = logging.getLogger(__name__)

BLOCK_CELLS = 1 << 22  # dense cells per block of query users (4M float64 = 32 MiB)
_MARGIN = 1e-9  # relative: this far below the k-th largest neighbour mean, an item cannot make a list
DECAYS = ("history", "group")


@dataclass(frozen=True)
class TifuParams:
    """TIFU-kNN hyper-parameters, in the paper's order (k, r_b, r_g, alpha, m), and the decay reading."""

    neighbours: int = 300  # k: neighbours whose vectors are averaged
    within_decay: float = 0.9  # r_b: decay between baskets of a group
    group_decay: float = 0.7  # r_g: decay between groups
    alpha: float = 0.7  # weight of the customer's own vector; 1 - alpha for the neighbours'
    groups: int = 7  # m: number of basket groups
    decay_over: str = "history"  # r_b steps over the whole "history" (authors' code) or the "group" (paper)

    def __post_init__(self) -> None:
        if self.decay_over not in DECAYS or self.groups < 1 or self.neighbours < 0:
            raise ValueError(f"TifuParams: decay_over must be one of {DECAYS}, groups >= 1 and "
                             f"neighbours >= 0; got {self}")


PAPER_PARAMS = {
    "instacart": TifuParams(900, 0.9, 0.7, 0.9, 3),
    "dunnhumby": TifuParams(900, 0.9, 0.6, 0.2, 3),
    "tafeng": TifuParams(300, 0.9, 0.7, 0.7, 7),
}
GRID = tuple(dict.fromkeys([
    *PAPER_PARAMS.values(),
    *(TifuParams(k, p.within_decay, p.group_decay, a, p.groups, decay)
      for decay in DECAYS for p in PAPER_PARAMS.values()
      for k, a in itertools.product((100, 300, 900), (0.2, 0.5, 0.7, 0.9))),
]))


def user_vectors(table: pd.DataFrame, params: TifuParams) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """The TIFU user vectors of ``basket_table`` rows: (users x items CSR, user ids, item ids), ids sorted."""
    layout = _BasketLayout.of(table)
    return layout.vectors(params), layout.users, layout.items


@dataclass(frozen=True)
class _BasketLayout:
    """What the user vectors of every setting share: ids, each row's user and item index, its basket's place."""

    users: pd.Index
    items: pd.Index
    rows: np.ndarray  # user index of each basket_table row
    cols: np.ndarray  # item index
    n: np.ndarray  # baskets of the row's user
    i: np.ndarray  # the row's basket number (SEQ)

    @classmethod
    def of(cls, table: pd.DataFrame) -> _BasketLayout:
        users = pd.Index(np.sort(table[s.USER_ID].unique()))
        items = pd.Index(np.sort(table[s.ITEM_ID].unique()))
        return cls(users, items, users.get_indexer(table[s.USER_ID]), items.get_indexer(table[s.ITEM_ID]),
                   table.groupby(s.USER_ID)[SEQ].transform("max").to_numpy(np.int64) + 1,
                   table[SEQ].to_numpy(np.int64))

    def vectors(self, params: TifuParams) -> sp.csr_matrix:
        """The users x items CSR of the TIFU user vectors under ``params`` (module docstring)."""
        n, i, m = self.n, self.i, params.groups
        size = n // m  # baskets in the small groups (0 when n < m: one group per basket)
        extra = n - size * m  # the last `extra` groups hold one basket more
        split = (m - extra) * size
        small = i < split
        group = np.where(small, i // np.maximum(size, 1), m - extra + (i - split) // (size + 1))
        group_len = np.where(small, size, size + 1)
        pos = np.where(small, i - group * size, (i - split) % (size + 1))
        back = n - 1 - i if params.decay_over == "history" else group_len - 1 - pos  # baskets since this one
        weight = (params.group_decay ** (m - 1 - group) * params.within_decay ** back
                  / group_len / np.minimum(n, m))
        matrix = sp.csr_matrix((weight, (self.rows, self.cols)), shape=(len(self.users), len(self.items)))
        matrix.sum_duplicates()
        return matrix


def _neighbour_order(unit: sp.csr_matrix, unit_t: sp.csr_matrix, rows: np.ndarray, kmax: int) -> np.ndarray:
    """Per query row, the ``kmax`` most cosine-similar other users, most similar first (``unit_t``: the
    transpose of the unit vectors ``unit``, as CSR)."""
    sims = (unit[rows] @ unit_t).toarray()
    sims[np.arange(len(rows)), rows] = -np.inf  # never one's own neighbour
    kmax = min(kmax, unit.shape[0] - 1)
    if kmax <= 0:
        return np.empty((len(rows), 0), dtype=np.int64)
    part = np.argpartition(-sims, kmax - 1, axis=1)[:, :kmax]
    part.sort(axis=1)  # so equally similar chosen neighbours are ordered by index, not by partition luck
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _top_items(own: np.ndarray, mean: np.ndarray, alphas: list[float],
               k: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per alpha: row and column indices (row-major) and scores of each row's top ``k`` positive
    ``alpha * own + (1 - alpha) * mean``, ties by column (item id order).

    Why not score every item: an item the customer never bought scores (1 - alpha) * mean, and the row's
    ``k`` items of the largest mean score at least that much; so only the customer's own items and the
    items whose mean is within ``_MARGIN`` of the row's k-th largest can make the list. The margin
    exceeds two roundings, so an item left out scores strictly below ``k`` others: the same lists as
    scoring the whole row, one candidate set per row for all alphas instead of one per alpha. The k-th
    largest mean is not found exactly but bounded from below: the row is cut into about 8 * k slices,
    and the k-th largest of their maxima (k of the row's values) is at most the row's k-th largest. A few
    more items may compete; none that can make the list is left out; only the maxima are partitioned.
    """
    k = min(k, mean.shape[1])
    if k == 0:
        return [(np.empty(0, dtype=np.int64),) * 2 + (np.empty(0),) for _ in alphas]
    width = max(1, mean.shape[1] // (8 * k))
    maxima = np.maximum.reduceat(mean, np.arange(0, mean.shape[1], width), axis=1)
    kth = -np.partition(-maxima, k - 1, axis=1)[:, k - 1:k]  # at most the row's k-th largest mean; from
    # the top: rows are mostly zeros, which a partition from the bottom wades through
    rows, cols = np.nonzero((own > 0) | ((mean >= kth * (1.0 - _MARGIN)) & (mean > 0)))
    mine, theirs = own[rows, cols], mean[rows, cols]
    out = []
    for alpha in alphas:
        scores = alpha * mine + (1.0 - alpha) * theirs  # as the whole row would be scored, value for value
        positive = np.flatnonzero(scores > 0)
        best = positive[np.lexsort((cols[positive], -scores[positive], rows[positive]))]
        place = np.arange(len(best)) - np.searchsorted(rows[best], rows[best])
        keep = np.sort(best[place < k])
        out.append((rows[keep], cols[keep], scores[keep]))
    return out


def _neighbour_means(vectors: sp.csr_matrix, order: np.ndarray, counts: list[int]) -> dict[int, np.ndarray]:
    """Mean vector of each row's first n neighbours for every n of ``counts`` (ascending), summed once.

    Each count's further neighbours are summed from zero, in index order, then added to the running
    total. The sums are taken by densifying one CSR row per (count, query row) that holds those
    neighbours' rows one after the other: ``toarray`` adds an item's values in that order, the same
    additions as a sparse product with a 0/1 matrix of the neighbours, without its sparse result.
    """
    slices, done = [], 0
    for n in counts:
        slices.append(order[:, done:n])
        done = max(done, min(n, order.shape[1]))
    picked = vectors[np.concatenate([np.sort(part, axis=1).ravel() for part in slices])]
    ends = np.cumsum([part.shape[1] for part in slices for _ in range(len(order))])
    stacked = sp.csr_matrix((picked.data, picked.indices, picked.indptr[np.concatenate([[0], ends])]),
                            shape=(len(ends), vectors.shape[1]))
    sums = stacked.toarray().reshape(len(slices), len(order), vectors.shape[1])
    means, total = {}, np.zeros((len(order), vectors.shape[1]))
    for n, part, width in zip(counts, sums, np.cumsum([part.shape[1] for part in slices])):
        total += part
        means[n] = total / max(int(width), 1)
    return means


def _lists(vectors: sp.csr_matrix, users: pd.Index, items: pd.Index, query: np.ndarray,
           settings: list[tuple[int, float]], k: int) -> dict[tuple[int, float], pd.DataFrame]:
    """Top-k lists of the ``query`` users for every (neighbours, alpha), one block of users at a time."""
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1))).ravel()
    unit = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ vectors)
    unit_t = unit.T.tocsr()  # once: the product would convert the transpose block after block
    rows_all = users.get_indexer(query)
    rows_all = rows_all[rows_all >= 0]  # a customer without history gets no list
    block = max(1, BLOCK_CELLS // max(vectors.shape[0], vectors.shape[1], 1))
    kmax = max(n for n, _ in settings)
    parts: dict[tuple[int, float], list[tuple]] = {key: [] for key in settings}
    for start in range(0, len(rows_all), block):
        rows = rows_all[start:start + block]
        order = _neighbour_order(unit, unit_t, rows, kmax)
        own = vectors[rows].toarray()
        means = _neighbour_means(vectors, order, sorted({n for n, _ in settings}))
        for n_neigh, mean in means.items():
            alphas = [alpha for n, alpha in settings if n == n_neigh]
            for alpha, (r, c, scores) in zip(alphas, _top_items(own, mean, alphas, k)):
                parts[(n_neigh, alpha)].append((rows[r], c, scores))
    # ids looked up once per setting, not per block: an Index's to_numpy(object) builds every id anew
    user_ids, item_ids = users.to_numpy(object), items.to_numpy(object)
    empty = pd.DataFrame({s.USER_ID: pd.Series(dtype=object), s.ITEM_ID: pd.Series(dtype=object),
                          SCORE: pd.Series(dtype=float)})
    lists = {key: empty for key in parts}
    for key, found in parts.items():
        if found:
            r, c, scores = (np.concatenate(column) for column in zip(*found))
            lists[key] = pd.DataFrame({s.USER_ID: user_ids[r], s.ITEM_ID: item_ids[c], SCORE: scores})
    return lists


def _grid_lists(events: pd.DataFrame, cutoff: date, users: np.ndarray, grid: tuple[TifuParams, ...],
                k: int) -> dict[TifuParams, pd.DataFrame]:
    """Lists for every setting of ``grid``, sharing the user vectors and neighbours they have in common."""
    layout = _BasketLayout.of(basket_table(before(events, cutoff)))
    out: dict[TifuParams, pd.DataFrame] = {}
    def vector_key(p: TifuParams) -> tuple:
        return p.within_decay, p.group_decay, p.groups, p.decay_over

    for key in dict.fromkeys(map(vector_key, grid)):
        same = [p for p in grid if vector_key(p) == key]
        vectors = layout.vectors(TifuParams(0, key[0], key[1], 0.0, key[2], key[3]))
        lists = _lists(vectors, layout.users, layout.items, np.asarray(users, dtype=object),
                       list(dict.fromkeys((p.neighbours, p.alpha) for p in same)), k)
        out.update({p: lists[(p.neighbours, p.alpha)] for p in same})
    return out


def tune_tifu_knn(events: pd.DataFrame, cutoff: date, grid: tuple[TifuParams, ...] = GRID,
                  k: int = K, customers: int = 0, seed: int = 42) -> TifuParams:
    """The ``grid`` setting with the best Recall@k on the validation week [cutoff - 7, cutoff).

    Inputs are the events before cutoff - 7; the customers are those the protocol would count at
    cutoff - 7 (``customers`` > 0: at most that many, ``_tuning_sample``). Nothing dated on or after
    ``cutoff`` is read. Without a validation customer the first setting of ``grid`` is returned.
    """
    seen = before(events, cutoff)
    val_cut = cutoff - timedelta(days=TARGET_DAYS)
    targets = _tuning_sample(seen, eligible_targets(seen, val_cut), val_cut, customers, seed)
    users = np.asarray(targets[s.USER_ID].unique(), dtype=object)
    if not len(users):
        log.warning("TIFU-kNN at %s: no validation customer in the week from %s; using %s", cutoff, val_cut,
                    grid[0])
        return grid[0]
    history = known_purchases(before(seen[seen[s.USER_ID].isin(users)], val_cut))
    lists = _grid_lists(seen, val_cut, users, grid, k)
    recall = {}
    for params, frame in lists.items():
        ranked = rank_lists(frame, users, val_cut, k, "tifu_knn")
        recall[params] = metrics.summarise(metrics.score_users(ranked, targets, history, k), k)[f"recall@{k}"]
    best = max(grid, key=lambda p: (recall[p], -grid.index(p)))
    paper = {name: round(recall[p], 4) for name, p in PAPER_PARAMS.items() if p in recall}
    log.info("TIFU-kNN at %s: %s chosen on %d validation customers (Recall@%d %.4f; paper settings %s)",
             cutoff, best, len(users), k, recall[best], paper)
    return best


def tifu_knn(events: pd.DataFrame, cutoff: date, users: np.ndarray, *, params: TifuParams | None = None,
             grid: tuple[TifuParams, ...] = GRID, k: int = K, tune_customers: int = 0,
             seed: int = 42) -> pd.DataFrame:
    """TIFU-kNN lists for ``users`` at ``cutoff``; ``params`` None tunes them on the validation week (on
    at most ``tune_customers`` of its customers, 0 = all, sampled with ``seed``)."""
    chosen = params if params is not None else tune_tifu_knn(events, cutoff, grid, k, tune_customers, seed)
    return _grid_lists(events, cutoff, users, (chosen,), k)[chosen]


def _tuning_sample(seen: pd.DataFrame, targets: pd.DataFrame, val_cut: date, customers: int,
                   seed: int) -> pd.DataFrame:
    """The targets of at most ``customers`` (> 0) of the week's customers, stratified by their purchase
    lines in the protocol's active days before ``val_cut``; all of them when fewer or 0."""
    users = targets[s.USER_ID].unique()
    if not 0 < customers < len(users):
        return targets
    recent = known_purchases(before(seen, val_cut))
    recent = recent[pd.to_datetime(recent[s.EVENT_DATE]) >= pd.Timestamp(val_cut - timedelta(days=ACTIVE_DAYS))]
    lines = recent.groupby(s.USER_ID).size().reindex(users, fill_value=0).to_numpy()
    keep = sample_customers(users, lines, customers, seed)
    log.info("TIFU-kNN tuning week from %s: %d of %d customers sampled", val_cut, keep.sum(), len(users))
    return targets[targets[s.USER_ID].isin(users[keep])].reset_index(drop=True)
