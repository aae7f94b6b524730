"""Brute-force oracle: every set partition of <= 10 counties (DESIGN §Formulations, 3).

Independent of the candidate enumeration and the MILP: it walks all set
partitions (restricted growth strings; Bell(10) = 115,975), checks each block
against the spec's pooling rules with its own code, and keeps the best plan
with every block admissible. Each pool's rate interval [L_P, r*_P] is
derived here from the rule definitions; for a fixed partition the best rates
under the rate gap, menu and objective come from a small LP/MILP solved by
scipy's HiGHS with pairwise gap constraints (a different model from the
MILP's group variables). Pool prices come from the shared `PoolPricer`
(pricing has its own reference tests); the oracle checks the combinatorics
and the rules.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import contract_variants
from pooling.economics.objectives import LINEAR_OBJECTIVES, MEAN_RATE, objective_denominator, pool_weight
from pooling.economics.pools import PoolPricer

MAX_BRUTE_FORCE_COUNTIES = 10


@dataclass(frozen=True)
class BruteForceResult:
    objective: float | None          # best primary objective, None if infeasible
    plan: tuple[tuple[str, ...], ...] | None
    partitions_checked: int
    mean_rate: float | None = None   # mean rate of the best plan (lexicographic tie-break)
    contracts: tuple[tuple[str, ...], ...] | None = None   # options each pool of the plan takes


def set_partitions(items: list[str]):
    """Yield every set partition of `items` as a list of lists."""
    n = len(items)
    if n == 0:
        yield []
        return
    codes = [0] * n

    def recurse(i: int, blocks: int):
        if i == n:
            groups: list[list[str]] = [[] for _ in range(blocks)]
            for item, code in zip(items, codes):
                groups[code].append(item)
            yield groups
            return
        for code in range(blocks + 1):
            codes[i] = code
            yield from recurse(i + 1, max(blocks, code + 1))

    codes[0] = 0
    yield from recurse(1, 1)


def _connected(instance: Instance, block: list[str]) -> bool:
    """Union-find over adjacency edges inside the block."""
    parent = {c: c for c in block}

    def find(c):
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for c in block:
        for other in instance.county(c).adjacent:
            if other in parent:
                parent[find(c)] = find(other)
    return len({find(c) for c in block}) == 1


def block_allowed(instance: Instance, spec: Spec, block: list[str]) -> bool:
    rules = spec.pooling
    if rules.scope == "county":
        return len(block) == 1
    prefs = {instance.county(c).prefecture for c in block}
    if rules.scope == "prefecture":
        return len(prefs) == 1 and len(block) == sum(
            1 for c in instance.counties if c.prefecture in prefs)
    if rules.within == "prefecture" and len(prefs) > 1:
        return False
    if rules.within == "province" and len({instance.county(c).province for c in block}) > 1:
        return False
    if rules.max_counties is not None and len(block) > rules.max_counties:
        return False
    if sum(instance.county(c).enrollees for c in block) < rules.min_enrollees:
        return False
    return not rules.contiguous or _connected(instance, block)


def _interval(instance: Instance, spec: Spec, pricing, alone) -> tuple[float, float]:
    """[L_P, r*_P] from the rule definitions, written out independently of rules.py."""
    eq, low = spec.equalisation, spec.rates.min
    if eq.no_county_worse_off:
        for cid in pricing.counties:
            if alone[cid].max_rate >= spec.rates.min:
                low = max(low, alone[cid].max_rate - eq.tolerance)
    if eq.max_cross_subsidy is not None:
        expected = dict(pricing.county_expected_cost)
        for cid in pricing.counties:
            c = instance.county(cid)
            shared = pricing.fixed_costs - math.fsum(instance.county(m).per_capita_costs for m in pricing.counties)
            own_cost = c.per_capita_costs + shared * c.enrollees / pricing.enrollees
            surplus_at_zero = c.enrollees * c.contribution_per_capita - own_cost
            low = max(low, (surplus_at_zero - eq.max_cross_subsidy * c.revenue) / expected[cid])
    if eq.max_expected_surplus is not None:
        low = max(low, (pricing.revenue - pricing.fixed_costs
                        - eq.max_expected_surplus * pricing.revenue) / pricing.expected_cost)
    return max(low, 0.0), pricing.max_rate


def _groups(instance: Instance, spec: Spec, block) -> set:
    scope = spec.equalisation.gap_scope
    if scope == "instance":
        return {"all"}
    return {getattr(instance.county(c), scope) for c in block}


def _best_rates(instance, spec, blocks, intervals, pricer=None, pricings=None):
    """(primary, mean) of the best rates for a fixed partition, or None if none are
    admissible: a small LP (MILP with a menu) by scipy's HiGHS, with pairwise gap
    constraints and a lexicographic second stage for the mean rate."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = len(blocks)
    kind = spec.objective.kind
    step = spec.rates.step
    weights = np.array([sum(instance.county(c).enrollees for c in b) for b in blocks], float)
    weights /= instance.total_enrollees
    # Variables: r_1..r_n, then aux (z for max_min; hi, lo for dispersion), then k_1..k_n (menu).
    n_aux = {"max_min_rate": 1, "min_rate_dispersion": 2}.get(kind, 0)
    n_menu = n if step is not None else 0
    size = n + n_aux + n_menu
    lo = np.zeros(size)
    hi = np.zeros(size)
    lo[:n] = [i[0] for i in intervals]
    hi[:n] = [i[1] + (1e-9 if step is not None else 0.0) for i in intervals]
    lo[n:n + n_aux], hi[n:n + n_aux] = 0.0, 1.0
    rows, row_lo, row_hi = [], [], []

    def row(coeffs, low, high):
        vec = np.zeros(size)
        for idx, val in coeffs:
            vec[idx] += val
        rows.append(vec)
        row_lo.append(low)
        row_hi.append(high)

    gap = spec.equalisation.max_rate_gap
    if gap is not None:
        groups = [_groups(instance, spec, b) for b in blocks]
        for i in range(n):
            for j in range(n):
                if i != j and groups[i] & groups[j]:
                    row([(i, 1.0), (j, -1.0)], -np.inf, gap)
    if kind == "max_min_rate":
        for i in range(n):
            row([(n, 1.0), (i, -1.0)], -np.inf, 0.0)
    if kind == "min_rate_dispersion":
        for i in range(n):
            row([(n, 1.0), (i, -1.0)], 0.0, np.inf)       # hi >= r_i
            row([(n + 1, 1.0), (i, -1.0)], -np.inf, 0.0)  # lo <= r_i
    integrality = np.zeros(size)
    if step is not None:
        for i in range(n):
            k = n + n_aux + i
            lo[k] = math.ceil((intervals[i][0] - spec.rates.min) / step - 1e-9)
            hi[k] = math.floor((intervals[i][1] - spec.rates.min) / step + 1e-9)
            if lo[k] > hi[k]:
                return None
            integrality[k] = 1
            row([(i, 1.0), (k, -step)], spec.rates.min, spec.rates.min)
    if np.any(lo[:n] > hi[:n]):
        return None

    def run(cost, extra=None):
        all_rows, all_lo, all_hi = list(rows), list(row_lo), list(row_hi)
        if extra:
            all_rows.append(extra[0]), all_lo.append(extra[1]), all_hi.append(extra[2])
        cons = [LinearConstraint(np.array(all_rows), all_lo, all_hi)] if all_rows else []
        res = milp(cost, constraints=cons, integrality=integrality, bounds=Bounds(lo, hi))
        return res if res.status == 0 else None

    mean_cost = np.zeros(size)
    mean_cost[:n] = -weights
    if kind == "max_mean_rate":
        res = run(mean_cost)
        return None if res is None else (-res.fun, -res.fun)
    primary = np.zeros(size)
    if kind in LINEAR_OBJECTIVES:
        if pricings is None:
            pricer = pricer if pricer is not None else PoolPricer(instance, spec)
            pricings = [pricer.price(frozenset(b)) for b in blocks]
        total = objective_denominator(kind, instance, instance.ids)
        primary[:n] = [-pool_weight(kind, p) / total for p in pricings]
    elif kind == "max_min_rate":
        primary[n] = -1.0
    else:
        primary[n], primary[n + 1] = 1.0, -1.0
    first = run(primary)
    if first is None:
        return None
    value = first.fun
    second = run(mean_cost, (primary, -np.inf, value + 1e-9))
    mean = -second.fun if second is not None else float(weights @ first.x[:n])
    return (value if kind == "min_rate_dispersion" else -value), mean


