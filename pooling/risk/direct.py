"""The direct lattice engine: VaR and CVaR from Y's whole law on one lattice
(pooling.risk.lattice, on the window of pooling.risk.windows), with error
control, and the claim cap that keeps small pools with heavy tails short.

Error control: VaR and CVaR are computed at spans h and 2h. The leading
discretisation error is O(h^2) (added variance), so Richardson extrapolation
R = R_h + (R_h - R_2h) / 3 removes it, and |R_h - R_2h| / 3 estimates what is
left; h is halved while that estimate exceeds RESOLUTION_TOLERANCE. Measured
against exact compound sums this keeps errors below 2e-4 from 10^2 to 10^6
admissions (benchmarks/bench_claims.py). The law then passes the self-checks
of pooling.risk.law_checks.

Claim cap (`claim_cap`): a lattice that would start above CAPPED_FROM points
(a small pool with a heavy tail) lumps the claims above a size that is at
least VaR on its last point, which leaves VaR and CVaR exact.
"""

from __future__ import annotations

import math

import numpy as np

from pooling.errors import NumericsError
from pooling.risk.compound import AggregateResult, CompoundModel, describe_model, no_claim_probability
from pooling.risk.lattice import MAX_POINTS, POINTS_PER_WINDOW, PRICING_SHIFT_BUDGET, _grid, _lattice_law
from pooling.risk.law_checks import RESOLUTION_TOLERANCE, _ChecksFailed, _result, law_check_failures
from pooling.risk.windows import _largest_claim_quantile

VAR_SCALE_FLOOR = 1.0
"""The direct lattice's VaR error is measured against max(VaR, this x E[Y]), not
VaR alone: a VaR far below the mean (a gamma cv 20 pool of 0.1 admissions: most
claims are ~1e-30 of their mean, so the 0.99 quantile is a near-zero point no
lattice resolves, and no span met a relative tolerance: NumericsError) is then
known to 1e-4 of E[Y]. A rate B / VaR that small a VaR gives is beyond any
rates.max unless B is within 1e-4 E[Y] of 0. CVaR >= E[Y] is unaffected."""
CAPPED_FROM = 2 ** 20
"""A direct lattice that would start with more points than this (a small pool
with a heavy tail: lognormal cv 10-20 reaches 1.5e6 severity means at its
1e-12 quantile) is computed with claims above `claim_cap` lumped, which leaves
VaR and CVaR exact and the lattice short (cv 20, one admission: 2^16 points
instead of over MAX_POINTS). Below it the law is kept whole (its far tail too),
as every pool that priced before prices bit for bit as before."""
SECOND_CLAIM_MARGIN = 0.5
"""P(N >= 2) <= E[N (N - 1)] / 2 (Markov on N (N - 1) / 2 >= 1): the factor in
`_var_upper_bound`'s bound on the chance of two or more claims."""
RARE_SHARE = 0.01
"""Streams whose expected counts sum to at most this share of 1 - level are
left out of the variance in `claim_cap`'s bound (at a level raised by their sum)."""


def claim_cap(model: CompoundModel, level: float) -> float:
    """A claim size no smaller than VaR_level(Y): Cantelli's bound, E[Y'] +
    sd(Y') sqrt(a / (1 - a)) (P(Y' - E[Y'] >= k sd) <= 1 / (1 + k^2)), for Y'
    the claims of all streams but the rarest, whose expected counts sum to at
    most RARE_SHARE (1 - level), at a = level + that sum: a claim of theirs
    occurs with probability at most the sum, so P(Y > cap) <= 1 - level. (A
    heavy stream of 1e-15 admissions otherwise set sd(Y) and a cap ~1e8 times
    the pool's claims.)

    A claim above the cap makes Y exceed VaR on its own, so for VaR and CVaR
    only the probability of such claims and their mean count, not where they
    lie: (Y - v)+ = Y - v is linear in each of them for v <= VaR. So a capped
    severity lattice stops just above the cap with all the mass beyond on its
    last point e, and what that leaves out of E[Y], E[N] E[(X - e)+]
    (`LatticeLaw.mean_beyond`), is added to E[(Y - VaR)+]: VaR and CVaR are
    exact, the self-checks hold (the mean check counts mean_beyond), and a
    heavy tail (lognormal cv 20: its 1e-12 quantile is 1.5e6 severity means)
    no longer sets the lattice's length in a small pool (checked: the VaR
    found must lie below the cap)."""
    streams = sorted(((part, i, s) for part in model.components for i, s in enumerate(part.streams)),
                     key=lambda item: item[2].rate)     # stable: ties keep the model's order
    budget, rare, left_out = RARE_SHARE * (1.0 - level), set(), 0.0
    for part, i, stream in streams:
        if left_out + stream.rate > budget:
            break
        left_out += stream.rate
        rare.add((id(part), i))
    rest = [CompoundModel(tuple(s for i, s in enumerate(part.streams) if (id(part), i) not in rare), part.shock_cv)
            for part in model.components]
    mean = math.fsum(part.mean for part in rest)
    variance = math.fsum(part.variance for part in rest)
    reach = level + left_out
    return mean + math.sqrt(variance * reach / (1.0 - reach))


