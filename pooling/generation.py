"""Column generation for pooling groups too large to enumerate (DESIGN
§Formulations 1: columns are "generated (pricing) where [enumeration] is not"
small).

A group (prefecture, province or instance) of n counties has up to 2^n - 1
candidate pools, each priced by an FFT; past a few thousand that is minutes.
For such groups `generate_columns` builds the columns iteratively:

1. Restricted master: the LP relaxation of set partitioning with the
   mean-rate objective, max sum_P v_P y_P s.t. every county covered once,
   v_P = N_P t_P / N with t_P the highest rate the pool may pay (r*_P, or
   the top menu rate below it). Columns: every allowed pool of the enumerated
   groups, and for generated groups the single counties and the whole group
   (where allowed); a penalised artificial column per county keeps it
   feasible. Solved with HiGHS (scipy.optimize.linprog), duals pi_c.
2. Pricing: a pool P improves the LP iff its reduced rate
       rr(P) = t_P - sum_{c in P} N_c rho_c / N_P > 0,   rho_c = pi_c N / N_c
   (rho_c is county c's dual in rate units). Local search from the pools the
   LP uses: add or drop one county (keeping the pooling rules), rank the
   moves by a cheap proxy (the current pool's risk loading applied to the
   exact expected cost of the neighbour) and price the best few exactly.
   Every pool found with rr > 0 becomes a column. Repeat until no group
   yields one (or MAX_ROUNDS).
3. The MILP of `solve` then runs on all columns (coupling rules included).

Pricing is heuristic, so the optimum over generated columns is not proven
optimal over all pools. The result therefore carries a bound valid over
*every* allowed pool (`rate_bound` below): for CVaR, the convex-order bound
CVaR_a(Y_P) >= E[Y_P] CVaR_a(Theta) (E[Y_P | Theta] = Theta E[Y_P]) caps
r*_P <= U(P) = min(r_max, (B_P) / (kappa E[Y_P])), kappa = CVaR_a(Theta);
maximising U(P) - avg rho(P) over all subsets is a fractional 0-1 quadratic
programme, bounded exactly by Dinkelbach's method on a linearised MILP.
The Lagrangian bound z_LP + sum_g (N_g / N) max(0, max_P rr_g(P)) then
bounds the mean rate (Farley/Lagrangian argument: adding delta_g N_c / N
to each dual of group g makes the duals feasible for every pool). For VaR
and ruin no such cap exists and the bound only uses rates.max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse, stats

from pooling.candidates import PoolGroup, is_connected
from pooling.columns import Candidate, CandidateMaker, top_rate
from pooling.instance import Instance
from pooling.pools import county_streams
from pooling.spec import Spec

REDUCED_COST_TOLERANCE = 1e-9
"""A pool enters the master when its reduced rate exceeds this (rate units)."""

MAX_ROUNDS = 60
"""Pricing rounds before stopping (stated in the result when reached)."""

EXACT_PER_STEP = 3
"""Neighbours priced exactly per local-search step (the best by the proxy)."""

NEW_COLUMNS_PER_GROUP = 10
"""Most improving pools added per group and round (the best reduced rates)."""

ARTIFICIAL_RATE = -10.0
"""Rate of a county's artificial column: far below any real rate (rates lie in
[0, 1]), so the LP uses it only when no real cover exists."""

BOUND_PRICING_SLACK = 1e-3
"""The exact prices r*_P carry a relative error of at most ~1e-4 (the claims
engine's stated accuracy, claims.PRICING_SHIFT_BUDGET); the cap U(P) is
raised by 1e-3 relative so that it bounds the computed r*_P, not only the
exact one."""

DINKELBACH_ITERATIONS = 25


@dataclass
class GroupLog:
    """What happened in one group (written to result.json)."""

    label: str
    counties: int
    method: str                      # "enumerated" | "generated"
    columns: int = 0                 # admissible pools in the master at the end
    pools_priced: int = 0            # pools priced exactly (generated groups)
    reduced_rate_bound: float = 0.0  # delta_g: no pool of the group has rr above this

    def to_dict(self) -> dict:
        return {"group": self.label, "counties": self.counties, "method": self.method,
                "columns": self.columns, "pools_priced": self.pools_priced,
                "reduced_rate_bound": self.reduced_rate_bound}


@dataclass
class GenerationLog:
    rounds: int = 0
    converged: bool = True
    master_lp_value: float | None = None
    lagrangian_bound: float | None = None
    bound_method: str = ""
    groups: list[GroupLog] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "converged": self.converged,
                "master_lp_value": self.master_lp_value, "lagrangian_bound": self.lagrangian_bound,
                "bound_method": self.bound_method, "groups": [g.to_dict() for g in self.groups]}


class GroupEconomics:
    """Per-county figures of one group that give any pool's budget and exact
    expected cost E[Y_P] in O(|P|^2), without pricing it:
    B_P = sum beta_c - F, E[Y_P] = sum e_c + sum_{c != k in P} extra[c, k]."""

    def __init__(self, instance: Instance, spec: Spec, group: PoolGroup):
        self.ids = group.members
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        u = spec.solvency.reserve_share
        counties = [instance.county(c) for c in self.ids]
        self.enrollees = np.array([c.enrollees for c in counties], dtype=float)
        self.beta = np.array([c.revenue + u * c.reserves - c.per_capita_costs for c in counties])
        self.fixed = instance.parameters.admin_fixed_per_fund
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


def rate_bound(econ: GroupEconomics, rho: np.ndarray, *, kappa: float | None, top: float,
               max_counties: int | None, min_enrollees: int, min_size: int = 2) -> float:
    """An upper bound on max over pools P of the group (|P| >= min_size,
    within max_counties and min_enrollees) of r*_P - avg_N rho(P).

    Uses r*_P <= min(top, (1 + slack) B_P / (kappa E_lo(P))), E_lo(P) = sum_c
    e_c <= E[Y_P] (fellow members only add in-network cost), and only pools
    with B_P >= 0 (others cannot pay a rate >= 0). Without kappa (VaR, ruin)
    only `top` caps r*_P. Returns -inf when no such pool exists.
    """
    n = len(econ.ids)
    size_cap = min(n, max_counties or n)
    if size_cap < min_size or econ.enrollees.sum() < min_enrollees:
        return -math.inf
    # avg rho(P) >= the smallest rho of the group
    cap_bound = top - float(np.sort(rho)[0])
    if kappa is None:
        return cap_bound
    money = float(econ.alone_mean.sum())
    beta = econ.beta / money * (1.0 + BOUND_PRICING_SLACK)
    fixed = econ.fixed / money * (1.0 + BOUND_PRICING_SLACK)
    e = econ.alone_mean / money
    people = econ.enrollees / econ.enrollees.sum()
    weighted = people * rho
    # f(x) = [ (beta.x - F)(N.x) - kappa (e.x)(N rho . x) ] / [ kappa (e.x)(N.x) ]
    num_q = np.outer(beta, people) - kappa * np.outer(e, weighted)
    num_l = -fixed * people
    den_q = kappa * np.outer(e, people)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    a_rows, cons_lo, cons_hi = _pair_constraints(n, pairs)
    extra = [(np.concatenate([np.ones(n), np.zeros(len(pairs))]), min_size, size_cap),
             (np.concatenate([econ.enrollees, np.zeros(len(pairs))]), min_enrollees, np.inf),
             (np.concatenate([beta, np.zeros(len(pairs))]), fixed, np.inf)]
    matrix = sparse.vstack([a_rows] + [sparse.csr_matrix(row) for row, _, _ in extra]).tocsr()
    lo = np.concatenate([cons_lo, [lo for _, lo, _ in extra]])
    hi = np.concatenate([cons_hi, [hi for _, _, hi in extra]])
    constraints = optimize.LinearConstraint(matrix, lo, hi)
    integrality = np.concatenate([np.ones(n), np.zeros(len(pairs))])
    bounds = optimize.Bounds(np.zeros(n + len(pairs)), np.ones(n + len(pairs)))
    den_min = kappa * np.sort(e)[:min_size].sum() * np.sort(people)[:min_size].sum()

    def coefficients(q: np.ndarray, linear: np.ndarray) -> np.ndarray:
        diag = np.diag(q) + linear
        off = np.array([q[i, j] + q[j, i] for i, j in pairs])
        return np.concatenate([diag, off])

    def ratio(x: np.ndarray) -> float:
        return float((x @ num_q @ x + num_l @ x) / (x @ den_q @ x))

    t = 0.0
    for _ in range(DINKELBACH_ITERATIONS):
        objective = coefficients(num_q - t * den_q, num_l)
        res = optimize.milp(-objective, constraints=constraints, integrality=integrality, bounds=bounds,
                            options={"mip_rel_gap": 1e-9})
        if res.x is None:
            return -math.inf
        upper = -res.mip_dual_bound if res.mip_dual_bound is not None else -res.fun
        if upper <= 1e-12:
            return min(cap_bound, t)
        x = np.round(res.x[:n])
        t_next = ratio(x)
        if t_next <= t + 1e-12:
            return min(cap_bound, t + upper / den_min)
        t = t_next
    return min(cap_bound, t + max(upper, 0.0) / den_min)


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


@dataclass
class GeneratedColumns:
    """Output of `generate_columns`: every candidate priced (for diagnosis), the
    admissible ones in the master (the MILP's columns), the valid bound and the log."""

    candidates: list[Candidate]
    columns: list[Candidate]
    bound: float | None
    log: GenerationLog


class _Master:
    """The restricted master LP over the current columns (module docstring, 1)."""

    def __init__(self, instance: Instance, spec: Spec):
        self.ids = tuple(sorted(instance.ids))
        self.row = {cid: i for i, cid in enumerate(self.ids)}
        self.total = instance.total_enrollees
        self.enrollees = np.array([instance.county(c).enrollees for c in self.ids], dtype=float)
        self.spec = spec
        self.columns: dict[frozenset[str], Candidate] = {}

    def add(self, members: frozenset[str], candidate: Candidate) -> bool:
        if members in self.columns or not candidate.admissible:
            return False
        self.columns[members] = candidate
        return True

    def value(self, candidate: Candidate) -> float:
        return candidate.pricing.enrollees * top_rate(candidate, self.spec) / self.total

    def solve(self) -> tuple[float, np.ndarray, dict[frozenset[str], float]]:
        """(LP value, county duals in rate units rho_c, LP value of y per column)."""
        keys = list(self.columns)
        n, m = len(self.ids), len(keys)
        rows = [self.row[c] for key in keys for c in sorted(key)] + list(range(n))
        cols = [j for j, key in enumerate(keys) for _ in key] + list(range(m, m + n))
        a_eq = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, m + n))
        values = np.array([self.value(self.columns[k]) for k in keys]
                          + list(ARTIFICIAL_RATE * self.enrollees / self.total))
        res = optimize.linprog(-values, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, None), method="highs")
        if res.status != 0:
            raise RuntimeError(f"restricted master LP failed: {res.message}")
        pi = -np.asarray(res.eqlin.marginals)
        rho = pi * self.total / self.enrollees
        return float(-res.fun), rho, {k: float(res.x[j]) for j, k in enumerate(keys)}


