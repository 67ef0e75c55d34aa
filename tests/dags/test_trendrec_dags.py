"""The three production DAGs: structure, parse time, and real `dag.test()` runs on a slice of the demo data.

    .venv/bin/python -m pytest tests/dags -q
"""

import re
import time

import pandas as pd
import pytest

from pipeline import schemas as s
from pipeline.store import Store
from tests.conftest import DEMO_CONFIG, DEMO_EVENTS

DAG_IDS = ("trendrec_ingest", "trendrec_retrain", "trendrec_rerank")
DAY = "2011-12-09"  # the ingest run's logical date: its drop holds May..Dec 9 (a slice)
RUN_DATE = "2011-12-10"  # retrain and rerank


# --- structure ------------------------------------------------------------------------------------
def test_the_three_dags_parse_without_cycles_each_file_under_a_second(dagbag):
    assert set(DAG_IDS) <= set(dagbag.dag_ids), dagbag.import_errors
    for dag_id in DAG_IDS:
        dagbag.dags[dag_id].check_cycle()  # raises on a cycle
    stats = {st.file.rsplit("/", 1)[-1]: st.duration for st in dagbag.dagbag_stats}
    for name in ("trendrec_ingest.py", "trendrec_retrain.py", "trendrec_rerank.py", "trendrec_pipeline.py"):
        seconds = stats[name].total_seconds() if hasattr(stats[name], "total_seconds") else stats[name]
        print(f"parse {name}: {seconds:.3f} s")
        assert seconds < 1.0, (name, seconds)


def test_retries_back_off_and_failures_are_logged(dagbag):
    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert dag.max_active_runs == 1 and dag.dagrun_timeout is not None, dag_id
        assert dag.on_failure_callback, dag_id
        for t in dag.tasks:
            assert t.retry_exponential_backoff >= 2 and t.max_retry_delay is not None, (dag_id, t.task_id)
            assert t.on_failure_callback, (dag_id, t.task_id)


def test_ingest_waits_for_the_drop_in_reschedule_mode(dagbag):
    dag = dagbag.dags["trendrec_ingest"]
    sensor = dag.get_task("wait_for_drop")
    assert sensor.mode == "reschedule" and 0 < sensor.timeout <= 24 * 3600
    assert dag.get_task("ingest").upstream_task_ids == {"wait_for_drop"}
    assert [a.name for a in dag.get_task("ingest").outlets] == ["trendrec_raw_events"]


def test_retrain_branches_on_the_blessing_and_reranks_follow_the_model(dagbag):
    retrain = dagbag.dags["trendrec_retrain"]
    from recsys.flow import RETRAIN

    assert retrain.get_task("is_pushable").downstream_task_ids == {"push_prepare", "keep_production"}
    assert RETRAIN == ("aggregate", "train_forecast", "train_nextbasket", "train_value", "judge")
    # the flow's graph, one training run: the two customer families side by side after train_forecast (which
    # makes the run), judge after both; the value stage in shards: train_value_prepare, train_value_shard
    # (mapped), train_value (the join)
    assert retrain.get_task("aggregate").upstream_task_ids == set()
    assert retrain.get_task("train_forecast").upstream_task_ids == {"aggregate"}
    assert retrain.get_task("train_nextbasket").upstream_task_ids == {"train_forecast"}
    assert retrain.get_task("train_value_prepare").upstream_task_ids == {"train_forecast"}
    assert retrain.get_task("train_value").upstream_task_ids == {"train_value_shard"}
    assert retrain.get_task("judge").upstream_task_ids == {"train_nextbasket", "train_value"}
    values = {"train_value_prepare", "train_value_shard", "train_value"}
    assert not values & (retrain.get_task("train_nextbasket").get_flat_relative_ids(upstream=True)
                         | retrain.get_task("train_nextbasket").get_flat_relative_ids(upstream=False) - {"judge"})
    for name in values:  # neither family waits for the other
        assert "train_nextbasket" not in retrain.get_task(name).get_flat_relative_ids(upstream=True), name
    assert retrain.get_task("train_value_shard").is_mapped and retrain.get_task("push_shard").is_mapped
    assert retrain.get_task("push").upstream_task_ids == {"push_shard"}
    assert retrain.get_task("push_prepare").upstream_task_ids == {"judge", "is_pushable", "drift_gate"}
    assert retrain.get_task("is_pushable").upstream_task_ids == {"judge"}
    assert [a.name for a in retrain.get_task("push").outlets] == ["trendrec_production_model"]
    assert "trendrec_raw_events" in str(retrain.timetable.asset_condition)
    rerank = dagbag.dags["trendrec_rerank"]
    assert type(rerank.timetable).__name__ == "AssetOrTimeSchedule"
    assert "trendrec_production_model" in str(rerank.timetable.asset_condition)


