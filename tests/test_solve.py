"""The MILP against the brute-force oracle, baselines, diagnosis and evaluate."""

from __future__ import annotations

import functools
import math

import pytest

from pooling import evaluate, instance_from_dict, solve, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.optimise.bruteforce import brute_force, set_partitions
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

POORER = (220.0, 360.0)
"""Contributions per head: rates land between rates.min and rates.max, so
optima are interior and differ between partitions (not ties at rates.max)."""

OBJECTIVE_TOLERANCE = 1e-7
"""MILP vs brute force on the same prices: both optimise the same finite set,
so they agree up to HiGHS's feasibility tolerance on r_P (1e-7 relative)."""


def test_set_partitions_count_bell_numbers():
    bell = [1, 1, 2, 5, 15, 52, 203, 877]
    for n, expected in enumerate(bell):
        parts = list(set_partitions([str(i) for i in range(n)]))
        assert len(parts) == expected
        assert len({tuple(sorted(tuple(b) for b in p)) for p in parts}) == expected


SOLVE_CASES = [
    # (seed, counties, prefectures, pooling rules)
    *[(seed, 6, 1, {"contiguous": True}) for seed in range(6)],
    *[(seed, 6, 2, {"contiguous": False}) for seed in range(6, 10)],
    *[(seed, 7, 1, {"contiguous": True, "max_counties": 3}) for seed in range(10, 13)],
    (13, 5, 1, {"within": "none", "min_enrollees": 40_000}),
    (14, 7, 2, {"within": "none", "contiguous": True}),
]


@functools.cache
def _case(index):
    """(instance, spec, MILP result, brute-force result) of SOLVE_CASES[index], computed once."""
    seed, n, prefs, rules = SOLVE_CASES[index]
    inst = instance_from_dict(random_instance_dict(seed, n_counties=n, n_prefectures=prefs,
                                                   contribution_range=POORER))
    spec = spec_from_dict(spec_dict(pooling=rules))
    return inst, spec, solve(inst, spec), brute_force(inst, spec, PoolPricer(inst, spec))


@pytest.mark.parametrize("index", range(len(SOLVE_CASES)))
def test_milp_equals_brute_force(index):
    inst, _spec, result, oracle = _case(index)
    if oracle.objective is None:
        assert result.status == "infeasible"
        return
    assert result.status == "optimal"
    assert result.objective == pytest.approx(oracle.objective, abs=OBJECTIVE_TOLERANCE)
    assert result.gap <= 1e-6
    # The plan is a partition of the counties and each pool pays its own max rate.
    members = sorted(c for p in result.pools for c in p.pricing.counties)
    assert members == sorted(inst.ids)
    for pool in result.pools:
        assert pool.rate == pytest.approx(pool.pricing.max_rate, abs=OBJECTIVE_TOLERANCE)


def test_cases_are_not_degenerate():
    """Guard against a degenerate generator: most optima are interior (below
    rates.max), and the cases include optima that merge counties and optima
    that keep some alone."""
    plans = [_case(i)[3] for i in range(len(SOLVE_CASES))]
    interior = sum(1 for o in plans if o.objective is not None and o.objective < 0.9 - 1e-6)
    sizes = [len(b) for o in plans if o.plan for b in o.plan]
    assert interior >= len(SOLVE_CASES) // 2
    assert any(s > 1 for s in sizes) and any(s == 1 for s in sizes)


def test_baselines_are_fixed_partitions():
    inst = instance_from_dict(random_instance_dict(21, n_counties=6, n_prefectures=2))
    status_quo = solve(inst, spec_from_dict(spec_dict("county", rates={"min": 0.0})))
    assert sorted(len(p.pricing.counties) for p in status_quo.pools) == [1] * 6
    prefecture = solve(inst, spec_from_dict(spec_dict("prefecture", rates={"min": 0.0})))
    assert sorted(len(p.pricing.counties) for p in prefecture.pools) == [3, 3]
    optimum = solve(inst, spec_from_dict(spec_dict("optimise", rates={"min": 0.0})))
    # The optimum over all within-prefecture partitions dominates both baselines.
    assert optimum.objective >= status_quo.objective - OBJECTIVE_TOLERANCE
    assert optimum.objective >= prefecture.objective - OBJECTIVE_TOLERANCE
    # The status quo objective is the enrollee-weighted mean of single-county max rates.
    pricer = PoolPricer(inst, spec_from_dict(spec_dict("county", rates={"min": 0.0})))
    expected = math.fsum(c.enrollees * pricer.price([c.id]).max_rate for c in inst.counties)
    assert status_quo.objective == pytest.approx(expected / inst.total_enrollees, rel=ROUNDING)


