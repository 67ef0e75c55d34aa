"""The value ensemble: BG/NBD + Gamma-Gamma, the ZILN LSTM and the RFM ridge, fitted at one cut-off.

``fit_members(days, cutoff, cfg)`` fits every member on customer-days before ``cutoff``: BG/NBD and
Gamma-Gamma on the customers' summaries at the cut-off; the LSTM and the ridge on label windows of
H days that end at or before it (training cut-offs cutoff - H, cutoff - H - step, ...: features
before each, the net spend in the H days after as the label), on at most ``train_customers``
customers (a sample stratified by purchase days, pipeline.sampling) so their time stops growing
with the shop. ``predict_members`` gives each
member's expected spend for the H days after a cut-off. ``blend_weights`` chooses the blend on a
validation window that the caller takes before the hold-out (see recsys.value.stage).

    python -c "from recsys.value.ensemble import MEMBERS; print(MEMBERS)"
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import ValueConfig
from pipeline.sampling import sample_customers
from recsys.value import bgnbd as bg
from recsys.value.data import DAY, window_spend
from recsys.value.features import Features, build_features
from recsys.value.metrics import value_metrics
from recsys.value.rfm import RidgeModel, fit_ridge

log = logging.getLogger(__name__)

MEMBERS = ("bgnbd_gg", "lstm", "rfm")  # the ensemble's members, in this order everywhere
ENSEMBLE = "ensemble"
MIN_TRAIN_DAYS = 28  # a training cut-off needs this many days of log before it


@dataclass
class Members:
    cutoff: date
    horizon: int
    bgnbd: bg.BGNBD
    gamma_gamma: bg.GammaGamma
    lstm: object | None = None  # recsys.value.ziln.ValueLSTM (TensorFlow: imported when fitted)
    ridge: RidgeModel | None = None
    notes: dict[str, str] = field(default_factory=dict)  # why a member is missing
    seconds: dict[str, float] = field(default_factory=dict)  # fitting time per member


@dataclass(frozen=True)
class Prediction:
    """Per customer of ``features``: each member's expected spend, BG/NBD's orders and P(alive), the LSTM's band."""

    users: np.ndarray
    spend: dict[str, np.ndarray]  # member -> expected spend over the horizon
    expected_orders: np.ndarray
    p_alive: np.ndarray
    lstm_band: tuple[np.ndarray, np.ndarray] | None  # (p10, p90) of the LSTM's ZILN, when fitted


def fit_members(days: pd.DataFrame, cutoff: date, cfg: ValueConfig, run_dir: Path | None = None) -> Members:
    """Every member fitted on customer-days before ``cutoff`` (BG/NBD failing raises ValueFitError)."""
    started = time.monotonic()
    feats = build_features(days, cutoff, cfg.seq_weeks)
    model, gg = _fit_bgnbd_gg(feats, cfg)
    members = Members(cutoff, cfg.horizon_days, model, gg, seconds={"bgnbd_gg": time.monotonic() - started})
    started = time.monotonic()
    train = training_windows(days, cutoff, cfg)
    if train is None:
        members.notes = {"lstm": "no training window", "rfm": "no training window"}
        log.warning("value at %s: no %d-day label window with %d days of log before it: BG/NBD + GG only",
                    cutoff, cfg.horizon_days, MIN_TRAIN_DAYS)
        return members
    seq, static, y, groups = train
    members.ridge = fit_ridge(static, y, cfg.ridge_l2)
    members.seconds["training_windows"] = time.monotonic() - started
    from recsys.value.ziln import ValueLSTM  # TensorFlow: only when the LSTM is fitted

    started = time.monotonic()
    members.lstm = ValueLSTM(cfg).fit(seq, static, y, groups, run_dir)
    members.seconds["lstm"] = time.monotonic() - started
    return members


def _fit_bgnbd_gg(feats: Features, cfg: ValueConfig) -> tuple[bg.BGNBD, bg.GammaGamma]:
    return (bg.fit_bgnbd(feats.x, feats.t_x, feats.T, cfg.bgnbd_penalizer),
            bg.fit_gamma_gamma(feats.x, feats.m_x, cfg.bgnbd_penalizer))


def training_windows(days: pd.DataFrame, cutoff: date, cfg: ValueConfig):
    """(seq, static, spend, user ids) stacked over the training cut-offs before ``cutoff``, or None.

    The statics of each window carry a BG/NBD + GG fitted at that window's own cut-off (see
    ``stacked_static``), as a prediction's carry the one fitted at the prediction's cut-off.
    """
    days = days[days[DAY] < cutoff]
    if days.empty:
        return None
    first, parts = days[DAY].min(), []
    days = _training_sample(days, cfg)
    for k in range(cfg.train_cutoffs):
        at = cutoff - timedelta(days=cfg.horizon_days + k * cfg.train_step_days)
        if (at - first).days < MIN_TRAIN_DAYS:
            break
        feats = build_features(days, at, cfg.seq_weeks)
        try:
            model, gg = _fit_bgnbd_gg(feats, cfg)
        except bg.ValueFitError as exc:
            log.info("training cut-off %s left out: %s", at, exc)
            break
        y = window_spend(days, feats.users, at, at + timedelta(days=cfg.horizon_days))
        parts.append((feats.seq, stacked_static(feats, model, gg, cfg.horizon_days), y, feats.users))
    if not parts:
        return None
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def _training_sample(days: pd.DataFrame, cfg: ValueConfig) -> pd.DataFrame:
    """The customer-days of the ``train_customers`` budget's sample (stratified by purchase days), or all."""
    active = days.groupby(s.USER_ID, sort=True).size()
    keep = sample_customers(active.index.to_numpy(), active.to_numpy(), cfg.train_customers, cfg.seed)
    if keep.all():
        return days
    log.info("value training windows: %d of %d customers sampled (value.train_customers)", keep.sum(), len(keep))
    return days[days[s.USER_ID].isin(active.index[keep])]


