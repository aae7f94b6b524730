"""Aggregate claim distributions: compound mixed-Poisson sums, computed exactly by FFT.

A pool's eligible cost Y is a sum of independent compound Poisson parts (one
per claim stream: residents at home, migrants in and out of network), all
scaled by one systemic multiplier Theta ~ Gamma(mean 1, cv theta). Poisson
superposition makes Y | Theta one compound Poisson sum with a mixture
severity; mixing over Theta turns the count negative binomial (DESIGN §A pool).

Parts (shocks at several levels). With national, prefecture and county shocks
a county's rates are scaled by w_N Theta_N + w_P Theta_P + w_C Theta_C, and
Poisson splitting makes Y a sum of independent mixed compound Poisson parts,
each with its own streams and its own Gamma(1, theta_u) multiplier (theta_u
= 0: Poisson). `CompoundModel.parts` holds them beside the main part (the
model's own streams and shock_cv, Theta_N); a part has no parts of its own.
Y's transform is the product of the parts' transforms exp(lambda_u (phi_u -
1)) or exp(-k_u log1p(-(lambda_u / k_u)(phi_u - 1))), k_u = 1/theta_u^2, phi_u
the transform of part u's own mixture severity, so both engines sum the
parts' exponents; E[Y], Var Y (sum lambda_u E[(fX)^2] + theta_u^2 mean_u^2),
the discretised variance of the self-checks and P(N = 0) (a product) are summed
or multiplied over the parts, and the window combines the parts' (`_window`).
The band engine transforms each distinct (severity, factor) component once
per output lattice and mixes those linearly into each part's phi_u; the direct
lattice discretises each component once and mixes the lattices. Conditioning
on the main shock (`given_shock`, the samplers, the ruin measure) keeps the
other parts whole, so the conditional laws stay exact. A model without parts
runs exactly the code and arithmetic it ran before parts existed (same bits).

Method (DESIGN §Exact aggregate distributions):
1. Window. The law is computed on a lattice window ``[L, U]`` chosen so that
   the mass outside it is below ~1e-12: Theta's 1e-12 quantiles, a 15-sigma
   band of the conditional compound Poisson law around them, and the
   severity's 1e-12 quantile for small pools. FFT aliasing is circular, so a
   window that does not start at 0 costs nothing: the result is unrolled.
2. Span. Mean-preserving (local moment matching) discretisation keeps every
   claim's mean exact and adds at most h^2/4 to its variance, so h can grow
   with the pool: resolution is needed across the aggregate's spread, not
   inside one admission. h is the smaller of width / POINTS_PER_WINDOW and
   the span whose added variance shifts upper quantiles by at most a budget
   share of the mean (PRICING_SHIFT_BUDGET for VaR/CVaR, which are then
   extrapolated; SAMPLING_SHIFT_BUDGET for whole laws used by samplers).
3. FFT of the folded severity lattice, the count's PGF applied pointwise.
4. Error control: VaR and CVaR are computed at spans h and 2h. The leading
   discretisation error is O(h^2) (added variance), so Richardson
   extrapolation R = R_h + (R_h - R_2h) / 3 removes it, and |R_h - R_2h| / 3
   estimates what is left; h is halved while that estimate exceeds
   RESOLUTION_TOLERANCE. Measured against exact compound sums this keeps
   errors below 2e-4 from 10^2 to 10^6 admissions (benchmarks/bench_claims.py).
The mean of the result is checked against its closed form, and its variance
against the closed form of the discretised model, lambda E[X_d^2] + theta^2
E[Y]^2 (mean-preserving discretisation changes only E[X^2]), which isolates
FFT, window and aliasing errors; the variance the discretisation adds is
reported beside it.
5. Self-checks are enforced (`check_law`): a lattice whose total mass, mean or
   variance misses its closed form by more than MASS_TOLERANCE,
   MEAN_TOLERANCE or VARIANCE_TOLERANCE is recomputed once on a window
   widened by WIDER_WINDOW (the usual cause is mass wrapped around by a
   window too narrow for a heavy tail); if that fails too, NumericsError
   names the drivers. A law failing its checks never reaches a price.

Band engine (issue 12: pricing throughput). Steps 1-4 put the whole law on one
lattice whose span h also discretises the severity, so h must stay near a
severity mean while the window spans Theta's 1e-12 range (+-20% of E[Y] at
theta 0.03): 2^16-2^17 points and three FFT laws a pool (25-100 ms). But Y's
transform is negligible beyond a few / sd(Y), so pools with E[N] >~ 37 are
priced by `_band_aggregate` instead:
a. The mixture severity is a quadrature on its own fine grid (step delta =
   smallest stream scale / 16, geometric beyond 32 scales), moment-matched at
   delta and 2 delta and Richardson-combined (removes the O(delta^2) variance).
   Each stream's tails on that grid are a pure memo per set of streams.
b. Y's law is wanted only as cell masses on an output lattice of span H ~
   sd(Y) / 32 (n ~ 512-2048 cells over the window). The severity's transform at
   the n/2 + 1 lattice frequencies comes from its quadrature by splitting each
   point into its nearest cell and a Taylor series of the within-cell phase
   (one batched rfft of length n); the count's PGF is applied there; the cell
   transform sinc(w H / 2) makes the inverse rfft the exact mass of each cell,
   provided the transform vanishes beyond the band (checked: BAND_TOLERANCE).
c. VaR/CVaR from the cells at H and 2H (pairs of cells, no second FFT),
   Richardson-extrapolated with the same RESOLUTION_TOLERANCE control; H is
   halved while it is not met. The self-checks are those of step 5 (with
   Sheppard's H^2 / 12 in the closed-form variance). A pool the band engine
   cannot price within BAND_MAX_POINTS cells, or whose law fails a check, is
   priced by the direct lattice (which may still raise NumericsError).
Against a converged lattice its prices are within ~1e-5; against the old
engine (frozen in benchmarks/reference_engine.py) within 1e-4 except where the
old one is itself off (tests/test_pricing_accuracy.py, benchmarks/bench_pricing.py).

The negative-binomial transform exp(-k log(1 - lambda theta^2 (phi - 1))),
k = 1/theta^2, needs a complex log1p accurate for tiny arguments (`_log1p`):
numpy's complex log1p computes log(1 + z) and loses every digit of a tiny z,
which made a shock cv of 1e-8 price a pool at a fiftieth of its rate. When
theta^2 E[N] is below NEGLIGIBLE_SHOCK the count is Poisson to double
precision and is computed as such (the theta -> 0 limit).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from scipy import special

from pooling.errors import NumericsError
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.severity import Severity

TAIL_PROBABILITY = 1e-12
"""Mass allowed outside the window, per source (Theta, count, severity)."""
CONDITIONAL_SIGMAS = 15.0
"""Half-width of the window around the conditional mean, in conditional sds;
the compound Poisson tail beyond 15 sd is far below TAIL_PROBABILITY for the
moderately skewed severities in scope (lognormal/gamma with cv <= 3)."""
POINTS_PER_WINDOW = 2 ** 15
"""Lattice points across the window at the coarse resolution."""
PRICING_SHIFT_BUDGET = 1e-3
"""Discretisation adds at most E[N] h^2 / 4 to Var Y, which moves a quantile
z sigma above the mean by about z sigma * E[N] h^2 / (8 Var Y). The span is
chosen so that this shift, at z = SHIFT_SIGMAS, is at most this share of E[Y];
for pricing, Richardson extrapolation then removes most of it."""
SAMPLING_SHIFT_BUDGET = 1e-4
"""The same budget for whole laws (samplers), which are not extrapolated."""
SHIFT_SIGMAS = 4.0
RESOLUTION_TOLERANCE = 1e-4
"""Accepted error estimate |R_h - R_2h| / (3 R) of the extrapolated VaR/CVaR:
10x tighter than the 1e-3 accuracy promised for pool pricing (the estimate
was within a factor 2 of the true error in the reference comparisons)."""
VAR_SCALE_FLOOR = 1.0
"""The direct lattice's VaR error is measured against max(VaR, this x E[Y]), not
VaR alone: a VaR far below the mean (a gamma cv 20 pool of 0.1 admissions: most
claims are ~1e-30 of their mean, so the 0.99 quantile is a near-zero point no
lattice resolves, and no span met a relative tolerance: NumericsError) is then
known to 1e-4 of E[Y]. A rate B / VaR that small a VaR gives is beyond any
rates.max unless B is within 1e-4 E[Y] of 0. CVaR >= E[Y] is unaffected."""
MAX_POINTS = 2 ** 23
"""Largest FFT (64 MiB of float64 per array); beyond it the computation stops."""
NEGLIGIBLE_SHOCK = 1e-16
"""The negative-binomial count transform is the Poisson one exp(w), w = E[N]
(phi - 1), times exp(theta^2 w^2 / 2 + O(theta^4 w^3)). Where exp(w) is not
negligible |w|^2 is at most ~100 E[N] (|w| <= 2 E[N] when E[N] < 1), so the
factor differs from 1 by at most ~50 theta^2 E[N]: below 1e-16 that is
rounding, and the Poisson limit (theta -> 0) is used. It also keeps 1/theta^2
from overflowing for theta below 1e-154."""
MASS_TOLERANCE = 1e-7
"""|total lattice mass - 1| allowed. The transform has mass exactly 1; clamping
its round-off to 0 adds a little, which grows with E[N] (phi's 1e-16 errors are
multiplied by E[N]): 7e-9 at 1.6e8 admissions, ~1e-13 for ordinary pools.
A miss of 1e-7 moves a 0.9999 quantile's tail mass by 0.1%; more means the
transform is wrong."""
MEAN_TOLERANCE = 1e-6
"""|lattice mean - E[Y]| / E[Y] allowed. Mean-preserving discretisation keeps
E[Y] exactly, so only mass beyond the window (< 1e-12) and round-off remain
(measured below 1e-9 over the validated input ranges). 1e-6 is a thousandth
of the 1e-3 promised for VaR/CVaR: a law passing it cannot move a price
visibly, a law failing it is wrong."""
VARIANCE_TOLERANCE = 1e-4
"""|lattice variance - closed form of the discretised model| / that, allowed.
It isolates FFT, window and aliasing errors (measured ~1e-9 normally). A
relative variance error e moves a quantile z sd above the mean by z sd e / 2,
well under e of the quantile: 1e-4 keeps the 1e-3 pricing promise 10x over."""
ATOM_SPLIT = 0.5
"""When P(N = 0) is at least this (E[N] below ~0.7), the atom at 0 is taken out
of the transform and added back after the FFT: otherwise its FFT round-off
(~1e-16 per point) swamps the claims' mass (~E[N] per point's share) and
clamping it to 0 biases the mean (2.6e-4 at E[N] = 2e-8). Above 0.5 the
negative-binomial form keeps |1 + z| >= 0.06 for theta <= 2 (see _log1p)."""
CAPPED_FROM = 2 ** 20
"""A direct lattice that would start with more points than this (a small pool
with a heavy tail: lognormal cv 10-20 reaches 1.5e6 severity means at its
1e-12 quantile) is computed with claims above `claim_cap` lumped, which leaves
VaR and CVaR exact and the lattice short (cv 20, one admission: 2^16 points
instead of over MAX_POINTS). Below it the law is kept whole (its far tail too),
as every pool that priced before prices bit for bit as before."""
FITTED_POINTS = 2 ** 21
"""Where the span budget (PRICING_SHIFT_BUDGET) asks for more than MAX_POINTS
across the window (a shock cv near 2 puts Theta's 1e-12 quantile at ~110
times its mean, and a pool of 1e9 admissions then wants 2^26 points: the
budget is relative to E[Y], the window to Theta's range), the capped direct
lattice starts at this many points instead and refines up to MAX_POINTS while
the Richardson estimate exceeds RESOLUTION_TOLERANCE: that estimate, not the
budget, is what the accuracy rests on."""
PRECISE_PHI_FROM = 1e6
"""Expected admissions from which a part's phi - 1 is refined at low
frequencies (`_precise_phi_minus_one`): below it the FFT's ~1e-15 error in phi
times E[N] is under 1e-9 of the exponent, far below every self-check, and
pools price bit for bit as before."""
PRECISE_PHI_BELOW = 1e-3
"""|phi - 1| below which it is summed directly: there the subtraction has lost
at least three of its digits."""
PRECISE_PHI_WORK = 2 * 10 ** 8
"""Most frequency x cell terms the direct sums may take (a few seconds); above
it phi - 1 is left as subtracted and the self-checks decide."""
RARE_SHARE = 0.01
"""Streams whose expected counts sum to at most this share of 1 - level are
left out of the variance in `claim_cap`'s bound (at a level raised by their sum)."""
WIDER_WINDOW = 4.0
"""On a failed self-check the window is widened by this factor (each side
moved out by 1.5 widths, L kept >= 0) and the law recomputed once."""

# -- band engine (issue 12: pricing throughput) --------------------------------
SEVERITY_POINTS_PER_SCALE = 16
"""The severity quadrature's uniform step delta is at most the smallest stream
scale f E[X] / 16 (rounded down to a power of two, so pools with the same
streams share it and its memo). Local moment matching adds about delta^2 / 6 to
E[X^2] (1/(12 * 256) = 3e-4 of it for cv 1); the Richardson combination of the
steps delta and 2 delta cancels that term, leaving ~1e-8 (checked per pool
against SEVERITY_VARIANCE_SHARE)."""
GEOMETRIC_FROM = 32.0
"""Beyond GEOMETRIC_FROM x the largest stream scale the quadrature's points are
spaced geometrically (ratio 1 + 1 / GEOMETRIC_POINTS): the density there is a
smooth tail (lognormal, gamma or Pareto), and a uniform step would need up to
10^6 points to reach a Pareto tail's 1e-12 quantile."""
GEOMETRIC_POINTS = 64
"""Points per e-fold of x in the geometric part: the relative step 1/64 adds
x^2 / (6 * 64^2) = 4e-5 x^2 to a claim's second moment there, on the ~0.2% of
E[X^2] beyond 32 scales (lognormal cv 1), before the Richardson combination."""
SEVERITY_VARIANCE_SHARE = 1e-3
"""Largest variance the step-delta moment matching alone adds, lambda (E_delta[X^2]
- E_q[X^2]), as a share of Var Y (the budget PRICING_SHIFT_BUDGET gives the direct
lattice): the Richardson combination cancels that O(delta^2) term, and what it
leaves is of the order of its square. Measured ~1e-5 (cv 1 lognormals, delta =
scale / 16); above the budget, the direct lattice is used."""
TAYLOR_DEGREE = 16
"""Each quadrature point x = k H + u (|u| <= H/2, k its output cell) enters the
transform at w = 2 pi j / (n H) as exp(-i w k H) exp(-i w u); the second factor
is a Taylor polynomial of this degree in w u, |w u| <= pi / 2: truncation error
(pi/2)^17 / 17! = 6e-12 at the band edge, where the transform is below
BAND_TOLERANCE anyway, and below 1e-16 where it matters (|w u| < 0.3)."""
BAND_POINTS_PER_SD = 32
"""Output cells per standard deviation of Y at the first attempt. The cells'
masses are exact; VaR/CVaR read from them by the piecewise-linear CDF have an
O(H^2) error that the H / 2H Richardson step removes (estimate ~1e-7 at 32)."""
BAND_TOLERANCE = 1e-15
"""Largest |transform of Y| allowed over the upper half of the band
(pi / (2H) <= w <= pi / H): the cell masses are exact when the transform
vanishes beyond the band, and what lies beyond is bounded by its decay there."""
BAND_MAX_ATOM = 1e-16
"""The band engine needs P(N = 0) (an atom, whose transform is flat) below this:
E[N] above ~37 admissions. Smaller pools use the direct lattice (`_direct_aggregate`)."""
MAX_QUADRATURE_POINTS = 2 ** 18
"""Largest uniform part of the severity quadrature the band engine builds: its
step follows the smallest stream scale and it runs to 32 times the largest, so
streams whose scales differ by 10^4 or more (a severity mean of 1 CNY beside
4,000, or a splice point of 1e10) would need millions of points and take longer
than the direct lattice; such pools use the direct lattice."""
BAND_MAX_POINTS = 2 ** 16
"""Beyond this many output cells (a law too rough for its spread, e.g. a shock
cv near 2 whose Gamma density is singular at 0) the direct lattice is used."""


@dataclass(frozen=True)
class ClaimStream:
    """One Poisson stream of admissions: expected count (at Theta = 1),
    severity of one admission and the share of it that counts as eligible cost
    (1 in network, phi out of network)."""

    rate: float
    severity: Severity
    factor: float = 1.0

    @cached_property
    def mean(self) -> float:
        # cached: a county's streams are reused for every pool it is in (economics.care)
        return self.rate * self.factor * self.severity.expected_value

    @property
    def second_moment_sum(self) -> float:
        return self.rate * self.factor ** 2 * self.severity.second_moment


@dataclass(frozen=True)
class CompoundModel:
    """Y = sum of claim streams, all rates scaled by one Theta ~ Gamma(1, shock_cv),
    plus independent extra `parts` (module docstring, "Parts"): each part is
    its own streams scaled by its own independent Gamma(1, part.shock_cv)
    multiplier (0: plain Poisson) and has no parts of its own."""

    streams: tuple[ClaimStream, ...]
    shock_cv: float = 0.0
    parts: tuple[CompoundModel, ...] = ()

    def __post_init__(self):
        if not isinstance(self.parts, tuple):
            object.__setattr__(self, "parts", tuple(self.parts))
        for part in self.parts:
            if not isinstance(part, CompoundModel):
                raise TypeError(f"a part must be a CompoundModel, got {type(part).__name__}")
            if part.parts:
                raise ValueError("an extra part of a CompoundModel cannot have parts of its own")

    @cached_property
    def components(self) -> tuple[CompoundModel, ...]:
        """The independent parts the engines sum, each with parts == (): (self,)
        for a model without parts. Otherwise the main part (streams, shock_cv)
        and the extra parts that have streams, with those whose count is Poisson
        (shock_shape None: no shock, or a negligible one) merged into one
        Poisson part at the end: a sum of independent Poisson parts is one
        (superposition), so parts whose shocks are all 0 price exactly as the
        merged model, and each merged part saves a transform."""
        if not self.parts:
            return (self,)
        parts = ((CompoundModel(self.streams, self.shock_cv),) if self.streams else ()) + tuple(
            p for p in self.parts if p.streams)
        mixed = tuple(p for p in parts if shock_shape(p) is not None)
        poisson = merge_streams(s for p in parts if shock_shape(p) is None for s in p.streams)
        return mixed + ((CompoundModel(poisson, 0.0),) if poisson else ())

    def _all_streams(self):
        yield from self.streams
        for part in self.parts:
            yield from part.streams

    # Cached (the model is immutable): the engines ask a model with many parts
    # for its parts' moments hundreds of times a pricing.
    @cached_property
    def expected_count(self) -> float:
        return math.fsum(s.rate for s in self._all_streams())

    @cached_property
    def mean(self) -> float:
        return math.fsum(s.mean for s in self._all_streams())

    @cached_property
    def variance(self) -> float:
        """Var Y = E[Var(Y|Theta)] + Var(E[Y|Theta]) = sum lambda E[(fX)^2] + theta^2 mean^2,
        summed over the independent parts (theta_u^2 mean_u^2 for each)."""
        if not self.parts:
            return math.fsum(s.second_moment_sum for s in self.streams) + (self.shock_cv * self.mean) ** 2
        main_mean = math.fsum(s.mean for s in self.streams)
        return math.fsum([*(s.second_moment_sum for s in self._all_streams()), (self.shock_cv * main_mean) ** 2,
                          *((p.shock_cv * p.mean) ** 2 for p in self.parts)])

    def given_shock(self, theta_value: float) -> CompoundModel:
        """The law of Y given the main part's Theta = theta_value: the main
        streams' rates scaled by it (compound Poisson), the extra parts kept as
        they are (independent of Theta, so the conditional law stays exact)."""
        return CompoundModel(tuple(dataclasses.replace(s, rate=s.rate * theta_value) for s in self.streams),
                             0.0, parts=self.parts)


def merge_streams(streams) -> tuple[ClaimStream, ...]:
    """Add the rates of streams with the same severity and factor (in stream
    order); drop zero-cost ones. A pool's hundreds of streams share a few
    severity objects, so each (severity object, factor) is matched to its
    (severity, factor) total once: comparing Severity values is the costly part."""
    totals: dict[tuple[Severity, float], int] = {}     # key -> index into keys/rates
    seen: dict[tuple[int, float], int] = {}             # (id(severity), factor) -> the same index
    held = []                                           # keeps those severities alive (ids stay theirs)
    keys: list[tuple[Severity, float]] = []
    rates: list[float] = []
    for s in streams:
        if s.rate <= 0.0 or s.factor <= 0.0:
            continue
        ident = (id(s.severity), s.factor)
        i = seen.get(ident)
        if i is None:
            key = (s.severity, s.factor)
            i = totals.get(key)
            if i is None:
                i = totals[key] = len(keys)
                keys.append(key)
                rates.append(0.0)
            seen[ident] = i
            held.append(s.severity)
        rates[i] += s.rate
    ordered = sorted(range(len(keys)), key=lambda i: (keys[i][0].sort_key, keys[i][1]))
    return tuple(ClaimStream(rate=rates[i], severity=keys[i][0], factor=keys[i][1]) for i in ordered)


@dataclass(frozen=True)
class LatticeLaw:
    """A distribution with mass pmf[i] at start + span * i (pmf read-only: the
    engines set it so, and its mean and variance are cached, the self-checks and
    the result both reading them)."""

    start: float
    span: float
    pmf: np.ndarray = field(repr=False)
    discretised_variance: float | None = None  # closed-form Var of the discretised model
    mean_beyond: float = 0.0   # E[Y] off the lattice: capped claims' mean beyond its last point (claim_cap)

    @cached_property
    def mean(self) -> float:
        return self.start * float(self.pmf.sum()) + self.span * float(self.pmf @ np.arange(len(self.pmf)))

    @cached_property
    def variance(self) -> float:
        idx = np.arange(len(self.pmf), dtype=float)
        mass = float(self.pmf.sum())
        m1 = float(self.pmf @ idx) / mass
        return self.span ** 2 * float(self.pmf @ (idx - m1) ** 2) / mass

    def var_cvar(self, level: float) -> tuple[float, float]:
        """VaR and CVaR; mean_beyond (claims above a cap, so above VaR) adds
        mean_beyond / (1 - level) to CVaR."""
        var, cvar = lattice_var_cvar(self.start, self.span, self.pmf, level)
        return var, (cvar + self.mean_beyond / (1.0 - level) if self.mean_beyond else cvar)


@dataclass(frozen=True)
class AggregateResult:
    """A computed aggregate law with its risk figures and self-checks."""

    law: LatticeLaw | None    # None once a pricer has dropped it to save memory
    level: float
    var: float
    cvar: float
    mean: float               # analytic
    variance: float           # analytic
    mean_rel_error: float     # |lattice mean - analytic| / analytic
    variance_rel_error: float # |lattice var - closed form of the discretised model| / that
    resolution_rel_diff: float  # error estimate |R_h - R_2h| / (3 R) of extrapolated VaR/CVaR
    points: int
    discretisation_variance_share: float = 0.0  # variance added by discretisation / Var Y
    mass_error: float = 0.0   # |total lattice mass - 1|


def shock_shape(model: CompoundModel) -> float | None:
    """Shape 1/theta^2 of the main part's Gamma shock, or None when its count is
    Poisson to double precision (no shock, or theta^2 E[N] <= NEGLIGIBLE_SHOCK,
    E[N] the main streams' own). Extra parts have their own: shock_shape(part)."""
    theta = model.shock_cv
    count = math.fsum(s.rate for s in model.streams)
    if theta == 0.0 or theta * theta * count <= NEGLIGIBLE_SHOCK:
        return None
    return 1.0 / (theta * theta)


def _log1p(z: np.ndarray) -> np.ndarray:
    """log(1 + z) for complex z, accurate for tiny |z| (numpy's complex log1p
    is not): Re = log1p(2x + x^2 + y^2) / 2, Im = atan2(y, 1 + x). Callers keep
    |1 + z| away from 0 (Re z >= 0, or |z| <= 0.94), so nothing cancels."""
    x, y = z.real, z.imag
    return 0.5 * np.log1p(2.0 * x + x * x + y * y) + 1j * np.arctan2(y, 1.0 + x)


def _expm1(z: np.ndarray) -> np.ndarray:
    """exp(z) - 1 for complex z, accurate for tiny |z|:
    expm1(x) cos y - 2 sin^2(y / 2) + i e^x sin y."""
    x, y = z.real, z.imag
    half = np.sin(0.5 * y)
    return np.expm1(x) * np.cos(y) - 2.0 * half * half + 1j * np.exp(x) * np.sin(y)


@lru_cache(maxsize=1024)
def _shock_quantiles(shape: float) -> tuple[float, float]:
    """Theta's TAIL_PROBABILITY lower and upper quantiles (Gamma, mean 1, shape
    1/theta^2), from the same scipy.special inverses scipy.stats.gamma's
    ppf/isf call, without their per-call overhead (~1 ms a pool); a pure memo."""
    return (float(special.gammaincinv(shape, TAIL_PROBABILITY)) * (1.0 / shape),
            float(special.gammainccinv(shape, TAIL_PROBABILITY)) * (1.0 / shape))


def _part_window(model: CompoundModel) -> tuple[float, float, float]:
    """(L, U - sev_hi, sev_hi) of one part (parts == ()): Theta's quantiles,
    the conditional band around them, and its largest claim's quantile; L is
    not clipped at 0 (a clipped one is no deviation that `_window` can combine)."""
    shape = shock_shape(model)
    lo_mult, hi_mult = _shock_quantiles(shape) if shape is not None else (1.0, 1.0)
    mean, second = model.mean, math.fsum(s.second_moment_sum for s in model.streams)
    low = lo_mult * mean - CONDITIONAL_SIGMAS * math.sqrt(lo_mult * second)
    sev_hi = max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY) for s in model.streams)
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


