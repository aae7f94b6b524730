"""The window [L, U] on which an aggregate law is computed.

The law is computed on a lattice window ``[L, U]`` chosen so that the mass
outside it is below ~1e-12: Theta's 1e-12 quantiles, a 15-sigma band of the
conditional compound Poisson law around them, and the severity's 1e-12
quantile for small pools. FFT aliasing is circular, so a window that does not
start at 0 costs nothing: the result is unrolled. A model's parts have their
windows combined (`_window`); a lattice whose claims are capped (`claim_cap`,
pooling.risk.direct) has Bennett's bound for claims at most the cap as its
top (`_bounded_claims_high`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from pooling.risk.compound import CompoundModel, shock_shape

TAIL_PROBABILITY = 1e-12
"""Mass allowed outside the window, per source (Theta, count, severity)."""
RARE_REACH_PROBABILITY = 1e-3
"""The shallowest upper quantile a claim stream's reach is taken at
(`_claim_reach`): a stream rare enough to need less (fewer than 1e-9 expected
claims, and under 1e-9 of its part's claims) still reaches its 1 - 1e-3
quantile, so that the mass the severity lattice moves beyond its top to the
conditional mean there lands within a few reaches (2.7 reaches for a lognormal
of cv 20, 1.7 for a Pareto tail of index 2.5), not a severity mean 1e8 times
the window away."""
CONDITIONAL_SIGMAS = 15.0
"""Half-width of the window around the conditional mean, in conditional sds;
the compound Poisson tail beyond 15 sd is far below TAIL_PROBABILITY for the
moderately skewed severities in scope (lognormal/gamma with cv <= 3)."""


@lru_cache(maxsize=1024)
def _shock_quantiles(shape: float) -> tuple[float, float]:
    """Theta's TAIL_PROBABILITY lower and upper quantiles (Gamma, mean 1, shape
    1/theta^2), from the same scipy.special inverses scipy.stats.gamma's
    ppf/isf call, without their per-call overhead (~1 ms a pool); a pure memo."""
    return (float(special.gammaincinv(shape, TAIL_PROBABILITY)) * (1.0 / shape),
            float(special.gammainccinv(shape, TAIL_PROBABILITY)) * (1.0 / shape))


def _claim_reach(stream, part_count: float) -> float:
    """The claim size a window and a severity lattice reach for one stream of a
    part whose expected count is `part_count`: its upper quantile at
    TAIL_PROBABILITY / s, s = max(rate, rate / part_count) when that is below 1
    (else at TAIL_PROBABILITY, as for every stream of rate >= 1 or alone in its
    part), never shallower than RARE_REACH_PROBABILITY. Expected claims beyond
    it, rate x S(reach), stay below TAIL_PROBABILITY (the window's promise), and
    its share of the part's claims beyond it, (rate / part_count) x S(reach),
    too (the severity lattice's). A rare stream's 1e-12 quantile instead let
    1e-22 expected admissions of a lognormal of cv 20 stretch a 5e6-admission
    pool's window 20-fold, over cells where the FFT's ~1e-15 round-off alone
    moved the law's variance by 2e-4 (> VARIANCE_TOLERANCE: NumericsError)."""
    share = max(stream.rate, stream.rate / part_count)
    probability = TAIL_PROBABILITY if share >= 1.0 else min(RARE_REACH_PROBABILITY, TAIL_PROBABILITY / share)
    return stream.factor * stream.severity.upper_quantile(probability)


def _reach(streams) -> float:
    """The largest `_claim_reach` of the streams of one part."""
    count = math.fsum(s.rate for s in streams)
    return max(_claim_reach(s, count) for s in streams)


def _part_window(model: CompoundModel) -> tuple[float, float, float]:
    """(L, U - sev_hi, sev_hi) of one part (parts == ()): Theta's quantiles,
    the conditional band around them, and its largest claim's reach; L is
    not clipped at 0 (a clipped one is no deviation that `_window` can combine)."""
    shape = shock_shape(model)
    lo_mult, hi_mult = _shock_quantiles(shape) if shape is not None else (1.0, 1.0)
    mean, second = model.mean, math.fsum(s.second_moment_sum for s in model.streams)
    low = lo_mult * mean - CONDITIONAL_SIGMAS * math.sqrt(lo_mult * second)
    sev_hi = _reach(model.streams)
    return low, hi_mult * mean + CONDITIONAL_SIGMAS * math.sqrt(hi_mult * second), sev_hi


def _window(model: CompoundModel, widen: float = 1.0, claim_bound: float | None = None,
            span: float = 0.0) -> tuple[float, float]:
    """[L, U] holding all but ~TAIL_PROBABILITY of Y's mass; with `widen` > 1
    each side moves out by (widen - 1) / 2 widths (L stays >= 0). With
    `claim_bound` (capped lattices of cells `span`, `claim_cap`: no claim on
    them exceeds it) U is `_bounded_claims_high` instead.

    With parts, each part's deviations from its mean at its window's ends, d_u,
    are combined as for a sum of independent sub-gamma variables (Bernstein):
    a sum's variance factor is the sum of its parts', so its Gaussian-like term
    is sqrt(sum d_u^2), while the scale term is the largest part's, not their
    sum: for Theta_u mean_u (Gamma: scale theta_u^2 mean_u) it is theta_u^2
    mean_u log(1 / TAIL_PROBABILITY) above the mean and none below: the lower
    tails of a Gamma and of a compound Poisson sum with positive claims are
    sub-Gaussian, with variance factor about Var Y_u, so the lower deviation is
    also at least sqrt(2 log(1 / TAIL_PROBABILITY) Var Y) (a part whose shock
    cv is near 1 has d_u ~ mean_u, below its sub-Gaussian term: taking
    sqrt(sum d_u^2) alone left 3% of such a pool's mass below its window). The
    parts' lower ends are taken before clipping at 0 (a 46-admission pool had
    2.6e-4 of its mass below a window built from clipped ones). The largest
    claim's quantile is added once, as for one part. Each side is at most the
    sum of the parts' deviations (a union bound). A pool of many county parts
    thus gets a window near its own spread, not the sum of its parts' windows
    (36 parts, 1e6 admissions: 17.6 sd of Y wide, against 43 for the sum and
    15 for one part with the same streams; band cells scale with the width).
    The self-checks catch a window too narrow. Measured on 40 random pools of 1
    to 1e6 admissions, 2 to 6 parts, shock cvs up to 1 and Pareto tails: at
    most 3e-12 of the mass below the window, and above it no more than the sum
    of the parts' windows leaves (up to 8e-9 with Pareto tails of index ~2.3,
    where N claims exceed one claim's quantile with probability ~N * 1e-12)."""
    components = model.components
    if len(components) == 1:
        low, high, sev_hi = _part_window(components[0])
        low = max(0.0, low)
        high += sev_hi
    else:
        bounds = [(part, *_part_window(part)) for part in components]
        below = [part.mean - lo for part, lo, _, _ in bounds]
        above = [hi - part.mean for part, _, hi, _ in bounds]
        scale = max(part.shock_cv ** 2 * part.mean * -math.log(TAIL_PROBABILITY) for part in components)
        mean = model.mean
        gaussian = math.sqrt(max(math.fsum(d * d for d in below),
                                 -2.0 * math.log(TAIL_PROBABILITY) * model.variance))
        low = max(0.0, mean - min(math.fsum(below), gaussian))
        high = (mean + min(math.fsum(above), math.sqrt(math.fsum(d * d for d in above)) + scale)
                + max(sev for _, _, _, sev in bounds))
    if claim_bound is not None:
        # At least one claim's bound wide: the severity lattice reaches the
        # bound, and one much longer than the window (a spread of 1e-5 beside a
        # bound of 1) took tens of GB.
        high = max(_bounded_claims_high(model, claim_bound, span), low + claim_bound)
    if widen > 1.0:
        extra = 0.5 * (widen - 1.0) * (high - low)
        low, high = max(0.0, low - extra), high + extra
    return low, high


def _largest_claim_quantile(model: CompoundModel) -> float:
    """The largest reach of one claim (`_claim_reach`: its TAIL_PROBABILITY
    quantile for a stream of rate >= 1), over every stream of every part."""
    return max(_reach(part.streams) for part in model.components)


def _bounded_moments(model: CompoundModel, bound: float, span: float) -> tuple[float, float]:
    """Upper bounds on the mean and variance of Y on lattices of cells `span`
    whose claims are at most `bound`: E[min(fX, b)] per claim (its mean on the
    lattice is E[min(fX, e)], e <= b), E[min(fX, b)^2] + span^2 / 4 per claim
    (moment matching adds at most h^2 / 4), and the shocks' theta^2 mean^2."""
    mean, variance = [], []
    for part in model.components:
        part_mean = math.fsum(s.rate * s.factor * float(s.severity.limited_mean(np.array([bound / s.factor]))[0])
                              for s in part.streams)
        second = math.fsum(s.rate * (s.factor ** 2 * s.severity.limited_second_moment(bound / s.factor)
                                     + 0.25 * span * span) for s in part.streams)
        mean.append(part_mean)
        variance.append(second + (part.shock_cv * part_mean) ** 2)
    return math.fsum(mean), math.fsum(variance)


def _bounded_claims_high(model: CompoundModel, bound: float, span: float) -> float:
    """U for lattices of cells `span` whose claims are at most `bound`: for each
    part, Theta at its upper TAIL_PROBABILITY quantile and Bennett's inequality
    for a compound Poisson sum with jumps <= b and variance s^2: P(Y - E[Y] >= t)
    <= exp(-(s^2 / b^2) h(t b / s^2)), h(u) = (1 + u) log(1 + u) - u, solved for
    the bound TAIL_PROBABILITY. s^2 = Theta E[N] E[X_d^2], and a lattice claim's
    E[X_d^2] is at most E[min(fX, b)^2] + span^2 / 4 (moment matching adds at
    most h^2 / 4; the uncapped E[X^2] of a rare heavy claim widened a window
    8-fold), and the centre Theta E[N] E[min(fX, b)] (a rare claim of 1e8 beside
    claims of 1e-9 had put the centre 1e10 times the lattice's claims away).
    The parts' deviations are added (a union bound)."""
    target = -math.log(TAIL_PROBABILITY)
    high = []
    for part in model.components:
        shape = shock_shape(part)
        hi_mult = _shock_quantiles(shape)[1] if shape is not None else 1.0
        second = math.fsum(s.rate * (s.factor ** 2 * s.severity.limited_second_moment(bound / s.factor)
                                     + 0.25 * span * span) for s in part.streams)
        part_mean = math.fsum(s.rate * s.factor * float(s.severity.limited_mean(np.array([bound / s.factor]))[0])
                              for s in part.streams)   # at least the capped lattice's mean
        high.append(hi_mult * part_mean + _bennett_deviation(hi_mult * second, bound, target))
    return math.fsum(high)


def _bennett_deviation(variance: float, bound: float, target: float) -> float:
    """t with (v / b^2) h(t b / v) = target (Bennett), by bisection on u = t b / v."""
    if not variance > 0.0:
        return bound
    need = target * bound * bound / variance
    def h(u):
        return (1.0 + u) * math.log1p(u) - u
    lo, hi = 0.0, 1.0
    while h(hi) < need:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if h(mid) < need else (lo, mid)
    return hi * variance / bound
