"""Cheap, valid upper bounds on what any pool of a group can pay, without
pricing it (for column generation, pooling.optimise.generation).

For CVaR: given the shocks a pool shares, E[Y_P | shocks] = E[Y_P] M with M a
mix of unit-mean multipliers, and, CVaR respecting the convex order,
CVaR_a(Y_P) >= E[Y_P] CVaR_a(M) >= kappa E[Y_P], kappa = `group_kappa` (the
national shock, and the prefecture and county shocks spread evenly over as
many units as the pool can hold). Hence r*_P <= U(P) = min(r_max, B_P /
(kappa E[Y_P])), with B_P and a lower bound on E[Y_P] linear in the members.
`rate_bound` maximises U(P) - (enrollee-weighted mean of a dual rho over P)
over all subsets: a fractional 0-1 quadratic programme, solved exactly by
Dinkelbach's method (with the r_max cap as a linear constraint) on a MILP
linearised with w_ij = x_i x_j (`GroupProgram`; `BandedProgram` runs one per
band of pool sizes, each with its kappa). `GroupProgram.cut` excludes a
subset, so a caller can price the maximiser exactly and ask again (lazy exact
pricing). `ListedPools` computes the same kind of bound for every pool of a
listed group at once, with no MILP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import optimize, sparse, stats

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import county_streams
from pooling.execution.deadline import Deadline, passed

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
        alone = np.array([_expected(instance, c, frozenset([c.id])) for c in counties])
        self.extra = np.zeros((n, n))
        for i, c in enumerate(counties):
            for dest, _weight in c.migrant_destinations:
                k = self.index.get(dest)
                if k is not None and k != i:
                    self.extra[i, k] = _expected(instance, c, frozenset([c.id, dest])) - alone[i]
        self.alone_mean = alone
        prefectures = sorted({c.prefecture for c in counties}, key=str)
        self.prefecture_onehot = np.array([[c.prefecture == p for p in prefectures] for c in counties], dtype=float)

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


def rate_bound(econ: GroupEconomics, rho: np.ndarray, *, kappa: float | None, top: float,
               max_counties: int | None, min_enrollees: int, min_size: int = 2,
               weights: ObjectiveWeights | None = None,
               edges: tuple[tuple[int, int], ...] | None = None) -> float:
    """An upper bound on max over pools P of the group (|P| >= min_size,
    within max_counties and min_enrollees) of s_P r*_P - avg_N rho(P), s_P the
    objective's value of one unit of rate per enrollee (1 for the nominal mean
    rate; `weights` bound it, ObjectiveWeights).

    Uses r*_P <= U(P) = min(top, (1 + slack) B_P / (kappa E_lo(P))), E_lo(P) =
    sum_c e_c <= E[Y_P] (fellow members only add in-network cost), and only
    pools with B_P >= 0 (others cannot pay a rate >= 0). Without kappa (VaR,
    ruin) only `top` caps r*_P: top - min rho. Returns -inf when no such
    pool exists, and 0 when every pool's bound is negative (callers need
    max(0, .) only).
    """
    if _size_cap(econ, max_counties, min_enrollees, min_size) is None:
        return -math.inf
    weights = weights or ObjectiveWeights.nominal(len(econ.ids))
    if kappa is None:
        return float(np.max(top * weights.at_top - rho))
    return GroupProgram.build(econ, rho, kappa=kappa, top=top, max_counties=max_counties,
                              min_enrollees=min_enrollees, min_size=min_size, weights=weights,
                              edges=edges).maximise()[0]


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
MILP_INFEASIBLE = 2
"""scipy.optimize.milp's status for an infeasible problem."""


class BoundTimeLimit(Exception):
    """The deadline struck inside a bound's computation (a kappa or a MILP): no
    valid bound was proven."""


BOUND_RESOLUTION = 1e-6
"""Callers ask whether any pool beats a value by this much (rate units)."""


