"""Test-wide setup and the fixtures every stage's tests share.

The environment comes first: a private Airflow home and quiet TensorFlow, set before anything
imports them. Then the shared data and stores:

- ``make_tiny_daily`` / ``tiny_daily``: a tiny daily table with three segments and a weekly pattern;
  ``b`` starts 20 days late and ``c`` is 100 times bigger than ``a``, so zero-padding and
  per-segment scaling are exercised. ``write_daily`` puts one into a store.
- ``small_config`` (default config, own store, ``SMALL_MODEL``) and ``tiny_store`` (the same with
  ``tiny_daily`` written).
- ``trained_daily`` / ``trained_forecaster``: one fit of 2 epochs for the whole run; do not modify
  the model or its frame.
- ``push_version``: a registry version holding a given trend table, made through
  ``recsys.registry.push`` (so metadata.json, digests and production.json are the registry's own).
- ``small_store``: every stage of ``recsys.flow`` run once per session on a 10 % sample of the demo
  data; the report tests and the notebooks test read it.
- ``hparams_of_run``: the HParams a TensorBoard run directory records.
- ``clean_cwd``, ``trendrec_process`` and ``python_process``: the CLI run from an empty working directory outside the
  repository. The repository root holds the demo's ``trendrec.toml``, which the CLI finds from there
  (``pipeline.config.locate_config``); a CLI test that means the built-in defaults runs elsewhere.

Test modules import constants and plain builders (``SMALL_MODEL``, ``make_tiny_daily``, ...) from
this file, never from one another.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "trendrec.toml"
DEMO_EVENTS = ROOT / "data" / "demo" / "online_retail.parquet"

_airflow_home = tempfile.mkdtemp(prefix="trendrec-airflow-")
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PARALLELISM"] = "2"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for var in ("TRENDREC_STORE", "TRENDREC_CONFIG"):  # tests choose their own store and config
    os.environ.pop(var, None)

# Below the environment on purpose: none of these imports Airflow or TensorFlow, but keep it so.
import dataclasses  # noqa: E402
import datetime  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402

from pipeline import schemas as s  # noqa: E402
from pipeline.config import Config, ModelConfig, load_config  # noqa: E402
from pipeline.store import Store, write_json, write_parquet  # noqa: E402
from recsys import registry  # noqa: E402

START = datetime.date(2024, 1, 1)  # a Monday
TINY_DAYS = 150
LAST_DAY = START + datetime.timedelta(days=TINY_DAYS - 1)  # the last day of make_tiny_daily()
SMALL_MODEL = ModelConfig(lookback=14, horizon=7, units=8, layers=1, epochs=2, batch_size=32, patience=2,
                          val_days=21, seed=7, base_seasons=2)


# --- a tiny daily table --------------------------------------------------------------------------
def make_tiny_daily(n_days: int = TINY_DAYS, start: datetime.date = START, seed: int = 0) -> pd.DataFrame:
    """A DAILY_SCHEMA frame: segments a (revenue ~100), b (~10, starts 20 days late), c (~10 000).

    Revenue follows a weekly cycle (weekends busier) plus 5 % noise; dates are python dates as in
    ``read_parquet(daily).to_pandas()``. Deterministic for a given seed.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for segment, level, offset in (("a", 100.0, 0), ("b", 10.0, 20), ("c", 10_000.0, 0)):
        days = pd.date_range(start + datetime.timedelta(days=offset), periods=n_days - offset, freq="D")
        weekday = days.day_of_week.to_numpy()
        revenue = level * (1.0 + 0.6 * (weekday >= 5)) * (1.0 + 0.05 * rng.standard_normal(len(days)))
        parts.append(pd.DataFrame({
            s.SEGMENT: segment, s.DATE: days.date, s.YEAR: days.year, s.MONTH: days.month,
            s.WEEKDAY: weekday, s.EVENTS: np.rint(revenue / 5).astype(np.int64),
            s.QUANTITY: np.rint(revenue / 2), s.REVENUE: revenue,
            s.USERS: np.rint(revenue / 10).astype(np.int64),
            s.ITEMS: np.rint(revenue / 20).astype(np.int64),
        }))
    return pd.concat(parts, ignore_index=True)


