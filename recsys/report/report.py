"""Shape the store's tables for plotting, and write the report: PNG plots plus one HTML page.

The notebooks call these functions and hold no logic of their own. ``run_report`` draws the same
key plots with recsys.report.plots, saves them as PNG files and writes ``index.html`` with the images
embedded as base64 and the hold-out metrics table, so the page opens anywhere without Jupyter,
a network, fonts or JavaScript.

    trendrec report --store /tmp/nbstore && xdg-open /tmp/nbstore/report/index.html
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import schemas as s
from pipeline.config import Config
from pipeline.errors import TrendrecError
from pipeline.store import Store, StoreError, atomic_path, read_daily, read_json, read_parquet, read_trends
from recsys import registry
from recsys.forecast.trends import quantile_band  # noqa: F401  (report.quantile_band in the notebooks)
from recsys.report.status import STATISTICAL, forecaster_view, status_lines, store_status
from recsys.report.monitor import monitor_figures
from recsys.report.value import value_figures

log = logging.getLogger(__name__)

FORECASTERS = ("model", "seasonal_naive", "auto_ets", "auto_theta", "production")
METRIC_COLUMNS = ("mase", "mae", "rmse", "mape", "smape", "r2")
SWEEP_NAME = "evaluation"  # reranked/evaluation.json: recsys.offline.evaluate_rerank.RESULT_NAME
BACKTEST_DIR = "backtest"  # backtest/<run id>.json: recsys.forecast.backtest.run_backtest


class ReportError(TrendrecError):
    """The store lacks the tables a plot needs."""


# --- trends: aggregates only ------------------------------------------------------------------------
def load_daily(store: Store | str) -> pd.DataFrame:
    """aggregates/daily.parquet with ``date`` as datetime64, sorted by segment and date."""
    store = store if isinstance(store, Store) else Store(store)
    daily = read_daily(store)
    daily[s.DATE] = pd.to_datetime(daily[s.DATE])  # time-series plots and rolling windows want datetime64
    return daily.sort_values([s.SEGMENT, s.DATE], kind="mergesort").reset_index(drop=True)


def load_month_weekday(store: Store | str) -> pd.DataFrame:
    store = store if isinstance(store, Store) else Store(store)
    try:
        return read_parquet(store.month_weekday_path).to_pandas()
    except StoreError as exc:
        raise ReportError(f"{store.month_weekday_path} not found: run `trendrec aggregate` first") from exc


def month_weekday_matrices(month_weekday: pd.DataFrame, measure: str) -> dict[str, pd.DataFrame]:
    """Per segment a 12 x 7 (month x weekday) frame of mean ``measure`` per day / the segment's mean day.

    1.0 is the segment's average day, so segments of very different size share one colour scale.
    Cells with no day (a month outside the data, a weekday the shop is closed) are NaN.
    """
    out = {}
    for segment, part in month_weekday.groupby(s.SEGMENT, sort=True):
        per_day = (part[measure] / part[s.DAYS]).to_numpy(float)
        mean_day = part[measure].sum() / part[s.DAYS].sum()
        cells = pd.DataFrame({s.MONTH: part[s.MONTH].to_numpy(), s.WEEKDAY: part[s.WEEKDAY].to_numpy(),
                              "value": per_day / mean_day if mean_day else np.nan})
        out[str(segment)] = cells.pivot(index=s.MONTH, columns=s.WEEKDAY, values="value").reindex(
            index=range(1, 13), columns=range(7))
    return out


def rolling_trend(daily: pd.DataFrame, measure: str, window: int = 28) -> pd.DataFrame:
    """[segment, date, measure, rolling]: the centred-free (trailing) ``window``-day mean per segment."""
    out = daily[[s.SEGMENT, s.DATE, measure]].copy()
    out["rolling"] = out.groupby(s.SEGMENT, sort=False)[measure].transform(
        lambda x: x.rolling(window, min_periods=max(1, window // 2)).mean())
    return out


def segment_movers(daily: pd.DataFrame, measure: str, days: int = 28) -> pd.DataFrame:
    """[segment, recent, previous, change]: sum of the last ``days`` days vs the ``days`` before.

    change = recent / previous - 1 (NaN when nothing was sold before); sorted rising first.
    """
    last = daily[s.DATE].max()
    recent_start, previous_start = last - pd.Timedelta(days=days - 1), last - pd.Timedelta(days=2 * days - 1)
    recent = daily[daily[s.DATE] >= recent_start].groupby(s.SEGMENT)[measure].sum()
    previous = daily[(daily[s.DATE] >= previous_start) & (daily[s.DATE] < recent_start)].groupby(
        s.SEGMENT)[measure].sum()
    out = pd.DataFrame({"recent": recent, "previous": previous.reindex(recent.index, fill_value=0.0)})
    out["change"] = out["recent"] / out["previous"].where(out["previous"] > 0) - 1.0
    out = out.rename_axis(s.SEGMENT).reset_index()
    return out.sort_values("change", ascending=False, na_position="last").reset_index(drop=True)


def decompose(daily: pd.DataFrame, segment: str, measure: str, period: int = 7) -> pd.DataFrame:
    """Robust STL of one segment's daily series: columns observed, trend, seasonal, resid by date."""
    from statsmodels.tsa.seasonal import STL

    part = daily[daily[s.SEGMENT] == segment].set_index(s.DATE)[measure].astype(float)
    part = part.asfreq("D", fill_value=0.0)
    if len(part) < 2 * period:
        raise ReportError(f"segment {segment!r} has {len(part)} days; a decomposition needs {2 * period}")
    result = STL(part, period=period, robust=True).fit()
    return pd.DataFrame({"observed": part, "trend": result.trend, "seasonal": result.seasonal,
                         "resid": result.resid})


