"""Bilateral contracts chosen with the pools (issue 14)."""

from __future__ import annotations

import copy
import json

import pytest

from pooling.data.formats import FORMAT_FIELD, format_tag
from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.economics.care import care_in_pool, contract_variants, contracted_places
from pooling.errors import InputError
from pooling.optimise.result import Result
from pooling.optimise.solve import evaluate, solve
from tests.factories import random_instance_dict, spec_dict
from tests.test_care_geography import TIERS, geography_dict, solve_matches_oracle
from tests.tolerances import ROUNDING

MILP_AGREEMENT = 1e-6
OPTION = {"id": "A-far", "origin": "A", "destination": "city:8001", "annual_cost": 50_000.0,
          "price_factor": 0.9, "sources": ["assumed for the test"]}


def with_options(data: dict, *options) -> dict:
    """`data` with these contract options, in the current format (older
    versions with options are refused: test_an_older_file_with_options_is_refused)."""
    data = copy.deepcopy(data)
    data["contract_options"] = [copy.deepcopy(o) for o in options]
    data[FORMAT_FIELD] = format_tag("instance")
    return data


def load(data):
    return instance_from_dict(data, source="contracts.json")


@pytest.mark.parametrize("change, message", [
    ({"origin": "Q"}, 'origin names "Q", which is not a county id'),
    ({"origin": []}, "origin must be a county id or a non-empty list"),
    ({"destination": "nowhere"}, 'destination "nowhere" is not a place or county id'),
    ({"destination": "A"}, "destination is one of its origins"),
    ({"price_factor": 1.5}, "price_factor must be in [0.1, 1]"),
    ({"annual_cost": -1.0}, "annual_cost must be"),
])
def test_bad_options_are_named(change, message):
    option = dict(OPTION, **change)
    with pytest.raises(InputError) as err:
        load(with_options(geography_dict(), option))
    assert str(err.value).startswith('contracts.json: contract option "A-far"')
    assert message in str(err.value)


def test_a_contract_brings_its_migrants_in_network_and_never_lowers_the_share():
    inst = load(with_options(geography_dict(), OPTION))
    a = inst.county("A")
    for members in (frozenset({"A"}), frozenset({"A", "B"}), frozenset({"A", "B", "C"})):
        without = care_in_pool(inst, a, members)
        with_it = care_in_pool(inst, a, members, contracted_places([inst.contract("A-far")]))
        assert with_it.migrant_in_network_admissions >= without.migrant_in_network_admissions
        far = a.enrollees * a.migrant_share * a.admission_rate * 0.4
        assert with_it.migrant_in_network_admissions == pytest.approx(
            without.migrant_in_network_admissions + far, rel=ROUNDING)
        assert with_it.effective_share >= without.effective_share


def test_options_become_column_variants():
    inst = load(with_options(geography_dict(), OPTION, dict(OPTION, id="B-far", origin=["B", "C"])))
    assert contract_variants(inst, frozenset({"C"})) == [()]           # C has no migrants there
    assert contract_variants(inst, frozenset({"A"})) == [(), ("A-far",)]
    assert contract_variants(inst, frozenset({"A", "B"})) == [(), ("A-far",), ("B-far",), ("A-far", "B-far")]


def _small(seed: int, cost: float, factor: float) -> dict:
    """A random 5-county instance whose counties send migrants to a far city,
    with a contract option for two of them."""
    data = random_instance_dict(seed, 5)
    data["parameters"]["out_of_network_tiers"] = copy.deepcopy(TIERS)
    data["places"] = [{"id": "city:8001", "name": "far city", "level": "prefecture", "prefecture": "8001",
                       "province": "80", "severity": {"dist": "lognormal", "mean": 9000.0, "cv": 1.0},
                       "approved_by": ["Z"]}]
    ids = [c["id"] for c in data["counties"]]
    for c in data["counties"]:
        c["migrant_share"] = 0.3
        c["migrant_destinations"] = {"city:8001": 0.6, "outside": 0.4}
    return with_options(data, {"id": "deal", "origin": ids[:2], "destination": "city:8001",
                               "annual_cost": cost, "price_factor": factor},
                        {"id": "deal2", "origin": ids[3], "destination": "city:8001",
                         "annual_cost": cost / 2, "price_factor": 1.0})


CASES = [(seed, kind, cost, extra)
         for seed in (41, 42)
         for kind in ("max_mean_rate", "max_mean_effective_rate", "max_effective_coverage")
         for cost, extra in ((20_000.0, {}), (0.0, {"equalisation": {"max_rate_gap": 0.03}}))]


@pytest.mark.parametrize("seed, kind, cost, extra", CASES)
def test_brute_force_agrees_with_solve_with_contract_options(seed, kind, cost, extra):
    inst = load(_small(seed, cost, 0.8))
    spec = spec_from_dict(spec_dict(objective={"kind": kind}, pooling={"within": "none"}, **extra))
    # Rates coupled by a gap come from two MILP solvers (HiGHS in solve, scipy's in the
    # oracle), each within a 1e-7 feasibility tolerance on every rate.
    checked = solve_matches_oracle(inst, spec, MILP_AGREEMENT)
    if checked is not None:
        result, again = checked
        assert [c["option"] for c in again.to_dict()["contracts"]] == [c["option"] for c in result.contracts]


