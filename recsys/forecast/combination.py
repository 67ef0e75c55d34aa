"""The published segment forecast: the best member on validation cut-offs, or a weighted combination.

No single forecaster wins on every shop: the LSTM was tuned on Online Retail, AutoETS wins on smooth
series, AutoTheta on others, seasonal naive on strongly weekly ones, the members that read a year back
(recsys.forecast.members) on yearly cycles. As forecasting platforms do (statsforecast's model
selection, the M4 / M5 combinations), the choice is made on validation cut-offs *inside* the
training data, never on the hold-out: the last ``origins`` cut-offs, ``horizon`` days apart, whose
target days all lie in the LSTM's early-stopping days (``model.val_days``), so the LSTM never trained
on them; the statistical members also on ``statistical_origins`` cut-offs in all, further back (they
need no retraining; more cut-offs tell close members apart). Every member forecasts from each
validation cut-off with only the days up to it. The rule (recsys.forecast.choice) turns the errors
into weights: the default "best" publishes the best member alone unless the combination of the
``top_k`` best is better on validation by more than ``min_gain``; "pooled", "inverse" and "select" are
the older rules (benchmarks/README.md replays them all on six shops). A segment the validation cannot
score (it appeared too late) and a segment unseen in training get the shop's weights (DEFAULT).

Quantile bands (``model.quantiles``): the combination's validation residuals (actual - forecast),
per segment, give empirical quantiles; p_q = max(0, forecast + r_q - r_50), so the band is centred
on the point forecast and ordered. ``combination.json`` holds the weights, validation MASEs, what the
rule saw (``selection``) and residual quantiles beside the LSTM's files; loading it and forecasting
needs no TensorFlow when no segment gives the LSTM a weight (the statistical members are refitted on
the history at forecast time).

    python -c "from recsys.forecast.combination import validation_origins as v; import datetime as d; print(v(d.date(2024, 3, 31), 14, 3, 42))"
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import CombinationConfig, ModelConfig
from pipeline.errors import TrendrecError
from recsys.forecast import metrics as fm
from recsys.forecast.choice import ACTUAL, DEFAULT, ORIGIN, SCALE, best_weights, rule_weights
from recsys.forecast.members import LSTM, MEMBERS, SEASONAL_NAIVE, check_members, statistical_forecasts

log = logging.getLogger(__name__)

COMBINATION_FILE = "combination.json"
MIN_HISTORY = 28  # days of the shop's history before its earliest validation cut-off


class CombinationError(TrendrecError):
    """combination.json is missing a key or cannot be read."""


def validation_origins(last: datetime.date, horizon: int, origins: int, val_days: int) -> list[datetime.date]:
    """The last ``origins`` cut-offs before ``last``, ``horizon`` apart, all within the last ``val_days``."""
    n = max(1, min(origins, val_days // horizon))
    return [last - datetime.timedelta(days=horizon * k) for k in range(n, 0, -1)]


class CombinedForecaster:
    """Forecasts each segment as its weighted members' forecasts; the object trends and evaluate use.

    ``weights``: {segment or DEFAULT: {member: weight}}; ``validation``: {segment: {member: MASE}};
    ``residuals``: {segment: [residual quantile per model.quantiles]}. The LSTM (a SegmentForecaster)
    is given, or loaded from ``directory`` the first time a segment needs it.
    """

    def __init__(self, config: ModelConfig, season: int, weights: dict[str, dict[str, float]], *,
                 validation: dict | None = None, residuals: dict | None = None, lstm: Any = None,
                 directory: Path | None = None, segments: list[str] | None = None, selection: dict | None = None):
        self.config, self.season, self.weights = config, season, weights
        self.validation, self.residuals = validation or {}, residuals or {}
        self.selection = selection  # what the "best" rule saw (recsys.forecast.choice.best_weights); None otherwise
        self.segments = list(segments if segments is not None else sorted(set(weights) - {DEFAULT}))
        self._lstm, self._directory = lstm, directory

    @property
    def uses_lstm(self) -> bool:
        return any(w.get(LSTM, 0.0) > 0 for w in self.weights.values())

    def lstm(self):
        """The LSTM member (loads Keras on first use)."""
        if self._lstm is None:
            from recsys.forecast.forecaster import SegmentForecaster

            self._lstm = SegmentForecaster.load(self._directory)
        return self._lstm

    def predict_members(self, daily: pd.DataFrame, cutoff: datetime.date | None = None,
                        names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
        """{member: [segment, date, forecast]} of ``names`` (default: those with a weight, + seasonal naive)."""
        cutoff = _cutoff(daily, cutoff)
        names = names or tuple(m for m in MEMBERS if m == SEASONAL_NAIVE or
                               any(w.get(m, 0.0) > 0 for w in self.weights.values()))
        cfg = self.config
        out = statistical_forecasts(daily, cfg.target, cutoff, cfg.horizon, self.season,
                                    [n for n in names if n != LSTM])
        if LSTM in names:
            out[LSTM] = self.lstm().predict(daily, cutoff)[[s.SEGMENT, s.DATE, s.FORECAST]]
        return out

    def predict(self, daily: pd.DataFrame, cutoff: datetime.date | None = None) -> pd.DataFrame:
        """[segment, date, forecast, p10, ...]: the combination for the ``horizon`` days after ``cutoff``."""
        return self.combine(self.predict_members(daily, cutoff))

    def combine(self, forecasts: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """The weighted forecast from members' frames; a segment's missing members give their weight up."""
        point = combine_forecasts(forecasts, self.weights)
        if not self.config.quantiles:
            return point
        return point.assign(**_band(point, self.residuals, self.config.quantiles))

    def save(self, directory: Path) -> None:
        """The LSTM's files (when it is a member) and combination.json, into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._lstm is not None:
            self._lstm.save(directory)
        meta = {"config": dataclasses.asdict(self.config), "season": self.season, "segments": self.segments,
                "weights": self.weights, "validation": self.validation, "residuals": self.residuals}
        if self.selection is not None:
            meta["selection"] = self.selection
        (directory / COMBINATION_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")

    def export_savedmodel(self, directory: Path) -> None:
        """The LSTM's TF SavedModel (for TF Serving); the statistical members have none."""
        self.lstm().export_savedmodel(directory)


def load_forecaster(directory: Path) -> CombinedForecaster:
    """The combination saved in ``directory``; a model saved before combinations is the LSTM alone."""
    directory = Path(directory)
    path = directory / COMBINATION_FILE
    if not path.is_file():
        from recsys.forecast.forecaster import SegmentForecaster

        lstm = SegmentForecaster.load(directory)
        return CombinedForecaster(lstm.config, 7, {DEFAULT: {LSTM: 1.0}}, lstm=lstm, segments=lstm.segments)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        weights = {str(k): {str(m): float(w) for m, w in v.items()} for k, v in meta["weights"].items()}
        check_members([m for w in weights.values() for m in w], str(path))
        return CombinedForecaster(ModelConfig.from_json(meta["config"]), int(meta["season"]), weights,
                                  validation=meta.get("validation"), residuals=meta.get("residuals"),
                                  selection=meta.get("selection"),
                                  directory=directory, segments=[str(x) for x in meta["segments"]])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CombinationError(f"{path} is malformed (truncated?): {exc!r}; expected the file "
                               f"written by CombinedForecaster.save") from exc


def combine_forecasts(forecasts: dict[str, pd.DataFrame], weights: dict[str, dict[str, float]]) -> pd.DataFrame:
    """[segment, date, forecast]: per (segment, day), sum w_m f_m / sum w_m over the members present.

    A segment without its own weights uses DEFAULT's; a (segment, day) none of whose weighted members
    forecast it gets seasonal naive (always in ``forecasts`` for that reason).
    """
    long = pd.concat([f[[s.SEGMENT, s.DATE, s.FORECAST]].assign(_member=m) for m, f in forecasts.items()],
                     ignore_index=True)
    long[s.DATE] = pd.to_datetime(long[s.DATE]).dt.date
    long[s.SEGMENT] = long[s.SEGMENT].astype(str)
    table = {(seg, m): w for seg, ws in weights.items() for m, w in ws.items()}
    own = long[s.SEGMENT].isin(set(weights) - {DEFAULT})
    key = np.where(own, long[s.SEGMENT], DEFAULT)
    long["_w"] = [table.get((k, m), 0.0) for k, m in zip(key, long["_member"])]
    long["_wf"] = long["_w"] * long[s.FORECAST]
    sums = long.groupby([s.SEGMENT, s.DATE], sort=True)[["_w", "_wf"]].sum()
    naive = long[long["_member"] == SEASONAL_NAIVE].set_index([s.SEGMENT, s.DATE])[s.FORECAST]
    value = np.where(sums["_w"] > 0, sums["_wf"] / sums["_w"].where(sums["_w"] > 0, 1.0),
                     naive.reindex(sums.index).fillna(0.0))
    out = sums.index.to_frame(index=False)
    return out.assign(**{s.FORECAST: np.clip(np.asarray(value, float), 0.0, None)})


def _band(point: pd.DataFrame, residuals: dict[str, list[float]], quantiles: tuple[float, ...]) -> dict:
    """{"p10": ..., "p50": ..., "p90": ...}: forecast + r_q - r_50 per segment, floored at 0 (0 width if unknown)."""
    median = quantiles.index(0.5)
    rows = np.array([residuals.get(seg, [0.0] * len(quantiles)) for seg in point[s.SEGMENT]], float)
    rows = rows.reshape(len(point), len(quantiles))
    shift = rows - rows[:, [median]]
    values = np.clip(point[s.FORECAST].to_numpy(float)[:, None] + shift, 0.0, None)
    return {f"p{round(q * 100)}": values[:, i] for i, q in enumerate(quantiles)}


def _cutoff(daily: pd.DataFrame, cutoff: datetime.date | None) -> datetime.date:
    return pd.to_datetime(daily[s.DATE]).max().date() if cutoff is None else pd.Timestamp(cutoff).date()


# --- fitting: the LSTM once, every member on the validation cut-offs, then the weights ------------
def fit_combination(daily: pd.DataFrame, config: ModelConfig, combination: CombinationConfig, season: int,
                    **fit_kwargs: Any) -> tuple[CombinedForecaster, dict[str, Any]]:
    """Train the members on ``daily`` (the training part only) and choose each segment's weights.

    ``fit_kwargs`` go to SegmentForecaster.fit (log_dir, checkpoint_dir...). Returns the forecaster
    and the LSTM's fit summary ({} without the LSTM) plus "validation_origins" (the LSTM's),
    "statistical_origins" (all of them) and "seconds" (lstm, total).
    """
    check_members(combination.members, "combination.members")
    lstm, result, started = None, {}, time.monotonic()
    if LSTM in combination.members:
        from recsys.forecast.forecaster import SegmentForecaster

        lstm = SegmentForecaster(config)
        result = lstm.fit(daily, **fit_kwargs)
    lstm_seconds = time.monotonic() - started
    last = _cutoff(daily, None)
    origins = validation_origins(last, config.horizon, combination.origins, config.val_days)
    earlier = statistical_origins(origins[0], config.horizon, combination.statistical_origins - len(origins),
                                  pd.to_datetime(daily[s.DATE]).min().date() + datetime.timedelta(days=MIN_HISTORY))
    probe = CombinedForecaster(config, season, {}, lstm=lstm)
    statistical = tuple(m for m in combination.members if m != LSTM)
    cuts = [(o, statistical) for o in earlier if statistical] + [(o, combination.members) for o in origins]
    table = validation_table(daily, probe, cuts)
    validation = validation_mase(table, list(combination.members))
    selection = None
    if combination.rule == "best":
        shared, selection = best_weights(table, list(combination.members), combination.top_k, combination.power,
                                         combination.min_gain)
        weights = {seg: dict(shared) for seg in validation} | {DEFAULT: shared}
    else:
        weights = rule_weights(validation, combination.rule, combination.top_k, combination.power)
    segments = sorted(daily[s.SEGMENT].astype(str).unique())
    forecaster = CombinedForecaster(config, season, weights, validation=validation, lstm=lstm, segments=segments,
                                    selection=selection)
    if config.quantiles:
        forecaster.residuals = _residual_quantiles(table[table[ORIGIN].isin(origins)], forecaster, config.quantiles)
    log.info("combination weights on %d validation cut-offs %s..%s (the statistical members on %d): %s",
             len(origins), origins[0], origins[-1], len(cuts), weights[DEFAULT])
    seconds = {LSTM: round(lstm_seconds, 2), "total": round(time.monotonic() - started, 2)}
    return forecaster, result | {"validation_origins": [str(o) for o in origins],
                                 "statistical_origins": [str(o) for o, _ in cuts], "seconds": seconds}


def single_member(daily: pd.DataFrame, config: ModelConfig, season: int, member: str,
                  origins: list[datetime.date]) -> CombinedForecaster:
    """``member`` alone as a forecaster (weight 1 everywhere), scored like a combination on ``origins``.

    For a statistical member this needs no TensorFlow and no fit: it is refitted on the history at
    forecast time. Its validation MASE and (with ``config.quantiles``) residual quantiles come from
    the validation cut-offs ``origins``, each forecast from the days up to it only, as
    fit_combination does for a candidate.
    """
    check_members([member], "single_member")
    segments = sorted(daily[s.SEGMENT].astype(str).unique())
    forecaster = CombinedForecaster(config, season, {DEFAULT: {member: 1.0}}, segments=segments)
    if origins:
        table = validation_table(daily, forecaster, [(o, (member,)) for o in origins])
        forecaster.validation = validation_mase(table, [member])
        if config.quantiles:
            forecaster.residuals = _residual_quantiles(table, forecaster, config.quantiles)
    return forecaster


def validation_table(daily: pd.DataFrame, probe: CombinedForecaster,
                     cuts: list[tuple[datetime.date, tuple[str, ...]]]) -> pd.DataFrame:
    """[segment, origin, date, actual, scale, <member>...]: each (origin, members) forecast from days <= origin.

    A member not forecast from an origin is NaN there; a segment-origin whose training series has no
    seasonal-naive scale (too short, constant) is left out, as MASE cannot score it.
    """
    cfg = probe.config
    dates = pd.to_datetime(daily[s.DATE]).dt.date
    keyed = daily.assign(**{s.SEGMENT: daily[s.SEGMENT].astype(str), s.DATE: dates}).sort_values(s.DATE)
    parts = []
    for origin, members in cuts:
        part = _validation_cut(keyed, probe, origin, members)
        scales = {seg: fm.naive_scale(g.loc[g[s.DATE] <= origin, cfg.target].to_numpy(float), probe.season)
                  for seg, g in keyed.groupby(s.SEGMENT)}
        part[SCALE] = part[s.SEGMENT].map(scales).astype(float)
        parts.append(part[np.isfinite(part[SCALE]) & (part[SCALE] > 0)])
    table = pd.concat(parts, ignore_index=True)
    return table.reindex(columns=[s.SEGMENT, ORIGIN, s.DATE, ACTUAL, SCALE, *(m for m in MEMBERS if m in table.columns)])


def _validation_cut(daily: pd.DataFrame, probe: CombinedForecaster, origin: datetime.date,
                    members: tuple[str, ...]) -> pd.DataFrame:
    """[segment, origin, date, actual, <member>...] for the horizon after ``origin``, from days <= origin."""
    cfg = probe.config
    ahead = (daily[s.DATE] > origin) & (daily[s.DATE] <= origin + datetime.timedelta(days=cfg.horizon))
    joined = daily.loc[ahead, [s.SEGMENT, s.DATE, cfg.target]].rename(columns={cfg.target: ACTUAL})
    for name, frame in probe.predict_members(daily.loc[daily[s.DATE] <= origin], origin, tuple(members)).items():
        frame = frame.assign(**{s.DATE: pd.to_datetime(frame[s.DATE]).dt.date, s.SEGMENT: frame[s.SEGMENT].astype(str)})
        joined = joined.merge(frame.rename(columns={s.FORECAST: name}), on=[s.SEGMENT, s.DATE], how="inner")
    return joined.assign(**{ORIGIN: origin})[[s.SEGMENT, ORIGIN, s.DATE, ACTUAL, *members]]


def validation_mase(table: pd.DataFrame, members: list[str]) -> dict[str, dict[str, float]]:
    """{segment: {member: mean over the origins that scored it of its MASE}}, from a validation_table."""
    out: dict[str, dict[str, float]] = {}
    for segment, part in table.groupby(s.SEGMENT, sort=True):
        scores = {m: (part[ACTUAL] - part[m]).abs().div(part[SCALE]).groupby(part[ORIGIN]).mean().mean()
                  for m in members if m in part.columns}
        scores = {m: float(v) for m, v in scores.items() if math.isfinite(v)}
        if scores:
            out[str(segment)] = scores
    return out


def statistical_origins(first: datetime.date, horizon: int, n: int, earliest: datetime.date) -> list[datetime.date]:
    """Up to ``n`` cut-offs before ``first``, ``horizon`` apart, none before ``earliest``."""
    days = [first - datetime.timedelta(days=horizon * k) for k in range(max(0, n), 0, -1)]
    return [d for d in days if d >= earliest]


def _residual_quantiles(table: pd.DataFrame, forecaster: CombinedForecaster,
                        quantiles: tuple[float, ...]) -> dict[str, list[float]]:
    """Per segment, the quantiles of actual - combination over its validation days."""
    members = [m for m in MEMBERS if m in table.columns]
    frames = {m: table[[s.SEGMENT, s.DATE, m]].rename(columns={m: s.FORECAST}) for m in members}
    out = {}
    for origin, part in table.groupby(ORIGIN):
        combined = combine_forecasts({m: f.loc[part.index] for m, f in frames.items()}, forecaster.weights)
        merged = part[[s.SEGMENT, s.DATE, ACTUAL]].merge(combined, on=[s.SEGMENT, s.DATE])
        for segment, g in merged.groupby(s.SEGMENT):
            out.setdefault(str(segment), []).extend((g[ACTUAL] - g[s.FORECAST]).tolist())
    return {seg: [float(np.quantile(r, q)) for q in quantiles] for seg, r in out.items()}