# --- the production model ------------------------------------------------------------------------
def production_record(store: Store | str) -> dict[str, Any] | None:
    """Production as the report shows it, or None when nothing was pushed.

    ``{"version", "release" (the verified registry.Release), "metadata", "dir" (its forecaster's folder),
    "forecaster" (status.forecaster_view: what the version ships), "evaluation", "train"}``; ``train``
    is the shipped forecaster's own train.json, {} when it has no LSTM (a baseline member ships).
    """
    store = store if isinstance(store, Store) else Store(store)
    release = registry.production(store)  # every digest checked
    if release is None:
        return None
    view = forecaster_view(release)
    folder = release.part("forecast")
    if folder is None:
        raise ReportError(f"production {release.version} at {release.path} holds no segment forecaster")
    train = _read_optional(folder / "train.json") if view["has_lstm"] else {}
    return {"version": release.version, "release": release, "metadata": release.metadata, "dir": folder,
            "forecaster": view, "evaluation": _read_optional(folder / "evaluation.json"), "train": train}


def _read_optional(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}


def loss_of(model_config: dict[str, Any]) -> str:
    """The loss a forecaster's LSTM was trained with, from its ``model`` settings (pipeline.config.ModelConfig).

    Quantiles mean the pinball loss; settings saved before the ``loss`` option existed mean huber
    (recsys.forecast.forecaster.PRE_BACKTEST_OPTIONS), as the forecaster itself loads them.
    """
    if model_config.get("quantiles"):
        return "pinball"
    return str(model_config.get("loss", "huber"))


def loss_name(folder: Path) -> str:
    """The loss of the forecaster in ``folder``: its config.json's ``model`` section, else recommender.json's."""
    folder = Path(folder)
    settings = (_read_optional(folder / "config.json").get("model")
                or _read_optional(folder / "recommender.json").get("config") or {})
    return loss_of(settings)


def training_curve(record: dict[str, Any]) -> tuple[dict[str, list[float]] | None, str]:
    """(the shipped forecaster's loss per epoch, its loss name) or (None, why there is no curve).

    A version whose forecaster is a baseline member alone has no LSTM and so no curve, even when its
    folder still holds the run's train.json (the rejected LSTM's).
    """
    view = record["forecaster"]
    if not view["has_lstm"]:
        return None, (f"No training curve: production's segment forecaster is {view['label']}; "
                      f"a statistical member is refitted at forecast time, it has no epochs.")
    history = record["train"].get("history")
    if not history:
        return None, f"No training curve: {record['dir']}/train.json records no loss history."
    return history, loss_name(record["dir"])


