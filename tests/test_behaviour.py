"""Induced utilisation (issue 25 item 1): a county's admissions at rate r scale
by ((1 - r) / (1 - r0))^e and a pool's max solvent rate is the fixed point.

With e = 0 every recorded result is unchanged; with e < 0 every stand-alone
rate falls, each reported multiplier is the formula at its pool's rate, the
fixed point is solvent and the next rate up is not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.cli import main
from pooling.data.instance import DEFAULT_OBSERVED_RATE, instance_from_dict, load_instance
from pooling.data.instance_dict import instance_to_dict
from pooling.data.options import SolveOptions
from pooling.data.spec import spec_from_dict
from pooling.economics.behaviour import (
    FIXED_POINT_TOLERANCE,
    multiplier,
    multipliers,
    observed_rate,
    solvent_fixed_point,
)
from pooling.economics.pools import PoolPricer, pool_model, solvent_rate
from pooling.errors import InputError
from pooling.optimise.result import PoolOutcome, plan_outcomes
from pooling.optimise.solve import evaluate, solve
from pooling.risk.claims import aggregate
from pooling.simulation.stress_test import simulate
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

DATA = Path(__file__).resolve().parent / "data"
VOLATILE = ("wall_seconds", "timings", "provenance")
"""Fields of result.json / evaluation.json that differ between identical runs (timings, paths)."""
PRICING_ACCURACY = 2e-4
"""Relative accuracy of a priced VaR/CVaR (docs/model.md): two pricings of
nearby laws agree to it, not bit for bit."""
MULTIPLIER_TOLERANCE = 1e-9
"""The reported multiplier is the formula at the pool's rate, to rounding."""


def _stable(path: Path) -> str:
    data = json.loads(path.read_text())
    for key in VOLATILE:
        data.pop(key, None)
    return json.dumps(data, indent=1)


def _with(data: dict, **parameters) -> dict:
    data = json.loads(json.dumps(data))
    data["parameters"].update(parameters)
    return data


def _load(data: dict):
    return instance_from_dict(data, source="behaviour.json")


SPEC = spec_from_dict(spec_dict(), source="spec.toml")


# -- e = 0: results keep their bytes -----------------------------------------------


def _without_response(tmp_path: Path, name: str) -> Path:
    """The bundled file with its elasticity set to 0 (the bundled files carry
    the sourced response since the instance data revision of issue 25)."""
    data = json.loads((INSTANCES / f"{name}.json").read_text())
    data["parameters"]["utilisation_elasticity"] = 0.0
    path = tmp_path / f"{name}_e0.json"
    path.write_text(json.dumps(data))
    return path


def test_e0_tongliao_solve_and_explain_byte_identical_to_main(tmp_path):
    """tests/data/*_main.json were written by `pooling solve` and `pooling
    evaluate --explain` on main (394d8ca) on the bundled Tongliao instance
    and models/default.toml, volatile fields removed. With the elasticity set
    to 0 the file's observed_rate has no effect: the same bytes."""
    instance = _without_response(tmp_path, "tongliao")
    out = tmp_path / "solve"
    assert main(["solve", str(instance), "--spec", str(MODELS / "default.toml"),
                 "--out", str(out)]) == 0
    assert _stable(out / "result.json") == _stable(DATA / "tongliao_default_result_main.json")
    assert main(["evaluate", str(instance), "--spec", str(MODELS / "default.toml"),
                 "--plan", str(out / "result.json"), "--explain", "--out", str(tmp_path / "eval")]) == 0
    assert _stable(tmp_path / "eval" / "evaluation.json") == \
        _stable(DATA / "tongliao_default_evaluation_main.json")


def test_e0_instances_write_no_behaviour_fields(tmp_path):
    for name in ("tongliao", "xinyang"):
        data = json.loads((INSTANCES / f"{name}.json").read_text())
        for key in ("utilisation_elasticity", "observed_rate"):
            del data["parameters"][key]
        instance = instance_from_dict(data, source=f"{name} without the fields")
        params = instance_to_dict(instance)["parameters"]
        assert "utilisation_elasticity" not in params and "observed_rate" not in params
        assert instance_to_dict(instance, all_fields=True)["parameters"]["utilisation_elasticity"] == 0.0


