"""Independent reference implementations for testing the claims engine.

Nothing here imports `pooling`: every formula is written from its textbook
definition with numpy/scipy special functions, so a check against these is a
check against an independent computation, not against the code under test.

Contents
- Count laws (Poisson, negative binomial with Gamma(mean 1, cv theta) mixing),
  truncated where the neglected mass is below COUNT_TAIL.
- Compound sums with exponential severity in closed form (CDF, VaR by root
  finding, CVaR from E[S 1{S > t}]).
- Severity CDF / survival function and moments of lognormal and gamma laws
  given (mean, cv).
- Panjer recursion (direct, no FFT) for the (a, b, 0) class.
- A plain full-range FFT aggregate (own code; severities by local moment matching
  from cell probabilities and partial moments, or by rounding).
- VaR / CVaR of discrete laws and of "spread" lattice laws (each atom spread
  uniformly over its cell), from the definitions.
- A per-admission Monte Carlo sampler of the pool model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

COUNT_TAIL = 1e-17
"""Count mass neglected at each end when summing over the claim count."""


# ----------------------------------------------------------------------------
# Streams (plain tuples, no dependency on pooling.risk.claims)
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Stream:
    """rate: expected admissions at Theta = 1; dist/mean/cv: one admission's cost;
    factor: share of that cost that counts (1 in network, phi out of network)."""

    rate: float
    dist: str
    mean: float
    cv: float
    factor: float = 1.0


def _lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    sigma2 = math.log(1.0 + cv * cv)
    return math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)


def severity_sf(dist: str, mean: float, cv: float, x: np.ndarray) -> np.ndarray:
    """P(X > x) for x >= 0 (lognormal or gamma with the given mean and cv)."""
    x = np.asarray(x, dtype=float)
    out = np.ones_like(x)
    pos = x > 0
    if dist == "lognormal":
        mu, sigma = _lognormal_params(mean, cv)
        out[pos] = special.ndtr(-(np.log(x[pos]) - mu) / sigma)
    elif dist == "gamma":
        shape = 1.0 / (cv * cv)
        out[pos] = special.gammaincc(shape, x[pos] * shape / mean)
    else:
        raise ValueError(dist)
    return out


def severity_isf(dist: str, mean: float, cv: float, q: float) -> float:
    """x with P(X > x) = q."""
    if dist == "lognormal":
        mu, sigma = _lognormal_params(mean, cv)
        return math.exp(mu - sigma * float(special.ndtri(q)))
    shape = 1.0 / (cv * cv)
    return float(special.gammainccinv(shape, q)) * mean / shape


def severity_sample(dist: str, mean: float, cv: float, size: int, rng: np.random.Generator) -> np.ndarray:
    if dist == "lognormal":
        mu, sigma = _lognormal_params(mean, cv)
        return rng.lognormal(mu, sigma, size)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, mean / shape, size)


def stream_moments(streams, theta: float) -> tuple[float, float, float]:
    """(E[N], E[Y], Var Y) of Y = sum over streams of compound sums of f*X, all
    rates scaled by Theta ~ Gamma(mean 1, cv theta), from first principles:
    Var Y = E[Var(Y|Theta)] + Var(E[Y|Theta])
          = sum rate f^2 E[X^2] * E[Theta] + theta^2 (sum rate f m)^2."""
    count = math.fsum(s.rate for s in streams)
    mean = math.fsum(s.rate * s.factor * s.mean for s in streams)
    second = math.fsum(s.rate * s.factor ** 2 * s.mean ** 2 * (1.0 + s.cv ** 2) for s in streams)
    return count, mean, second + theta ** 2 * mean ** 2


# ----------------------------------------------------------------------------
# Count laws
# ----------------------------------------------------------------------------

def count_pmf(expected: float, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, P(N = n)) for N | Theta ~ Poisson(expected * Theta), Theta ~ Gamma(1, cv theta).

    theta = 0: Poisson. theta > 0: negative binomial with shape r = 1/theta^2 and
    mean `expected`, i.e. scipy's nbinom(r, p) with p = r / (r + expected).
    Truncated to the central range holding all but 2*COUNT_TAIL of the mass."""
    if theta > 0:
        r = 1.0 / theta ** 2
        law = stats.nbinom(r, r / (r + expected))
    else:
        law = stats.poisson(expected)
    sd = math.sqrt(expected + (theta * expected) ** 2)
    lo = int(max(math.floor(expected - 15.0 * sd - 30.0), 0))
    hi = int(math.ceil(expected + 30.0 * sd + 60.0))
    n = np.arange(lo, hi + 1)
    left = float(law.cdf(lo - 1)) if lo > 0 else 0.0
    right = float(law.sf(hi))
    if left > COUNT_TAIL or right > COUNT_TAIL:
        raise AssertionError(f"count range too narrow: {left:.2e}, {right:.2e}")
    return n, law.pmf(n)


