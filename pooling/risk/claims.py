"""Aggregate claim distributions: compound mixed-Poisson sums, computed exactly by FFT.

A pool's eligible cost Y is a sum of independent compound Poisson parts (one
per claim stream: residents at home, migrants in and out of network), all
scaled by one systemic multiplier Theta ~ Gamma(mean 1, cv theta). Poisson
superposition makes Y | Theta one compound Poisson sum with a mixture
severity; mixing over Theta turns the count negative binomial (DESIGN §A pool).

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
from functools import lru_cache

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

    @property
    def mean(self) -> float:
        return self.rate * self.factor * self.severity.expected_value

    @property
    def second_moment_sum(self) -> float:
        return self.rate * self.factor ** 2 * self.severity.second_moment


@dataclass(frozen=True)
class CompoundModel:
    """Y = sum of claim streams, all rates scaled by one Theta ~ Gamma(1, shock_cv)."""

    streams: tuple[ClaimStream, ...]
    shock_cv: float = 0.0

    @property
    def expected_count(self) -> float:
        return math.fsum(s.rate for s in self.streams)

    @property
    def mean(self) -> float:
        return math.fsum(s.mean for s in self.streams)

    @property
    def variance(self) -> float:
        """Var Y = E[Var(Y|Theta)] + Var(E[Y|Theta]) = sum lambda E[(fX)^2] + theta^2 mean^2."""
        return math.fsum(s.second_moment_sum for s in self.streams) + (self.shock_cv * self.mean) ** 2

    def given_shock(self, theta_value: float) -> CompoundModel:
        """The compound Poisson law of Y given Theta = theta_value."""
        return CompoundModel(tuple(dataclasses.replace(s, rate=s.rate * theta_value) for s in self.streams),
                             0.0)


def merge_streams(streams) -> tuple[ClaimStream, ...]:
    """Add the rates of streams with the same severity and factor; drop zero-cost ones."""
    totals: dict[tuple[Severity, float], float] = {}
    for s in streams:
        if s.rate <= 0.0 or s.factor <= 0.0:
            continue
        key = (s.severity, s.factor)
        totals[key] = totals.get(key, 0.0) + s.rate
    ordered = sorted(totals.items(), key=lambda item: (item[0][0].sort_key, item[0][1]))
    return tuple(ClaimStream(rate=rate, severity=sev, factor=fac) for (sev, fac), rate in ordered)


@dataclass(frozen=True)
class LatticeLaw:
    """A distribution with mass pmf[i] at start + span * i."""

    start: float
    span: float
    pmf: np.ndarray = field(repr=False)
    discretised_variance: float | None = None  # closed-form Var of the discretised model

    @property
    def mean(self) -> float:
        return self.start * float(self.pmf.sum()) + self.span * float(self.pmf @ np.arange(len(self.pmf)))

    @property
    def variance(self) -> float:
        idx = np.arange(len(self.pmf), dtype=float)
        mass = float(self.pmf.sum())
        m1 = float(self.pmf @ idx) / mass
        return self.span ** 2 * float(self.pmf @ (idx - m1) ** 2) / mass

    def var_cvar(self, level: float) -> tuple[float, float]:
        return lattice_var_cvar(self.start, self.span, self.pmf, level)


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
    """Shape 1/theta^2 of the Gamma shock, or None when the count is Poisson
    to double precision (no shock, or theta^2 E[N] <= NEGLIGIBLE_SHOCK)."""
    theta = model.shock_cv
    if theta == 0.0 or theta * theta * model.expected_count <= NEGLIGIBLE_SHOCK:
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


def _window(model: CompoundModel, widen: float = 1.0) -> tuple[float, float]:
    """[L, U] holding all but ~TAIL_PROBABILITY of Y's mass; with `widen` > 1
    each side moves out by (widen - 1) / 2 widths (L stays >= 0)."""
    shape = shock_shape(model)
    lo_mult, hi_mult = _shock_quantiles(shape) if shape is not None else (1.0, 1.0)
    mean, second = model.mean, math.fsum(s.second_moment_sum for s in model.streams)
    low = max(0.0, lo_mult * mean - CONDITIONAL_SIGMAS * math.sqrt(lo_mult * second))
    sev_hi = max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY) for s in model.streams)
    high = hi_mult * mean + CONDITIONAL_SIGMAS * math.sqrt(hi_mult * second) + sev_hi
    if widen > 1.0:
        extra = 0.5 * (widen - 1.0) * (high - low)
        low, high = max(0.0, low - extra), high + extra
    return low, high


def _severity_lattice(streams, span: float, n: int) -> tuple[np.ndarray, float]:
    """Mean-preserving (local moment matching) mixture severity on span h,
    folded mod n, and its second moment (before folding).

    The mass of X in each cell [x_j, x_j+1] is split between its two ends so
    that the cell's mean is kept: (x_j+1 P_j - M_j)/h to x_j and
    (M_j - x_j P_j)/h to x_j+1, with P_j the cell's probability and M_j its
    partial first moment, both from differences of upper tails. (Second
    differences of E[min(X, x)] are equivalent but lose all precision at fine
    spans: their rounding error, ~eps E[X] / h per point, swamps the far tail.)
    The mass above the last point (below 1e-12) is put at its conditional mean.
    """
    rate = math.fsum(s.rate for s in streams)
    top = max(s.factor * s.severity.upper_quantile(TAIL_PROBABILITY) for s in streams)
    m = int(math.ceil(top / span)) + 2
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
    beyond = tail_moment / tail_prob / span if tail_prob > 0 else float(m)
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


def _lattice_law(model: CompoundModel, low: float, span: float, n: int) -> LatticeLaw:
    streams = model.streams
    start_index = int(math.floor(low / span))
    sev, sev_second = _severity_lattice(streams, span, n)
    # Rounding leaves the severity lattice's mass 1 +- ~1e-16 per cell, and the
    # compound multiplies that miss by E[N] (2e-8 at 1.6e8 admissions): make it
    # exactly 1. A severity truly off would still fail the mean check.
    sev_mass = float(sev.sum())
    sev, sev_second = sev / sev_mass, sev_second / sev_mass
    phi = np.fft.rfft(sev)
    phi[0] = 1.0
    lam = model.expected_count
    theta = model.shock_cv
    shape = shock_shape(model)
    p0 = no_claim_probability(model)
    zero_at = -start_index
    split = p0 >= ATOM_SPLIT and 0 <= zero_at < n
    if split:
        # Transform of Y's law minus its atom P(N = 0) at 0, in closed form:
        # Poisson e^-lam expm1(lam phi); negative binomial p0 expm1(-k log1p(-c phi)),
        # c = lam theta^2 / (1 + lam theta^2). The atom is added back after the FFT.
        if shape is None:
            transform = p0 * _expm1(lam * phi)
        else:
            c = (lam / shape) / (1.0 + lam / shape)
            transform = p0 * _expm1(-shape * _log1p(-c * phi))
    elif shape is not None:
        # z = -lam theta^2 (phi - 1) has Re z >= 0 since |phi| <= 1.
        transform = np.exp(-shape * _log1p(-(lam / shape) * (phi - 1.0)))
    else:
        transform = np.exp(lam * (phi - 1.0))
    pmf = np.fft.irfft(transform, n)
    pmf = np.roll(pmf, -(start_index % n))
    np.maximum(pmf, 0.0, out=pmf)
    if split:
        pmf[zero_at] += p0
    pmf.setflags(write=False)
    discretised_variance = lam * sev_second + (theta * model.mean) ** 2
    return LatticeLaw(start=start_index * span, span=span, pmf=pmf,
                      discretised_variance=discretised_variance)


def _grid(model: CompoundModel, points: int, budget: float,
          widen: float = 1.0) -> tuple[float, float, int]:
    low, high = _window(model, widen)
    width = high - low
    mean, sd, count = model.mean, math.sqrt(model.variance), model.expected_count
    shift_span = math.sqrt(8.0 * budget * mean * sd / (SHIFT_SIGMAS * count))
    span = min(width / points, shift_span)
    n = 1 << max(10, int(math.ceil(math.log2(width / span + 2))))
    if n > MAX_POINTS:
        raise NumericsError(f"aggregate needs {n} lattice points (> {MAX_POINTS}); {describe_model(model)}")
    return low, span, n


def describe_model(model: CompoundModel) -> str:
    """The inputs that drive the engine's numerics, for error messages."""
    tails = [s.severity.tail_index for s in model.streams if s.severity.tail_index is not None]
    largest_cv = max(s.severity.cv for s in model.streams)
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
    mean_error = abs(law.mean - model.mean) / model.mean
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
    enforced self-checks (module docstring)."""
    if not model.streams:
        raise NumericsError("pool has no claim streams with positive cost")
    return _checked(lambda widen: _aggregate(model, level, widen), model)


def no_claim_probability(model: CompoundModel) -> float:
    """P(N = 0): exp(-E[N]) for Poisson, (1 + E[N] theta^2)^(-1/theta^2) with the shock."""
    lam = model.expected_count
    shape = shock_shape(model)
    if shape is None:
        return math.exp(-lam)
    return math.exp(-shape * math.log1p(lam / shape))


def _aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The band engine where it applies and passes its checks, else the direct lattice."""
    if no_claim_probability(model) <= BAND_MAX_ATOM:
        result = _band_aggregate(model, level, widen)
        if result is not None:
            return result
    return _direct_aggregate(model, level, widen)


