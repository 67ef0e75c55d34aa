"""Matplotlib figures of trends, forecasts and re-ranking, drawn from frames that recsys.report.report shapes.

Every plot function takes ready-made tables and returns a ``Figure``; nothing here reads the store
or computes a statistic, so the notebooks, ``trendrec report`` and the tests draw the same pictures.
``render_page`` lays the report's PNG files and tables out as one self-contained HTML page.
``trendrec report`` draws them with the Agg backend; in Jupyter the inline backend is kept.

    trendrec report --store /tmp/nbstore   # writes report/*.png and report/index.html
"""

from __future__ import annotations

import base64
import html
import math
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline import schemas as s

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _grid(n: int, cols: int = 4, size: tuple[float, float] = (3.6, 2.6), **kw) -> tuple[Figure, np.ndarray]:
    rows = max(1, math.ceil(n / cols))
    cols = min(cols, max(n, 1))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def plot_month_weekday(matrices: dict[str, pd.DataFrame], measure: str) -> Figure:
    """One month x weekday heatmap per segment, each relative to its own mean day (1 = average)."""
    fig, axes = _grid(len(matrices), cols=5, size=(3.0, 3.0), constrained_layout=True)
    image = None
    for ax, (segment, matrix) in zip(axes.flat, matrices.items()):
        values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
        image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=2.0)
        ax.set_title(segment, fontsize=10)
        ax.set_xticks(range(7), [d[0] for d in WEEKDAYS], fontsize=7)
        ax.set_yticks(range(12), MONTHS, fontsize=7)
        ax.set_facecolor("0.85")  # days that never occur (no Saturdays in Online Retail) stay grey
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label=f"{measure} per day / segment mean")
    fig.suptitle(f"Mean daily {measure} by month and weekday, relative to the segment's average day (1.0)")
    return fig


def plot_daily_trends(series: pd.DataFrame, measure: str, window: int) -> Figure:
    """Small multiples of each segment's daily ``measure`` (light) with its rolling mean (bold)."""
    segments = list(dict.fromkeys(series[s.SEGMENT]))
    fig, axes = _grid(len(segments), cols=4, sharex=True, constrained_layout=True)
    for ax, segment in zip(axes.flat, segments):
        part = series[series[s.SEGMENT] == segment]
        ax.plot(part[s.DATE], part[measure], color="0.7", lw=0.6, label="daily")
        ax.plot(part[s.DATE], part["rolling"], color="tab:blue", lw=1.6, label=f"{window}-day mean")
        ax.set_title(segment, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", labelrotation=30)
    axes.flat[0].set_ylabel(measure)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Daily {measure} per segment with a {window}-day rolling trend")
    return fig


def plot_movers(movers: pd.DataFrame, days: int, measure: str = "sales") -> Figure:
    """Horizontal bars of each segment's past change, last ``days`` days against the ``days`` before.

    This looks back only; the trend scores re-ranking uses compare the model's forecast with the
    recent days (plot_trend_scores), and the two can disagree.
    """
    ordered = movers.sort_values("change")
    colors = np.where(ordered["change"] >= 0, "tab:green", "tab:red")
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ordered) + 1.5), constrained_layout=True)
    ax.barh(ordered[s.SEGMENT], 100 * ordered["change"], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"change of {measure} in the last {days} days vs the {days} before (%)")
    ax.set_title(f"Past {measure}: last {days} days against the {days} before (not what re-ranking uses)")
    return fig