def test_the_flow_declares_what_each_stage_waits_for_and_the_graph_follows_it():
    """recsys.flow.upstream_of: the stage before it unless it names others; every sequential order (STAGES,
    RETRAIN) is one the graph allows; stage_graph wires it (the first upstream is the one read)."""
    from types import SimpleNamespace

    from pipeline.orchestration import stage_graph
    from recsys.flow import RETRAIN, STAGE_NAMES, upstream_of

    assert upstream_of("ingest") == () and upstream_of("aggregate") == ("ingest",)
    assert upstream_of("train_nextbasket") == upstream_of("train_value") == ("train_forecast",)
    assert set(upstream_of("judge")) == {"train_nextbasket", "train_value"} and upstream_of("push") == ("judge",)
    assert upstream_of("drift") == ()  # a MONITOR stage: its own DAG
    for order in (STAGE_NAMES, RETRAIN):
        assert all(set(upstream_of(name)) & set(order) <= set(order[:i]) for i, name in enumerate(order))

    edges = []

    class Task(SimpleNamespace):  # what Airflow's XComArg does with >>: an edge
        def __rshift__(self, other):
            edges.append((self.name, other.name))
            return other

        def expand(self, upstream):
            edges.append((upstream.name, self.name))
            return self

    def task_of(step, part):  # a task factory as the DAG files' _stage_task: called with the upstream it reads
        task = Task(name=step.name if part in (None, "join") else f"{step.name}_{part}")
        if part == "shard":
            return task  # mapped: .expand(upstream=...)

        def call(upstream):
            edges.append((getattr(upstream, "name", upstream), task.name))
            return task

        return call

    steps = [SimpleNamespace(name=n, sharded=(n == "train_value") or None) for n in RETRAIN]
    assert stage_graph(task_of, steps, upstream_of, first_upstream="start").name == "judge"
    assert sorted(edges) == sorted([("start", "aggregate"), ("aggregate", "train_forecast"),
                                    ("train_forecast", "train_nextbasket"), ("train_forecast", "train_value_prepare"),
                                    ("train_value_prepare", "train_value_shard"), ("train_value_shard", "train_value"),
                                    (upstream_of("judge")[0], "judge"), (upstream_of("judge")[1], "judge")])
    with pytest.raises(ValueError, match="judge.*come after it"):
        stage_graph(task_of, [steps[-1], *steps[:-1]], upstream_of)


def test_run_keys_are_deterministic_and_path_safe():
    import datetime

    from pipeline.orchestration import run_day, run_key

    assert run_key(datetime.datetime(2011, 12, 10, tzinfo=datetime.timezone.utc), "x") == "20111210T000000"
    key = run_key(None, "asset_triggered__2026-11-23T05:00:00.123456+00:00")
    assert key == "asset_triggered__2026-11-23T05_00_00.123456_00_00"
    after = datetime.datetime(2026, 11, 23, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-2)))
    assert str(run_day(None, after)) == "2026-11-24"  # the UTC day


