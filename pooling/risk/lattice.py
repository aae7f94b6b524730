"""Y's whole law on one lattice of span h (the direct lattice, used by
pooling.risk.direct and by `lattice_law` for the samplers).

Span. Mean-preserving (local moment matching) discretisation keeps every
claim's mean exact and adds at most h^2/4 to its variance, so h can grow
with the pool: resolution is needed across the aggregate's spread, not
inside one admission. h is the smaller of width / POINTS_PER_WINDOW and
the span whose added variance shifts upper quantiles by at most a budget
share of the mean (PRICING_SHIFT_BUDGET for VaR/CVaR, which are then
extrapolated; SAMPLING_SHIFT_BUDGET for whole laws used by samplers).

Transform. FFT of the folded severity lattice, the count's PGF applied
pointwise (summed over the parts' exponents), the inverse FFT unrolled from
the window's start (pooling.risk.windows). A large atom P(N = 0) is taken out
of the transform and added back (ATOM_SPLIT); in huge pools phi - 1 is summed
directly at low frequencies (`_precise_phi_minus_one`).
"""

from __future__ import annotations

import math

import numpy as np

from pooling.errors import NumericsError
from pooling.risk.compound import (
    ClaimStream,
    CompoundModel,
    LatticeLaw,
    _count_exponent,
    _expm1,
    describe_model,
    no_claim_probability,
)
from pooling.risk.severity import Severity
from pooling.risk.windows import _bounded_moments, _claim_reach, _largest_claim_quantile, _reach, _window

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
MAX_POINTS = 2 ** 23
"""Largest FFT (64 MiB of float64 per array); beyond it the computation stops."""
ATOM_SPLIT = 0.5
"""When P(N = 0) is at least this (E[N] below ~0.7), the atom at 0 is taken out
of the transform and added back after the FFT: otherwise its FFT round-off
(~1e-16 per point) swamps the claims' mass (~E[N] per point's share) and
clamping it to 0 biases the mean (2.6e-4 at E[N] = 2e-8). Above 0.5 the
negative-binomial form keeps |1 + z| >= 0.06 for theta <= 2 (see _log1p)."""
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


def _severity_lattice(streams, span: float, n: int, cap: float | None = None,
                      reach: float | None = None) -> tuple[np.ndarray, float]:
    """`_severity_cells` without its extent."""
    folded, second, _extent = _severity_cells(streams, span, n, cap, reach)
    return folded, second


def _severity_cells(streams, span: float, n: int, cap: float | None = None,
                    reach: float | None = None) -> tuple[np.ndarray, float, int]:
    """Mean-preserving (local moment matching) mixture severity on span h,
    folded mod n, and its second moment (before folding): it reaches the
    streams' largest reach (`_capped_top_index`). With `cap` the
    lattice stops just above min(cap, that reach) and
    the mass beyond sits on its last point, its mean beyond that point left
    to `_excess_beyond` (`claim_cap`).

    The mass of X in each cell [x_j, x_j+1] is split between its two ends so
    that the cell's mean is kept: (x_j+1 P_j - M_j)/h to x_j and
    (M_j - x_j P_j)/h to x_j+1, with P_j the cell's probability and M_j its
    partial first moment, both from differences of upper tails. (Second
    differences of E[min(X, x)] are equivalent but lose all precision at fine
    spans: their rounding error, ~eps E[X] / h per point, swamps the far tail.)
    The mass above the last point (below 1e-12) is put at its conditional mean.
    Also returned: the extent, min(n, cells used), beyond which the folded
    lattice is 0.0.
    """
    rate = math.fsum(s.rate for s in streams)
    m = _capped_top_index(streams, span, cap, reach)
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
    return np.bincount(np.arange(m + 1) % n, weights=probs, minlength=n), second, min(n, m + 1)


def _capped_top_index(streams, span: float, cap: float | None, reach: float | None = None) -> int:
    """Index of the severity lattice's last cell end: two cells above the
    streams' largest reach (`_reach`, or `reach` when given: a stream
    discretised alone for a model with parts reaches as far as in its parts)
    or, with `cap`, above the cap if lower."""
    top = _reach(streams) if reach is None else reach
    if cap is not None:
        top = min(top, cap)
    return int(math.ceil(top / span)) + 2


def _excess_beyond(streams, span: float, cap: float, reach: float | None = None) -> float:
    """E[(fX - e)+] of the streams' mixture severity, e the last point of its
    lattice capped at `cap`: the mean the capped lattice leaves out (its mass
    beyond e sits at e)."""
    edge = span * _capped_top_index(streams, span, cap, reach)
    rate = math.fsum(s.rate for s in streams)
    excess = []
    for s in streams:
        surv, surv1 = s.severity.tails(np.array([edge / s.factor]))
        excess.append(s.rate / rate * max(0.0, s.factor * s.severity.expected_value * float(surv1[0])
                                          - edge * float(surv[0])))
    return math.fsum(excess)


