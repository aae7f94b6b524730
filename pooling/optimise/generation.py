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
2. Heuristic pricing: a pool P improves the LP iff its reduced rate
       rr(P) = t_P - sum_{c in P} N_c rho_c / N_P > 0,   rho_c = pi_c N / N_c
   (rho_c is county c's dual in rate units). Steepest ascent from the pools
   the LP uses and from every single county: add or drop one county (keeping
   size and contiguity rules), rank the moves by a cheap proxy (the current
   pool's risk loading applied to the exact expected cost of the neighbour)
   and price the best few exactly. Every allowed pool found with rr > 0
   becomes a column.
3. When the heuristic finds nothing, the exact check (4) runs; a pool it
   finds with rr > 0 becomes a column. Rounds stop when no group yields one
   (or at MAX_ROUNDS). The MILP of `solve` then runs on every admissible pool
   priced (coupling rules and all objectives).
4. Exact check and bound: pooling.economics.pool_bounds caps every pool's r*_P by a
   bound U(P) linear-fractional in the members and maximises U(P) - avg
   rho(P) over all subsets exactly (MILP, Dinkelbach's iteration started at
   the best exact value seen so far plus BOUND_RESOLUTION: a size band that
   cannot beat it costs one MILP); a maximiser above it is priced exactly and
   cut off, up to EXACT_CHECK_CUTS times, after which the remaining maximum
   is computed. delta_g is the larger of
   that and the exact values seen. Then
       mean rate <= z_LP + sum_g (N_g / N) max(0, delta_g)
   over *every* allowed pool (adding delta_g N_c / N to the duals of group g
   makes them feasible for every pool: a Lagrangian bound). With delta_g = 0
   for every group the LP is proven optimal over all pools. For VaR and ruin
   U(P) is only r_max (pool_bounds docstring).
5. Listed groups: when a group has at most SCREEN_LIMIT allowed pools, they
   are listed once (pool_bounds.ListedPools) and U(P) is computed for all of
   them at once from sparse sums, with no MILP: the exact check prices pools
   in decreasing order of U(P) - avg rho(P). For the linear objectives the
   unpriced listed pools then enter the master at their caps s_P U(P) (upper
   bounds on their values): that LP's value bounds the LP over every listed
   pool, its duals leave no listed pool a positive reduced rate, and the
   capped pools it uses are priced exactly (LISTED_ROUNDS). The bound is the
   value of that LP plus the delta_g of unlisted generated groups.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import care_in_pool
from pooling.economics.objectives import EFFECTIVE_COVERAGE, LINEAR_OBJECTIVES, MEAN_RATE, objective_denominator
from pooling.economics.pool_bounds import (
    BOUND_RESOLUTION,
    BandedProgram,
    BoundTimeLimit,
    GroupEconomics,
    ListedPools,
    ObjectiveWeights,
    kappa_bands,
    kappa_of,
    rate_bound,
)
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.candidates import PoolGroup, group_subsets, is_connected
from pooling.optimise.columns import Candidate, CandidateMaker, top_rate

REDUCED_COST_TOLERANCE = 1e-9
"""A pool enters the master when its reduced rate exceeds this (rate units)."""

MAX_ROUNDS = 60
"""Pricing rounds before stopping (stated in the result when reached)."""

EXACT_PER_STEP = 3
"""Neighbours priced exactly per local-search step (the best by the proxy)."""

NEW_COLUMNS_PER_GROUP = 10
"""Most improving pools added per group and round (the best reduced rates)."""

TAILING_OFF_ROUNDS = 5
TAILING_OFF_GAIN = 1e-5
"""Stop generating when the master LP (a mean rate) gained less than this over
the last TAILING_OFF_ROUNDS rounds: column generation tails off, adding many
pools for tiny gains; the bound in the result still covers every pool."""

LISTED_ROUNDS = 2
"""Rounds of `_price_listed_support` (each prices at most one pool per county
row of the LP); past them the bound still holds, looser. More buys little:
on China's prefecture 360700 (18 counties, 43,085 connected pools) 60 rounds
moved the LP with caps from 0.510172 to 0.510168 while pricing 1,231 pools
(the cap slack is spread over thousands of pools, each a little)."""

CERTIFY_ROUNDS = 2
"""Bounds computed at the end, each after adding the improving pools the last
one's exact checks found (when the rounds tailed off before them)."""

EXACT_CHECK_CUTS = 10
"""Maximisers of the pool bound priced exactly (and cut off) per exact check;
past this the check returns the bound as it stands (valid, looser). More buys
little: 60 for the final bound took Henan's delta from 0.0055 to 0.0042 in
two of three generated groups, at 2.3x the solve time."""

SCREEN_LIMIT = 100_000
"""Groups with at most this many allowed pools are checked by listing them
(pool_bounds.ListedPools: every bound at once, no MILP); larger ones by the
bound's MILP. Listing 100,000 connected subsets takes a few seconds, once."""

SCREEN_PRICINGS = 100
"""Pools priced exactly per listed exact check (in decreasing order of bound)."""

ARTIFICIAL_RATE = -10.0
"""Rate of a county's artificial column: far below any real rate (rates lie in
[0, 1]), so the LP uses it only when no real cover exists."""

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
    stopped: str | None = None       # why generation stopped before converging
    master_lp_value: float | None = None
    lagrangian_bound: float | None = None
    listed_lp_value: float | None = None   # the master LP with listed pools at their caps (a bound)
    bound_method: str = ""
    groups: list[GroupLog] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "converged": self.converged, "stopped": self.stopped,
                "master_lp_value": self.master_lp_value, "lagrangian_bound": self.lagrangian_bound,
                "listed_lp_value": self.listed_lp_value,
                "bound_method": self.bound_method, "groups": [g.to_dict() for g in self.groups]}


@dataclass
class GeneratedColumns:
    """Output of `generate_columns`: every candidate priced (for diagnosis), the
    admissible ones in the master (the MILP's columns), the valid bound and the log."""

    candidates: list[Candidate]
    columns: list[Candidate]
    bound: float | None
    log: GenerationLog


class ObjectiveScale:
    """Linear objectives other than the mean rate in the master's rate units:
    a pool's value w_P t_P / D is N_P (s_P t_P) / N with s_P = w_P N / (N_P D),
    so the duals, reduced rates and the Lagrangian bound keep their form with
    t_P replaced by s_P t_P (pooling.economics.objectives). The exact check
    bounds s_P by a constant per group (`cap`)."""

    def __init__(self, instance: Instance, spec: Spec):
        self.kind = spec.objective.kind
        self.instance = instance
        self.linear = self.kind in LINEAR_OBJECTIVES
        self.nominal = self.kind == MEAN_RATE or not self.linear
        self.people = instance.total_enrollees
        self.denominator = objective_denominator(self.kind, instance, instance.ids) if not self.nominal else 0.0

    def rate(self, candidate: Candidate, rate: float) -> float:
        if self.nominal:
            return rate
        return rate * candidate.column.objective_weight * self.people / (candidate.pricing.enrollees
                                                                          * self.denominator)

    def weights(self, members: tuple[str, ...]) -> ObjectiveWeights:
        """Per-county bounds on s_P (pool_bounds.ObjectiveWeights) valid for
        every pool P that is a proper subset of the group `members` (the whole
        group is priced exactly instead). A network only grows with the pool (a
        place is in network when all its approvers are members), so a member
        c's eligible cost E[Y_c,P] is at most its cost in g - {d} for some
        d != c, the largest of which bounds it. Mean effective rate: s_P is the
        enrollee-weighted mean of e_c,P <= that share. Coverage: s_P r*_P N_P =
        r*_P E[Y_P] N / D <= B_P N / (kappa D), so the budget weight is c's
        stand-alone cost (N / D) / N_c summed against E_lo(P) exactly, and at
        the top rate s_P <= the enrollee-weighted mean of the bounded costs."""
        n = len(members)
        if self.nominal:
            return ObjectiveWeights.nominal(n)
        group = frozenset(members)
        pools = [group - {d} for d in members] if n > 1 else [group]
        counties = [self.instance.county(c) for c in members]
        largest = [max((care_in_pool(self.instance, county, pool) for pool in pools if county.id in pool),
                       key=lambda care: care.eligible) for county in counties]
        if self.kind == EFFECTIVE_COVERAGE:
            per_person = self.people / self.denominator
            alone = [care_in_pool(self.instance, county, frozenset([county.id])) for county in counties]
            return ObjectiveWeights(np.array([a.eligible / a.enrollees * per_person for a in alone]),
                                    np.array([c.eligible / c.enrollees * per_person for c in largest]))
        shares = np.array([c.effective_share for c in largest])
        alone = np.array([care_in_pool(self.instance, county, frozenset([county.id])).effective_share
                          for county in counties])
        totals = np.array([c.total for c in largest])
        return ObjectiveWeights(shares, shares, effective_box=(totals, np.minimum(alone, shares), shares))


class _Master:
    """The restricted master LP over the current columns (module docstring, 1)."""

    def __init__(self, instance: Instance, spec: Spec):
        self.ids = tuple(sorted(instance.ids))
        self.row = {cid: i for i, cid in enumerate(self.ids)}
        self.total = instance.total_enrollees
        self.enrollees = np.array([instance.county(c).enrollees for c in self.ids], dtype=float)
        self.spec = spec
        self.columns: dict[frozenset[str], Candidate] = {}
        self.scale = ObjectiveScale(instance, spec)

    def add(self, members: frozenset[str], candidate: Candidate) -> bool:
        if members in self.columns or not candidate.admissible:
            return False
        self.columns[members] = candidate
        return True

    def value(self, candidate: Candidate) -> float:
        return candidate.pricing.enrollees * self.scale.rate(candidate, top_rate(candidate, self.spec)) / self.total

    def solve(self, extra: list[tuple[frozenset[str], float]] = ()
              ) -> tuple[float, np.ndarray, dict[frozenset[str], float]]:
        """(LP value, county duals in rate units rho_c, LP value of y per column),
        with `extra` columns (members, value in the master's units) beside the
        master's own (pools not priced, at an upper bound on their value)."""
        keys = list(self.columns) + [k for k, _ in extra]
        n, m = len(self.ids), len(keys)
        rows = [self.row[c] for key in keys for c in sorted(key)] + list(range(n))
        cols = [j for j, key in enumerate(keys) for _ in key] + list(range(m, m + n))
        a_eq = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, m + n))
        values = np.array([self.value(self.columns[k]) for k in self.columns] + [v for _, v in extra]
                          + list(ARTIFICIAL_RATE * self.enrollees / self.total))
        res = optimize.linprog(-values, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, None), method="highs")
        if res.status != 0:
            raise RuntimeError(f"restricted master LP failed: {res.message}")
        pi = -np.asarray(res.eqlin.marginals)
        rho = pi * self.total / self.enrollees
        return float(-res.fun), rho, {k: float(res.x[j]) for j, k in enumerate(keys)}


