"""Predictive [uncertainty] with induced utilisation (economics.uncertain):
the pool pays one rate r in every scenario, so at r each scenario's claims are
at its own multipliers m_{s,c}(r), the mixture of those laws gives h(r), and the
predictive rate is the fixed point r = h(r). Also the robust dominance skip
with a behavioural response (scenarios changing only shock cvs)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.economics.behaviour import FIXED_POINT_TOLERANCE
from pooling.economics.pools import PoolPricer
from pooling.risk.mixture import Component, mixture_risk
from tests.factories import county, instance_dict, spec_dict
from tests.tolerances import ROUNDING

ELASTICITY = -0.41
"""The sourced elasticity of admissions w.r.t. the out-of-pocket price (docs/model.md)."""
MIXTURE_REBUILD_TOLERANCE = 1e-9
"""The test's mixture of the scenarios' net losses, rebuilt from their lattices
at the returned rate, against the pricer's verdict "solvent" there (share of
the budget): the same lattice laws (FFT results differ between CPUs, not within
a process) mixed again, so only the order of sums over ~1e5 cells differs
(~1e-13 of the budget). 1e-9 keeps four orders of magnitude below the ~1e-5
of the budget by which a rate 2 FIXED_POINT_TOLERANCE higher is insolvent."""
MEMBER_SETS = (["1"], ["2"], ["3"], ["1", "2"], ["1", "2", "3"])


def _instance(elasticity: float = ELASTICITY, observed_rate: float = 0.5):
    """Three counties, one of them with migrants, national and regional shocks."""
    return pooling.instance_from_dict(instance_dict(
        [county("1", adjacent=["2"], migrant_share=0.2, migrant_destinations={"2": 0.5, "outside": 0.5}),
         county("2", enrollees=50_000, contribution_per_capita=380.0, adjacent=["1", "3"]),
         county("3", enrollees=8_000, adjacent=["2"], current_rate=0.4)],
        frequency_shock_cv=0.08,
        regional_shocks={"prefecture": {"weight": 0.3, "cv": 0.1}, "county": {"weight": 0.2, "cv": 0.15}},
        utilisation_elasticity=elasticity, observed_rate=observed_rate))


def _spec(method: str, scenarios: list[dict], base_weight: float | None = None, measure: str = "cvar",
          level: float = 0.99) -> pooling.Spec:
    table: dict = {"method": method, "scenarios": scenarios}
    if base_weight is not None:
        table["base_weight"] = base_weight
    return pooling.spec_from_dict(spec_dict(solvency={"measure": measure, "level": level}) | {"uncertainty": table},
                                  source="u.toml")


def _plain(measure: str = "cvar", level: float = 0.99) -> pooling.Spec:
    return pooling.spec_from_dict(spec_dict(solvency={"measure": measure, "level": level}), source="plain.toml")


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["parameters.frequency_shock_cv", "counties.*.admission_rate",
                        "counties.*.contribution_per_capita", "parameters.utilisation_elasticity"]),
       st.floats(0.05, 0.95), st.sampled_from(["var", "cvar"]))
def test_a_scenario_equal_to_the_base_gives_the_behavioural_rate(path, base_weight, measure):
    """A predictive mixture of the base with itself is the base: its rate is
    the plain behavioural pricer's fixed point (within the search's bracket),
    its figures those at that rate."""
    inst = _instance()
    spec = _spec("predictive", [{"name": "same", "weight": 1.0 - base_weight, "scale": {path: 1.0}}],
                 base_weight=base_weight, measure=measure)
    plain, predictive = PoolPricer(inst, _plain(measure)), PoolPricer(inst, spec)
    for members in MEMBER_SETS:
        a, b = plain.price(members), predictive.price(members)
        assert abs(b.max_rate - a.max_rate) <= FIXED_POINT_TOLERANCE, members
        assert b.scenario_rates == (("base", a.max_rate), ("same", a.max_rate))
        assert b.budget == pytest.approx(a.budget, rel=ROUNDING)
        assert b.admission_multiplier == pytest.approx(a.behaviour.admission_multiplier(b.max_rate), rel=ROUNDING)
        if b.max_rate == a.max_rate:
            assert (b.var, b.cvar, b.risk, b.expected_cost) == (a.var, a.cvar, a.risk, a.expected_cost)


def _net_excess(pricer: PoolPricer, members, rate: float) -> float:
    """rho of the mixture of rate Y_s(rate) - B_s, each scenario's claims at its
    own multipliers at `rate`, built here from each scenario's law."""
    uncertain, spec = pricer._uncertain, pricer.spec
    components = []
    for weight, scenario in zip(uncertain.weights, uncertain.pricers):
        claims = scenario.claims(frozenset(members))
        law = claims.law(claims.scale_at(rate))
        components.append(Component(weight, law.law, law.mean, scale=rate, shift=-claims.budget))
    mixed = mixture_risk(components, spec.solvency.level)
    return mixed.cvar if spec.solvency.measure == "cvar" else mixed.var


