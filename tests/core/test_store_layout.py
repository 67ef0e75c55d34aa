"""The store's areas: each a named path on Store, with its on-disk name fixed and listed in the module's tree.

    .venv/bin/python -m pytest tests/core/test_store_layout.py -q
"""

from pipeline import store as store_module
from pipeline.store import Store

# literal on purpose: a renamed property must not move data that existing stores already hold
LAYOUT = {
    "raw": "raw", "commits": "raw/_commits", "snapshots": ".snapshots", "raw_keys": ".keys/raw",
    "raw_keys_lock": ".keys/raw.lock", "drop_bases": ".keys/drop-bases", "tmp": ".tmp", "ingest_staging": ".staging/ingest",
    "quarantine": "quarantine", "aggregates": "aggregates", "daily_path": "aggregates/daily.parquet",
    "month_weekday_path": "aggregates/month_weekday.parquet", "aggregates_current": "aggregates/_current",
    "aggregate_versions": "aggregates/_versions", "aggregates_spill": "aggregates/_spill",
    "models": "models", "training_runs": "models/runs", "runs": "runs",
    "reranked": "reranked", "report": "report", "tune": "tune", "backtest": "backtest",
    "monitor": "monitor", "ingest_stats": "monitor/ingest-stats", "skew": "monitor/skew", "drift": "monitor/drift",
    "live_results": "monitor/live-results.parquet",
}


def test_every_area_property_keeps_its_on_disk_name(tmp_path):
    store = Store(tmp_path)
    got = {name: getattr(store, name).relative_to(store.root).as_posix() for name in LAYOUT}
    assert got == LAYOUT


def test_every_path_property_of_store_is_in_the_layout_and_documented():
    properties = {name for name, value in vars(Store).items() if isinstance(value, property)}
    assert properties == set(LAYOUT), "add a new area to LAYOUT (and to pipeline/store.py's tree)"
    for name in properties:
        assert getattr(Store, name).__doc__, f"Store.{name} has no docstring"
    tree = store_module.__doc__
    for rel in LAYOUT.values():
        assert rel in tree, f"{rel} is missing from pipeline/store.py's docstring tree"
