"""Benefit schedules (issue 25 item 3): deductible, cap and level factors.

The excess law Z = min(X - d, c) given X > d (pooling.risk.benefit_severity)
against references built here from the base law's density by quad
(tests.test_severity.Reference, scipy.stats objects), its aggregate against a
per-claim Monte Carlo that pays l min(max(fX - d, 0), c) claim by claim, and
the spec's [benefits] table through pricing, solving and the CLI.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.cli import main
from pooling.data.benefits import BenefitSchedule, with_benefits
from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import load_spec, spec_from_dict
from pooling.economics.care import care_in_pool, portability
from pooling.economics.loss_scenarios import pool_losses, sample_scenarios
from pooling.economics.pools import PoolPricer, pool_model
from pooling.errors import InputError
from pooling.optimise.bruteforce import brute_force
from pooling.optimise.solve import solve
from pooling.risk.benefit_severity import ExcessSeverity, benefit_stream, paid_per_claim
from pooling.risk.claims import ClaimStream, CompoundModel, aggregate
from pooling.risk.law_checks import RESOLUTION_TOLERANCE
from pooling.risk.measures import sample_var_cvar
from tests.factories import INSTANCES, MODELS, spec_dict, tiny_instance_dict
from tests.test_severity import SEVERITIES, Reference
from tests.tolerances import ROUNDING

EXIT_INPUT = 2

QUAD_RTOL = 1e-9
"""Closed forms of the excess law vs quad of the base density. The closed
forms are differences of stop-loss transforms E[(X - y)+^k], each a
difference of upper-tail terms of size y^k S(y): the relative cancellation is
at most ~(y / E[X - y | X > y])^2 ~ 1e2 to 1e3 for these laws, so ~1e-13 is
lost; quad itself is run at 1e-12 per piece. Measured at most 3e-11."""
MC_Z = 4.5
"""Half-width, in standard errors, of the Monte Carlo intervals."""
ENGINE_RTOL = 2 * RESOLUTION_TOLERANCE
"""The engine's discretisation accuracy on VaR/CVaR (RESOLUTION_TOLERANCE,
the Richardson estimate), twice for safety, added to the Monte Carlo interval."""
MONOTONE_SLACK = 2 * RESOLUTION_TOLERANCE
"""Raising the deductible or lowering the cap lowers every claim pathwise, so
the exact max solvent rate cannot fall; each computed one is within
RESOLUTION_TOLERANCE (relative) of its exact value, so two may cross by
twice that."""

TERMS = {
    "deductible": (400.0, None),
    "deductible and cap": (1200.0, 20_000.0),
    "cap only": (0.0, 8_000.0),
    "far deductible": (60_000.0, None),
    "deductible in the cap's reach": (3000.0, 2000.0),
}


def _reference_moment(ref: Reference, d: float, c: float | None, k: int) -> float:
    """E[Z^k] from the base density: (int_d^{d+c} (x - d)^k f + c^k S(d + c)) / S(d)."""
    top = math.inf if c is None else d + c
    body = ref.integrate(lambda x: (x - d) ** k * ref.pdf(x), d, top)
    atom = 0.0 if c is None else c ** k * ref.sf(d + c)
    return (body + atom) / ref.sf(d)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ----------------------------------------------------------------------------
# The excess law against quad
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("terms", list(TERMS))
@pytest.mark.parametrize("name", ["lognormal cv1", "gamma cv2", "spliced a3", "spliced low u"])
def test_excess_moments_match_quad(name, terms):
    base, (d, c) = SEVERITIES[name], TERMS[terms]
    z, ref = ExcessSeverity(base, d, c), Reference(base)
    assert _rel(z.claim_probability, ref.sf(d) if d > 0 else 1.0) <= QUAD_RTOL
    assert _rel(z.expected_value, _reference_moment(ref, d, c, 1)) <= QUAD_RTOL
    assert _rel(z.second_moment, _reference_moment(ref, d, c, 2)) <= QUAD_RTOL
    if c is not None:
        assert _rel(z.cap_probability, ref.sf(d + c) / ref.sf(d)) <= QUAD_RTOL


@pytest.mark.parametrize("terms", list(TERMS))
@pytest.mark.parametrize("name", ["lognormal cv3", "gamma cv0.5", "spliced a2.2"])
def test_excess_tails_and_limited_moments_match_quad(name, terms):
    base, (d, c) = SEVERITIES[name], TERMS[terms]
    z, ref = ExcessSeverity(base, d, c), Reference(base)
    s_d = ref.sf(d)
    top = math.inf if c is None else c
    probes = [p for p in (0.5 * z.expected_value, z.expected_value, 3.0 * z.expected_value) if p < top]
    surv, surv1 = z.tails(np.array(probes))
    for x, s, s1 in zip(probes, surv, surv1, strict=True):
        assert _rel(s, ref.sf(d + x) / s_d) <= QUAD_RTOL
        upper = ref.integrate(lambda y: (y - d) * ref.pdf(y), d + x, d + top) if c is not None else \
            ref.integrate(lambda y: (y - d) * ref.pdf(y), d + x, math.inf)
        atom = 0.0 if c is None else c * ref.sf(d + c)
        assert _rel(s1 * z.expected_value, (upper + atom) / s_d) <= QUAD_RTOL
        limited = ref.integrate(lambda y: min(y - d, x) * ref.pdf(y), d, d + x) + x * ref.sf(d + x)
        assert _rel(float(z.limited_mean(np.array([x]))[0]), limited / s_d) <= QUAD_RTOL
        limited2 = ref.integrate(lambda y: (y - d) ** 2 * ref.pdf(y), d, d + x) + x * x * ref.sf(d + x)
        assert _rel(z.limited_second_moment(x), limited2 / s_d) <= QUAD_RTOL
    # Beyond the cap nothing is left; at or below 0 everything.
    if c is not None:
        surv, surv1 = z.tails(np.array([c, 2 * c]))
        assert not surv.any() and not surv1.any()
        assert z.upper_quantile(0.5 * z.cap_probability) == c
        assert z.limited_mean(np.array([2 * c]))[0] == pytest.approx(z.expected_value, rel=ROUNDING)
    assert tuple(z.tails(np.array([0.0]))) == (1.0, 1.0)


@pytest.mark.parametrize("name", ["lognormal cv1", "gamma cv2", "spliced a3"])
def test_excess_quantiles_invert_the_tails(name):
    z = ExcessSeverity(SEVERITIES[name], 1000.0, 30_000.0)
    for t in (0.9, 0.5, 0.1, 1.5 * z.cap_probability):
        x = z.upper_quantile(t)
        assert 0.0 < x < 30_000.0
        assert _rel(float(z.tails(np.array([x]))[0][0]), t) <= 1e-9


def test_excess_sample_matches_moments():
    z = ExcessSeverity(SEVERITIES["spliced a3"], 2000.0, 50_000.0)
    draws = z.sample(np.random.default_rng(7), 1_000_000)
    assert draws.min() > 0.0 and draws.max() <= 50_000.0
    sd = math.sqrt(z.second_moment - z.expected_value ** 2)
    assert abs(draws.mean() - z.expected_value) <= MC_Z * sd / 1000.0
    atom = float(np.mean(draws == 50_000.0))
    assert abs(atom - z.cap_probability) <= MC_Z * math.sqrt(z.cap_probability / 1e6)


def test_invalid_excess_laws_are_refused():
    base = SEVERITIES["lognormal cv1"]
    for d, c in ((-1.0, None), (math.nan, None), (0.0, 0.0), (0.0, math.inf)):
        with pytest.raises(ValueError):
            ExcessSeverity(base, d, c)


# ----------------------------------------------------------------------------
# Streams and aggregates
# ----------------------------------------------------------------------------

def test_trivial_schedule_keeps_the_stream_bit_for_bit():
    base = SEVERITIES["lognormal cv1"]
    assert benefit_stream(12.5, base, 0.6, 0.0, None, 1.0) == ClaimStream(12.5, base, 0.6)
    # A level factor alone scales the factor, no thinning and no new law.
    assert benefit_stream(12.5, base, 0.6, 0.0, None, 0.8) == ClaimStream(12.5, base, 0.6 * 0.8)


def test_stream_mean_is_the_expected_payment():
    """rate x E[l min(max(fX - d, 0), c)] computed by quad, for an out-of-network factor."""
    base, f, d, c, level = SEVERITIES["gamma cv2"], 0.6, 500.0, 10_000.0, 0.85
    ref = Reference(base)
    lo, hi = d / f, (d + c) / f
    paid = ref.integrate(lambda x: (f * x - d) * ref.pdf(x), lo, hi) + c * ref.sf(hi)
    stream = benefit_stream(3.0, base, f, d, c, level)
    assert _rel(stream.mean, 3.0 * level * paid) <= QUAD_RTOL


@pytest.mark.parametrize("rate, shock, terms", [
    (4.0, 0.0, (400.0, None, 1.0, 1.0)),
    (40.0, 0.1, (1200.0, 15_000.0, 0.6, 0.85)),
    (400.0, 0.05, (2000.0, 60_000.0, 1.0, 0.81)),
])
def test_aggregate_of_a_schedule_matches_per_claim_monte_carlo(rate, shock, terms):
    """The engine prices the thinned excess stream; the Monte Carlo draws
    every admission of the base law and pays it claim by claim."""
    d, c, f, level = terms
    base = SEVERITIES["spliced a3"]
    model = CompoundModel((benefit_stream(rate, base, f, d, c, level),), shock)
    result = aggregate(model, 0.99)
    rng = np.random.default_rng(11)
    years = min(200_000, int(8e6 / rate))   # at most 8e6 claims: the intervals below widen with fewer years
    theta = rng.gamma(1 / shock ** 2, shock ** 2, years) if shock else np.ones(years)
    counts = rng.poisson(rate * theta)
    paid = paid_per_claim(f * base.sample(rng, int(counts.sum())), d, c, level)
    totals = np.bincount(np.repeat(np.arange(years), counts), weights=paid, minlength=years)
    assert abs(totals.mean() - model.mean) <= MC_Z * math.sqrt(model.variance / years)
    ordered = np.sort(totals)
    half = MC_Z * math.sqrt(years * 0.99 * 0.01)
    lo, hi = ordered[int(math.floor(years * 0.99 - half))], ordered[int(math.ceil(years * 0.99 + half))]
    assert lo - ENGINE_RTOL * result.var <= result.var <= hi + ENGINE_RTOL * result.var
    mc_var, mc_cvar = sample_var_cvar(totals, 0.99)
    se = float(np.std(np.maximum(totals - mc_var, 0.0))) / (0.01 * math.sqrt(years))
    assert abs(result.cvar - mc_cvar) <= MC_Z * se + ENGINE_RTOL * result.cvar


# ----------------------------------------------------------------------------
# The spec's [benefits] through pricing and solving
# ----------------------------------------------------------------------------

def _tiny():
    return instance_from_dict(tiny_instance_dict(), source="tiny.json")


def _spec(benefits: dict | None = None, **sections):
    data = spec_dict(**sections)
    if benefits is not None:
        data["benefits"] = benefits
    return spec_from_dict(data, source="spec.toml")


def test_trivial_schedule_prices_bit_identically_to_none():
    instance = load_instance(INSTANCES / "tongliao.json")
    plain = PoolPricer(instance, _spec())
    trivial = PoolPricer(instance, _spec({"deductible": 0, "level_factors": {"county": 1.0}}))
    for members in (["150502"], ["150521", "150522"], list(instance.ids)):
        a, b = plain.price(members), trivial.price(members)
        assert a == b     # every field, the numerics and care included, float for float
    assert "benefits" not in _spec().to_dict()


def test_schedule_round_trips_through_the_resolved_spec():
    spec = _spec({"deductible": {"county": 400, "province": 2000}, "cap": 60000,
                  "level_factors": {"prefecture": 0.87, "province": 0.81}})
    assert spec.benefits == BenefitSchedule((400.0, 0.0, 2000.0), 60000.0, (1.0, 0.87, 0.81))
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.benefits == spec.benefits
    flat = _spec({"deductible": 300})
    assert flat.to_dict()["benefits"] == {"deductible": 300.0, "level_factors":
                                          {"county": 1.0, "prefecture": 1.0, "province": 1.0}}


def test_deductible_lowers_the_eligible_cost_and_the_effective_share():
    instance = _tiny()
    members = frozenset(instance.ids)
    before = care_in_pool(instance, instance.county("900101"), members)
    schedule = _spec({"deductible": 1000}).benefits
    after = care_in_pool(with_benefits(instance, schedule), instance.county("900101"), members)
    assert after.total == before.total          # the bill does not change
    assert after.eligible < before.eligible     # the fund pays less of it per unit of rate
    assert after.effective_share < before.effective_share


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(low=st.floats(0.0, 5000.0), extra=st.floats(0.0, 5000.0),
       cap=st.one_of(st.none(), st.floats(2000.0, 100_000.0)), shrink=st.floats(0.2, 1.0),
       members=st.sampled_from([("900101",), ("900102",), ("900101", "900102", "900103")]))
def test_raising_the_deductible_or_lowering_the_cap_never_lowers_the_max_rate(low, extra, cap, shrink, members):
    instance = _tiny()
    rates = {"min": 0.0, "max": 1.0}
    base = PoolPricer(instance, _spec({"deductible": low, **({} if cap is None else {"cap": cap})}, rates=rates))
    higher = PoolPricer(instance, _spec({"deductible": low + extra, **({} if cap is None else {"cap": cap})},
                                        rates=rates))
    lower_cap = PoolPricer(instance, _spec({"deductible": low, "cap": (cap or 100_000.0) * shrink}, rates=rates))
    r0 = base.price(members).max_rate
    for other in (higher, lower_cap):
        r1 = other.price(members).max_rate
        assert r1 >= r0 - MONOTONE_SLACK * abs(r0), (r0, r1)


def test_solve_under_a_schedule_agrees_with_brute_force():
    data = tiny_instance_dict()
    for record in data["counties"]:
        record["contribution_per_capita"] = 250.0     # poor enough that no pool reaches rates.max
    instance = instance_from_dict(data, source="tiny.json")
    sections = {"objective": {"kind": "max_mean_effective_rate"}, "rates": {"min": 0.1, "max": 1.0}}
    spec = _spec({"deductible": {"county": 800, "province": 2000}, "cap": 30000,
                  "level_factors": {"province": 0.8}}, **sections)
    result = solve(instance, spec)
    oracle = brute_force(instance, spec)
    assert result.objective == pytest.approx(oracle.objective, abs=1e-9)
    plain = solve(instance, _spec(**sections))
    # The schedule pays less per admission, so the pool pays a higher rate
    # (measured: 0.838 against 0.668, one pool of all three either way).
    assert [p.pricing.counties for p in result.pools] == [p.pricing.counties for p in plain.pools]
    assert all(a.rate > b.rate + 0.1 for a, b in zip(result.pools, plain.pools, strict=True))


def test_scenario_losses_pay_under_the_schedule():
    """The compact formulation's sampled years draw admissions one by one and
    pay them under the schedule: their mean is the priced model's."""
    instance = with_benefits(_tiny(), _spec({"deductible": 1500, "cap": 20000,
                                             "level_factors": {"province": 0.7}}).benefits)
    members = frozenset(instance.ids)
    years = 5_000
    losses = pool_losses(sample_scenarios(instance, years, seed=3), members)
    model = pool_model(instance, members)
    assert abs(losses.mean() - model.mean) <= MC_Z * math.sqrt(model.variance / years)