def test_bundled_2012_instances_carry_the_sourced_response():
    """instances/README.md: e = -0.407 (S), r0 = 0.609015 (D), the same in every file."""
    for name in ("tongliao", "xinyang", "binzhou", "henan"):
        params = load_instance(INSTANCES / f"{name}.json").parameters
        assert (params.utilisation_elasticity, params.observed_rate) == (-0.407, 0.609015)


# -- the formula and the data fields -----------------------------------------------


def test_multiplier_formula_and_observed_rate():
    assert multiplier(0.0, 0.5, 0.9) == 1.0
    assert multiplier(-0.41, 0.5, 0.5) == 1.0
    assert multiplier(-0.41, 0.5, 0.75) == pytest.approx(0.5 ** -0.41, rel=ROUNDING)
    assert multiplier(-0.41, 0.5, 1.0) == math.inf
    data = _with(tiny_instance_dict(), utilisation_elasticity=-0.41, observed_rate=0.4)
    data["counties"][0]["current_rate"] = 0.6
    inst = _load(data)
    assert observed_rate(inst, inst.county("900101")) == 0.6
    assert observed_rate(inst, inst.county("900102")) == 0.4
    assert _load(tiny_instance_dict()).parameters.observed_rate == DEFAULT_OBSERVED_RATE
    again = instance_from_dict(instance_to_dict(inst), source=inst.source, sha256=inst.sha256)
    assert again == inst and again.parameters.utilisation_elasticity == -0.41


@pytest.mark.parametrize("field,value,message", [
    ("utilisation_elasticity", 0.1, "utilisation_elasticity"),
    ("utilisation_elasticity", -3.5, "utilisation_elasticity"),
    ("utilisation_elasticity", "big", "utilisation_elasticity"),
    ("observed_rate", 1.0, "observed_rate"),
    ("observed_rate", -0.1, "observed_rate"),
])
def test_bad_behaviour_parameters_are_input_errors(field, value, message):
    with pytest.raises(InputError, match=message):
        _load(_with(tiny_instance_dict(), **{field: value}))


def test_current_rate_of_one_refused_only_with_behaviour():
    data = tiny_instance_dict()
    data["counties"][1]["current_rate"] = 1.0
    _load(data)   # e = 0: the field keeps its old meaning only
    with pytest.raises(InputError, match='county "900102": current_rate'):
        _load(_with(data, utilisation_elasticity=-0.41))


# -- the fixed point ----------------------------------------------------------------


def _risk(instance, members, rate, spec=SPEC) -> float:
    model = pool_model(instance, frozenset(members), multipliers=multipliers(instance, members, rate))
    result = aggregate(model, spec.solvency.level)
    return result.cvar if spec.solvency.measure == "cvar" else result.var


@pytest.mark.parametrize("e", [-0.41, -0.68])
def test_fixed_point_is_solvent_and_the_next_rate_up_is_not(e):
    inst = _load(_with(tiny_instance_dict(), utilisation_elasticity=e))
    pricer = PoolPricer(inst, SPEC)
    for members in (["900101"], ["900102"], ["900103"], ["900101", "900102", "900103"]):
        p = pricer.price(members)
        assert SPEC.rates.min < p.max_rate < SPEC.rates.max
        r = p.max_rate
        assert r * _risk(inst, members, r) <= p.budget * (1 + PRICING_ACCURACY)
        up = r + 1.001 * FIXED_POINT_TOLERANCE       # r* lies within the tolerance above r
        assert up * _risk(inst, members, up) > p.budget
        # the pricing's figures are those at the fixed point
        assert p.risk == pytest.approx(_risk(inst, members, r), rel=PRICING_ACCURACY)
        assert p.max_rate <= solvent_rate(p.budget, p.risk, SPEC.rates.max)


