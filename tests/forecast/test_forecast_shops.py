"""benchmarks/forecast_shops.py's shops: the synthetic one always, the real ones when ../shared/data has them."""

import sys

import numpy as np
import pytest

from pipeline import schemas as s
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import forecast_shops as shops  # noqa: E402

TARGET = shops.TARGET


def test_synthetic_shop_has_a_trend_break_and_a_segment_born_mid_history():
    daily = shops.synthetic_daily()
    spans = daily.groupby(s.SEGMENT)[s.DATE].agg(["min", "max", "count"])
    assert spans.loc["new", "count"] == 120 and spans.loc["steady", "count"] == 420
    assert spans.loc["new", "min"] > spans.loc["steady", "min"] and spans.loc["new", "max"] == spans.loc["steady", "max"]
    brk = daily[daily[s.SEGMENT] == "break"][TARGET].to_numpy()
    assert brk[293:300].mean() > 1.4 * brk[300:307].mean()  # the 40 % drop at day 300
    assert not daily.duplicated([s.SEGMENT, s.DATE]).any() and np.isfinite(daily[TARGET]).all()


@pytest.mark.skipif(not shops.BAKERY.is_file(), reason=f"bakery data not found at {shops.BAKERY}")
def test_bakery_shop_counts_items_per_day():
    daily = shops.bakery_daily()
    assert set(daily[s.SEGMENT]) == {"all", "coffee", "bread", "tea", "cake", "pastry"}
    per_day = daily.pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
    assert (per_day.drop(columns="all").sum(axis=1) <= per_day["all"]).all()


@pytest.mark.skipif(not shops.LOAD.is_file(), reason=f"load data not found at {shops.LOAD}")
def test_load_shop_sums_the_day_and_its_blocks():
    per_day = shops.load_daily().pivot(index=s.DATE, columns=s.SEGMENT, values=TARGET)
    assert len(per_day) == 365
    np.testing.assert_allclose(per_day.drop(columns="total").sum(axis=1), per_day["total"])