def trend_table(store: Store | str) -> pd.DataFrame:
    """Production's trend.parquet, the scores re-ranking blends in, highest trend first."""
    store = store if isinstance(store, Store) else Store(store)
    release = registry.production(store)
    if release is None:
        raise ReportError(f"no production model in {store.models}: run `trendrec push` first")
    if release.trend_file is None:
        raise ReportError(f"production {release.version} at {release.path} holds no {registry.TREND_FILE}")
    trends = read_trends(release.trend_file)
    return trends.sort_values(s.TREND, ascending=False, kind="mergesort").reset_index(drop=True)


def forecaster_table(view: dict[str, Any]) -> pd.DataFrame:
    """Hold-out metrics, the forecaster production ships first (role "ships"), then the others.

    Rows are the evaluation's names; ``role`` says what each is: "ships", "baseline", "run, not
    blessed" (the run's forecaster when something else ships) or "production then" (the version the
    run was compared with, when it is not what ships).
    """
    metrics, shipped = view["metrics"], view["name"]
    order = [shipped] + [n for n in FORECASTERS if n != shipped]
    roles = {"model": "run, not blessed", "production": "production then"} | {b: "baseline" for b in STATISTICAL}
    rows = {name: {"role": "ships" if name == shipped else roles.get(name, "member"),
                   **{m: (metrics.get(name) or {}).get(m) for m in METRIC_COLUMNS}}
            for name in order if metrics.get(name)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["role", *METRIC_COLUMNS])
    return table.astype({m: float for m in METRIC_COLUMNS})


