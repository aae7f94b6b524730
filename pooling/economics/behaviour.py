"""Induced utilisation (issue 25 item 1; docs/model.md, Induced utilisation).

Enrollees who pay less use more care: a county's admissions at reimbursement
rate r are its observed admissions scaled by

    m_c(r) = ((1 - r) / (1 - r0_c))^e,

e = parameters.utilisation_elasticity (<= 0, w.r.t. the out-of-pocket price
1 - r) and r0_c the rate admissions were observed at (the county's
`current_rate`, else parameters.observed_rate). With e = 0 every m_c is 1 and
nothing here is used: prices are those of an instance without behaviour, bit
for bit.

A pool's maximum solvent rate is then a fixed point: the largest r with
r rho(Y_P(r)) <= B_P, Y_P(r) the pool's claims with its members' admissions
scaled by m_c(r). `solvent_fixed_point` finds it from `rate_at`, the max
solvent rate of the pool with its multipliers frozen at a given rate
(economics.pools): h(r) is non-increasing for e <= 0, so h(r) - r has one
sign change and the fixed point is bracketed by [min(0, h(0)), max(0, h(0))].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pooling.errors import NumericsError

FIXED_POINT_TOLERANCE = 1e-9
"""Width (rate units) of the bracket left around the fixed point r* when the
root finder stops; the rate returned is the bracket's solvent end. Far below
the claims engine's ~1e-4 relative accuracy, so the fixed point adds no error
that the pricing does not already carry."""

FIXED_POINT_BACKOFF = 1e-6
"""How far (rate units) below the root finder's answer the search may step back
to a solvent rate. The max rate h(r) carries rounding noise: on Xinyang's
8-county pool with e = -0.41 the CVaR (2.66e9 CNY) moves by a few CNY, up or
down, between rates 2e-9 apart, so near r* the sign of h(r) - r flips at random
over a band a few 1e-9 wide, wider than FIXED_POINT_TOLERANCE. Steps doubling
from FIXED_POINT_TOLERANCE / 2 up to this leave the band; 1e-6 is still far
below the pricing's ~1e-4 relative accuracy."""

FULL_RATE = 1.0
"""At r = 1 the out-of-pocket price is 0 and a constant-elasticity response
is unbounded (m = infinity for e < 0): no pool with claims is solvent there,
so the search never prices r >= FULL_RATE."""


def behaviour_on(instance) -> bool:
    """Whether the instance has a behavioural response (e != 0)."""
    return instance.parameters.utilisation_elasticity != 0.0


def observed_rate(instance, county) -> float:
    """r0_c: the county's `current_rate` where present, else parameters.observed_rate."""
    return county.current_rate if county.current_rate is not None else instance.parameters.observed_rate


def multiplier(elasticity: float, r0: float, rate: float) -> float:
    """m(r) = ((1 - r) / (1 - r0))^e; infinite at r >= 1 when e < 0."""
    if elasticity == 0.0:
        return 1.0
    if rate >= FULL_RATE:
        return math.inf
    return ((1.0 - rate) / (1.0 - r0)) ** elasticity


def multipliers(instance, members, rate: float) -> dict[str, float] | None:
    """{county id: m_c(rate)} for the members; None without behaviour."""
    if not behaviour_on(instance):
        return None
    e = instance.parameters.utilisation_elasticity
    return {cid: multiplier(e, observed_rate(instance, instance.county(cid)), rate) for cid in sorted(members)}


def bound_multipliers(instance, spec) -> dict[str, float] | None:
    """Per county, a lower bound on m_c at any rate a usable pool can have
    (>= rates.min, m_c non-decreasing in r) that is also at most 1, so that
    expected costs scaled by it bound the costs at any pool's fixed point from
    below and stay below the observed ones (economics.group_economics, the
    column-generation bounds). None without behaviour."""
    if not behaviour_on(instance):
        return None
    e, low = instance.parameters.utilisation_elasticity, spec.rates.min
    return {c.id: min(1.0, multiplier(e, observed_rate(instance, c), low))
            for c in instance.counties + instance.context}


