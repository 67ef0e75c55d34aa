"""The customer value page of the report and notebook 02: the metrics table, the decile chart, the verdict.

All of it comes from the production version (read through registry.production, every digest checked):
its value part's ``value.json`` (``value/`` in a version, ``customers/value/`` in one written before
parts), with every model's figures on the last H days of the log and the mean predicted vs mean actual
spend per predicted decile (1 = the customers predicted to spend most), and the part's verdict and the
model whose forecast the version publishes (``ships``), from metadata.json.

    python -c "from recsys.report.value import load_value; print(load_value('trendrec-data'))"
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pipeline.store import Store, read_json
from recsys import registry
from recsys.report.status import value_status

log = logging.getLogger(__name__)

MODEL_ORDER = ("bgnbd_gg", "rfm", "lstm", "ensemble")
SUMMARY_FILE = "value.json"  # in a version's value part: recsys.value.stage's summary (name kept in step)


def load_value(store: Store | str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """(metrics: one row per model, deciles: model x decile, the summary) of production, or None.

    The metrics table has a ``ships`` column: True on the model whose forecast the version publishes.
    The summary gains ``ships`` and ``verdict`` (None for a version written before verdicts).
    """
    store = store if isinstance(store, Store) else Store(store)
    release = registry.production(store)
    folder = None if release is None else release.part("value")
    if folder is None or not (folder / SUMMARY_FILE).is_file():
        return None
    summary = read_json(folder / SUMMARY_FILE)
    shipped = value_status(release)
    summary |= {"ships": shipped.get("ships"), "verdict": shipped.get("verdict")}
    models = [m for m in MODEL_ORDER if m in summary.get("models", {})]
    models += [m for m in summary.get("models", {}) if m not in models]
    metrics = pd.DataFrame([{"model": m, "ships": m == summary["ships"], **summary["models"][m]} for m in models])
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
        ax.set_title(f"{model} (ships)" if model == summary.get("ships") else model)
        ax.set_xlabel("predicted decile (1 = highest)")
        ax.set_xticks(range(1, 11))
    axes[0][0].set_ylabel("mean spend per customer")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Customer value: calibration to {summary.get('calibration_end')}, "
                 f"hold-out {summary.get('holdout_days')} days, {summary.get('customers')} customers")
    return fig


def value_figures(store: Store | str, figures: dict[str, Any], tables: dict[str, pd.DataFrame],
                  notes: list[str]) -> None:
    """Add the value metrics table, its verdict note and the decile chart in place (a note when there is none)."""
    loaded = load_value(store)
    if loaded is None:
        notes.append("No customer value forecast in production: run `trendrec value` before `push`.")
        return
    metrics, deciles, summary = loaded
    tables["value_metrics"] = metrics
    notes.append(value_note(summary))
    if not deciles.empty:
        figures["value_deciles"] = plot_value_deciles(deciles, summary)


def value_note(summary: dict[str, Any]) -> str:
    """One sentence: which model's forecast production publishes, and the value verdict."""
    verdict = summary.get("verdict")
    why = f": {verdict.get('reason')}" if verdict else " (a version written before verdicts)"
    blessed = "" if not verdict else (" (blessed)" if verdict.get("blessed") else " (not blessed)")
    return f"Customer value publishes the {summary.get('ships')} forecast{blessed}{why}."