TIE_TOLERANCE = 1e-9
"""Primary objectives within this are ties, broken by the mean rate."""


def _better(value, mean, best, best_mean, minimise: bool) -> bool:
    if best is None:
        return True
    gain = (best - value) if minimise else (value - best)
    if abs(gain) > TIE_TOLERANCE:
        return gain > 0
    return mean > best_mean + TIE_TOLERANCE


def brute_force(instance: Instance, spec: Spec, pricer: PoolPricer | None = None) -> BruteForceResult:
    """Best plan over all set partitions under the spec's rules and objective.
    `objective` is the primary objective (mean rate, minimum rate or dispersion);
    ties are broken by the mean rate, as in `solve`."""
    ids = sorted(instance.ids)
    if len(ids) > MAX_BRUTE_FORCE_COUNTIES:
        raise ValueError(f"brute force handles at most {MAX_BRUTE_FORCE_COUNTIES} counties, got {len(ids)}")
    pricer = pricer if pricer is not None else PoolPricer(instance, spec)
    alone = {cid: pricer.price([cid]) for cid in ids} if spec.equalisation.no_county_worse_off else {}
    kind = spec.objective.kind
    simple = (spec.equalisation.max_rate_gap is None and spec.rates.step is None
              and kind in LINEAR_OBJECTIVES)
    total = objective_denominator(kind, instance, ids)
    minimise = spec.objective.kind == "min_rate_dispersion"
    # Per allowed block: its admissible (contract options, pricing, [L_P, r*_P]) variants.
    variants: dict[frozenset, list | None] = {}
    best, best_mean, best_plan, best_contracts, checked = None, None, None, None, 0
    for partition in set_partitions(ids):
        checked += 1
        options = []
        for block in partition:
            key = frozenset(block)
            if key not in variants:
                found = []
                if block_allowed(instance, spec, block):
                    for contracts in (contract_variants(instance, key) if instance.contract_options else [()]):
                        pricing = pricer.price(key, contracts)
                        span = _interval(instance, spec, pricing, alone)
                        if span[0] <= span[1]:
                            found.append((contracts, pricing, span))
                variants[key] = found or None
            if variants[key] is None:
                break
            options.append(variants[key])
        else:
            for choice in itertools.product(*options):
                pricings = [p for _, p, _ in choice]
                spans = [s for _, _, s in choice]
                if simple:
                    mean = math.fsum(p.enrollees * s[1] for p, s in zip(pricings, spans)) / instance.total_enrollees
                    value = mean if kind == MEAN_RATE else math.fsum(
                        pool_weight(kind, p) * s[1] for p, s in zip(pricings, spans)) / total
                else:
                    found = _best_rates(instance, spec, partition, spans, pricings=pricings)
                    if found is None:
                        continue
                    value, mean = found
                if _better(value, mean, best, best_mean, minimise):
                    best, best_mean = value, mean
                    best_plan = tuple(tuple(b) for b in partition)
                    best_contracts = tuple(c for c, _, _ in choice)
    return BruteForceResult(objective=best, plan=best_plan, partitions_checked=checked, mean_rate=best_mean,
                            contracts=best_contracts if best_plan is not None else None)
