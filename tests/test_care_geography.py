"""Places of care, tiers, effective rates, the effective objectives and the
gain decomposition (issue 13; DESIGN §Care geography)."""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.economics.care import care_in_pool, portability
from pooling.economics.explain import PARTS
from pooling.economics.objectives import objective_denominator
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError
from pooling.optimise.bruteforce import brute_force
from pooling.optimise.solve import evaluate, solve
from tests.factories import county, instance_dict, random_instance_dict, spec_dict
from tests.tolerances import ROUNDING

CITY = {"id": "city:9001", "name": "Prefecture city hospitals", "level": "prefecture",
        "prefecture": "9001", "province": "90", "severity": {"dist": "lognormal", "mean": 9000.0, "cv": 1.0},
        "approved_by": ["A", "B", "C"]}
FAR = {"id": "city:8001", "name": "A city in another province", "level": "prefecture", "prefecture": "8001",
       "province": "80", "severity": {"dist": "lognormal", "mean": 11000.0, "cv": 1.0}, "approved_by": ["Z"]}
TIERS = {"same_prefecture": {"claim_share": 0.9, "factor": 0.8},
         "same_province": {"claim_share": 0.6, "factor": 0.6},
         "other_province": {"claim_share": 0.4, "factor": 0.5}}


def geography_dict(**parameters) -> dict:
    """Three counties of one prefecture with referrals to the city and migrants
    in a neighbour, the city and another province."""
    counties = [
        county("A", enrollees=30_000, province="90", migrant_share=0.3, adjacent=["B"],
               resident_care={"A": 0.8, "city:9001": 0.2},
               migrant_destinations={"B": 0.3, "city:9001": 0.3, "city:8001": 0.4}),
        county("B", enrollees=20_000, province="90", contribution_per_capita=420.0, adjacent=["A", "C"],
               resident_care={"B": 0.85, "city:9001": 0.15}, migrant_share=0.1,
               migrant_destinations={"A": 0.5, "city:8001": 0.5}),
        county("C", enrollees=12_000, province="90", adjacent=["B"], migrant_share=0.2,
               migrant_destinations={"city:9001": 1.0}),
    ]
    data = instance_dict(counties, out_of_network_tiers=copy.deepcopy(TIERS), **parameters)
    data["places"] = [copy.deepcopy(CITY), copy.deepcopy(FAR)]
    return data


def load(data):
    return instance_from_dict(data, source="geo.json")


# ------------------------------------------------------------------ loading
@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["places"][0].update(level="hamlet"), 'place "city:9001": level must be one of'),
    (lambda d: d["places"][0].update(approved_by="A"), 'place "city:9001": approved_by must be a list'),
    (lambda d: d["places"][1].update(id="city:9001"), "appears more than once"),
    (lambda d: d["places"][1].update(id="A"), 'place "A": id is also a county id'),
    (lambda d: d["places"][0].update(id="outside"), 'must not be the reserved key "outside"'),
    (lambda d: d["counties"][0]["resident_care"].update(nowhere=0.0), "resident_care.nowhere is not a county or "
                                                                       "place id"),
    (lambda d: d["counties"][0]["resident_care"].update(A=0.5), "resident_care weights must sum to 1"),
    (lambda d: d["parameters"]["out_of_network_tiers"]["same_province"].update(factor=1.5),
     "out_of_network_tiers.same_province.factor must be"),
    (lambda d: d["parameters"]["out_of_network_tiers"].update(moon={"claim_share": 1, "factor": 1}),
     "out_of_network_tiers.moon is not a known field"),
    (lambda d: d["parameters"].update(regional_shocks={"county": {"weight": 0.7, "cv": 0.1},
                                                       "prefecture": {"weight": 0.3, "cv": 0.1}}),
     "regional_shocks weights must sum to at most"),
    (lambda d: d["parameters"].update(admin_financing="donors"), "admin_financing must be one of"),
])
def test_bad_geography_is_named(mutate, message):
    data = geography_dict()
    mutate(data)
    with pytest.raises(InputError, match=None) as err:
        load(data)
    assert str(err.value).startswith("geo.json: ")
    assert message in str(err.value)


