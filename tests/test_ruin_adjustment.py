"""Adjustment funds under the multi-year ruin measure (issue 27 item 2;
pooling/economics/adjustment_ruin.py): one year agrees with the one-year VaR
pricing within the Monte Carlo interval; the vectorised years follow the
rules as written (a scalar loop on the same draws); the ruin frequencies
against a brute-force simulation drawn claim by claim; the plan and the
three modes under ruin with trend."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import tests.references as ref
from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.economics.adjustment_fund import RATE_TOLERANCE, AdjustmentFundPricer
from pooling.economics.adjustment_ruin import GroupPaths
from pooling.economics.pools import PoolPricer
from pooling.optimise.adjustment import compare_modes
from tests.factories import county, instance_dict, spec_dict
from tests.tolerances import ROUNDING

SHOCKS = {"frequency_shock_cv": 0.2,
          "regional_shocks": {"prefecture": {"weight": 0.3, "cv": 0.3}, "county": {"weight": 0.2, "cv": 0.4}}}
ORDER_STATISTIC_Z = 3.29
"""99.9 % normal quantile (the order-statistic interval of a sample quantile)."""
TWO_SAMPLE_Z = 4.0
"""Two independent Monte Carlo frequencies of one probability differ by more
than 4 standard errors with probability 6e-5: the bound for the brute-force
comparison (several frequencies are compared, each must pass)."""


def _instance(members):
    """(id, prefecture, enrollees, contribution per capita, reserves): tens of
    admissions a year, budgets near the expected claims so that deficits are common."""
    return instance_from_dict(instance_dict(
        [county(cid, prefecture=pref, enrollees=n, contribution_per_capita=p, reserves=a, admission_rate=0.05,
                adjacent=[m[0] for m in members if m[0] != cid])
         for cid, pref, n, p, a in members], admin_fixed_per_fund=0.0, **SHOCKS))


PAIR = [("a", "p1", 500, 200.0, 0.0), ("b", "p1", 700, 190.0, 0.0)]
TRIO = [("a", "p1", 500, 215.0, 20_000.0), ("b", "p1", 700, 205.0, 30_000.0), ("c", "p2", 400, 225.0, 10_000.0)]


def _spec(measure, level, *, retention=0.0, years=1, scenarios=20_000, contribution=(0.0, 0.1), **growth):
    solvency = {"measure": measure, "level": level, "reserve_share": 0.5}
    if measure == "ruin":
        solvency |= {"horizon_years": years, **growth}
    return spec_from_dict(spec_dict(pooling={"mode": "adjustment_fund"},
                                    adjustment_fund={"contribution": list(contribution), "retention": retention},
                                    solvency=solvency, rates={"min": 0.0, "max": 1.0},
                                    simulation={"scenarios": scenarios, "seed": 3}))


@pytest.mark.parametrize(("share", "retention"), [(0.1, 0.0), (0.1, 0.05), (0.0, 0.0)])
def test_one_year_agrees_with_the_one_year_var_pricing(share, retention):
    """Horizon 1: the fund is ruined when S > F and a member (retention > 0)
    when r Y_i > B_i - c R_i, the one-year model's VaR events; so the common
    rate found by simulation lies between the exact one-year VaR rates at the
    level -+ the order-statistic half-width."""
    inst = _instance(PAIR)
    n, level = 20_000, 0.95
    half = ORDER_STATISTIC_Z * math.sqrt(level * (1 - level) / n)
    simulated = AdjustmentFundPricer(inst, _spec("ruin", level, retention=retention, scenarios=n)) \
        .max_common_rate("ab", share, retention)
    low = AdjustmentFundPricer(inst, _spec("var", level + half, retention=retention)) \
        .max_common_rate("ab", share, retention)
    high = AdjustmentFundPricer(inst, _spec("var", level - half, retention=retention)) \
        .max_common_rate("ab", share, retention)
    assert 0.0 < low <= simulated <= high < 1.0


def _scalar_ruin(paths: GroupPaths, share, retention, rates, growth):
    """The year-by-year rules of the module docstring, one path and one member at a time."""
    members, years, scenarios = paths.costs.shape
    fund_ruined, member_ruined = 0, [0] * members
    for s in range(scenarios):
        reserves = [float(a) for a in paths.start]
        fund, fund_hit, hit = 0.0, False, [False] * members
        for t in range(years):
            index = (1.0 + growth) ** (t + 1)
            revenue = [float(r) * index for r in paths.revenue]
            held, deficit = [], []
            for i in range(members):
                x = (reserves[i] + revenue[i] - float(paths.fixed[i]) * index - share * revenue[i]
                     - rates[i] * float(paths.costs[i, t, s]))
                held.append(x)
                deficit.append(max(0.0, -x - retention * revenue[i]))
            means = fund + share * sum(revenue)
            demand = sum(deficit)
            if demand > means:
                fund_hit = True
                paid = [d * means / demand for d in deficit]
                fund = 0.0
            else:
                paid = deficit
                fund = means - demand
            for i in range(members):
                reserves[i] = held[i] + paid[i]
                hit[i] = hit[i] or reserves[i] < 0.0
        fund_ruined += fund_hit
        member_ruined = [k + h for k, h in zip(member_ruined, hit)]
    return fund_ruined / scenarios, [k / scenarios for k in member_ruined]


@pytest.fixture(scope="module")
def trio_paths() -> GroupPaths:
    """Four years of the trio's draws with reserves, a trend and revenue growth (built once: the
    samplers' laws are the costly part)."""
    spec = _spec("ruin", 0.95, years=4, scenarios=600, admissions_trend=0.03, cost_trend=0.02,
                 revenue_growth=0.04)
    return GroupPaths(AdjustmentFundPricer(_instance(TRIO), spec).instance, spec, "abc")