class _GroupSearch:
    """Heuristic pricing in one group: local search over allowed pools."""

    def __init__(self, instance: Instance, spec: Spec, group: PoolGroup, maker: CandidateMaker,
                 cache: dict[frozenset[str], Candidate]):
        self.instance, self.spec, self.group, self.maker, self.cache = instance, spec, group, maker, cache
        self.econ = GroupEconomics(instance, spec, group)
        self.priced: set[frozenset[str]] = set()

    def allowed(self, members: frozenset[str]) -> bool:
        rules = self.spec.pooling
        if rules.max_counties is not None and len(members) > rules.max_counties:
            return False
        if sum(self.instance.county(c).enrollees for c in members) < rules.min_enrollees:
            return False
        return not rules.contiguous or is_connected(self.instance, members)

    def candidate(self, members: frozenset[str]) -> Candidate:
        hit = self.cache.get(members)
        if hit is None:
            hit = self.cache[members] = self.maker.make(members)
        self.priced.add(members)
        return hit

    def reduced_rate(self, members: frozenset[str], rho: dict[str, float]) -> float | None:
        cand = self.candidate(members)
        if not cand.admissible:
            return None
        return top_rate(cand, self.spec) - _mean_rate_of(self.instance, sorted(members), rho)

    def _neighbours(self, members: frozenset[str]) -> list[frozenset[str]]:
        out = []
        adjacent = set()
        if self.spec.pooling.contiguous:
            for c in members:
                adjacent.update(self.instance.county(c).adjacent)
        for c in self.group.members:
            if c in members:
                if len(members) > 1:
                    out.append(members - {c})
            elif not self.spec.pooling.contiguous or c in adjacent:
                out.append(members | {c})
        return [p for p in out if self.allowed(p)]

    def _proxy(self, members: frozenset[str], load: float, rho: dict[str, float]) -> float:
        expected = self.econ.expected_cost(members)
        rate = self.spec.rates.max if expected <= 0 else min(
            self.spec.rates.max, self.econ.budget(members) / (load * expected))
        return rate - _mean_rate_of(self.instance, sorted(members), rho)

    def _score(self, members: frozenset[str], rho: dict[str, float]) -> float:
        """Reduced rate with r*_P in place of the top admissible rate: defined for
        inadmissible pools too, so the search can pass through them."""
        cand = self.candidate(members)
        return cand.column.max_rate - _mean_rate_of(self.instance, sorted(members), rho)

    def search(self, starts: list[frozenset[str]], rho: dict[str, float]) -> dict[frozenset[str], float]:
        """Pools with a positive reduced rate found by steepest ascent (on `_score`)
        from each start; a start's climb stops at a local maximum."""
        found: dict[frozenset[str], float] = {}
        for start in starts:
            current = start
            current_score = self._score(current, rho)
            for _ in range(2 * len(self.group.members)):
                pricing = self.candidate(current).pricing
                load = pricing.risk / pricing.expected_cost if pricing.expected_cost > 0 else 1.0
                moves = sorted(self._neighbours(current),
                               key=lambda p: (-self._proxy(p, load, rho), sorted(p)))[:EXACT_PER_STEP]
                best, best_score = None, current_score
                for pool in moves:
                    rr = self.reduced_rate(pool, rho)
                    if rr is not None and rr > REDUCED_COST_TOLERANCE:
                        found[pool] = rr
                    score = self._score(pool, rho)
                    if score > best_score + 1e-12:
                        best, best_score = pool, score
                if best is None:
                    break
                current, current_score = best, best_score
        return found