class _GroupSearch:
    """Pricing in one group: heuristic local search, and the bound-guided exact
    check (module docstring, 2 and 4)."""

    def __init__(self, instance: Instance, spec: Spec, group: PoolGroup, maker: CandidateMaker,
                 cache: dict[frozenset[str], Candidate], deadline: Deadline | None = None):
        self.instance, self.spec, self.group, self.maker, self.cache = instance, spec, group, maker, cache
        self.econ = GroupEconomics(instance, spec, group, deadline)
        rules = spec.pooling
        self._largest = min(len(group.members), rules.max_counties or len(group.members))
        self._capped = spec.solvency.measure == "cvar" and self._largest >= 2   # CVaR: U(P) < r_max
        self._bands: list[tuple[int, int, float]] | None = None
        self.priced: set[frozenset[str]] = set()
        self.scale = ObjectiveScale(instance, spec)
        self.weights = self.scale.weights(group.members)
        position = {c: i for i, c in enumerate(self.econ.ids)}
        edges = {(position[c], position[d]) for c in self.econ.ids for d in instance.county(c).adjacent
                 if d in position and position[c] < position[d]}
        self.edges = tuple(sorted(edges)) if rules.contiguous else None   # the bound's MILP: connected pools only
        self.certified: tuple[tuple[float, ...], float] | None = None   # (duals, delta) of the last check
        self.stopped_early = False   # the time limit cut an exact check short (its bound is valid, looser)
        self._listing: ListedPools | bool | None = None   # False: too many pools to list (use the MILP)

    @property
    def kappa_bands(self) -> list[tuple[int, int, float]] | None:
        """The bound's kappa per band of pool sizes (pool_bounds.kappa_bands),
        or None without a cap below r_max; computed when first needed (the
        heuristic never needs them, a listed group neither; each new kappa
        takes up to a second, and the deadline stops them: BoundTimeLimit)."""
        if self._capped and self._bands is None:
            self._bands = kappa_bands(self.instance, self.group.members, self.spec.solvency.level, 2,
                                      self._largest, self.econ.deadline)
        return self._bands

    def navigable(self, members: frozenset[str]) -> bool:
        """Within max_counties and connected when required: the search moves
        through these (pools below min_enrollees included, else a search from
        a small county could not grow)."""
        rules = self.spec.pooling
        if rules.max_counties is not None and len(members) > rules.max_counties:
            return False
        return not rules.contiguous or is_connected(self.instance, members)

    def allowed(self, members: frozenset[str]) -> bool:
        """A candidate pool under every pooling rule."""
        enrollees = sum(self.instance.county(c).enrollees for c in members)
        return enrollees >= self.spec.pooling.min_enrollees and self.navigable(members)

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
        return self.scale.rate(cand, top_rate(cand, self.spec)) - _mean_rate_of(self.instance, sorted(members), rho)

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
        return [p for p in out if self.navigable(p)]

    def _proxy(self, members: frozenset[str], load: float, rho: dict[str, float]) -> float:
        expected = self.econ.expected_cost(members)
        rate = self.spec.rates.max if expected <= 0 else min(
            self.spec.rates.max, self.econ.budget(members) / (load * expected))
        return rate - _mean_rate_of(self.instance, sorted(members), rho)

    def _score(self, members: frozenset[str], rho: dict[str, float]) -> float:
        """Reduced rate with r*_P in place of the top admissible rate: defined for
        inadmissible pools too, so the search can pass through them."""
        cand = self.candidate(members)
        return self.scale.rate(cand, cand.column.max_rate) - _mean_rate_of(self.instance, sorted(members), rho)

    def search(self, starts: list[frozenset[str]], rho: dict[str, float]) -> dict[frozenset[str], float]:
        """Pools with a positive reduced rate found by steepest ascent (on `_score`)
        from each start; a start's climb stops at a local maximum."""
        found: dict[frozenset[str], float] = {}
        for start in starts:
            if passed(self.econ.deadline):   # the caller stops the rounds
                break
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
                    if rr is not None and rr > REDUCED_COST_TOLERANCE and self.allowed(pool):
                        found[pool] = rr
                    score = self._score(pool, rho)
                    if score > best_score + 1e-12:
                        best, best_score = pool, score
                if best is None:
                    break
                current, current_score = best, best_score
        return found


    def exact_check(self, rho: dict[str, float], *, stop_at_improving: bool) -> tuple[float, dict]:
        """(delta, improving pools): no allowed pool of the group has a reduced
        rate above delta. Single counties are priced exactly; for larger pools
        the bound U(P) is maximised, its maximiser priced exactly and cut off,
        up to EXACT_CHECK_CUTS times (module docstring, 4)."""
        found: dict[frozenset[str], float] = {}
        best = -math.inf
        for cid in self.group.members:
            single = frozenset([cid])
            if self.allowed(single):
                rr = self.reduced_rate(single, rho)
                best = best if rr is None else max(best, rr)
        whole = frozenset(self.group.members)
        if len(whole) > 1 and self.allowed(whole):   # priced exactly: the weights hold for proper subsets
            rr = self.reduced_rate(whole, rho)
            best = best if rr is None else max(best, rr)
        listing = self._listed()
        if listing:
            return self._screened(listing, rho, best, found, stop_at_improving)
        rules = self.spec.pooling
        duals = np.array([rho[c] for c in self.econ.ids])
        limits = {"top": self.spec.rates.max, "max_counties": rules.max_counties,
                  "min_enrollees": rules.min_enrollees, "weights": self.weights}
        if self.kappa_bands is None:   # no cap below r_max: nothing to price or cut
            return max(best, rate_bound(self.econ, duals, kappa=None, **limits)), found
        program = BandedProgram.build(self.econ, duals, bands=self.kappa_bands, edges=self.edges, top=limits["top"],
                                      min_enrollees=rules.min_enrollees, weights=self.weights)
        if program is None:
            return best, found
        if len(whole) > 1:
            program.cut(np.ones(len(whole)))
        proven = None   # a bound over every pool once one maximisation over all bands is done
        try:
            for _ in range(EXACT_CHECK_CUTS):
                target = max(best, 0.0) + BOUND_RESOLUTION   # can any pool beat the best seen?
                value, x = program.maximise(target)   # cut the maximiser itself: the bound falls fastest
                proven = max(value, best)
                if x is None or value <= target:
                    return proven, found   # no pool can beat the target: proven
                members = program.members(x)
                if self.allowed(members):
                    rr = self.reduced_rate(members, rho)
                    if rr is not None:
                        best = max(best, rr)
                        if rr > REDUCED_COST_TOLERANCE:
                            found[members] = rr
                            if stop_at_improving and len(found) >= NEW_COLUMNS_PER_GROUP:
                                return max(value, best), found
                program.cut(x)
            return max(program.maximise(max(best, 0.0) + BOUND_RESOLUTION)[0], best), found
        except BoundTimeLimit:
            if proven is None:
                raise
            self.stopped_early = True   # the bound holds, only looser than the cuts would make it
            return max(proven, best), found

    def _listed(self) -> ListedPools | None:
        """Every allowed pool of two or more counties short of the whole group,
        listed once, when there are at most SCREEN_LIMIT (CVaR only: other
        measures have no cap to screen with)."""
        if self._listing is None:
            listing = False
            if self._capped:
                subsets = group_subsets(self.instance, self.spec, self.group, SCREEN_LIMIT)
                whole = len(self.group.members)
                pools = [p for p in subsets or () if 1 < len(p) < whole]
                if subsets is not None and pools:   # BoundTimeLimit past the deadline: listed later, if asked
                    listing = ListedPools(self.econ, pools, kappa_of(self.instance, self.spec.solvency.level,
                                                                     self.econ.deadline))
            self._listing = listing
        return self._listing or None

    def listed_delta(self, rho: dict[str, float]) -> float:
        """Without pricing: the largest reduced rate any pool of the group can
        have, from the listed pools' caps (exact values where priced), the
        single counties and the whole group."""
        listing = self._listed()
        duals = np.array([rho[c] for c in self.econ.ids])
        values = listing.values(duals, self.weights, self.spec.rates.max)
        best = -math.inf
        for row, members in enumerate(listing.pools):
            if members in self.priced:
                rr = self.reduced_rate(members, rho)
                values[row] = -math.inf if rr is None else rr
        for members in [frozenset([c]) for c in self.group.members] + [frozenset(self.group.members)]:
            if members in self.priced and self.allowed(members):
                rr = self.reduced_rate(members, rho)
                best = best if rr is None else max(best, rr)
        return max(best, float(values.max()) if len(values) else -math.inf)

    def _screened(self, listing: ListedPools, rho: dict[str, float], best: float, found: dict,
                  stop_at_improving: bool) -> tuple[float, dict]:
        """The exact check over listed pools: each pool's bound at once; pools
        priced so far count at their exact reduced rate; the others are priced
        in decreasing order of bound until the next bound cannot beat the best
        exact value (a proof), or SCREEN_PRICINGS were priced (the next bound
        is then delta)."""
        duals = np.array([rho[c] for c in self.econ.ids])
        values = listing.values(duals, self.weights, self.spec.rates.max)
        for row, members in enumerate(listing.pools):
            if members in self.priced:
                rr = self.reduced_rate(members, rho)
                best = best if rr is None else max(best, rr)
                values[row] = -math.inf
        priced = 0
        for row in np.argsort(-values, kind="stable"):
            bound = float(values[row])
            if (bound <= max(best, 0.0) + BOUND_RESOLUTION or priced >= SCREEN_PRICINGS
                    or (stop_at_improving and len(found) >= NEW_COLUMNS_PER_GROUP)):
                return max(best, bound), found
            if passed(self.econ.deadline):
                raise BoundTimeLimit
            members = listing.pools[row]
            rr = self.reduced_rate(members, rho)
            priced += 1
            if rr is not None:
                best = max(best, rr)
                if rr > REDUCED_COST_TOLERANCE:
                    found[members] = rr
        return best, found


