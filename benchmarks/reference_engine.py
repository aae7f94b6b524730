"""BENCHMARK BASELINE ONLY: a frozen copy of the aggregate-claims engine as it
was at commit 86b707d (pooling/risk/claims.py, the `aggregate` path), before the
pricing-throughput work of issue 12 item 3.

It is the "old engine" that benchmarks/bench_pricing.py times against the
package's engine in the same run, and that benchmarks/make_pricing_reference.py
used to write the stored reference (benchmarks/results/pricing_reference.json)
which tests/test_pricing_accuracy.py compares the package against. It must
never be imported by the package (`pooling` imports nothing from benchmarks/).

Differences from the original text: ClaimStream / CompoundModel / merge_streams
are not copied (the model dataclasses are the package's: they only carry the
inputs), and `lattice_var_cvar` of pooling/risk/measures.py at 86b707d is
copied below so that later changes to the package cannot move the baseline.
Severity laws (pooling.risk.severity: `tails`, `upper_quantile`) are used as
they are at 86b707d; `reference_commit` in the stored reference says which.
Entry point: `aggregate(model, level)` (and `price(instance, spec, members)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from pooling.errors import NumericsError
from pooling.risk.claims import CompoundModel

REFERENCE_COMMIT = "86b707d"


def lattice_var_cvar(start: float, span: float, pmf: np.ndarray, level: float) -> tuple[float, float]:
    """(VaR, CVaR) at `level` of the spread lattice law (pooling/risk/measures.py at 86b707d)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    cdf = np.cumsum(pmf)
    j = int(np.searchsorted(cdf, level, side="left"))
    j = min(j, len(pmf) - 1)
    below = float(cdf[j - 1]) if j > 0 else 0.0
    mass_j = float(pmf[j])
    centre_j = start + span * j
    fraction = (level - below) / mass_j if mass_j > 0 else 1.0
    fraction = min(max(fraction, 0.0), 1.0)
    var = centre_j - 0.5 * span + span * fraction
    partial_mass = max(float(cdf[j]) - level, 0.0)
    partial = partial_mass * 0.5 * (var + centre_j + 0.5 * span)
    upper = pmf[j + 1:]
    upper_mass = float(upper.sum())
    indices = np.arange(j + 1, len(pmf), dtype=float)
    upper_first = upper_mass * start + span * float(upper @ indices)
    cvar = (partial + upper_first) / (1.0 - level)
    return float(var), float(cvar)


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


def _window(model: CompoundModel, widen: float = 1.0) -> tuple[float, float]:
    """[L, U] holding all but ~TAIL_PROBABILITY of Y's mass; with `widen` > 1
    each side moves out by (widen - 1) / 2 widths (L stays >= 0)."""
    shape = shock_shape(model)
    if shape is not None:
        lo_mult = float(stats.gamma.ppf(TAIL_PROBABILITY, shape, scale=1.0 / shape))
        hi_mult = float(stats.gamma.isf(TAIL_PROBABILITY, shape, scale=1.0 / shape))
    else:
        lo_mult = hi_mult = 1.0
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


def price(instance, spec, members) -> dict:
    """VaR, CVaR, mean and max solvent rate of one pool by this frozen engine,
    with the budget of pooling/economics/pools.py at 86b707d (VaR/CVaR measures)."""
    from pooling.economics.pools import pool_model  # the model's inputs only

    members = frozenset(members)
    counties = [instance.county(cid) for cid in sorted(members)]
    u = spec.solvency.reserve_share
    revenue = math.fsum(c.revenue for c in counties)
    fixed = instance.parameters.admin_fixed_per_fund + math.fsum(c.per_capita_costs for c in counties)
    budget = revenue + u * math.fsum(c.reserves for c in counties) - fixed
    result = aggregate(pool_model(instance, members), spec.solvency.level)
    risk = result.var if spec.solvency.measure == "var" else result.cvar
    return {"var": result.var, "cvar": result.cvar, "mean": result.mean,
            "max_rate": min(spec.rates.max, budget / risk)}