def test_day_files_waits_for_the_marker(tmp_path):
    from pipeline.ingest.landing import day_files

    day = tmp_path / "2011-12-09"
    assert day_files(tmp_path, "2011-12-09") == []
    day.mkdir()
    (day / ".a.parquet.tmp").write_bytes(b"half")  # a producer still writing
    assert day_files(tmp_path, "2011-12-09") == []
    (day / "a.csv").write_text("x\n1\n")
    assert day_files(tmp_path, "2011-12-09") == [day / "a.csv"]
    assert day_files(tmp_path, "2011-12-09", marker="_SUCCESS") == []
    (day / "_SUCCESS").touch()
    assert day_files(tmp_path, "2011-12-09", marker="_SUCCESS") == [day / "a.csv"]


# --- real runs ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A landing folder with one drop (every 4th row of May..Dec 9 2011), a tiny model, candidates of Dec 10."""
    root = tmp_path_factory.mktemp("dags")
    events = pd.read_parquet(DEMO_EVENTS)
    when = events["InvoiceDate"]
    drop = root / "landing" / DAY
    drop.mkdir(parents=True)
    events[(when >= "2011-05-01") & (when < "2011-12-10")].iloc[::4].to_parquet(drop / "events.parquet")
    cands = root / "candidates"
    cands.mkdir()
    pd.DataFrame({
        s.USER_ID: ["17850"] * 3 + ["12583"] * 3,
        s.ITEM_ID: ["85123A", "22086", "21212", "22086", "85099B", "21212"],
        s.SEGMENT: ["lights_candles", "christmas", "baking_cake", "christmas", "bags", "baking_cake"],
        s.BASE_SCORE: [0.9, 0.8, 0.7, 0.9, 0.85, 0.5],
    }).to_parquet(cands / f"{RUN_DATE}.parquet")
    text = DEMO_CONFIG.read_text()
    text = re.sub(r'(?m)^source = .*$', 'source = ""', text)
    for key, value in {"epochs": "2", "units": "8", "val_days": "42", "patience": "2", "ensemble": "1",
                       "train_weeks": "3",  # [customers]: a short customer model too
                       "margin": "-1.0"}.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    (root / "trendrec.toml").write_text(text)
    return root


def _run(dagbag, dag_id, day, conf):
    started = time.monotonic()
    run = dagbag.dags[dag_id].test(logical_date=pd.Timestamp(day, tz="UTC").to_pydatetime(), run_conf=conf)
    print(f"dag.test {dag_id} {day}: {time.monotonic() - started:.1f} s, {run.state}")
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def _confs(root):
    base = {"config": str(root / "trendrec.toml"), "store": str(root / "store")}
    return {"trendrec_ingest": base | {"landing": str(root / "landing"), "marker": ""},
            "trendrec_retrain": base | {"horizon": None},
            "trendrec_rerank": base | {"candidates_dir": str(root / "candidates")}}


