"""The customer value page of the report and notebook 02: the metrics table and the decile chart.

Both come from the production version's ``customers/value/value.json`` (written by the value stage,
recsys.value.stage): every model's figures on the last H days of the log, and the mean
predicted vs mean actual spend per predicted decile (1 = the customers predicted to spend most).

    python -c "from recsys.report.value import load_value; print(load_value('trendrec-data'))"
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.store import Store, read_json
from recsys import registry
from recsys.value.stage import SUMMARY_FILE, VALUE_DIR

MODEL_ORDER = ("bgnbd_gg", "rfm", "lstm", "ensemble")


def load_value(store: Store | str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """(metrics: one row per model, deciles: model x decile, the summary) of production, or None."""
    store = store if isinstance(store, Store) else Store(store)
    production = registry.read_production(store)
    path = None if production is None else store.models / production["version"] / VALUE_DIR / SUMMARY_FILE
    if path is None or not path.is_file():
        return None
    summary = read_json(path)
    models = [m for m in MODEL_ORDER if m in summary.get("models", {})]
    metrics = pd.DataFrame([{"model": m, **summary["models"][m]} for m in models])
    deciles = pd.DataFrame([{"model": m, **row} for m in models for row in summary.get("deciles", {}).get(m, [])])
    return metrics, deciles, summary


def plot_value_deciles(deciles: pd.DataFrame, summary: dict[str, Any]):
    """Mean predicted vs mean actual hold-out spend per predicted decile, one panel per model."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(deciles["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.2), constrained_layout=True, squeeze=False)
    for ax, model in zip(axes[0], models):
        part = deciles[deciles["model"] == model]
        width = 0.4
        ax.bar(part["decile"] - width / 2, part["predicted"], width, label="predicted")
        ax.bar(part["decile"] + width / 2, part["actual"], width, label="actual")
        ax.set_title(model)
        ax.set_xlabel("predicted decile (1 = highest)")
        ax.set_xticks(range(1, 11))
    axes[0][0].set_ylabel("mean spend per customer")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Customer value: calibration to {summary.get('calibration_end')}, "
                 f"hold-out {summary.get('holdout_days')} days, {summary.get('customers')} customers")
    return fig


def value_figures(store: Store | str, figures: dict[str, Any], tables: dict[str, pd.DataFrame],
                  notes: list[str]) -> None:
    """Add the value metrics table and decile chart in place (a note when production has none)."""
    loaded = load_value(store)
    if loaded is None:
        notes.append("No customer value forecast in production: run `trendrec value` before `push`.")
        return
    metrics, deciles, summary = loaded
    tables["value_metrics"] = metrics
    if not deciles.empty:
        figures["value_deciles"] = plot_value_deciles(deciles, summary)