def test_reported_multiplier_is_the_formula_at_the_pools_rate():
    data = _with(tiny_instance_dict(), utilisation_elasticity=-0.41, observed_rate=0.45)
    data["counties"][2]["current_rate"] = 0.7
    inst = _load(data)
    pricer = PoolPricer(inst, SPEC)
    pricings = [pricer.price(["900101", "900102"]), pricer.price(["900103"])]
    for rates in ([p.max_rate for p in pricings], [0.5, 0.4]):
        for outcome in plan_outcomes(pricings, rates):
            members = outcome.pricing.counties
            admissions = {c: inst.county(c).enrollees * inst.county(c).admission_rate
                          * (1 - inst.county(c).migrant_share * (1 - inst.parameters.migrant_admission_factor))
                          for c in members}
            expected = sum(admissions[c] * ((1 - outcome.rate) / (1 - observed_rate(inst, inst.county(c))))
                           ** -0.41 for c in members) / sum(admissions.values())
            assert outcome.admission_multiplier == pytest.approx(expected, rel=MULTIPLIER_TOLERANCE)
            entry = outcome.to_dict()
            assert entry["admission_multiplier"] == outcome.admission_multiplier
            back = PoolOutcome.from_dict(entry)
            assert back.to_dict() == entry


def test_no_multiplier_in_results_without_behaviour():
    pricer = PoolPricer(_load(tiny_instance_dict()), SPEC)
    outcome = plan_outcomes([pricer.price(["900101"])], [0.5])[0]
    assert outcome.admission_multiplier is None
    assert "admission_multiplier" not in outcome.to_dict()
    assert all("admission_multiplier" not in row for row in outcome.to_dict()["county_care"])


def test_care_at_the_fixed_point_grows_by_the_multiplier_and_keeps_effective_shares():
    base = _load(tiny_instance_dict())
    inst = _load(_with(tiny_instance_dict(), utilisation_elasticity=-0.41))
    members = ["900101", "900102", "900103"]
    plain, induced = PoolPricer(base, SPEC).price(members), PoolPricer(inst, SPEC).price(members)
    for a, b in zip(plain.care, induced.care):
        m = multiplier(-0.41, 0.5, induced.max_rate)
        assert b.admission_multiplier == pytest.approx(m, rel=ROUNDING)
        assert b.total == pytest.approx(m * a.total, rel=ROUNDING)
        assert b.eligible == pytest.approx(m * a.eligible, rel=ROUNDING)
        assert b.effective_share == pytest.approx(a.effective_share, rel=ROUNDING)
        assert b.observed_eligible == pytest.approx(a.eligible, rel=ROUNDING)
        assert b.cost_at_list_prices == pytest.approx(a.cost_at_list_prices, rel=ROUNDING)
    assert induced.expected_cost == pytest.approx(
        sum(c.eligible for c in induced.care), rel=PRICING_ACCURACY)


# -- e < 0 lowers every stand-alone rate (property) ---------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 4), e=st.sampled_from([-0.2, -0.41, -0.68, -1.5]),
       r0=st.sampled_from([0.3, 0.5, 0.7]))
def test_negative_elasticity_moves_every_stand_alone_rate_toward_r0(seed, n, e, r0):
    data = random_instance_dict(seed, n)
    plain = PoolPricer(_load(data), SPEC)
    induced = PoolPricer(_load(_with(data, utilisation_elasticity=e, observed_rate=r0)), SPEC)
    for county in data["counties"]:
        before, after = plain.price([county["id"]]), induced.price([county["id"]])
        # The fixed point lies between r0 (where m = 1, so h(r0) is the rate
        # without the response) and that rate: a county that can pay more than
        # it was observed at uses more care there, and pays less than without
        # the response (unless still capped); one that can pay less uses less.
        if before.max_rate > r0:
            assert r0 - FIXED_POINT_TOLERANCE <= after.max_rate <= before.max_rate
            assert after.max_rate < before.max_rate or after.max_rate == SPEC.rates.max
        else:
            assert before.max_rate <= after.max_rate <= r0 + FIXED_POINT_TOLERANCE


# -- brute force on a tiny instance ---------------------------------------------------


