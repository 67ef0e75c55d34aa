"""A real `dag.test()` run of trendrec_pipeline on a slice of the demo data (SQLite, no mocks)."""

import json
import re

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from tests.conftest import DEMO_CONFIG, DEMO_EVENTS


@pytest.fixture(scope="module")
def small_setup(tmp_path_factory):
    """Every 4th row of May–Dec 2011, a 2-epoch model, and three hand-written candidate lists."""
    root = tmp_path_factory.mktemp("dagrun")
    events = pd.read_parquet(DEMO_EVENTS)
    events = events[events["InvoiceDate"] >= "2011-05-01"].iloc[::4]
    events.to_parquet(root / "slice.parquet")
    candidates = pd.DataFrame({
        s.USER_ID: ["17850"] * 3 + ["12583"] * 3,
        s.ITEM_ID: ["85123A", "22086", "21212", "22086", "85099B", "21212"],
        s.SEGMENT: ["lights_candles", "christmas", "baking_cake", "christmas", "bags", "baking_cake"],
        s.BASE_SCORE: [0.9, 0.8, 0.7, 0.9, 0.85, 0.5],
    })
    candidates.to_parquet(root / "candidates.parquet")
    text = DEMO_CONFIG.read_text()
    text = re.sub(r'(?m)^source = .*$', f'source = "{root / "slice.parquet"}"', text)
    text = re.sub(r'(?m)^candidates = .*$', f'candidates = "{root / "candidates.parquet"}"', text)
    for key, value in {"epochs": "2", "units": "8", "val_days": "42", "patience": "2", "ensemble": "1",
                       "train_weeks": "3",  # [customers]: a short customer model too
                       # accept a model up to 2x the baseline's MASE: this test is about the wiring
                       "margin": "-1.0"}.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (root / "trendrec.toml").write_text(text)
    return root


@pytest.mark.slow
def test_pipeline_dag_runs_end_to_end(dagbag, small_setup):
    from airflow.utils.state import DagRunState, TaskInstanceState

    dag = dagbag.dags["trendrec_pipeline"]
    store = small_setup / "store"
    run = dag.test(
        logical_date=pd.Timestamp("2011-12-10", tz="UTC").to_pydatetime(),
        run_conf={"config": str(small_setup / "trendrec.toml"), "store": str(store), "source": ""},
    )
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == DagRunState.SUCCESS, states
    assert set(states.values()) == {TaskInstanceState.SUCCESS}, states

    st = Store(store)
    assert st.committed_raw_files() and st.daily_path.exists() and st.month_weekday_path.exists()
    run = st.training_runs / "20111210T000000"  # the run id is the logical date
    assert (run / "forecast" / "model.keras").exists() and (run / "forecast" / "verdict.json").exists()
    production = json.loads((st.models / "production.json").read_text())
    assert (st.models / production["version"] / "metadata.json").exists()
    assert any((st.runs / "20111210T000000").rglob("events.out.tfevents.*"))
    reranked = pd.read_parquet(next(st.reranked.glob("*.parquet")))
    assert len(reranked) == 6 and set(reranked[s.USER_ID]) == {"17850", "12583"}


def _snapshot(root):
    """Every file of the store except logs, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "runs" and p.suffix != ".log"}


@pytest.mark.slow
def test_rerun_of_the_same_logical_date_changes_nothing(dagbag, small_setup):
    from airflow.utils.state import DagRunState

    dag = dagbag.dags["trendrec_pipeline"]
    store = small_setup / "store"
    before = _snapshot(store)
    assert before, "runs after test_pipeline_dag_runs_end_to_end"
    run = dag.test(
        logical_date=pd.Timestamp("2011-12-10", tz="UTC").to_pydatetime(),
        run_conf={"config": str(small_setup / "trendrec.toml"), "store": str(store), "source": ""},
    )
    assert run.state == DagRunState.SUCCESS
    after = _snapshot(store)
    assert sorted(after) == sorted(before)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == [], changed