def verdict_table(verdicts: dict[str, dict[str, Any] | None]) -> pd.DataFrame:
    """One row per part: blessed, metric, value, baseline, baseline value, ships, reason."""
    columns = ("blessed", "metric", "value", "baseline", "baseline_value", "ships", "reason")
    rows = {part: {c: (v or {}).get(c) for c in columns} for part, v in verdicts.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(columns))


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Rows = forecasters (model, seasonal_naive, production when present), columns = hold-out metrics."""
    rows = {name: {m: (metrics.get(name) or {}).get(m) for m in METRIC_COLUMNS}
            for name in FORECASTERS if metrics.get(name)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS)).astype(float)


def segment_mase(per_segment: dict[str, Any], names: tuple[str, ...] = FORECASTERS) -> pd.DataFrame:
    """Rows = segments, columns = forecasters: the MASE in evaluation.json's (or a backtest's) per_segment."""
    rows = {seg: {name: (vals.get(name) or {}).get("mase") for name in names if name in vals}
            for seg, vals in per_segment.items()}
    return pd.DataFrame.from_dict(rows, orient="index").astype(float).sort_index()


def combination_table(version_dir: Path) -> pd.DataFrame | None:
    """Rows = segments (and __default__), columns = each member's weight, then its validation MASE.

    From the version's combination.json (recsys.forecast.combination); None for a version saved
    before combinations (the LSTM alone).
    """
    path = Path(version_dir) / "combination.json"
    if not path.is_file():
        return None
    meta = read_json(path)
    rows = {seg: {f"w_{m}": w for m, w in weights.items()} for seg, weights in meta["weights"].items()}
    for seg, mases in (meta.get("validation") or {}).items():
        rows.setdefault(seg, {}).update({f"mase_{m}": v for m, v in mases.items()})
    return pd.DataFrame.from_dict(rows, orient="index").sort_index(axis=1).astype(float)


def load_backtest(store: Store | str) -> dict[str, Any] | None:
    """The newest rolling-origin backtest in backtest/ (`trendrec backtest`), or None when there is none."""
    store = store if isinstance(store, Store) else Store(store)
    files = sorted((store.root / BACKTEST_DIR).glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    return read_json(files[-1]) if files else None


def backtest_table(result: dict[str, Any]) -> pd.DataFrame:
    """Rows = methods (model, seasonal_naive, auto_ets), columns = metrics over every cut-off."""
    rows = {m: {k: result["overall"][m].get(k) for k in METRIC_COLUMNS} for m in result["methods"]}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(METRIC_COLUMNS)).astype(float)


def holdout_frame(cfg: Config, context_days: int | None = None) -> pd.DataFrame:
    """[segment, date, actual, model, seasonal_naive, quantiles...] around production's hold-out.

    ``model`` is the forecast of the forecaster production ships (the run's, production's carried
    forward or a baseline member: ``production_record(...)["forecaster"]`` names it). Both forecasters
    start from the hold-out's cutoff with the same history, as ``trendrec evaluate`` scored them; the
    ``context_days`` (default: lookback) before the cutoff carry the actuals only. Raises ReportError
    when nothing is in production.
    """
    from recsys.forecast.metrics import seasonal_naive_forecast
    from recsys.forecast.publish import load_production

    store = Store(cfg.store)
    record, loaded = production_record(store), load_production(store)
    if record is None or loaded is None:
        raise ReportError(f"no production model in {store.models}: run `trendrec push` first")
    model, cutoff = loaded[0], holdout_cutoff(record)
    daily = load_daily(store)
    daily[s.DATE] = daily[s.DATE].dt.date
    target, history = model.config.target, daily[daily[s.DATE] <= cutoff]
    forecast = model.predict(history, cutoff).rename(columns={s.FORECAST: "model"})
    naive = seasonal_naive_forecast(history, cutoff, model.config.horizon, cfg.evaluate.season, target)
    start = cutoff - timedelta(days=context_days if context_days is not None else model.config.lookback)
    end = cutoff + timedelta(days=model.config.horizon)
    actual = daily[(daily[s.DATE] > start) & (daily[s.DATE] <= end)][[s.SEGMENT, s.DATE, target]]
    frame = actual.rename(columns={target: "actual"}).merge(forecast, on=[s.SEGMENT, s.DATE], how="left")
    naive = naive.rename(columns={s.FORECAST: "seasonal_naive"})
    frame = frame.merge(naive, on=[s.SEGMENT, s.DATE], how="left")
    frame[s.DATE] = pd.to_datetime(frame[s.DATE])
    return frame.sort_values([s.SEGMENT, s.DATE], kind="mergesort").reset_index(drop=True)


def holdout_cutoff(record: dict[str, Any]) -> date:
    """The last training day of the hold-out production's metrics were computed on."""
    cutoff = record["evaluation"].get("cutoff") or record["forecaster"].get("cutoff")
    if not cutoff:
        raise ReportError(f"production {record['version']} records no training cutoff: push it again")
    return date.fromisoformat(str(cutoff))


# --- re-ranking ------------------------------------------------------------------------------------
def load_reranked(store: Store | str) -> pd.DataFrame | None:
    """The newest re-ranked list in reranked/ (written by `trendrec rerank`), or None when there is none."""
    store = store if isinstance(store, Store) else Store(store)
    files = [p for p in store.reranked.glob("*.parquet") if p.stem != SWEEP_NAME]
    return pd.read_parquet(max(files, key=lambda p: p.stat().st_mtime)) if files else None