def test_running_costs_default_to_the_county_budget():
    """From pooling.instance/2 (tests/test_formats.py: without a format, version 1, the fund pays)."""
    data = geography_dict()
    del data["parameters"]["admin_financing"]
    data["format"] = "pooling.instance/2"
    inst = load(data)
    assert inst.parameters.admin_financing == "county_budget"
    assert inst.parameters.fund_fixed_cost == 0.0
    a = inst.county("A")
    assert a.per_capita_costs == a.outpatient_per_capita * a.enrollees


# ------------------------------------------------------------------ pricing
def test_explicit_defaults_price_like_the_old_format():
    """resident_care {own: 1} and tiers equal to the scalars change nothing."""
    old = random_instance_dict(3, 5)
    new = copy.deepcopy(old)
    for c in new["counties"]:
        c["resident_care"] = {c["id"]: 1.0}
    q, phi = old["parameters"]["out_of_network_claim_share"], old["parameters"]["out_of_network_factor"]
    new["parameters"]["out_of_network_tiers"] = {t: {"claim_share": q, "factor": phi}
                                                 for t in ("same_prefecture", "same_province", "other_province")}
    spec = spec_from_dict(spec_dict())
    a, b = PoolPricer(load(old), spec), PoolPricer(load(new), spec)
    for members in (["901001"], ["901001", "901002", "901003"]):
        members = [m.replace("9010", "9030") for m in members]
        assert a.price(members).max_rate == b.price(members).max_rate


def test_stand_alone_price_does_not_depend_on_the_file():
    """County A priced alone in a file holding B, and in one where B is only a
    place (its hospitals, approved by B): bit-identical."""
    whole = load(geography_dict())
    data = geography_dict()
    b = next(c for c in data["counties"] if c["id"] == "B")
    data["counties"] = [c for c in data["counties"] if c["id"] == "A"]
    data["counties"][0]["adjacent"] = []
    data["counties"][0]["migrant_destinations"] = {"county:B": 0.3, "city:9001": 0.3, "city:8001": 0.4}
    data["places"].append({"id": "county:B", "name": "B hospitals", "level": "county", "prefecture": "9001",
                           "province": "90", "severity": b["severity"], "approved_by": ["B"]})
    alone_file = load(data)
    spec = spec_from_dict(spec_dict())
    one, two = PoolPricer(whole, spec).price(["A"]), PoolPricer(alone_file, spec).price(["A"])
    assert (one.max_rate, one.var, one.cvar, one.expected_cost) == (two.max_rate, two.var, two.cvar,
                                                                       two.expected_cost)
    assert one.care == two.care


