"""`trendrec value`'s arguments: standard library only, so building the CLI parser stays fast.

The command body is recsys.value.part.run_value_command(cfg, args, run); recsys.cli lists the command.

    trendrec value --horizon-days 90 --json
"""

from __future__ import annotations

import argparse


def add_value_arguments(parser: argparse.ArgumentParser) -> None:
    # dest stays "candidate" for recsys.cli; a candidate folder of the old flow names the run of its name
    parser.add_argument("candidate", metavar="run", nargs="?",
                        help="training run folder, models/runs/<run id>/ (default: the latest run, or a new one)")
    parser.add_argument("--horizon-days", type=int, help="days forecast and held out (default: value.horizon_days)")
