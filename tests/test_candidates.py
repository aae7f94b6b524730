"""Candidate enumeration against brute-force definitions (no solver)."""

from __future__ import annotations

import re
from itertools import combinations

import pytest

from pooling import InputError, instance_from_dict, spec_from_dict
from pooling.optimise.candidates import (
    candidate_pools,
    group_subsets,
    is_connected,
    pool_groups,
    pool_rule_violations,
)
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict


def _all_subsets(ids):
    return [frozenset(c) for k in range(1, len(ids) + 1) for c in combinations(ids, k)]


def _bfs_connected(inst, subset):
    """Reference connectivity: repeated relaxation until no change."""
    reached = {min(subset)}
    changed = True
    while changed:
        changed = False
        for c in subset:
            if c not in reached and any(a in reached for a in inst.county(c).adjacent):
                reached.add(c)
                changed = True
    return reached == set(subset)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_counties", [None, 3])
def test_contiguous_enumeration_matches_filtered_power_set(seed, max_counties):
    inst = instance_from_dict(random_instance_dict(seed, n_counties=8, n_prefectures=1))
    spec = spec_from_dict(spec_dict(pooling={"contiguous": True, "max_counties": max_counties}
                                    if max_counties else {"contiguous": True}))
    got = candidate_pools(inst, spec)
    assert len(got) == len(set(got)), "a pool was enumerated twice"
    limit = max_counties or 8
    expected = {s for s in _all_subsets(inst.ids) if len(s) <= limit and _bfs_connected(inst, s)}
    assert set(got) == expected
    # is_connected agrees with the reference BFS on every subset, connected or not
    # (other tests use it to check generated and built instances).
    assert all(is_connected(inst, s) == _bfs_connected(inst, s) for s in _all_subsets(inst.ids))


def test_within_prefecture_and_min_enrollees():
    inst = instance_from_dict(random_instance_dict(3, n_counties=6, n_prefectures=2))
    floor = 30_000
    spec = spec_from_dict(spec_dict(pooling={"min_enrollees": floor}))
    got = set(candidate_pools(inst, spec))
    expected = {s for s in _all_subsets(inst.ids)
                if len({inst.county(c).prefecture for c in s}) == 1
                and sum(inst.county(c).enrollees for c in s) >= floor}
    assert got == expected
    assert all(not pool_rule_violations(inst, spec, s) for s in got)


def test_fixed_partitions():
    inst = instance_from_dict(random_instance_dict(4, n_counties=6, n_prefectures=2))
    county_pools = candidate_pools(inst, spec_from_dict(spec_dict("county")))
    assert county_pools == [frozenset([c]) for c in sorted(inst.ids)]
    pref_pools = candidate_pools(inst, spec_from_dict(spec_dict("prefecture")))
    assert sorted(map(sorted, pref_pools)) == [sorted(inst.ids[:3]), sorted(inst.ids[3:])]


def test_rule_violations_are_explained():
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict(pooling={"contiguous": True, "max_counties": 1}))
    problems = pool_rule_violations(inst, spec, ["900101", "900103"])
    assert any("not connected" in p for p in problems)
    assert any("2 counties > pooling.max_counties 1" in p for p in problems)


def test_too_many_subsets_is_refused_clearly():
    data = random_instance_dict(5, n_counties=20)
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict(pooling={"within": "none"}), source="wide.toml")
    with pytest.raises(InputError, match=re.escape("wide.toml: pooling: a group of 20 counties has 1,048,575 subsets")):
        candidate_pools(inst, spec)


@pytest.mark.parametrize("seed", range(4))
def test_group_listing_stops_exactly_at_its_cap(seed):
    """group_subsets lists every allowed pool of an 11-county group (the ESU
    stack against the filtered power set), and refuses one subset short of them."""
    inst = instance_from_dict(random_instance_dict(100 + seed, n_counties=11, n_prefectures=1))
    spec = spec_from_dict(spec_dict(pooling={"contiguous": True}))
    (group,) = pool_groups(inst, spec)
    expected = {s for s in _all_subsets(inst.ids) if _bfs_connected(inst, s)}
    listed = group_subsets(inst, spec, group, len(expected))
    assert listed is not None and len(listed) == len(expected) and set(listed) == expected
    assert group_subsets(inst, spec, group, len(expected) - 1) is None