class GroupProgram:
    """max over allowed 0-1 vectors x of min(g1(x), g2(x)) with
    g1 = top avg_N(at_top) - avg rho and g2 = Num(x) / Den(x) = (1 + slack)
    B_P avg_N(budget weight) / (kappa E_lo(P)) - avg rho (ObjectiveWeights;
    both weights 1 for the nominal rate), Num and Den quadratic in x,
    linearised by w_ij = x_i x_j.

    Some x has min(g1, g2) > t iff max {Num - t Den : sum N_c (top - rho_c -
    t) x_c >= 0} > 0 (the g1 condition is linear in x for fixed t):
    `maximise` iterates that question (Dinkelbach) from a floor to the maximum.
    """

    @classmethod
    def build(cls, econ: GroupEconomics, rho: np.ndarray, *, kappa: float, top: float,
              max_counties: int | None, min_enrollees: int, min_size: int = 2,
              weights: ObjectiveWeights | None = None,
              edges: tuple[tuple[int, int], ...] | None = None) -> GroupProgram | None:
        """The programme, or None when no pool of the group qualifies; with
        `edges` (adjacent member positions) only connected pools are allowed."""
        size_cap = _size_cap(econ, max_counties, min_enrollees, min_size)
        if size_cap is None:
            return None
        return cls(econ, rho, kappa, top, size_cap, min_enrollees, min_size,
                   weights or ObjectiveWeights.nominal(len(econ.ids)), edges)

    def __init__(self, econ: GroupEconomics, rho: np.ndarray, kappa: float, top: float, size_cap: int,
                 min_enrollees: int, min_size: int, weights: ObjectiveWeights,
                 edges: tuple[tuple[int, int], ...] | None = None):
        self.deadline = econ.deadline
        n = len(econ.ids)
        money = float(econ.alone_mean.sum())   # scale money so the MILP is well conditioned
        beta = econ.beta / money * (1.0 + BOUND_PRICING_SLACK)
        fixed = econ.fixed / money * (1.0 + BOUND_PRICING_SLACK)
        e = econ.alone_mean / money
        self.ids = econ.ids
        self.people = econ.enrollees / econ.enrollees.sum()
        self.rho = np.asarray(rho, dtype=float)
        self.top_gain = self.people * top * weights.at_top   # g1's numerator is (top_gain - people rho) x
        self.num_q = np.outer(beta, self.people * weights.budget) - kappa * np.outer(e, self.people * self.rho)
        self.num_l = -fixed * self.people
        self.den_q = kappa * np.outer(e, self.people)
        self.n = n
        self.size_range = (min_size, size_cap)
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
        upper = np.ones(n + len(self.pairs))
        if edges is not None:
            flow, flow_lo, flow_hi, flow_integer, flow_upper = _connectivity(n, len(self.pairs), edges, size_cap)
            self.matrix = sparse.vstack([sparse.hstack([self.matrix, sparse.csr_matrix(
                (self.matrix.shape[0], flow.shape[1] - self.matrix.shape[1]))]), flow]).tocsr()
            self.lo, self.hi = np.concatenate([self.lo, flow_lo]), np.concatenate([self.hi, flow_hi])
            self.integrality = np.concatenate([self.integrality, flow_integer])
            upper = np.concatenate([upper, flow_upper])
        self.width = len(upper)
        self.bounds = optimize.Bounds(np.zeros(self.width), upper)
        # Den >= kappa (smallest min_size e's)(smallest min_size N's) on allowed x
        self.den_min = kappa * np.sort(e)[:min_size].sum() * np.sort(self.people)[:min_size].sum()
        self.cap_bound = float(np.max(top * weights.at_top - self.rho))   # g1 <= its largest term

    def members(self, x: np.ndarray) -> frozenset[str]:
        return frozenset(cid for cid, v in zip(self.ids, x) if v > 0.5)

    def cut(self, x: np.ndarray) -> None:
        """Exclude exactly the subset x: sum_{i in S} x_i - sum_{i not in S} x_i <= |S| - 1."""
        sign = np.where(x > 0.5, 1.0, -1.0)
        row = np.concatenate([sign, np.zeros(self.width - self.n)])
        self.matrix = sparse.vstack([self.matrix, sparse.csr_matrix(row)]).tocsr()
        self.lo = np.append(self.lo, -np.inf)
        self.hi = np.append(self.hi, float((x > 0.5).sum()) - 1.0)

    def g2(self, x: np.ndarray) -> float:
        return float((x @ self.num_q @ x + self.num_l @ x) / (x @ self.den_q @ x))

    def g1(self, x: np.ndarray) -> float:
        return float((self.top_gain - self.people * self.rho) @ x / (self.people @ x))

    def _coefficients(self, t: float) -> np.ndarray:
        q = self.num_q - t * self.den_q
        off = np.array([q[i, j] + q[j, i] for i, j in self.pairs])
        return np.concatenate([np.diag(q) + self.num_l, off, np.zeros(self.width - self.n - len(self.pairs))])

    def _solve(self, t: float) -> tuple[float, np.ndarray | None]:
        """(an upper bound on max Num - t Den subject to g1 >= t, a maximiser),
        or (0, None) when no allowed x reaches 0 (the bound is then <= 0)."""
        coefficients = self._coefficients(t)
        g1_row = np.concatenate([self.top_gain - self.people * (self.rho + t), np.zeros(self.width - self.n)])
        # Only the sign of the maximum matters to the proof: Num - t Den >= 0 as
        # a row prunes every node that cannot reach it (an objective cutoff),
        # and "infeasible" then proves the maximum < 0 (1.5-2x faster).
        matrix = sparse.vstack([self.matrix, sparse.csr_matrix(g1_row), sparse.csr_matrix(coefficients)]).tocsr()
        lo, hi = np.append(self.lo, [0.0, 0.0]), np.append(self.hi, [np.inf, np.inf])
        options = {"mip_rel_gap": 1e-9}
        if self.deadline is not None:
            left = self.deadline.remaining()
            if left <= 0:
                raise BoundTimeLimit
            options["time_limit"] = left
        res = optimize.milp(-coefficients, constraints=optimize.LinearConstraint(matrix, lo, hi),
                            integrality=self.integrality, bounds=self.bounds, options=options)
        if res.status == MILP_TIME_LIMIT:
            raise BoundTimeLimit
        if res.status == MILP_INFEASIBLE:
            return 0.0, None
        if res.x is None:
            raise RuntimeError(f"a pool-bound MILP ended with status {res.status}: {res.message}")
        upper = -res.mip_dual_bound if res.mip_dual_bound is not None else -res.fun
        return float(upper), np.round(res.x[:self.n])

    def maximise(self, floor: float = 0.0) -> tuple[float, np.ndarray | None]:
        """(an upper bound on max min(g1, g2), clipped below at `floor`, and an
        x attaining it, or None when no x beats the floor).

        Dinkelbach's iteration for the capped problem: from t = floor, solve
        max {Num - t Den : g1 >= t}; if that is <= 0 no x beats t (a proof);
        otherwise its maximiser x has g2 > t and g1 >= t, so t rises to
        h(x) = min(g1(x), g2(x)). t takes finitely many values, so this ends,
        at the exact maximum. Should t stall (g1(x) = t), the MILP's bound
        still caps every x: g2 <= t + bound / min Den. Starting at the floor
        (the best value the caller already has) skips the iterations below it:
        a band that cannot beat it costs one MILP.
        """
        t, best = floor, None
        for _ in range(DINKELBACH_ITERATIONS):
            upper, x = self._solve(t)
            if x is None or upper <= 1e-12:
                return min(self.cap_bound, t), best
            value = min(self.g1(x), self.g2(x))
            if value <= t + 1e-12:
                return min(self.cap_bound, t + upper / self.den_min), best if best is not None else x
            t, best = value, x
        return min(self.cap_bound, t + max(upper, 0.0) / self.den_min), best