def rerank_examples(reranked: pd.DataFrame, users: int = 3, k: int = 6) -> pd.DataFrame:
    """The ``users`` lists the trend blend moved most, top ``k`` items each, with rank before and after.

    rank_before orders a user's list by base_score alone (ties by the re-ranked order); rank_after
    is the re-ranked rank. Movement is the sum of |rank_after - rank_before| over the user's list.
    """
    frame = reranked.sort_values([s.USER_ID, s.RANK], kind="mergesort").copy()
    frame["rank_after"] = frame[s.RANK]
    frame["rank_before"] = frame.groupby(s.USER_ID)[s.BASE_SCORE].rank(method="first", ascending=False)
    frame["rank_before"] = frame["rank_before"].astype(int)
    moved = (frame["rank_after"] - frame["rank_before"]).abs().groupby(frame[s.USER_ID]).sum()
    chosen = moved.sort_values(ascending=False, kind="mergesort").head(users).index
    top = frame[frame[s.USER_ID].isin(chosen) & ((frame["rank_after"] <= k) | (frame["rank_before"] <= k))]
    columns = [s.USER_ID, s.ITEM_ID, s.SEGMENT, s.BASE_SCORE, s.TREND, s.FINAL_SCORE,
               "rank_before", "rank_after"]
    order = {user: i for i, user in enumerate(chosen)}
    top = top.assign(_u=top[s.USER_ID].map(order)).sort_values(["_u", "rank_after"], kind="mergesort")
    return top[columns].reset_index(drop=True)