# ----------------------------------------------------------------------------
# Bad input: exit 2, naming the file and the field
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("table, field", [
    ('deductible = -1', "benefits.deductible"),
    ('deductible = []', "benefits.deductible"),
    ('deductible = [0, -400]', "benefits.deductible[1]"),
    ('deductible = { county = 400, township = 100 }', "benefits.deductible.township"),
    ('deductible = [0, { county = 400, township = 100 }]', "benefits.deductible[1].township"),
    ('deductible = "400"', "benefits.deductible"),
    ('cap = 0.5', "benefits.cap"),
    ('cap = [20000, "no"]', "benefits.cap[1]"),
    ('level_factors = { county = 1.2 }', "benefits.level_factors.county"),
    ('level_factors = 0.9', "benefits.level_factors"),
    ('level_factors = { province = [0.8, 1.2] }', "benefits.level_factors.province[1]"),
    ('deductible = [0, 100, 200, 300, 400]\ncap = [1000, 2000, 3000, 4000]', "benefits is a menu of 20 schedules"),
    ('copay = 0.1', "benefits.copay"),
])
def test_bad_benefits_exit_2_naming_the_field(tmp_path, capsys, table, field):
    spec = tmp_path / "bad.toml"
    spec.write_text((MODELS / "default.toml").read_text() + "\n[benefits]\n" + table + "\n")
    with pytest.raises(InputError, match=re.escape(field)):
        load_spec(spec)
    assert main(["check", str(INSTANCES / "tongliao.json"), "--spec", str(spec)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(spec) in err and field in err and "Traceback" not in err


def test_bundled_schedule_loads_and_raises_the_rate():
    spec = load_spec(MODELS / "benefits_henan2012.toml")
    assert spec.benefits.deductibles == (400.0, 1200.0, 2000.0)
    instance = load_instance(INSTANCES / "tongliao.json")
    ids = list(instance.ids)
    plain = PoolPricer(instance, dataclasses.replace(spec, benefits=None)).price(ids)
    priced = PoolPricer(instance, spec).price(ids)
    assert priced.expected_cost < plain.expected_cost and priced.max_rate > plain.max_rate


README_FIGURES = {
    0.0: {"default.toml": {"rate": 0.5943, "mean_effective_rate": 0.5314,
                           "resident_effective_rate": 0.5499, "migrant_effective_rate": 0.2572},
          "benefits_henan2012.toml": {"rate": 0.7667, "mean_effective_rate": 0.5314,
                                      "resident_effective_rate": 0.5510, "migrant_effective_rate": 0.2415}},
    None: {"default.toml": {"rate": 0.5999, "mean_effective_rate": 0.5364,
                            "resident_effective_rate": 0.5551, "migrant_effective_rate": 0.2596},
           "benefits_henan2012.toml": {"rate": 0.6940, "mean_effective_rate": 0.4809,
                                       "resident_effective_rate": 0.4987, "migrant_effective_rate": 0.2186}}}
"""The figures README.md and docs/model.md quote for Tongliao pooled whole (4
decimals), by utilisation elasticity: 0 (no response: the schedule's
mechanics, the same money paid differently) and None (the bundled file's
-0.407, which answers the nominal rate the schedule raises)."""


def with_elasticity(instance, elasticity: float | None):
    """The instance with `parameters.utilisation_elasticity` set (None: as
    it is), through its dict, as a user would edit the file."""
    if elasticity is None:
        return instance
    from pooling.data.instance_dict import instance_to_dict
    data = instance_to_dict(instance)
    data["parameters"]["utilisation_elasticity"] = elasticity
    return instance_from_dict(data, source=f"{instance.source} with utilisation_elasticity {elasticity}")


def test_readme_figures_are_what_the_bundled_schedule_gives():
    bundled = load_instance(INSTANCES / "tongliao.json")
    assert bundled.parameters.utilisation_elasticity != 0.0
    texts = [(MODELS.parent / "README.md").read_text(encoding="utf-8"),
             (MODELS.parent / "docs" / "model.md").read_text(encoding="utf-8")]
    for elasticity, by_spec in README_FIGURES.items():
        instance = with_elasticity(bundled, elasticity)
        for name, figures in by_spec.items():
            spec = load_spec(MODELS / name)
            pricing = PoolPricer(instance, spec).price(list(instance.ids))
            rate = pricing.max_rate
            shares = portability((care, rate) for care in pricing.care)
            assert round(rate, 4) == figures["rate"]
            for key in ("mean_effective_rate", "resident_effective_rate", "migrant_effective_rate"):
                assert round(shares[key], 4) == figures[key], key
            for text in texts:
                for value in figures.values():
                    assert f"{value:.4f}" in text
            if elasticity is None and name == "benefits_henan2012.toml":
                # the response answers the nominal rate: above r0 it adds admissions
                assert round(pricing.admission_multiplier, 4) == 1.1048
                assert all("1.1048" in text for text in texts)
