"""The monitor's last verdicts (recsys.monitor.summary) as `trendrec status` shows them: the newest drift
run and how many weeks in a row the production version trails the best baseline."""

import pytest

from pipeline.store import Store
from recsys.monitor.drift import run_drift
from recsys.monitor.live import append_results
from recsys.monitor.summary import last_verdicts, monitor_lines
from recsys.report.status import status_lines, store_status
from tests.monitor.conftest import CUT, push_release, shop_store


def _week(version, start, production, p_topfreq, tifu):
    return [{"version": version, "family": "nextbasket", "start": start, "end": start, "method": m,
             "metric": "recall@10", "value": v, "customers": 10}
            for m, v in (("production", production), ("p_topfreq", p_topfreq), ("tifu_knn", tifu))]


def test_weeks_trailing_the_best_baseline_are_counted_from_the_latest(tmp_path):
    store = Store(tmp_path)
    append_results(store, _week("v0002", "2024-01-01", 0.5, 0.4, 0.3) + _week("v0002", "2024-01-08", 0.3, 0.4, 0.35)
                   + _week("v0002", "2024-01-15", 0.2, 0.1, 0.5) + _week("v0001", "2024-01-15", 0.9, 0.1, 0.1))
    live = last_verdicts(store)["live"]
    assert live == {"weeks": 3, "last_week": "2024-01-15", "production": 0.2, "best_baseline": "tifu_knn",
                    "baseline": 0.5, "weeks_trailing": 2}
    assert last_verdicts(store, "v0001")["live"]["weeks_trailing"] == 0
    [line] = monitor_lines({"live": live})
    assert line.endswith("trailing the best baseline 2 week(s) in a row.")


@pytest.mark.slow
def test_status_shows_the_last_drift_verdicts(tmp_path):
    cfg = shop_store(tmp_path, "rekeyed")
    version = push_release(cfg, CUT, [("c001", "br00", 0.9)])
    run_drift(cfg)  # the production version's own cut-off: CUT
    status = store_status(cfg)
    assert status["monitor"]["drift"]["failed"] == ["unknown:item_id"]
    assert status["monitor"]["drift"]["version"] == version
    [line] = [x for x in status_lines(status) if x.startswith("Drift")]
    assert "FAILED unknown:item_id: column item_id: 100% of the window's rows" in line
