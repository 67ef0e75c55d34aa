"""`trendrec value`'s arguments: standard library only, so building the CLI parser stays fast.

The command body is recsys.value.stage.run_value_command; recsys.cli lists the command.

    trendrec value --horizon-days 90 --json
"""

from __future__ import annotations

import argparse


def add_value_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidate", nargs="?", help="candidate directory (default: the latest trained)")
    parser.add_argument("--horizon-days", type=int, help="days forecast and held out (default: value.horizon_days)")
