"""Equalisation rules, objectives and rate menus: the MILP against the
brute-force oracle, on instances where the rules bind."""

from __future__ import annotations

import pytest

from pooling import instance_from_dict, solve, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.optimise.bruteforce import brute_force
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict

POORER = (250.0, 420.0)
"""Contributions per head for these tests: rates land around 0.5-0.95, so
the rules bind instead of every pool sitting at rates.max."""

OBJECTIVE_TOLERANCE = 1e-7
"""Both optimise the same finite problem; HiGHS feasibility tolerance is 1e-7."""

RULE_CASES = [
    ("gap", {"equalisation": {"max_rate_gap": 0.02}}),
    ("gap_prefecture", {"equalisation": {"max_rate_gap": 0.01, "gap_scope": "prefecture"},
                        "pooling": {"within": "none"}}),
    ("worse_off", {"equalisation": {"no_county_worse_off": True}}),
    ("worse_off_tolerance", {"equalisation": {"no_county_worse_off": True, "tolerance": 0.01}}),
    ("cross_subsidy", {"equalisation": {"max_cross_subsidy": 0.12}}),
    ("surplus", {"equalisation": {"max_expected_surplus": 0.12}}),
    ("menu", {"rates": {"step": 0.05}}),
    ("max_min", {"objective": {"kind": "max_min_rate"}}),
    ("dispersion", {"objective": {"kind": "min_rate_dispersion"}}),
    ("everything", {"equalisation": {"max_rate_gap": 0.05, "no_county_worse_off": True,
                                     "max_cross_subsidy": 0.2}, "rates": {"step": 0.01},
                    "objective": {"kind": "max_min_rate"}}),
]


def _spec(sections):
    base = {"rates": {"min": 0.3, "max": 0.95}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return spec_from_dict(spec_dict(**base))


@pytest.mark.parametrize("seed", [31, 32, 33])
@pytest.mark.parametrize("name,sections", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rules_match_brute_force(name, sections, seed):
    inst = instance_from_dict(random_instance_dict(seed, n_counties=5, n_prefectures=2,
                                                    contribution_range=POORER))
    spec = _spec(sections)
    result = solve(inst, spec)
    oracle = brute_force(inst, spec, PoolPricer(inst, spec))
    if oracle.objective is None:
        assert result.status in ("infeasible", "partial")   # partial: other blocks keep their plans
        assert result.diagnosis
        return
    assert result.status == "optimal", result.diagnosis
    assert result.objective == pytest.approx(oracle.objective, abs=OBJECTIVE_TOLERANCE)
    assert result.mean_rate == pytest.approx(oracle.mean_rate, abs=1e-6)
    rates = [p.rate for p in result.pools]
    if spec.rates.step:
        steps = [(r - spec.rates.min) / spec.rates.step for r in rates]
        assert all(abs(k - round(k)) < 1e-6 for k in steps), "a rate is off the menu"
    if spec.equalisation.max_rate_gap is not None and spec.equalisation.gap_scope == "instance":
        assert max(rates) - min(rates) <= spec.equalisation.max_rate_gap + 1e-7


BINDING_SEED = {"gap": 31, "gap_prefecture": 32, "worse_off": 31, "worse_off_tolerance": 32,
                "cross_subsidy": 31, "surplus": 31, "menu": 31}
"""For each rule, a seed where it changes the optimum (found by scanning the
three test seeds): the brute-force comparisons above are not vacuous."""


@pytest.mark.parametrize("name", sorted(BINDING_SEED))
def test_each_rule_binds_on_some_seed(name):
    sections = dict(RULE_CASES)[name]
    inst = instance_from_dict(random_instance_dict(BINDING_SEED[name], n_counties=5, n_prefectures=2,
                                                   contribution_range=POORER))
    free = solve(inst, _spec({k: v for k, v in sections.items() if k == "pooling"}))
    ruled = solve(inst, _spec(sections))
    assert ruled.status != "optimal" or abs(ruled.objective - free.objective) > 1e-6


def test_no_county_worse_off_holds_per_county():
    inst = instance_from_dict(random_instance_dict(32, n_counties=5, n_prefectures=2,
                                                  contribution_range=POORER))
    spec = _spec({"equalisation": {"no_county_worse_off": True}})
    pricer = PoolPricer(inst, spec)
    result = solve(inst, spec)
    for pool in result.pools:
        for cid in pool.pricing.counties:
            alone = pricer.price([cid])
            if alone.usable:
                assert pool.rate >= alone.max_rate - 1e-9


def test_gap_infeasibility_names_the_smallest_gap():
    data = tiny_instance_dict()
    data["counties"][2]["contribution_per_capita"] = 330.0   # poor county: low rate alone
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict("county", equalisation={"max_rate_gap": 0.0,
                                                            "no_county_worse_off": True}))
    result = solve(inst, spec)
    assert result.status == "infeasible"
    assert "smallest achievable gap is" in result.diagnosis[0]
    assert "setting max_rate_gap to" in result.diagnosis[0]


def test_worse_off_diagnosis_names_rule_and_relaxation():
    data = tiny_instance_dict()
    data["counties"][1]["contribution_per_capita"] = 700.0   # a rich county
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict("prefecture", equalisation={"no_county_worse_off": True}))
    result = solve(inst, spec)
    if result.status == "infeasible":
        line = result.diagnosis[0]
        assert "no_county_worse_off (county 900102)" in line
        assert "raising equalisation.tolerance to" in line
    else:  # the rich county would still gain by pooling: then its rate is kept
        assert result.pools[0].rate >= PoolPricer(inst, spec).price(["900102"]).max_rate - 1e-9