def _severity_lattice(streams, span: float, n: int, cap: float | None = None) -> tuple[np.ndarray, float]:
    """Mean-preserving (local moment matching) mixture severity on span h,
    folded mod n, and its second moment (before folding). With `cap` the
    lattice stops just above min(cap, that quantile) (`_capped_top_index`) and
    the mass beyond sits on its last point, its mean beyond that point left
    to `_excess_beyond` (`claim_cap`).

    The mass of X in each cell [x_j, x_j+1] is split between its two ends so
    that the cell's mean is kept: (x_j+1 P_j - M_j)/h to x_j and
    (M_j - x_j P_j)/h to x_j+1, with P_j the cell's probability and M_j its
    partial first moment, both from differences of upper tails. (Second
    differences of E[min(X, x)] are equivalent but lose all precision at fine
    spans: their rounding error, ~eps E[X] / h per point, swamps the far tail.)
    The mass above the last point (below 1e-12) is put at its conditional mean.
    """
    rate = math.fsum(s.rate for s in streams)
    m = _capped_top_index(streams, span, cap)
    if m > 4 * n + 16:   # the window holds every claim: a longer lattice is a window too narrow
        raise NumericsError(f"severity lattice of {m} cells is longer than 4 windows of {n} cells")
    grid = span * np.arange(m + 1, dtype=float)
    cell_prob = np.zeros(m)
    cell_moment = np.zeros(m)
    tail_prob = tail_moment = 0.0
    for s in streams:
        weight = s.rate / rate
        surv, surv1 = s.severity.tails(grid / s.factor)
        scale = s.factor * s.severity.expected_value
        cell_prob += weight * (surv[:-1] - surv[1:])
        cell_moment += weight * scale * (surv1[:-1] - surv1[1:])
        tail_prob += weight * surv[-1]
        tail_moment += weight * scale * surv1[-1]
    # The mass beyond the last point goes to its conditional mean, split
    # between the two lattice points around it, so the mean stays exact even
    # for Pareto tails (where E[X; X > top] is not negligible).
    beyond = tail_moment / tail_prob / span if tail_prob > 0 and cap is None else float(m)
    last = max(int(math.ceil(beyond)), m)
    probs = np.zeros(last + 1)
    probs[:m] += (grid[1:] * cell_prob - cell_moment) / span
    probs[1:m + 1] += (cell_moment - grid[:-1] * cell_prob) / span
    below = min(int(math.floor(beyond)), last)
    upper_share = beyond - below if last > below else 0.0
    probs[below] += tail_prob * (1.0 - upper_share)
    probs[last] += tail_prob * upper_share
    np.maximum(probs, 0.0, out=probs)
    m = last
    second = float(probs @ (span * np.arange(m + 1)) ** 2)
    return np.bincount(np.arange(m + 1) % n, weights=probs, minlength=n), second