# ----------------------------------------------------------------------------
# Compound sums with exponential severity: closed forms
# ----------------------------------------------------------------------------

class ExpCompound:
    """S = X_1 + ... + X_N, X_i ~ Exp(mean `scale`), N the mixed Poisson count.

    Uses GammaCDF(x; shape n, scale) = P(Poisson(x/scale) >= n): the regularised
    incomplete gamma is 1 (resp. 0) to double precision for n more than
    BAND sqrt(x/scale) below (resp. above) x/scale, so only a band of count
    values needs special-function calls; the rest is summed from prefix and
    suffix sums of the count pmf."""

    BAND = 40.0

    def __init__(self, expected: float, theta: float, scale: float):
        self.n, self.pn = count_pmf(expected, theta)
        self.scale = scale
        self.prefix = np.concatenate([[0.0], np.cumsum(self.pn)])           # P(N < n[i])
        npn = self.n * self.pn
        self.suffix = np.concatenate([np.cumsum(npn[::-1])[::-1], [0.0]])    # E[N; N >= n[i]]

    def _band(self, y: float) -> tuple[int, int]:
        half = self.BAND * math.sqrt(y) + 50.0
        lo = int(np.searchsorted(self.n, y - half))
        hi = int(np.searchsorted(self.n, y + half, side="right"))
        return lo, hi

    def cdf(self, x: float) -> float:
        """P(S <= x) = P(N = 0) + sum_{n >= 1} P(N = n) GammaCDF(x; n, scale), x >= 0."""
        y = x / self.scale
        lo, hi = self._band(y)
        n, pn = self.n[lo:hi], self.pn[lo:hi]
        terms = np.where(n > 0, special.gammainc(np.maximum(n, 1), y), 1.0)
        return float(self.prefix[lo]) + math.fsum(pn * terms)

    def tail_first_moment(self, t: float) -> float:
        """E[S 1{S > t}] = sum_n P(N = n) n scale GammaSF(t; n + 1, scale),
        using x gamma_pdf(x; n, s) = n s gamma_pdf(x; n + 1, s)."""
        y = t / self.scale
        lo, hi = self._band(y)
        n, pn = self.n[lo:hi], self.pn[lo:hi]
        return self.scale * (math.fsum(pn * n * special.gammaincc(n + 1.0, y)) + float(self.suffix[hi]))

    def var_cvar(self, level: float) -> tuple[float, float]:
        """Exact VaR by Brent root finding on the CDF (continuous above the atom at 0);
        CVaR = E[S 1{S > VaR}] / (1 - level), the Rockafellar-Uryasev tail mean when
        F is continuous at VaR."""
        if float(self.pn[self.n == 0].sum()) >= level:
            raise ValueError("level inside the atom at 0")
        hi = self.scale * (self.n[-1] + 50.0 * math.sqrt(self.n[-1]) + 50.0)
        var = optimize.brentq(lambda x: self.cdf(x) - level, 0.0, hi,
                              xtol=1e-14 * hi, rtol=1e-15, maxiter=500)
        return var, self.tail_first_moment(var) / (1.0 - level)