def generate_columns(instance: Instance, spec: Spec, plan: list[tuple[PoolGroup, list | None]],
                     maker: CandidateMaker, deadline: Deadline | None = None,
                     progress: ExecutionPlan | None = None) -> GeneratedColumns:
    """Columns for the MILP: every allowed pool of the groups with a subset list
    (enumerated) and generated columns for the others (module docstring).
    Past `deadline` pricing and the rounds stop and the bound is the last one
    completed, or the trivial one (rates.max) when none was.
    `progress`: a bar of rounds (out of MAX_ROUNDS, the most there can be) with
    the master LP's value, groups still searching and pools priced."""
    with ProgressBar(progress, MAX_ROUNDS, label="generation rounds") as bar:
        return _generate(instance, spec, plan, maker, deadline, bar)


def _generate(instance: Instance, spec: Spec, plan: list[tuple[PoolGroup, list | None]],
              maker: CandidateMaker, deadline: Deadline | None, bar: ProgressBar) -> GeneratedColumns:
    master = _Master(instance, spec)
    cache: dict[frozenset[str], Candidate] = {}
    log = GenerationLog()
    searches: dict[str, _GroupSearch] = {}
    for group, subsets in plan:
        if subsets is not None:
            log.groups.append(GroupLog(group.label, len(group.members), "enumerated"))
            for members in subsets:
                if passed(deadline):   # some counties may be left without a column: no plan
                    log.stopped = "time limit"
                    break
                cache[members] = maker.make(members)
                master.add(members, cache[members])
            continue
        log.groups.append(GroupLog(group.label, len(group.members), "generated"))
        search = searches[group.label] = _GroupSearch(instance, spec, group, maker, cache, deadline)
        seeds = [frozenset([c]) for c in group.members] + [frozenset(group.members)]
        for members in seeds:
            if passed(deadline):
                log.stopped = "time limit"
                break
            if search.allowed(members):
                master.add(members, search.candidate(members))

    # A pool lies in one group: the group of its smallest member.
    group_of = {cid: group.label for group, _ in plan for cid in group.members}
    active = set(searches)
    history = []
    while True:
        value, rho_array, y = master.solve()
        rho = dict(zip(master.ids, rho_array))
        history.append(value)
        if not active:
            break
        if log.rounds >= MAX_ROUNDS:
            log.stopped = f"round limit {MAX_ROUNDS}"
            break
        if log.stopped == "time limit" or passed(deadline):
            log.stopped = "time limit"
            break
        if len(history) > TAILING_OFF_ROUNDS and value - history[-1 - TAILING_OFF_ROUNDS] < TAILING_OFF_GAIN:
            log.stopped = (f"tailing off: the LP gained < {TAILING_OFF_GAIN:g} in the last "
                           f"{TAILING_OFF_ROUNDS} rounds")
            break
        log.rounds += 1
        support_of: dict[str, list[frozenset[str]]] = {}
        for k, v in y.items():
            if v > 1e-9:
                support_of.setdefault(group_of[min(k)], []).append(k)
        for label in sorted(active):
            if passed(deadline):   # the rounds stop at the next check
                break
            search = searches[label]
            support = sorted(support_of.get(label, []), key=sorted)
            starts = support + [frozenset([c]) for c in search.group.members
                                if frozenset([c]) not in support]
            found = search.search(starts, rho)
            if not found:   # the heuristic is exhausted: bound-guided exact pricing
                try:
                    delta, found = search.exact_check(rho, stop_at_improving=True)
                except BoundTimeLimit:
                    log.stopped = "time limit"
                    break
                if not found:
                    search.certified = (tuple(rho[c] for c in search.group.members), delta)
            ranked = sorted(found.items(), key=lambda kv: (-kv[1], sorted(kv[0])))
            added = sum(master.add(k, cache[k]) for k, _ in ranked[:NEW_COLUMNS_PER_GROUP])
            if not added:
                active.discard(label)
        bar.update(lp=f"{value:.6f}", searching=len(active), priced=len(cache))
    log.converged = not active
    log.master_lp_value = value

    # The MILP gets every admissible pool priced on the way, not only those the
    # LP took: they cost nothing more and let it combine pools the LP mixed.
    # The master re-solved with them has the same or a higher value and duals
    # that price every one of them (rr <= 0), which tightens the bound. Pools
    # the bound's exact check finds improving (the rounds tailed off before
    # them) enter the same way, and the bound is computed again.
    groups = {grp.label: grp for grp, _ in plan}
    linear = spec.objective.kind in LINEAR_OBJECTIVES
    bound = None   # each round's bound is valid; a later round only tightens it
    try:   # BoundTimeLimit: a kappa or a bound's MILP reached the deadline
        if linear and log.stopped != "time limit":
            _price_listed_support(master, searches, cache, deadline)
        for _ in range(CERTIFY_ROUNDS):
            _add_priced(master, searches, cache)
            value, rho_array, _ = master.solve()
            log.master_lp_value = value
            if log.stopped == "time limit" or passed(deadline):
                log.stopped = "time limit"
                break
            if linear and any(search._listed() is not None for search in searches.values()):
                # the listed pools not priced enter at their caps: the duals then cover them
                value, rho_array, _ = _solve_with_caps(master, searches)
                log.listed_lp_value = value
            round_bound, improved = _bound(instance, spec, master, groups, group_of, searches, log, value,
                                           rho_array)
            bound = round_bound if bound is None else min(bound, round_bound)
            if any(search.stopped_early for search in searches.values()):
                log.stopped = "time limit"
                log.bound_method += ("; the time limit cut an exact check short: its group's bound is the "
                                     "largest any remaining pool can reach, before the cuts that would tighten it")
                break
            if not improved:
                break
    except BoundTimeLimit:
        log.stopped = "time limit"
    if bound is None:   # only the time limit breaks off before the first round's bound
        log.bound_method = "trivial: the time limit struck before the bound over every pool was computed"
        bound = 0.0 if spec.objective.kind == "min_rate_dispersion" else spec.rates.max
    _add_priced(master, searches, cache)
    columns = list(master.columns.values())
    column_counts = Counter(group_of[min(k)] for k in master.columns)
    for g in log.groups:
        g.columns = column_counts[g.label]
        if g.label in searches:
            g.pools_priced = len(searches[g.label].priced)
    # Candidates (for diagnosis) are allowed pools only: the search also prices
    # pools below min_enrollees on its way.
    passed_through = {k for search in searches.values() for k in search.priced if not search.allowed(k)}
    candidates = [c for k, c in cache.items() if k not in passed_through]
    return GeneratedColumns(candidates=candidates, columns=columns, bound=bound, log=log)