def _capped_top_index(streams, span: float, cap: float | None) -> int:
    """Index of the severity lattice's last cell end: two cells above the
    streams' largest TAIL_PROBABILITY quantile or, with `cap`, above the cap if lower."""
    top = max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY) for s in streams)
    if cap is not None:
        top = min(top, cap)
    return int(math.ceil(top / span)) + 2


def _excess_beyond(streams, span: float, cap: float) -> float:
    """E[(fX - e)+] of the streams' mixture severity, e the last point of its
    lattice capped at `cap`: the mean the capped lattice leaves out (its mass
    beyond e sits at e)."""
    edge = span * _capped_top_index(streams, span, cap)
    rate = math.fsum(s.rate for s in streams)
    excess = []
    for s in streams:
        surv, surv1 = s.severity.tails(np.array([edge / s.factor]))
        excess.append(s.rate / rate * max(0.0, s.factor * s.severity.expected_value * float(surv1[0])
                                          - edge * float(surv[0])))
    return math.fsum(excess)


def _count_exponent(part: CompoundModel, phi: np.ndarray, without_atom: bool = False,
                    phi_minus_one: np.ndarray | None = None) -> np.ndarray:
    """log of one part's transform given its severity transform phi (parts == ()):
    Poisson lam (phi - 1), negative binomial -k log1p(-(lam / k) (phi - 1)),
    k = 1/theta^2 (`phi_minus_one`, when given, is phi - 1 computed more
    precisely than the subtraction). `without_atom`: log of the transform over
    P(N_u = 0), i.e. lam phi and -k log1p(-c phi), c = lam theta^2 / (1 + lam theta^2)."""
    lam = part.expected_count
    shape = shock_shape(part)
    if without_atom:
        if shape is None:
            return lam * phi
        c = (lam / shape) / (1.0 + lam / shape)
        return -shape * _log1p(-c * phi)
    step = phi - 1.0 if phi_minus_one is None else phi_minus_one
    if shape is not None:
        # z = -lam theta^2 (phi - 1) has Re z >= 0 since |phi| <= 1.
        return -shape * _log1p(-(lam / shape) * step)
    return lam * step