def _direct_aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The whole law on one lattice of span h (severity discretised at h), at h and
    2h, Richardson-extrapolated (module docstring, steps 1-4)."""
    low, span, n = _grid(model, POINTS_PER_WINDOW, PRICING_SHIFT_BUDGET, widen)
    if no_claim_probability(model) >= level:
        # Y = 0 with probability >= level (a handful of enrollees): VaR = 0 and
        # CVaR = E[Y] / (1 - level) exactly (the R-U minimum is at t = 0). A
        # lattice cannot resolve a quantile sitting on the atom at 0.
        law = _lattice_law(model, low, span, n)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return _result(law, level, 0.0, model.mean / (1.0 - level), model, 0.0, n)
    coarse_risk = _lattice_law(model, low, 2.0 * span, n // 2).var_cvar(level)
    while True:
        fine = _lattice_law(model, low, span, n)
        fine_risk = fine.var_cvar(level)
        extrapolated = [f + (f - c) / 3.0 for f, c in zip(fine_risk, coarse_risk)]
        diff = max(abs(f - c) / 3.0 / abs(e) for f, c, e in zip(fine_risk, coarse_risk, extrapolated))
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
    quad /= math.fsum(quad)
    return fine_x, quad, float(quad @ (fine_x * fine_x)), float(fine_p @ (fine_x * fine_x))


def _severity_transform(points: np.ndarray, quad: np.ndarray, span: float, n: int) -> np.ndarray:
    """sum_m q_m exp(-i w_j x_m) at w_j = 2 pi j / (n span), j = 0..n/2 (numpy's
    rfft sign), without an FFT over the severity's own fine grid: x = k span + u
    with k the nearest output cell, exp(-i w u) expanded to TAYLOR_DEGREE in
    w u (|w u| <= pi/2), and the cell sums of q u^d transformed by one batched
    rfft of length n (cells folded mod n)."""
    scaled = points / span
    cells = np.floor(scaled + 0.5)
    offset = scaled - cells                               # in [-1/2, 1/2]
    terms = np.empty((len(points), TAYLOR_DEGREE + 1))
    terms[:, 0] = quad
    for d in range(TAYLOR_DEGREE):
        np.multiply(terms[:, d], offset, out=terms[:, d + 1])
    # Points are sorted, so each output cell's points are one run: sum the runs.
    first = np.flatnonzero(np.diff(cells, prepend=-1.0))
    sums = np.add.reduceat(terms, first, axis=0)
    moments = np.zeros((n, TAYLOR_DEGREE + 1))
    np.add.at(moments, cells[first].astype(np.int64) % n, sums)
    spectra = np.fft.rfft(moments, axis=0)
    z = -2j * np.pi * np.arange(n // 2 + 1) / n            # -i w_j span
    phi = spectra[:, TAYLOR_DEGREE]
    for d in range(TAYLOR_DEGREE - 1, -1, -1):
        phi = spectra[:, d] + phi * z / (d + 1)
    return phi


def _band_law(model: CompoundModel, quad_points, quad, low: float, span: float,
              n: int) -> tuple[np.ndarray, int] | None:
    """Cell masses of Y on cells of width `span` centred at start_index * span + i
    span (i < n), or None when Y's transform is not negligible at the band edge.

    Y's transform is computed at the n/2 + 1 frequencies of the output lattice
    only, times sinc(w span / 2), the transform of a cell: its inverse DFT is the
    exact mass of each cell as long as the transform vanishes beyond pi / span
    (checked against BAND_TOLERANCE), whatever the severity's own resolution."""
    start_index = int(math.floor(low / span))
    phi = _severity_transform(quad_points, quad, span, n)
    phi[0] = 1.0
    lam = model.expected_count
    shape = shock_shape(model)
    if shape is not None:
        transform = np.exp(-shape * _log1p(-(lam / shape) * (phi - 1.0)))
    else:
        transform = np.exp(lam * (phi - 1.0))
    edge = np.abs(transform[n // 4:])
    if not np.all(edge <= BAND_TOLERANCE):
        return None
    transform *= np.sinc(np.arange(n // 2 + 1) / n)
    pmf = np.fft.irfft(transform, n)
    pmf = np.roll(pmf, -(start_index % n))
    np.maximum(pmf, 0.0, out=pmf)
    return pmf, start_index


def _band_aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult | None:
    """VaR/CVaR from exact cell masses on a lattice sized by Y's spread, not by the
    severity (module docstring, "Band engine"); None when it does not apply (the
    caller then uses the direct lattice). Self-checks as for the direct lattice."""
    if _uniform_quadrature_points(model.streams) > MAX_QUADRATURE_POINTS:
        return None
    low, high = _window(model, widen)
    variance = model.variance
    lam = model.expected_count
    points, quad, quad_second, fine_second = _severity_quadrature(model.streams)
    # The window reaches the severity's TAIL_PROBABILITY quantile; the quadrature's
    # last point (the mass beyond it, at its conditional mean) must not wrap around.
    high += float(points.max()) - max(f * s.severity.upper_quantile(TAIL_PROBABILITY)
                                      for s, f in ((s, s.factor) for s in model.streams))
    width = high - low
    if not lam * abs(fine_second - quad_second) <= SEVERITY_VARIANCE_SHARE * variance:
        return None
    n = max(1 << int(math.ceil(math.log2(width / (math.sqrt(variance) / BAND_POINTS_PER_SD) + 2))), 64)
    coarse_risk = None
    while n <= BAND_MAX_POINTS:
        span = width / (n - 2)
        computed = _band_law(model, points, quad, low, span, n)
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
    discretised_variance = lam * quad_second + (model.shock_cv * model.mean) ** 2 + span * span / 12.0
    law = LatticeLaw(start=start, span=span, pmf=pmf, discretised_variance=discretised_variance)
    if law_check_failures(law, model):
        return None
    return _result(law, level, extrapolated[0], extrapolated[1], model, diff, n)


def _result(law: LatticeLaw, level: float, var: float, cvar: float, model: CompoundModel,
            diff: float, points: int) -> AggregateResult:
    mean, variance = model.mean, model.variance
    return AggregateResult(
        law=law, level=level, var=var, cvar=cvar, mean=mean, variance=variance,
        mean_rel_error=abs(law.mean - mean) / mean,
        variance_rel_error=abs(law.variance - law.discretised_variance) / law.discretised_variance,
        resolution_rel_diff=diff, points=points,
        discretisation_variance_share=(law.discretised_variance - variance) / variance,
        mass_error=abs(float(law.pmf.sum()) - 1.0))


def lattice_law(model: CompoundModel) -> LatticeLaw:
    """Y's whole law at the sampling budget, for samplers and reports that need
    the distribution rather than two extrapolated risk figures (self-checks
    enforced as for `aggregate`)."""
    if not model.streams:
        raise NumericsError("pool has no claim streams with positive cost")

    def compute(widen: float) -> LatticeLaw:
        low, span, n = _grid(model, POINTS_PER_WINDOW, SAMPLING_SHIFT_BUDGET, widen)
        law = _lattice_law(model, low, span / 2.0, n * 2)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return law
    return _checked(compute, model)
