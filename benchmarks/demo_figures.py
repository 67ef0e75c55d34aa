"""The figures the README quotes from the demo: run `trendrec demo --json`, record them in demo_figures.json.

Runs the demo in-process into a temporary store (the same stage functions as `make demo`'s Airflow run;
about 3 minutes on 2 cores), takes the figures the README's "What `make demo` ends with today" paragraph
quotes, formatted as the README quotes them, and writes ``benchmarks/demo_figures.json`` with the date,
the machine's cores and the demo's time. ``tests/test_docs.py`` checks that the README quotes every
recorded figure, so re-run this after a change that moves them and update the README with what it prints.
Give ``--from-json FILE`` to record the output of a `trendrec demo --json` run made before.

    .venv/bin/python benchmarks/demo_figures.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = Path(__file__).with_name("demo_figures.json")
TRENDREC = Path(sys.executable).with_name("trendrec")  # the console script of the venv running this
# path in the demo's --json summary -> how the README quotes it
FIGURES = {
    "customer_model.val_recall@10": "{:.4f}",  # the customer model's validation-week Recall@10
    "customer_model.best_baseline_recall@10": "{:.4f}",
    "customer_model.customers_scored": "{:,}",
    "verdicts.forecast.value": "{:.3f}",  # the trained combination's hold-out MASE
    "forecaster.holdout_mase": "{:.3f}",  # the shipped baseline's (AutoETS) MASE
    "model_metrics.mae": "{:,.0f}",  # ... and its MAE
    "seasonal_naive_metrics.mase": "{:.3f}",
    "seasonal_naive_metrics.mae": "{:,.0f}",
    "segments_model_wins": "{}",
    "segments_compared": "{}",
}


def run_demo() -> dict:
    with tempfile.TemporaryDirectory(prefix="trendrec-demo-figures-") as tmp:
        out = subprocess.run([str(TRENDREC), "demo", "--config", str(ROOT / "trendrec.toml"), "--store",
                              str(Path(tmp) / "store"), "--json"], cwd=ROOT, check=True, capture_output=True,
                             text=True)
    return json.loads(out.stdout)


def figures(summary: dict) -> dict[str, dict]:
    """{path: {"value", "quoted"}} of every figure of FIGURES in a demo summary."""
    found = {}
    for path, form in FIGURES.items():
        value = summary
        for key in path.split("."):
            value = value[key]
        found[path] = {"value": value, "quoted": form.format(value)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-json", help="a `trendrec demo --json` output to record instead of running the demo")
    args = parser.parse_args()
    summary = json.loads(Path(args.from_json).read_text()) if args.from_json else run_demo()
    record = {"recorded": datetime.date.today().isoformat(), "command": "trendrec demo --config trendrec.toml --json",
              "cores": os.cpu_count(), "seconds": summary["seconds"], "figures": figures(summary)}
    OUTPUT.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
