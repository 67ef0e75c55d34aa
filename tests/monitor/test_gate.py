"""What the monitor's verdicts do (recsys.monitor.gate): a failed drift check holds the push back unless
one run overrides it; a production version trailing the best baseline N weeks in a row is DEGRADED on
`trendrec status`, with `trendrec models rollback` named as the fix.

    .venv/bin/python -m pytest tests/monitor/test_gate.py -q
"""

import dataclasses

import pytest

from pipeline.config import MonitorConfig
from pipeline.store import Store
from recsys import flow, registry
from recsys.cli import COMMANDS, build_parser
from recsys.monitor.gate import gate_drift, trailing_reason
from recsys.monitor.live import append_results
from recsys.report.status import status_lines, store_status
from tests.monitor.conftest import CUT, push_release, shop_store

SCORES = [("c001", "br00", 0.9)]


def _week(version, start, production, p_topfreq, tifu):
    return [{"version": version, "family": "nextbasket", "start": start, "end": start, "method": m,
             "metric": "recall@10", "value": v, "customers": 10}
            for m, v in (("production", production), ("p_topfreq", p_topfreq), ("tifu_knn", tifu))]


@pytest.mark.slow
def test_a_failed_drift_check_holds_the_push_and_says_why(tmp_path):
    cfg = shop_store(tmp_path, "rekeyed")
    version = push_release(cfg, CUT, SCORES)
    result = flow.run_stage("push", cfg)  # no training run needed: the gate answers first
    assert result["pushed"] is False and result["held_by"] == "drift"
    assert "unknown:item_id" in result["reason"] and "column item_id: 100% of the window's rows" in result["reason"]
    assert "--ignore-drift" in result["reason"]
    assert registry.read_production(cfg.store)["version"] == version  # not promoted
    ignored = gate_drift(cfg, ignore=True)  # one run's override
    assert ignored["held"] is False and ignored["passed"] is False and ignored["reason"].startswith("ignored")
    off = gate_drift(dataclasses.replace(cfg, monitor=MonitorConfig(drift_gate=False)))
    assert off == {"held": False, "passed": None, "reason": "drift gate off (monitor.drift_gate = false)"}


@pytest.mark.slow
def test_a_clean_week_or_no_production_lets_the_push_through(tmp_path):
    cfg = shop_store(tmp_path)
    assert gate_drift(cfg)["held"] is False and gate_drift(cfg)["passed"] is None  # nothing in production yet
    push_release(cfg, CUT, SCORES)
    gate = gate_drift(cfg)
    assert gate["held"] is False and gate["passed"] is True


def test_push_takes_ignore_drift():
    args = build_parser(COMMANDS).parse_args(["push", "--ignore-drift"])
    assert args.ignore_drift is True
    assert build_parser(COMMANDS).parse_args(["push"]).ignore_drift is False


@pytest.mark.slow
def test_status_says_degraded_after_n_weeks_behind_and_names_rollback(tmp_path):
    cfg = shop_store(tmp_path)
    version = push_release(cfg, CUT, SCORES)
    append_results(Store(cfg.store),
                   _week(version, "2024-03-04", 0.5, 0.4, 0.3) + _week(version, "2024-03-11", 0.3, 0.4, 0.35))
    assert trailing_reason(cfg.store, 2) is None  # one week behind
    assert not [x for x in status_lines(store_status(cfg)) if x.startswith("DEGRADED")]
    assert trailing_reason(cfg.store, 1).endswith("run `trendrec models rollback`")
    append_results(Store(cfg.store), _week(version, "2024-03-18", 0.2, 0.1, 0.5))
    [line] = [x for x in status_lines(store_status(cfg)) if x.startswith("DEGRADED")]
    assert line == (f"DEGRADED: production {version} trails the best baseline on live results 2 week(s) in a row "
                    "(week from 2024-03-18: Recall@10 0.2000 against tifu_knn 0.5000): run `trendrec models rollback`.")
    longer = dataclasses.replace(cfg, monitor=MonitorConfig(trailing_weeks=3))
    assert store_status(longer)["monitor"]["degraded"] is None