def _precise_phi_minus_one(phi: np.ndarray, sev: np.ndarray, n: int) -> np.ndarray | None:
    """phi - 1 with its smallest entries summed directly, or None when the
    subtraction is exact enough. The FFT gives phi to ~1e-15 absolute, so
    phi - 1 loses its relative precision where it is small (the lowest
    frequencies), and a count of E[N] admissions multiplies that loss: at 1e9
    admissions with a shock cv of 2 it put ~1e-13 of noise in every cell, whose
    clamped positive half moved the law's mean by 1e-5. Where |phi - 1| <
    PRECISE_PHI_BELOW, phi_j - 1 = -sum_x p_x (2 sin^2(pi j x / n) + i sin(2 pi j x / n))
    over the severity lattice's cells, in chunks (at most PRECISE_PHI_WORK terms)."""
    step = phi - 1.0
    low = np.flatnonzero(np.abs(step) < PRECISE_PHI_BELOW)
    low = low[low > 0]
    cells = np.flatnonzero(sev)
    if not low.size or low.size * cells.size > PRECISE_PHI_WORK:
        return None
    weights = sev[cells]
    chunk = max(1, PRECISE_PHI_WORK // (64 * max(cells.size, 1)))
    for start in range(0, low.size, chunk):
        freqs = low[start:start + chunk]
        angle = (np.pi / n) * np.outer(freqs, cells.astype(float))
        half = np.sin(angle)
        step[freqs] = -(2.0 * (half * half) @ weights) - 1j * (np.sin(2.0 * angle) @ weights)
    return step


def _normalised_severity_lattice(streams, span: float, n: int,
                                 cap: float | None = None) -> tuple[np.ndarray, float, float]:
    """`_severity_lattice` scaled to mass exactly 1, and with `cap` the mean it
    leaves out (`_excess_beyond`; else 0). Rounding leaves its mass 1 +- ~1e-16
    per cell, and the compound multiplies that miss by E[N] (2e-8 at 1.6e8
    admissions); a severity truly off would still fail the mean check."""
    sev, sev_second = _severity_lattice(streams, span, n, cap)
    sev_mass = float(sev.sum())
    excess = 0.0 if cap is None else _excess_beyond(streams, span, cap)
    return sev / sev_mass, sev_second / sev_mass, excess


def _part_severity_lattices(model: CompoundModel, span: float, n: int, cap: float | None = None):
    """(severity lattice, its E[X_d^2], the mean per claim it leaves out with a
    cap) of each of model.components. With one part, its mixture lattice. With several, each distinct (severity, factor)
    is discretised once (its tails are the costly part: a per-part mixture
    evaluated the main part's streams again in every prefecture and county
    part) and each part's lattice is the rate-weighted mixture of its streams'
    lattices, itself mean-preserving, with E[X_d^2] the same mixture."""
    components = model.components
    if len(components) == 1:
        return [_normalised_severity_lattice(components[0].streams, span, n, cap)]
    lattices: dict[tuple[Severity, float], tuple[np.ndarray, float, float]] = {}
    scratch = np.empty(n)
    out = []
    for part in components:
        lam = part.expected_count
        sev = np.zeros(n)
        second, excess = [], []
        for s in part.streams:
            key = (s.severity, s.factor)
            if key not in lattices:
                lattices[key] = _normalised_severity_lattice((ClaimStream(1.0, *key),), span, n, cap)
            lattice, lattice_second, lattice_excess = lattices[key]
            sev += np.multiply(lattice, s.rate / lam, out=scratch)
            second.append(s.rate / lam * lattice_second)
            excess.append(s.rate / lam * lattice_excess)
        out.append((sev, math.fsum(second), math.fsum(excess)))
    return out


def _lattice_law(model: CompoundModel, low: float, span: float, n: int, cap: float | None = None) -> LatticeLaw:
    """Y's law on the lattice start_index * span + i span, i < n: each part's
    severity lattice, its FFT, the part's count transform, their product (the
    sum of their logs); for a model without parts, one part (the model).
    `cap`: claims above it lumped (`claim_cap`)."""
    start_index = int(math.floor(low / span))
    p0 = no_claim_probability(model)
    zero_at = -start_index
    # With parts P(N = 0) is the product of theirs and the transform minus the
    # atom is p0 expm1(sum of the parts' exponents without their atoms).
    split = p0 >= ATOM_SPLIT and 0 <= zero_at < n
    exponent = None
    variance_terms, beyond = [], []
    for part, (sev, sev_second, excess) in zip(model.components, _part_severity_lattices(model, span, n, cap)):
        beyond.append(part.expected_count * excess)
        phi = np.fft.rfft(sev)
        phi[0] = 1.0
        precise = _precise_phi_minus_one(phi, sev, n) \
            if not split and part.expected_count >= PRECISE_PHI_FROM else None
        # Transform of Y's law minus its atom P(N = 0) at 0, in closed form when
        # split: Poisson e^-lam expm1(lam phi); negative binomial p0 expm1(-k
        # log1p(-c phi)). The atom is added back after the FFT.
        term = _count_exponent(part, phi, without_atom=split, phi_minus_one=precise)
        if exponent is None:
            exponent = term
        else:
            exponent += term
        # With a cap the lattice's claims have the mean part.mean - lambda excess (shock term of Y').
        variance_terms += [part.expected_count * sev_second,
                           (part.shock_cv * (part.mean - part.expected_count * excess)) ** 2]
    transform = p0 * _expm1(exponent) if split else np.exp(exponent)
    pmf = np.fft.irfft(transform, n)
    pmf = np.roll(pmf, -(start_index % n))
    np.maximum(pmf, 0.0, out=pmf)
    if split:
        pmf[zero_at] += p0
    pmf.setflags(write=False)
    # lambda E[X_d^2] + theta^2 E[Y]^2, summed over the parts.
    discretised_variance = math.fsum(variance_terms)
    return LatticeLaw(start=start_index * span, span=span, pmf=pmf,
                      discretised_variance=discretised_variance, mean_beyond=math.fsum(beyond))


def _grid(model: CompoundModel, points: int, budget: float,
          widen: float = 1.0, cap: float | None = None, fit: bool = False) -> tuple[float, float, int]:
    """(L, span, n) of the direct lattice; `fit`: when it needs more than
    MAX_POINTS, start instead at FITTED_POINTS over the window (the span budget
    is a first guess: the caller's error control decides). With `cap` (`claim_cap`) no claim on
    the lattice exceeds min(cap, the largest TAIL_PROBABILITY quantile) + 3 cells
    (6 fine cells on the coarse lattice of twice the span), and the window's top
    is found for that bound once the span is known (the span stays: the window
    only grows)."""
    bound = None if cap is None else min(cap, _largest_claim_quantile(model))
    low, high = _window(model, widen, bound)
    width = high - low
    mean, sd, count = model.mean, math.sqrt(model.variance), model.expected_count
    if bound is not None:   # the lattice holds claims capped near `bound`: its law's own scale
        mean, variance = _bounded_moments(model, bound, 0.0)
        sd = math.sqrt(variance)
    shift_span = math.sqrt(8.0 * budget * mean * sd / (SHIFT_SIGMAS * count))
    if not shift_span > 0.0:    # mean * sd below float's range: the same product, factored
        shift_span = math.sqrt(8.0 * budget / SHIFT_SIGMAS) * math.sqrt(mean) * math.sqrt(sd / count)
    span = min(width / points, shift_span)
    if bound is not None:
        low, high = _window(model, widen, bound + 6.0 * span, 2.0 * span)
        width = high - low
    n = 1 << max(10, int(math.ceil(math.log2(width / span + 2))))
    if n > MAX_POINTS and fit:
        n = FITTED_POINTS
        span = width / (n - 2)
    if n > MAX_POINTS:
        raise NumericsError(f"aggregate needs {n} lattice points (> {MAX_POINTS}); {describe_model(model)}")
    return low, span, n


def _largest_claim_quantile(model: CompoundModel) -> float:
    """The largest TAIL_PROBABILITY quantile of one claim, over every stream."""
    return max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY)
               for part in model.components for s in part.streams)


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