def write_daily(store_root, daily: pd.DataFrame) -> Store:
    """Write ``daily`` as the store's aggregates/daily.parquet (DAILY_SCHEMA) and return the Store."""
    store = Store(store_root).ensure()
    write_parquet(pa.Table.from_pandas(daily, schema=s.DAILY_SCHEMA, preserve_index=False), store.daily_path)
    return store


@pytest.fixture
def tiny_daily() -> pd.DataFrame:
    """A fresh ``make_tiny_daily()`` frame (150 days, 3 segments) for each test."""
    return make_tiny_daily()


@pytest.fixture
def small_config(tmp_path) -> Config:
    """Default config with the store at ``tmp_path / "store"`` and SMALL_MODEL (2 epochs, 8 units)."""
    return dataclasses.replace(load_config(None), store=str(tmp_path / "store"), model=SMALL_MODEL)


@pytest.fixture
def tiny_store(small_config, tiny_daily) -> Config:
    """``small_config`` whose store holds ``tiny_daily`` as aggregates/daily.parquet."""
    write_daily(small_config.store, tiny_daily)
    return small_config


# --- one trained forecaster for the session ------------------------------------------------------
@pytest.fixture(scope="session")
def trained_daily() -> pd.DataFrame:
    """The frame ``trained_forecaster`` was fitted on: ``make_tiny_daily()`` (do not modify)."""
    return make_tiny_daily()


@pytest.fixture(scope="session")
def trained_forecaster(trained_daily):
    """A SegmentForecaster(SMALL_MODEL) fitted for 2 epochs on ``trained_daily``, shared by the session."""
    from recsys.forecast.forecaster import SegmentForecaster

    recommender = SegmentForecaster(SMALL_MODEL)
    recommender.fit(trained_daily)
    return recommender


# --- registry versions through the registry's own API --------------------------------------------
def _push_version(cfg: Config, trends: pd.DataFrame, forecaster=None, scores: pd.DataFrame | None = None,
                  trend_weight: dict | None = None) -> str:
    store = Store(cfg.store).ensure()
    production = registry.read_production(store)
    n = len(registry.versions(store)) + 1

    def assemble(staging: Path) -> dict:
        forecast = staging / "forecast"
        forecast.mkdir(parents=True)
        if forecaster is None:
            (forecast / "model.keras").write_bytes(b"placeholder: this test never loads the model")
            (forecast / "recommender.json").write_text("{}")
            (forecast / "combination.json").write_text("{}")
        else:
            forecaster.save(forecast)
        trends.to_parquet(forecast / registry.TREND_FILE)
        parts = {"forecast": {"ships": "run", "holdout_mase": None, "metrics": {}}}
        if scores is not None:  # push-time customer scores, as recsys.nextbasket.publish writes them
            from recsys.nextbasket.scores import SCORES_SCHEMA

            (staging / "nextbasket").mkdir()
            full = scores.assign(**{c: "" for c in SCORES_SCHEMA.names if c not in scores})
            pq.write_table(pa.Table.from_pandas(full[SCORES_SCHEMA.names], schema=SCORES_SCHEMA,
                                                preserve_index=False), staging / "nextbasket" / registry.SCORES_FILE)
            parts["nextbasket"] = {"ships": "run"}
        fields = {"parts": parts, "segments": [str(segment) for segment in trends[s.SEGMENT]]}
        return fields | ({registry.TREND_WEIGHT_KEY: trend_weight} if trend_weight is not None else {})

    result = registry.push(cfg, f"models/runs/by-test-{n:04d}-{id(trends)}", assemble,
                           against=production["version"] if production else None,
                           reason="test: a hand-made trend table")
    assert result["pushed"], result
    return result["version"]


