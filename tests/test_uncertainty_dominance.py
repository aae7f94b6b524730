"""Scenarios that cannot bind a robust CVaR rate (pooling.economics.uncertain):
lowering admission-shock cvs makes claims smaller in convex order, so the
scenario's rate is never below the base's; a solve skips pricing them for its
candidates and prices them for the plan's pools only, with the same result."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.data.scenarios import ParameterChange, Scenario
from pooling.economics.pools import PoolPricer
from pooling.economics.uncertain import dominated_by_base
from pooling.optimise import problem
from tests.factories import INSTANCES, county, instance_dict, spec_dict

DOMINANCE_SLACK = 1e-9
"""Relative slack of "the lowered-shock rate is not below the base's": the two
laws are priced on their own lattices, each to the engine's accuracy (relative
1e-4 on VaR/CVaR and far better on these smooth laws), and the rates differ by
the shock's whole effect (1e-3 or more here) or are both at rates.max."""

SHOCK_PATHS = ["parameters.frequency_shock_cv", "parameters.regional_shocks.prefecture.cv",
               "parameters.regional_shocks.county.cv", "parameters.regional_shocks.*.cv"]


def _scenario(*changes: tuple[str, str, float]) -> Scenario:
    return Scenario("s", tuple(ParameterChange(path, op, value) for path, op, value in changes))


def _instance(**params):
    return pooling.instance_from_dict(instance_dict(
        [county("1", adjacent=["2"]), county("2", enrollees=50_000, contribution_per_capita=380.0, adjacent=["1", "3"]),
         county("3", enrollees=8_000, adjacent=["2"])],
        frequency_shock_cv=0.08,
        regional_shocks={"prefecture": {"weight": 0.3, "cv": 0.1}, "county": {"weight": 0.2, "cv": 0.15}},
        **params))


@pytest.mark.parametrize("changes,expected", [
    ((("parameters.frequency_shock_cv", "scale", 0.5),), True),
    ((("parameters.regional_shocks.*.cv", "scale", 0.0), ("parameters.frequency_shock_cv", "scale", 1.0)), True),
    ((("parameters.regional_shocks.county.cv", "set", 0.1),), True),       # 0.15 -> 0.1
    ((("parameters.regional_shocks.county.cv", "set", 0.2),), False),      # raised
    ((("parameters.regional_shocks.*.cv", "set", 0.12),), False),          # lowers county's, raises prefecture's
    ((("parameters.frequency_shock_cv", "scale", 1.5),), False),
    ((("parameters.frequency_shock_cv", "scale", 0.5), ("counties.*.admission_rate", "scale", 0.9)), False),
    ((("parameters.regional_shocks.county.weight", "scale", 0.5),), False),  # a weight moves admissions' shocks
    ((("counties.*.severity.cv", "scale", 0.5),), False),                  # not a shock: never judged
])
def test_a_scenario_is_dominated_only_when_it_lowers_shock_cvs_alone(changes, expected):
    assert dominated_by_base(_instance(), _scenario(*changes)) is expected


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SHOCK_PATHS), st.just(0.0) | st.floats(0.01, 1.0)), min_size=1, max_size=3),
       st.sampled_from([0.95, 0.99, 0.995]))
def test_lowered_shocks_never_give_a_lower_cvar_rate(changes, level):
    """The convex-order argument, checked on the engine's own prices: every pool's
    rate with some shock cvs scaled down is at least its base rate."""
    inst = _instance()
    scale = {}
    for path, factor in changes:
        scale[path] = factor
    base = PoolPricer(inst, pooling.spec_from_dict(spec_dict(solvency={"measure": "cvar", "level": level})))
    spec = pooling.spec_from_dict(spec_dict(solvency={"measure": "cvar", "level": level}) | {
        "uncertainty": {"method": "robust", "scenarios": [{"name": "lower", "scale": scale}]}})
    scenario = PoolPricer(inst, spec)._uncertain.pricers[1]
    for members in (["1"], ["2"], ["3"], ["1", "2"], ["2", "3"], ["1", "2", "3"]):
        lowered, given_ = scenario.price(members).max_rate, base.price(members).max_rate
        assert lowered >= given_ * (1.0 - DOMINANCE_SLACK), (members, scale, lowered, given_)


def _robust_spec(measure: str = "cvar") -> pooling.Spec:
    data = spec_dict(solvency={"measure": measure, "level": 0.99})
    return pooling.spec_from_dict(data | {"uncertainty": {"method": "robust", "scenarios": [
        {"name": "shocks x0.5", "scale": {"parameters.frequency_shock_cv": 0.5,
                                          "parameters.regional_shocks.*.cv": 0.5}},
        {"name": "shocks x1.5", "scale": {"parameters.frequency_shock_cv": 1.5,
                                          "parameters.regional_shocks.*.cv": 1.5}}]}})


@pytest.mark.parametrize("measure", ["cvar", "var"])
def test_a_solve_skipping_dominated_scenarios_gives_the_full_result(monkeypatch, measure):
    """Tongliao under the issue's x0.5 / x1.5 scenarios: the solve (candidates
    priced without "shocks x0.5" under CVaR) equals one pricing every scenario
    for every candidate, and every plan pool reports all three rates."""
    inst = pooling.load_instance(INSTANCES / "tongliao.json")
    spec = _robust_spec(measure)
    skipped = PoolPricer(inst, spec, skip_dominated=True)._uncertain.skipped
    assert len(skipped) == (1 if measure == "cvar" else 0)
    fast = pooling.solve(inst, spec, workers=1).to_dict()
    real = problem.PoolPricer
    monkeypatch.setattr(problem, "PoolPricer", lambda i, s, **_: real(i, s))
    full = pooling.solve(inst, spec, workers=1).to_dict()
    for data in (fast, full):
        # The result's numerics summary covers the laws its candidates were priced with: fewer when skipping.
        data.pop("timings"), data.pop("provenance"), data.pop("wall_seconds"), data.pop("numerics")
    assert fast == full
    for pool in fast["pools"]:
        assert list(pool["scenario_rates"]) == ["base", "shocks x0.5", "shocks x1.5"]
        assert pool["rate"] == min(pool["scenario_rates"].values())