def plot_trend_scores(trends: pd.DataFrame) -> Figure:
    """Horizontal bars of each segment's trend score in [-1, 1] exactly as trend.parquet holds it.

    These are the scores re-ranking blends in; the quantile band (trend_low .. trend_high) is drawn
    as an error bar when the model has one.
    """
    ordered = trends.sort_values(s.TREND, kind="mergesort")
    values = ordered[s.TREND].to_numpy(float)
    band = None
    if {s.TREND_LOW, s.TREND_HIGH} <= set(ordered.columns):
        band = np.vstack([values - ordered[s.TREND_LOW].to_numpy(float),
                          ordered[s.TREND_HIGH].to_numpy(float) - values])
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ordered) + 1.5), constrained_layout=True)
    ax.barh(ordered[s.SEGMENT].astype(str), values, xerr=band,
            color=np.where(values >= 0, "tab:green", "tab:red"), ecolor="0.3")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlim(min(-0.05, float(values.min(initial=0)) * 1.2), max(0.05, float(values.max(initial=0)) * 1.2))
    ax.set_xlabel("trend score: (forecast - recent) / (forecast + recent), next horizon vs last horizon days")
    ax.set_title("Trend scores of the production model (what re-ranking uses)")
    return fig


def plot_decomposition(parts: pd.DataFrame, segment: str, measure: str, period: int) -> Figure:
    """Observed, trend, seasonal and residual panels of one segment's decomposition."""
    fig, axes = plt.subplots(4, 1, figsize=(10, 8), sharex=True, constrained_layout=True)
    for ax, column in zip(axes, ("observed", "trend", "seasonal", "resid")):
        ax.plot(parts.index, parts[column], lw=0.9, color="tab:blue" if column != "resid" else "0.4")
        ax.set_ylabel(column)
    axes[-1].set_xlabel("date")
    fig.suptitle(f"STL decomposition of {segment} daily {measure} (period {period} days)")
    return fig


def plot_holdout(frame: pd.DataFrame, measure: str, band: tuple[str, str] | None = None,
                 shipped: str = "model") -> Figure:
    """Actuals (with recent history) against production's and the seasonal-naive forecasts, per segment.

    The ``model`` column is the forecast of the forecaster production ships, ``shipped`` its name (the
    evaluation's: "model", "production" or a baseline member). ``band`` names a (lower, upper) pair of
    quantile columns to shade, once the model provides them.
    """
    segments = list(dict.fromkeys(frame[s.SEGMENT]))
    fig, axes = _grid(len(segments), cols=4, sharex=True, constrained_layout=True)
    for ax, segment in zip(axes.flat, segments):
        part = frame[frame[s.SEGMENT] == segment]
        ax.plot(part[s.DATE], part["actual"], color="black", lw=1.2, label="actual")
        ax.plot(part[s.DATE], part["model"], color="tab:blue", lw=1.4, label=f"production ({shipped})")
        ax.plot(part[s.DATE], part["seasonal_naive"], color="tab:orange", lw=1.0, ls="--",
                label="seasonal naive")
        if band is not None:
            ax.fill_between(part[s.DATE], part[band[0]], part[band[1]], color="tab:blue", alpha=0.2,
                            label="quantile band")
        forecast_start = part.loc[part["model"].notna(), s.DATE]
        if len(forecast_start):
            ax.axvline(forecast_start.min(), color="0.5", lw=0.8, ls=":")
        ax.set_title(segment, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="x", labelrotation=30)
    axes.flat[0].set_ylabel(measure)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Production model vs actual {measure}: history then hold-out (forecasts after the cutoff)")
    return fig