# ----------------------------------------------------------------------------
# Discretisation by rounding, Panjer recursion and a plain FFT aggregate
# ----------------------------------------------------------------------------

def rounded_severity(streams, span: float, points: int) -> np.ndarray:
    """Mixture severity of the streams (weights = rates, cost f*X) discretised by
    rounding: mass at j*span is P((j - 1/2) span < fX <= (j + 1/2) span).
    (Deliberately not the engine's local moment matching.) Mass above the last
    cell is dropped; callers choose `points` so that it is negligible."""
    edges = span * (np.arange(points + 1) - 0.5)
    edges[0] = 0.0
    total = math.fsum(s.rate for s in streams)
    sf = np.zeros(points + 1)
    for s in streams:
        sf += (s.rate / total) * severity_sf(s.dist, s.mean, s.cv, edges / s.factor)
    sf[0] = 1.0
    return sf[:-1] - sf[1:]


def panjer(sev: np.ndarray, expected: float, theta: float, points: int) -> np.ndarray:
    """Aggregate pmf on 0..points-1 by Panjer recursion (direct, O(points * len(sev))).

    (a, b, 0) class: Poisson(l): a = 0, b = l, g0 = exp(l (f0 - 1)).
    NB(r, beta = l theta^2): a = beta/(1+beta), b = (r-1) beta/(1+beta),
    g0 = (1 - beta (f0 - 1))^(-r).
    g_s = sum_{j=1}^{s} (a + b j / s) f_j g_{s-j} / (1 - a f0)."""
    f = np.asarray(sev, dtype=float)
    f0 = f[0]
    if theta > 0:
        r = 1.0 / theta ** 2
        beta = expected * theta ** 2
        a, b = beta / (1.0 + beta), (r - 1.0) * beta / (1.0 + beta)
        g0 = math.exp(-r * math.log1p(-beta * (f0 - 1.0)))
    else:
        a, b = 0.0, expected
        g0 = math.exp(expected * (f0 - 1.0))
    m = len(f)
    # Reversed, contiguous copies: frev[-k:] = (f_k, ..., f_1) pairs with g[s-k:s].
    frev = np.ascontiguousarray(f[1:][::-1])
    jfrev = np.ascontiguousarray((np.arange(1, m) * f[1:])[::-1])
    g = np.zeros(points)
    g[0] = g0
    denom = 1.0 - a * f0
    for s in range(1, points):
        k = min(s, m - 1)
        window = g[s - k:s]
        value = (a * np.dot(frev[m - 1 - k:], window) + (b / s) * np.dot(jfrev[m - 1 - k:], window)) / denom
        # Flush values below 1e-280 to zero: subnormal floats make every later
        # dot product ~100x slower, and such masses are far below any test's reach.
        g[s] = value if value > 1e-280 else 0.0
    return g


def severity_tail_mean(dist: str, mean: float, cv: float, x: np.ndarray) -> np.ndarray:
    """E[X 1{X > x}] for x >= 0, from the first-moment distribution:
    lognormal: m Phi(sigma - z), z = (ln x - mu)/sigma; gamma(a, s): m Q(a + 1, x/s).
    Both are small numbers computed directly in the tail (no cancellation)."""
    x = np.asarray(x, dtype=float)
    out = np.full_like(x, mean)
    pos = x > 0
    if dist == "lognormal":
        mu, sigma = _lognormal_params(mean, cv)
        out[pos] = mean * special.ndtr(sigma - (np.log(x[pos]) - mu) / sigma)
    else:
        shape = 1.0 / (cv * cv)
        out[pos] = mean * special.gammaincc(shape + 1.0, x[pos] * shape / mean)
    return out