def describe_model(model: CompoundModel) -> str:
    """The inputs that drive the engine's numerics, for error messages."""
    streams = [s for part in model.components for s in part.streams]
    tails = [s.severity.tail_index for s in streams if s.severity.tail_index is not None]
    largest_cv = max(s.severity.cv for s in streams)
    if model.parts:
        cvs = [p.shock_cv for p in model.parts]
        text = (f"expected admissions {model.expected_count:.6g} "
                f"({math.fsum(s.rate for s in model.streams):.6g} under shock cv {model.shock_cv:.6g}, "
                f"the rest in {len(cvs)} independent parts with shock cv {min(cvs):.6g} to {max(cvs):.6g}), "
                f"largest severity cv {largest_cv:.6g}")
    else:
        text = (f"expected admissions {model.expected_count:.6g}, shock cv {model.shock_cv:.6g}, "
                f"largest severity cv {largest_cv:.6g}")
    if tails:
        text += f", smallest tail index {min(tails):.6g}"
    return text


def law_check_failures(law: LatticeLaw, model: CompoundModel) -> list[str]:
    """Self-checks a lattice law fails (empty when it passes): total mass, mean
    against E[Y], variance against the discretised model's closed form."""
    failures = []
    mass_error = abs(float(law.pmf.sum()) - 1.0)
    if not mass_error <= MASS_TOLERANCE:
        failures.append(f"total mass off by {mass_error:.3g} (tolerance {MASS_TOLERANCE:g})")
    mean_error = abs(law.mean + law.mean_beyond - model.mean) / model.mean
    if not mean_error <= MEAN_TOLERANCE:
        failures.append(f"mean off by {mean_error:.3g} relative (tolerance {MEAN_TOLERANCE:g})")
    variance_error = abs(law.variance - law.discretised_variance) / law.discretised_variance
    if not variance_error <= VARIANCE_TOLERANCE:
        failures.append(f"variance off by {variance_error:.3g} relative (tolerance {VARIANCE_TOLERANCE:g})")
    return failures