def test_infeasible_names_the_county_and_the_fix():
    data = tiny_instance_dict()
    data["counties"][2]["contribution_per_capita"] = 120.0  # far too poor to pay 0.3 alone
    inst = instance_from_dict(data)
    result = solve(inst, spec_from_dict(spec_dict("county")))
    # Each county is its own block: the hopeless one does not sink the others.
    assert result.status == "partial"
    assert sorted(p.pricing.counties for p in result.pools) == [("900101",), ("900102",)]
    whole = solve(inst, spec_from_dict(spec_dict("county")), decompose=False)
    assert whole.status == "infeasible" and whole.pools == []
    assert any(line.startswith("county 900103 (County 900103): none of its 1 candidate pools")
               and "lowering rates.min to" in line for line in result.diagnosis)
    # Pooling with richer neighbours rescues it.
    pooled = solve(inst, spec_from_dict(spec_dict("optimise")))
    assert pooled.status == "optimal"
    assert any("900103" in p.pricing.counties and len(p.pricing.counties) > 1 for p in pooled.pools)


def test_evaluate_prices_a_plan_and_flags_rules():
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict(pooling={"contiguous": True}))
    ev = evaluate(inst, spec, [["900101", "900103"], ["900102"]])
    assert not ev.feasible
    assert any("not connected" in v.message and v.rule == "pooling.contiguous" for v in ev.violations)
    pricer = PoolPricer(inst, spec)
    expected = math.fsum(pricer.price(p).max_rate * pricer.price(p).enrollees
                         for p in (["900101", "900103"], ["900102"])) / inst.total_enrollees
    assert ev.objective == pytest.approx(expected, rel=ROUNDING)
    ok = evaluate(inst, spec, [["900101", "900102", "900103"]])
    assert ok.feasible and ok.violations == []
    assert ok.to_dict()["pools"][0]["counties"] == ["900101", "900102", "900103"]


def test_result_dict_has_the_documented_fields():
    inst = instance_from_dict(tiny_instance_dict())
    data = solve(inst, spec_from_dict(spec_dict())).to_dict()
    for key in ("status", "objective", "bound", "gap", "wall_seconds", "pools", "provenance"):
        assert key in data
    for key in ("id", "counties", "rate", "max_rate", "enrollees", "budget", "expected_cost", "var", "cvar"):
        assert key in data["pools"][0]
    for key in ("instance_sha256", "spec_sha256", "pooling_version", "solver", "solver_version",
                "python", "seed"):
        assert key in data["provenance"]
    assert data["provenance"]["solver"] == "highs"
    # Mean-preserving discretisation keeps E[Y] up to the 1e-12 tails cut off
    # the window and FFT round-off; 1e-6 is 1000x inside the 1e-3 promise.
    assert data["numerics"]["max_mean_rel_error"] < 1e-6


def test_an_empty_pricer_passed_in_is_used():
    """Regression: `pricer or PoolPricer(...)` replaced an empty pricer (it has
    __len__, so it was falsy) by a new one, silently ignoring the caller's."""
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict())
    pricer = PoolPricer(inst, spec)
    brute_force(inst, spec, pricer)
    assert len(pricer) > 0
    other = PoolPricer(inst, spec)
    evaluate(inst, spec, [list(inst.ids)], pricer=other)
    assert len(other) == 1


def test_menu_rates_stay_inside_rates_max():
    """Regression: rates.min 0.3 + 12 x 0.05 is 0.9000000000000001 in floating
    point, above rates.max 0.9; reported rates are clamped to the limits."""
    data = tiny_instance_dict()
    for c in data["counties"]:
        c["contribution_per_capita"] = 900.0  # rich: every pool pays rates.max
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict(rates={"min": 0.3, "max": 0.9, "step": 0.05}))
    assert 0.3 + 12 * 0.05 > 0.9
    for result in (solve(inst, spec), evaluate(inst, spec, [[c] for c in inst.ids])):
        rates = [p.rate for p in result.pools]
        assert rates and all(r == 0.9 for r in rates)
        assert result.objective <= 0.9


def test_diagnosis_of_a_county_that_cannot_pay_rate_zero():
    """A tiny fund with a large fixed cost has a negative best rate: lowering
    rates.min cannot help, nor (here) can committing all reserves; the
    diagnosis gives the exact top-up that makes it solvent at rates.min."""
    data = tiny_instance_dict()
    data["counties"][2].update(enrollees=500, reserves=0.0)
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict("county", rates={"min": 0.0, "max": 0.9}))
    result = solve(inst, spec)
    assert result.status == "partial"   # the other counties keep their plans
    line = next(d for d in result.diagnosis if d.startswith("county 900103"))
    assert "lowering rates.min" not in line and "reserve_share" not in line
    assert "cannot pay even rate 0" in line
    pricing = PoolPricer(inst, spec).price(["900103"])
    assert pricing.max_rate < 0
    assert f"a top-up of {-pricing.budget:,.0f} CNY" in line
    # With reserves to spare, the share that would admit it is named and it works.
    data["counties"][2].update(reserves=2_000_000.0)
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict("county", rates={"min": 0.3, "max": 0.9},
                                    solvency={"reserve_share": 0.0}))
    line = next(d for d in solve(inst, spec).diagnosis if d.startswith("county 900103"))
    share = float(line.split("raising solvency.reserve_share to ")[1].split()[0])
    assert 0 < share <= 1
    fixed = spec_from_dict(spec_dict("county", rates={"min": 0.3, "max": 0.9},
                                     solvency={"reserve_share": min(1.0, share + 1e-4)}))
    assert solve(inst, fixed).status == "optimal"