def test_tiers_price_out_of_network_care_by_where_it_is_bought():
    inst = load(geography_dict())
    care = care_in_pool(inst, inst.county("A"), frozenset({"A"}))
    a = inst.county("A")
    lam = a.enrollees * a.admission_rate
    home, city, far = 4000.0, 9000.0, 11000.0     # severity means of A, the city, the far city
    residents, migrants = lam * 0.7, lam * 0.3
    want_resident = residents * (0.8 * home + 0.2 * 0.9 * 0.8 * city)
    want_migrant = migrants * (0.3 * 0.9 * 0.8 * 4000.0 + 0.3 * 0.9 * 0.8 * city + 0.4 * 0.4 * 0.5 * far)
    assert care.resident_eligible == pytest.approx(want_resident, rel=ROUNDING)
    assert care.migrant_eligible == pytest.approx(want_migrant, rel=ROUNDING)
    assert care.total == pytest.approx(residents * (0.8 * home + 0.2 * city)
                                       + migrants * (0.3 * 4000.0 + 0.3 * city + 0.4 * far), rel=ROUNDING)
    assert care.migrant_in_network_admissions == 0.0
    whole = care_in_pool(inst, a, frozenset({"A", "B", "C"}))   # the city is approved by A, B and C
    assert whole.migrant_in_network_admissions == pytest.approx(0.6 * migrants, rel=ROUNDING)
    assert whole.resident_eligible == pytest.approx(residents * (0.8 * home + 0.2 * city), rel=ROUNDING)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_more_members_never_lower_in_network_shares(data):
    """Pooling with more counties (e.g. the migrants' destination) never lowers
    a county's migrant in-network share nor its effective share at a given rate."""
    inst = load(geography_dict())
    ids = ["A", "B", "C"]
    c = data.draw(st.sampled_from(ids))
    small = frozenset(data.draw(st.sets(st.sampled_from(ids)))) | {c}
    large = small | frozenset(data.draw(st.sets(st.sampled_from(ids))))
    before, after = (care_in_pool(inst, inst.county(c), m) for m in (small, large))
    assert after.migrant_in_network_admissions >= before.migrant_in_network_admissions
    assert after.effective_share >= before.effective_share - ROUNDING
    shares = portability([(after, 0.7)])
    assert all(v is None or 0.0 <= v <= 1.0 for v in shares.values())


# ------------------------------------------------------------------ objectives
@pytest.mark.parametrize("kind", ["max_mean_effective_rate", "max_effective_coverage"])
def test_without_penalty_the_effective_objectives_are_nominal(kind):
    """q = phi = 1 in every tier: e_c,P = 1, so the mean effective rate is the
    mean rate, and coverage is the cost-weighted mean rate."""
    data = geography_dict()
    data["parameters"]["out_of_network_tiers"] = {t: {"claim_share": 1.0, "factor": 1.0} for t in TIERS}
    data["parameters"]["out_of_network_claim_share"] = data["parameters"]["out_of_network_factor"] = 1.0
    inst = load(data)
    spec = spec_from_dict(spec_dict(objective={"kind": kind}))
    result = solve(inst, spec)
    assert result.status == "optimal"
    if kind == "max_mean_effective_rate":
        assert result.objective == pytest.approx(result.mean_rate, abs=ROUNDING)
        nominal = solve(inst, spec_from_dict(spec_dict()))
        assert result.objective == pytest.approx(nominal.objective, abs=1e-9)
    else:
        cost = [(c.total, p.rate) for p in result.pools for c in p.pricing.care]
        weighted = math.fsum(t * r for t, r in cost) / math.fsum(t for t, _ in cost)
        assert result.objective == pytest.approx(weighted, abs=ROUNDING)


CASES = [(seed, kind, extra) for seed in (11, 12)
         for kind in ("max_mean_effective_rate", "max_effective_coverage")
         for extra in ({}, {"equalisation": {"max_rate_gap": 0.02}}, {"rates": {"step": 0.05}})]


@pytest.mark.parametrize("seed, kind, extra", CASES)
def test_brute_force_agrees_with_solve_on_the_effective_objectives(seed, kind, extra):
    data = random_instance_dict(seed, 5, n_prefectures=2)
    data["parameters"]["out_of_network_tiers"] = copy.deepcopy(TIERS)
    for c in data["counties"]:
        c["province"] = "90"
    inst = load(data)
    spec = spec_from_dict(spec_dict(objective={"kind": kind}, pooling={"within": "none"}, **extra))
    # With a rate gap the rates come from a MILP: HiGHS's feasibility tolerance (1e-7) separates them.
    solve_matches_oracle(inst, spec, 1e-7)


