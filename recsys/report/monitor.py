"""The monitor in the report and notebook 02: drift verdicts over time and each week's live results.

``drift_history`` (every drift record's checks, by window end), ``drift_run`` and ``drift_table`` (the newest
record: its window and verdict, then each check) and
``live_table`` (the live results of the production version, one row per week and method) are plain
tables; ``plot_drift`` and ``plot_live_results`` draw them; ``monitor_figures`` adds what the store has
to the report's figures and tables.

    python -c "from recsys.report.monitor import drift_table; print(drift_table('trendrec-data'))"
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from pipeline.store import Store
from recsys.monitor.live import read_live_results

LIVE_METRIC = "recall@10"


def _store(store: Store | str) -> Store:
    return store if isinstance(store, Store) else Store(store)


def drift_history(store: Store | str) -> pd.DataFrame:
    """One row per drift record and check: day (window end), check, value, threshold, passed."""
    store, rows = _store(store), []
    for path in sorted(store.drift.glob("*.json")) if store.drift.is_dir() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        for c in record["checks"]:
            threshold = c["threshold"][-1] if isinstance(c["threshold"], list) else c["threshold"]
            rows.append({"day": record["window"][1], "check": c["check"], "value": c["value"],
                         "threshold": threshold, "passed": c["passed"]})
    return pd.DataFrame(rows, columns=["day", "check", "value", "threshold", "passed"])


def _newest_drift(store: Store | str) -> dict[str, Any] | None:
    store = _store(store)
    records = sorted(store.drift.glob("*.json")) if store.drift.is_dir() else []
    return json.loads(records[-1].read_text(encoding="utf-8")) if records else None


def drift_run(store: Store | str) -> pd.DataFrame | None:
    """The newest drift record in one row: its window, reference, version, rows, verdict and failed checks."""
    record = _newest_drift(store)
    if record is None:
        return None
    rows, checks = record.get("rows") or {}, len(record["checks"])
    return pd.DataFrame([{"window": " .. ".join(record["window"]), "reference": " .. ".join(record["reference"]),
                          "version": record.get("version"), "rows (reference / window)":
                          f"{rows.get('reference')} / {rows.get('window')}",
                          "checks passed": f"{checks - len(record['failed'])} of {checks}",
                          "failed": ", ".join(record["failed"]) or "none"}])


def drift_table(store: Store | str) -> pd.DataFrame | None:
    """The newest drift record's checks: value, threshold, pass/fail and the reason."""
    record = _newest_drift(store)
    if record is None:
        return None
    checks = record["checks"]
    frame = pd.DataFrame(checks)[["check", "value", "threshold", "passed", "reason"]]
    frame["threshold"] = frame["threshold"].map(str)
    return frame


def live_table(store: Store | str, version: str | None = None) -> pd.DataFrame:
    """Recall@10 (and the other metrics) per week and method of ``version`` (default: the newest judged)."""
    table = read_live_results(_store(store))
    table = table[table["family"] == "nextbasket"]
    if table.empty:
        return table
    table = table[table["version"] == (version or table["version"].max())]
    return table.pivot_table(index=["start", "method"], columns="metric", values="value").reset_index()


def plot_drift(history: pd.DataFrame):
    """Each check's value over the drift runs, its threshold dashed; a failed run marked red."""
    import matplotlib.pyplot as plt

    checks = [c for c in history["check"].unique() if history.loc[history["check"] == c, "value"].notna().any()]
    cols = 4
    rows = max(1, -(-len(checks) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.4 * rows), squeeze=False, constrained_layout=True)
    for ax, check in zip(axes.ravel(), checks):
        part = history[history["check"] == check]
        ax.plot(part["day"], part["value"], marker="o", color="tab:blue")
        ax.plot(part["day"], part["threshold"], ls="--", color="grey")
        failed = part[~part["passed"]]
        ax.scatter(failed["day"], failed["value"], color="red", zorder=3)
        ax.set_title(check, fontsize=9)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
    for ax in axes.ravel()[len(checks):]:
        ax.axis("off")
    fig.suptitle("Drift checks per run (dashed: threshold; red: failed)")
    return fig


def plot_live_results(table: pd.DataFrame, metric: str = LIVE_METRIC):
    """``metric`` per week: the production version's push-time scores beside the baselines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
    for method, part in table.groupby("method", sort=True):
        ax.plot(part["start"], part[metric], marker="o", label=method, lw=2.5 if method == "production" else 1.2)
    ax.set_xlabel("week from")
    ax.set_ylabel(metric)
    ax.set_title(f"Live results: {metric} of the production version and the baselines, per week")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)
    return fig


def monitor_figures(store: Store | str, figures: dict[str, Any], tables: dict[str, pd.DataFrame],
                    notes: list[str]) -> None:
    """The drift history and the live results, when the store has them (else a note naming the command)."""
    history = drift_history(store)
    if history.empty:
        notes.append("No drift check yet: run `trendrec drift`.")
    else:
        figures["drift"] = plot_drift(history)
        tables["drift"] = drift_table(store)
        tables["drift_run"] = drift_run(store)
    live = live_table(store)
    if live.empty:
        notes.append("No live results yet (a full week after the production version's cut-off): run `trendrec live`.")
    else:
        figures["live_results"] = plot_live_results(live)
        tables["live_results"] = live
