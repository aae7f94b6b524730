"""Pricing inside one pooling group for column generation
(pooling.optimise.generation, module docstring 2-5): the heuristic local
search over add/drop moves, and the exact check over every allowed pool by the
bound of pooling.economics.pool_bounds (listed pools or the bound's MILP)."""

from __future__ import annotations

import math

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.pool_bounds import (
    BOUND_RESOLUTION,
    BandedProgram,
    BoundTimeLimit,
    ListedPools,
    kappa_bands,
    kappa_of,
    rate_bound,
)
from pooling.economics.uncertain import bound_economics, bound_instances
from pooling.execution.deadline import Deadline, passed
from pooling.optimise.candidates import PoolGroup, group_subsets, is_connected
from pooling.optimise.columns import Candidate, CandidateMaker, top_rate
from pooling.optimise.master import ObjectiveScale

REDUCED_COST_TOLERANCE = 1e-9
"""A pool enters the master when its reduced rate exceeds this (rate units)."""

EXACT_PER_STEP = 3
"""Neighbours priced exactly per local-search step (the best by the proxy)."""

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

NEW_COLUMNS_PER_GROUP = 10
"""Most improving pools added per group and round (the best reduced rates)."""


class GroupSearch:
    """Pricing in one group: heuristic local search, and the bound-guided exact
    check (module docstring, 2 and 4)."""

    def __init__(self, instance: Instance, spec: Spec, group: PoolGroup, maker: CandidateMaker,
                 cache: dict[frozenset[str], Candidate], deadline: Deadline | None = None):
        self.instance, self.spec, self.group, self.maker, self.cache = instance, spec, group, maker, cache
        self.econ = bound_economics(instance, spec, group, deadline)   # [uncertainty]: valid for its method
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
            per_instance = [kappa_bands(inst, self.group.members, self.spec.solvency.level, 2, self._largest,
                                        self.econ.deadline)
                            for inst in bound_instances(self.instance, self.spec, self.group)]
            self._bands = [(low, high, min(b[k][2] for b in per_instance))   # predictive: the smallest kappa
                           for k, (low, high, _) in enumerate(per_instance[0])]
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
        return self.scale.rate(cand, top_rate(cand, self.spec)) - mean_rate_of(self.instance, sorted(members), rho)

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
        return rate - mean_rate_of(self.instance, sorted(members), rho)

    def _score(self, members: frozenset[str], rho: dict[str, float]) -> float:
        """Reduced rate with r*_P in place of the top admissible rate: defined for
        inadmissible pools too, so the search can pass through them."""
        cand = self.candidate(members)
        return self.scale.rate(cand, cand.column.max_rate) - mean_rate_of(self.instance, sorted(members), rho)

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
                    kappas = [kappa_of(inst, self.spec.solvency.level, self.econ.deadline)
                              for inst in bound_instances(self.instance, self.spec, self.group)]
                    listing = ListedPools(self.econ, pools, lambda c, p: min(k(c, p) for k in kappas))
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


def mean_rate_of(instance: Instance, members, rho: dict[str, float]) -> float:
    """The enrollee-weighted mean of the county duals rho over `members` (rate units)."""
    people = [instance.county(c).enrollees for c in members]
    return math.fsum(n * rho[c] for n, c in zip(people, members)) / sum(people)