def load_ranking(store: Store | str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(pooled: one row per method, per cut-off: cutoff x method), or None before any evaluate-rerank.

    Read from reranked/evaluation.json, written by `trendrec evaluate-rerank` (recsys.offline.evaluate_rerank).
    """
    store = store if isinstance(store, Store) else Store(store)
    path = store.reranked / f"{SWEEP_NAME}.json"
    if not path.is_file():
        return None
    result = read_json(path)
    if not isinstance(result.get("pooled"), dict):
        return None  # an evaluation.json of an older trendrec
    pooled = pd.DataFrame.from_dict(result["pooled"], orient="index").rename_axis("method").reset_index()
    rows = [{"cutoff": row["cutoff"], "method": name, **figures} for row in result.get("cutoffs", [])
            for name, figures in row.items() if name != "cutoff"]
    return pooled, pd.DataFrame(rows)


def cold_start_table(store: Store) -> pd.DataFrame | None:
    """Rows = methods, columns = (population, recall@10 | ndcg@10 | lists) of evaluate-rerank's cold-start
    section (pooled over its cut-offs), or None when the last evaluation has none."""
    path = store.reranked / f"{SWEEP_NAME}.json"
    pooled = ((read_json(path).get("cold_start") or {}).get("pooled") or {}) if path.is_file() else {}
    if not pooled:
        return None
    columns = {(p, key): {m: f.get(key) for m, f in by.items()} for p, by in pooled.items()
               for key in ("recall@10", "ndcg@10", "lists")}
    return pd.DataFrame(columns).rename_axis("method")


# --- the report --------------------------------------------------------------------------------------
def report_figures(cfg: Config) -> tuple[dict[str, Any], dict[str, pd.DataFrame], list[str]]:
    """({name: Figure}, {name: table}, notes): every plot the store has the data for."""
    from recsys.report import plots  # pyplot: imported once run_report has chosen the backend

    store, measure = Store(cfg.store), cfg.model.target
    daily = load_daily(store)
    movers = segment_movers(daily, measure)
    matrices = month_weekday_matrices(load_month_weekday(store), measure)
    figures = {"month_weekday": plots.plot_month_weekday(matrices, measure),
               "daily_trends": plots.plot_daily_trends(rolling_trend(daily, measure), measure, 28),
               "movers": plots.plot_movers(movers, 28, measure)}
    top = movers[s.SEGMENT].iloc[0]
    figures["decomposition"] = plots.plot_decomposition(decompose(daily, top, measure), top, measure, 7)
    tables, notes = {"movers": movers}, []
    record = production_record(store)
    if record is None:
        notes.append("No production model yet: run `trendrec train`, `evaluate` and `push`.")
    else:
        _model_figures(cfg, record, figures, tables, notes)
        monitor_figures(store, figures, tables, notes)  # drift and live results (recsys.report.monitor)
    return figures, tables, notes


def _model_figures(cfg: Config, record: dict[str, Any], figures: dict[str, Any],
                   tables: dict[str, pd.DataFrame], notes: list[str]) -> None:
    """Add production's forecaster, verdict, re-rank, value and backtest plots (and their notes) in place."""
    from recsys.report import plots  # pyplot: imported once run_report has chosen the backend

    store = Store(cfg.store)
    status = store_status(cfg)
    notes.extend(status_lines(status))  # production now, what it ships and why, the latest run
    tables["verdicts"] = verdict_table(status["verdicts"])
    _forecaster_figures(cfg, record, figures, tables, notes)
    _ranking_figures(store, figures, tables, notes)
    value_figures(store, figures, tables, notes)
    result = load_backtest(store)
    if result is None:
        notes.append(f"No rolling-origin backtest ({store.root / BACKTEST_DIR}/): run `trendrec backtest`.")
    else:
        tables["backtest"] = backtest_table(result)
        figures["backtest_mase"] = plots.plot_segment_mase(
            segment_mase(result["per_segment"], tuple(result["methods"])),
            f"Backtest MASE per segment, mean over cut-offs {', '.join(result['cutoffs'])}")


def _forecaster_figures(cfg: Config, record: dict[str, Any], figures: dict[str, Any],
                        tables: dict[str, pd.DataFrame], notes: list[str]) -> None:
    """The shipped forecaster's metrics table, trend scores, hold-out forecasts and training curve."""
    from recsys.report import plots  # pyplot: imported once run_report has chosen the backend

    store, measure, view = Store(cfg.store), cfg.model.target, record["forecaster"]
    tables["metrics"] = forecaster_table(view)
    tables["trend_scores"] = trend_table(store)
    figures["trend_scores"] = plots.plot_trend_scores(tables["trend_scores"])
    combination = combination_table(record["dir"])
    if combination is not None:
        tables["combination"] = combination
    holdout = holdout_frame(cfg)
    figures["holdout"] = plots.plot_holdout(holdout, measure, quantile_band(holdout.columns), view["name"])
    if record["evaluation"].get("per_segment"):
        figures["segment_mase"] = plots.plot_segment_mase(
            segment_mase(record["evaluation"]["per_segment"]),
            f"Hold-out MASE per segment (production ships {view['name']})")
    history, loss = training_curve(record)
    if history is None:
        notes.append(loss)
    else:
        figures["loss"] = plots.plot_loss(history, loss, view["label"])


def _ranking_figures(store: Store, figures: dict[str, Any], tables: dict[str, pd.DataFrame],
                     notes: list[str]) -> None:
    """The re-ranking examples and the next-basket evaluation, when the store has them."""
    from recsys.report import plots  # pyplot: imported once run_report has chosen the backend

    reranked = load_reranked(store)
    if reranked is not None:
        tables["rerank_examples"] = rerank_examples(reranked)
        figures["rerank_examples"] = plots.plot_rerank_examples(tables["rerank_examples"])
    ranking = load_ranking(store)
    if ranking is None:
        notes.append(f"No next-basket evaluation ({store.reranked / SWEEP_NAME}.json): "
                     "run `trendrec evaluate-rerank`.")
    else:
        tables["ranking"] = ranking[0]
        figures["ranking"] = plots.plot_ranking(ranking[1])
    cold = cold_start_table(store)
    if cold is not None:
        tables["cold_start"] = cold


def run_report(cfg: Config, output: str | None = None) -> dict[str, Any]:
    """Draw the key plots into ``output`` (inside the store; default report/) and write index.html."""
    import matplotlib

    if "inline" not in matplotlib.get_backend():
        matplotlib.use("Agg")  # files only: no display needed, no GUI toolkit imported
    import matplotlib.pyplot as plt

    from recsys.report import plots

    store = Store(cfg.store)
    folder = store.output(output, directory=True) if output is not None else store.report
    figures, tables, notes = report_figures(cfg)
    images = {}
    for name, fig in figures.items():
        with atomic_path(folder / f"{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        images[name] = folder / f"{name}.png"
    page = folder / "index.html"
    with atomic_path(page) as tmp:
        tmp.write_text(plots.render_page(store.root, images, tables, notes), encoding="utf-8")
    log.info("report: %d plots and %s", len(images), page)
    return {"output": str(folder), "html": str(page), "plots": sorted(str(p) for p in images.values()),
            "notes": notes}
