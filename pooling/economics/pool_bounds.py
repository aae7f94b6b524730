"""Cheap, valid upper bounds on what any pool of a group can pay, without
pricing it (for column generation, pooling.optimise.generation).

For CVaR: given the shocks a pool shares, E[Y_P | shocks] = E[Y_P] M with M a
mix of unit-mean multipliers, and, CVaR respecting the convex order,
CVaR_a(Y_P) >= E[Y_P] CVaR_a(M). Hence r*_P <= U(P) = min(r_max, B_P / (kappa
E[Y_P])), kappa = `group_kappa` (the national shock, and the prefecture one
within a prefecture), with B_P and a lower bound on E[Y_P] linear in the members.
`rate_bound` maximises U(P) - (enrollee-weighted mean of a dual rho over P)
over all subsets: a fractional 0-1 quadratic programme, solved exactly by
Dinkelbach's method (with the r_max cap as a linear constraint) on a MILP
linearised with w_ij = x_i x_j. `GroupProgram.cut` excludes a subset, so a
caller can price the maximiser exactly and ask again (lazy exact pricing).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import numpy as np
from scipy import optimize, sparse, stats

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import county_streams

BOUND_PRICING_SLACK = 1e-3
"""The exact prices r*_P carry a relative error of at most ~1e-4 (the claims
engine's stated accuracy, claims.PRICING_SHIFT_BUDGET); the cap U(P) is
raised by 1e-3 relative so that it bounds the computed r*_P, not only the
exact one."""

class CountyGroup(Protocol):
    """Counties that may share pools (pooling.optimise.candidates.PoolGroup):
    only the sorted member ids are read here."""

    members: tuple[str, ...]


DINKELBACH_ITERATIONS = 25
"""Dinkelbach converges superlinearly (a handful of steps); past this the bound
adds the remaining MILP bound / min denominator (still valid)."""


class GroupEconomics:
    """Per-county figures of one group that give any pool's budget and exact
    expected cost E[Y_P] in O(|P|^2), without pricing it:
    B_P = sum beta_c - F, E[Y_P] = sum e_c + sum_{c != k in P} extra[c, k]."""

    def __init__(self, instance: Instance, spec: Spec, group: CountyGroup, deadline: float | None = None):
        self.deadline = deadline   # time.time() past which the bound's MILPs stop (BoundTimeLimit)
        self.ids = group.members
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        u = spec.solvency.reserve_share
        counties = [instance.county(c) for c in self.ids]
        self.enrollees = np.array([c.enrollees for c in counties], dtype=float)
        self.beta = np.array([c.revenue + u * c.reserves - c.per_capita_costs for c in counties])
        self.fixed = instance.parameters.fund_fixed_cost
        n = len(counties)
        alone = np.array([_expected(instance, c, frozenset([c.id])) for c in counties])
        self.extra = np.zeros((n, n))
        for i, c in enumerate(counties):
            for dest, _weight in c.migrant_destinations:
                k = self.index.get(dest)
                if k is not None and k != i:
                    self.extra[i, k] = _expected(instance, c, frozenset([c.id, dest])) - alone[i]
        self.alone_mean = alone

    def positions(self, members) -> np.ndarray:
        return np.array(sorted(self.index[c] for c in members), dtype=int)

    def budget(self, members) -> float:
        return float(self.beta[self.positions(members)].sum()) - self.fixed

    def expected_cost(self, members) -> float:
        pos = self.positions(members)
        return float(self.alone_mean[pos].sum() + self.extra[np.ix_(pos, pos)].sum())


def _expected(instance: Instance, county, members: frozenset[str]) -> float:
    return math.fsum(s.mean for s in county_streams(instance, county, members))


def shock_cvar(shock_cv: float, level: float) -> float:
    """CVaR_level(Theta), Theta ~ Gamma(mean 1, cv shock_cv); 1 without a shock.
    Closed form: x f_k(x) = f_{k+1}(x) for the mean-1 gamma density f_k of
    shape k, so E[Theta; Theta > q] = P(Gamma(k + 1, 1/k) > q)."""
    if shock_cv == 0:
        return 1.0
    shape = 1.0 / shock_cv ** 2
    q = stats.gamma.ppf(level, shape, scale=1.0 / shape)
    return float(stats.gamma.sf(q, shape + 1.0, scale=1.0 / shape) / (1.0 - level))


KAPPA_QUADRATURE_NODES = 4096
"""Quantile nodes of Theta_N in `two_shock_cvar` (midpoints of equal-probability cells)."""
KAPPA_SAFETY = 1e-9
"""Subtracted from the computed CVaR ratio against rounding. The quadrature itself
errs low (a midpoint rule in probability on an integrand convex in the upper
quantiles): against the closed form for equal shapes it is 5e-5 low at cv 0.05
and 6e-4 at cv 0.3 (level 0.99), so kappa stays a lower bound (tests/test_generation.py)."""


def two_shock_cvar(a: float, theta_a: float, b: float, theta_b: float, level: float) -> float:
    """CVaR_level(a X + b Z), X, Z independent Gamma(mean 1) with cvs theta_a,
    theta_b: Rockafellar-Uryasev min_t t + E[(aX + bZ - t)+] / (1 - level), the
    expectation over X by quantile quadrature and over Z in closed form
    (E[(Z - s)+] = P(Gamma(k + 1) > s) - s P(Gamma(k) > s) for mean-1 shape k)."""
    if theta_b == 0.0 or b == 0.0:
        return a * shock_cvar(theta_a, level) + b
    if theta_a == 0.0 or a == 0.0:
        return a + b * shock_cvar(theta_b, level)
    ka, kb = 1.0 / theta_a ** 2, 1.0 / theta_b ** 2
    x = stats.gamma.ppf((np.arange(KAPPA_QUADRATURE_NODES) + 0.5) / KAPPA_QUADRATURE_NODES, ka, scale=1.0 / ka)

    def objective(t: float) -> float:
        s = (t - a * x) / b
        excess = stats.gamma.sf(s, kb + 1.0, scale=1.0 / kb) - np.maximum(s, 0.0) * stats.gamma.sf(
            s, kb, scale=1.0 / kb)
        excess = np.where(s <= 0.0, 1.0 - s, excess)     # Z > s surely: E[(Z - s)+] = 1 - s
        return t + b * float(excess.mean()) / (1.0 - level)
    best = optimize.minimize_scalar(objective, bounds=(a + b, a * 20 + b * 20), method="bounded",
                                    options={"xatol": 1e-10})
    return float(best.fun)


def group_kappa(instance: Instance, members, level: float) -> float:
    """A lower bound on CVaR_level(Y_P) / E[Y_P] valid for every pool of `members`:
    conditional expectation lowers CVaR (convex order). Given the national and,
    when every member lies in one prefecture, that prefecture's shock, E[Y_P | .]
    = E[Y_P] (w_N Theta_N + w_P Theta_P + w_C), so the ratio is at least
    CVaR(w_N Theta_N + w_P Theta_P) + w_C (w_P's term is its mean 1 when the
    members span prefectures)."""
    params = instance.parameters
    national, prefecture = params.national_shock, params.prefecture_shock
    one_prefecture = len({instance.county(c).prefecture for c in members}) == 1
    if one_prefecture and prefecture.weight > 0.0 and prefecture.cv > 0.0:
        joint = two_shock_cvar(national.weight, national.cv, prefecture.weight, prefecture.cv, level)
        return joint + (1.0 - national.weight - prefecture.weight) - KAPPA_SAFETY
    return national.weight * shock_cvar(national.cv, level) + (1.0 - national.weight)


def rate_bound(econ: GroupEconomics, rho: np.ndarray, *, kappa: float | None, top: float,
               max_counties: int | None, min_enrollees: int, min_size: int = 2) -> float:
    """An upper bound on max over pools P of the group (|P| >= min_size,
    within max_counties and min_enrollees) of r*_P - avg_N rho(P).

    Uses r*_P <= U(P) = min(top, (1 + slack) B_P / (kappa E_lo(P))), E_lo(P) =
    sum_c e_c <= E[Y_P] (fellow members only add in-network cost), and only
    pools with B_P >= 0 (others cannot pay a rate >= 0). Without kappa (VaR,
    ruin) only `top` caps r*_P: top - min rho. Returns -inf when no such
    pool exists, and 0 when every pool's bound is negative (callers need
    max(0, .) only).
    """
    if _size_cap(econ, max_counties, min_enrollees, min_size) is None:
        return -math.inf
    if kappa is None:
        return top - float(np.min(rho))
    return GroupProgram.build(econ, rho, kappa=kappa, top=top, max_counties=max_counties,
                              min_enrollees=min_enrollees, min_size=min_size).maximise()[0]


def _size_cap(econ: GroupEconomics, max_counties: int | None, min_enrollees: int,
              min_size: int) -> int | None:
    """The largest pool size allowed, or None when no pool of the group qualifies."""
    n = len(econ.ids)
    size_cap = min(n, max_counties or n)
    if size_cap < min_size or econ.enrollees.sum() < min_enrollees:
        return None
    return size_cap


MILP_TIME_LIMIT = 1
"""scipy.optimize.milp's status for an iteration or time limit reached."""


