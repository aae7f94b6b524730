"""The band engine (issue 12: pricing throughput): VaR and CVaR of pools of
more than ~37 expected admissions from exact cell masses on a lattice sized by
Y's spread, not by the severity.

The direct lattice (pooling.risk.direct) puts the whole law on one lattice
whose span h also discretises the severity, so h must stay near a severity
mean while the window spans Theta's 1e-12 range (+-20% of E[Y] at theta
0.03): 2^16-2^17 points and three FFT laws a pool (25-100 ms). But Y's
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
   halved while it is not met. The self-checks are those of the direct lattice
   (pooling.risk.law_checks, with Sheppard's H^2 / 12 in the closed-form
   variance). A pool the band engine cannot price within BAND_MAX_POINTS cells,
   or whose law fails a check, is priced by the direct lattice (which may still
   raise NumericsError).
Against a converged lattice its prices are within ~1e-5; against the old
engine (frozen in benchmarks/reference_engine.py) within 1e-4 except where the
old one is itself off (tests/test_pricing_accuracy.py, benchmarks/bench_pricing.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pooling.risk.compound import (
    AggregateResult,
    ClaimStream,
    CompoundModel,
    LatticeLaw,
    _count_exponent,
    _log1p,
    shock_shape,
)
from pooling.risk.law_checks import RESOLUTION_TOLERANCE, _result, law_check_failures
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.severity import Severity
from pooling.risk.windows import TAIL_PROBABILITY, _window

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
    return _mixed_exponent(severity, spectra)


def _mixed_exponent(severity: _BandSeverity, spectra: np.ndarray) -> np.ndarray:
    """The parts' count exponents summed, from the components' severity
    transforms `spectra` (count x frequencies): each part's severity transform
    is its mixture of the components' (risk.scaled reuses spectra across a
    pool's search and calls this too)."""
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
    severity (module docstring); None when it does not apply (the
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