def moment_matched_severity(streams, span: float, points: int) -> np.ndarray:
    """Mixture severity by local first-moment matching (Gerber), computed cell by
    cell from the mass P_j and first moment M_j of fX in [j h, (j+1) h]:
    the cell's mass is split between its two end points so that its mean is kept,
    ((j+1) h P_j - M_j)/h to j and (M_j - j h P_j)/h to j + 1. Cell quantities are
    differences of tail functions (small numbers in the tail), so far-tail masses
    keep their relative accuracy. Mass beyond the last cell is dropped."""
    total = math.fsum(s.rate for s in streams)
    edges = span * np.arange(points, dtype=float)
    out = np.zeros(points)
    for s in streams:
        w = s.rate / total
        sf = severity_sf(s.dist, s.mean, s.cv, edges / s.factor)
        tm = s.factor * severity_tail_mean(s.dist, s.mean, s.cv, edges / s.factor)
        p = sf[:-1] - sf[1:]
        mom = tm[:-1] - tm[1:]
        offset = mom - edges[:-1] * p            # E[fX - j h; cell j], in [0, h P_j]
        out[:-1] += w * (p - offset / span)
        out[1:] += w * (offset / span)
    return out


def fft_aggregate(streams, theta: float, span: float, points: int, method: str = "moments") -> np.ndarray:
    """Aggregate pmf on 0..points-1 (span `span`) by a plain FFT of the count's PGF
    applied to the discretised severity (`method` "moments": local moment
    matching as above; "rounding"), lattice starting at 0 (no window shifting);
    `points * span` must exceed the support of the aggregate (aliasing wraps
    the mass above it around)."""
    if method == "moments":
        sev = moment_matched_severity(streams, span, points)
    else:
        sev = rounded_severity(streams, span, points)
    phi = np.fft.rfft(sev)
    expected = math.fsum(s.rate for s in streams)
    if theta > 0:
        r = 1.0 / theta ** 2
        transform = (1.0 - expected * theta ** 2 * (phi - 1.0)) ** (-r)
    else:
        transform = np.exp(expected * (phi - 1.0))
    return np.fft.irfft(transform, points)


def aggregate_upper_bound(streams, theta: float, tail: float = 1e-13) -> float:
    """A generous upper end of the aggregate's support (for sizing reference lattices):
    Theta's upper `tail` quantile times the mean, plus 25 conditional sds, plus the
    largest severity `tail` quantile."""
    _count, mean, _ = stream_moments(streams, 0.0)
    second = math.fsum(s.rate * s.factor ** 2 * s.mean ** 2 * (1 + s.cv ** 2) for s in streams)
    hi = 1.0
    if theta > 0:
        shape = 1.0 / theta ** 2
        hi = float(stats.gamma.isf(tail, shape, scale=1.0 / shape))
    sev = max(s.factor * severity_isf(s.dist, s.mean, s.cv, tail) for s in streams)
    return hi * mean + 25.0 * math.sqrt(hi * second) + sev


# ----------------------------------------------------------------------------
# Risk measures from their definitions
# ----------------------------------------------------------------------------

def discrete_var(values: np.ndarray, probs: np.ndarray, level: float) -> float:
    """Smallest x with P(X <= x) >= level, for atoms `values` (any order)."""
    order = np.argsort(values)
    v, p = np.asarray(values, float)[order], np.asarray(probs, float)[order]
    cdf = np.cumsum(p)
    idx = int(np.nonzero(cdf >= level)[0][0])
    return float(v[idx])


def ru_objective(values, probs, t, level):
    """t + E[(X - t)+] / (1 - level) for a discrete law."""
    return t + float(np.dot(probs, np.maximum(np.asarray(values) - t, 0.0))) / (1.0 - level)


def discrete_cvar_bruteforce(values: np.ndarray, probs: np.ndarray, level: float) -> float:
    """min_t {t + E[(X - t)+]/(1 - level)} for a discrete law: the objective is
    convex and piecewise linear with kinks at the atoms, so its minimum over the
    reals is its minimum over the atoms."""
    return min(ru_objective(values, probs, t, level) for t in np.unique(values))