def plot_segment_mase(per_segment: pd.DataFrame, title: str = "Hold-out MASE per segment") -> Figure:
    """Grouped bars of each forecaster's MASE per segment (below 1 beats naive in-sample)."""
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    names = list(per_segment.columns)
    x = np.arange(len(per_segment))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        ax.bar(x + i * width - 0.4 + width / 2, per_segment[name], width, label=name)
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xticks(x, per_segment.index, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("MASE (lower is better)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_loss(history: dict[str, list[float]], loss: str, which: str = "the production model") -> Figure:
    """Training and validation loss per epoch; ``loss`` names it, ``which`` says whose curve it is.

    Draw only the curve of the forecaster production ships (recsys.report.report.training_curve).
    """
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", ms=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss} loss (scaled target)")
    ax.set_title(f"Training curve of {which}")
    ax.legend()
    return fig


def plot_rerank_examples(examples: pd.DataFrame) -> Figure:
    """Slope charts: each item's rank by base score (left) and after the trend blend (right)."""
    users = list(dict.fromkeys(examples[s.USER_ID]))
    fig, axes = _grid(len(users), cols=3, size=(4.2, 4.0), constrained_layout=True)
    for ax, user in zip(axes.flat, users):
        part = examples[examples[s.USER_ID] == user]
        for _, row in part.iterrows():
            color = "tab:green" if row["rank_after"] < row["rank_before"] else (
                "tab:red" if row["rank_after"] > row["rank_before"] else "0.5")
            ax.plot([0, 1], [row["rank_before"], row["rank_after"]], color=color, marker="o")
            ax.text(1.04, row["rank_after"], f"{row[s.ITEM_ID]} ({row[s.SEGMENT]})", va="center", fontsize=7)
        ax.set_xlim(-0.1, 1.9)
        ax.invert_yaxis()
        ax.set_xticks([0, 1], ["base score", "re-ranked"])
        ax.set_ylabel("rank")
        ax.set_title(f"user {user}", fontsize=10)
    fig.suptitle("Re-ranking examples (green: moved up, red: moved down)")
    return fig


def plot_ranking(per_cutoff: pd.DataFrame) -> Figure:
    """Recall@10 and NDCG@10 of every method at every cut-off of `trendrec evaluate-rerank`."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("recall@10", "ndcg@10")):
        for method, part in per_cutoff.groupby("method", sort=False):
            ax.plot(part["cutoff"], part[metric], marker="o", label=method,
                    lw=2.5 if method == "lstm_recommender" else 1.2)
        ax.set_xlabel("cut-off (the target week starts here)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per weekly cut-off")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=8)
    return fig


# --- the HTML page of `trendrec report` -------------------------------------------------------------
_TITLES = {"month_weekday": "Month x weekday profile", "daily_trends": "Daily series and rolling trend",
           "movers": "Past change per segment (looks back; not used by re-ranking)",
           "trend_scores": "Trend scores that drive re-ranking (production's trend.parquet)",
           "decomposition": "Seasonal decomposition",
           "holdout": "Forecasts against actuals", "segment_mase": "Hold-out MASE per segment",
           "loss": "Training curve", "rerank_examples": "Re-ranking examples",
           "ranking": "Next-basket evaluation: every method at every cut-off (pooled table below)",
           "backtest_mase": "Rolling-origin backtest: MASE per segment (the combination and each member)",
           "value_deciles": "Customer value: predicted vs actual mean spend per predicted decile (table below)"}
_STYLE = ("body{font-family:sans-serif;max-width:1500px;margin:auto;padding:1em}img{max-width:100%}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
          ".note{color:#444}nav{position:sticky;top:0;background:#fff;padding:4px 0;border-bottom:1px solid #ccc}"
          "section{margin-top:1.5em}")


def _table(frame: pd.DataFrame, digits: int = 4, index: bool = True) -> str:
    return frame.to_html(index=index, float_format=lambda v: f"{v:.{digits}g}", na_rep="-")


# Tables shown under the figure of the same name (or under their own heading when it was not drawn).
_UNDER = {"rerank_examples": "rerank_examples", "ranking": "ranking", "trend_scores": "trend_scores",
          "backtest_mase": "backtest", "value_deciles": "value_metrics"}
_TABLE_TITLES = {"value_metrics": "Customer value: every model on the hold-out (ships: the published forecast)",
                 "cold_start": "Cold start: new customers, guest orders and items outside the scored candidates "
                               "(evaluate-rerank, pooled over the cut-offs)"}


# Sections with a page of their own inside the report: (anchor, nav label, heading, figure's caption); each
# shows its tables above its figure and is listed in the page's navigation bar.
_PAGES = {"drift": ("drift", "Drift", "Drift: is what the shop sends still what production was trained on?",
                    "Each check per `trendrec drift` run (dashed: its threshold; red: failed)"),
          "live_results": ("live-results", "Live results", "Live results: production on the weeks after its cut-off",
                           "Recall@10 per week: the production version beside the baselines")}
_PAGE_TABLES = {"drift": (("drift_run", "The newest run"),
                          ("drift", "Every check of the newest run: value, threshold, verdict and the reason")),
                "live_results": (("live_results", "Every week and method"),)}


def _section(anchor: str, title: str, body: str) -> str:
    """A section with its anchor; ``title`` is HTML (escaped by the caller)."""
    return f'<section id="{anchor}"><h2>{title}</h2>{body}</section>'


def _image(name: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def _page_section(name: str, path: Path, tables: dict[str, pd.DataFrame]) -> str:
    anchor, _, title, caption = _PAGES[name]
    body = "".join(f"<h3>{html.escape(heading)}</h3>" + _table(tables[key], index=False)
                   for key, heading in _PAGE_TABLES[name] if key in tables)
    return _section(anchor, html.escape(title), body + f"<h3>{html.escape(caption)}</h3>" + _image(name, path))


def render_page(store_root: Path, images: dict[str, Path], tables: dict[str, pd.DataFrame],
                notes: list[str]) -> str:
    """One HTML page with no external resource: PNG files as base64 data URIs, tables as plain HTML.

    Every heading is a section with an anchor, listed in a navigation bar at the top; the monitor's
    pages (``_PAGES``: drift, live results) come last, each with its tables above its figure."""
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sections: list[tuple[str, str, str]] = []  # (anchor, nav label, html)

    def add(anchor: str, title: str, body: str, label: str | None = None) -> None:
        sections.append((anchor, label or title, _section(anchor, title, body)))
    if "verdicts" in tables:
        add("verdicts", "Verdicts of the parts production holds (blessed, metric vs baseline, what ships)",
            _table(tables["verdicts"]), "Verdicts")
    if "metrics" in tables:
        add("metrics", "Hold-out metrics: the forecaster production ships (role <i>ships</i>) vs the others",
            _table(tables["metrics"]), "Hold-out metrics")
    if "combination" in tables:
        add("combination", "Combination per segment (weights and validation MASE, chosen before the hold-out)",
            _table(tables["combination"], 3), "Combination")
    for name, path in images.items():
        if name in _PAGES:
            continue
        under = _UNDER.get(name)
        add(name.replace("_", "-"), html.escape(_TITLES.get(name, name)), _image(name, path)
            + (_table(tables[under], index=name == "backtest_mase") if under in tables else ""))
    for name in ("value_metrics",):  # a table whose figure was not drawn still shows
        if name in tables and "value_deciles" not in images:
            add("value-metrics", html.escape(_TABLE_TITLES[name]), _table(tables[name], index=False))
    if "cold_start" in tables:
        add("cold-start", html.escape(_TABLE_TITLES["cold_start"]), _table(tables["cold_start"]), "Cold start")
    for name, (anchor, label, _, _) in _PAGES.items():
        if name in images:
            sections.append((anchor, label, _page_section(name, images[name], tables)))
    nav = " · ".join(f'<a href="#{a}">{html.escape(_short(label))}</a>' for a, label, _ in sections)
    head = [f"<h1>trendrec report</h1><p>Store <code>{html.escape(str(store_root))}</code>, {when}.</p>"]
    head += [f"<nav>{nav}</nav>"] if sections else []
    head += [f"<p class=note>{html.escape(n)}</p>" for n in notes]
    return (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>trendrec report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(head + [s for _, _, s in sections])}</body></html>\n")


def _short(title: str) -> str:
    """A navigation label: a title up to its colon or first parenthesis."""
    return html.unescape(title.split(":")[0].split(" (")[0])