class _ChecksFailed(Exception):
    """A computed law failed its self-checks (internal: triggers the retry)."""


def _checked(compute, model: CompoundModel):
    """Run compute(widen) on the normal window, then once on a window widened
    by WIDER_WINDOW if the self-checks fail; NumericsError if both fail."""
    try:
        return compute(1.0)
    except _ChecksFailed:
        pass
    try:
        return compute(WIDER_WINDOW)
    except _ChecksFailed as exc:
        raise NumericsError(f"aggregate law failed its self-checks ({exc}), also on a window "
                            f"widened {WIDER_WINDOW:g}x; {describe_model(model)}") from None


def aggregate(model: CompoundModel, level: float) -> AggregateResult:
    """Compute Y's law and its VaR/CVaR at `level`, with error control and
    enforced self-checks (module docstring). A model with no claim of positive
    cost (every admission out of network where nothing is claimed, say) is
    Y = 0: VaR = CVaR = 0, exactly."""
    if not any(part.streams for part in model.components):
        law = _no_claims_law()
        return AggregateResult(law=law, level=level, var=0.0, cvar=0.0, mean=0.0, variance=0.0,
                               mean_rel_error=0.0, variance_rel_error=0.0, resolution_rel_diff=0.0, points=1)
    return _checked(lambda widen: _aggregate(model, level, widen), model)


def _no_claims_law() -> LatticeLaw:
    """Y = 0 with probability 1 (a model without claims of positive cost)."""
    pmf = np.ones(1)
    pmf.setflags(write=False)
    return LatticeLaw(start=0.0, span=1.0, pmf=pmf, discretised_variance=0.0)


def no_claim_probability(model: CompoundModel) -> float:
    """P(N = 0): exp(-E[N]) for Poisson, (1 + E[N] theta^2)^(-1/theta^2) with the
    shock; with parts, the product of the parts' (they are independent)."""
    if model.parts:
        return math.exp(math.fsum(_log_no_claim(part) for part in model.components))
    lam = model.expected_count
    shape = shock_shape(model)
    if shape is None:
        return math.exp(-lam)
    return math.exp(-shape * math.log1p(lam / shape))


def _log_no_claim(part: CompoundModel) -> float:
    """log P(N_u = 0) of one part (parts == ())."""
    lam = part.expected_count
    shape = shock_shape(part)
    return -lam if shape is None else -shape * math.log1p(lam / shape)


def _aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The band engine where it applies and passes its checks, else the direct lattice."""
    if no_claim_probability(model) <= BAND_MAX_ATOM:
        result = _band_aggregate(model, level, widen)
        if result is not None:
            return result
    return _direct_aggregate(model, level, widen)


def _direct_aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The whole law on one lattice of span h (severity discretised at h), at h and
    2h, Richardson-extrapolated (module docstring, steps 1-4). When that lattice
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


# -- band engine ------------------------------------------------------------------

@lru_cache(maxsize=512)
def _severity_grid(key: tuple[tuple[Severity, float], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrature points of the mixture severity of streams `key` ((severity,
    factor) pairs) and each stream's upper tails on them: (x, S, T) with
    S[s, i] = P(f_s X_s > x_i) and T[s, i] = E[f_s X_s; f_s X_s > x_i].

    x is uniform with step delta (a power of two, SEVERITY_POINTS_PER_SCALE points
    per smallest scale) up to GEOMETRIC_FROM largest scales, then geometric up to
    the largest TAIL_PROBABILITY quantile; the number of points is even, so that
    every other point gives the coarse grid of the Richardson combination. A pure
    memo: a pool's streams are a few (severity, factor) pairs shared by its group,
    so this work (the tails' ndtr/erfc over the grid) is done once per set."""
    scales = [f * sev.expected_value for sev, f in key]
    top = max(f * sev.upper_quantile(TAIL_PROBABILITY) for sev, f in key)
    delta = 2.0 ** math.floor(math.log2(min(scales) / SEVERITY_POINTS_PER_SCALE))
    uniform_end = min(top, GEOMETRIC_FROM * max(scales))
    count = 2 * int(math.ceil(uniform_end / (2.0 * delta)))
    x = delta * np.arange(count + 1, dtype=float)
    if top > x[-1]:
        steps = int(math.ceil(GEOMETRIC_POINTS * math.log(top / x[-1])))
        steps += steps % 2
        x = np.concatenate((x, x[-1] * np.exp(np.arange(1, steps + 1) / GEOMETRIC_POINTS)))
    surv = np.empty((len(key), len(x)))
    moment = np.empty((len(key), len(x)))
    for row, (sev, f) in enumerate(key):
        s, s1 = sev.tails(x / f)
        surv[row], moment[row] = s, f * sev.expected_value * s1
    for arr in (x, surv, moment):
        arr.setflags(write=False)
    return x, surv, moment