def test_fixed_point_matches_a_brute_force_grid():
    """Scan rates on a grid of 1e-4 and refine: the largest solvent grid rate
    is within one step below the fixed point, and the fixed point itself is
    solvent (tiny instance, pool of all three counties)."""
    inst = _load(_with(tiny_instance_dict(), utilisation_elasticity=-0.68, observed_rate=0.6))
    members = ["900101", "900102", "900103"]
    p = PoolPricer(inst, SPEC).price(members)
    step = 1e-3
    grid = [k * step for k in range(int(0.3 / step), int(0.9 / step) + 1)]
    solvent = [r for r in grid if r * _risk(inst, members, r) <= p.budget]
    best = max(solvent)
    assert best <= p.max_rate + PRICING_ACCURACY * p.max_rate
    assert p.max_rate < best + step
    fine = [best + k * 1e-5 for k in range(101)]
    finest = max(r for r in fine if r * _risk(inst, members, r) <= p.budget)
    assert abs(finest - p.max_rate) <= 1e-5 + PRICING_ACCURACY * p.max_rate


def test_root_finder_bracket_and_tolerance():
    calls = []

    def h(r):
        calls.append(r)
        return 0.6 - 0.5 * r          # fixed point 0.4
    rate, count = solvent_fixed_point(h, 0.9, "t")
    assert 0.4 - FIXED_POINT_TOLERANCE <= rate <= 0.4 and h(rate) >= rate
    assert count == len(calls) - 1 and count <= 6
    assert solvent_fixed_point(lambda r: 0.95, 0.9, "t")[0] == 0.9      # solvent at the cap
    rate, _ = solvent_fixed_point(lambda r: -0.2 - 0.1 * r, 0.9, "t")  # no rate >= 0 solvent
    assert rate < 0 and -0.2 - 0.1 * rate >= rate
    rate, _ = solvent_fixed_point(lambda r: 0.8 if r < 0.5 else 0.2, 0.9, "t", start=0.3)
    assert 0.5 - FIXED_POINT_TOLERANCE <= rate < 0.5                # a jump across r: closed at the jump


@pytest.mark.parametrize("e", [-0.2, -0.41, -0.68, -1.5])
@pytest.mark.parametrize("budget", [0.3, 0.55, 0.8, 2.0])
def test_root_finder_takes_few_pricings_on_a_risk_that_scales_with_admissions(e, budget):
    """h(r) = B / rho(m(r)) with rho(m) = m + 0.3 m^0.5 (a shock part linear in
    the admissions and a Poisson part as their square root): from r0 the search
    closes a 1e-5 bracket in a handful of pricings, never above r*."""
    def h(r):
        m = ((1 - r) / 0.5) ** e
        return min(0.9, budget / (m + 0.3 * math.sqrt(m)))
    low, high = 0.0, 0.9
    for _ in range(80):                                   # the fine bisection
        mid = 0.5 * (low + high)
        low, high = (mid, high) if h(mid) >= mid else (low, mid)
    rate, count = solvent_fixed_point(h, 0.9, "t", elasticity=e, start=0.5)
    assert h(rate) >= rate
    assert low - FIXED_POINT_TOLERANCE <= rate <= high
    assert count <= 6          # 2-4, plus the cap when h(r0) reaches it


# -- solve, evaluate, explain, uncertainty, stress ------------------------------------


def _tiny_behaviour_files(tmp_path, e=-0.41):
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(_with(tiny_instance_dict(), utilisation_elasticity=e)))
    spec = tmp_path / "spec.toml"
    spec.write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                    'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n'
                    '[objective]\nkind = "max_mean_effective_rate"\n')
    return instance, spec


