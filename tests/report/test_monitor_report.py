"""The report's monitor section (recsys.report.monitor): the drift checks per run and the live results per
week, drawn from a store's records; a store without them gets notes naming the commands."""

from html.parser import HTMLParser
from pathlib import Path

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
    assert "Each check per `trendrec drift` run" in page and "column price: PSI" in page
    assert "Live results: production on the weeks after its cut-off" in page


def test_a_store_without_monitor_records_gets_notes(tmp_path):
    figures, tables, notes = {}, {}, []
    monitor_figures(Store(tmp_path), figures, tables, notes)
    assert figures == {} and any("`trendrec drift`" in n for n in notes) and any("`trendrec live`" in n for n in notes)


class _Sections(HTMLParser):
    """The page's navigation targets and, per section id, the text of its headings and table cells."""

    def __init__(self):
        super().__init__()
        self.links, self.text, self.images, self._section, self._nav = [], {}, {}, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav":
            self._nav = True
        elif tag == "a" and self._nav:
            self.links.append(attrs["href"])
        elif tag == "section":
            self._section = attrs["id"]
            self.text[self._section] = []
        elif tag == "img" and self._section:
            self.images[self._section] = attrs["alt"]

    def handle_endtag(self, tag):
        self._nav = False if tag == "nav" else self._nav
        self._section = None if tag == "section" else self._section

    def handle_data(self, data):
        if self._section and data.strip():
            self.text[self._section].append(data.strip())


def test_the_report_has_a_drift_page_with_each_check_of_the_newest_run(tmp_path):
    cfg = shop_store(tmp_path, "cents")
    run_drift(cfg, reference_end=CUT, as_of=CUT)
    newest = run_drift(cfg, reference_end=CUT)
    figures, tables, notes = {}, {}, []
    monitor_figures(Store(cfg.store), figures, tables, notes)
    images = {}
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")
        images[name] = tmp_path / f"{name}.png"
    page = _Sections()
    page.feed(render_page(Path(cfg.store), {"movers": images["drift"], **images}, tables, notes))
    assert "#drift" in page.links and page.images["drift"] == "drift"
    drift = page.text["drift"]
    assert drift[0].startswith("Drift") and f"{newest['window'][0]} .. {newest['window'][1]}" in drift
    assert "numeric:price" in drift  # the failed check, named in the run's row and in its own
    for check in newest["checks"]:
        row = drift.index(check["check"], drift.index("Every check of the newest run: value, threshold, verdict and "
                                                      "the reason"))
        assert drift[row + 3] == str(check["passed"])  # check, value, threshold, passed, reason
    assert "column price: PSI" in " ".join(drift)
    assert "numeric:price" not in " ".join(page.text["movers"])  # the other sections do not show the checks