def _moment_matched(x: np.ndarray, surv: np.ndarray, moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local moment matching on the points x (any spacing): each cell's mass and
    partial first moment (differences of the upper tails) go to its two ends so
    that its mean is kept; the mass beyond the last point goes to one extra point
    at its conditional mean. Returns (points, masses)."""
    width = np.diff(x)
    cell_prob = surv[:-1] - surv[1:]
    cell_moment = moment[:-1] - moment[1:]
    probs = np.zeros(len(x))
    probs[:-1] += (x[1:] * cell_prob - cell_moment) / width
    probs[1:] += (cell_moment - x[:-1] * cell_prob) / width
    if surv[-1] > 0.0:
        return np.append(x, moment[-1] / surv[-1]), np.append(probs, surv[-1])
    return x, probs


def _uniform_quadrature_points(streams) -> float:
    """Points in the uniform part of `_severity_grid` for these streams (as it computes them)."""
    scales = [s.factor * s.severity.expected_value for s in streams]
    top = max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY) for s in streams)
    delta = 2.0 ** math.floor(math.log2(min(scales) / SEVERITY_POINTS_PER_SCALE))
    return min(top, GEOMETRIC_FROM * max(scales)) / delta


def _severity_quadrature(streams) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(points, weights, E_q[X^2], E_delta[X^2]) of the pool's mixture severity: the Richardson
    combination (4 q_delta - q_2delta) / 3 of the moment-matched laws on the grid
    and on every other point of it, which cancels the O(delta^2) variance they add
    (weights may be slightly negative; they sum to 1 and keep E[X] exactly)."""
    key = tuple((s.severity, s.factor) for s in streams)
    x, surv, moment = _severity_grid(key)
    rates = np.array([s.rate for s in streams])
    weights = rates / math.fsum(rates)
    mix_surv, mix_moment = weights @ surv, weights @ moment
    fine_x, fine_p = _moment_matched(x, mix_surv, mix_moment)
    _, coarse_p = _moment_matched(x[::2], mix_surv[::2], mix_moment[::2])
    # The coarse points are every other fine point (and the same point beyond the
    # grid), so the combination lives on the fine points, which stay sorted.
    quad = fine_p * (4.0 / 3.0)
    quad[0:len(x):2] -= coarse_p[:(len(x) + 1) // 2] / 3.0
    if len(fine_x) > len(x):
        quad[-1] -= coarse_p[-1] / 3.0
    quad /= math.fsum(quad.tolist())                       # the same sum, without numpy scalars
    return fine_x, quad, float(quad @ (fine_x * fine_x)), float(fine_p @ (fine_x * fine_x))


_HORNER_SCALES = tuple(1.0 / (d + 1) for d in range(TAYLOR_DEGREE))
"""1 / (d + 1) for Horner's scheme: numpy divides a complex array by the real
d + 1 as (re + im * 0) * (1 / (d + 1)), (im - re * 0) * (1 / (d + 1)) (Smith's
algorithm with a zero imaginary part), so scaling both parts by these is the
same arithmetic without the complex division (checked bit for bit against the
division in tests/test_pricing_accuracy.py)."""


@lru_cache(maxsize=64)
def _phase_steps(n: int) -> np.ndarray:
    """-i w_j span = -2 pi i j / n at the n/2 + 1 frequencies of an n-cell output
    lattice (a pure memo per n, read-only)."""
    z = -2j * np.pi * np.arange(n // 2 + 1) / n
    z.setflags(write=False)
    return z


@lru_cache(maxsize=64)
def _cell_transform(n: int) -> np.ndarray:
    """sinc(w_j span / 2) = np.sinc(j / n), the transform of one output cell, at
    the n/2 + 1 frequencies (a pure memo per n, read-only)."""
    cell = np.sinc(np.arange(n // 2 + 1) / n)
    cell.setflags(write=False)
    return cell


def _severity_transform(points: np.ndarray, quad: np.ndarray, span: float, n: int) -> np.ndarray:
    """sum_m q_m exp(-i w_j x_m) at w_j = 2 pi j / (n span), j = 0..n/2 (numpy's
    rfft sign), without an FFT over the severity's own fine grid: x = k span + u
    with k the nearest output cell, exp(-i w u) expanded to TAYLOR_DEGREE in
    w u (|w u| <= pi/2), and the cell sums of q u^d transformed by one batched
    rfft of length n (cells folded mod n). Arrays are degree-major (one row per
    power of u), so every step runs on contiguous rows and Horner's scheme
    updates one array in place."""
    scaled = points / span
    cells = np.floor(scaled + 0.5)
    offset = scaled - cells                               # in [-1/2, 1/2]
    terms = np.empty((TAYLOR_DEGREE + 1, len(points)))
    terms[0] = quad
    for d in range(TAYLOR_DEGREE):
        np.multiply(terms[d], offset, out=terms[d + 1])
    # Points are sorted, so each output cell's points are one run: sum the runs.
    first = np.flatnonzero(cells[1:] != cells[:-1])
    first += 1
    first = np.concatenate(([0], first))
    sums = np.add.reduceat(terms, first, axis=1)
    moments = np.zeros((TAYLOR_DEGREE + 1, n))
    slots = cells[first].astype(np.int64)
    if slots[-1] < n:
        # Distinct slots: storing the sums is adding them to 0 (+ 0.0 turns a
        # -0.0 into the +0.0 that adding to 0 gives).
        moments[:, slots] = sums + 0.0
    else:
        np.add.at(moments.T, slots % n, sums.T)
    spectra = np.fft.rfft(moments, axis=-1)
    z = _phase_steps(n)                                   # -i w_j span
    phi = spectra[TAYLOR_DEGREE].copy()
    flat = phi.view(np.float64)
    for d in range(TAYLOR_DEGREE - 1, -1, -1):            # phi = spectra[d] + phi z / (d + 1)
        phi *= z
        flat *= _HORNER_SCALES[d]
        phi += spectra[d]
    return phi


@lru_cache(maxsize=1024)
def _key_quadrature(key: tuple[Severity, float]) -> tuple[np.ndarray, np.ndarray, float, float, float] | None:
    """`_severity_quadrature` of one (severity, factor) component, with how far its
    last point lies beyond the component's TAIL_PROBABILITY quantile, or None when
    its grid is too large (MAX_QUADRATURE_POINTS). A pure memo: the parts of a
    model share components, and pools of one instance share them too."""
    severity, factor = key
    stream = (ClaimStream(1.0, severity, factor),)
    if _uniform_quadrature_points(stream) > MAX_QUADRATURE_POINTS:
        return None
    points, quad, quad_second, fine_second = _severity_quadrature(stream)
    points.setflags(write=False)
    quad.setflags(write=False)
    overhang = float(points.max()) - factor * severity.upper_quantile(TAIL_PROBABILITY)
    return points, quad, quad_second, fine_second, overhang


@dataclass(frozen=True)
class _BandSeverity:
    """What the band engine needs of a model's severities.

    With one part (no parts, or all of them Poisson): the quadrature (points,
    quad) of the mixture severity. With several: the quadratures of the K
    distinct (severity, factor) components, concatenated (component j's points
    are those with owner == j) and transformed together once per output lattice
    (`_severity_transforms`); part u's severity transform is sum_j mix[u, j]
    phi_j, mix[u, j] = rate of component j in part u / lambda_u, stored by its
    nonzero entries (rows sorted) so that no BLAS call is made (on a loaded
    2-core machine OpenBLAS's threads made a 36 x 31 x 1025 product take 10 ms
    instead of 0.1)."""

    points: np.ndarray
    quad: np.ndarray
    second: float            # sum over parts of lambda_u E_q[X_u^2]
    added: float             # variance the step-delta moment matching alone adds
    overhang: float          # largest last point beyond its TAIL_PROBABILITY quantile
    shock_variance: float    # sum over parts of theta_u^2 mean_u^2
    # With parts only:
    owner: np.ndarray | None = None       # component of each point
    components: int = 0                   # K
    mix_rows: np.ndarray | None = None    # start of each part's entries
    mix_cols: np.ndarray | None = None    # component of each entry
    mix_weights: np.ndarray | None = None # its weight
    rates: np.ndarray | None = None       # lambda_u per part
    shapes: np.ndarray | None = None      # 1/theta_u^2 per part, nan where Poisson


def _band_severity(model: CompoundModel) -> _BandSeverity | None:
    """The band engine's severity quadratures (`_BandSeverity`), or None when one
    needs more than MAX_QUADRATURE_POINTS uniform points (the caller then uses
    the direct lattice). A single part whose mixture would need more is given
    one quadrature per (severity, factor), as several parts are."""
    components = model.components
    if len(components) == 1:
        (single,) = components
        lam = single.expected_count
        if len(single.streams) == 1:
            # One stream: its weight is rate / rate = 1.0 exactly, so its quadrature
            # is the component's, memoised (a national single-county pool).
            (stream,) = single.streams
            quadrature = _key_quadrature((stream.severity, stream.factor))
            if quadrature is None:
                return None
            points, quad, quad_second, fine_second, overhang = quadrature
            return _BandSeverity(points, quad, lam * quad_second, lam * abs(fine_second - quad_second),
                                 overhang, (single.shock_cv * single.mean) ** 2)
        if _uniform_quadrature_points(single.streams) <= MAX_QUADRATURE_POINTS:
            points, quad, quad_second, fine_second = _severity_quadrature(single.streams)
            overhang = float(points.max()) - max(f * s.severity.upper_quantile(TAIL_PROBABILITY)
                                                 for s, f in ((s, s.factor) for s in single.streams))
            return _BandSeverity(points, quad, lam * quad_second, lam * abs(fine_second - quad_second),
                                 overhang, (single.shock_cv * single.mean) ** 2)
        # Scales too far apart for one grid (a stream at a share of 1e-9 beside
        # the rest): each (severity, factor) on its own grid, mixed as for parts
        # below (each grid has at most ~512 uniform points).
    index: dict[tuple[Severity, float], int] = {}
    entries = []
    rows, cols, weights, second, added = [0], [], [], [], []
    for part in components:
        lam = part.expected_count
        within: dict[int, float] = {}
        for s in part.streams:
            key = (s.severity, s.factor)
            if key not in index:
                quadrature = _key_quadrature(key)
                if quadrature is None:
                    return None
                index[key] = len(entries)
                entries.append(quadrature)
            j = index[key]
            within[j] = within.get(j, 0.0) + s.rate / lam
            second.append(s.rate * entries[j][2])
            added.append(s.rate * (entries[j][3] - entries[j][2]))
        cols += within.keys()
        weights += within.values()
        rows.append(len(cols))
    shapes = [math.nan if (k := shock_shape(part)) is None else k for part in components]
    return _BandSeverity(
        points=np.concatenate([e[0] for e in entries]), quad=np.concatenate([e[1] for e in entries]),
        second=math.fsum(second), added=abs(math.fsum(added)), overhang=max(e[4] for e in entries),
        shock_variance=math.fsum((part.shock_cv * part.mean) ** 2 for part in components),
        owner=np.repeat(np.arange(len(entries)), [len(e[0]) for e in entries]), components=len(entries),
        mix_rows=np.array(rows[:-1]), mix_cols=np.array(cols), mix_weights=np.array(weights),
        rates=np.array([part.expected_count for part in components]), shapes=np.array(shapes))


def _severity_transforms(points: np.ndarray, quad: np.ndarray, owner: np.ndarray, count: int,
                         span: float, n: int) -> np.ndarray:
    """`_severity_transform` of `count` quadratures at once (point i belongs to
    quadrature owner[i]; each quadrature's points sorted): the Taylor cell sums
    of all of them degree by degree (one vector of powers, not a points x degrees
    array), then per degree, from the highest, one batched rfft of the count
    quadratures' cell sums folded into Horner's scheme (small arrays: one
    (degrees x count x n) array was 4 MB a pool, and its fresh pages cost more
    than its FFT). Returns (count, n/2 + 1)."""
    scaled = points / span
    cells = np.floor(scaled + 0.5)
    offset = scaled - cells                               # in [-1/2, 1/2]
    slot = owner * n + cells.astype(np.int64) % n
    # Each quadrature's points in one output cell are one run: sum the runs.
    first = np.flatnonzero(np.diff(slot, prepend=-1))
    power = quad.copy()
    sums = np.empty((TAYLOR_DEGREE + 1, len(first)))
    sums[0] = np.add.reduceat(power, first)
    for d in range(1, TAYLOR_DEGREE + 1):
        power *= offset
        sums[d] = np.add.reduceat(power, first)
    slots = slot[first]
    folded = cells.max() >= n                             # then two runs may share a slot
    moments = np.zeros((count, n))
    flat = moments.reshape(-1)
    z = _phase_steps(n)                                   # -i w_j span
    phi = None
    for d in range(TAYLOR_DEGREE, -1, -1):
        if folded:
            flat[:] = 0.0
            np.add.at(flat, slots, sums[d])
        else:
            flat[slots] = sums[d]                          # the same slots every degree
        spectrum = np.fft.rfft(moments, axis=-1)
        if phi is None:
            phi = spectrum
        else:
            phi *= z / (d + 1)
            phi += spectrum
    return phi


def _band_exponent(model: CompoundModel, severity: _BandSeverity, span: float, n: int) -> np.ndarray:
    """log of Y's transform at the output lattice's n/2 + 1 frequencies. With one
    part (a model without parts): its quadrature's transform and the count
    exponent. With parts: the components' transforms at once, each part's
    severity transform their combination, and the parts' count exponents summed."""
    if severity.owner is None:
        phi = _severity_transform(severity.points, severity.quad, span, n)
        phi[0] = 1.0
        return _count_exponent(model.components[0], phi)
    spectra = _severity_transforms(severity.points, severity.quad, severity.owner, severity.components,
                                   span, n)
    phis = np.add.reduceat(spectra[severity.mix_cols] * severity.mix_weights[:, None], severity.mix_rows,
                           axis=0)
    phis[:, 0] = 1.0
    phis -= 1.0
    poisson = np.isnan(severity.shapes)
    exponent = (severity.rates[poisson, None] * phis[poisson]).sum(axis=0)
    if not poisson.all():
        shapes = severity.shapes[~poisson, None]
        ratios = severity.rates[~poisson, None] / shapes
        exponent -= (shapes * _log1p(-ratios * phis[~poisson])).sum(axis=0)
    return exponent


def _band_law(model: CompoundModel, severity: _BandSeverity, low: float, span: float,
              n: int) -> tuple[np.ndarray, int] | None:
    """Cell masses of Y on cells of width `span` centred at start_index * span + i
    span (i < n), or None when Y's transform is not negligible at the band edge.

    Y's transform is computed at the n/2 + 1 frequencies of the output lattice
    only, times sinc(w span / 2), the transform of a cell: its inverse DFT is the
    exact mass of each cell as long as the transform vanishes beyond pi / span
    (checked against BAND_TOLERANCE), whatever the severity's own resolution."""
    start_index = int(math.floor(low / span))
    transform = np.exp(_band_exponent(model, severity, span, n))
    edge = np.abs(transform[n // 4:])
    if not np.all(edge <= BAND_TOLERANCE):
        return None
    transform *= _cell_transform(n)
    wrapped = np.fft.irfft(transform, n)
    # Unroll (np.roll by -start_index) and clamp round-off below 0, in one pass.
    shift = start_index % n
    pmf = np.empty(n)
    np.maximum(wrapped[shift:], 0.0, out=pmf[:n - shift])
    np.maximum(wrapped[:shift], 0.0, out=pmf[n - shift:])
    return pmf, start_index


def _band_aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult | None:
    """VaR/CVaR from exact cell masses on a lattice sized by Y's spread, not by the
    severity (module docstring, "Band engine"); None when it does not apply (the
    caller then uses the direct lattice). Self-checks as for the direct lattice."""
    severity = _band_severity(model)
    if severity is None:
        return None
    low, high = _window(model, widen)
    variance = model.variance
    # The window reaches the severity's TAIL_PROBABILITY quantile; the quadrature's
    # last point (the mass beyond it, at its conditional mean) must not wrap around.
    high += severity.overhang
    width = high - low
    if not severity.added <= SEVERITY_VARIANCE_SHARE * variance:
        return None
    n = max(1 << int(math.ceil(math.log2(width / (math.sqrt(variance) / BAND_POINTS_PER_SD) + 2))), 64)
    coarse_risk = None
    while n <= BAND_MAX_POINTS:
        span = width / (n - 2)
        computed = _band_law(model, severity, low, span, n)
        if computed is None:
            n *= 2
            continue
        pmf, start_index = computed
        start = start_index * span
        fine_risk = lattice_var_cvar(start, span, pmf, level)
        coarse_risk = lattice_var_cvar(start + 0.5 * span, 2.0 * span, pmf[0::2] + pmf[1::2], level)
        extrapolated = [f + (f - c) / 3.0 for f, c in zip(fine_risk, coarse_risk)]
        diff = max(abs(f - c) / 3.0 / abs(e) for f, c, e in zip(fine_risk, coarse_risk, extrapolated))
        if diff <= RESOLUTION_TOLERANCE:
            break
        n *= 2
    else:
        return None
    pmf.setflags(write=False)
    # Cell masses at cell centres: Sheppard's correction span^2 / 12 is the
    # variance grouping adds to a smooth law (exact for a uniform spread in cells).
    discretised_variance = severity.second + severity.shock_variance + span * span / 12.0
    law = LatticeLaw(start=start, span=span, pmf=pmf, discretised_variance=discretised_variance)
    if law_check_failures(law, model):
        return None
    return _result(law, level, extrapolated[0], extrapolated[1], model, diff, n)


def _result(law: LatticeLaw, level: float, var: float, cvar: float, model: CompoundModel,
            diff: float, points: int) -> AggregateResult:
    mean, variance = model.mean, model.variance
    return AggregateResult(
        law=law, level=level, var=var, cvar=cvar, mean=mean, variance=variance,
        mean_rel_error=abs(law.mean + law.mean_beyond - mean) / mean,
        variance_rel_error=abs(law.variance - law.discretised_variance) / law.discretised_variance,
        resolution_rel_diff=diff, points=points,
        discretisation_variance_share=(law.discretised_variance - variance) / variance,
        mass_error=abs(float(law.pmf.sum()) - 1.0))


def lattice_law(model: CompoundModel) -> LatticeLaw:
    """Y's whole law at the sampling budget, for samplers and reports that need
    the distribution rather than two extrapolated risk figures (self-checks
    enforced as for `aggregate`)."""
    if not any(part.streams for part in model.components):
        return _no_claims_law()

    def compute(widen: float) -> LatticeLaw:
        low, span, n = _grid(model, POINTS_PER_WINDOW, SAMPLING_SHIFT_BUDGET, widen)
        law = _lattice_law(model, low, span / 2.0, n * 2)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return law
    return _checked(compute, model)