def test_solve_evaluate_explain_and_simulate_report_behaviour(tmp_path, capsys):
    instance, spec = _tiny_behaviour_files(tmp_path)
    assert main(["solve", str(instance), "--spec", str(spec), "--out", str(tmp_path / "s")]) == 0
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    inst = load_instance(instance)
    for pool in result["pools"]:
        members = pool["counties"]
        weights = [inst.county(c).enrollees * inst.county(c).admission_rate
                   * (1 - inst.county(c).migrant_share * (1 - inst.parameters.migrant_admission_factor))
                   for c in members]
        expected = sum(w * multiplier(-0.41, 0.5, pool["rate"]) for w in weights) / sum(weights)
        assert pool["admission_multiplier"] == pytest.approx(expected, rel=MULTIPLIER_TOLERANCE)
    assert main(["evaluate", str(instance), "--spec", str(spec), "--plan", str(tmp_path / "s" / "result.json"),
                 "--explain", "--out", str(tmp_path / "e")]) == 0
    assert "behaviour [" in capsys.readouterr().out
    evaluation = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    explain = evaluation["explain"]
    assert "behaviour" in explain["parts"]
    assert math.isclose(math.fsum(explain["parts"].values()), explain["total"], abs_tol=1e-9)
    for pool in explain["pools"]:
        b = pool["behaviour"]
        assert b["max_rate_with_response"] < b["max_rate_without_response"]
    assert main(["simulate", str(instance), "--result", str(tmp_path / "s" / "result.json"),
                 "--spec", str(spec), "--scenarios", "2000", "--out", str(tmp_path / "m")]) == 0
    stress = json.loads((tmp_path / "m" / "stress.json").read_text())
    for pool, priced in zip(stress["pools"], result["pools"]):
        assert pool["admission_multiplier"] == pytest.approx(priced["admission_multiplier"], rel=ROUNDING)


def test_stress_test_draws_claims_at_the_plans_multipliers():
    """The exact year-1 mean surplus of the stress test is R - K - r E[Y_P(r)]:
    the claims at the multipliers of the plan's rate, not the observed ones."""
    inst = _load(_with(tiny_instance_dict(), utilisation_elasticity=-0.41))
    result = solve(inst, SPEC)
    report = simulate(inst, SPEC, result, scenarios=500).to_dict()
    for pool, outcome in zip(report["pools"], result.pools):
        expected = outcome.pricing.revenue - outcome.pricing.fixed_costs - outcome.rate * aggregate(
            pool_model(inst, frozenset(outcome.pricing.counties),
                       multipliers=multipliers(inst, outcome.pricing.counties, outcome.rate)), 0.99).mean
        assert pool["exact_mean_surplus"] == pytest.approx(expected, rel=1e-9)


def test_robust_uncertainty_scenario_turns_behaviour_on(tmp_path):
    """An [uncertainty] scenario may set parameters.utilisation_elasticity (its
    default is written for scenarios): robust takes the smaller rate."""
    instance = tmp_path / "instance.json"
    instance.write_text(json.dumps(tiny_instance_dict()))
    data = spec_dict(uncertainty={"method": "robust", "scenarios": [
        {"name": "induced", "set": {"parameters.utilisation_elasticity": -0.41}}]})
    spec = spec_from_dict(data, source="spec.toml")
    inst = load_instance(instance)
    plain = PoolPricer(inst, SPEC).price(["900102"])
    robust = PoolPricer(inst, spec).price(["900102"])
    induced = PoolPricer(_load(_with(tiny_instance_dict(), utilisation_elasticity=-0.41)), SPEC).price(["900102"])
    assert dict(robust.scenario_rates)["induced"] == induced.max_rate
    assert robust.max_rate == induced.max_rate < plain.max_rate
    # "predictive" with such a scenario: tests/test_predictive_behaviour.py.


def test_solve_with_behaviour_is_deterministic_and_every_pool_is_at_its_fixed_point():
    inst = _load(_with(random_instance_dict(7, 5), utilisation_elasticity=-0.41))
    first, second = solve(inst, SPEC), solve(inst, SPEC)
    assert [p.to_dict() for p in first.pools] == [p.to_dict() for p in second.pools]
    pricer = PoolPricer(inst, SPEC)
    for outcome in first.pools:
        assert outcome.rate <= pricer.price(outcome.pricing.counties, outcome.pricing.contracts).max_rate
    ev = evaluate(inst, SPEC, [list(p.pricing.counties) for p in first.pools])
    assert ev.objective == pytest.approx(first.objective, rel=ROUNDING)


