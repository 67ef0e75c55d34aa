"""What the ingest tests share: a config on a fresh store, and the rows it stored or quarantined.

Plain helpers, imported as ``from tests.ingest.conftest import ingest_config`` (conftest modules are the
one place tests share code; tests/test_test_layout.py checks that).

    .venv/bin/python -m pytest tests/ingest -q
"""

import dataclasses

import pandas as pd
import pyarrow.parquet as pq

from pipeline import schemas as s
from pipeline.config import Config, IngestConfig, load_config
from pipeline.store import Store

USER_COLUMNS = {"event_time": "ts", "item_id": "item", "quantity": "qty", "price": "price", "user_id": "cust"}
HEADER = "ts,item,qty,price,cust"  # the columns of USER_COLUMNS, for write_csv


def ingest_config(tmp_path, columns: dict[str, str], **ingest) -> Config:
    """Defaults plus ``ingest``, on ``tmp_path/store``; small test logs are bad on purpose, so no file
    fails for its share of refused rows unless the test sets max_reject_share."""
    ingest.setdefault("max_reject_share", 1.0)
    return dataclasses.replace(load_config(None), store=str(tmp_path / "store"),
                               ingest=IngestConfig(columns=columns, **ingest))


def stored(cfg: Config) -> pd.DataFrame:
    files = Store(cfg.store).committed_raw_files()
    return pd.concat([pq.read_table(f).to_pandas() for f in files]).sort_values([s.SOURCE_FILE, s.SOURCE_LINE])


def quarantined(cfg: Config) -> pd.DataFrame:
    files = sorted(Store(cfg.store).quarantine.glob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files]).sort_values([s.SOURCE_FILE, s.SOURCE_LINE])


def write_csv(tmp_path, rows: list[str], name: str = "e.csv"):
    """A CSV with HEADER and ``rows`` (one line each unless a row holds a newline)."""
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path
