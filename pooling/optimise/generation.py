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

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.objectives import LINEAR_OBJECTIVES
from pooling.economics.pool_bounds import (
    BoundTimeLimit,
)
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.candidates import PoolGroup
from pooling.optimise.columns import Candidate, CandidateMaker, top_rate
from pooling.optimise.group_search import (
    NEW_COLUMNS_PER_GROUP,
    REDUCED_COST_TOLERANCE,
    GroupSearch,
    mean_rate_of,
)
from pooling.optimise.master import (
    GeneratedColumns,
    GenerationLog,
    GroupLog,
    RestrictedMaster,
)

MAX_ROUNDS = 60
"""Pricing rounds before stopping (stated in the result when reached)."""

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
    master = RestrictedMaster(instance, spec)
    cache: dict[frozenset[str], Candidate] = {}
    log = GenerationLog()
    searches: dict[str, GroupSearch] = {}
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
        search = searches[group.label] = GroupSearch(instance, spec, group, maker, cache, deadline)
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


def _solve_with_caps(master: RestrictedMaster, searches: dict[str, GroupSearch]
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


def _price_listed_support(master: RestrictedMaster, searches: dict[str, GroupSearch], cache: dict,
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


def _add_priced(master: RestrictedMaster, searches: dict[str, GroupSearch],
                cache: dict[frozenset[str], Candidate]) -> int:
    """Put every allowed pool priced so far in the master; the number added."""
    added = 0
    for search in searches.values():
        for members in sorted(search.priced, key=lambda k: (len(k), sorted(k))):
            if search.allowed(members):
                added += master.add(members, cache[members])
    return added


def _bound(instance: Instance, spec: Spec, master: RestrictedMaster, groups: dict[str, PoolGroup],
           group_of: dict[str, str], searches: dict[str, GroupSearch], log: GenerationLog,
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
        exact = [master.scale.rate(c, top_rate(c, spec)) - mean_rate_of(instance, c.pricing.counties, rho)
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