@pytest.mark.parametrize("kind", ["max_mean_rate", "max_mean_effective_rate", "max_effective_coverage"])
def test_column_generation_finds_the_enumerated_optimum_with_behaviour(kind):
    """The pool bounds scale expected costs by a lower bound of the
    multipliers (economics.behaviour.bound_multipliers), so generation still
    proves the optimum: the generated plan equals the enumerated one and its
    bound is not below it."""
    inst = _load(_with(random_instance_dict(11, 6), utilisation_elasticity=-0.68, observed_rate=0.3))
    spec = spec_from_dict(spec_dict(objective={"kind": kind}), source="spec.toml")
    enumerated = solve(inst, spec, options=SolveOptions(candidates="enumerate"))
    generated = solve(inst, spec, options=SolveOptions(candidates="generate"))
    assert generated.candidate_generation["method"] == "column_generation"
    assert generated.objective == pytest.approx(enumerated.objective, abs=1e-9)
    assert generated.bound >= enumerated.objective - 1e-9


def test_model_doc_figures_for_tongliao():
    """docs/model.md quotes Tongliao's one-pool max rate with the file's
    response, without any and with the strongest (models/behaviour.toml's
    robust scenarios): compared here."""
    import re

    from pooling.data.spec import load_spec
    text = (Path(__file__).resolve().parent.parent / "docs" / "model.md").read_text(encoding="utf-8")
    quoted = re.search(r"Tongliao's one pool can pay (0\.\d{4}) with the file's response, (0\.\d{4})\s+"
                       r"without any and (0\.\d{4}) with the strongest", text)
    assert quoted is not None
    spec = load_spec(MODELS / "default.toml")
    rates = []
    for e in (-0.407, 0.0, -0.68):
        instance = _bundled("tongliao", e)
        rates.append(f"{PoolPricer(instance, spec).price(sorted(instance.ids)).max_rate:.4f}")
    assert tuple(rates) == quoted.groups()
    assert min(rates) == rates[1]   # below r0 no response is the most admissions: it binds


def _noisy(amplitude: float, salt: int):
    """h(r) = 0.6 - 0.5 r (fixed point 0.4) plus deterministic rounding-like noise of
    up to +-amplitude, which changes sign at random between neighbouring rates."""
    import hashlib
    import struct

    def h(r: float) -> float:
        digest = hashlib.sha256(struct.pack("<d", r) + bytes([salt])).digest()
        return 0.6 - 0.5 * r + amplitude * (int.from_bytes(digest[:4], "little") / 2**31 - 1.0)
    return h


@pytest.mark.parametrize("amplitude", [5e-9, 2e-8])
@pytest.mark.parametrize("salt", range(20))
def test_root_finder_steps_out_of_the_pricing_noise_to_a_solvent_rate(amplitude, salt):
    """Xinyang's 8-county pool with e = -0.41, its CVaR moving by a few CNY in 2.7e9
    between rates 2e-9 apart, made the search stop with "not monotone" when it
    closed a bracket of 1e-9. The noise is far inside today's tolerance: the rate
    returned is solvent and within it of r*."""
    h = _noisy(amplitude, salt)
    rate, _ = solvent_fixed_point(h, 0.9, "t")
    assert h(rate) >= rate
    assert 0.4 - FIXED_POINT_TOLERANCE <= rate <= 0.4 + amplitude


# -- one lattice per cell of multipliers (risk.scaled) --------------------------------


def _bundled(name: str, e: float = -0.41):
    data = instance_to_dict(load_instance(INSTANCES / f"{name}.json"))
    data["parameters"]["utilisation_elasticity"] = e
    return instance_from_dict(data, source=f"{name} e={e:g}")