@pytest.fixture(scope="session")
def push_version():
    """``push_version(cfg, trends, forecaster=None, scores=None, trend_weight=None) -> "vNNNN"``: a new
    production version.

    Made via registry.push. ``scores`` (user_id, item_id, score) become the version's push-time
    next-basket scores (nextbasket/scores.parquet); ``trend_weight`` the segment-trend weight it records as
    chosen on validation (metadata ``registry.TREND_WEIGHT_KEY``, as recsys.release writes it).

    Its forecast/ part holds ``forecaster`` saved, or placeholder model files where the test never loads
    the model (the HTTP service and run_rerank read only the trend and score tables), and ``trends`` as
    trend.parquet.
    The registry writes metadata.json with the digests and moves production.json (the previous
    production goes onto the history); switch production afterwards with registry.promote / rollback.
    """
    return _push_version


# --- one small real store for the session ------------------------------------------------------
@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Config:
    """Every stage of recsys.flow, ingest to rerank, on a 10 % row sample of the demo data; its config.

    Built once per session (it trains a model: 2 epochs, 8 units, one member) and shared by the
    report tests and tests/test_notebooks.py; callers must not change its model.
    """
    from recsys import flow

    root = tmp_path_factory.mktemp("small-store")
    events = pq.read_table(DEMO_EVENTS)
    sample = root / "online_retail_sample.parquet"
    pq.write_table(events.take(np.arange(0, events.num_rows, 10)), sample)
    cfg = load_config(DEMO_CONFIG, store=str(root / "store"))
    cfg = dataclasses.replace(
        cfg, model=dataclasses.replace(cfg.model, units=8, epochs=2, batch_size=256, ensemble=1),
        # A 2-epoch model need not beat the baseline; a negative margin blesses it so push happens.
        evaluate=dataclasses.replace(cfg.evaluate, margin=-1.0),
        # likewise for the customer model: a small, short fit, blessed whatever its validation figure
        customers=dataclasses.replace(cfg.customers, epochs=2, train_weeks=3, units=8, bless_margin=-1.0),
        # and a short customer value model (2 epochs, 2 training windows of the 90-day horizon), its backtest
        # and fits on a sample of 1,000 of the customers (the bound a large shop reaches)
        value=dataclasses.replace(cfg.value, epochs=2, units=8, train_cutoffs=2, seq_weeks=13, fit_customers=1000))
    done = flow.run_all(cfg, source=str(sample), run_key="small")
    assert done["push"]["pushed"] and "output" in done["rerank"], done["push"]
    return cfg


# --- the CLI, away from the repository's trendrec.toml ------------------------------------------
@pytest.fixture
def clean_cwd(tmp_path_factory, monkeypatch) -> Path:
    """An empty working directory outside the repository, made the current one: the CLI finds no
    trendrec.toml there, so a command without --config runs on the built-in defaults."""
    workdir = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(workdir)
    return workdir


def python_process(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` (default: the current directory) with ``env`` (default: this process's),
    this checkout importable."""
    full = dict(os.environ if env is None else env)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or os.getcwd(), env=full)


def trendrec_process(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m recsys.cli ARGS``, as ``python_process`` runs it."""
    return python_process("-m", "recsys.cli", *args, cwd=cwd, env=env)


# --- TensorBoard -------------------------------------------------------------------------------
def _hparams_of_run(run_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    acc.Reload()
    contents = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in contents, contents
    data = plugin_data_pb2.HParamsPluginData.FromString(contents["_hparams_/session_start_info"])
    hparams = data.session_start_info.hparams
    return {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in hparams.items()}


@pytest.fixture(scope="session")
def hparams_of_run():
    """``hparams_of_run(run_dir) -> dict``: the hyper-parameters of the HParams session in ``run_dir``."""
    return _hparams_of_run


# Property tests draw fresh examples locally, but CI replays a fixed sequence (Hypothesis' documented CI
# practice), so a run's verdict does not depend on the draw. Issue 20's unbalanced-quote case is one
# such draw (a lone `"` line merges the next lines into one row); it stays reproducible locally.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