def solve_matches_oracle(inst, spec, tolerance: float):
    """solve's objective = the brute-force oracle's (or both infeasible), and
    evaluating solve's plan with its contracts gives solve's objective back.
    Returns (result, evaluation), or None when infeasible."""
    result = solve(inst, spec)
    oracle = brute_force(inst, spec)
    if oracle.objective is None:
        assert result.status == "infeasible"
        return None
    assert result.status == "optimal"
    assert result.objective == pytest.approx(oracle.objective, abs=tolerance)
    taken = [{"pool": list(p.pricing.counties), "option": o} for p in result.pools for o in p.pricing.contracts]
    again = evaluate(inst, spec, [list(p.pricing.counties) for p in result.pools], contracts=taken)
    assert again.objective == pytest.approx(result.objective, abs=tolerance)
    return result, again


def test_the_objectives_can_disagree():
    """Coverage weights money, the mean effective rate weights people. H: few
    people with heavy care; L: many with light care and a rich fund. Pooling
    lifts H's rate a lot and lowers L's a little: coverage (dominated by H's
    costs) prefers the pool, the mean effective rate (dominated by L's people)
    keeps them apart."""
    data = instance_dict([county("H", enrollees=10_000, admission_rate=0.3, adjacent=["L"]),
                          county("L", enrollees=50_000, admission_rate=0.05, contribution_per_capita=300.0,
                                 adjacent=["H"])])
    inst = load(data)
    plans, values = {}, {}
    for kind in ("max_mean_effective_rate", "max_effective_coverage"):
        spec = spec_from_dict(spec_dict(objective={"kind": kind}, rates={"min": 0.05, "max": 0.9}))
        result = solve(inst, spec)
        assert result.status == "optimal"
        plans[kind] = sorted(sorted(p.pricing.counties) for p in result.pools)
        values[kind] = spec, result.objective
    assert plans["max_mean_effective_rate"] == [["H"], ["L"]]
    assert plans["max_effective_coverage"] == [["H", "L"]]
    for kind, (spec, best) in values.items():
        other = next(k for k in plans if k != kind)
        assert evaluate(inst, spec, plans[other]).objective < best


# ------------------------------------------------------------------ explain
@pytest.mark.parametrize("kind", ["max_mean_rate", "max_mean_effective_rate", "max_effective_coverage"])
@pytest.mark.parametrize("financing", ["risk_fund", "county_budget"])
def test_gain_decomposition_sums_to_the_total(kind, financing):
    inst = load(geography_dict(admin_financing=financing, admin_fixed_per_fund=800_000.0))
    spec = spec_from_dict(spec_dict(objective={"kind": kind}))
    for plan in ([["A", "B", "C"]], [["A", "B"], ["C"]], [["A"], ["B"], ["C"]]):
        out = evaluate(inst, spec, plan, explain=True)
        explained = out.explain
        assert math.fsum(explained["parts"].values()) == pytest.approx(explained["total"], abs=ROUNDING)
        assert explained["plan"] == pytest.approx(out.objective, abs=ROUNDING)
        assert set(explained["parts"]) == set(PARTS)
        if len(plan) == 3:
            assert all(abs(v) < ROUNDING for v in explained["parts"].values())
        if financing == "county_budget":
            assert explained["parts"]["fixed_cost_saving"] == 0.0
        elif len(plan) < 3:
            assert explained["parts"]["fixed_cost_saving"] > 0.0
        json.dumps(out.to_dict())


def test_network_part_brings_the_city_in_network():
    """Pooling the whole prefecture brings the city's hospitals in network: more
    claims at the same budget (network part < 0 for the nominal rate) but a
    higher effective rate for the people referred or living there."""
    inst = load(geography_dict())
    whole = [["A", "B", "C"]]
    nominal = evaluate(inst, spec_from_dict(spec_dict()), whole, explain=True).explain
    effective = evaluate(inst, spec_from_dict(spec_dict(objective={"kind": "max_mean_effective_rate"})), whole,
                         explain=True).explain
    assert nominal["parts"]["network"] < 0
    assert effective["parts"]["network"] > nominal["parts"]["network"]