CAP_COLUMNS_PER_ROUND = 2000
"""Capped columns (listed pools not priced) added per LP solve in
`_solve_with_caps`, the best reduced rates first."""


def _solve_with_caps(master: _Master, searches: dict[str, _GroupSearch]
                     ) -> tuple[float, np.ndarray, list[frozenset[str]]]:
    """The master LP with every listed pool not yet priced as a column at its
    cap (an upper bound on its value, so the LP's value bounds the LP over
    every listed pool), solved by adding capped columns with a positive
    reduced rate at the current duals (all of them checked at once from the
    listing's sparse sums) until none has one. Returns (value, duals, the
    capped pools the solution uses)."""
    listed = [search for _, search in sorted(searches.items()) if search._listed() is not None]
    value, rho, y = master.solve()
    if not listed:
        return value, rho, []
    top = master.spec.rates.max
    tables = []
    for search in listed:
        listing = search._listed()
        caps = listing.caps(search.weights, top)
        caps[[members in search.priced for members in listing.pools]] = -math.inf
        tables.append((search, listing, caps))
    active: dict[frozenset[str], float] = {}
    while True:
        duals = dict(zip(master.ids, rho))
        entering = []
        for search, listing, caps in tables:
            mean_dual = listing.matrix @ (search.econ.enrollees * np.array([duals[c] for c in search.econ.ids]))
            reduced = caps - mean_dual / listing.people
            for row in np.flatnonzero(reduced > REDUCED_COST_TOLERANCE):
                members = listing.pools[row]
                if members not in active:
                    entering.append((-float(reduced[row]), len(entering), members,
                                     float(listing.people[row] * caps[row] / master.total)))
        if not entering:
            return value, rho, sorted((k for k in active if y.get(k, 0.0) > 1e-9), key=sorted)
        for _, _, members, column_value in sorted(entering)[:CAP_COLUMNS_PER_ROUND]:
            active[members] = column_value
        value, rho, y = master.solve(list(active.items()))


