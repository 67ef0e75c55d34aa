"""The monitor's last verdicts for `trendrec status`, the report and notebook 02: drift and live results.

``last_verdicts`` reads the newest drift record (monitor/drift/) and the live results table: per week
of the production version, its Recall@10 beside the best baseline's, and how many of the latest weeks
in a row it trails. ``monitor_lines`` says it in sentences, and says DEGRADED with the fix when the
verdicts carry ``degraded`` (recsys.monitor.gate.trailing_reason).

    python -c "from recsys.monitor.summary import last_verdicts; print(last_verdicts('trendrec-data'))"
"""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from pipeline.store import Store
from recsys.monitor.live import PRODUCTION, read_live_results

METRIC = "recall@10"


def last_drift(store: Store) -> dict[str, Any] | None:
    records = sorted(store.drift.glob("*.json")) if store.drift.is_dir() else []
    if not records:
        return None
    record = json.loads(records[-1].read_text(encoding="utf-8"))
    return {"window": record["window"], "version": record.get("version"), "passed": record["passed"],
            "failed": record["failed"], "reasons": [c["reason"] for c in record["checks"] if not c["passed"]],
            "record": str(records[-1])}


def live_weeks(table: pd.DataFrame, version: str | None = None) -> pd.DataFrame:
    """Per next-basket week of ``version`` (default: the newest judged): the version's Recall@10, the best
    baseline and its Recall@10, whether the version trails it."""
    rows = table[(table["family"] == "nextbasket") & (table["metric"] == METRIC)]
    if rows.empty:
        return pd.DataFrame(columns=["start", "production", "best_baseline", "baseline", "trails"])
    rows = rows[rows["version"] == (version or rows["version"].max())]
    wide = rows.pivot_table(index="start", columns="method", values="value", aggfunc="first")
    baselines = wide.drop(columns=[PRODUCTION], errors="ignore")
    out = pd.DataFrame({"production": wide.get(PRODUCTION), "best_baseline": baselines.idxmax(axis=1),
                        "baseline": baselines.max(axis=1)}, index=wide.index)
    out["trails"] = out["production"] < out["baseline"]
    return out.reset_index()


def last_verdicts(store: Store | str | os.PathLike, version: str | None = None) -> dict[str, Any]:
    """{"drift": newest drift verdicts or None, "live": the version's live weeks and trailing streak or None}."""
    store = store if isinstance(store, Store) else Store(store)
    weeks = live_weeks(read_live_results(store), version)
    live = None
    if len(weeks):
        streak = 0
        for trails in reversed(weeks["trails"].tolist()):
            if not trails:
                break
            streak += 1
        last = weeks.iloc[-1]
        live = {"weeks": len(weeks), "last_week": last["start"], "production": float(last["production"]),
                "best_baseline": last["best_baseline"], "baseline": float(last["baseline"]),
                "weeks_trailing": streak}
    return {"drift": last_drift(store), "live": live}


def monitor_lines(verdicts: dict[str, Any]) -> list[str]:
    drift, live, lines = verdicts.get("drift"), verdicts.get("live"), []
    if drift is not None:
        window = f"{drift['window'][0]}..{drift['window'][1]}"
        lines.append(f"Drift ({window} against {drift['version'] or 'the reference'}'s training data): "
                     + ("every check passed." if drift["passed"] else
                        f"FAILED {', '.join(drift['failed'])}: {'; '.join(drift['reasons'])}."))
    if live is not None:
        lines.append(f"Live results ({live['weeks']} week(s) judged; week from {live['last_week']}): Recall@10 "
                     f"{live['production']:.4f} against {live['best_baseline']} {live['baseline']:.4f}"
                     + (f"; trailing the best baseline {live['weeks_trailing']} week(s) in a row."
                        if live["weeks_trailing"] else "."))
    if verdicts.get("degraded"):  # recsys.monitor.gate.trailing_reason: monitor.trailing_weeks reached
        lines.append(f"DEGRADED: {verdicts['degraded']}.")
    return lines
