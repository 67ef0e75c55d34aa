"""The aggregates of the demo Online Retail data equal an independent pandas computation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import schemas as s
from pipeline.aggregate.aggregate import run_aggregate
from pipeline.config import load_config
from pipeline.ingest.ingest import run_ingest
from pipeline.store import Store, read_parquet

ROOT = Path(__file__).resolve().parents[2]


def _pandas_daily(raw: pd.DataFrame) -> pd.DataFrame:
    """The daily table by plain pandas: group, then reindex every segment over its own date range."""
    raw = raw.assign(revenue=raw[s.QUANTITY] * raw[s.PRICE])
    g = raw.groupby([s.SEGMENT, s.EVENT_DATE])
    daily = pd.DataFrame({s.EVENTS: g.size(), s.QUANTITY: g[s.QUANTITY].sum(), s.REVENUE: g["revenue"].sum(),
                          s.USERS: g[s.USER_ID].nunique(), s.ITEMS: g[s.ITEM_ID].nunique()})
    parts = []
    for seg, part in daily.groupby(level=0):
        days = pd.date_range(part.index.get_level_values(1).min(), part.index.get_level_values(1).max()).date
        parts.append(part.droplevel(0).reindex(days, fill_value=0).rename_axis(s.DATE).reset_index()
                     .assign(**{s.SEGMENT: seg}))
    out = pd.concat(parts, ignore_index=True)
    when = pd.to_datetime(out[s.DATE])
    out[s.YEAR], out[s.MONTH], out[s.WEEKDAY] = when.dt.year, when.dt.month, when.dt.dayofweek
    return out[s.DAILY_SCHEMA.names].sort_values([s.SEGMENT, s.DATE], ignore_index=True)


@pytest.mark.slow
def test_demo_aggregates_equal_pandas(tmp_path):
    cfg = load_config(ROOT / "trendrec.toml", store=str(tmp_path / "store"))
    run_ingest(cfg, ROOT / "data" / "demo" / "online_retail.parquet")
    run_aggregate(cfg)
    store = Store(cfg.store)
    raw = pq.read_table([str(f) for f in store.committed_raw_files()], partitioning=None).to_pandas()
    daily = read_parquet(store.daily_path).to_pandas().sort_values([s.SEGMENT, s.DATE], ignore_index=True)
    expected = _pandas_daily(raw)
    pd.testing.assert_frame_equal(daily, expected, check_dtype=False, rtol=1e-9)

    profile = read_parquet(store.month_weekday_path).to_pandas().set_index([s.SEGMENT, s.MONTH, s.WEEKDAY])
    by_cell = expected.groupby([s.SEGMENT, s.MONTH, s.WEEKDAY])
    assert np.allclose(profile.loc[by_cell.size().index, s.DAYS], by_cell.size())
    assert np.allclose(profile.loc[by_cell.size().index, s.PER_DAY[s.REVENUE]], by_cell[s.REVENUE].mean())
    every = pd.date_range(expected[s.DATE].min(), expected[s.DATE].max())
    users = raw.groupby(s.EVENT_DATE)[s.USER_ID].nunique().reindex(every.date, fill_value=0)
    cells = pd.DataFrame({"u": users.to_numpy(), s.MONTH: every.month, s.WEEKDAY: every.dayofweek})
    mean_users = cells.groupby([s.MONTH, s.WEEKDAY])["u"].mean()
    got = profile.loc[s.ALL_SEGMENTS, s.PER_DAY[s.USERS]].loc[mean_users.index]
    assert np.allclose(got, mean_users)