def generate_columns(instance: Instance, spec: Spec, plan: list[tuple[PoolGroup, list | None]],
                     maker: CandidateMaker) -> GeneratedColumns:
    """Columns for the MILP: every allowed pool of the groups with a subset list
    (enumerated) and generated columns for the others (module docstring)."""
    master = _Master(instance, spec)
    cache: dict[frozenset[str], Candidate] = {}
    log = GenerationLog()
    searches: dict[str, _GroupSearch] = {}
    for group, subsets in plan:
        if subsets is not None:
            log.groups.append(GroupLog(group.label, len(group.members), "enumerated"))
            for members in subsets:
                cache[members] = maker.make(members)
                master.add(members, cache[members])
            continue
        log.groups.append(GroupLog(group.label, len(group.members), "generated"))
        search = searches[group.label] = _GroupSearch(instance, spec, group, maker, cache)
        seeds = [frozenset([c]) for c in group.members] + [frozenset(group.members)]
        for members in seeds:
            if search.allowed(members):
                master.add(members, search.candidate(members))

    active = set(searches)
    while True:
        value, rho_array, y = master.solve()
        rho = dict(zip(master.ids, rho_array))
        if not active or log.rounds >= MAX_ROUNDS:
            break
        log.rounds += 1
        for label in sorted(active):
            search = searches[label]
            support = sorted((k for k, v in y.items() if v > 1e-9 and k <= set(search.group.members)),
                             key=sorted)
            starts = support + [frozenset([c]) for c in search.group.members
                                if frozenset([c]) not in support]
            found = search.search(starts, rho)
            ranked = sorted(found.items(), key=lambda kv: (-kv[1], sorted(kv[0])))
            added = sum(master.add(k, cache[k]) for k, _ in ranked[:NEW_COLUMNS_PER_GROUP])
            if not added:
                active.discard(label)
    log.converged = not active
    log.master_lp_value = value

    # The MILP gets every admissible pool priced on the way, not only those the
    # LP took: they cost nothing more and let it combine pools the LP mixed.
    for search in searches.values():
        for members in sorted(search.priced, key=lambda k: (len(k), sorted(k))):
            if search.allowed(members):
                master.add(members, cache[members])
    columns = list(master.columns.values())
    groups = {grp.label: grp for grp, _ in plan}
    bound = _bound(instance, spec, master, groups, searches, log, value, rho_array)
    for g in log.groups:
        members = set(groups[g.label].members)
        g.columns = sum(1 for k in master.columns if k <= members)
        if g.label in searches:
            g.pools_priced = len(searches[g.label].priced)
    return GeneratedColumns(candidates=list(cache.values()), columns=columns, bound=bound, log=log)


