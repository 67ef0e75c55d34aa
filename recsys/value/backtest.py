"""One calibration / hold-out split of the customer value models, judged without looking at the hold-out.

With the calibration ending the day before ``cutoff`` and the hold-out the ``H`` days from it:

1. the members are fitted on the log before ``cutoff - H`` and predict the validation window
   ``[cutoff - H, cutoff)``; the blend weights are chosen there (recsys.value.ensemble);
2. the members are refitted on the whole calibration period (before ``cutoff``) and predict the
   hold-out; the ensemble is their blend with the weights of step 1.

The hold-out's spend is read only to score the predictions. ``next_weights`` (the weights fitted
on this hold-out) are what a forecast from the end of the log uses: for it, this hold-out is the
validation window before its own future.

``Split.validation`` keeps every model's figures on the validation window of step 1 (the ensemble
cross-fitted there, recsys.value.choice.crossfit_blend, since that window chose its weights): the
model published for the hold-out is chosen on them (``Split.holdout_choice``), never on the hold-out.

    python -c "from recsys.value.backtest import run_split; help(run_split)"
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import ValueConfig
from recsys.value.bgnbd import ValueFitError
from recsys.value.choice import BASELINE, choose, crossfit_blend
from recsys.value.data import DAY, window_spend
from recsys.value.ensemble import (
    ENSEMBLE,
    Members,
    Prediction,
    blend,
    blend_weights,
    fit_members,
    predict_members,
)
from recsys.value.features import build_features
from recsys.value.metrics import decile_table, value_metrics

log = logging.getLogger(__name__)


@dataclass
class Split:
    cutoff: date  # first hold-out day
    horizon: int
    prediction: Prediction
    ensemble: np.ndarray
    actual: np.ndarray
    weights: dict[str, float]  # chosen on the validation window before the hold-out
    next_weights: dict[str, float]  # chosen on this hold-out: for a forecast from its end
    members: Members
    validation: dict[str, dict[str, float]] | None = None  # every model on the window before; None: no window

    @property
    def calibration_end(self) -> date:
        return self.cutoff - timedelta(days=1)

    def spend(self) -> dict[str, np.ndarray]:
        return self.prediction.spend | {ENSEMBLE: self.ensemble}

    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: value_metrics(pred, self.actual) for name, pred in self.spend().items()}

    def holdout_choice(self) -> str:
        """The model the rule publishes for this hold-out, chosen on the validation window before it."""
        return BASELINE if not self.validation else choose(self.validation)

    def deciles(self) -> dict[str, list[dict]]:
        return {name: decile_table(pred, self.actual).to_dict("records") for name, pred in self.spend().items()}


def run_split(days: pd.DataFrame, cutoff: date, cfg: ValueConfig, run_dir: Path | None = None) -> Split:
    """Fit, blend and score the models on the split whose hold-out starts at ``cutoff`` (see the module doc)."""
    H = timedelta(days=cfg.horizon_days)
    weights, validation = validation_window(days, cutoff - H, cfg, None if run_dir is None else run_dir / "validation")
    members = fit_members(days, cutoff, cfg, None if run_dir is None else run_dir / "holdout")
    pred = predict_members(members, build_features(days, cutoff, cfg.seq_weeks))
    actual = window_spend(days, pred.users, cutoff, cutoff + H)
    log.info("value split at %s: %d customers, weights %s", cutoff, len(actual), weights)
    return Split(cutoff, cfg.horizon_days, pred, blend(pred.spend, weights), actual, weights,
                 blend_weights(pred.spend, actual), members, validation)


def validation_window(days: pd.DataFrame, at: date, cfg: ValueConfig, run_dir: Path | None = None
                      ) -> tuple[dict[str, float], dict[str, dict[str, float]] | None]:
    """(blend weights, every model's figures) from members fitted before ``at``, scored on ``[at, at + H)``.

    Without such a window (too little log before ``at``): BG/NBD alone and no figures.
    """
    try:
        members = fit_members(days[days[DAY] < at], at, cfg, run_dir)
    except ValueFitError as exc:
        log.warning("no validation window before %s (%s): the ensemble is BG/NBD + GG alone", at, exc)
        return {"bgnbd_gg": 1.0}, None
    pred = predict_members(members, build_features(days, at, cfg.seq_weeks))
    actual = window_spend(days, pred.users, at, at + timedelta(days=cfg.horizon_days))
    spend = pred.spend | {ENSEMBLE: crossfit_blend(pred.spend, actual, pred.users)}
    return blend_weights(pred.spend, actual), {name: value_metrics(p, actual) for name, p in spend.items()}
