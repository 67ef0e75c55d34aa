"""Next-basket metrics at k: Recall, NDCG, PHR and the repeat / explore split of Recall.

Why a module of its own: every method of the offline next-basket protocol (``recsys.evaluation.protocol``),
the baselines and the LSTM model alike, is scored by these same pure functions, so a figure in one
table can be compared with any other. The conventions follow Li et al., "A Next Basket
Recommendation Reality Check" (TOIS 2023), with binary relevance:

- Recall@k = hits in the top k / |target|, per customer, then averaged over customers. Defined once,
  on arrays (``recall_at_k``): the protocol's ``score_users`` and the LSTM's training callback
  (recsys.nextbasket.callbacks.RecallAtK) both call it, so their figures cannot drift apart.
- NDCG@k = DCG / IDCG, DCG = sum over top-k hits of 1 / log2(rank + 1); the ideal list places
  min(k, |target|) hits first. A target the list never returns still counts in |target| and IDCG.
- PHR@k = share of customers with at least one hit in the top k.
- repeat_recall@k = hits among the customer's *repeat* targets (items the customer bought before the
  cut-off) / number of repeat targets; explore_recall@k the same over *explore* targets (never bought
  before). Each is averaged only over the customers who have at least one such target, so the two do
  not add up to Recall@k and each carries its own customer count (``repeat_users``, ``explore_users``).

Example (one customer, targets {a, b}, list a, x, b):

    python -c "import pandas as pd; from recsys.evaluation.metrics import score_users, summarise;
    r = pd.DataFrame({'user_id': ['u'] * 3, 'item_id': ['a', 'x', 'b'], 'rank': [1, 2, 3]});
    t = pd.DataFrame({'user_id': ['u', 'u'], 'item_id': ['a', 'b']});
    print(summarise(score_users(r, t, t.iloc[:1])))"
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline import schemas as s

K = 10
METRICS = ("recall", "ndcg", "phr", "repeat_recall", "explore_recall")
_PAIR = [s.USER_ID, s.ITEM_ID]


def ranks_by_score(groups: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """1-based rank of each row within its group (codes 0..G-1), highest score first; ties keep row order."""
    order = np.lexsort((-scores, groups))  # stable: equal scores rank in the order they came
    g = groups[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    ranks = np.empty(len(g), dtype=np.int64)
    ranks[order] = np.arange(len(g)) - np.repeat(start, np.diff(np.r_[start, len(g)])) + 1
    return ranks


def recall_at_k(groups: np.ndarray, ranks: np.ndarray, labels: np.ndarray, n_targets: np.ndarray,
                k: int) -> np.ndarray:
    """Per group g (codes 0..G-1): the labels of g's rows ranked 1..k, summed, / ``n_targets[g]``.

    ``ranks`` may be NaN (not in the list); ``n_targets[g]`` counts every target of the group, also
    those no row holds, so a missed target still lowers the recall. NaN where ``n_targets[g]`` is 0.
    """
    top = ranks <= k
    hits = np.bincount(groups[top], weights=np.asarray(labels, dtype=float)[top], minlength=len(n_targets))
    out = np.full(len(n_targets), np.nan)
    keep = n_targets > 0
    out[keep] = hits[keep] / n_targets[keep]
    return out


def score_users(ranked: pd.DataFrame, targets: pd.DataFrame, history: pd.DataFrame,
                k: int = K) -> pd.DataFrame:
    """One row per customer with a target: recall, ndcg, phr, repeat_recall, explore_recall.

    ``ranked`` has (user_id, item_id, rank) with rank 1 the best; ranks above ``k`` are ignored.
    ``targets`` are the distinct (user_id, item_id) bought in the target week; every customer in it
    is scored, with or without a list. ``history`` holds the (user_id, item_id) pairs bought before
    the cut-off (duplicates allowed); it splits targets into repeat and explore. repeat_recall or
    explore_recall is NaN for a customer without such a target.
    """
    tgt = targets[_PAIR].drop_duplicates()
    seen = history.loc[history[s.USER_ID].isin(tgt[s.USER_ID].unique()), _PAIR].drop_duplicates()
    tgt = tgt.merge(seen, on=_PAIR, how="left", indicator="_in_history")
    tgt["_repeat"] = (tgt.pop("_in_history") == "both").to_numpy(bool)
    top = ranked.loc[ranked[s.RANK] <= k, [*_PAIR, s.RANK]]
    tgt = tgt.merge(top, on=_PAIR, how="left")
    tgt["_hit"] = tgt[s.RANK].notna().astype(float)
    tgt["_gain"] = tgt["_hit"] / np.log2(tgt[s.RANK].fillna(1.0) + 1.0)
    tgt["_rep_hit"] = tgt["_hit"] * tgt["_repeat"]
    tgt["_exp_hit"] = tgt["_hit"] * ~tgt["_repeat"]
    per = tgt.groupby(s.USER_ID, sort=True).agg(
        n=("_hit", "size"), hits=("_hit", "sum"), dcg=("_gain", "sum"), n_rep=("_repeat", "sum"),
        rep_hits=("_rep_hit", "sum"), exp_hits=("_exp_hit", "sum"))
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))
    n_exp = per["n"] - per["n_rep"]
    codes = per.index.get_indexer(tgt[s.USER_ID])  # recall_at_k groups by row number of ``per``
    out = pd.DataFrame({
        "recall": recall_at_k(codes, tgt[s.RANK].to_numpy(float, na_value=np.nan), np.ones(len(tgt)),
                              per["n"].to_numpy(), k),
        "ndcg": per["dcg"] / ideal[np.minimum(per["n"].to_numpy(), k) - 1],
        "phr": (per["hits"] > 0).astype(float),
        "repeat_recall": (per["rep_hits"] / per["n_rep"]).where(per["n_rep"] > 0),
        "explore_recall": (per["exp_hits"] / n_exp).where(n_exp > 0),
    }, index=per.index)
    return out.reset_index()


def summarise(per_user: pd.DataFrame, k: int = K) -> dict[str, float | int]:
    """Means of ``score_users`` rows: every row (customer, or customer-week when pooled) weighs the same.

    Keys: ``recall@k``, ``ndcg@k``, ``phr@k``, ``repeat_recall@k``, ``explore_recall@k``, ``users``,
    ``repeat_users`` and ``explore_users`` (the customers each repeat/explore mean is taken over).
    Means over no customer are NaN.
    """
    out: dict[str, float | int] = {}
    for name in METRICS:
        values = per_user[name].dropna()
        out[f"{name}@{k}"] = float(values.mean()) if len(values) else math.nan
    out["users"] = int(len(per_user))
    out["repeat_users"] = int(per_user["repeat_recall"].notna().sum())
    out["explore_users"] = int(per_user["explore_recall"].notna().sum())
    return out
