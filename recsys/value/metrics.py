"""How customer value forecasts are judged: ranking, concentration, calibration and error figures.

Every figure compares predicted spend with the actual net spend in the hold-out, over the same
customers (everyone seen before the calibration end; those who never come back count with 0).

- ``spearman``: rank correlation (ties share their mean rank).
- ``norm_gini``: the Gini of actual spend ordered by the prediction, divided by the Gini of the
  perfect order (1 = the prediction sorts customers as their actual spend does; Wang et al. 2019).
- ``top_decile_capture``: share of the actual total held by the predicted top 10 % (ceil(n / 10)).
- ``mae``: mean absolute error per customer. ``total_error``: predicted total / actual total - 1.
- ``decile_table``: mean predicted vs mean actual spend per predicted decile (the decile chart).

Ties in the prediction are broken by customer position, so every figure is deterministic.

    python -c "import numpy as np; from recsys.value.metrics import value_metrics; \
print(value_metrics(np.array([3., 2., 1., 0.]), np.array([10., 0., 5., 0.])))"
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("spearman", "norm_gini", "top_decile_capture", "mae", "total_error")


def gini(actual: np.ndarray, order_by: np.ndarray) -> float:
    """Gini of ``actual`` with customers sorted by ``order_by`` descending (Kaggle's normalized-Gini form)."""
    order = np.lexsort((np.arange(len(order_by)), -np.asarray(order_by, dtype=np.float64)))
    a = np.asarray(actual, dtype=np.float64)[order]
    total = a.sum()
    if total <= 0:
        return float("nan")
    n = len(a)
    return float((np.cumsum(a).sum() / total - (n + 1) / 2) / n)


def norm_gini(pred: np.ndarray, actual: np.ndarray) -> float:
    best = gini(actual, actual)
    return float(gini(actual, pred) / best) if best and np.isfinite(best) else float("nan")


def top_decile_capture(pred: np.ndarray, actual: np.ndarray) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    k = max(1, math.ceil(len(pred) / 10))
    top = np.lexsort((np.arange(len(pred)), -np.asarray(pred, dtype=np.float64)))[:k]
    total = actual.sum()
    return float(actual[top].sum() / total) if total > 0 else float("nan")


def value_metrics(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """The five figures of ``METRICS`` for one model (see the module doc)."""
    pred, actual = np.asarray(pred, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    rho = stats.spearmanr(pred, actual).statistic if len(pred) > 1 and np.ptp(pred) > 0 else float("nan")
    total = actual.sum()
    return {"spearman": float(rho), "norm_gini": norm_gini(pred, actual),
            "top_decile_capture": top_decile_capture(pred, actual),
            "mae": float(np.mean(np.abs(pred - actual))) if len(pred) else float("nan"),
            "total_error": float(pred.sum() / total - 1) if total > 0 else float("nan")}


def decile_table(pred: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """decile (1 = highest predicted), customers, mean predicted and mean actual spend."""
    order = np.lexsort((np.arange(len(pred)), -np.asarray(pred, dtype=np.float64)))
    rows = []
    for decile, part in enumerate(np.array_split(order, 10), start=1):
        if len(part):
            rows.append({"decile": decile, "customers": len(part), "predicted": float(np.mean(pred[part])),
                         "actual": float(np.mean(actual[part]))})
    return pd.DataFrame(rows)
