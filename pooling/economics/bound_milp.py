"""The bound's MILP: max over the subsets of a group of U(P) - avg rho(P), a
fractional 0-1 quadratic programme solved exactly by Dinkelbach's method on a
MILP linearised with w_ij = x_i x_j (scipy's HiGHS interface, not Pyomo),
one per band of pool sizes (`BandedProgram`), optionally only over connected
pools (`_connectivity`). Used by pooling.economics.pool_bounds.rate_bound and
the column generation's group search.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, sparse

from pooling.economics.group_economics import (
    BOUND_PRICING_SLACK,
    BoundTimeLimit,
    GroupEconomics,
    ObjectiveWeights,
)

DINKELBACH_ITERATIONS = 25
"""Dinkelbach converges superlinearly (a handful of steps); past this the bound
adds the remaining MILP bound / min denominator (still valid)."""


def _size_cap(econ: GroupEconomics, max_counties: int | None, min_enrollees: int,
              min_size: int) -> int | None:
    """The largest pool size allowed, or None when no pool of the group qualifies."""
    n = len(econ.ids)
    size_cap = min(n, max_counties or n)
    if size_cap < min_size or econ.enrollees.sum() < min_enrollees:
        return None
    return size_cap


TANGENT_ROUNDS = 2
"""Programmes solved after the loose one with a tangent to the tightened cap
(`GroupProgram.maximise`): the first moves the bound most (on Tongliao's group
a second never moved it: the maximiser stays), and each costs a Dinkelbach run."""

MILP_TIME_LIMIT = 1
"""scipy.optimize.milp's status for an iteration or time limit reached."""
MILP_INFEASIBLE = 2
"""scipy.optimize.milp's status for an infeasible problem."""


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
        self.cap_q = np.outer(beta, self.people * weights.budget)   # the cap C_P = (x cap_q x + cap_l x) / Den
        self.cap_l = -fixed * self.people * weights.budget   # (sum beta x - F) (sum N w x)
        self.dual_q = kappa * np.outer(e, self.people * self.rho)
        self.num_q = self.cap_q - self.dual_q
        self.num_l = self.cap_l
        self.den_q = kappa * np.outer(e, self.people)
        self.response = econ.response
        """With induced utilisation, the cap C_P is tightened to T(C_P) <= a C_P + b
        (group_economics.ResponseBound.tangent) by `maximise`."""
        self.largest_top_weight = float(np.max(weights.at_top))
        """S for ResponseBound: avg_N(at_top) <= its largest term, and T rises in S."""
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

    def cap(self, x: np.ndarray) -> float:
        """C_P, the cap on s_P r*_P that g2 subtracts avg rho from before any tangent."""
        return float((x @ self.cap_q @ x + self.cap_l @ x) / (x @ self.den_q @ x))

    def maximise(self, floor: float = 0.0) -> tuple[float, np.ndarray | None]:
        """`_dinkelbach` with the cap C_P; with induced utilisation, then again
        with the tangent a C + b to the tightened cap T(C) (ResponseBound) at
        the last maximiser's C_P, up to TANGENT_ROUNDS times, keeping the
        smallest answer: max_P min(g1, T(C_P) - avg rho) <= max_P min(g1, a C_P
        + b - avg rho) for every tangent, so each answer is a valid bound.
        Num becomes a cap_q + b den_q - dual_q (the cap scaled by a, the duals
        lowered by b); g1 and the constraints stay. A deadline striking
        during a tangent's programme leaves the last answer standing."""
        value, x = self._dinkelbach(floor)
        if self.response is None:
            return value, x
        loose = self.num_q, self.num_l
        try:
            for _ in range(TANGENT_ROUNDS):
                line = None if x is None else self.response.tangent(self.cap(x), self.largest_top_weight)
                if line is None:
                    break
                slope, intercept = line
                self.num_q = slope * self.cap_q + intercept * self.den_q - self.dual_q
                self.num_l = slope * self.cap_l
                tangent_value, tangent_x = self._dinkelbach(floor)
                if tangent_value >= value:
                    break
                touched, (value, x) = x, (tangent_value, tangent_x)
                if x is not None and np.array_equal(x, touched):
                    break   # the next tangent would be this one again
        except BoundTimeLimit:
            pass
        finally:
            self.num_q, self.num_l = loose
        return value, x

    def _dinkelbach(self, floor: float) -> tuple[float, np.ndarray | None]:
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
