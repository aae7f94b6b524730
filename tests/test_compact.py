"""The compact assignment formulation against set partitioning and brute force,
all on the same sampled scenarios (pooling.economics.loss_scenarios)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pooling import SolveOptions, instance_from_dict, spec_from_dict
from pooling.economics.loss_scenarios import (
    ScenarioPricer,
    pool_budget,
    pool_losses,
    sample_scenarios,
    scenario_max_rate,
)
from pooling.economics.pools import pool_model
from pooling.optimise.bruteforce import set_partitions
from pooling.optimise.candidates import candidate_pools, pool_rule_violations
from pooling.optimise.formulations.compact import (
    build_compact,
    compact_plan,
    model_size,
)
from pooling.optimise.formulations.set_partition import (
    Column,
    PartitionRules,
    build_set_partition,
)
from pooling.optimise.solver import Status, run_highs
from pooling.risk.measures import sample_var_cvar
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

SCENARIOS = 150
SEED = 11

OBJECTIVE_TOLERANCE = 1e-6
"""Compact solver objective vs the set-partitioning optimum. The compact model
holds r CVaR(L) <= B only to HiGHS's primal feasibility tolerance (1e-7 on
rows scaled to O(1) by `money_scale`), i.e. a pool's rate may exceed its
price by 1e-7 / CVaR_scaled, and its big-M products r x are exact only up to
the integrality tolerance (1e-6) times r_max <= 1. Measured gaps are ~1e-12."""

REPRICE_TOLERANCE = 1e-9
"""Plans re-priced by `scenario_max_rate` (the compact plan, the MILP's
chosen columns, brute-force partitions): the same arithmetic on the same
pools, equal up to summation order (~1e-15), while distinct plans in these
cases differ by more than 1e-3. The MILP's own objective is not compared at
this tolerance: its r_P may exceed r*_P by MENU_SLACK (1e-9)."""


def contribution_scaled(data: dict, factor: float) -> dict:
    """Lower contributions so that solvency binds below r_max (fewer ties)."""
    for county in data["counties"]:
        county["contribution_per_capita"] *= factor
    return data


def make_spec(**pooling):
    return spec_from_dict(spec_dict(pooling=pooling, rates={"min": 0.3, "max": 1.0},
                                    solvency={"reserve_share": 0.2}))


def plan_value(instance, spec, scenarios, plan) -> float:
    """Enrollee-weighted mean of each pool's scenario price (rates as priced)."""
    return math.fsum(sum(instance.county(c).enrollees for c in members)
                     * scenario_max_rate(instance, spec, scenarios, members)
                     for members in plan) / instance.total_enrollees


def solve_set_partition(instance, spec, scenarios):
    """Columns priced on the scenarios; returns (plan, value) or None if infeasible."""
    pricer = ScenarioPricer(instance, spec, scenarios)
    columns = []
    for pool in candidate_pools(instance, spec):
        pricing = pricer.price(pool)
        if pricing.max_rate >= spec.rates.min:
            columns.append(Column(pricing.counties, pricing.enrollees, pricing.max_rate,
                                  min_rate=spec.rates.min))
    covered = {c for col in columns for c in col.members}
    if covered != set(instance.ids):
        return None
    model = build_set_partition(columns, sorted(instance.ids), instance.total_enrollees,
                                PartitionRules(min_rate=spec.rates.min, max_rate=spec.rates.max))
    run = run_highs(model, SolveOptions())
    if run.status == Status.INFEASIBLE:
        return None
    assert run.status == Status.OPTIMAL
    plan = sorted(columns[j].members for j in model.P if model.y[j].value > 0.5)
    return plan, plan_value(instance, spec, scenarios, plan)


def brute_force_on_scenarios(instance, spec, scenarios):
    """Best value over all set partitions, pools priced on the scenarios, and
    every partition reaching it (ties); its own loop over partitions, rules
    from candidates.pool_rule_violations."""
    pricer = ScenarioPricer(instance, spec, scenarios)
    values = {}
    for partition in set_partitions(sorted(instance.ids)):
        if any(pool_rule_violations(instance, spec, block) for block in partition):
            continue
        prices = [pricer.price(block) for block in partition]
        if any(p.max_rate < spec.rates.min for p in prices):
            continue
        plan = tuple(sorted(tuple(sorted(b)) for b in partition))
        values[plan] = math.fsum(p.enrollees * p.max_rate for p in prices) / instance.total_enrollees
    if not values:
        return None, []
    best = max(values.values())
    return best, sorted(list(p) for p, v in values.items() if v >= best - REPRICE_TOLERANCE)


