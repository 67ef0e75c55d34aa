"""The notebooks are committed clean and run top to bottom against a small store (nbclient).

The store is the session's ``small_store`` fixture of tests/conftest.py (every stage on a 10 % row
sample of Online Retail, 2 epochs, 8 units, shared with the report tests) plus a 2-cut-off
`backtest` and an `evaluate-rerank`, and is handed to the kernel through $TRENDREC_STORE. The kernel
is the `python3` kernelspec, which jupyter_client starts with this interpreter (sys.executable),
i.e. the project's .venv.
"""

from __future__ import annotations

import time

import nbformat
import pytest

from tests.conftest import DEMO_CONFIG, ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; a whole notebook takes well under a minute on the small store


@pytest.fixture(scope="module")
def notebook_store(small_store):
    from recsys.forecast.backtest import run_backtest
    from recsys.offline.evaluate_rerank import run_evaluate_rerank

    run_evaluate_rerank(small_store, weeks=2, methods=["g_topfreq", "p_topfreq", "base"])  # the ranking table
    run_backtest(small_store, cutoffs=2, step=7, run_id="notebook")  # the backtest table and bars
    return small_store


def test_both_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_trends.ipynb", "02_model_and_rerank.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear the outputs"
        assert not set(cell.metadata) - {"tags"}, f"{path.name}: cell metadata {cell.metadata}"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, nb.metadata
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, notebook_store, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("TRENDREC_STORE", notebook_store.store)
    monkeypatch.setenv("TRENDREC_CONFIG", str(DEMO_CONFIG))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    print(f"{path.name} ran in {time.monotonic() - started:.1f} s")  # shown with pytest -s
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    assert len(images) >= (4 if path.stem.startswith("01") else 6), f"{path.name}: {len(images)} figures"
    if path.stem.startswith("02"):
        text = "".join(str(o.get("data", {}).get("text/html", "")) + str(o.get("text", "")) for o in outputs)
        assert "auto_ets" in text and "no backtest yet" not in text  # the backtest table was shown