class ListedPools:
    """The pools of a group listed one by one (when they are few enough): the
    bound s_P U(P) - avg rho(P) of `GroupProgram` for all of them at once,
    from sparse member sums, so no MILP is needed to find the pools worth
    pricing exactly."""

    def __init__(self, econ: GroupEconomics, pools: list[frozenset[str]], kappa: KappaOf):
        self.econ = econ
        self.pools = pools
        rows = [r for r, members in enumerate(pools) for _ in members]
        cols = [econ.index[c] for members in pools for c in sorted(members)]
        self.matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pools), len(econ.ids)))
        sizes = np.asarray(self.matrix.sum(axis=1)).ravel().astype(int)
        prefectures = np.asarray(((self.matrix @ econ.prefecture_onehot) > 0).sum(axis=1)).ravel().astype(int)
        self.kappa = np.array([kappa(k, m) for k, m in zip(sizes, prefectures)])
        self.budget = self.matrix @ econ.beta - econ.fixed
        # E[Y_P] >= stand-alone costs + migrants brought in network by fellow members
        self.expected = (self.matrix @ econ.alone_mean
                         + np.asarray(self.matrix.multiply(self.matrix @ econ.extra).sum(axis=1)).ravel())
        self.people = self.matrix @ econ.enrollees

    def caps(self, weights: ObjectiveWeights, top: float) -> np.ndarray:
        """Per pool, a bound on s_P r*_P: min(top avg_N(at_top), (1 + slack) B_P
        avg_N(budget weight) / (kappa_k E_lo(P))); -inf where B_P < 0 (no rate
        >= 0 is solvent)."""
        n = self.econ.enrollees
        at_top = top * (self.matrix @ (n * weights.at_top)) / self.people
        with np.errstate(divide="ignore", invalid="ignore"):
            if weights.effective_box is not None:
                ratio = effective_ratio(self.matrix.toarray(), n, weights.effective_box)
                capped = (1.0 + BOUND_PRICING_SLACK) * self.budget * ratio / (self.kappa * self.people)
            else:
                capped = ((1.0 + BOUND_PRICING_SLACK) * self.budget * (self.matrix @ (n * weights.budget))
                          / (self.kappa * self.expected * self.people))
        capped = np.where(self.expected > 0.0, capped, np.inf)
        return np.where(self.budget < 0.0, -np.inf, np.minimum(at_top, capped))

    def values(self, rho: np.ndarray, weights: ObjectiveWeights, top: float) -> np.ndarray:
        """Per pool: its cap minus avg_N rho (a bound on its reduced rate)."""
        return self.caps(weights, top) - (self.matrix @ (self.econ.enrollees * rho)) / self.people