def _bound(instance: Instance, spec: Spec, master: _Master, groups: dict[str, PoolGroup],
           searches: dict[str, _GroupSearch], log: GenerationLog, lp_value: float,
           rho_array: np.ndarray) -> float:
    """A bound on the spec's objective valid over every allowed pool (module docstring)."""
    kind = spec.objective.kind
    if kind == "min_rate_dispersion":
        log.bound_method = "trivial: a dispersion is >= 0 (no finer bound over pools not generated)"
        return 0.0
    kappa = (shock_cvar(instance.parameters.frequency_shock_cv, spec.solvency.level)
             if spec.solvency.measure == "cvar" else None)
    cap = ("r*_P <= B_P / (E[Y_P] CVaR(Theta)), convex order" if kappa is not None
           else f"r*_P <= rates.max only (no cap for measure {spec.solvency.measure})")
    mean_kind = kind == "max_mean_rate"
    rho = dict(zip(master.ids, rho_array)) if mean_kind else dict.fromkeys(master.ids, 0.0)
    best: dict[str, float] = {}      # per group: max over its pools of t_P - avg rho(P)
    for g in log.groups:
        members = set(groups[g.label].members)
        exact = [top_rate(c, spec) - _mean_rate_of(instance, c.pricing.counties, rho)
                 for k, c in master.columns.items() if k <= members
                 and (g.method == "enumerated" or len(k) == 1)]
        if g.method == "generated":
            search = searches[g.label]
            exact.append(rate_bound(search.econ, np.array([rho[c] for c in search.econ.ids]),
                                    kappa=kappa, top=spec.rates.max, max_counties=spec.pooling.max_counties,
                                    min_enrollees=spec.pooling.min_enrollees))
        best[g.label] = max(exact) if exact else -math.inf
        g.reduced_rate_bound = max(0.0, best[g.label]) if mean_kind else best[g.label]
    if mean_kind:
        total = lp_value + math.fsum(
            g.reduced_rate_bound * sum(instance.county(c).enrollees for c in groups[g.label].members)
            for g in log.groups) / instance.total_enrollees
        log.lagrangian_bound = total
        log.bound_method = ("the smaller of rates.max and the Lagrangian bound: restricted-master LP "
                            "value + sum over groups of (N_g / N) x the largest reduced rate any pool "
                            f"of the group can have ({cap})")
        return min(spec.rates.max, total)
    log.bound_method = f"max_min_rate <= min over groups of the largest rate any of its pools can pay ({cap})"
    return min(spec.rates.max, min(best.values()))


def _mean_rate_of(instance: Instance, members, rho: dict[str, float]) -> float:
    people = [instance.county(c).enrollees for c in members]
    return math.fsum(n * rho[c] for n, c in zip(people, members)) / sum(people)