@dataclass(frozen=True)
class Behaviour:
    """What a pool priced with a behavioural response carries: the elasticity
    and, per member, (id, r0, observed admissions a year), so that the
    admission-weighted multiplier can be given at any rate of the pool."""

    elasticity: float
    members: tuple[tuple[str, float, float], ...]

    @classmethod
    def of(cls, instance, members) -> Behaviour:
        rows = []
        for cid in sorted(members):
            county = instance.county(cid)
            rows.append((cid, observed_rate(instance, county), county.enrollees * admissions_per_enrollee(
                instance, county)))
        return cls(instance.parameters.utilisation_elasticity, tuple(rows))

    def admission_multiplier(self, rate: float) -> float:
        """The members' m_c(rate), weighted by their observed admissions."""
        weights = math.fsum(a for _, _, a in self.members)
        if weights <= 0.0:
            return 1.0
        return math.fsum(a * multiplier(self.elasticity, r0, rate) for _, r0, a in self.members) / weights


def admissions_per_enrollee(instance, county) -> float:
    """Observed admissions per enrollee-year, residents and migrants (who are
    admitted at migrant_admission_factor times the residents' rate)."""
    h = instance.parameters.migrant_admission_factor
    return county.admission_rate * ((1.0 - county.migrant_share) + county.migrant_share * h)


def solvent_fixed_point(rate_at: Callable[[float], float], cap: float, where: str) -> tuple[float, int]:
    """The largest r <= cap with r <= rate_at(r) (module docstring), and the
    number of times `rate_at` was called. `rate_at` must be non-increasing;
    the result is solvent (r <= rate_at(r)) and within FIXED_POINT_TOLERANCE
    below the true fixed point. A pool not solvent at any rate >= 0 gets the
    fixed point below 0 (it is unusable whatever it is)."""
    calls = 0

    def gap(rate: float) -> float:
        nonlocal calls
        if rate >= FULL_RATE:
            return -math.inf
        calls += 1
        return rate_at(rate) - rate

    at_zero = gap(0.0)
    if at_zero >= 0.0:
        lo, hi = 0.0, min(cap, at_zero)   # h non-increasing: h(h(0)) <= h(0), so r* <= h(0)
    else:
        lo, hi = at_zero, 0.0             # r* < 0 <= ... and h(h(0)) >= h(0) for h(0) < 0
    g_lo = gap(lo) if lo != 0.0 else at_zero
    if g_lo < 0.0:
        raise NumericsError(f"{where}: the solvent rate with induced utilisation has no bracket: the pool's max "
                            f"rate does not fall as its rate rises (h({lo:.9g}) - {lo:.9g} = {g_lo:.3g})")
    if hi == lo:
        return lo, calls
    g_hi = gap(hi)
    if g_hi >= 0.0:
        return hi, calls                  # solvent at the cap (or at h(0))
    from scipy import optimize  # here, not at import: 0.2-0.5 s a solve without behaviour never needs

    guess = optimize.brentq(gap, lo, hi, xtol=FIXED_POINT_TOLERANCE / 4, rtol=4 * math.ulp(1.0))
    # brentq's answer lies within its tolerance of the sign change, on either
    # side, and h's rounding noise blurs the sign near r*: step down, doubling
    # the step, until solvent (the solvent end of the bracket).
    step = 0.0
    while step <= FIXED_POINT_BACKOFF:
        rate = max(lo, guess - step)
        if gap(rate) >= 0.0:
            return rate, calls
        step = FIXED_POINT_TOLERANCE / 2 if step == 0.0 else 2.0 * step
    raise NumericsError(f"{where}: the solvent rate with induced utilisation was not found within "
                        f"{FIXED_POINT_BACKOFF:g} of {guess:.9g} (the pool's max rate is not monotone in its "
                        f"rate there)")
