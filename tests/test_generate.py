"""Synthetic instances (pooling.data.generate, issue 6)."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy.stats import kstest

import pooling
from pooling.data.generate import generate_instance, size_cdf
from pooling.optimise.candidates import is_connected
from tests.factories import MODELS


@pytest.mark.parametrize("counties,prefectures,seed", [(1, 1, 0), (9, 2, 5), (40, 6, 1), (300, 34, 7)])
def test_generated_instance_validates_with_requested_sizes(counties, prefectures, seed):
    data = generate_instance(counties, prefectures, seed)
    inst = pooling.instance_from_dict(data)
    assert len(inst.counties) == counties
    assert len(inst.prefectures) == prefectures


def test_deterministic_per_seed():
    assert generate_instance(120, 15, 3) == generate_instance(120, 15, 3)
    assert generate_instance(120, 15, 3) != generate_instance(120, 15, 4)


def test_adjacency_connected_within_prefectures():
    inst = pooling.instance_from_dict(generate_instance(400, 50, 11))
    members: dict[str, set[str]] = {}
    for c in inst.counties:
        members.setdefault(c.prefecture, set()).add(c.id)
    for pref, ids in members.items():
        assert is_connected(inst, ids), pref


def test_county_sizes_follow_the_fitted_distribution():
    data = generate_instance(2500, 300, 2026)
    sizes = [c["enrollees"] for c in data["counties"]]
    assert kstest(sizes, size_cdf).pvalue > 0.01


def test_prefecture_sizes_spread_like_the_census():
    data = generate_instance(2565, 341, 1)
    per_pref = sorted(Counter(c["prefecture"] for c in data["counties"]).values())
    assert per_pref[0] >= 1
    assert 5 <= per_pref[len(per_pref) // 2] <= 10      # census median 7 (fund-running units)


def test_migrant_shares_and_ageing_in_range():
    data = generate_instance(1000, 100, 9)
    shares = sorted(c["migrant_share"] for c in data["counties"])
    assert 0.0 <= shares[0] and shares[-1] < 0.5
    assert 0.03 < shares[len(shares) // 2] < 0.12       # census median net absence ~7%
    assert all(0.06 < c["admission_rate"] < 0.12 for c in data["counties"])


def test_small_generated_instance_solves():
    inst = pooling.instance_from_dict(generate_instance(9, 2, 5))
    result = pooling.solve(inst, pooling.load_spec(MODELS / "default.toml"), time_limit=60).to_dict()
    assert result["status"] == "optimal"


@pytest.mark.parametrize("args", [(0, 1, 0), (3, 4, 0), (5, 0, 0), (5, 1, -1), (True, 1, 0)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        generate_instance(*args)
