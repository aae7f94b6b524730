"""Candidate pools: the columns of the set-partitioning model.

Scope "county" and "prefecture" are fixed partitions (the baselines); scope
"optimise" works group by group (prefecture, province or the whole
instance): every allowed subset of a group is a candidate, connected in the
adjacency graph when `contiguous`, at most `max_counties` counties, at least
`min_enrollees` enrollees. `group_subsets` enumerates one group up to a cap;
`solve` generates columns (pooling.optimise.generation) for groups above its cap, and
`candidate_pools` (the full enumeration) refuses such groups with a clear
message rather than silently truncating them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.errors import InputError

MAX_CANDIDATES = 50_000
"""Refuse enumerations beyond this many pools: pricing them takes minutes."""


def partition_groups(instance: Instance, key: str) -> list[list[str]]:
    """Counties grouped by prefecture, province or all together (key "none")."""
    if key == "none":
        return [list(instance.ids)]
    groups: dict[str, list[str]] = {}
    for county in instance.counties:
        value = county.prefecture if key == "prefecture" else county.province
        if value is None:
            raise InputError(f'{instance.source}: county "{county.id}": province is missing, '
                             f'but the spec groups pools within provinces')
        groups.setdefault(value, []).append(county.id)
    return [groups[g] for g in sorted(groups)]


def is_connected(instance: Instance, members) -> bool:
    """True if `members` induce a connected subgraph of the adjacency graph."""
    members = set(members)
    start = min(members)
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for other in instance.county(node).adjacent:
            if other in members and other not in seen:
                seen.add(other)
                frontier.append(other)
    return seen == members


def _connected_subsets(instance: Instance, group: list[str], limit: int):
    """All connected subsets of `group` with at most `limit` counties, each once.

    Grows each set from its smallest member, adding only larger neighbours
    drawn from an extension list (the ESU scheme), so no set repeats. The
    recursion runs on an explicit stack (a generator per level would pass
    every set up through all the levels above it) and each frame carries the
    set's closed neighbourhood as a bit mask, so nothing is recomputed.
    """
    order = sorted(group)
    position = {cid: i for i, cid in enumerate(order)}
    neighbours = [[position[o] for o in instance.county(cid).adjacent if o in position] for cid in order]
    around = [sum(1 << j for j in nbrs) for nbrs in neighbours]
    for root in range(len(order)):
        # A frame: (members, extension list, extension mask, members and their neighbours as a mask).
        ext = [u for u in neighbours[root] if u > root]
        stack = [([root], ext, sum(1 << u for u in ext), around[root] | (1 << root))]
        yield frozenset([order[root]])
        while stack:
            members, ext, ext_mask, closed = stack[-1]
            if not ext or len(members) == limit:
                stack.pop()
                continue
            w = ext.pop()
            ext_mask &= ~(1 << w)
            stack[-1] = (members, ext, ext_mask, closed)
            child_ext, child_mask = list(ext), ext_mask
            for u in neighbours[w]:
                bit = 1 << u
                if u > root and not (closed | child_mask) & bit:
                    child_ext.append(u)
                    child_mask |= bit
            child = members + [w]
            yield frozenset(order[i] for i in child)
            stack.append((child, child_ext, child_mask, closed | around[w]))


def _count_subsets(size: int, limit: int) -> int:
    return sum(math.comb(size, k) for k in range(1, min(size, limit) + 1))


@dataclass(frozen=True)
class PoolGroup:
    """Counties that may share pools (one prefecture, province or the instance)."""

    label: str                 # e.g. "prefecture 1505", "instance"
    members: tuple[str, ...]   # sorted ids


def pool_groups(instance: Instance, spec: Spec) -> list[PoolGroup]:
    """The groups of scope "optimise", in sorted order."""
    key = spec.pooling.within
    groups = partition_groups(instance, key)
    if key == "none":
        return [PoolGroup("instance", tuple(sorted(groups[0])))]
    out = []
    for members in groups:
        value = getattr(instance.county(members[0]), key)
        out.append(PoolGroup(f"{key} {value}", tuple(sorted(members))))
    return out


def group_subsets(instance: Instance, spec: Spec, group: PoolGroup,
                  cap: int) -> list[frozenset[str]] | None:
    """Every allowed pool of `group`, or None when more than `cap` subsets
    would have to be generated to list them."""
    rules = spec.pooling
    limit = min(len(group.members), rules.max_counties or len(group.members))
    if rules.contiguous:
        subsets = _connected_subsets(instance, list(group.members), limit)
    else:
        if _count_subsets(len(group.members), limit) > cap:
            return None
        subsets = (frozenset(c) for k in range(1, limit + 1) for c in combinations(group.members, k))
    people = {c: instance.county(c).enrollees for c in group.members}
    floor = rules.min_enrollees
    pools = []
    for seen, subset in enumerate(subsets, start=1):
        if seen > cap:
            return None
        if floor <= 0 or sum(people[c] for c in subset) >= floor:
            pools.append(subset)
    return pools


def candidate_pools(instance: Instance, spec: Spec) -> list[frozenset[str]]:
    """Every candidate pool of the spec, in a deterministic order (the full
    enumeration; refuses more than MAX_CANDIDATES)."""
    rules = spec.pooling
    if rules.scope == "county":
        return [frozenset([cid]) for cid in sorted(instance.ids)]
    if rules.scope == "prefecture":
        return [frozenset(g) for g in partition_groups(instance, "prefecture")]
    pools: list[frozenset[str]] = []
    for group in pool_groups(instance, spec):
        limit = min(len(group.members), rules.max_counties or len(group.members))
        found = group_subsets(instance, spec, group, MAX_CANDIDATES - len(pools))
        if found is None and not rules.contiguous:
            raise InputError(
                f"{spec.source}: pooling: a group of {len(group.members)} counties has "
                f"{_count_subsets(len(group.members), limit):,} subsets of up to {limit} counties, more "
                f"than {MAX_CANDIDATES:,} candidate pools; set pooling.max_counties, contiguous = true "
                f"or a narrower pooling.within (solve generates columns for such groups instead)")
        if found is None:
            raise InputError(
                f"{spec.source}: pooling: more than {MAX_CANDIDATES:,} candidate pools; set "
                f"pooling.max_counties or a narrower pooling.within (solve generates columns for such "
                f"groups instead)")
        pools.extend(found)
    return sorted(pools, key=lambda s: (len(s), sorted(s)))


def pool_rule_violations(instance: Instance, spec: Spec, members) -> list[str]:
    """Why a given pool is not allowed under the spec's pooling rules (empty if it is)."""
    rules = spec.pooling
    members = sorted(members)
    label = "pool [" + ", ".join(members) + "]"
    if rules.scope == "county":
        return [] if len(members) == 1 else [f"{label}: scope \"county\" allows single-county pools only"]
    if rules.scope == "prefecture":
        prefectures = {instance.county(c).prefecture for c in members}
        whole = sorted(c.id for c in instance.counties if c.prefecture in prefectures)
        if len(prefectures) == 1 and whole == members:
            return []
        return [f"{label}: scope \"prefecture\" requires exactly one whole prefecture per pool"]
    problems = []
    if rules.within != "none":
        values = {getattr(instance.county(c), rules.within) for c in members}
        if len(values) > 1:
            problems.append(f"{label}: spans several {rules.within}s ({', '.join(sorted(map(str, values)))})")
    if rules.max_counties is not None and len(members) > rules.max_counties:
        problems.append(f"{label}: {len(members)} counties > pooling.max_counties {rules.max_counties}")
    enrollees = sum(instance.county(c).enrollees for c in members)
    if enrollees < rules.min_enrollees:
        problems.append(f"{label}: {enrollees} enrollees < pooling.min_enrollees {rules.min_enrollees}")
    if rules.contiguous and not is_connected(instance, members):
        problems.append(f"{label}: not connected in the adjacency graph (pooling.contiguous)")
    return problems
