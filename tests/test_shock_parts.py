"""Aggregate laws that are sums of independent gamma-mixed parts (issue: shocks
at national, prefecture and county level; pooling.risk.compound, "Parts").

Y = main + sum(parts): the main part's streams scaled by Theta_N ~ Gamma(1,
shock_cv), each extra part's by its own independent Gamma(1, theta_u) (0:
Poisson). Checked here: the closed forms, the engines against a brute-force
convolution of the parts' own laws and against per-claim Monte Carlo, the
band engine against a converged direct lattice on large pools, the sampler's
moments, and that a model without parts prices as before parts existed (to the
rounding another CPU may add: tests/tolerances.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.errors import NumericsError
from pooling.risk import band, lattice, law_checks, sampling
from pooling.risk.claims import (
    ClaimStream,
    CompoundModel,
    LatticeLaw,
    aggregate,
    lattice_law,
    merge_streams,
    no_claim_probability,
)
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.ruin import ruin_max_rate
from pooling.risk.sampling import PoolYearSampler
from pooling.risk.severity import Severity, with_pareto_tail
from tests.tolerances import ROUNDING, STORED_PRICE

LEVEL = 0.99
HOME = Severity("lognormal", 4000.0, 1.0)
GAMMA = Severity("gamma", 6000.0, 0.8)
OUTSIDE = Severity("lognormal", 8000.0, 1.5)
PARETO = with_pareto_tail(HOME, 0.01, 2.5)
SEVERITIES = (HOME, GAMMA, OUTSIDE, Severity("gamma", 2500.0, 1.3))

SIGMAS = 4.0
"""Half-width of the Monte Carlo intervals, in standard errors: with the fixed
seeds below the tests are deterministic; 4 sigma keeps a correct engine inside
with probability 0.99994 per figure should the seeds ever change."""
BRUTE_FORCE_AGREEMENT = 1e-3
"""VaR/CVaR against the convolution of the parts' own laws (the accuracy
promised for pool pricing)."""
BAND_AGREEMENT = 1e-4
"""Band engine against the converged direct lattice on large pools (as in
tests/test_pricing_accuracy.py)."""

ROOT = Path(__file__).resolve().parent.parent

FAST = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def three_part_model(scale: float = 1.0, main_cv: float = 0.05) -> CompoundModel:
    """Main (shock 0.05) + a part with shock 0.1 + a part with shock 0.2:
    lognormal and gamma severities, ~250 admissions a year at scale 1."""
    main = (ClaimStream(100.0 * scale, HOME), ClaimStream(20.0 * scale, OUTSIDE, 0.6))
    prefecture = CompoundModel((ClaimStream(60.0 * scale, GAMMA),), 0.1)
    county = CompoundModel((ClaimStream(40.0 * scale, HOME), ClaimStream(30.0 * scale, GAMMA, 0.6)), 0.2)
    return CompoundModel(main, main_cv, parts=(prefecture, county))


def pool_like_model(total: float, counties: int = 8, prefectures: int = 3) -> CompoundModel:
    """A pool as pooling.economics.pools builds it with shocks at three levels:
    rates split 0.6 national (cv 0.05) / 0.25 prefecture (cv 0.1) / 0.15 county
    (cv 0.2); each county has its own severity and an out-of-network stream."""
    rng = np.random.default_rng(11)
    by_county = []
    for c in range(counties):
        severity = Severity("lognormal", float(rng.integers(3000, 6000)), float(rng.integers(80, 120)) / 100)
        lam = total / counties * float(rng.uniform(0.5, 1.5))
        by_county.append((c % prefectures, (ClaimStream(0.9 * lam, severity), ClaimStream(0.1 * lam, OUTSIDE, 0.6))))

    def scaled(streams, weight):
        return merge_streams(ClaimStream(s.rate * weight, s.severity, s.factor) for s in streams)

    everything = [s for _, streams in by_county for s in streams]
    parts = [CompoundModel(scaled([s for q, streams in by_county if q == p for s in streams], 0.25), 0.1)
             for p in range(prefectures)]
    parts += [CompoundModel(scaled(streams, 0.15), 0.2) for _, streams in by_county]
    return CompoundModel(scaled(everything, 0.6), 0.05, parts=tuple(parts))


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# -- the model ------------------------------------------------------------------

def test_closed_forms_sum_over_the_parts():
    model = three_part_model()
    streams = [s for part in (model, *model.parts) for s in part.streams]
    assert model.expected_count == pytest.approx(sum(s.rate for s in streams), rel=ROUNDING)
    assert model.mean == pytest.approx(sum(s.mean for s in streams), rel=ROUNDING)
    shocks = sum((p.shock_cv * math.fsum(s.mean for s in p.streams)) ** 2 for p in (model, *model.parts))
    assert model.variance == pytest.approx(sum(s.second_moment_sum for s in streams) + shocks, rel=ROUNDING)
    # P(N = 0) is the product of the parts' (negative binomial and Poisson).
    small = three_part_model(scale=0.002)
    p0 = math.prod((1.0 + p.shock_cv ** 2 * sum(s.rate for s in p.streams)) ** (-1.0 / p.shock_cv ** 2)
                   for p in (small, *small.parts))
    assert no_claim_probability(small) == pytest.approx(p0, rel=ROUNDING)


def test_parts_cannot_nest_and_given_shock_keeps_them():
    inner = CompoundModel((ClaimStream(1.0, HOME),), 0.1)
    with pytest.raises(ValueError, match="parts of its own"):
        CompoundModel((ClaimStream(1.0, HOME),), 0.1, parts=(CompoundModel((), 0.0, parts=(inner,)),))
    model = three_part_model()
    given = model.given_shock(1.3)
    assert given.shock_cv == 0.0
    assert given.parts == model.parts
    assert [s.rate for s in given.streams] == [1.3 * s.rate for s in model.streams]
    main_mean = math.fsum(s.mean for s in model.streams)
    assert given.mean == pytest.approx(model.mean + 0.3 * main_mean, rel=ROUNDING)


def test_a_model_without_main_streams_prices_its_parts():
    part = CompoundModel((ClaimStream(50.0, HOME),), 0.1)
    alone = aggregate(CompoundModel((), 0.0, parts=(part,)), LEVEL)
    direct = aggregate(part, LEVEL)
    assert (alone.var, alone.cvar) == pytest.approx((direct.var, direct.cvar), rel=ROUNDING)
    nothing = aggregate(CompoundModel((), 0.0, parts=(CompoundModel((), 0.2),)), LEVEL)
    assert (nothing.var, nothing.cvar, nothing.mean) == (0.0, 0.0, 0.0)   # Y = 0 (was a NumericsError)


# -- 1. Poisson parts are one Poisson model; no parts: nothing moved ------------

stream_strategy = st.tuples(st.sampled_from(SEVERITIES), st.sampled_from((1.0, 0.6)),
                            st.floats(0.05, 1.0))


@FAST
@given(scale=st.floats(-1.0, 4.0),
       parts=st.lists(st.lists(stream_strategy, min_size=1, max_size=3), min_size=2, max_size=4))
def test_poisson_parts_price_as_the_merged_poisson_model(scale, parts):
    models = [CompoundModel(tuple(ClaimStream(share * 10.0 ** scale, sev, f) for sev, f, share in part), 0.0)
              for part in parts]
    model = CompoundModel(models[0].streams, 0.0, parts=tuple(models[1:]))
    merged = CompoundModel(merge_streams(s for m in models for s in m.streams), 0.0)
    got, want = aggregate(model, LEVEL), aggregate(merged, LEVEL)
    assert relative(got.var, want.var) <= 1e-6 and relative(got.cvar, want.cvar) <= 1e-6
    assert math.isclose(no_claim_probability(model), no_claim_probability(merged), rel_tol=ROUNDING)
    assert relative(model.variance, merged.variance) <= ROUNDING


BEFORE_PARTS = {
    # name: (VaR, CVaR, points, P(N = 0), lattice_law's discretised variance),
    # as computed by the engine before parts existed (commit of this file's parent),
    # on a machine whose numpy ran its AVX2 loops and OpenBLAS its Haswell kernels.
    "small": ((ClaimStream(0.3, HOME),), 0.0,
              (14447.464340338374, 20707.06201901539, 65536, 0.7408182206817179, 9600012.496066974)),
    "small_shock": ((ClaimStream(2.0, HOME), ClaimStream(1.0, OUTSIDE, 0.6)), 0.1,
                    (54017.23605193639, 71756.34619152751, 65536, 0.052032839850209095, 140519663.19226325)),
    "mid": ((ClaimStream(150.0, HOME), ClaimStream(30.0, GAMMA, 0.6)), 0.05,
            (911000.5748229593, 944312.1372940433, 2048, 2.8366065801860404e-65, 6690867166.435535)),
    "large": ((ClaimStream(2e5, HOME), ClaimStream(3e4, OUTSIDE, 0.6)), 0.1,
              (1177502888.9438524, 1215244265.2916064, 512, 0.0, 8920815068577789.0)),
    "pareto": ((ClaimStream(3000.0, PARETO),), 0.03,
               (13406773.475829532, 13675913.646776706, 32768, 0.0, 262418355365.44916)),
}


@pytest.mark.parametrize("name", sorted(BEFORE_PARTS))
def test_a_model_without_parts_prices_as_before(name):
    """Bit-identical where these were recorded (checked by hashing the lattices
    before and after; reproduced bit for bit on an AVX-512 machine with
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" OPENBLAS_CORETYPE=Haswell).
    Another CPU's rounding moves the prices by up to 1.2e-10 (measured), hence
    STORED_PRICE; P(N = 0) is a closed form (ROUNDING)."""
    streams, theta, (var, cvar, points, p0, law_variance) = BEFORE_PARTS[name]
    model = CompoundModel(streams, theta)
    result = aggregate(model, LEVEL)
    assert relative(result.var, var) <= STORED_PRICE and relative(result.cvar, cvar) <= STORED_PRICE
    assert result.points == points
    assert no_claim_probability(model) == pytest.approx(p0, rel=ROUNDING, abs=0.0)
    assert relative(lattice_law(model).discretised_variance, law_variance) <= STORED_PRICE


RUIN_BEFORE_PARTS = 0.5260620730954914
"""ruin_max_rate of the "mid" model below, recorded with BEFORE_PARTS."""


def _ruin_rate_of_mid() -> float:
    model = CompoundModel(BEFORE_PARTS["mid"][0], BEFORE_PARTS["mid"][1])
    return ruin_max_rate(model, ["a", "b"], start_reserves=1e6, net_income=1e5, years=3, scenarios=2000,
                         level=LEVEL, seed=3)


def test_a_model_without_parts_has_the_same_ruin_rate_as_before():
    # The sampler's inverse CDF interpolates within cells and the rate is an order
    # statistic: both continuous, so rounding moves the rate as it moves a price.
    assert relative(_ruin_rate_of_mid(), RUIN_BEFORE_PARTS) <= STORED_PRICE


OTHER_SIMD_PATHS = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Prescott",
}
"""Environment that makes numpy run its baseline (SSE4.2) loops instead of the
AVX2/AVX-512 ones this CPU may have, and OpenBLAS its oldest x86-64 kernels:
another CPU's rounding, simulated on this one (docs/testing.md, "On any machine")."""

_PRICES_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from tests.test_shock_parts import current_prices
print(json.dumps(current_prices()))
"""


def current_prices() -> dict[str, list[float]]:
    """[VaR, CVaR, lattice_law's discretised variance] of each BEFORE_PARTS model,
    and the ruin rate, as this process computes them."""
    prices = {}
    for name, (streams, theta, _) in BEFORE_PARTS.items():
        model = CompoundModel(streams, theta)
        result = aggregate(model, LEVEL)
        prices[name] = [result.var, result.cvar, lattice_law(model).discretised_variance]
    prices["ruin"] = [_ruin_rate_of_mid()]
    return prices


def test_stored_prices_hold_on_other_simd_paths():
    """The recorded prices, recomputed in a process whose numpy and OpenBLAS take
    other SIMD paths (OTHER_SIMD_PATHS), agree with the recorded ones and with
    this process's within STORED_PRICE. On an AVX-512 machine the two processes
    differ by up to 1.2e-10 (measured); where the switch changes nothing, they agree."""
    env = {**os.environ, **OTHER_SIMD_PATHS}
    done = subprocess.run([sys.executable, "-c", _PRICES_SCRIPT.format(root=str(ROOT))], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout)
    recorded = {name: [var, cvar, law_variance]
                for name, (_, _, (var, cvar, _, _, law_variance)) in BEFORE_PARTS.items()}
    recorded["ruin"] = [RUIN_BEFORE_PARTS]
    for reference in (recorded, current_prices()):
        assert set(other) == set(reference)
        for name, values in reference.items():
            for got, want in zip(other[name], values, strict=True):
                assert relative(got, want) <= STORED_PRICE, (name, got, want)


# -- 2. closed forms against the computed law -----------------------------------

part_strategy = st.tuples(st.lists(stream_strategy, min_size=1, max_size=2),
                          st.sampled_from((0.0, 0.05, 0.2, 0.5)))


@FAST
@given(scale=st.floats(0.0, 4.0), main_cv=st.sampled_from((0.0, 0.03, 0.1)),
       parts=st.lists(part_strategy, min_size=1, max_size=3))
def test_lattice_law_has_the_closed_form_moments(scale, main_cv, parts):
    def streams(spec):
        return tuple(ClaimStream(share * 10.0 ** scale, sev, f) for sev, f, share in spec)
    model = CompoundModel(streams(parts[0][0]), main_cv,
                          parts=tuple(CompoundModel(streams(spec), cv) for spec, cv in parts[1:]))
    law = lattice_law(model)
    assert relative(float(law.pmf.sum()), 1.0) <= law_checks.MASS_TOLERANCE
    assert relative(law.mean, model.mean) <= 1e-9
    # Lattice variance against the discretised model's closed form (sum over
    # parts of lambda_u E[X_d^2] + theta_u^2 mean_u^2), and that against Var Y:
    # the discretisation adds at most a few 1e-4 at the sampling budget.
    assert relative(law.variance, law.discretised_variance) <= 1e-6
    assert relative(law.discretised_variance, model.variance) <= 1e-3


def _whole_length_mixtures(model: CompoundModel, span: float, n: int, cap: float | None):
    """lattice._part_severity_lattices as it was before it summed only the cells
    the streams reach: every part's mixture summed over all n cells."""
    from pooling.risk.windows import _claim_reach
    reaches = {}
    for part in model.components:
        for s in part.streams:
            key = (s.severity, s.factor)
            reaches[key] = max(reaches.get(key, 0.0), _claim_reach(s, part.expected_count))
    out = []
    for part in model.components:
        sev, second, excess = np.zeros(n), [], []
        for s in part.streams:
            key = (s.severity, s.factor)
            one, one_second, one_excess = lattice._normalised_severity_lattice(
                (ClaimStream(1.0, *key),), span, n, cap, reaches[key])
            sev += one * (s.rate / part.expected_count)
            second.append(s.rate / part.expected_count * one_second)
            excess.append(s.rate / part.expected_count * one_excess)
        out.append((sev, math.fsum(second), math.fsum(excess)))
    return out


@FAST
@given(scale=st.floats(0.0, 4.0), main_cv=st.sampled_from((0.0, 0.03, 0.1)),
       parts=st.lists(st.tuples(st.lists(stream_strategy, min_size=1, max_size=2), st.sampled_from((0.05, 0.5))),
                      min_size=2, max_size=4),
       capped=st.booleans())
def test_part_mixtures_are_bit_identical_to_whole_length_sums(scale, main_cv, parts, capped):
    """Summing each part's mixture over its streams' extent only (a speed-up: a
    pool's claims reach ~1e3 of a lattice's 5e5 cells) gives the same bits as
    summing every cell, with and without a claim cap, on the law's lattice and
    on shorter ones down to where the severity folds over (the shortest the
    engine accepts)."""
    def streams(spec):
        return tuple(ClaimStream(share * 10.0 ** scale, sev, f) for sev, f, share in spec)
    model = CompoundModel(streams(parts[0][0]), main_cv,
                          parts=tuple(CompoundModel(streams(spec), cv) for spec, cv in parts[1:]))
    _low, span, cells = lattice._grid(model, lattice.POINTS_PER_WINDOW, lattice.SAMPLING_SHIFT_BUDGET)
    cap = model.mean / max(model.expected_count, 1.0) if capped else None
    while cells >= 16:
        try:
            fast = lattice._part_severity_lattices(model, span, cells, cap)
        except NumericsError:   # the severity is longer than 4 lattices: refused, by both
            with pytest.raises(NumericsError):
                _whole_length_mixtures(model, span, cells, cap)
            break
        whole = _whole_length_mixtures(model, span, cells, cap)
        cells //= 4
        assert len(fast) == len(whole) == len(model.components) >= 2
        for (sev, second, excess), (sev0, second0, excess0) in zip(fast, whole):
            assert sev.tobytes() == sev0.tobytes()
            assert (second, excess) == (second0, excess0)


# -- 3. brute force: convolution of the parts' own laws --------------------------

def _on_common_span(law: LatticeLaw, span: float, size: int) -> np.ndarray:
    """The law's atoms split between the two nearest points k * span (mean kept)."""
    position = (law.start + law.span * np.arange(len(law.pmf))) / span
    below = np.floor(position).astype(np.int64)
    upper = position - below
    return (np.bincount(below, weights=law.pmf * (1.0 - upper), minlength=size)[:size]
            + np.bincount(below + 1, weights=law.pmf * upper, minlength=size)[:size])


def test_three_parts_match_the_convolution_of_their_own_laws():
    model = three_part_model()
    laws = [lattice_law(CompoundModel(p.streams, p.shock_cv)) for p in (model, *model.parts)]
    span = min(law.span for law in laws) / 2.0
    size = 1 << int(math.ceil(math.log2(sum(law.start + law.span * len(law.pmf) for law in laws) / span + 4)))
    spectrum = np.ones(size // 2 + 1, dtype=complex)
    for law in laws:
        spectrum *= np.fft.rfft(_on_common_span(law, span, size))
    pmf = np.maximum(np.fft.irfft(spectrum, size), 0.0)
    assert abs(pmf.sum() - 1.0) <= 1e-9
    brute = lattice_var_cvar(0.0, span, pmf, LEVEL)
    engine = aggregate(model, LEVEL)
    whole = lattice_law(model).var_cvar(LEVEL)
    for got in ((engine.var, engine.cvar), whole):
        assert relative(got[0], brute[0]) <= BRUTE_FORCE_AGREEMENT
        assert relative(got[1], brute[1]) <= BRUTE_FORCE_AGREEMENT


# -- 4. per-claim Monte Carlo -----------------------------------------------------

MC_YEARS = 200_000
MC_CHUNK = 20_000


def _simulate(model: CompoundModel, years: int, rng: np.random.Generator) -> np.ndarray:
    """Pool-year costs drawn claim by claim: each part's multiplier, each
    stream's Poisson count given it, each claim's severity."""
    costs = np.zeros(years)
    for part in (model, *model.parts):
        theta = part.shock_cv
        shock = rng.gamma(1.0 / theta ** 2, theta ** 2, years) if theta > 0 else np.ones(years)
        for s in part.streams:
            counts = rng.poisson(s.rate * shock)
            sizes = s.factor * s.severity.sample(rng, int(counts.sum()))
            costs += np.bincount(np.repeat(np.arange(years), counts), weights=sizes, minlength=years)
    return costs


def test_three_parts_match_per_claim_monte_carlo():
    model = three_part_model()
    rng = np.random.default_rng(20240611)
    y = np.sort(np.concatenate([_simulate(model, MC_CHUNK, rng) for _ in range(MC_YEARS // MC_CHUNK)]))
    n = len(y)
    engine = aggregate(model, LEVEL)
    assert abs(y.mean() - model.mean) <= SIGMAS * y.std() / math.sqrt(n)
    # VaR: the engine's quantile must lie between the order statistics a binomial
    # 4-sigma band of ranks around LEVEL * n away.
    half = SIGMAS * math.sqrt(n * LEVEL * (1.0 - LEVEL))
    assert y[int(LEVEL * n - half)] <= engine.var <= y[int(math.ceil(LEVEL * n + half))]
    # CVaR: sample R-U tail mean, standard error from its influence function
    # (Y - VaR)+ / (1 - level).
    var = y[int(math.ceil(LEVEL * n)) - 1]
    excess = np.maximum(y - var, 0.0)
    cvar = var + excess.mean() / (1.0 - LEVEL)
    assert abs(engine.cvar - cvar) <= SIGMAS * excess.std() / (1.0 - LEVEL) / math.sqrt(n)


# -- 5. large pools: band engine against the converged direct lattice -----------

def _converged(model: CompoundModel, level: float) -> tuple[float, float]:
    low, span, n = lattice._grid(model, lattice.POINTS_PER_WINDOW, lattice.PRICING_SHIFT_BUDGET)
    fine = lattice._lattice_law(model, low, span / 4.0, 4 * n).var_cvar(level)
    coarse = lattice._lattice_law(model, low, span / 2.0, 2 * n).var_cvar(level)
    return tuple(f + (f - c) / 3.0 for f, c in zip(fine, coarse))


@pytest.mark.parametrize("total", [1e5, 1e6])
def test_large_multi_part_pools_price_through_the_band_engine(total):
    model = pool_like_model(total)
    result = aggregate(model, LEVEL)
    banded = band._band_aggregate(model, LEVEL, 1.0)
    assert banded is not None and (banded.var, banded.cvar, banded.points) == (result.var, result.cvar, result.points)
    assert result.points <= band.BAND_MAX_POINTS
    var, cvar = _converged(model, LEVEL)
    assert relative(result.var, var) <= BAND_AGREEMENT
    assert relative(result.cvar, cvar) <= BAND_AGREEMENT


# -- 6. the conditional sampler ----------------------------------------------------

SAMPLES = 200_000


def _check_moments(draws: np.ndarray, model: CompoundModel):
    n = len(draws)
    mean, centred = draws.mean(), draws - draws.mean()
    variance = float(centred @ centred) / (n - 1)
    assert abs(mean - model.mean) <= SIGMAS * math.sqrt(variance / n)
    fourth = float(np.mean(centred ** 4))
    assert abs(variance - model.variance) <= SIGMAS * math.sqrt((fourth - variance ** 2) / n)


def test_sampler_conditions_on_the_main_shock_and_keeps_the_parts():
    model = three_part_model(main_cv=0.1)
    sampler = PoolYearSampler(model)
    assert sampler.nodes is not None
    rng = np.random.default_rng(7)
    shape = 1.0 / model.shock_cv ** 2
    _check_moments(sampler.sample(rng.gamma(shape, 1.0 / shape, SAMPLES), rng.random(SAMPLES)), model)


def test_sampler_uses_the_whole_law_when_only_the_parts_have_shocks():
    model = three_part_model(main_cv=0.0)
    sampler = PoolYearSampler(model)
    assert sampler.nodes is None
    rng = np.random.default_rng(8)
    _check_moments(sampler.sample(np.ones(SAMPLES), rng.random(SAMPLES)), model)


def test_ruin_rate_of_a_multi_part_pool_is_finite():
    rate = ruin_max_rate(three_part_model(), ["a"], start_reserves=1e6, net_income=2e5, years=3,
                         scenarios=2000, level=LEVEL, seed=3)
    assert math.isfinite(rate) and rate > 0


def _draws(model: CompoundModel, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    shape = 1.0 / model.shock_cv ** 2
    return PoolYearSampler(model).sample(rng.gamma(shape, 1.0 / shape, 2000), rng.random(2000)).tobytes()


def test_node_laws_are_shared_between_samplers_and_draw_the_same_bits(monkeypatch):
    """A second sampler of an equal model (another object) takes its node laws
    from the memo (no law computed) and draws the same bits as with the memo
    cold, whatever was drawn in between."""
    made = []
    monkeypatch.setattr(sampling, "lattice_law", lambda model: made.append(model) or lattice_law(model))
    sampling._node_memo.clear()
    cold = _draws(three_part_model(main_cv=0.1), 9)
    assert made and sampling._node_memo.size > 0
    computed = len(made)
    _draws(three_part_model(scale=2.0, main_cv=0.1), 10)
    assert len(made) > computed
    computed = len(made)
    assert _draws(three_part_model(main_cv=0.1), 9) == cold
    assert len(made) == computed
    sampling._node_memo.clear()
    assert _draws(three_part_model(main_cv=0.1), 9) == cold


def test_the_node_memo_keeps_to_its_budget_dropping_the_least_recently_used():
    memo = sampling._NodeMemo(0)
    model = three_part_model(main_cv=0.1)
    first = memo.get(model, 1.0)
    assert memo.size == 0 and memo.get(model, 1.0) is not first    # nothing kept within 0 bytes
    one = sampling._NodeMemo(10 ** 9)
    law = one.get(model, 1.0)
    size = one.size
    assert size > 0 and one.get(three_part_model(main_cv=0.1), 1.0) is law
    two = sampling._NodeMemo(2 * size + size // 2)    # room for two laws of this size
    a, b = two.get(model, 0.9), two.get(model, 1.0)
    assert two.get(model, 0.9) is a                   # a is now the most recently used
    two.get(model, 1.1)                               # drops b
    assert two.size <= two.budget
    assert two.get(model, 0.9) is a and two.get(model, 1.0) is not b
    with pytest.raises(ValueError):
        law.cdf[0] = 0.5                              # shared: read only