SCENARIO_SETS = {
    "claims": [{"name": "more", "weight": 0.3, "scale": {"counties.*.admission_rate": 1.2}},
               {"name": "shocks", "weight": 0.2, "scale": {"parameters.frequency_shock_cv": 2.0}}],
    "budgets": [{"name": "poorer", "weight": 0.3, "scale": {"counties.*.contribution_per_capita": 0.9}},
                {"name": "richer", "weight": 0.2, "scale": {"counties.*.contribution_per_capita": 1.1,
                                                            "counties.*.admission_rate": 1.1}}],
    "elasticities": [{"name": "stronger", "weight": 0.3, "set": {"parameters.utilisation_elasticity": -0.68}},
                     {"name": "observed lower", "weight": 0.2, "set": {"parameters.observed_rate": 0.3}}],
}


@pytest.mark.parametrize("measure", ["cvar", "var"])
@pytest.mark.parametrize("kind,base_elasticity", [("claims", ELASTICITY), ("budgets", ELASTICITY),
                                                  ("elasticities", ELASTICITY), ("elasticities", 0.0)])
def test_the_predictive_rate_is_the_mixtures_fixed_point(kind, base_elasticity, measure):
    """At the returned rate the mixture of the scenarios' net losses, each at
    its own multipliers there, is solvent; 2 FIXED_POINT_TOLERANCE above it,
    it is not (the fixed point is within one tolerance above the rate), unless
    the rate is rates.max. With the base at e = 0 the base's and "observed
    lower"'s claims are as observed (m = 1) and only "stronger" responds."""
    inst = _instance(base_elasticity)
    spec = _spec("predictive", SCENARIO_SETS[kind], base_weight=0.5, measure=measure)
    pricer = PoolPricer(inst, spec)
    interior = 0
    for members in MEMBER_SETS:
        p = pricer.price(members)
        assert spec.rates.min < p.max_rate <= spec.rates.max, (members, p.max_rate)
        assert _net_excess(pricer, members, p.max_rate) <= MIXTURE_REBUILD_TOLERANCE * p.budget, members
        if p.max_rate < spec.rates.max:
            interior += 1
            assert _net_excess(pricer, members, p.max_rate + 2.0 * FIXED_POINT_TOLERANCE) > 0.0, members
    assert interior >= 3   # the check above is made


def test_a_predictive_solve_with_behaviour_prices_and_reports_every_scenario():
    """A solve under a predictive spec whose scenario turns the response on (the
    base without it) was refused; it prices, the plan's rates are at most each
    pool's fixed point and reruns are identical."""
    inst = _instance(0.0)
    spec = _spec("predictive", [{"name": "induced", "weight": 0.5,
                                 "set": {"parameters.utilisation_elasticity": ELASTICITY}}], base_weight=0.5)
    first, second = pooling.solve(inst, spec), pooling.solve(inst, spec)
    assert [p.to_dict() for p in first.pools] == [p.to_dict() for p in second.pools]
    for pool in first.pools:
        assert [name for name, _ in pool.pricing.scenario_rates] == ["base", "induced"]
        assert pool.rate <= pool.pricing.max_rate
        assert pool.pricing.admission_multiplier is None     # the base (as given) has no response


def test_a_predictive_solve_searching_scenario_rates_for_the_plan_only_gives_the_full_result(monkeypatch):
    """A solve's candidates skip each scenario's own fixed point (reported
    only; the mixture's search does not start from them) and the plan's pools
    get them after: the result equals one pricing them for every candidate."""
    inst = _instance()
    spec = _spec("predictive", SCENARIO_SETS["elasticities"], base_weight=0.5)
    assert PoolPricer(inst, spec, skip_dominated=True)._uncertain.skip_own_rates
    assert PoolPricer(inst, spec, skip_dominated=True).price(["1", "2"]).scenario_rates == ()
    fast = _skipping_equals_pricing_every_scenario(inst, spec, monkeypatch)
    for pool in fast["pools"]:
        assert list(pool["scenario_rates"]) == ["base", "stronger", "observed lower"]


