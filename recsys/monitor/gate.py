"""What the monitor's verdicts do: a failed drift check holds the push back; a production version that trails
the best baseline on live results for ``monitor.trailing_weeks`` weeks in a row is reported as degraded.

``gate_drift`` runs `trendrec drift` against production's training data before a push: when a check fails
the push is held (the version is not promoted) and the reason names each failed check, unless the config
turns the gate off (``monitor.drift_gate = false``) or one run overrides it (`trendrec push --ignore-drift`,
the retrain DAG's ``ignore_drift`` param). ``trailing_reason`` is the sentence `trendrec status`, the
monitor DAG's failure and the service's /health give when production trails; it names the fix,
`trendrec models rollback`.

    trendrec push --ignore-drift --json
"""

from __future__ import annotations

import logging
from typing import Any

from pipeline.config import Config
from pipeline.store import Store
from recsys import registry
from recsys.monitor.summary import last_verdicts

log = logging.getLogger(__name__)

ROLLBACK = "trendrec models rollback"


def gate_drift(cfg: Config, ignore: bool = False) -> dict[str, Any]:
    """{"held": the push must wait, "passed": every drift check passed, "reason": why, "record": the drift file}."""
    from recsys.monitor.drift import run_drift
    from recsys.monitor.windows import MonitorError

    if not cfg.monitor.drift_gate:
        return {"held": False, "passed": None, "reason": "drift gate off (monitor.drift_gate = false)"}
    if registry.read_production(cfg.store) is None:
        return {"held": False, "passed": None, "reason": "no version in production: no reference to compare with"}
    try:
        result = run_drift(cfg)
    except MonitorError as exc:  # no day after production's cut-off yet: nothing to compare, not a fault
        return {"held": False, "passed": None, "reason": str(exc)}
    if result["passed"]:
        return {"held": False, "passed": True, "reason": "every drift check passed", "record": result.get("record")}
    reasons = "; ".join(c["reason"] for c in result["checks"] if not c["passed"])
    why = f"drift check(s) failed ({', '.join(result['failed'])}): {reasons}"
    if ignore:
        log.warning("pushing despite failed drift checks (--ignore-drift): %s", why)
        return {"held": False, "passed": False, "reason": f"ignored for this run: {why}", "record": result.get("record")}
    log.error("push held back: %s", why)
    return {"held": True, "passed": False, "record": result.get("record"),
            "reason": f"{why}; not promoted (look at the data, or override this run with `trendrec push --ignore-drift`)"}


def trailing_reason(store: Store | str, weeks: int, version: str | None = None) -> str | None:
    """Why production is degraded on live results (it trails the best baseline ``weeks`` weeks in a row), else None."""
    if version is None:
        production = registry.read_production(store)
        version = production and production["version"]
    if version is None:
        return None
    live = last_verdicts(store, version).get("live")
    if live is None or live["weeks_trailing"] < weeks:
        return None
    return (f"production {version} trails the best baseline on live results {live['weeks_trailing']} week(s) in a "
            f"row (week from {live['last_week']}: Recall@10 {live['production']:.4f} against {live['best_baseline']} "
            f"{live['baseline']:.4f}): run `{ROLLBACK}`")