def random_case(seed: int, n: int, prefectures: int = 1):
    return lambda: contribution_scaled(random_instance_dict(seed, n, prefectures), 0.8)


CASES = [
    # (id, instance data, pooling rules). On seed 6 each rule moves the optimum:
    # 0.791 (none), 0.782 (none, contiguous), 0.759 (prefecture), 0.715 (both).
    ("tiny", lambda: contribution_scaled(tiny_instance_dict(), 0.85), {}),
    ("r5-contiguous", random_case(5, 5), {"contiguous": True}),
    ("r6-none", random_case(6, 5, 2), {"within": "none"}),
    ("r6-none-contiguous", random_case(6, 5, 2), {"within": "none", "contiguous": True}),
    ("r6-within-prefecture", random_case(6, 5, 2), {}),
    ("r6-within-prefecture-contiguous", random_case(6, 5, 2), {"contiguous": True}),
    ("r3-within-prefecture-shock", random_case(3, 5, 2), {}),
    ("r7-shock", random_case(7, 4), {}),
    ("r8-none-contiguous", random_case(8, 5, 2), {"within": "none", "contiguous": True}),
    ("r9-limits", random_case(9, 5), {"max_counties": 2, "min_enrollees": 20_000}),
    ("r7-infeasible-contiguous", random_case(7, 5, 2), {"contiguous": True}),
]


