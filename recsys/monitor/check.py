"""One verdict of the monitor (a drift or skew check): value, threshold, pass/fail and a reason naming the column.

    python -c "from recsys.monitor.check import Check; print(Check('schema', 0.0, 0.0, True))"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Check:
    """One check of a drift run: its value against its threshold; ``reason`` names the column and why."""

    check: str
    value: float | None
    threshold: float | list[float] | None
    passed: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def num(value: float | None) -> float | None:
    """A JSON-ready figure: None for NaN or infinity, else rounded to 6 decimals."""
    return None if value is None or not np.isfinite(value) else round(float(value), 6)
