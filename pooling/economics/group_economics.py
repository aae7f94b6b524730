"""What the pool bounds (pooling.economics.pool_bounds) know of one group of
counties without pricing a pool: each county's budget term and stand-alone
expected cost, the expected cost its migrants add beside a fellow member, and
per-county bounds on what a unit of rate is worth under the objective.

With them any pool's budget B_P and expected cost E[Y_P] are sums over its
members (`GroupEconomics`), and a linear objective's value s_P of a unit of
rate is bounded per county (`ObjectiveWeights`, `effective_ratio`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import bound_multipliers, observed_rate
from pooling.economics.care import county_streams
from pooling.execution.deadline import Deadline

BOUND_PRICING_SLACK = 1e-3
"""The exact prices r*_P carry a relative error of at most ~1e-4 (the claims
engine's stated accuracy, pooling.risk.law_checks.RESOLUTION_TOLERANCE); the
cap U(P) is raised by 1e-3 relative so that it bounds the computed r*_P, not
only the exact one."""


class CountyGroup(Protocol):
    """Counties that may share pools (pooling.optimise.candidates.PoolGroup):
    only the sorted member ids are read here."""

    members: tuple[str, ...]


class GroupEconomics:
    """Per-county figures of one group that give any pool's budget and exact
    expected cost E[Y_P] in O(|P|^2), without pricing it:
    B_P = sum beta_c - F, E[Y_P] = sum e_c + sum_{c != k in P} extra[c, k]."""

    def __init__(self, instance: Instance, spec: Spec, group: CountyGroup, deadline: Deadline | None = None):
        self.deadline = deadline   # past it the bound's kappas and MILPs stop (BoundTimeLimit)
        self.ids = group.members
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        u = spec.solvency.reserve_share
        counties = [instance.county(c) for c in self.ids]
        self.enrollees = np.array([c.enrollees for c in counties], dtype=float)
        self.beta = np.array([c.revenue + u * c.reserves - c.per_capita_costs for c in counties])
        self.fixed = instance.parameters.fund_fixed_cost
        n = len(counties)
        # With induced utilisation, admissions at a lower bound of m_c over the
        # usable rates (<= 1): E_lo(P) stays below E[Y_P] at any fixed point.
        low = bound_multipliers(instance, spec)
        alone = np.array([_expected(instance, c, frozenset([c.id]), low) for c in counties])
        self.extra = np.zeros((n, n))
        for i, c in enumerate(counties):
            for dest, _weight in c.migrant_destinations:
                k = self.index.get(dest)
                if k is not None and k != i:
                    self.extra[i, k] = _expected(instance, c, frozenset([c.id, dest]), low) - alone[i]
        self.alone_mean = alone
        self.response = None if low is None else ResponseBound(
            elasticity=instance.parameters.utilisation_elasticity,
            highest_observed_rate=max(observed_rate(instance, c) for c in counties),
            largest_low_multiplier=max(low[c.id] for c in counties))
        """With induced utilisation, what `ResponseBound.tighten` and `.tangent` need (None without)."""
        prefectures = sorted({c.prefecture for c in counties}, key=str)
        self.prefecture_onehot = np.array([[c.prefecture == p for p in prefectures] for c in counties], dtype=float)

    def positions(self, members) -> np.ndarray:
        return np.array(sorted(self.index[c] for c in members), dtype=int)

    def budget(self, members) -> float:
        return float(self.beta[self.positions(members)].sum()) - self.fixed

    def expected_cost(self, members) -> float:
        pos = self.positions(members)
        return float(self.alone_mean[pos].sum() + self.extra[np.ix_(pos, pos)].sum())


@dataclass(frozen=True)
class ResponseBound:
    """Tighter caps under induced utilisation (issue 25) than costs scaled by
    m_c(rates.min). With m(r) = ((1 - r) / (1 - r0_max))^e, r0_max the group's
    highest observed rate, m(r) <= m_c(r) for every member (e <= 0), so at a
    pool's fixed point E[Y_P(r*)] >= m(r*) E_obs(P). A cap C (on s_P r*) made
    with costs scaled by per-county multipliers at most `largest_low_multiplier`
    gives C_obs <= largest_low_multiplier C for the observed costs, and
    s_P r* <= min(S r*, C_obs / m(r*)), S >= s_P; the first term rises in r*,
    the second falls, so s_P r* <= S rho with rho m(rho) = C_obs / S (the two
    meet there): `tighten`. Exact (no looser than needed) when every member
    shares r0; valid for any."""

    elasticity: float
    highest_observed_rate: float
    largest_low_multiplier: float

    def tighten(self, caps: np.ndarray, top_weight: np.ndarray) -> np.ndarray:
        """Per pool, S rho for C = caps and S = top_weight (a bound on s_P), never above `caps`."""
        target = self.largest_low_multiplier * caps / top_weight
        low, high = np.zeros_like(target), np.ones_like(target)
        for _ in range(RESPONSE_BISECTION_STEPS):   # g(r) = r m(r) rises from 0 to infinity on [0, 1)
            mid = 0.5 * (low + high)
            with np.errstate(divide="ignore", over="ignore"):
                g = mid * ((1.0 - mid) / (1.0 - self.highest_observed_rate)) ** self.elasticity
            above = g >= target
            high = np.where(above, mid, high)
            low = np.where(above, low, mid)
        tightened = top_weight * high     # high: g(high) >= target, so rho <= high
        return np.where(np.isfinite(caps) & (caps > 0.0), np.minimum(caps, tightened), caps)

    def tangent(self, cap: float, top_weight: float) -> tuple[float, float] | None:
        """(a, b) with T(C) <= a C + b for every C >= 0, T(C) = min(C, S rho(C))
        the tightened cap of `tighten` (S = top_weight), touching T near C = `cap`;
        None where the tightening does not bind at `cap` (T(cap) = cap: the
        line a = 1, b = 0 is already the best there).

        With h(C) = S g^-1(L C / S), g(r) = r m(r) convex and increasing from
        g(0) = 0 (e <= 0), h is concave, so it lies below its tangent at any
        point, and T <= h. The point is taken on h's graph by its rate rho0
        (the bisection's upper end for `cap`): C0 = S g(rho0) / L, h(C0) = S
        rho0, slope a = L / g'(rho0), g'(r) = m(r) (1 - e r / (1 - r)), and
        b = S rho0 - a C0 = -e S rho0^2 / (1 - (1 + e) rho0), closed forms
        exact up to rounding (1e-16 relative, inside BOUND_PRICING_SLACK)."""
        if not (math.isfinite(cap) and cap > 0.0 and top_weight > 0.0):
            return None
        tightened = float(self.tighten(np.array([cap]), np.array([top_weight]))[0])
        e, rho0 = self.elasticity, tightened / top_weight
        if not (tightened < cap and rho0 < 1.0):   # at rho0 = 1 (a cap past any rate) m is infinite
            return None
        m0 = ((1.0 - rho0) / (1.0 - self.highest_observed_rate)) ** e
        slope = self.largest_low_multiplier / (m0 * (1.0 - e * rho0 / (1.0 - rho0)))
        intercept = -e * top_weight * rho0 * rho0 / (1.0 - (1.0 + e) * rho0)
        return slope, intercept


RESPONSE_BISECTION_STEPS = 60
"""Bisection steps on [0, 1] for rho: 2^-60 < 1e-18, below a double's
resolution of a rate; the upper end is kept, so the cap stays valid."""


def _expected(instance: Instance, county, members: frozenset[str], scale=None) -> float:
    return math.fsum(s.mean for s in county_streams(instance, county, members, multipliers=scale))


@dataclass(frozen=True)
class ObjectiveWeights:
    """Per-county bounds on a linear objective's value s_P of one unit of a
    pool's rate per enrollee, valid over the pools a program ranges over:
    s_P r*_P <= (1 + slack) B_P sum_c N_c budget_c / (kappa E_lo(P) N_P) and
    s_P top <= top sum_c N_c at_top_c / N_P (c over the members). For the
    nominal mean rate both are 1 (s_P = 1)."""

    budget: np.ndarray
    at_top: np.ndarray
    effective_box: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """For the mean effective rate: (T_c, lowest e_c,P, highest e_c,P). Then
    s_P / E[Y_P] = sum N_c e_c,P / (N_P sum T_c e_c,P) <= R_P / N_P, R_P the
    largest such ratio with each e_c,P in its range (`effective_ratio`): the
    network's effect on the rate and on s_P cancel, which `budget` ignores."""

    @classmethod
    def nominal(cls, n: int) -> ObjectiveWeights:
        return cls(np.ones(n), np.ones(n))


def effective_ratio(members: np.ndarray, enrollees: np.ndarray, box: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> np.ndarray:
    """Per row of the 0-1 matrix `members` (pools x counties): max of sum N_c e_c
    / sum T_c e_c over e_c in [low_c, high_c]. A ratio of sums is largest with
    e_c at its top for the counties whose N_c / T_c exceeds the optimum and at
    its bottom for the others, so the maximum is over the prefixes of the
    members sorted by N_c / T_c, descending (computed for all rows at once)."""
    total, low, high = box
    order = np.argsort(-(enrollees / total), kind="stable")
    x = members[:, order]
    n_sorted, t_sorted = enrollees[order], total[order]
    low_n, high_n = x * (n_sorted * low[order]), x * (n_sorted * high[order])
    low_t, high_t = x * (t_sorted * low[order]), x * (t_sorted * high[order])
    zero = np.zeros((x.shape[0], 1))
    top_n = np.hstack([zero, np.cumsum(high_n, axis=1)])      # first k at their highest
    top_t = np.hstack([zero, np.cumsum(high_t, axis=1)])
    rest_n = low_n.sum(axis=1, keepdims=True) - np.hstack([zero, np.cumsum(low_n, axis=1)])
    rest_t = low_t.sum(axis=1, keepdims=True) - np.hstack([zero, np.cumsum(low_t, axis=1)])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = (top_n + rest_n) / (top_t + rest_t)
    return np.nanmax(np.where(top_t + rest_t > 0.0, ratios, np.nan), axis=1)


class BoundTimeLimit(Exception):
    """The deadline struck inside a bound's computation (a kappa or a MILP): no
    valid bound was proven."""
