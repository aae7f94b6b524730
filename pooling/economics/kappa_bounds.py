"""kappa: a lower bound on CVaR_level(Y_P) / E[Y_P] valid for many pools at
once, from the shocks they share (used by pooling.economics.pool_bounds).

Given the shocks, E[Y_P | shocks] = E[Y_P] M with M a mix of unit-mean gamma
multipliers (national, prefecture, county), and CVaR respects the convex
order, so CVaR(Y_P) >= E[Y_P] CVaR(M). The prefecture and county shocks are
spread evenly over as many units as the pool can hold, which makes M
cx-smallest (`group_kappa`); CVaR(M) is computed in closed form for one
shock and bounded below for several (`shocks_cvar`). Values are kept per
process (`_kappa`), and bands of pool sizes share one (`kappa_bands`).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy import optimize, stats

from pooling.data.instance import Instance
from pooling.economics.group_economics import BoundTimeLimit
from pooling.execution.deadline import Deadline, passed


def shock_cvar(shock_cv: float, level: float) -> float:
    """CVaR_level(Theta), Theta ~ Gamma(mean 1, cv shock_cv); 1 without a shock.
    Closed form: x f_k(x) = f_{k+1}(x) for the mean-1 gamma density f_k of
    shape k, so E[Theta; Theta > q] = P(Gamma(k + 1, 1/k) > q)."""
    if shock_cv == 0:
        return 1.0
    shape = 1.0 / shock_cv ** 2
    q = stats.gamma.ppf(level, shape, scale=1.0 / shape)
    return float(stats.gamma.sf(q, shape + 1.0, scale=1.0 / shape) / (1.0 - level))


KAPPA_SAFETY = 1e-9
"""Subtracted from a computed CVaR ratio against rounding; the discretisation
itself errs low by construction (`shocks_cvar`)."""


def _cell_means(cv: float) -> np.ndarray:
    """A mean-1 gamma of this cv replaced by its conditional means on cells of
    probability (KAPPA_CELLS; finer in the upper tail): each value equally
    likely after repeating by cell mass, so the result is cx-smaller (a
    conditional expectation) and any CVaR of it is a lower bound."""
    k = 1.0 / cv ** 2
    upper = stats.gamma.ppf(KAPPA_CELLS, k, scale=1.0 / k)
    partial = stats.gamma.cdf(upper, k + 1.0, scale=1.0 / k)   # E[X; X < q] = P(Gamma(k + 1) < q)
    partial[-1] = 1.0
    return np.diff(np.concatenate([[0.0], partial])) / np.diff(np.concatenate([[0.0], KAPPA_CELLS]))


KAPPA_CELLS = np.concatenate([np.linspace(0.0, 0.9, 91)[1:], 1.0 - 0.1 * np.logspace(0.0, -6.0, 121)[1:], [1.0]])
"""Cell boundaries (probabilities) of `_cell_means`: 90 equal cells to 0.9,
then 120 cells geometric in 1 - u down to 1e-7 (the CVaR tail), then the rest."""


def shocks_cvar(terms: list[tuple[float, float]], level: float, deadline: Deadline | None = None) -> float:
    """A lower bound on CVaR_level(sum_i w_i Theta_i), Theta_i independent
    mean-1 gammas of cv theta_i (terms (w_i, theta_i)). The term with the
    largest w theta stays continuous (E[(Z - s)+] in closed form:
    P(Gamma(k + 1) > s) - s P(Gamma(k) > s) for mean-1 shape k); the others
    are replaced by their cell means (`_cell_means`, cx-smaller, so the
    result is a lower bound); Rockafellar-Uryasev min_t t + E[(S - t)+] /
    (1 - level) over the discrete atoms. Against closed forms (equal cvs sum
    to one gamma) it is within 2e-5 of the exact value (tests/test_generation.py).
    Past `deadline` it raises BoundTimeLimit (one value can take a second)."""
    constant = math.fsum(w for w, cv in terms if w == 0.0 or cv == 0.0)
    random = sorted(((w, cv) for w, cv in terms if w > 0.0 and cv > 0.0), key=lambda t: t[0] * t[1])
    if not random:
        return constant
    b, theta_b = random.pop()
    if not random:
        return constant + b * shock_cvar(theta_b, level)
    atoms, mass = np.zeros(1), np.ones(1)
    for w, cv in random:
        means = _cell_means(cv)
        cells = np.diff(np.concatenate([[0.0], KAPPA_CELLS]))
        atoms = (atoms[:, None] + w * means[None, :]).ravel()
        mass = (mass[:, None] * cells[None, :]).ravel()
    kb = 1.0 / theta_b ** 2

    def objective(t: float) -> float:
        if passed(deadline):
            raise BoundTimeLimit
        s = (t - atoms) / b
        excess = stats.gamma.sf(s, kb + 1.0, scale=1.0 / kb) - np.maximum(s, 0.0) * stats.gamma.sf(
            s, kb, scale=1.0 / kb)
        excess = np.where(s <= 0.0, 1.0 - s, excess)     # Z > s surely: E[(Z - s)+] = 1 - s
        return t + b * float(mass @ excess) / (1.0 - level)
    total = b + sum(w for w, _ in random)
    best = optimize.minimize_scalar(objective, bounds=(total, 20.0 * total), method="bounded",
                                    options={"xatol": 1e-10})
    return constant + float(best.fun)


def two_shock_cvar(a: float, theta_a: float, b: float, theta_b: float, level: float) -> float:
    """CVaR_level(a X + b Z) for independent mean-1 gammas (a lower bound, `shocks_cvar`)."""
    return shocks_cvar([(a, theta_a), (b, theta_b)], level)


def group_kappa(instance: Instance, members, level: float, largest: int | None = None,
                deadline: Deadline | None = None) -> float:
    """A lower bound on CVaR_level(Y_P) / E[Y_P] valid for every pool of `members`
    with at most `largest` counties (default all of them). Conditional
    expectation lowers CVaR (convex order): given the shocks, E[Y_P | .] =
    E[Y_P] (w_N Theta_N + w_P sum_p a_p Theta_p + w_C sum_c b_c Theta_c), a, b
    the prefectures' and counties' shares of E[Y_P]. For iid Theta, a weighted
    sum is cx-smallest at equal weights over as many units as allowed
    (majorisation), so the ratio is at least the CVaR of w_N Theta_N + w_P
    Gamma(cv_P / sqrt m_P) + w_C Gamma(cv_C / sqrt m_C): m_C = `largest`,
    m_P = the prefectures such a pool can touch."""
    params = instance.parameters
    national, prefecture, county = params.national_shock, params.prefecture_shock, params.county_shock
    largest = len(tuple(members)) if largest is None else largest
    spanned = min(largest, len({instance.county(c).prefecture for c in members}))
    return _kappa((national.weight, national.cv), (prefecture.weight, prefecture.cv),
                  (county.weight, county.cv), spanned, largest, level, deadline)


_KAPPAS: dict[tuple, float] = {}
"""`_kappa`'s values, computed once per process (a few distinct arguments)."""


