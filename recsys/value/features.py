"""Customer value features at a cut-off: the BG/NBD summary, RFM statics and weekly sequences.

Everything is computed from customer-days strictly before ``cutoff`` (rows on or after it are
dropped first, so truncating the log after the cut-off gives identical features). Customers are
everyone with a row before the cut-off, returns-only customers included (they have no purchase:
x = 0, no order value, ``has_purchase`` = 0).

- BG/NBD summary, time in weeks: ``x`` repeat purchase days, ``t_x`` last purchase day - first,
  ``T`` cut-off - first purchase day; Gamma-Gamma's ``m_x`` = mean net value of the repeat days.
- RFM statics (``STATIC_FEATURES``), fed to the ridge and to the LSTM's dense branch.
- Weekly sequence over ``seq_weeks`` 7-day blocks ending at the cut-off (oldest first): log1p of
  orders, gross purchase value and returned value, plus the block's day of year as sin / cos.

    python -c "from recsys.value.features import STATIC_FEATURES; print(STATIC_FEATURES)"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline import schemas as s
from recsys.value.data import DAY, GROSS, NET, ORDERS

STATIC_FEATURES = ("has_purchase", "log_repeat_days", "recency_weeks", "age_weeks", "since_last_weeks",
                   "log_mean_order_value", "log_net_spend", "return_share", "log_recent_orders",
                   "log_recent_spend", "cutoff_doy_sin", "cutoff_doy_cos")
SEQ_CHANNELS = ("log_orders", "log_gross", "log_returned", "doy_sin", "doy_cos")
RECENT_DAYS = 91  # the "recent" window of the statics: the last 13 weeks


@dataclass(frozen=True)
class Features:
    cutoff: date
    users: np.ndarray  # object array of user ids, sorted
    x: np.ndarray  # repeat purchase days
    t_x: np.ndarray  # weeks from the first to the last purchase day
    T: np.ndarray  # weeks from the first purchase day to the cut-off
    m_x: np.ndarray  # mean net value of the repeat purchase days (0 without repeats)
    static: np.ndarray  # (n, len(STATIC_FEATURES)) float32
    seq: np.ndarray  # (n, seq_weeks, len(SEQ_CHANNELS)) float32

    def __len__(self) -> int:
        return len(self.users)


def build_features(days: pd.DataFrame, cutoff: date, seq_weeks: int) -> Features:
    """Features of every customer with a customer-day before ``cutoff``; see the module doc."""
    age = (np.datetime64(cutoff, "D") - pd.to_datetime(days[DAY]).to_numpy("datetime64[D]")).astype(np.float64)
    days, age = days[age >= 1], age[age >= 1]  # days before the cut-off, >= 1: nothing on or after it
    users = np.sort(days[s.USER_ID].unique()).astype(object)
    code = pd.Index(users).get_indexer(days[s.USER_ID])
    bought = days[ORDERS].to_numpy() > 0
    n = len(users)
    first = _per_customer(code[bought], age[bought], n, "max")  # days before the cut-off; NaN: no purchase
    last = _per_customer(code[bought], age[bought], n, "min")
    n_days = np.bincount(code[bought], minlength=n).astype(np.float64)
    x = np.maximum(n_days - 1, 0)
    has = n_days > 0
    T = np.where(has, first / 7.0, 0.0)
    t_x = np.where(has, (first - last) / 7.0, 0.0)
    net = days[NET].to_numpy(dtype=np.float64)
    gross = days[GROSS].to_numpy(dtype=np.float64)
    repeat = bought & (age < first[code])  # purchase days after the first one
    rep_sum = np.bincount(code[repeat], weights=np.maximum(net[repeat], 0.0), minlength=n)
    m_x = np.where(x > 0, rep_sum / np.maximum(x, 1), 0.0)
    static = _statics(code, age, bought, net, gross, n_days, T, t_x, x, cutoff, n)
    seq = _sequences(code, age, days[ORDERS].to_numpy(dtype=np.float64), gross, gross - net, cutoff, seq_weeks, n)
    return Features(cutoff, users, x, t_x, T, m_x, static, seq)


def _per_customer(code: np.ndarray, values: np.ndarray, n: int, how: str) -> np.ndarray:
    return pd.Series(values).groupby(code).agg(how).reindex(range(n)).to_numpy(dtype=np.float64)


def _statics(code, age, bought, net, gross, n_days, T, t_x, x, cutoff: date, n: int) -> np.ndarray:
    total_net = np.bincount(code, weights=net, minlength=n)
    total_gross = np.bincount(code, weights=gross, minlength=n)
    recent = age <= RECENT_DAYS
    recent_orders = np.bincount(code[recent & bought], minlength=n)
    recent_spend = np.bincount(code[recent], weights=net[recent], minlength=n)
    mean_value = np.where(n_days > 0, np.bincount(code[bought], weights=gross[bought], minlength=n)
                          / np.maximum(n_days, 1), 0.0)
    doy = 2 * np.pi * cutoff.timetuple().tm_yday / 365.25
    cols = [n_days > 0, np.log1p(x), t_x / 52, T / 52, (T - t_x) / 52, np.log1p(mean_value),
            np.log1p(np.maximum(total_net, 0)), np.clip(1 - total_net / np.maximum(total_gross, 1e-9), 0, 1),
            np.log1p(recent_orders), np.log1p(np.maximum(recent_spend, 0)),
            np.full(n, np.sin(doy)), np.full(n, np.cos(doy))]
    return np.column_stack(cols).astype(np.float32)


def _sequences(code, age, orders, gross, returned, cutoff: date, weeks: int, n: int) -> np.ndarray:
    week = ((age - 1) // 7).astype(np.int64)  # 0 = the 7 days just before the cut-off
    keep = week < weeks
    pos = weeks - 1 - week[keep]  # oldest first, as the recurrent layer reads it
    seq = np.zeros((n, weeks, len(SEQ_CHANNELS)), dtype=np.float32)
    for channel, values in enumerate((orders, gross, np.maximum(returned, 0.0))):
        grid = np.zeros((n, weeks))
        np.add.at(grid, (code[keep], pos), values[keep])
        seq[:, :, channel] = np.log1p(np.maximum(grid, 0.0))
    starts = [cutoff - timedelta(days=7 * (weeks - i)) for i in range(weeks)]
    doy = 2 * np.pi * np.array([d.timetuple().tm_yday for d in starts]) / 365.25
    seq[:, :, 3] = np.sin(doy)
    seq[:, :, 4] = np.cos(doy)
    return seq