def _snapshot(root):
    """Every file of the store except TensorBoard logs, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "runs" not in p.parts and p.suffix != ".log"}


@pytest.mark.slow
def test_ingest_retrain_rerank_run_for_real(dagbag, setup):
    confs = _confs(setup)
    run, states = _run(dagbag, "trendrec_ingest", DAY, confs["trendrec_ingest"])
    assert run.state == "success" and set(states.values()) == {"success"}, states
    st = Store(setup / "store")
    assert st.committed_raw_files()

    run, states = _run(dagbag, "trendrec_retrain", RUN_DATE, confs["trendrec_retrain"])
    assert run.state == "success", states
    assert states["push"] == "success" and states["keep_production"] == "skipped", states
    assert (st.training_runs / "20111210T000000" / "forecast" / "verdict.json").is_file()
    assert (st.models / "production.json").is_file()

    run, states = _run(dagbag, "trendrec_rerank", RUN_DATE, confs["trendrec_rerank"])
    assert run.state == "success" and set(states.values()) == {"success"}, states
    reranked = pd.read_parquet(st.reranked / f"{RUN_DATE}.parquet")
    assert len(reranked) == 6 and set(reranked[s.USER_ID]) == {"17850", "12583"}


@pytest.mark.slow
def test_rerunning_the_same_dates_changes_nothing(dagbag, setup):
    before = _snapshot(setup / "store")
    assert any(name.startswith("reranked/") for name in before), "runs after the test above"
    confs = _confs(setup)
    for dag_id, day in (("trendrec_ingest", DAY), ("trendrec_retrain", RUN_DATE), ("trendrec_rerank", RUN_DATE)):
        run, states = _run(dagbag, dag_id, day, confs[dag_id])
        assert run.state == "success", (dag_id, states)
    after = _snapshot(setup / "store")
    assert sorted(after) == sorted(before)
    assert [name for name in before if before[name] != after[name]] == []


@pytest.mark.slow
def test_a_bad_file_fails_the_run_with_its_reason_and_leaves_the_store_intact(dagbag, setup, caplog, capfd):
    before = _snapshot(setup / "store")
    drop = setup / "landing" / "2011-12-11"
    drop.mkdir()
    (drop / "broken.parquet").write_bytes(b"this is not parquet")
    run, states = _run(dagbag, "trendrec_ingest", "2011-12-11", _confs(setup)["trendrec_ingest"])
    assert run.state == "failed" and states["ingest"] == "failed", states
    logged = caplog.text + "".join(capfd.readouterr())
    assert "broken.parquet: cannot be read as parquet" in logged
    assert re.search(r"trendrec failure: dag=trendrec_ingest task=ingest logical_date=2011-12-11", logged)
    assert _snapshot(setup / "store") == before


# --- backfill -------------------------------------------------------------------------------------
def _tables(store):
    """Both aggregate tables and the committed raw events without their lineage (file, line), sorted."""
    from pipeline.aggregate.aggregate import run_aggregate
    from pipeline.config import load_run_config

    run_aggregate(load_run_config("", str(store)))
    st = Store(store)
    raw = pd.concat([pd.read_parquet(f) for f in st.committed_raw_files()]).drop(columns=[s.SOURCE_FILE, s.SOURCE_LINE])
    out = {"raw": raw, "daily": pd.read_parquet(st.daily_path), "month_weekday": pd.read_parquet(st.month_weekday_path)}
    return {k: v.sort_values(list(v.columns), kind="mergesort").reset_index(drop=True) for k, v in out.items()}


@pytest.mark.slow
def test_a_daily_backfill_over_a_month_leaves_the_store_of_one_run_over_the_month(dagbag, setup):
    """30 consecutive daily runs (what `airflow backfill create` schedules) == one drop of the month."""
    events = pd.read_parquet(DEMO_EVENTS)
    month = events[(events["InvoiceDate"] >= "2011-11-01") & (events["InvoiceDate"] < "2011-12-01")].iloc[::4]
    daily_landing, month_landing = setup / "landing-daily", setup / "landing-month"
    days = pd.date_range("2011-11-01", "2011-11-30", freq="D")
    for day in days:  # one folder per day, marker always: days without trading are empty but complete
        folder = daily_landing / str(day.date())
        folder.mkdir(parents=True)
        part = month[month["InvoiceDate"].dt.normalize() == day]
        if len(part):
            part.to_parquet(folder / "events.parquet")
        (folder / "_SUCCESS").touch()
    (month_landing / "2011-11-30").mkdir(parents=True)
    month.to_parquet(month_landing / "2011-11-30" / "events.parquet")

    conf = _confs(setup)["trendrec_ingest"]
    daily_conf = conf | {"store": str(setup / "store-daily"), "landing": str(daily_landing), "marker": "_SUCCESS"}
    skipped = 0
    for day in days:
        run, states = _run(dagbag, "trendrec_ingest", str(day.date()), daily_conf)
        assert run.state == "success", (day, states)
        skipped += states["ingest"] == "skipped"
    assert 0 < skipped < len(days)  # Saturdays: the shop did not trade
    run, _ = _run(dagbag, "trendrec_ingest", "2011-11-30", conf | {"store": str(setup / "store-month"),
                                                                   "landing": str(month_landing)})
    assert run.state == "success"

    daily, whole = _tables(setup / "store-daily"), _tables(setup / "store-month")
    for name in daily:
        pd.testing.assert_frame_equal(daily[name], whole[name], check_dtype=True)