def _kappa(national, prefecture, county, prefectures: int, counties: int, level: float,
           deadline: Deadline | None = None) -> float:
    key = (national, prefecture, county, prefectures, counties, level)
    if key not in _KAPPAS:
        terms = [national, (prefecture[0], prefecture[1] / math.sqrt(prefectures)),
                 (county[0], county[1] / math.sqrt(counties))]
        _KAPPAS[key] = shocks_cvar(terms, level, deadline) - KAPPA_SAFETY
    return _KAPPAS[key]


class KappaOf(Protocol):
    """kappa for a pool of `counties` counties in `prefectures` prefectures."""

    def __call__(self, counties: int, prefectures: int) -> float: ...


def kappa_of(instance: Instance, level: float, deadline: Deadline | None = None) -> KappaOf:
    """The kappa of pools by their number of counties and of prefectures (the
    `group_kappa` law with m_C = counties, m_P = prefectures exactly: a pool's
    prefecture shares lie on a simplex of that many units)."""
    params = instance.parameters
    shocks = ((params.national_shock.weight, params.national_shock.cv),
              (params.prefecture_shock.weight, params.prefecture_shock.cv),
              (params.county_shock.weight, params.county_shock.cv))

    def kappa(counties: int, prefectures: int) -> float:
        return _kappa(*shocks, int(prefectures), int(counties), level, deadline)
    return kappa


KAPPA_BAND_GROWTH = 1.25
KAPPA_EXACT_SIZES = 6
"""Pools of up to 6 counties get the kappa of their own size; larger sizes are
split into bands [k, ceil(1.25 k)] (7-9, 10-13, ...) bounded with the kappa
of the band's largest size (kappa falls with size as the county shocks
diversify, fastest for small pools: on Henan's prefectures kappa is 1.135
for 2 counties, 1.126 for 3, 1.107 for 12)."""


def kappa_bands(instance: Instance, members, level: float, smallest: int, largest: int,
                deadline: Deadline | None = None) -> list[tuple[int, int, float]]:
    """(lowest size, highest size, kappa) bands covering pool sizes smallest..largest."""
    bands, low = [], smallest
    while low <= largest:
        high = low if low <= KAPPA_EXACT_SIZES else min(largest, math.ceil(low * KAPPA_BAND_GROWTH))
        bands.append((low, high, group_kappa(instance, members, level, high, deadline)))
        low = high + 1
    return bands
