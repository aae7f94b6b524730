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

FIXED_POINT_TOLERANCE = 1e-5
"""Width (rate units) of the bracket [r, r + FIXED_POINT_TOLERANCE] the search
proves around the fixed point r* before it returns its solvent end r. The
claims engine prices a pool's risk to ~1e-4 relative (RESOLUTION_TOLERANCE),
which moves any max rate by ~5e-5 at a rate of 0.5: a bracket a fifth of that
adds little to what the pricing already carries, and a closer one (the 1e-9
of before took ~11 pricings a pool, 5x a solve) buys digits the prices do not
have. The max rate's rounding noise (a few 1e-9) is far inside it."""

FIXED_POINT_MAX_EVALUATIONS = 60
"""Pricings a search may take: the model step takes 2-4, and bisection of the
bracket, its safeguard, needs at most ~17 from a bracket of width 1."""

SECANT_SPAN = 1e-4
"""Closest two rates whose secant sets the model's slope. Prices at nearby
multipliers may sit on different lattices (risk.scaled), which moves h by up
to the engine's accuracy (~1e-5 relative here): over 1e-4 that is a tenth of
the slope; over the last step of a search (~1e-6) it would be all of it."""

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


def solvent_fixed_point(rate_at: Callable[[float], float], cap: float, where: str, *,
                        elasticity: float = 0.0, start: float = 0.0) -> tuple[float, int]:
    """The fixed point r* = h(r*) of h = `rate_at` (non-increasing: the max
    rate with admissions frozen at those of rate r), at most `cap`, and the
    number of times h was called. Returns a rate r priced solvent (h(r) >= r)
    with r* in [r, r + FIXED_POINT_TOLERANCE], or `cap` when h(cap) >= cap.

    Each pricing brackets r*: h(r) >= r gives r <= r* <= h(r), h(r) < r gives
    h(r) <= r* < r (h non-increasing). The next rate comes from a model of h,
    log h linear in log(1 - r) (a pool's risk scales about as its admissions,
    ((1 - r) / (1 - r0))^e: slope -`elasticity` until two pricings give their
    secant), aimed where the model puts h(r) - r at half the tolerance, so
    that one pricing both lands solvent and closes the bracket; bisection of
    the bracket guards it. From a `start` near r* this takes 2-4 pricings.
    h(r) <= 0 means the budget is not positive (h = B / rho has its sign at
    any admissions): no rate above 0 is solvent and h(r) itself is returned
    (a pool below every rates.min). Every rate tried lies inside the bracket
    of those before, so the answer is always a rate priced solvent; that r* is
    within the tolerance above it rests on h being non-increasing (solvency
    monotone in r). NumericsError when the search does not close."""
    top = cap if cap < FULL_RATE else math.nextafter(FULL_RATE, 0.0)
    solvent: tuple[float, float] | None = None      # the highest rate priced solvent, with h there
    insolvent: tuple[float, float] | None = None    # the lowest rate priced insolvent, with h there
    tried: list[tuple[float, float]] = []
    widths: list[float] = []
    rate = min(max(start, 0.0), top)
    for calls in range(1, FIXED_POINT_MAX_EVALUATIONS + 1):
        h = rate_at(rate)
        if h <= 0.0:
            return h, calls
        tried.append((rate, h))
        if h >= rate:
            if solvent is None or rate > solvent[0]:
                solvent = (rate, h)
        elif insolvent is None or rate < insolvent[0]:
            insolvent = (rate, h)
        if solvent is not None and solvent[0] >= top:
            return top, calls
        lower = max(solvent[0] if solvent else -math.inf, insolvent[1] if insolvent else -math.inf)
        upper = min(insolvent[0] if insolvent else top, solvent[1] if solvent else top, top)
        if solvent is not None and upper - solvent[0] <= FIXED_POINT_TOLERANCE:
            return solvent[0], calls
        widths.append(upper - lower)
        rate = _next_rate(tried, solvent, insolvent, lower, upper, top, -elasticity, widths)
    raise NumericsError(f"{where}: the solvent rate with induced utilisation was not bracketed within "
                        f"{FIXED_POINT_TOLERANCE:g} in {FIXED_POINT_MAX_EVALUATIONS} pricings")


def _next_rate(tried, solvent, insolvent, lower: float, upper: float, top: float, slope: float,
               widths: list[float]) -> float:
    """The next rate to price (solvent_fixed_point): the cap when h reached it,
    else the model's fixed point less a third of the tolerance, kept inside
    the bracket; the bracket's midpoint when the model strays or the bracket
    stopped halving."""
    low_end = solvent[0] if solvent else lower
    h = tried[-1][1]
    if h >= top and not (insolvent is not None and insolvent[0] <= top):
        return top
    if (insolvent is not None and insolvent[0] - insolvent[1] <= FIXED_POINT_TOLERANCE
            and (solvent is None or insolvent[1] > solvent[0])):
        return insolvent[1]       # r* in [h(r), r], that narrow: h(r) is solvent and closes it
    if len(widths) >= 3 and widths[-1] > 0.5 * widths[-3]:
        return _midpoint(low_end, upper)
    model = _model_fixed_point([(r, h) for r, h in tried if h < top], slope)
    if model is None:
        return _midpoint(low_end, upper)
    guess, b = model
    # Aim where the model puts h(r) - r at half the tolerance: solvent, and closing.
    target = guess - 0.5 * FIXED_POINT_TOLERANCE / (1.0 + b * guess / (1.0 - guess))
    if solvent is not None and target <= solvent[0]:
        target = solvent[0] + 0.9 * FIXED_POINT_TOLERANCE        # r* just above a solvent rate: close above
    if insolvent is not None and target >= insolvent[0]:
        target = insolvent[0] - 0.9 * FIXED_POINT_TOLERANCE      # r* just below an insolvent one: close below
    target = max(target, lower)       # h(r) of an insolvent r is a solvent rate
    if not target < upper or any(target == r for r, _ in tried):
        return _midpoint(low_end, upper)
    return min(target, top)


def _midpoint(low: float, high: float) -> float:
    return 0.5 * (max(low, 0.0) + high) if high > 0.0 else 0.5 * (low + high)


def _model_fixed_point(tried, slope: float) -> tuple[float, float] | None:
    """The fixed point of log h(r) = log h_k + b (log(1 - r) - log(1 - r_k)),
    through the last rate priced whose h is below the cap (a capped h says
    nothing of the slope), b the secant slope to the latest rate
    priced at least SECANT_SPAN from it (else, or when that secant is not
    >= 0, `slope`), with b; None when h there is not a finite positive rate below 1."""
    if not tried:
        return None
    rate, h = tried[-1]
    if not (0.0 < h < FULL_RATE) or rate >= FULL_RATE:
        return None
    b = slope
    for r2, h2 in reversed(tried[:-1]):
        if abs(r2 - rate) >= SECANT_SPAN and 0.0 < h2 < FULL_RATE and r2 < FULL_RATE:
            secant = (math.log(h) - math.log(h2)) / (math.log1p(-rate) - math.log1p(-r2))
            if math.isfinite(secant) and secant >= 0.0:
                b = secant
            break
    constant = math.log(h) - b * math.log1p(-rate)

    def excess(r: float) -> float:          # increasing in r on (0, 1)
        return math.log(r) - b * math.log1p(-r) - constant

    low, high = 1e-12, math.nextafter(FULL_RATE, 0.0)
    if excess(low) >= 0.0:
        return low, b
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if excess(mid) >= 0.0:
            high = mid
        else:
            low = mid
    return low, b