@pytest.mark.parametrize("data,rules", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_compact_equals_set_partition_and_brute_force(data, rules):
    instance = instance_from_dict(data())
    spec = make_spec(**rules)
    scenarios = sample_scenarios(instance, SCENARIOS, seed=SEED)

    model = build_compact(instance, spec, scenarios)
    run = run_highs(model, SolveOptions())
    reference = solve_set_partition(instance, spec, scenarios)
    oracle_value, optimal_plans = brute_force_on_scenarios(instance, spec, scenarios)
    if reference is None:
        assert oracle_value is None
        assert run.status == Status.INFEASIBLE
        return
    sp_plan, sp_value = reference
    assert run.status == Status.OPTIMAL
    assert sp_value == pytest.approx(oracle_value, abs=REPRICE_TOLERANCE)
    assert run.objective == pytest.approx(sp_value, abs=OBJECTIVE_TOLERANCE)

    plan = compact_plan(model)
    members = [m for m, _ in plan]
    assert sorted(c for m in members for c in m) == sorted(instance.ids)
    assert all(not pool_rule_violations(instance, spec, m) for m in members)
    # Each compact pool pays its scenario price (the LP's CVaR is the sample CVaR).
    for m, rate in plan:
        assert rate == pytest.approx(scenario_max_rate(instance, spec, scenarios, m),
                                     abs=OBJECTIVE_TOLERANCE)
    assert plan_value(instance, spec, scenarios, members) == pytest.approx(sp_value, abs=REPRICE_TOLERANCE)
    # Both plans are optimal partitions; where the optimum is unique, the same one.
    assert members in optimal_plans and sp_plan in optimal_plans


def test_cases_are_not_degenerate():
    """The cases above must include optima that merge counties, optima that keep
    some alone, pools whose rate binds below r_max, and mostly unique optima
    (so "same partition" is tested, not only "same value")."""
    merged = alone = binding = unique = 0
    for _, data, rules in CASES:
        instance = instance_from_dict(data())
        spec = make_spec(**rules)
        scenarios = sample_scenarios(instance, SCENARIOS, seed=SEED)
        _, plans = brute_force_on_scenarios(instance, spec, scenarios)
        if not plans:
            continue
        plan = plans[0]
        unique += len(plans) == 1
        merged += any(len(p) > 1 for p in plan)
        alone += any(len(p) == 1 for p in plan)
        binding += any(scenario_max_rate(instance, spec, scenarios, p) < spec.rates.max - 1e-6 for p in plan)
    assert merged >= 3 and alone >= 2 and binding >= 5 and unique >= len(CASES) - 3, \
        (merged, alone, binding, unique)


@pytest.mark.parametrize("seed,prefectures,rules", [(2, 1, {"contiguous": True}), (3, 2, {})])
def test_symmetric_slots_agree_with_symmetry_breaking(seed, prefectures, rules):
    """n interchangeable slots (group and root choices per slot) give the same optimum."""
    instance = instance_from_dict(contribution_scaled(random_instance_dict(seed, 4, prefectures), 0.8))
    spec = make_spec(**rules)
    scenarios = sample_scenarios(instance, 100, seed=SEED)
    plain = build_compact(instance, spec, scenarios, symmetry_breaking=False)
    broken = build_compact(instance, spec, scenarios)
    assert model_size(plain)["binaries"] > model_size(broken)["binaries"]
    a, b = run_highs(plain, SolveOptions()), run_highs(broken, SolveOptions())
    assert a.status == b.status == Status.OPTIMAL
    assert a.objective == pytest.approx(b.objective, abs=OBJECTIVE_TOLERANCE)
    assert [m for m, _ in compact_plan(plain)] == [m for m, _ in compact_plan(broken)]


def test_infeasible_spec_is_infeasible_in_both():
    """Best plan pools all three at rate ~0.53 < rates.min 0.6."""
    instance = instance_from_dict(contribution_scaled(tiny_instance_dict(), 0.5))
    spec = spec_from_dict(spec_dict(rates={"min": 0.6, "max": 1.0}, solvency={"reserve_share": 0.2}))
    scenarios = sample_scenarios(instance, 100, seed=SEED)
    assert solve_set_partition(instance, spec, scenarios) is None
    assert run_highs(build_compact(instance, spec, scenarios), SolveOptions()).status == Status.INFEASIBLE


# -- scenarios --------------------------------------------------------------


def test_scenarios_are_deterministic_and_seeded():
    instance = instance_from_dict(random_instance_dict(7, 4))
    a, b = sample_scenarios(instance, 50, seed=3), sample_scenarios(instance, 50, seed=3)
    c = sample_scenarios(instance, 50, seed=4)
    for name in ("theta", "home", "in_network", "out_network", "outside"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.home, c.home)
    assert instance.parameters.frequency_shock_cv > 0 and np.std(a.theta) > 0


def test_out_of_network_is_the_thinned_in_network_admissions():
    data = random_instance_dict(8, 5)
    phi = data["parameters"]["out_of_network_factor"]
    instance = instance_from_dict(data)
    s = sample_scenarios(instance, 100, seed=1)
    assert np.all(s.out_network <= phi * s.in_network * (1 + ROUNDING))
    assert np.any(s.out_network < phi * s.in_network)
    # q = 1: every admission is claimed, so out of network is exactly phi x in network.
    data["parameters"]["out_of_network_claim_share"] = 1.0
    full = sample_scenarios(instance_from_dict(data), 100, seed=1)
    assert np.array_equal(full.out_network, phi * full.in_network)
    assert np.array_equal(full.home, s.home)
    # q = 0: nothing out of network is claimed.
    data["parameters"]["out_of_network_claim_share"] = 0.0
    none = sample_scenarios(instance_from_dict(data), 100, seed=1)
    assert not none.out_network.any() and not none.outside.any()


def test_pool_losses_match_the_exact_model_moments():
    """Sample mean and variance of L_P against pools.pool_model (its own
    stream code): z-scores within 4.5 (mean) and the variance within 15%."""
    instance = instance_from_dict(random_instance_dict(7, 4))
    s = sample_scenarios(instance, 2000, seed=5)
    ids = sorted(instance.ids)
    for pool in ([ids[0]], ids[:2], ids[1:], ids):
        losses = pool_losses(s, pool)
        model = pool_model(instance, frozenset(pool))
        z = (losses.mean() - model.mean) / math.sqrt(model.variance / len(losses))
        assert abs(z) < 4.5, (pool, z)
        assert losses.var(ddof=1) == pytest.approx(model.variance, rel=0.15)


def test_scenario_max_rate_is_budget_over_sample_cvar():
    instance = instance_from_dict(tiny_instance_dict())
    spec = make_spec()
    s = sample_scenarios(instance, 200, seed=2)
    pool = ["900101", "900102"]
    losses = pool_losses(s, pool)
    _, cvar = sample_var_cvar(losses, spec.solvency.level)
    # R-U definition, minimised over the sample points (a minimiser is one of them).
    ru = min(t + np.maximum(losses - t, 0).mean() / (1 - spec.solvency.level) for t in losses)
    assert cvar == pytest.approx(ru, rel=ROUNDING)
    expected = min(spec.rates.max, pool_budget(instance, spec, pool) / cvar)
    assert scenario_max_rate(instance, spec, s, pool) == expected


@pytest.mark.parametrize("section,values", [
    ("solvency", {"measure": "var"}),
    ("objective", {"kind": "max_min_rate"}),
    ("equalisation", {"max_rate_gap": 0.1}),
    ("rates", {"step": 0.05}),
    ("pooling", {"scope": "prefecture"}),
])
def test_unsupported_specs_are_refused(section, values):
    instance = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict(**{section: values}))
    with pytest.raises(ValueError):
        build_compact(instance, spec, sample_scenarios(instance, 10, seed=0))