@pytest.mark.parametrize(("share", "retention"), [(0.08, 0.0), (0.08, 0.03), (0.01, 0.1)])
def test_the_years_follow_the_rules_as_written(trio_paths, share, retention):
    """The vectorised years against a scalar loop on the same draws: equal
    frequencies, path for path, with reserves, a trend and revenue growth."""
    paths = trio_paths
    rates = [0.55, 0.6, 0.5]
    ruin = paths.ruin(share, retention, rates)
    fund, members = _scalar_ruin(paths, share, retention, rates, 0.04)
    assert ruin.fund == pytest.approx(fund, abs=0.5 / 600)
    assert ruin.members == pytest.approx(tuple(members), abs=0.5 / 600)
    assert max(members) > 0.0 and fund > 0.0   # the rules were exercised


def _claim_by_claim_costs(instance, years, scenarios, seed, admissions_trend, cost_trend):
    """Y_i,t per (member, year, path), drawn claim by claim (tests/references.py)."""
    return ref.claim_by_claim_costs(instance, years, scenarios, seed, admissions_trend, cost_trend)


def test_ruin_frequencies_against_a_claim_by_claim_simulation():
    """Three members in two prefectures (national, prefecture and county
    shocks), three years with trend and revenue growth: the fund's and each
    member's ruin frequency against the same rules run on claims drawn one
    by one, within TWO_SAMPLE_Z standard errors."""
    inst = _instance(TRIO)
    n = 20_000
    growth = {"admissions_trend": 0.04, "cost_trend": 0.03, "revenue_growth": 0.05}
    spec = _spec("ruin", 0.95, retention=0.02, years=3, scenarios=n, **growth)
    paths = GroupPaths(AdjustmentFundPricer(inst, spec).instance, spec, "abc")
    share, retention, rates = 0.1, 0.02, [0.6, 0.62, 0.55]
    engine = paths.ruin(share, retention, rates)
    brute = GroupPaths.__new__(GroupPaths)
    brute.__dict__.update(paths.__dict__)
    brute.costs = _claim_by_claim_costs(inst, 3, n, 77, growth["admissions_trend"], growth["cost_trend"])
    truth = brute.ruin(share, retention, rates)
    for p, q in zip((engine.fund, *engine.members), (truth.fund, *truth.members)):
        pooled = (p + q) / 2
        assert 0.0 < pooled < 1.0
        assert abs(p - q) <= TWO_SAMPLE_Z * math.sqrt(2 * pooled * (1 - pooled) / n)


def test_a_higher_cost_trend_never_raises_the_group_s_rate():
    inst = _instance(TRIO)
    rates = [AdjustmentFundPricer(inst, _spec("ruin", 0.95, years=3, scenarios=1_000, cost_trend=g))
             .max_common_rate("abc", 0.1, 0.0) for g in (0.0, 0.06)]
    assert rates[0] > rates[1] > 0.0