def _bgnbd_outputs(model: bg.BGNBD, gg: bg.GammaGamma, feats: Features, horizon: int):
    """(expected orders, P(alive), expected spend) over ``horizon`` days; 0 for customers without a purchase."""
    has = feats.static[:, 0] > 0
    orders = np.where(has, bg.expected_purchases(model, horizon / 7.0, feats.x, feats.t_x, feats.T), 0.0)
    alive = np.where(has, bg.p_alive(model, feats.x, feats.t_x, feats.T), 0.0)
    return orders, alive, orders * bg.expected_order_value(gg, feats.x, feats.m_x)


def stacked_static(feats: Features, model: bg.BGNBD, gg: bg.GammaGamma, horizon: int) -> np.ndarray:
    """The RFM statics plus BG/NBD's log1p orders, P(alive) and log1p spend: the LSTM's and ridge's inputs."""
    orders, alive, spend = _bgnbd_outputs(model, gg, feats, horizon)
    return np.column_stack([feats.static, np.log1p(orders), alive, np.log1p(spend)]).astype(np.float32)


def predict_members(members: Members, feats: Features) -> Prediction:
    """Each fitted member's expected spend over ``members.horizon`` days after ``feats.cutoff``."""
    orders, alive, bg_spend = _bgnbd_outputs(members.bgnbd, members.gamma_gamma, feats, members.horizon)
    spend, band = {"bgnbd_gg": bg_spend}, None
    static = stacked_static(feats, members.bgnbd, members.gamma_gamma, members.horizon)
    if members.lstm is not None:
        _, mean, p10, p90 = members.lstm.predict(feats.seq, static)
        spend["lstm"], band = mean, (p10, p90)
    if members.ridge is not None:
        spend["rfm"] = members.ridge.predict(static)
    # A customer with returns only has no purchase to forecast from (BG/NBD: never acquired): 0 everywhere.
    has = feats.static[:, 0] > 0
    spend = {m: np.where(has, v, 0.0) for m, v in spend.items()}
    band = None if band is None else (np.where(has, band[0], 0.0), np.where(has, band[1], 0.0))
    return Prediction(feats.users, spend, orders, alive, band)


def blend_weights(spend: dict[str, np.ndarray], actual: np.ndarray, step: float = 0.1) -> dict[str, float]:
    """Blend weights chosen on a validation window by a simplex grid search (see ``blend`` for the form).

    Why a weighted geometric mean: the figures the ensemble is judged on (Spearman, normalized
    Gini, top-decile capture) depend on how customers are *ordered*; in log space a member that
    separates the small and middle customers well counts as much as one that ranks the whales,
    where a least-squares fit on raw spend is decided by a few whales (it put every weight on
    BG/NBD on Online Retail). Why non-negative weights summing to 1: the blend stays between its
    members for every customer and is monotone in each of them (a member predicting more never
    lowers it); the large opposite-sign weights that unconstrained least squares gives correlated
    members cancel on the validation window and blow up on the next. The weights maximise the mean
    of the three ranking figures on the validation window over a grid of ``step`` (66 points for
    three members at 0.1: too coarse to fit noise in thousands of customers).
    """
    names = [m for m in MEMBERS if m in spend]
    if not len(actual) or not np.any(actual > 0):
        return {m: (1.0 if m == "bgnbd_gg" else 0.0) for m in names}
    best, best_score = None, -np.inf
    for w in _simplex(len(names), step):
        weights = dict(zip(names, w))
        figures = value_metrics(blend(spend, weights), actual)
        score = np.nanmean([figures[k] for k in ("spearman", "norm_gini", "top_decile_capture")])
        if score > best_score + 1e-12:
            best, best_score = weights, score
    return best


def _simplex(k: int, step: float) -> list[tuple[float, ...]]:
    """Every k-vector of multiples of ``step`` summing to 1 (BG/NBD alone first: it wins ties)."""
    n = round(1 / step)
    grid = [c for c in itertools.product(range(n + 1), repeat=k) if sum(c) == n]
    grid.sort(key=lambda c: -c[0])
    return [tuple(v / n for v in c) for c in grid]


def blend(spend: dict[str, np.ndarray], weights: dict[str, float], scale: float | None = None) -> np.ndarray:
    """The ensemble: ``scale * (exp(sum_i w_i * log1p(member_i)) - 1)``.

    The geometric mean orders the customers; ``scale`` sets the level: by default (``level_scale``)
    the blend's total equals the weighted mean of the members' own totals, read from the
    predictions alone (no label), since a geometric mean of skewed forecasts sits below their mean.
    """
    log_sum = np.zeros(len(next(iter(spend.values()))))
    for name, w in weights.items():
        if name in spend:
            log_sum += w * np.log1p(np.maximum(spend[name], 0.0))
    raw = np.expm1(np.minimum(log_sum, 50.0))
    return raw * (level_scale(spend, weights) if scale is None else scale)


def level_scale(spend: dict[str, np.ndarray], weights: dict[str, float]) -> float:
    """Weighted mean of the members' totals / the geometric blend's total, over the same customers."""
    geo = blend(spend, weights, scale=1.0).sum()
    target = sum(w * float(np.sum(spend[m])) for m, w in weights.items() if m in spend)
    return target / geo if geo > 0 else 1.0