@pytest.mark.parametrize("kind", ["claims", "elasticities", "milder"])
def test_the_bound_caps_every_usable_predictive_pool_with_behaviour(kind):
    """The column-generation cap U(P) = min(r_max, sum_s w_s B_s / (kappa_min
    sum_s w_s E_lo,s[Y_P])) (uncertain.bound_economics) holds at the
    mixture's fixed point r*: solvency there gives r* sum_s w_s CVaR(Y_s(r*))
    <= sum_s w_s B_s (CVaR concave in the mixture), CVaR(Y_s(r*)) >= kappa_s
    E[Y_s(r*)], and for r* >= rates.min E[Y_s(r*)] >= E_lo,s (admissions at
    min(1, m(rates.min)), behaviour.bound_multipliers)."""
    import itertools

    from pooling.economics.pool_bounds import BOUND_PRICING_SLACK, group_kappa
    from pooling.economics.uncertain import bound_economics, bound_instances
    from pooling.optimise.candidates import PoolGroup
    from tests.factories import random_instance_dict
    data = random_instance_dict(5, 6, 1, contribution_range=(150.0, 260.0))
    data["parameters"].update(frequency_shock_cv=0.05, utilisation_elasticity=ELASTICITY, observed_rate=0.3)
    inst = pooling.instance_from_dict(data)
    scenarios = SCENARIO_SETS.get(kind) or [
        {"name": "richer", "weight": 0.3, "scale": {"counties.*.contribution_per_capita": 1.6}},
        {"name": "calmer", "weight": 0.2, "scale": {"parameters.frequency_shock_cv": 0.2}}]
    spec = pooling.spec_from_dict(spec_dict(pooling={"within": "none", "contiguous": False}) | {
        "uncertainty": {"method": "predictive", "base_weight": 0.5, "scenarios": scenarios}}, source="u.toml")
    group = PoolGroup(label="all", members=tuple(sorted(inst.ids)))
    econ = bound_economics(inst, spec, group)
    pricer = PoolPricer(inst, spec)
    usable = 0
    for size in range(2, len(inst.ids) + 1):
        kappa = min(group_kappa(i, group.members, 0.99, size) for i in bound_instances(inst, spec, group))
        for members in itertools.combinations(group.members, size):
            pricing = pricer.price(members)
            if not pricing.usable:
                continue
            usable += 1
            cap = min(spec.rates.max, econ.budget(members) / (kappa * econ.expected_cost(members)))
            assert pricing.max_rate <= cap * (1.0 + BOUND_PRICING_SLACK) + ROUNDING, members
    assert usable >= 10


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([("counties.*.admission_rate", 1.3), ("parameters.frequency_shock_cv", 3.0),
                        ("parameters.regional_shocks.*.cv", 2.0)]),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_more_weight_on_a_riskier_scenario_never_raises_the_rate(change, w1, w2):
    """A scenario with more admissions (usual stochastic order) or larger shock
    cvs (convex order) at the same e and r0 has claims at least as risky under
    CVaR at every rate's multipliers; a mixture moving weight onto it is then
    riskier at every r (its stop-loss is linear in the weight), h falls, and
    so does the fixed point: up to the search's bracket, FIXED_POINT_TOLERANCE."""
    low, high = sorted((w1, w2))
    path, factor = change
    inst = _instance()

    def rate(weight: float, members) -> float:
        spec = _spec("predictive", [{"name": "riskier", "weight": weight, "scale": {path: factor}}],
                     base_weight=1.0 - weight)
        return PoolPricer(inst, spec).price(members).max_rate

    for members in (["2"], ["1", "2", "3"]):
        assert rate(high, members) <= rate(low, members) + FIXED_POINT_TOLERANCE, members


# -- robust: scenarios that cannot bind, with a behavioural response -------------------------


SHOCK_PATHS = ["parameters.frequency_shock_cv", "parameters.regional_shocks.prefecture.cv",
               "parameters.regional_shocks.county.cv", "parameters.regional_shocks.*.cv"]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SHOCK_PATHS), st.just(0.0) | st.floats(0.01, 1.0)), min_size=1, max_size=3),
       st.sampled_from([0.95, 0.99]), st.sampled_from([ELASTICITY, -0.68]))