def test_the_three_modes_under_ruin_with_trend():
    """No pooling, adjustment funds and unified pools all price under the ruin
    measure with trend (the spec's refusal is gone)."""
    inst = _instance(TRIO)
    spec = _spec("ruin", 0.95, years=3, scenarios=1_000, contribution=(0.0, 0.1), cost_trend=0.04,
                 revenue_growth=0.03)
    comparison = compare_modes(inst, spec)
    plan = comparison.adjustment_fund
    assert plan.status == "optimal" and 0.3 <= plan.objective <= 1.0
    assert comparison.unified_status == "optimal"
    assert None not in (comparison.no_pooling, comparison.unified, comparison.adjustment_fund.objective)
    # c = 0 is on the menu and prices members as alone, on the same draws: never below no pooling
    assert plan.objective >= comparison.no_pooling - RATE_TOLERANCE
    for group in plan.to_dict()["groups"]:   # each group reports its simulated ruin, within the level
        ruin = group["ruin_probability"]
        assert set(ruin["members"]) == set(group["counties"])
        assert max(ruin["fund"], *ruin["members"].values()) <= 1.0 - 0.95 + ROUNDING


def test_paths_depend_on_the_group_and_seed_only():
    """A group's draws are keyed by its ids and the seed: the same arrays
    whatever order the ids come in or whatever was drawn before (so a plan
    does not depend on the order groups are priced in, or on workers)."""
    inst = _instance(PAIR)
    spec = _spec("ruin", 0.95, years=2, scenarios=1_000)
    pricer = AdjustmentFundPricer(inst, spec)
    first = GroupPaths(pricer.instance, spec, ["a", "b"]).costs
    GroupPaths(pricer.instance, spec, ["a"])
    again = GroupPaths(pricer.instance, spec, ["b", "a"]).costs
    assert np.array_equal(first, again)
    other = GroupPaths(pricer.instance, _spec("ruin", 0.95, years=2, scenarios=1_000, contribution=(0.0, 0.2)),
                       ["a", "b"]).costs
    assert np.array_equal(first, other)


def test_without_common_shocks_each_member_is_drawn_from_its_whole_law():
    """No national or prefecture shock (the common multiplier is constant):
    each member's law is drawn whole, its own county part mixed in; the
    mean claims are the closed form's within Monte Carlo error."""
    inst = instance_from_dict(instance_dict(
        [county(cid, prefecture=pref, enrollees=n, contribution_per_capita=p, reserves=a, admission_rate=0.05)
         for cid, pref, n, p, a in PAIR], admin_fixed_per_fund=0.0, frequency_shock_cv=0.0,
        regional_shocks={"county": {"weight": 0.5, "cv": 0.3}}))
    spec = _spec("ruin", 0.95, years=1, scenarios=20_000)
    costs = GroupPaths(AdjustmentFundPricer(inst, spec).instance, spec, "ab").costs[:, 0]
    for draws, enrollees in zip(costs, (500, 700)):
        assert abs(draws.mean() - enrollees * 0.05 * 4000.0) < 4.0 * draws.std() / math.sqrt(draws.size)


def test_no_fund_prices_each_member_as_the_unified_measure_alone():
    """c = 0: no fund, each member alone on the unified measure's own draws,
    so the group's common rate is its members' smallest rate alone (to the
    bisection's tolerance) and each member's ruin frequency at its rate
    alone is within the allowed count."""
    inst = _instance(TRIO)
    spec = _spec("ruin", 0.95, years=3, scenarios=2_000, cost_trend=0.03, revenue_growth=0.01)
    pricer = AdjustmentFundPricer(inst, spec)
    unified = PoolPricer(inst, dataclasses.replace(spec, adjustment_fund=None))
    alone = [unified.price([c]).max_rate for c in "abc"]
    assert 0.0 < min(alone) < 1.0
    assert min(alone) - RATE_TOLERANCE <= pricer.max_common_rate("abc", 0.0, 0.0) <= min(alone)
    ruin = GroupPaths(pricer.instance, spec, "abc").ruin(0.0, 0.0, alone)
    assert ruin.fund == 0.0 and max(ruin.members) <= 0.05
    above = GroupPaths(pricer.instance, spec, "abc").ruin(0.0, 0.0, [r + 1e-6 for r in alone])
    assert all(b > a for a, b in zip(ruin.members, above.members))