def _precise_phi_minus_one(phi: np.ndarray, sev: np.ndarray, n: int) -> np.ndarray | None:
    """phi - 1 with its smallest entries summed directly, or None when the
    subtraction is exact enough. The FFT gives phi to ~1e-15 absolute, so
    phi - 1 loses its relative precision where it is small (the lowest
    frequencies), and a count of E[N] admissions multiplies that loss: at 1e9
    admissions with a shock cv of 2 it put ~1e-13 of noise in every cell, whose
    clamped positive half moved the law's mean by 1e-5. Where |phi - 1| <
    PRECISE_PHI_BELOW, phi_j - 1 = -sum_x p_x (2 sin^2(pi j x / n) + i sin(2 pi j x / n))
    over the severity lattice's cells, in chunks (at most PRECISE_PHI_WORK terms).

    When that is more work (a lattice of 7e5 cells: a heavy stream of one
    admission beside 5e6 narrow ones), the sum runs over the first cells only,
    as many as the work allows, and the far cells' share is their FFT minus
    their mass t, sum_far p_x (e^(-i w x) - 1), whose round-off is ~1e-15 t,
    not 1e-15 (the plain subtraction's noise, times E[N] = 5e6, had put 3e-9 of
    mass over the window's empty cells and moved the variance by 6e-3)."""
    step = phi - 1.0
    low = np.flatnonzero(np.abs(step) < PRECISE_PHI_BELOW)
    low = low[low > 0]
    cells = np.flatnonzero(sev)
    if not low.size:
        return None
    far_step = None
    if low.size * cells.size > PRECISE_PHI_WORK:
        head = PRECISE_PHI_WORK // low.size
        if head == 0:
            return None
        far = sev.copy()
        far[cells[:head]] = 0.0
        far_step = np.fft.rfft(far)[low] - math.fsum(far[cells[head:]].tolist())
        cells = cells[:head]
    weights = sev[cells]
    chunk = max(1, PRECISE_PHI_WORK // (64 * max(cells.size, 1)))
    for start in range(0, low.size, chunk):
        freqs = low[start:start + chunk]
        angle = (np.pi / n) * np.outer(freqs, cells.astype(float))
        half = np.sin(angle)
        step[freqs] = -(2.0 * (half * half) @ weights) - 1j * (np.sin(2.0 * angle) @ weights)
    if far_step is not None:
        step[low] += far_step
    return step


def _normalised_severity_lattice(streams, span: float, n: int, cap: float | None = None,
                                 reach: float | None = None) -> tuple[np.ndarray, float, float]:
    """`_severity_lattice` scaled to mass exactly 1, and with `cap` the mean it
    leaves out (`_excess_beyond`; else 0). Rounding leaves its mass 1 +- ~1e-16
    per cell, and the compound multiplies that miss by E[N] (2e-8 at 1.6e8
    admissions); a severity truly off would still fail the mean check."""
    sev, sev_second, excess, _extent = _normalised_severity_cells(streams, span, n, cap, reach)
    return sev, sev_second, excess


def _normalised_severity_cells(streams, span: float, n: int, cap: float | None = None,
                               reach: float | None = None) -> tuple[np.ndarray, float, float, int]:
    """`_normalised_severity_lattice` and its extent (`_severity_cells`)."""
    sev, sev_second, extent = _severity_cells(streams, span, n, cap, reach)
    sev_mass = float(sev.sum())
    excess = 0.0 if cap is None else _excess_beyond(streams, span, cap, reach)
    return sev / sev_mass, sev_second / sev_mass, excess, extent


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
    lattices: dict[tuple[Severity, float], tuple[np.ndarray, float, float, int]] = {}
    reaches: dict[tuple[Severity, float], float] = {}     # each component as far as in any of its parts
    for part in components:
        for s in part.streams:
            key = (s.severity, s.factor)
            reaches[key] = max(reaches.get(key, 0.0), _claim_reach(s, part.expected_count))
    # Each part's mixture is summed over the cells its streams' lattices reach
    # (their extent): beyond it every term is 0.0 and so is the sum, the same
    # bits as summing whole lattices (a pool's claims reach ~1e3 of 5e5 cells).
    scratch = np.empty(n)
    out = []
    for part in components:
        lam = part.expected_count
        sev = np.zeros(n)
        second, excess = [], []
        for s in part.streams:
            key = (s.severity, s.factor)
            if key not in lattices:
                lattices[key] = _normalised_severity_cells((ClaimStream(1.0, *key),), span, n, cap,
                                                           reaches[key])
            lattice, lattice_second, lattice_excess, extent = lattices[key]
            sev[:extent] += np.multiply(lattice[:extent], s.rate / lam, out=scratch[:extent])
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
    the lattice exceeds min(cap, the largest claim reach, `_reach`) + 3 cells
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