def test_explain_needs_an_exact_measure():
    inst = load(geography_dict())
    spec = spec_from_dict(spec_dict(solvency={"measure": "ruin", "horizon_years": 2}))
    with pytest.raises(InputError, match=r"explain needs solvency\.measure"):
        evaluate(inst, spec, [["A", "B", "C"]], explain=True)


def test_portability_round_trips_through_result_json():
    from pooling.optimise.result import Result
    inst = load(geography_dict())
    result = solve(inst, spec_from_dict(spec_dict(objective={"kind": "max_mean_effective_rate"})))
    data = result.to_dict()
    assert set(data["portability"]) >= {"migrant_in_network_share", "migrant_effective_rate",
                                        "resident_effective_rate"}
    for pool in data["pools"]:
        assert all(v is None or 0 <= v <= 1 for v in pool["portability"].values())
    again = Result.from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    assert objective_denominator("max_effective_coverage", inst, inst.ids) > 0


def test_every_partition_of_the_geography_instance_prices():
    inst = load(geography_dict())
    pricer = PoolPricer(inst, spec_from_dict(spec_dict()))
    for size in (1, 2, 3):
        for members in itertools.combinations(["A", "B", "C"], size):
            priced = pricer.price(members)
            assert priced.expected_cost == pytest.approx(math.fsum(c.eligible for c in priced.care), rel=ROUNDING)


# ------------------------------------------------------------------ shocks priced = shocks simulated
@pytest.mark.parametrize("members", [["A"], ["A", "B", "C"]])
def test_regional_shocks_priced_equal_shocks_simulated(members):
    """A pool's VaR, CVaR and mean claims from the exact pricing of the
    national, prefecture and county shocks agree with the Monte Carlo stress
    test (national multiplier drawn per year, the pool's law given it) within
    its 95% intervals widened to 99.9% (3.3 / 1.96)."""
    from pooling.simulation.stress_test import simulate
    data = geography_dict(frequency_shock_cv=0.05, regional_shocks={"prefecture": {"weight": 0.3, "cv": 0.1},
                                                                     "county": {"weight": 0.3, "cv": 0.16}})
    inst = load(data)
    spec = spec_from_dict(spec_dict(solvency={"level": 0.95}))
    priced = PoolPricer(inst, spec).price(members)
    assert priced.numerics.mean == pytest.approx(priced.expected_cost)
    plan = {"pools": [{"counties": members, "rate": 1.0}] + [{"counties": [c], "rate": 1.0}
                                                            for c in ("A", "B", "C") if c not in members]}
    report = simulate(inst, spec, plan, scenarios=60_000, seed=5).to_dict()
    pool = next(p for p in report["pools"] if sorted(p["counties"]) == sorted(members))
    widen = 3.3 / 1.96
    for name, exact in (("var", priced.var), ("cvar", priced.cvar)):
        low, high = pool[f"{name}_ci"]
        half = (high - low) / 2 * widen
        assert abs(pool[name] - exact) <= half + 1e-9 * exact, (name, pool[name], exact, pool[f"{name}_ci"])
    assert pool["exact_var"] == pytest.approx(priced.var, rel=ROUNDING)


def test_real_counties_price_the_same_in_every_file():
    """Every Xinyang county priced alone in xinyang.json and in henan.json:
    the same rate, VaR and CVaR to the last bit (the files share each county's
    data and places; only adjacency differs)."""
    from pooling.data.instance import load_instance
    from pooling.data.spec import load_spec
    from tests.factories import INSTANCES, MODELS
    spec = load_spec(MODELS / "default.toml")
    small, large = (PoolPricer(load_instance(INSTANCES / f"{n}.json"), spec) for n in ("xinyang", "henan"))
    for cid in small.instance.ids:
        a, b = small.price([cid]), large.price([cid])
        assert (a.max_rate, a.var, a.cvar, a.expected_cost) == (b.max_rate, b.var, b.cvar, b.expected_cost), cid
        assert a.care == b.care
