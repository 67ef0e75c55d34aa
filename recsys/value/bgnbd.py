"""BG/NBD + Gamma-Gamma: the CRM analyst's standard for how often a customer returns and how much they spend.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a customer
buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they drop out with probability
p ~ Beta(a, b). From a customer's repeat purchases ``x`` (purchase days after the first: one
transaction per day), the time of the last one ``t_x`` and their age ``T`` (both in weeks since
the first purchase) it gives the probability the customer is still alive and the expected number
of purchases in the next ``t`` weeks. Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of
monetary value") shrinks each repeat customer's mean order value ``m_x`` toward the population's.

Both are fitted here by maximum likelihood with scipy (L-BFGS-B on log parameters, so they stay
positive without bounds; the analytic log-likelihoods use gammaln / betaln and log-sum-exp, which
keeps them finite where ``lifetimes`` 0.11.3 stops on precision loss). Time is in weeks, which
keeps α near 1-100 and the problem well conditioned.

    python -c "from recsys.value.bgnbd import *; import numpy as np; \
x, tx, T = simulate_bgnbd(np.random.default_rng(0), 5000, 0.25, 4.0, 0.8, 2.5, 52); print(fit_bgnbd(x, tx, T))"
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from recsys.value.data import ValueModelError

log = logging.getLogger(__name__)


class ValueFitError(ValueModelError):
    """A customer value model could not be fitted (too few customers, or the optimiser failed)."""


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float
    loglik: float = float("nan")  # mean log-likelihood per customer at the optimum

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    loglik: float = float("nan")

    def to_json(self) -> dict[str, float]:
        return asdict(self)


def bgnbd_loglik(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD at (r, α, a, b) (FHL 2005, eq. 6), in log space."""
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    xb = np.where(repeat, b + x - 1, 1.0)  # b + x - 1 only matters (and is > 0) where x > 0
    a4 = np.where(repeat, np.log(a) - np.log(xb) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, penalizer: float = 0.0) -> BGNBD:
    """Maximum-likelihood BG/NBD; ``penalizer`` adds L2 on the log parameters (0 = plain ML)."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if len(x) < 2 or not np.any(x > 0):
        raise ValueFitError(f"BG/NBD needs repeat purchases: {len(x)} customers, {int(np.sum(x > 0))} with a repeat")
    scale = max(float(np.mean(T)), 1e-3)

    def loss(theta: np.ndarray) -> float:
        value = -np.mean(bgnbd_loglik(np.exp(theta), x, t_x, T)) + penalizer * float(theta @ theta)
        return value if np.isfinite(value) else 1e12

    start = np.log([1.0, scale, 1.0, 1.0])
    res = _minimise(loss, start, "BG/NBD")
    r, alpha, a, b = np.exp(res.x)
    return BGNBD(float(r), float(alpha), float(a), float(b), float(-res.fun))


def p_alive(m: BGNBD, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still a customer | x, t_x, T); 1 for customers without a repeat purchase (FHL 2005, eq. 11)."""
    x = np.asarray(x, dtype=np.float64)
    xb = np.where(x > 0, m.b + x - 1, 1.0)
    log_ratio = np.log(m.a) - np.log(xb) + (m.r + x) * (np.log(m.alpha + T) - np.log(m.alpha + t_x))
    return np.where(x > 0, special.expit(-log_ratio), 1.0)


def expected_purchases(m: BGNBD, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in the next ``t`` weeks | x, t_x, T] (FHL 2005, eq. 10)."""
    x = np.asarray(x, dtype=np.float64)
    a, b, r, alpha = m.a, m.b, m.r, m.alpha
    c = a + b + x - 1
    z = t / (alpha + T + t)
    hyp = special.hyp2f1(r + x, b + x, c, z)
    first = (a + b + x - 1) / (a - 1) * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp)
    out = first * p_alive(m, x, t_x, T)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=0.0), 0.0, None)


def gamma_gamma_loglik(params: np.ndarray, x: np.ndarray, m_x: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the Gamma-Gamma spend model (Fader & Hardie 2013, eq. 5)."""
    p, q, g = params
    px = p * x
    return (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
            + (px - 1) * np.log(m_x) + px * np.log(x) - (px + q) * np.log(g + x * m_x))


def fit_gamma_gamma(x: np.ndarray, m_x: np.ndarray, penalizer: float = 0.0) -> GammaGamma:
    """Fit on repeat customers (x > 0) with a positive mean repeat order value ``m_x``."""
    x, m_x = np.asarray(x, dtype=np.float64), np.asarray(m_x, dtype=np.float64)
    keep = (x > 0) & (m_x > 0)
    if keep.sum() < 2:
        raise ValueFitError(f"Gamma-Gamma needs repeat customers with a positive order value: {int(keep.sum())}")
    x, m_x = x[keep], m_x[keep]
    scale = float(np.median(m_x))

    def loss(theta: np.ndarray) -> float:
        p, q, g = np.exp(theta)
        value = -np.mean(gamma_gamma_loglik((p, q, g * scale), x, m_x / 1.0)) + penalizer * float(theta @ theta)
        return value if np.isfinite(value) else 1e12

    res = _minimise(loss, np.log([2.0, 3.0, 1.0]), "Gamma-Gamma")
    p, q, g = np.exp(res.x)
    return GammaGamma(float(p), float(q), float(g * scale), float(-res.fun))


def expected_order_value(m: GammaGamma, x: np.ndarray, m_x: np.ndarray) -> np.ndarray:
    """E[value of one order | x, m_x]: shrunk toward the population mean p·γ/(q-1) (x = 0: that mean)."""
    x = np.asarray(x, dtype=np.float64)
    m_x = np.where(x > 0, np.asarray(m_x, dtype=np.float64), 0.0)
    if m.q <= 1:  # the population mean does not exist: use the customer's own mean, else the median of γ·p/q
        return np.where(x > 0, m_x, m.p * m.gamma / m.q)
    return m.p * (m.gamma + x * m_x) / (m.p * x + m.q - 1)


def simulate_bgnbd(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float,
                   T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) of ``n`` customers drawn from BG/NBD, all first buying at week 0 and observed ``T`` weeks."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1.0 / lam[i])
            if t > T:
                break
            x[i], t_x[i] = x[i] + 1, t
            alive = rng.random() >= p[i]
    return x, t_x, np.full(n, float(T))


def _minimise(loss, start: np.ndarray, what: str) -> optimize.OptimizeResult:
    res = optimize.minimize(loss, start, method="L-BFGS-B", options={"maxiter": 2000})
    if not res.success:  # L-BFGS-B can stop on a flat ridge; Nelder-Mead from there settles it
        res = optimize.minimize(loss, res.x, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6,
                                                                           "fatol": 1e-10})
    if not np.all(np.isfinite(res.x)) or res.fun >= 1e12:
        raise ValueFitError(f"{what} fit did not converge: {res.message}")
    log.info("%s fitted: %s (loss %.5f, %s)", what, np.round(np.exp(res.x), 4), res.fun, res.message)
    return res
