"""The trendrec_monitor DAG in real `dag.test()` runs on a small synthetic shop: a clean week passes and
writes TensorBoard scalars (read back from the event files); re-keyed items fail the drift task with
the column in its log.

    .venv/bin/python -m pytest tests/dags/test_monitor_dag.py -q
"""

import pandas as pd
import pytest

from pipeline.store import Store
from recsys.monitor.board import step_of
from tests.monitor.conftest import CUT, shop_store, push_release

SCORES = [("c001", "br00", 0.9), ("c002", "ca01", 0.5)]


def _run(dagbag, store):
    run = dagbag.dags["trendrec_monitor"].test(logical_date=pd.Timestamp(CUT, tz="UTC").to_pydatetime(),
                                              run_conf={"config": "", "store": str(store)})
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [(e.step, float(e.tensor_proto.float_val[0] if e.tensor_proto.float_val
                                 else e.tensor_proto.double_val[0])) for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]}


@pytest.mark.slow
def test_a_clean_week_passes_and_its_scalars_are_in_tensorboard(dagbag, tmp_path):
    cfg = shop_store(tmp_path)
    push_release(cfg, CUT, SCORES)
    run, states = _run(dagbag, cfg.store)
    assert run.state == "success" and states == {"drift": "success", "live_results": "success"}, states
    scalars = _scalars(Store(cfg.store).runs / "monitor")
    end = step_of(str(CUT + pd.Timedelta(days=6))[:10])
    assert scalars["drift_failed/numeric:price"] == [(end, 0.0)]
    assert scalars["drift/unknown:item_id"] == [(end, 0.0)]
    assert [step for step, _ in scalars["live/nextbasket/recall@10/production"]] == [step_of(str(CUT))]
    assert {"live/nextbasket/recall@10/p_topfreq", "live/nextbasket/recall@10/tifu_knn"} <= set(scalars)
    again, states = _run(dagbag, cfg.store)  # a re-run rebuilds the run: one point per day, never two
    assert again.state == "success" and _scalars(Store(cfg.store).runs / "monitor") == scalars


@pytest.mark.slow
def test_re_keyed_items_fail_the_drift_task_with_the_column(dagbag, tmp_path, caplog, capfd):
    cfg = shop_store(tmp_path, "rekeyed")
    push_release(cfg, CUT, SCORES)
    run, states = _run(dagbag, cfg.store)
    assert run.state == "failed" and states["drift"] == "failed" and states["live_results"] == "success", states
    logged = caplog.text + "".join(capfd.readouterr())
    assert "drift in unknown:item_id: column item_id: 100% of the window's rows" in logged
    assert (Store(cfg.store).drift / f"{str(CUT + pd.Timedelta(days=6))[:10]}.json").is_file()  # recorded first


# the retrain DAG's stages before the push, marked done: the drift gate and the push are what is tested
BEFORE_PUSH = r"^(aggregate|train_.*|judge|is_pushable|keep_production)$"


def _retrain(dagbag, store, pattern=BEFORE_PUSH, **conf):
    run = dagbag.dags["trendrec_retrain"].test(logical_date=pd.Timestamp(CUT, tz="UTC").to_pydatetime(),
                                              run_conf={"config": "", "store": str(store), **conf},
                                              mark_success_pattern=pattern)
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.mark.slow
def test_a_failed_drift_check_holds_the_retrain_push_back(dagbag, tmp_path, caplog, capfd):
    from recsys import registry

    cfg = shop_store(tmp_path, "rekeyed")
    version = push_release(cfg, CUT, SCORES)
    run, states = _retrain(dagbag, cfg.store)
    assert run.state == "failed" and states["drift_gate"] == "failed", states
    assert states["push"] == "upstream_failed", states  # never ran: nothing promoted
    assert registry.read_production(cfg.store)["version"] == version
    logged = caplog.text + "".join(capfd.readouterr())
    assert "push held back: drift check(s) failed (unknown:item_id): column item_id: 100% of the window's rows" in logged
    # one run's override (push marked done too: this test trained no run for it to version)
    overridden, states = _retrain(dagbag, cfg.store, BEFORE_PUSH.replace("keep_production", "keep_production|push.*"),
                                  ignore_drift=True)
    assert states["drift_gate"] == "success", states
    assert "ignored for this run: drift check(s) failed (unknown:item_id)" in caplog.text + "".join(capfd.readouterr())
