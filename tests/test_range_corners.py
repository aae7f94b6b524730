"""Corners of the documented ranges that the large range-ends run (issue 22,
docs/testing.md "Range ends") found refused with a NumericsError, each priced
now, with the law behind the fix checked on its own."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pooling.risk import lattice
from pooling.risk.claims import ClaimStream, CompoundModel, aggregate
from pooling.risk.direct import VAR_SCALE_FLOOR, _var_upper_bound
from pooling.risk.law_checks import RESOLUTION_TOLERANCE
from pooling.risk.severity import Severity
from pooling.risk.windows import RARE_REACH_PROBABILITY, TAIL_PROBABILITY, _claim_reach

QUANTILE_ROUND_TRIP = 1e-6
"""Relative agreement of S(upper_quantile(p)) with p: scipy's ndtri/gammainccinv
and ndtr/gammaincc round-trip far tighter (~1e-12); 1e-6 still tells a reach at
the wrong probability (a factor of 1e-3 at least) from the right one."""

NARROW = Severity("gamma", 1.0, 0.01)
HEAVY = Severity("spliced", 1.0, 20.0, threshold=1e10, tail_index=2.5, tail_probability=1.8283608156724178e-302)


def test_a_rare_heavy_stream_beside_a_huge_narrow_pool_prices():
    """Old code: NumericsError "variance off by 0.00242 relative, also on a
    window widened 4x" (range-ends run, pool [1, 2]): 1.1e-22 expected
    admissions of a lognormal-bodied severity of cv 20 stretched the window of
    5e6 admissions of gamma cv 0.01 to the severity's 1e-12 quantile (1.5e6
    means), 20 times the law's width, and the FFT's round-off over those cells
    alone moved the variance by 2e-4. A stream that rare cannot move the price."""
    main = (ClaimStream(4999999.995000664, NARROW), ClaimStream(1.1102230246251565e-22, HEAVY))
    regional = CompoundModel((ClaimStream(0.005000000000000003, NARROW),), 0.33287108369807955)
    with_rare = aggregate(CompoundModel(main, 2.7485170347498615e-12, parts=(regional,)), 0.5)
    without = aggregate(CompoundModel(main[:1], 2.7485170347498615e-12, parts=(regional,)), 0.5)
    for got, want in ((with_rare.var, without.var), (with_rare.cvar, without.cvar)):
        assert abs(got - want) <= RESOLUTION_TOLERANCE * want
    assert with_rare.points <= 2 ** 16     # a window near the law's own width, not 2^20 points


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(1e-25, 1e9), others=st.floats(0.0, 1e9),
       dist=st.sampled_from(["lognormal", "gamma"]), cv=st.floats(0.01, 20.0))
def test_claim_reach_keeps_expected_claims_beyond_it_below_the_tail_probability(rate, others, dist, cv):
    """_claim_reach's law: expected claims beyond a stream's reach, rate S(r),
    and its share of its part's claims beyond it, (rate / count) S(r), are at
    most TAIL_PROBABILITY; S(r) is at most RARE_REACH_PROBABILITY; a stream of
    rate >= 1, or alone in its part, reaches its TAIL_PROBABILITY quantile
    exactly as before (its pools price bit for bit as before)."""
    severity = Severity(dist, 1000.0, cv)
    stream = ClaimStream(rate, severity)
    count = rate + others
    reach = _claim_reach(stream, count)
    beyond = float(severity.tails(np.array([reach]))[0][0])
    slack = 1.0 + QUANTILE_ROUND_TRIP
    assert min(rate, 1.0) * beyond <= TAIL_PROBABILITY * slack
    assert rate / count * beyond <= TAIL_PROBABILITY * slack
    assert beyond <= RARE_REACH_PROBABILITY * slack
    if rate >= 1.0 or others == 0.0:
        assert reach == severity.upper_quantile(TAIL_PROBABILITY)


GAMMA_CV_20 = Severity("gamma", 1.0, 20.0)


def test_a_var_on_a_near_zero_quantile_is_bounded_in_closed_form():
    """Old code: NumericsError "aggregate did not converge to 0.0001 within
    8388608 points at level 0.9999 (error estimate 0.185)" (range-ends run, pool
    [2]): 1e-3 admissions of gamma cv 20, whose VaR at 0.9999 is the severity's
    0.9 quantile, ~2e-16 of its mean; the lattice's VaR is half a cell and no
    lattice up to 2^23 points made it 1e-4 of E[Y]. VaR is now bounded by 1e-4
    E[Y] in closed form (for the same claims without shocks the bound is checked
    against P(Y <= x) >= P(N = 0) + P(N = 1) F(x))."""
    level = 0.9999
    model = CompoundModel((ClaimStream(1.0000000000001122e-06, GAMMA_CV_20),), 1e-12, parts=(
        CompoundModel((ClaimStream(1.1011304196016577e-06, GAMMA_CV_20),), 0.5),
        CompoundModel((ClaimStream(0.0009978988695803985, GAMMA_CV_20),), 1.764715134350075e-05)))
    result = aggregate(model, level)
    assert 0.0 < result.var <= RESOLUTION_TOLERANCE * VAR_SCALE_FLOOR * model.mean
    assert abs(result.cvar - model.mean / (1.0 - level)) <= RESOLUTION_TOLERANCE * result.cvar
    poisson = aggregate(CompoundModel((ClaimStream(model.expected_count, GAMMA_CV_20),)), level)
    assert 0.0 < poisson.var <= RESOLUTION_TOLERANCE * VAR_SCALE_FLOOR * model.mean
    assert _poisson_tail_bound(model.expected_count, GAMMA_CV_20, poisson.var) <= 1.0 - level


def _poisson_tail_bound(lam: float, severity: Severity, x: float) -> float:
    """An upper bound on P(Y > x) for a compound Poisson sum, from P(Y <= x) >=
    P(N = 0) + P(N = 1) F(x): 1 - e^-lam (1 + lam F(x))."""
    below = 1.0 - float(severity.tails(np.array([x]))[0][0])
    return -math.expm1(-lam) - lam * math.exp(-lam) * below


@settings(max_examples=80, deadline=None)
@given(lam=st.floats(1e-6, 10.0), cv=st.floats(0.01, 20.0), level=st.floats(0.5, 0.9999),
       dist=st.sampled_from(["lognormal", "gamma"]))
def test_var_upper_bound_holds_against_the_exact_one_claim_bound(lam, cv, level, dist):
    """Whenever `_var_upper_bound` claims VaR <= x for a compound Poisson sum,
    P(Y > x) <= 1 - e^-lam (1 + lam F(x)) <= 1 - level: a tighter bound computed
    another way (the engine's is P(N >= 2) <= lam^2 / 2 plus lam S(x))."""
    severity = Severity(dist, 1000.0, cv)
    model = CompoundModel((ClaimStream(lam, severity),))
    bound = _var_upper_bound(model, level)
    if bound is not None:
        assert _poisson_tail_bound(lam, severity, bound) <= 1.0 - level


def test_phi_minus_one_beyond_the_direct_work_splits_off_the_far_cells(monkeypatch):
    """Old code: when the direct sums would take more than PRECISE_PHI_WORK terms
    phi - 1 was left as subtracted, and a heavy stream of 1 admission (cv 20,
    a 7e5-cell lattice) beside 5e6 narrow ones failed its variance check by
    6e-3 (NumericsError; that pool now prices, in 37 s: too slow for the
    suite, so the split is checked here on its own). Now the first cells are summed directly and
    the far ones by their FFT minus their mass: it matches the full direct sum
    to its own rounding and the far cells' round-off (~1e-16 of their mass)."""
    n = 2 ** 16
    sev = np.zeros(n)
    sev[[0, 1, 2]] = [0.25, 0.5, 0.25 - 1e-7]
    far = np.arange(3, 4003)
    sev[far] = 1e-7 / far.size
    phi = np.fft.rfft(sev)
    phi[0] = 1.0
    exact = lattice._precise_phi_minus_one(phi, sev, n)          # every cell summed directly
    assert exact is not None
    low = np.flatnonzero(np.abs(exact) < lattice.PRECISE_PHI_BELOW)
    low = low[low > 0]
    monkeypatch.setattr(lattice, "PRECISE_PHI_WORK", 3 * low.size)  # the first 3 cells only
    split = lattice._precise_phi_minus_one(phi, sev, n)
    assert split is not None
    # Rounding of the direct sums themselves (32 u of the result) and the far cells' FFT (~u log2(n) of their mass).
    allowed = 32.0 * 2.0 ** -53 * np.abs(exact[low]) + 2.0 ** -53 * math.log2(n) * 1e-7
    assert np.all(np.abs(split[low] - exact[low]) <= allowed)
    assert np.max(np.abs((phi - 1.0)[low] - exact[low])) > 10.0 * np.max(allowed)   # what plain subtraction loses
