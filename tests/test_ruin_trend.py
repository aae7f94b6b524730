"""Trend in the ruin measure (issue 27 item 2): growth 0 means what it always
meant, bit for bit; a cost trend matched by revenue growth is a change of
scale; a higher claims trend never raises the admissible rate; one year with
trend is B_1 / VaR of the trended law within the order-statistic interval;
the spec's fields and their refusals; the no-pooling mode (scope county)
under ruin and trend."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling import instance_from_dict, solve, spec_from_dict
from pooling.economics.pools import PoolPricer, pool_model
from pooling.errors import InputError
from pooling.risk.claims import aggregate
from pooling.risk.compound import scaled_admissions
from pooling.risk.ruin import (
    NO_TREND,
    SOLVE_STREAM,
    Trend,
    critical_rates,
    pool_key,
    ruin_max_rate,
    theta_paths,
    yearly_costs,
)
from pooling.risk.sampling import PoolYearSampler
from tests.factories import county, instance_dict, spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING

SHOCKS = {"frequency_shock_cv": 0.1,
          "regional_shocks": {"prefecture": {"weight": 0.3, "cv": 0.2}, "county": {"weight": 0.2, "cv": 0.3}}}
ORDER_STATISTIC_Z = 3.29
"""99.9 % normal quantile: the distribution-free interval of a sample quantile
used for the simulated rate against its exact value (as tests/test_ruin.py)."""
FREQUENCY_MONOTONE_SLACK = 1e-6
"""Relative amount by which a rate may rise when admissions trend up. Under a
cost trend the draws scale exactly (pathwise monotone, no slack); an
admissions trend draws year t from another lattice law (its own span and
window) by the same uniforms, and two lattices' quantile functions at one
uniform agree with the exact ones only to the lattice's discretisation
(~1e-7 of the cost, risk.claims' self-checks), so a trend step far smaller
than that could move a draw by that much either way."""


def _shocked_instance(**county_fields):
    """Two counties whose rates stay below 1 (contributions ~ expected claims + costs)."""
    return instance_from_dict(instance_dict(
        [county("a", enrollees=6_000, contribution_per_capita=330.0, reserves=600_000.0, **county_fields),
         county("b", enrollees=9_000, contribution_per_capita=320.0, reserves=400_000.0, **county_fields)],
        admin_fixed_per_fund=100_000.0, **SHOCKS))


def _ruin_spec(years=3, scenarios=4_000, level=0.95, reserve_share=0.5, **growth):
    return spec_from_dict(spec_dict("county", solvency={"measure": "ruin", "level": level,
                                                        "horizon_years": years, "reserve_share": reserve_share,
                                                        **growth},
                                    rates={"min": 0.0, "max": 1.0},
                                    simulation={"scenarios": scenarios, "seed": 11}))


# -- growth 0: today's meaning, bit for bit ------------------------------------------------------

def test_zero_growth_is_the_measure_of_before_bit_for_bit():
    """The draws and r_crit with the growth fields at 0 are those of the code
    before them: one sampler, the same uniforms in the same order, A_0 + t c."""
    inst = _shocked_instance()
    model = pool_model(inst, frozenset(["a", "b"]))
    years, scenarios, seed = 4, 3_000, 5
    thetas = theta_paths(model.shock_cv, years, scenarios, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SOLVE_STREAM, 1, *pool_key(["a", "b"])]))
    sampler = PoolYearSampler(model)
    before = np.vstack([sampler.sample(thetas[t], rng.random(scenarios)) for t in range(years)])
    now = yearly_costs(model, ["b", "a"], years=years, scenarios=scenarios, seed=seed, trend=Trend(0.0, 0.0, 0.0))
    assert np.array_equal(before, now)
    capital = 1e6 + 2e5 * np.arange(1, years + 1)[:, None]
    cumulative = np.cumsum(before, axis=0)
    assert np.array_equal(critical_rates(before, 1e6, 2e5, 0.0), (capital / cumulative).min(axis=0))


def test_a_spec_with_zero_growth_writes_and_prices_as_one_without():
    inst = _shocked_instance()
    plain, zeros = _ruin_spec(), _ruin_spec(admissions_trend=0.0, cost_trend=0.0, revenue_growth=0.0)
    assert plain.to_dict() == zeros.to_dict()
    assert not {"admissions_trend", "cost_trend", "revenue_growth"} & set(plain.to_dict()["solvency"])
    a, b = solve(inst, plain).to_dict(), solve(inst, zeros).to_dict()
    for result in (a, b):
        result.pop("wall_seconds"), result.pop("timings")
        result["provenance"].pop("spec_sha256")   # hashes the spec as written (zeros spelled out or not)
    assert a == b
    grown = _ruin_spec(cost_trend=0.05).to_dict()["solvency"]
    assert grown["cost_trend"] == 0.05 and "admissions_trend" not in grown
    assert spec_from_dict(spec_dict("county", solvency=grown)).solvency == _ruin_spec(cost_trend=0.05).solvency


# -- scale invariance ----------------------------------------------------------------------------

@pytest.mark.parametrize("growth", [0.04, 0.25, -0.1])
def test_cost_trend_matched_by_revenue_growth_changes_only_the_scale(growth):
    """One county, no reserves committed, one year: ruin <=> r (1+g) Y > (1+g)(R - K),
    the event without trend, path by path on the same random numbers. (With
    reserves, or beyond one year, the trend is not a change of scale: reserves
    earn nothing here, so growing flows outweigh them, and later years weigh more.)"""
    inst = _shocked_instance()
    plain = PoolPricer(inst, _ruin_spec(years=1, reserve_share=0.0)).price(["a"]).max_rate
    grown = PoolPricer(inst, _ruin_spec(years=1, reserve_share=0.0, cost_trend=growth,
                                        revenue_growth=growth)).price(["a"]).max_rate
    assert 0.0 < plain < 1.0
    assert grown == pytest.approx(plain, rel=ROUNDING)
    costs = np.random.default_rng(1).gamma(2.0, 1.0, size=(1, 500))
    assert np.allclose(critical_rates(costs * (1 + growth), 0.0, 0.7, growth),
                       critical_rates(costs, 0.0, 0.7), rtol=ROUNDING, atol=0.0)


# -- a higher claims trend never raises the admissible rate ---------------------------------------

@given(costs_seed=st.integers(0, 2 ** 16), cost=st.floats(-0.3, 0.5), extra=st.floats(0.0, 0.3),
       revenue=st.floats(-0.3, 0.5), start=st.floats(0.0, 5.0), years=st.integers(1, 8))
@settings(max_examples=150, deadline=None)
def test_a_higher_cost_trend_never_raises_any_critical_rate(costs_seed, cost, extra, revenue, start, years):
    """Path by path: year-t claims (1 + g_c)^t Y_t rise with g_c, so r_crit cannot rise."""
    costs = np.random.default_rng(costs_seed).gamma(1.5, 1.0, size=(years, 64))
    factors = lambda g: (1.0 + g) ** np.arange(1, years + 1)[:, None]  # noqa: E731
    low = critical_rates(costs * factors(cost), start, 1.0, revenue)
    high = critical_rates(costs * factors(cost + extra), start, 1.0, revenue)
    assert np.all(high <= low)


_SMALL = instance_from_dict(instance_dict(
    [county("a", enrollees=1_000, contribution_per_capita=330.0), county("b", enrollees=1_500)],
    admin_fixed_per_fund=0.0, frequency_shock_cv=0.0, regional_shocks=SHOCKS["regional_shocks"]))
_MODEL = pool_model(_SMALL, frozenset(["a", "b"]))
"""Small, and with no national shock: one exact law per year (the regional parts mixed in), so
an example costs a few lattices."""


@given(admissions=st.floats(-0.2, 0.3), cost=st.floats(-0.2, 0.3), more_admissions=st.floats(0.0, 0.2),
       more_cost=st.floats(0.0, 0.2), revenue=st.floats(-0.1, 0.2))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_higher_claims_trend_never_raises_the_admissible_rate(admissions, cost, more_admissions, more_cost,
                                                               revenue):
    """The pool's ruin rate on common random numbers, with both regional
    parts, under (g_a, g_c) and under a higher pair."""
    common = {"start_reserves": 2e5, "net_income": 1_000 * 330.0 + 1_500 * 400.0 - 1.05e5, "years": 3,
              "scenarios": 1_000,
              "level": 0.95, "seed": 2}
    low = ruin_max_rate(_MODEL, ["a", "b"], trend=Trend(admissions, cost, revenue), **common)
    high = ruin_max_rate(_MODEL, ["a", "b"], trend=Trend(admissions + more_admissions, cost + more_cost, revenue),
                         **common)
    assert high <= low + FREQUENCY_MONOTONE_SLACK * abs(low)


# -- one year with trend: B_1 / VaR of the trended law --------------------------------------------

@pytest.mark.parametrize(("admissions", "cost", "revenue"), [(0.0, 0.0, 0.0), (0.08, 0.0, 0.0),
                                                              (0.0, 0.06, 0.03), (0.15, 0.05, 0.1)])
def test_one_year_with_trend_is_the_var_rate_of_the_trended_year(admissions, cost, revenue):
    """Year 1 ruins at r exactly when r (1+g_c) Y' > u A + (1+g_R)(R - K), Y'
    the pool's cost with admissions x (1+g_a): the simulated rate sits in the
    order-statistic interval of that law's VaR, computed exactly (FFT)."""
    inst = _shocked_instance()
    n, level = 20_000, 0.95
    spec = _ruin_spec(years=1, scenarios=n, level=level, admissions_trend=admissions, cost_trend=cost,
                      revenue_growth=revenue)
    pricing = PoolPricer(inst, spec).price(["a", "b"])
    budget = 0.5 * (6e5 + 4e5) + (1.0 + revenue) * (pricing.revenue - pricing.fixed_costs)
    law = aggregate(scaled_admissions(pool_model(inst, frozenset(["a", "b"])), 1.0 + admissions), level).law
    cdf = np.cumsum(law.pmf)
    half = ORDER_STATISTIC_Z * math.sqrt(level * (1 - level) / n)
    q_lo, q_hi = (law.start + law.span * np.searchsorted(cdf, p) for p in (level - half, level + half))
    assert budget / ((1 + cost) * q_hi) <= pricing.max_rate <= budget / ((1 + cost) * q_lo) < 1.0


def test_year_t_draws_follow_the_trended_law():
    """Year 3's draws are the law of the instance with admission rates x
    (1+g_a)^3 and each severity's mean x (1+g_c)^3 (priced from the changed
    file): mean and 0.9 quantile within their Monte Carlo error."""
    trend = Trend(admissions=0.1, cost=0.05)
    base = _shocked_instance()
    model = pool_model(base, frozenset(["a", "b"]))
    draws = yearly_costs(model, ["a", "b"], years=3, scenarios=40_000, seed=9, trend=trend)[2]
    data = instance_dict([county("a", enrollees=6_000, contribution_per_capita=330.0, reserves=600_000.0,
                                 admission_rate=0.08 * 1.1 ** 3,
                                 severity={"dist": "lognormal", "mean": 4000.0 * 1.05 ** 3, "cv": 1.0}),
                          county("b", enrollees=9_000, contribution_per_capita=320.0, reserves=400_000.0,
                                 admission_rate=0.08 * 1.1 ** 3,
                                 severity={"dist": "lognormal", "mean": 4000.0 * 1.05 ** 3, "cv": 1.0})],
                         admin_fixed_per_fund=100_000.0, **SHOCKS)
    exact = aggregate(pool_model(instance_from_dict(data), frozenset(["a", "b"])), 0.9)
    assert abs(draws.mean() - exact.mean) < 4.0 * draws.std() / math.sqrt(draws.size)
    tail = (draws > exact.var).mean()
    assert abs(tail - 0.1) < 4.0 * math.sqrt(0.09 / draws.size)
    assert trend.frequency(3) == pytest.approx(1.1 ** 3) and NO_TREND == Trend()


# -- the spec ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("solvency", "message"), [
    ({"measure": "cvar", "cost_trend": 0.05}, 'solvency.cost_trend applies only with measure "ruin"'),
    ({"measure": "var", "revenue_growth": 0.02}, 'solvency.revenue_growth applies only with measure "ruin"'),
    ({"measure": "ruin", "admissions_trend": 1.5}, "solvency.admissions_trend must be in"),
    ({"measure": "ruin", "cost_trend": -0.9}, "solvency.cost_trend must be in"),
    ({"measure": "ruin", "revenue_growth": "2%"}, "solvency.revenue_growth"),
])
def test_bad_growth_fields_name_the_field(solvency, message):
    with pytest.raises(InputError, match="^<memory>: " + message):
        spec_from_dict(spec_dict("county", solvency=solvency))


