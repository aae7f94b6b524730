"""Synthetic instances (pooling.data.generate, issue 6)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from scipy.stats import kstest

import pooling
from pooling.cli import main
from pooling.data import generate as gen
from pooling.data.generate import generate_instance, size_cdf
from pooling.data.instance import load_instance
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


def test_generated_files_are_byte_identical_per_seed_and_load(tmp_path, capsys):
    paths = [tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"]
    for path, seed in zip(paths, (3, 3, 4)):
        assert main(["generate", "--counties", "60", "--prefectures", "7", "--seed", str(seed),
                     "--out", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    inst = load_instance(paths[0])
    assert len(inst.counties) == 60 and len(inst.places) == 7 + 1


@pytest.mark.parametrize("counties,prefectures,seed", [(1, 1, 0), (40, 6, 1), (300, 34, 7)])
def test_one_city_place_per_prefecture_and_one_province_place(counties, prefectures, seed):
    data = generate_instance(counties, prefectures, seed)
    members: dict[str, set[str]] = {}
    for c in data["counties"]:
        members.setdefault(c["prefecture"], set()).add(c["id"])
    places = {p["id"]: p for p in data["places"]}
    assert len(places) == len(data["places"]) == prefectures + 1
    for pref, ids in members.items():
        city = places[f"city:{pref}"]
        assert city["level"] == "prefecture" and city["prefecture"] == pref and city["province"] == "P0"
        assert city["approved_by"] == sorted(ids)            # exactly the prefecture's counties
        assert city["severity"]["mean"] == pytest.approx(gen.SEVERITY_MEAN * 8000 / 3500, abs=0.01)
    province = places["province:P0"]
    assert province["level"] == "province" and province["prefecture"] is None
    assert province["approved_by"] == [c["id"] for c in data["counties"]]
    assert province["severity"]["mean"] == pytest.approx(gen.SEVERITY_MEAN * 15000 / 3500, abs=0.01)
    inst = pooling.instance_from_dict(data)
    assert {p.id for p in inst.places} == set(places)
    assert inst.place(f"city:{data['counties'][0]['prefecture']}").approved_by == \
        frozenset(members[data["counties"][0]["prefecture"]])


def test_resident_care_and_migrant_destinations():
    data = generate_instance(200, 25, 4)
    place_ids = {p["id"] for p in data["places"]}
    county_ids = {c["id"] for c in data["counties"]}
    intra = 1.0 - gen.INTER_PROVINCIAL_SHARE
    for c in data["counties"]:
        city = f"city:{c['prefecture']}"
        assert c["resident_care"] == {c["id"]: 0.8, city: 0.14, "province:P0": 0.06}
        assert math.fsum(c["resident_care"].values()) == pytest.approx(1.0, abs=1e-9)
        dest = c["migrant_destinations"]
        assert math.fsum(dest.values()) == pytest.approx(1.0, abs=1e-9)
        assert set(dest) <= county_ids | place_ids | {"outside"}
        assert c["id"] not in dest and all(w > 0 for w in dest.values())
        assert [k for k in dest if k in place_ids] == [city]      # own city only
        assert dest[city] == pytest.approx(intra * gen.CITY_MIGRANT_SHARE, abs=1e-6)
        assert dest["outside"] == pytest.approx(gen.INTER_PROVINCIAL_SHARE, abs=1e-4)


def test_parameters_carry_tiers_shocks_and_budget_financing():
    inst = pooling.instance_from_dict(generate_instance(20, 3, 2))
    params = inst.parameters
    # The bundled instances' (2012) terms: pooling.data.settlement.SETTLEMENT_RULES["2012"].
    from pooling.data.settlement import SETTLEMENT_RULES
    for tier, terms in SETTLEMENT_RULES["2012"].items():
        assert params.terms(tier) == terms
    assert (params.prefecture_shock.weight, params.prefecture_shock.cv) == (0.3, 0.10)
    assert (params.county_shock.weight, params.county_shock.cv) == (0.3, 0.16)
    assert params.frequency_shock_cv == 0.05
    assert params.admin_financing == "county_budget" and params.fund_fixed_cost == 0.0


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
    assert all(0.10 < c["admission_rate"] < 0.18 for c in data["counties"])   # 0.137 at national ageing


def test_small_generated_instance_solves():
    inst = pooling.instance_from_dict(generate_instance(9, 2, 5))
    result = pooling.solve(inst, pooling.load_spec(MODELS / "default.toml"), time_limit=60).to_dict()
    assert result["status"] == "optimal"


@pytest.mark.parametrize("args", [(0, 1, 0), (3, 4, 0), (5, 0, 0), (5, 1, -1), (True, 1, 0)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        generate_instance(*args)


def test_counts_past_the_enrollee_limit_give_a_valid_instance():
    """Old code: `pooling generate --counties 8000` drew 2.9e9 enrollees and
    refused its own file (counties: enrollees must sum to at most 2e9). From
    ~4,900 counties the sizes are scaled down in proportion."""
    data = generate_instance(6000, 600, 0)
    inst = pooling.instance_from_dict(data)
    assert inst.total_enrollees <= 2_000_000_000
    assert inst.total_enrollees > 0.999 * 2_000_000_000      # scaled to the limit, not below it
    sizes = sorted(c.enrollees for c in inst.counties)
    assert sizes[0] >= 1


def test_large_prefectures_link_their_seats_as_with_every_pair(monkeypatch):
    """Above ALL_PAIRS_UP_TO seats a prefecture is made connected from its own
    Delaunay edges (all pairs of a 50,000-county prefecture took 11 GB): the
    same links as from every pair."""
    fast = generate_instance(1300, 2, 3)
    monkeypatch.setattr(gen, "ALL_PAIRS_UP_TO", 10 ** 9)
    assert generate_instance(1300, 2, 3) == fast
