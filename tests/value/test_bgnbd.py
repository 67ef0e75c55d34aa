"""BG/NBD + Gamma-Gamma: parameters recovered from simulated customers, convergence on Online Retail."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from pipeline import schemas as s
from recsys.value import bgnbd as bg
from tests.conftest import DEMO_EVENTS


def test_bgnbd_recovers_the_parameters_it_simulated_from():
    x, t_x, T = bg.simulate_bgnbd(np.random.default_rng(0), 5000, r=0.25, alpha=4.0, a=0.8, b=2.5, T=52)
    fit = bg.fit_bgnbd(x, t_x, T)
    assert fit.r == pytest.approx(0.25, rel=0.1) and fit.alpha == pytest.approx(4.0, rel=0.15)
    # a and b are weakly identified one by one; the mean drop-out probability a / (a + b) is not
    assert fit.a / (fit.a + fit.b) == pytest.approx(0.8 / 3.3, abs=0.05)
    truth = np.mean(bg.bgnbd_loglik(np.array([0.25, 4.0, 0.8, 2.5]), x, t_x, T))
    assert fit.loglik >= truth  # the optimum is at least as likely as the truth


def test_gamma_gamma_recovers_the_mean_order_value():
    rng = np.random.default_rng(1)
    p, q, gamma, n = 6.0, 4.0, 15.0, 3000
    nu = rng.gamma(q, 1 / gamma, n)
    x = rng.integers(1, 10, n).astype(float)
    m_x = np.array([rng.gamma(p, 1 / nu[i], int(x[i])).mean() for i in range(n)])
    fit = bg.fit_gamma_gamma(x, m_x)
    assert fit.p * fit.gamma / (fit.q - 1) == pytest.approx(p * gamma / (q - 1), rel=0.1)  # population mean
    value = bg.expected_order_value(fit, np.array([0.0, 8.0]), np.array([0.0, 50.0]))
    assert value[0] == pytest.approx(fit.p * fit.gamma / (fit.q - 1))  # no repeat: the population mean
    assert value[0] < value[1] < 50.0  # shrunk from the customer's own 50 toward that mean


def test_predictions_are_sane_for_the_edge_summaries():
    m = bg.BGNBD(r=0.7, alpha=9.0, a=0.5, b=3.0)
    x, t_x, T = np.array([0.0, 0.0, 5.0, 5.0]), np.array([0.0, 0.0, 30.0, 2.0]), np.array([10.0, 0.1, 31.0, 31.0])
    alive = bg.p_alive(m, x, t_x, T)
    orders = bg.expected_purchases(m, 13.0, x, t_x, T)
    assert alive[0] == alive[1] == 1.0 and alive[2] > alive[3]  # a recent buyer is likelier alive
    assert np.all(np.isfinite(orders)) and np.all(orders >= 0) and orders[2] > orders[3]


def test_bgnbd_converges_on_online_retail():
    """Where lifetimes 0.11.3 stops on precision loss: calibration up to 2011-09-09 of the bundled data."""
    from recsys.value.data import customer_days, open_value_events
    from recsys.value.features import build_features

    ev = pd.read_parquet(DEMO_EVENTS, columns=["CustomerID", "InvoiceNo", "Quantity", "UnitPrice", "InvoiceDate"])
    frame = pd.DataFrame({s.USER_ID: ev["CustomerID"].astype("Int64").astype(str).where(ev["CustomerID"].notna()),
                          s.ORDER_ID: ev["InvoiceNo"], s.QUANTITY: ev["Quantity"].astype(float),
                          s.PRICE: ev["UnitPrice"], s.EVENT_DATE: ev["InvoiceDate"].dt.date})
    cutoff = date(2011, 9, 10)
    feats = build_features(customer_days(open_value_events(frame), cutoff), cutoff, seq_weeks=4)
    fit = bg.fit_bgnbd(feats.x, feats.t_x, feats.T)
    gg = bg.fit_gamma_gamma(feats.x, feats.m_x)
    assert all(np.isfinite([fit.r, fit.alpha, fit.a, fit.b, fit.loglik, gg.p, gg.q, gg.gamma]))
    orders = bg.expected_purchases(fit, 13.0, feats.x, feats.t_x, feats.T)
    assert 0.5 < orders.mean() < 5.0  # a quarter of a wholesaler's customers: a few orders each
