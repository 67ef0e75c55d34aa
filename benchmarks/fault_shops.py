"""The stores the fault and kill harnesses (cli_faults.py, release_kill.py) work on, each with its config file.

- ``build_quick``: a synthetic log (60 days, one segment) ingested and aggregated, two placeholder
  releases pushed (production v0002, history v0001), a second log ingested and not aggregated; no
  training, so it takes seconds.
- ``build_tiny``: the whole flow on a 10 % row sample of the demo data with tiny models (8 units, 2
  epochs, blessing margins below 0 so every part ships): run ``first`` pushed (v0001), run ``second``
  pushed (v0002, production), run ``third`` trained and judged, not pushed; then more demo rows ingested
  and not aggregated. A few minutes on 2 cores.

Both return (store, config file, a log of new rows for ``trendrec ingest``). The store's files name
absolute paths, so a harness builds it where it will use it.

    PYTHONPATH=. python benchmarks/fault_shops.py    # prints the tiny shop's config (fails if the demo's changed)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from stage_kill import CONFIG, write_log

ROOT = Path(__file__).resolve().parents[1]
QUICK_CONFIG = CONFIG.replace("[ingest]\n", '[ingest]\nsegment_from = "item"\nsegment_rules = [["odd", "[13579]$"]]\n'
                               'segment_default = "even"\n') + '[rerank]\ncandidates = "{lists}"\n'  # stage_kill's, 2 segments
TINY = {  # the demo config's lines -> a tiny shop's (each must be there; every copy is replaced)
    'store = "./trendrec-data"': 'store = "{store}"',
    'source = "data/demo/online_retail.parquet"': 'source = "{source}"',
    'candidates = "data/demo/candidates.parquet"': 'candidates = "{lists}"',
    "\nunits = 64\n": "\nunits = 8\n", "\nepochs = 40": "\nepochs = 2", "ensemble = 3 ": "ensemble = 1 ",
    'members = ["lstm", "auto_ets", "auto_theta", "mstl", "year_ago", "seasonal_naive"]': 'members = ["lstm", "seasonal_naive"]',
    "\nmargin = 0.0": "\nmargin = -1.0", "bless_margin = 0.0 ": "bless_margin = -1.0 ",
    "train_weeks = 8 ": "train_weeks = 3 ", "epochs = 8 ": "epochs = 2 ", "train_cutoffs = 6 ": "train_cutoffs = 2 ",
    "seq_weeks = 52 ": "seq_weeks = 13 ", "histogram_freq = 1 ": "histogram_freq = 0 ", "image_freq = 10 ": "image_freq = 0 ",
}


def placeholder_assembler(segments: list[str], model_bytes: int = 64 * 1024):
    """A registry assembler that fills a forecast part with fixed trends and ``model_bytes`` of random
    model bytes (no model trained)."""
    from pipeline import schemas as s
    from pipeline.store import write_json, write_parquet
    from recsys import registry

    trends = pd.DataFrame({s.SEGMENT: segments, s.TREND: np.linspace(0.5, -0.5, len(segments))})

    def assemble(staging: Path) -> dict:
        forecast = staging / "forecast"
        forecast.mkdir()
        write_parquet(pa.Table.from_pandas(trends, preserve_index=False), forecast / registry.TREND_FILE)
        write_json({"members": ["lstm"]}, forecast / "combination.json")
        (forecast / "model.keras").write_bytes(os.urandom(model_bytes))
        (forecast / "recommender.json").write_text("{}")
        return {"parts": {"forecast": {"ships": "candidate", "holdout_mase": 0.5}}, "segments": segments}

    return assemble


def build_quick(work: Path, store: Path) -> tuple[Path, Path, Path]:
    from pipeline.aggregate.aggregate import run_aggregate
    from pipeline.config import load_config
    from pipeline.ingest.ingest import run_ingest
    from recsys import registry

    lists = work / "lists.parquet"
    pq.write_table(pa.table({"user_id": [f"C{i % 80}" for i in range(400)], "item_id": [f"I{i % 60}" for i in range(400)],
                             "base_score": [float(i % 17) for i in range(400)]}), lists)
    config = work / "quick.toml"
    config.write_text(QUICK_CONFIG.format(store=store, lists=lists))
    cfg = load_config(config)
    run_ingest(cfg, _log(work / "first.csv", 60, 0))
    run_aggregate(cfg)
    for run in ("one", "two"):
        registry.push(cfg, f"models/runs/{run}", placeholder_assembler(["even", "odd"]),
                      against=(registry.read_production(cfg.store) or {}).get("version"), reason="fault shop")
    run_ingest(cfg, _log(work / "second.csv", 10, 60))  # ingested, not aggregated yet
    return store, config, _log(work / "extra.csv", 10, 70)


def _log(path: Path, days: int, first: int) -> Path:
    """stage_kill.py's synthetic log (40 rows a day from day ``first``, every 50th line refused)."""
    write_log(path, days, first, 40, first + 1)
    return path


def tiny_config(store: Path, source: Path, lists: Path) -> str:
    """The demo config (trendrec.toml) with TINY's lines; ValueError naming a line the demo config lost."""
    text = (ROOT / "trendrec.toml").read_text()
    missing = [old for old in TINY if old not in text]
    if missing:
        raise ValueError(f"trendrec.toml no longer has {missing}: update fault_shops.TINY")
    for old, new in TINY.items():
        text = text.replace(old, new.format(store=store, source=source, lists=lists))
    return text


def build_tiny(work: Path, store: Path) -> tuple[Path, Path, Path]:
    from pipeline.config import load_config
    from pipeline.ingest.ingest import run_ingest
    from recsys import flow

    events = pq.read_table(ROOT / "data" / "demo" / "online_retail.parquet")
    sample, lists = work / "sample.parquet", work / "lists.parquet"
    pq.write_table(events.take(np.arange(0, events.num_rows, 10)), sample)
    pq.write_table(pq.read_table(ROOT / "data" / "demo" / "candidates.parquet").slice(0, 2000), lists)
    config = work / "tiny.toml"
    config.write_text(tiny_config(store, sample, lists))
    cfg = load_config(config)
    flow.run_all(cfg, source=str(sample), run_key="first")
    flow.run_all(cfg, first="train_forecast", last="push", run_key="second")
    flow.run_all(cfg, first="train_forecast", last="judge", run_key="third")
    more, extra = work / "more.parquet", work / "extra.parquet"
    pq.write_table(events.take(np.arange(3, events.num_rows, 97)), more)
    pq.write_table(events.take(np.arange(5, events.num_rows, 89)), extra)
    run_ingest(cfg, more)  # ingested, not aggregated yet
    return store, config, extra


if __name__ == "__main__":
    print(tiny_config(Path("STORE"), Path("SOURCE"), Path("LISTS")), end="")