class BoundTimeLimit(Exception):
    """The deadline struck inside a bound's MILP: no valid bound was proven."""


BOUND_RESOLUTION = 1e-6
"""Callers ask whether any pool beats a value by this much (rate units)."""


class GroupProgram:
    """max over allowed 0-1 vectors x of min(g1(x), g2(x)) with
    g1 = top - avg rho and g2 = Num(x) / Den(x) = (1 + slack) B_P / (kappa
    E_lo(P)) - avg rho, Num and Den quadratic in x, linearised by w_ij = x_i x_j.

    Some x has min(g1, g2) > t iff max {Num - t Den : sum N_c (top - rho_c -
    t) x_c >= 0} > 0 (the g1 condition is linear in x for fixed t): `exceeds`
    asks that once, `maximise` iterates it (Dinkelbach) to the maximum.
    """

    @classmethod
    def build(cls, econ: GroupEconomics, rho: np.ndarray, *, kappa: float, top: float,
              max_counties: int | None, min_enrollees: int, min_size: int = 2) -> GroupProgram | None:
        """The programme, or None when no pool of the group qualifies."""
        size_cap = _size_cap(econ, max_counties, min_enrollees, min_size)
        if size_cap is None:
            return None
        return cls(econ, rho, kappa, top, size_cap, min_enrollees, min_size)

    def __init__(self, econ: GroupEconomics, rho: np.ndarray, kappa: float, top: float, size_cap: int,
                 min_enrollees: int, min_size: int):
        self.deadline = econ.deadline
        n = len(econ.ids)
        money = float(econ.alone_mean.sum())   # scale money so the MILP is well conditioned
        beta = econ.beta / money * (1.0 + BOUND_PRICING_SLACK)
        fixed = econ.fixed / money * (1.0 + BOUND_PRICING_SLACK)
        e = econ.alone_mean / money
        self.ids = econ.ids
        self.top = top
        self.people = econ.enrollees / econ.enrollees.sum()
        self.rho = np.asarray(rho, dtype=float)
        self.num_q = np.outer(beta, self.people) - kappa * np.outer(e, self.people * self.rho)
        self.num_l = -fixed * self.people
        self.den_q = kappa * np.outer(e, self.people)
        self.n = n
        self.pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        zeros = np.zeros(len(self.pairs))
        pair_rows, pair_lo, pair_hi = _pair_constraints(n, self.pairs)
        rows = [(np.concatenate([np.ones(n), zeros]), min_size, size_cap),
                (np.concatenate([econ.enrollees, zeros]), min_enrollees, np.inf),
                (np.concatenate([beta, zeros]), fixed, np.inf)]
        self.matrix = sparse.vstack([pair_rows] + [sparse.csr_matrix(r) for r, _, _ in rows]).tocsr()
        self.lo = np.concatenate([pair_lo, [lo for _, lo, _ in rows]])
        self.hi = np.concatenate([pair_hi, [hi for _, _, hi in rows]])
        self.integrality = np.concatenate([np.ones(n), zeros])
        self.bounds = optimize.Bounds(np.zeros(n + len(self.pairs)), np.ones(n + len(self.pairs)))
        # Den >= kappa (smallest min_size e's)(smallest min_size N's) on allowed x
        self.den_min = kappa * np.sort(e)[:min_size].sum() * np.sort(self.people)[:min_size].sum()
        self.cap_bound = top - float(np.min(self.rho))   # avg rho(P) >= the smallest rho

    def members(self, x: np.ndarray) -> frozenset[str]:
        return frozenset(cid for cid, v in zip(self.ids, x) if v > 0.5)

    def cut(self, x: np.ndarray) -> None:
        """Exclude exactly the subset x: sum_{i in S} x_i - sum_{i not in S} x_i <= |S| - 1."""
        sign = np.where(x > 0.5, 1.0, -1.0)
        row = np.concatenate([sign, np.zeros(len(self.pairs))])
        self.matrix = sparse.vstack([self.matrix, sparse.csr_matrix(row)]).tocsr()
        self.lo = np.append(self.lo, -np.inf)
        self.hi = np.append(self.hi, float((x > 0.5).sum()) - 1.0)

    def g2(self, x: np.ndarray) -> float:
        return float((x @ self.num_q @ x + self.num_l @ x) / (x @ self.den_q @ x))

    def g1(self, x: np.ndarray) -> float:
        return float(self.top - (self.people * self.rho) @ x / (self.people @ x))

    def _coefficients(self, t: float) -> np.ndarray:
        q = self.num_q - t * self.den_q
        off = np.array([q[i, j] + q[j, i] for i, j in self.pairs])
        return np.concatenate([np.diag(q) + self.num_l, off])

    def _solve(self, t: float, capped: bool) -> tuple[float, np.ndarray | None]:
        """(an upper bound on max Num - t Den, a maximiser or None if infeasible),
        with g1 >= t as a constraint when `capped`."""
        matrix, lo, hi = self.matrix, self.lo, self.hi
        if capped:
            row = np.concatenate([self.people * (self.top - self.rho - t), np.zeros(len(self.pairs))])
            matrix = sparse.vstack([matrix, sparse.csr_matrix(row)]).tocsr()
            lo, hi = np.append(lo, 0.0), np.append(hi, np.inf)
        options = {"mip_rel_gap": 1e-9}
        if self.deadline is not None:
            left = self.deadline - time.time()
            if left <= 0:
                raise BoundTimeLimit
            options["time_limit"] = left
        res = optimize.milp(-self._coefficients(t), constraints=optimize.LinearConstraint(matrix, lo, hi),
                            integrality=self.integrality, bounds=self.bounds, options=options)
        if res.status == MILP_TIME_LIMIT:
            raise BoundTimeLimit
        if res.x is None:
            return -math.inf, None
        upper = -res.mip_dual_bound if res.mip_dual_bound is not None else -res.fun
        return float(upper), np.round(res.x[:self.n])

    def exceeds(self, t: float) -> tuple[bool, np.ndarray | None]:
        """Whether some allowed x may have min(g1, g2) > t (False proves none
        does), with the MILP's maximiser of Num - t Den under g1 >= t."""
        upper, x = self._solve(t, capped=True)
        return (x is not None and upper > 1e-12), x

    def maximise(self) -> tuple[float, np.ndarray | None]:
        """(an upper bound on max min(g1, g2), clipped below at 0, and an x
        attaining it, or None when no x has a positive value).

        Dinkelbach's iteration for the capped problem: from t = 0, solve
        max {Num - t Den : g1 >= t}; if that is <= 0 no x beats t (a proof);
        otherwise its maximiser x has g2 > t and g1 >= t, so t rises to
        h(x) = min(g1(x), g2(x)). t takes finitely many values, so this ends,
        at the exact maximum. Should t stall (g1(x) = t), the MILP's bound
        still caps every x: g2 <= t + bound / min Den.
        """
        t, best = 0.0, None
        for _ in range(DINKELBACH_ITERATIONS):
            upper, x = self._solve(t, capped=True)
            if x is None or upper <= 1e-12:
                return min(self.cap_bound, t), best
            value = min(self.g1(x), self.g2(x))
            if value <= t + 1e-12:
                return min(self.cap_bound, t + upper / self.den_min), best if best is not None else x
            t, best = value, x
        return min(self.cap_bound, t + max(upper, 0.0) / self.den_min), best


def _pair_constraints(n: int, pairs: list[tuple[int, int]]):
    """w_ij <= x_i, w_ij <= x_j, w_ij >= x_i + x_j - 1 (exact for binary x)."""
    triples: list[tuple[int, int, float]] = []   # (row, column, coefficient)
    lo: list[float] = []
    hi: list[float] = []
    for p, (i, j) in enumerate(pairs):
        w = n + p
        for a in (i, j):
            row = len(lo)
            triples += [(row, w, 1.0), (row, a, -1.0)]
            lo.append(-np.inf)
            hi.append(0.0)
        row = len(lo)
        triples += [(row, w, 1.0), (row, i, -1.0), (row, j, -1.0)]
        lo.append(-1.0)
        hi.append(np.inf)
    rows, cols, vals = (list(t) for t in zip(*triples)) if triples else ([], [], [])
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(lo), n + len(pairs)))
    return matrix, np.array(lo), np.array(hi)