def test_lowered_shocks_never_give_a_lower_behavioural_rate(changes, level, elasticity):
    """Same e and r0: at every rate's multipliers the lowered-cv claims are
    smaller in convex order, so h_s >= h_base everywhere and r*_s >= r*_base;
    the two searches each return a rate within FIXED_POINT_TOLERANCE below
    their fixed point."""
    inst = _instance(elasticity)
    scale = dict(changes)
    spec = _spec("robust", [{"name": "lower", "scale": scale}], level=level)
    uncertain = PoolPricer(inst, spec)._uncertain
    assert uncertain.dominated == {1}
    base, lowered = uncertain.pricers
    for members in MEMBER_SETS:
        r_base, r_lowered = base.price(members).max_rate, lowered.price(members).max_rate
        assert r_lowered >= r_base - FIXED_POINT_TOLERANCE, (members, scale, r_lowered, r_base)


@pytest.mark.parametrize("changes", [
    {"set": {"parameters.utilisation_elasticity": -0.68}, "scale": {"parameters.frequency_shock_cv": 0.5}},
    {"set": {"parameters.observed_rate": 0.3}, "scale": {"parameters.frequency_shock_cv": 0.5}},
    {"set": {"counties.3.current_rate": 0.6}, "scale": {"parameters.frequency_shock_cv": 0.5}},
])
def test_a_scenario_changing_the_response_is_never_skipped(changes):
    """Lowered cvs with another e or r0 give other multipliers: not dominated."""
    spec = _spec("robust", [{"name": "other", **changes}])
    assert PoolPricer(_instance(), spec)._uncertain.dominated == frozenset()


def test_a_behavioural_solve_skipping_dominated_scenarios_gives_the_full_result(monkeypatch):
    """With e < 0 a robust CVaR solve skips "shocks x0.5" for its candidates and
    its result equals one pricing every scenario for every candidate."""
    inst = _instance()
    spec = _spec("robust", [{"name": f"shocks x{k}", "scale": {"parameters.frequency_shock_cv": k,
                                                                "parameters.regional_shocks.*.cv": k}}
                            for k in (0.5, 1.5)])
    assert PoolPricer(inst, spec, skip_dominated=True)._uncertain.skipped == {1}
    fast = _skipping_equals_pricing_every_scenario(inst, spec, monkeypatch)
    for pool in fast["pools"]:
        assert list(pool["scenario_rates"]) == ["base", "shocks x0.5", "shocks x1.5"]
        rates = pool["scenario_rates"]
        assert pool["rate"] == min(rates["base"], rates["shocks x1.5"])   # "shocks x0.5" never binds


def test_generated_columns_find_the_enumerated_predictive_optimum_with_behaviour():
    """Column generation under a predictive spec with a response proves the
    enumerated optimum (its bound is valid: the test above)."""
    from pooling import SolveOptions
    from tests.factories import random_instance_dict
    from tests.test_solve import OBJECTIVE_TOLERANCE
    data = random_instance_dict(4, 8, 1, contribution_range=(220.0, 360.0))
    data["parameters"].update(frequency_shock_cv=0.05, utilisation_elasticity=ELASTICITY)
    inst = pooling.instance_from_dict(data)
    spec = pooling.spec_from_dict(spec_dict(pooling={"within": "none", "contiguous": False}) | {
        "uncertainty": {"method": "predictive", "base_weight": 0.5, "scenarios": SCENARIO_SETS["elasticities"]}},
        source="u.toml")
    enumerated = pooling.solve(inst, spec, options=SolveOptions(candidates="enumerate"))
    generated = pooling.solve(inst, spec, options=SolveOptions(candidates="generate"))
    assert generated.candidate_generation["method"] == "column_generation"
    assert generated.objective <= enumerated.objective + OBJECTIVE_TOLERANCE
    assert generated.bound >= enumerated.objective - OBJECTIVE_TOLERANCE


def _skipping_equals_pricing_every_scenario(inst, spec, monkeypatch) -> dict:
    """A solve's result (volatile fields dropped) with the pricer's skips on, after
    asserting it equals the solve whose pricer prices every scenario of every pool."""
    from pooling.optimise import problem
    fast = pooling.solve(inst, spec, workers=1).to_dict()
    real = problem.PoolPricer
    monkeypatch.setattr(problem, "PoolPricer", lambda i, s, **_: real(i, s))
    full = pooling.solve(inst, spec, workers=1).to_dict()
    for data in (fast, full):
        for key in ("timings", "provenance", "wall_seconds", "numerics"):
            data.pop(key)
    assert fast == full
    return fast
