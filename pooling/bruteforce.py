"""Brute-force oracle: every set partition of <= 10 counties (DESIGN §Formulations, 3).

Independent of the candidate enumeration and the MILP: it walks all set
partitions (restricted growth strings; Bell(10) = 115,975), checks each block
against the spec's pooling rules with its own code, and keeps the best plan
with every block solvent at rates.min. Pool prices come from the shared
`PoolPricer` (pricing has its own reference tests); the oracle checks the
combinatorics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pooling.instance import Instance
from pooling.pools import PoolPricer
from pooling.spec import Spec

MAX_BRUTE_FORCE_COUNTIES = 10


@dataclass(frozen=True)
class BruteForceResult:
    objective: float | None          # best enrollee-weighted mean rate, None if infeasible
    plan: tuple[tuple[str, ...], ...] | None
    partitions_checked: int


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


def brute_force(instance: Instance, spec: Spec, pricer: PoolPricer | None = None) -> BruteForceResult:
    """Best plan over all set partitions, objective max_mean_rate."""
    ids = sorted(instance.ids)
    if len(ids) > MAX_BRUTE_FORCE_COUNTIES:
        raise ValueError(f"brute force handles at most {MAX_BRUTE_FORCE_COUNTIES} counties, got {len(ids)}")
    pricer = pricer or PoolPricer(instance, spec)
    total = instance.total_enrollees
    allowed: dict[frozenset, float | None] = {}
    best, best_plan, checked = None, None, 0
    for partition in set_partitions(ids):
        checked += 1
        value_parts = []
        for block in partition:
            key = frozenset(block)
            if key not in allowed:
                ok = block_allowed(instance, spec, block)
                pricing = pricer.price(key) if ok else None
                allowed[key] = pricing.enrollees * pricing.max_rate if ok and pricing.usable else None
            if allowed[key] is None:
                break
            value_parts.append(allowed[key])
        else:
            value = math.fsum(value_parts) / total
            if best is None or value > best:
                best, best_plan = value, tuple(tuple(b) for b in partition)
    return BruteForceResult(objective=best, plan=best_plan, partitions_checked=checked)