@pytest.mark.parametrize("kind", ["max_mean_rate", "max_mean_effective_rate", "max_effective_coverage"])
def test_free_options_never_lower_the_optimum(kind):
    spec = spec_from_dict(spec_dict(objective={"kind": kind}, pooling={"within": "none"}))
    base = _small(43, 0.0, 1.0)
    without = solve(load(with_options(base)), spec)
    with_free = solve(load(base), spec)
    assert with_free.objective >= without.objective - ROUNDING


def test_effective_objective_takes_a_free_contract_that_helps_its_migrants():
    spec = spec_from_dict(spec_dict(objective={"kind": "max_mean_effective_rate"}, pooling={"within": "none"},
                                    rates={"min": 0.05}))
    result = solve(load(_small(44, 0.0, 0.8)), spec)
    assert result.contracts, "a free, discounted contract for migrants is always worth taking"
    record = result.contracts[0]
    assert record["effective_rate_with"] > record["effective_rate_without"]
    assert record["migrants"] > 0 and record["admissions"] > 0
    data = json.loads(json.dumps(result.to_dict()))
    assert Result.from_dict(data).to_dict() == data


@pytest.mark.parametrize("contracts, message", [
    ([{"pool": ["A"], "option": "A-far"}], "is not a pool of the plan"),
    ([{"pool": ["A", "B", "C"], "option": "nope"}], 'option "nope" is not a contract option'),
    ([{"pool": ["A", "B", "C"], "option": "A-far"}] * 2, "listed twice"),
    ([{"pool": ["A", "B", "C"]}], "option is missing"),
    ("A-far", "contracts must be a list"),
])
def test_bad_plan_contracts_are_named(contracts, message):
    inst = load(with_options(geography_dict(), OPTION))
    spec = spec_from_dict(spec_dict())
    with pytest.raises(InputError) as err:
        evaluate(inst, spec, [["A", "B", "C"]], contracts=contracts)
    assert message in str(err.value)


def test_plan_file_contracts_round_trip(tmp_path):
    inst = load(with_options(geography_dict(), OPTION))
    spec = spec_from_dict(spec_dict())
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"pools": [["A", "B", "C"]],
                                "contracts": [{"pool": ["C", "B", "A"], "option": "A-far"}]}))
    out = evaluate(inst, spec, path, explain=True)
    assert out.pools[0].pricing.contracts == ("A-far",)
    assert out.contracts[0]["annual_cost"] == 50_000.0
    assert sum(out.explain["parts"].values()) == pytest.approx(out.explain["total"], abs=ROUNDING)


def test_settlement_rules_replace_the_tiers():
    """2020's direct settlement claims more of the care bought elsewhere: every
    county alone reimburses its migrants at least as well as under 2012 rules."""
    from pooling.data.settlement import SETTLEMENT_RULES
    inst = load(geography_dict())
    results = {}
    for year in ("2012", "2020"):
        spec = spec_from_dict(spec_dict(scope="county", network={"settlement": year}))
        out = evaluate(inst, spec, [["A"], ["B"], ["C"]])
        results[year] = out.to_dict()["portability"]
        assert out.spec["network"]["settlement"] == year
    assert results["2020"]["migrant_in_network_share"] == results["2012"]["migrant_in_network_share"] == 0.0
    assert SETTLEMENT_RULES["2020"]["other_province"].claim_share == pytest.approx(0.793)
    rate_2012, rate_2020 = (evaluate(inst, spec_from_dict(spec_dict(scope="county", network={"settlement": y})),
                                     [["A"], ["B"], ["C"]]) for y in ("2012", "2020"))
    paid = {y: sum(c.eligible for p in e.pools for c in p.pricing.care) for y, e in
            (("2012", rate_2012), ("2020", rate_2020))}
    assert paid["2020"] > paid["2012"]
    with pytest.raises(InputError, match=r"network\.settlement must be one of"):
        spec_from_dict(spec_dict(network={"settlement": "1999"}))


@pytest.mark.parametrize("members", [["A"], ["A", "B"], ["A", "B", "C"]])
def test_a_contract_is_priced_not_only_reported(members):
    """The pool's law carries the contracted care: E[Y_P] = sum of its members'
    eligible costs with the contract, above the cost without it, and the
    annual cost is in the budget."""
    inst = load(with_options(geography_dict(), OPTION))
    from pooling.economics.pools import PoolPricer
    pricer = PoolPricer(inst, spec_from_dict(spec_dict()))
    without, with_it = pricer.price(members), pricer.price(members, ("A-far",))
    assert with_it.expected_cost == pytest.approx(sum(c.eligible for c in with_it.care), rel=ROUNDING)
    assert with_it.expected_cost > without.expected_cost
    assert with_it.cvar > without.cvar
    assert with_it.budget == pytest.approx(without.budget - OPTION["annual_cost"], rel=ROUNDING)
    assert with_it.max_rate < without.max_rate