def spread_cdf(start: float, span: float, pmf: np.ndarray, x: np.ndarray) -> np.ndarray:
    """CDF of the law with mass pmf[i] uniform on [start + span (i - 1/2), start + span (i + 1/2)]."""
    edges = start + span * (np.arange(len(pmf) + 1) - 0.5)
    cum = np.concatenate([[0.0], np.cumsum(pmf)])
    return np.interp(x, edges, cum)


def spread_excess(start: float, span: float, pmf: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[(X - t)+] of the spread law, cell by cell in closed form:
    a uniform cell [lo, hi] of mass p contributes p (mid - t) if t <= lo,
    p (hi - t)^2 / (2 span) if lo < t < hi, and 0 if t >= hi."""
    t = np.atleast_1d(np.asarray(t, dtype=float))
    pmf = np.asarray(pmf, dtype=float)
    centres = start + span * np.arange(len(pmf))
    lo, hi = centres - 0.5 * span, centres + 0.5 * span
    out = np.empty(len(t))
    step = max(1, 4_000_000 // max(len(pmf), 1))
    for k in range(0, len(t), step):
        tk = t[k:k + step, None]
        full = pmf * np.where(lo >= tk, centres - tk, 0.0)
        inside = pmf * np.where((lo < tk) & (hi > tk), (hi - tk) ** 2 / (2.0 * span), 0.0)
        out[k:k + step] = full.sum(axis=1) + inside.sum(axis=1)
    return out


def spread_var_cvar(start: float, span: float, pmf: np.ndarray, level: float) -> tuple[float, float]:
    """VaR (the level-quantile: the CDF is piecewise linear through the cell edges,
    inverted on the first cell where it reaches `level`) and CVaR = R-U objective
    at t = VaR (VaR is a minimiser), of the spread law."""
    cum = np.cumsum(pmf)
    j = int(np.searchsorted(cum, level, side="left"))
    below = cum[j - 1] if j > 0 else 0.0
    var = start + span * (j - 0.5) + span * (level - below) / pmf[j]
    # Only cells at or above j contribute to E[(X - VaR)+].
    tail = spread_excess(start + span * j, span, pmf[j:], np.array([var]))[0]
    return float(var), float(var + tail / (1.0 - level))


# ----------------------------------------------------------------------------
# Per-admission Monte Carlo
# ----------------------------------------------------------------------------

def simulate_years(streams, theta: float, years: int, rng: np.random.Generator,
                   chunk: int = 50_000) -> np.ndarray:
    """Yearly totals Y: draw Theta, the Poisson count N ~ Poisson(sum rate * Theta),
    assign each admission to a stream with probability rate / sum rate
    (multinomial), draw each admission's cost and add f * cost to its year."""
    rates = np.array([s.rate for s in streams])
    total = float(rates.sum())
    probs = rates / total
    out = np.empty(years)
    for lo in range(0, years, chunk):
        m = min(chunk, years - lo)
        mult = (rng.gamma(1.0 / theta ** 2, theta ** 2, m) if theta > 0 else np.ones(m))
        counts = rng.multinomial(rng.poisson(total * mult), probs)
        year_total = np.zeros(m)
        for k, s in enumerate(streams):
            c = counts[:, k]
            costs = severity_sample(s.dist, s.mean, s.cv, int(c.sum()), rng)
            year_total += s.factor * np.bincount(np.repeat(np.arange(m), c), weights=costs, minlength=m)
        out[lo:lo + m] = year_total
    return out


# ----------------------------------------------------------------------------
# VaR / CVaR from the law below a point (heavy tails)
# ----------------------------------------------------------------------------

def truncated_var_cvar(streams, theta: float, span: float, top: float, level: float) -> tuple[float, float]:
    """VaR and CVaR at `level` from Y's law below `top` alone, for tails too heavy
    for any lattice to reach their far quantiles (lognormal cv 20).

    Panjer's recursion for P(Y = s h) uses only the severity's masses at h ..
    s h, so a severity cut at `top` gives Y's law on [0, top) exactly (for the
    rounded severity), whatever lies beyond. VaR is read from that CDF (it must
    lie below `top`), and CVaR = VaR + E[(Y - VaR)+] / (1 - level) with
    E[(Y - v)+] = E[Y] - v + E[(v - Y)+]: E[Y] of the rounded model in closed
    form (the cells' masses, and the mass beyond the last cell at its
    conditional mean), E[(v - Y)+] from the law below v. Each atom is spread
    uniformly over its cell, as in `spread_var_cvar`."""
    points = int(math.ceil(top / span))
    sev = rounded_severity(streams, span, points)
    count = math.fsum(s.rate for s in streams)
    pmf = panjer(sev, count, theta, points)
    cum = np.cumsum(pmf)
    if not cum[-1] > level:
        raise AssertionError(f"top {top} is below the {level} quantile")
    j = int(np.searchsorted(cum, level, side="left"))
    below = cum[j - 1] if j > 0 else 0.0
    var = span * (j - 0.5) + span * (level - below) / pmf[j]
    edge = span * (points - 0.5)
    beyond = math.fsum(s.rate / count * s.factor * float(severity_tail_mean(s.dist, s.mean, s.cv,
                                                                                np.array([edge / s.factor]))[0])
                       for s in streams)
    mean = count * (math.fsum(span * np.arange(points) * sev) + beyond)
    centres = span * np.arange(j + 1)
    lo, hi = centres - 0.5 * span, centres + 0.5 * span
    shortfall = np.where(hi <= var, var - centres, np.where(lo < var, (var - lo) ** 2 / (2.0 * span), 0.0))
    excess = mean - var + math.fsum(pmf[:j + 1] * shortfall)
    return float(var), float(var + excess / (1.0 - level))


def claim_by_claim_costs(instance, years: int, scenarios: int, seed: int, admissions_trend: float = 0.0,
                         cost_trend: float = 0.0) -> np.ndarray:
    """Y_i,t per (member sorted by id, year, path), drawn claim by claim:
    each year a national, a prefecture and a county gamma shock (the
    instance's weights and cvs), Poisson admissions, lognormal claims; year t
    (1-based) with admissions x (1 + admissions_trend)^t and costs x (1 +
    cost_trend)^t. Independent of the engine and its samplers."""
    rng = np.random.default_rng(seed)
    params = instance.parameters
    w_p, cv_p = params.prefecture_shock.weight, params.prefecture_shock.cv
    w_c, cv_c = params.county_shock.weight, params.county_shock.cv
    w_n, cv_n = 1.0 - w_p - w_c, params.frequency_shock_cv

    def gamma(cv, size):
        return rng.gamma(1.0 / cv ** 2, cv ** 2, size=size)
    counties = sorted(instance.counties, key=lambda c: c.id)
    out = np.zeros((len(counties), years, scenarios))
    for t in range(years):
        national = gamma(cv_n, scenarios)
        prefectures = {p: gamma(cv_p, scenarios) for p in sorted({c.prefecture for c in counties})}
        for i, c in enumerate(counties):
            multiplier = w_n * national + w_p * prefectures[c.prefecture] + w_c * gamma(cv_c, scenarios)
            counts = rng.poisson(c.enrollees * c.admission_rate * (1 + admissions_trend) ** (t + 1) * multiplier)
            sigma2 = math.log1p(c.severity.cv ** 2)
            mean = c.severity.expected_value * (1 + cost_trend) ** (t + 1)
            claims = rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), counts.sum())
            out[i, t] = np.bincount(np.repeat(np.arange(scenarios), counts), weights=claims, minlength=scenarios)
    return out
