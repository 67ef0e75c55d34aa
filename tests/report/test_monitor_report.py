"""The report's monitor section (recsys.report.monitor): the drift checks per run and the live results per
week, drawn from a store's records; a store without them gets notes naming the commands."""

import matplotlib

matplotlib.use("Agg")

from pipeline.store import Store  # noqa: E402
from recsys.monitor.drift import run_drift  # noqa: E402
from recsys.monitor.live import append_results  # noqa: E402
from recsys.report.monitor import drift_history, live_table, monitor_figures  # noqa: E402
from recsys.report.plots import render_page  # noqa: E402
from tests.monitor.conftest import CUT, shop_store  # noqa: E402


def test_a_store_with_drift_runs_and_live_results_gets_both_figures(tmp_path):
    cfg = shop_store(tmp_path, "cents")
    run_drift(cfg, reference_end=CUT)
    run_drift(cfg, reference_end=CUT, as_of=CUT)  # a second run, on the first day of the week
    store = Store(cfg.store)
    append_results(store, [{"version": "v0001", "family": "nextbasket", "start": str(CUT), "end": str(CUT),
                            "method": m, "metric": "recall@10", "value": v, "customers": 5}
                           for m, v in (("production", 0.4), ("p_topfreq", 0.3))])
    history = drift_history(store)
    assert sorted(history["day"].unique()) == [str(CUT), "2024-03-10"]
    assert not history.loc[(history["check"] == "numeric:price") & (history["day"] == "2024-03-10"), "passed"].item()
    assert live_table(store).set_index("method")["recall@10"].to_dict() == {"p_topfreq": 0.3, "production": 0.4}
    figures, tables, notes = {}, {}, []
    monitor_figures(store, figures, tables, notes)
    assert set(figures) == {"drift", "live_results"} and notes == []
    page = render_page(store.root, {}, tables, notes)
    assert "numeric:price" not in page  # tables show under their figure only
    images = {}
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")
        images[name] = tmp_path / f"{name}.png"
    page = render_page(store.root, images, tables, notes)
    assert "Drift: each check of `trendrec drift` per run" in page and "column price: PSI" in page
    assert "Live results: the production version on the weeks after its cut-off" in page


def test_a_store_without_monitor_records_gets_notes(tmp_path):
    figures, tables, notes = {}, {}, []
    monitor_figures(Store(tmp_path), figures, tables, notes)
    assert figures == {} and any("`trendrec drift`" in n for n in notes) and any("`trendrec live`" in n for n in notes)