def _price_listed_support(master: _Master, searches: dict[str, _GroupSearch], cache: dict,
                          deadline: Deadline | None) -> None:
    """For groups whose pools are listed: price the capped pools the LP with
    caps uses (`_solve_with_caps`) and repeat until it uses none (its value
    is then the LP over every pool) or LISTED_ROUNDS."""
    owner = {c: search for search in searches.values() if search._listed() is not None
             for c in search.group.members}
    for _ in range(LISTED_ROUNDS):
        if not owner or passed(deadline):
            return
        _, _, used = _solve_with_caps(master, searches)
        if not used:
            return
        for members in used:
            owner[min(members)].candidate(members)
        _add_priced(master, searches, cache)


def _add_priced(master: _Master, searches: dict[str, _GroupSearch], cache: dict[frozenset[str], Candidate]) -> int:
    """Put every allowed pool priced so far in the master; the number added."""
    added = 0
    for search in searches.values():
        for members in sorted(search.priced, key=lambda k: (len(k), sorted(k))):
            if search.allowed(members):
                added += master.add(members, cache[members])
    return added


def _bound(instance: Instance, spec: Spec, master: _Master, groups: dict[str, PoolGroup],
           group_of: dict[str, str], searches: dict[str, _GroupSearch], log: GenerationLog,
           lp_value: float, rho_array: np.ndarray) -> tuple[float, bool]:
    """(a bound on the spec's objective valid over every allowed pool (module
    docstring), whether an exact check found a pool that improves the master LP)."""
    kind = spec.objective.kind
    if kind == "min_rate_dispersion":
        log.bound_method = "trivial: a dispersion is >= 0 (no finer bound over pools not generated)"
        return 0.0, False
    cap = ("r*_P <= B_P / (E[Y_P] kappa_k), kappa_k = CVaR of the rate multiplier given the shocks with the "
           "prefecture and county shocks spread evenly over as many units as a pool of k counties can hold "
           "(convex order); connected pools only when contiguous" if spec.solvency.measure == "cvar"
           else f"r*_P <= rates.max only (no cap for measure {spec.solvency.measure})")
    mean_kind = kind in LINEAR_OBJECTIVES
    rho = dict(zip(master.ids, rho_array)) if mean_kind else dict.fromkeys(master.ids, 0.0)
    columns_of: dict[str, list[tuple[frozenset[str], Candidate]]] = {}
    for k, c in master.columns.items():
        columns_of.setdefault(group_of[min(k)], []).append((k, c))
    best: dict[str, float] = {}      # per group: max over its pools of t_P - avg rho(P)
    improved = False                 # an exact check found a pool that improves the master LP
    for g in log.groups:
        exact = [master.scale.rate(c, top_rate(c, spec)) - _mean_rate_of(instance, c.pricing.counties, rho)
                 for k, c in columns_of.get(g.label, []) if g.method == "enumerated" or len(k) == 1]
        if g.method == "generated":
            search = searches[g.label]
            duals = tuple(rho[c] for c in search.group.members)
            if search.certified is not None and search.certified[0] == duals:
                exact.append(search.certified[1])
            elif mean_kind and search._listed() is not None:
                exact.append(search.listed_delta(rho))
            else:
                delta, found = search.exact_check(rho, stop_at_improving=False)
                exact.append(delta)
                improved = improved or (mean_kind and bool(found))
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
        return min(spec.rates.max, total), improved
    log.bound_method = f"max_min_rate <= min over groups of the largest rate any of its pools can pay ({cap})"
    return min(spec.rates.max, min(best.values())), False


def _mean_rate_of(instance: Instance, members, rho: dict[str, float]) -> float:
    people = [instance.county(c).enrollees for c in members]
    return math.fsum(n * rho[c] for n, c in zip(people, members)) / sum(people)