class BandedProgram:
    """GroupProgram per band of pool sizes, each with its own kappa
    (`kappa_bands`): the same questions (maximise above a floor, cut)
    answered over the union of the bands. A band's maximum is kept until it is cut."""

    def __init__(self, programs: list[GroupProgram]):
        self.programs = programs
        self._best: dict[int, tuple[float, np.ndarray | None]] = {}

    @classmethod
    def build(cls, econ: GroupEconomics, rho: np.ndarray, *, bands: list[tuple[int, int, float]], top: float,
              min_enrollees: int, weights: ObjectiveWeights | None = None,
              edges: tuple[tuple[int, int], ...] | None = None) -> BandedProgram | None:
        """The programme over the bands, or None when no pool of any band qualifies."""
        programs = [GroupProgram.build(econ, rho, kappa=kappa, top=top, max_counties=high,
                                       min_enrollees=min_enrollees, min_size=low, weights=weights, edges=edges)
                    for low, high, kappa in bands]
        programs = [p for p in programs if p is not None]
        return cls(programs) if programs else None

    def members(self, x: np.ndarray) -> frozenset[str]:
        return self.programs[0].members(x)

    def maximise(self, floor: float = 0.0) -> tuple[float, np.ndarray | None]:
        """The largest band maximum, each clipped below at `floor` (a band
        without an x above its floor reports <= the floor). A band's result
        is kept until a cut touches it: an upper bound from a lower floor is
        still one at a higher floor."""
        for i, program in enumerate(self.programs):
            if i not in self._best:
                self._best[i] = program.maximise(floor)
        return max(self._best.values(), key=lambda vx: (vx[0], vx[1] is not None))

    def cut(self, x: np.ndarray) -> None:
        size = int((x > 0.5).sum())
        for i, program in enumerate(self.programs):
            if program.size_range[0] <= size <= program.size_range[1]:
                program.cut(x)
                self._best.pop(i, None)


def _connectivity(n: int, pairs: int, edges: tuple[tuple[int, int], ...], size_cap: int):
    """Rows that allow only connected x (single-commodity flow): a root r_i <=
    x_i, one root, its supply s_i <= size_cap r_i equal to sum x; along each
    edge both ways a flow f <= size_cap x at either end; every chosen node
    consumes one unit (inflow - outflow + s_j = x_j). A chosen node that no
    path of chosen nodes joins to the root cannot be fed, so x is connected.
    Columns after x and the pairs: r (n), s (n), f (2 per edge). Returns
    (matrix over all columns, lo, hi, integrality and upper bounds of the new columns)."""
    arcs = [(i, j) for i, j in edges] + [(j, i) for i, j in edges]
    r0, s0, f0 = n + pairs, n + pairs + n, n + pairs + 2 * n
    width = f0 + len(arcs)
    triples: list[tuple[int, int, float]] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries, low, high):
        index = len(lo)
        triples.extend((index, col, value) for col, value in entries)
        lo.append(low)
        hi.append(high)

    for i in range(n):
        row([(r0 + i, 1.0), (i, -1.0)], -np.inf, 0.0)                     # r_i <= x_i
        row([(s0 + i, 1.0), (r0 + i, -float(size_cap))], -np.inf, 0.0)   # s_i <= size_cap r_i
    row([(r0 + i, 1.0) for i in range(n)], 1.0, 1.0)                        # one root
    row([(s0 + i, 1.0) for i in range(n)] + [(i, -1.0) for i in range(n)], 0.0, 0.0)   # supply = sum x
    for a, (i, j) in enumerate(arcs):
        row([(f0 + a, 1.0), (i, -float(size_cap))], -np.inf, 0.0)
        row([(f0 + a, 1.0), (j, -float(size_cap))], -np.inf, 0.0)
    for node in range(n):
        entries = [(f0 + a, 1.0) for a, (_, j) in enumerate(arcs) if j == node]
        entries += [(f0 + a, -1.0) for a, (i, _) in enumerate(arcs) if i == node]
        row(entries + [(s0 + node, 1.0), (node, -1.0)], 0.0, 0.0)
    rows, cols, vals = (list(t) for t in zip(*triples))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(lo), width))
    integer = np.concatenate([np.ones(n), np.zeros(n + len(arcs))])
    upper = np.concatenate([np.ones(n), np.full(n + len(arcs), float(size_cap))])
    return matrix, np.array(lo), np.array(hi), integer, upper


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