def test_fixed_point_is_within_the_tolerance_below_a_fine_bisection_of_the_same_pricing():
    """A pool's h(r) priced on its family's lattices is a function of r alone
    (risk.scaled), so a fine bisection of it gives r* to 1e-12: the search's
    answer is solvent and at most FIXED_POINT_TOLERANCE below it."""
    from pooling.economics.pools import _scaled_claims
    inst = _bundled("tongliao")
    spec = spec_from_dict(spec_dict(), source="spec.toml")
    members = frozenset(["150521", "150522", "150523"])
    pricing = PoolPricer(inst, spec).price(members)
    counties = [inst.county(c) for c in sorted(members)]
    family = _scaled_claims(inst, spec, members, (), counties)

    def h(r):
        return solvent_rate(pricing.budget, family.aggregate(multiplier(-0.41, inst.parameters.observed_rate, r)).cvar,
                            spec.rates.max)
    low, high = 0.3, 0.9
    while high - low > 1e-12:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if h(mid) >= mid else (low, mid)
    assert h(pricing.max_rate) >= pricing.max_rate
    assert low - FIXED_POINT_TOLERANCE <= pricing.max_rate <= low


@pytest.mark.parametrize("scale", [0.93, 1.0, 1.02, 1.2])
def test_scaled_family_prices_as_the_engine_does(scale):
    """Y_s on the family's shared lattice against `aggregate` on the model
    built at that multiplier: within the engine's accuracy."""
    from pooling.economics.pools import _scaled_claims
    inst = _bundled("tongliao")
    members = frozenset(["150502", "150521", "150581"])
    family = _scaled_claims(inst, SPEC, members, (), [inst.county(c) for c in sorted(members)])
    shared = family.aggregate(scale)
    built = aggregate(pool_model(inst, members, multipliers=dict.fromkeys(members, scale)), 0.99)
    assert shared.cvar == pytest.approx(built.cvar, rel=PRICING_ACCURACY)
    assert shared.mean == pytest.approx(built.mean, rel=ROUNDING)


@pytest.mark.parametrize("scale", [0.97, 1.01, 1.05, 1.3])
def test_contract_family_interpolates_the_built_models_exactly(scale):
    """With a contract whose capacity binds, rates are affine in the multiplier
    within one form of the fill: the family's model between a cell's ends is
    the model built at the multiplier, to rounding."""
    from pooling.economics.pools import _scaled_claims
    inst = _bundled("xinyang")
    members = frozenset(["411525", "411526"])
    options = [inst.contract("gushi-beijing")]
    family = _scaled_claims(inst, SPEC, members, options, [inst.county(c) for c in sorted(members)])
    got = family.model_at(scale)
    built = pool_model(inst, members, contracts=options, multipliers=dict.fromkeys(members, scale))
    for mine, theirs in zip((got, *got.parts), (built, *built.parts), strict=True):
        assert [(s.severity, s.factor) for s in mine.streams] == [(s.severity, s.factor) for s in theirs.streams]
        assert [s.rate for s in mine.streams] == pytest.approx([s.rate for s in theirs.streams], rel=ROUNDING)


@settings(max_examples=60, deadline=None)
@given(cap=st.floats(0.01, 2.0), weight=st.floats(0.2, 1.0), e=st.floats(-2.0, -0.01),
       r0=st.floats(0.1, 0.9), low=st.floats(0.3, 1.0))
def test_response_bound_is_where_the_two_caps_meet(cap, weight, e, r0, low):
    """group_economics.ResponseBound: s r <= min(S r, low C / m(r)) for every r,
    and the tightened cap is that function's maximum (to the bisection) or the
    cap it was given (also valid), whichever is lower."""
    from pooling.economics.group_economics import ResponseBound
    bound = ResponseBound(elasticity=e, highest_observed_rate=r0, largest_low_multiplier=low)
    (tight,) = bound.tighten(np.array([cap]), np.array([weight]))
    assert tight <= cap
    grid = np.linspace(0.0, 1.0 - 1e-9, 20001)
    envelope = np.minimum(weight * grid, low * cap / np.array([multiplier(e, r0, r) for r in grid]))
    best = min(cap, float(envelope.max()))
    assert best <= tight * (1.0 + ROUNDING) + ROUNDING
    assert tight <= best + 1e-4