def _var_upper_bound(model: CompoundModel, level: float) -> float | None:
    """x = RESOLUTION_TOLERANCE x VAR_SCALE_FLOOR x E[Y] when VaR_level(Y) <= x
    is proved in closed form, else None. Y > x needs two or more claims or one
    claim above x, so P(Y > x) <= P(N >= 2) + E[claims above x], with P(N >= 2)
    <= E[N (N - 1)] / 2 = ((sum lambda_u)^2 + sum theta_u^2 lambda_u^2) / 2 over
    the independent parts and E[claims above x] = sum lambda P(f X > x); when
    that is at most 1 - level, VaR <= x. VaR is then known to the floor's
    accuracy without a lattice: a near-zero quantile (E[N] = 1e-3 of gamma cv
    20 at level 0.9999: VaR ~ 2e-16 of a claim's mean, where the lattice's VaR
    is half a cell) that no lattice up to MAX_POINTS resolved to 1e-4 of E[Y]."""
    floor = RESOLUTION_TOLERANCE * VAR_SCALE_FLOOR * model.mean
    if not floor > 0.0:
        return None
    parts = model.components
    counts = [part.expected_count for part in parts]
    two_or_more = SECOND_CLAIM_MARGIN * (math.fsum(counts) ** 2 + math.fsum(
        (part.shock_cv * count) ** 2 for part, count in zip(parts, counts)))
    above = math.fsum(s.rate * float(s.severity.tails(np.array([floor / s.factor]))[0][0])
                      for part in parts for s in part.streams)
    return floor if two_or_more + above <= 1.0 - level else None


def _direct_aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The whole law on one lattice of span h (severity discretised at h), at h and
    2h, Richardson-extrapolated (module docstring; pooling.risk.lattice). When that lattice
    would start above CAPPED_FROM points, or when the whole law fails, claims
    above `claim_cap` (when it is below the largest claim's TAIL_PROBABILITY
    quantile) sit at the lattice's end instead, their mean beyond it carried
    aside (the first failure is raised if that fails too); if the VaR found is not
    below the cap (Cantelli's bound cannot fail: a guard), or the cap is above
    that quantile, the whole law is computed on a lattice fitted to MAX_POINTS
    (FITTED_POINTS)."""
    try:
        whole = _grid(model, POINTS_PER_WINDOW, PRICING_SHIFT_BUDGET, widen)[2] <= CAPPED_FROM
    except NumericsError:   # beyond the lattice limit
        whole = False
    failed = None
    if whole:
        try:
            return _direct_aggregate_capped(model, level, widen, None)
        except (NumericsError, _ChecksFailed) as exc:
            # A quantile inside a spike far narrower than the span the window
            # allows (claims of cv 0.01 beside a rare one 1e8 times larger):
            # the capped lattice is short enough to resolve it.
            failed = exc
    cap = claim_cap(model, level)
    if not cap > 0.0:
        # Every stream is rare (expected counts summing to at most RARE_SHARE (1 -
        # level)): VaR = 0, so any positive cap is above it; the smallest claim
        # scale keeps the lattice (kept for its self-checks) short.
        cap = min(s.factor * s.severity.expected_value for part in model.components for s in part.streams)
    if cap < _largest_claim_quantile(model):
        try:
            result = _direct_aggregate_capped(model, level, widen, cap, fit=True)
        except (NumericsError, _ChecksFailed):
            if failed is None:
                raise
            raise failed from None
        if result.var < cap:   # every claim on the lattice's last point lies above VaR
            return result
    if failed is not None:
        raise failed
    return _direct_aggregate_capped(model, level, widen, None, fit=True)


def _direct_aggregate_capped(model: CompoundModel, level: float, widen: float,
                             cap: float | None, fit: bool = False) -> AggregateResult:
    low, span, n = _grid(model, POINTS_PER_WINDOW, PRICING_SHIFT_BUDGET, widen, cap, fit)
    if no_claim_probability(model) >= level:
        # Y = 0 with probability >= level (a handful of enrollees): VaR = 0 and
        # CVaR = E[Y] / (1 - level) exactly (the R-U minimum is at t = 0). A
        # lattice cannot resolve a quantile sitting on the atom at 0.
        law = _lattice_law(model, low, span, n, cap)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return _result(law, level, 0.0, model.mean / (1.0 - level), model, 0.0, n)
    var_bound = _var_upper_bound(model, level)
    if var_bound is not None:
        # 0 <= VaR <= x = 1e-4 E[Y] (`_var_upper_bound`): VaR is taken as x and CVaR
        # as E[Y] / (1 - level), both upper bounds (a rate they give is never too
        # high) and both within 1e-4 of E[Y] (CVaR >= E[Y] / (1 - level) - x level / (1 - level)).
        law = _lattice_law(model, low, span, n, cap)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return _result(law, level, var_bound, model.mean / (1.0 - level), model,
                       RESOLUTION_TOLERANCE * VAR_SCALE_FLOOR, n)
    coarse_risk = _lattice_law(model, low, 2.0 * span, n // 2, cap).var_cvar(level)
    scales = (model.mean * VAR_SCALE_FLOOR, 0.0)
    while True:
        fine = _lattice_law(model, low, span, n, cap)
        fine_risk = fine.var_cvar(level)
        extrapolated = [f + (f - c) / 3.0 for f, c in zip(fine_risk, coarse_risk)]
        diff = max(abs(f - c) / 3.0 / max(abs(e), floor)
                   for f, c, e, floor in zip(fine_risk, coarse_risk, extrapolated, scales))
        if diff <= RESOLUTION_TOLERANCE:
            break
        span, n, coarse_risk = span / 2.0, n * 2, fine_risk
        if n > MAX_POINTS:
            raise NumericsError(f"aggregate did not converge to {RESOLUTION_TOLERANCE:g} within "
                                f"{MAX_POINTS} points at level {level:g} (error estimate {diff:.3g}); "
                                f"{describe_model(model)}")
    failures = law_check_failures(fine, model)
    if failures:
        raise _ChecksFailed("; ".join(failures))
    return _result(fine, level, extrapolated[0], extrapolated[1], model, diff, n)
