"""Issue 5's forecast figures in one place: the public load benchmark and the Online Retail backtest.

Each part is its own script with its own options; this runs one or both with their defaults (3 seeds,
printed as mean ± std). Neither asserts anything: they print figures next to their baselines.

    PYTHONPATH=. .venv/bin/python benchmarks/forecast_bench.py            # both (about 20 min on 2 cores)
    PYTHONPATH=. .venv/bin/python benchmarks/forecast_bench.py load --published
    PYTHONPATH=. .venv/bin/python benchmarks/forecast_bench.py retail --seeds 1 --set lookback=56
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run from anywhere

import forecast_load  # noqa: E402
import forecast_retail  # noqa: E402

PARTS = {"load": forecast_load.main, "retail": forecast_retail.main}


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv and argv[0] in PARTS:
        return PARTS[argv[0]](argv[1:]) or 0
    if argv:
        print(f"unknown part {argv[0]!r}: expected one of {', '.join(PARTS)} (or nothing for both)",
              file=sys.stderr)
        return 2
    for name, run in PARTS.items():
        print(f"== {name} ==", flush=True)
        run([])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    sys.exit(main(sys.argv[1:]))