# -- no pooling (scope county) under ruin with trend ----------------------------------------------

def test_each_county_alone_under_ruin_with_trend():
    """The no-pooling design under the ruin measure is scope "county": each
    county its own pool; a claims trend above revenue growth lowers every
    county's rate, revenue growing as fast as costs raises them back."""
    data = tiny_instance_dict()
    for record in data["counties"]:
        record["contribution_per_capita"] = 330.0   # rates below 1
    inst = instance_from_dict(data)
    rates = {}
    for name, growth in (("none", {}), ("claims", {"admissions_trend": 0.05, "cost_trend": 0.05}),
                         ("indexed", {"admissions_trend": 0.05, "cost_trend": 0.05, "revenue_growth": 0.1025})):
        result = solve(inst, _ruin_spec(years=3, scenarios=2_000, **growth))
        assert result.status == "optimal"
        rates[name] = {p.pricing.counties[0]: p.pricing.max_rate for p in result.pools}
    for cid, rate in rates["none"].items():
        assert rates["claims"][cid] < rate
        assert rates["claims"][cid] < rates["indexed"][cid]


def test_the_stress_test_says_it_does_not_draw_the_spec_s_growth(tmp_path, capsys):
    """simulate draws every year at the instance's figures: a plan priced
    with a trend gets stress.json's `spec_growth_not_simulated` (and a note on
    the command line), a plan without one does not (its bytes unchanged)."""
    from pooling.cli import main
    from pooling.simulation.stress_test import simulate

    data = tiny_instance_dict()
    for record in data["counties"]:
        record["contribution_per_capita"] = 330.0
    inst = instance_from_dict(data)
    plain, trended = _ruin_spec(years=2, scenarios=1_000), _ruin_spec(years=2, scenarios=1_000, cost_trend=0.05)
    result = solve(inst, trended)
    kept = simulate(inst, trended, result, scenarios=1_000).to_dict()
    assert kept["spec_growth_not_simulated"] == {"cost_trend": 0.05}
    assert "spec_growth_not_simulated" not in simulate(inst, plain, result, scenarios=1_000).to_dict()
    (tmp_path / "i.json").write_text(json.dumps(data))
    (tmp_path / "s.toml").write_text('''[pooling]
scope = "county"
[solvency]
measure = "ruin"
level = 0.95
reserve_share = 0.5
horizon_years = 2
cost_trend = 0.05
[rates]
min = 0.0
max = 1.0
[simulation]
scenarios = 1000
''')
    args = [str(tmp_path / "i.json"), "--spec", str(tmp_path / "s.toml")]
    assert main(["solve", *args, "--out", str(tmp_path / "out")]) == 0
    main(["simulate", *args, "--result", str(tmp_path / "out" / "result.json"), "--out", str(tmp_path / "out")])
    assert "cost_trend 0.05 priced the plan" in capsys.readouterr().err
