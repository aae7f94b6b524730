"""What a benefit schedule pays for one admission, as a severity the aggregate
engine prices unchanged (issue 25 item 3; docs/model.md §Benefit schedules).

The fund pays r l min(max(fX - d, 0), c) for an admission of list cost X
whose eligible cost is fX (f = 1 in network, phi out of network, the price
factor under a contract), deductible d, cap c (None: none) and level factor
l. That paid amount has an atom at 0 (admissions below the deductible) and
one at the cap. The atom at 0 is not put on the lattice: a claim of 0 changes
nothing but the count, so the stream is *thinned* instead, its expected count
multiplied by P(fX > d), and its severity is the excess law given a claim,

    Z = min(X - d', c') given X > d',   d' = d / f, c' = c / f,

paid at factor f l (l min(fX - d, c) = f l min(X - d', c')). Thinning is exact
for every count model here: a Poisson count with any rate multiplier Theta,
thinned with a probability independent of Theta, is Poisson with the
multiplier kept, so each shock part keeps its shock. It is also cheaper than
the atom: P(N = 0) is then the true P(Y = 0), which the engines use to choose
and split their lattices.

`ExcessSeverity` is Z's law with the interface of `risk.severity.Severity`
that the engines use (expected_value, second_moment, tails, upper_quantile,
limited_mean, limited_second_moment, cdf, quantile, sample, cv, tail_index,
sort_key). Its closed forms are built from the base law's upper tails, so they
keep their relative precision far out: with S(y) = P(X > y), the stop-loss
transforms
    L1(y) = E[(X - y)+]   = E[X; X > y] - y S(y)
    L2(y) = E[(X - y)+^2] = E[X^2; X > y] - 2 y E[X; X > y] + y^2 S(y)
give, for W = (X - d')+ and 0 <= x <= c',
    E[min(W, x)]   = L1(d') - L1(d' + x)
    E[min(W, x)^2] = L2(d') - L2(d' + x) - 2 x L1(d' + x)
    E[min(W, c'); W > x] = L1(d' + x) - L1(d' + c') + x S(d' + x)
each divided by S(d') for the law given X > d'. The atom at the cap, of mass
S(d' + c') / S(d'), is where the lattices' mean-preserving discretisation
splits it: the mass and first moment of each cell come from these tails, so
the lattice mean stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from pooling.risk.compound import ClaimStream
from pooling.risk.severity import Severity, _lognormal_params, _output


def _isf(base: Severity, t: np.ndarray) -> np.ndarray:
    """x with P(X > x) = t, vectorised (Severity.upper_quantile's closed forms)."""
    t = np.asarray(t, dtype=float)
    if base.dist == "lognormal":
        mu, sigma = _lognormal_params(base.mean, base.cv)
        return np.exp(mu - sigma * special.ndtri(t))
    if base.dist == "gamma":
        shape = 1.0 / base.cv ** 2
        return special.gammainccinv(shape, t) * base.mean / shape
    return base._spliced_isf(t)


@dataclass(frozen=True)
class ExcessSeverity:
    """Z = min(X - deductible, cap) given X > deductible, X of law `base`
    (module docstring); cap None: no cap. Both in the units of X."""

    base: Severity
    deductible: float
    cap: float | None = None

    def __post_init__(self):
        if not (math.isfinite(self.deductible) and self.deductible >= 0.0):
            raise ValueError(f"deductible must be finite and >= 0, got {self.deductible!r}")
        if self.cap is not None and not (math.isfinite(self.cap) and self.cap > 0.0):
            raise ValueError(f"cap must be finite and > 0 (None for no cap), got {self.cap!r}")
        if not self.claim_probability > 0.0:
            raise ValueError(f"P(X > {self.deductible!r}) is 0: no admission reaches the deductible "
                             f"(thin the stream to nothing instead)")

    # -- the base law's upper tails --------------------------------------------

    def _tails(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S(y), L1(y), L2(y)) of the base law at the points y >= 0 (inf allowed: 0, 0, 0)."""
        y = np.asarray(y, dtype=float)
        finite = np.isfinite(y)
        surv, surv1 = self.base.tails(np.where(finite, y, 0.0))
        first = self.base.expected_value * surv1            # E[X; X > y]
        second = self.base.upper_second_moment(np.where(finite, y, 0.0))
        yf = np.where(finite, y, 0.0)
        l1 = np.maximum(first - yf * surv, 0.0)
        l2 = np.maximum(second - 2.0 * yf * first + yf * yf * surv, 0.0)
        zero = ~finite
        return (np.where(zero, 0.0, surv), np.where(zero, 0.0, l1), np.where(zero, 0.0, l2))

    @cached_property
    def _top(self) -> float:
        """d' + c' (inf without a cap)."""
        return math.inf if self.cap is None else self.deductible + self.cap

    @cached_property
    def _at_deductible(self) -> tuple[float, float, float]:
        s, l1, l2 = self._tails(np.array([self.deductible]))
        return float(s[0]), float(l1[0]), float(l2[0])

    @cached_property
    def _at_top(self) -> tuple[float, float, float]:
        s, l1, l2 = self._tails(np.array([self._top]))
        return float(s[0]), float(l1[0]), float(l2[0])

    @cached_property
    def claim_probability(self) -> float:
        """P(X > deductible): the share of admissions that give a claim."""
        if self.deductible == 0.0:
            return 1.0
        return float(self.base.tails(np.array([self.deductible]))[0][0])

    @cached_property
    def cap_probability(self) -> float:
        """P(Z = cap) = S(d' + c') / S(d'): the atom at the cap (0 without one)."""
        return 0.0 if self.cap is None else self._at_top[0] / self.claim_probability

    # -- moments ------------------------------------------------------------------

    @cached_property
    def expected_value(self) -> float:
        """E[Z] = (L1(d') - L1(d' + c')) / S(d')."""
        return (self._at_deductible[1] - self._at_top[1]) / self.claim_probability

    @cached_property
    def second_moment(self) -> float:
        """E[Z^2] = (L2(d') - L2(d' + c') - 2 c' L1(d' + c')) / S(d')."""
        extra = 0.0 if self.cap is None else 2.0 * self.cap * self._at_top[1]
        return (self._at_deductible[2] - self._at_top[2] - extra) / self.claim_probability

    @property
    def mean(self) -> float:
        return self.expected_value

    @cached_property
    def cv(self) -> float:
        m = self.expected_value
        return math.sqrt(max(self.second_moment - m * m, 0.0)) / m

    @property
    def tail_index(self) -> float | None:
        """The base's Pareto index without a cap (the excess keeps its tail); None with one."""
        return self.base.tail_index if self.cap is None else None

    @property
    def sort_key(self) -> tuple:
        return ("excess", *self.base.sort_key, self.deductible, -1.0 if self.cap is None else self.cap)

    # -- distribution functions -------------------------------------------------

    def tails(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(Z > x), E[Z; Z > x] / E[Z]) for x >= 0 (1, 1 at x <= 0; 0, 0 at x >= cap)."""
        x = np.asarray(x, dtype=float)
        surv = np.ones_like(x)
        surv1 = np.ones_like(x)
        inside = (x > 0) & (x < (math.inf if self.cap is None else self.cap))
        above = ~inside & (x > 0)
        xi = x[inside]
        s, l1, _ = self._tails(self.deductible + xi)
        s0 = self.claim_probability
        surv[inside] = s / s0
        surv1[inside] = (l1 - self._at_top[1] + xi * s) / s0 / self.expected_value
        surv[above] = 0.0
        surv1[above] = 0.0
        return surv, surv1

    def cdf(self, x):
        """P(Z <= x)."""
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        out = 1.0 - self.tails(xs)[0]
        out[xs < 0] = 0.0
        return _output(out if np.ndim(x) else out[0], x)

    def upper_quantile(self, tail_probability: float) -> float:
        """The least x with P(Z > x) <= tail_probability (the cap when that is below the atom there)."""
        if tail_probability < self.cap_probability:
            return float(self.cap)
        x = float(_isf(self.base, np.array([tail_probability * self.claim_probability]))[0]) - self.deductible
        x = max(x, 0.0)
        return x if self.cap is None else min(x, self.cap)

    def quantile(self, p: float) -> float:
        return self.upper_quantile(1.0 - p)

    def limited_mean(self, x: np.ndarray) -> np.ndarray:
        """E[min(Z, x)] for x >= 0: (L1(d') - L1(d' + min(x, c'))) / S(d')."""
        x = np.asarray(x, dtype=float)
        top = x if self.cap is None else np.minimum(x, self.cap)
        out = np.zeros_like(x)
        positive = x > 0
        _, l1, _ = self._tails(self.deductible + top[positive])
        out[positive] = (self._at_deductible[1] - l1) / self.claim_probability
        return out

    def limited_second_moment(self, x: float) -> float:
        """E[min(Z, x)^2] (0 for x <= 0): (L2(d') - L2(d' + y) - 2 y L1(d' + y)) / S(d'), y = min(x, c')."""
        if not x > 0.0:
            return 0.0
        y = x if self.cap is None else min(x, self.cap)
        _, l1, l2 = self._tails(np.array([self.deductible + y]))
        return (self._at_deductible[2] - float(l2[0]) - 2.0 * y * float(l1[0])) / self.claim_probability

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` independent draws of Z: X drawn given X > d' by inverse transform
        on the survival scale, then min(X - d', c')."""
        t = (1.0 - rng.random(size)) * self.claim_probability
        z = np.maximum(_isf(self.base, t) - self.deductible, 0.0)
        return z if self.cap is None else np.minimum(z, self.cap)


def paid_per_claim(cost: np.ndarray, deductible: float, cap: float | None, level_factor: float) -> np.ndarray:
    """What a schedule pays per unit of rate for admissions of eligible cost
    `cost`: level_factor x min(max(cost - deductible, 0), cap) (for Monte Carlo
    and the scenario formulation, which draw admissions one by one)."""
    paid = np.maximum(np.asarray(cost, dtype=float) - deductible, 0.0)
    if cap is not None:
        paid = np.minimum(paid, cap)
    return level_factor * paid


def benefit_stream(rate: float, severity: Severity, factor: float, deductible: float, cap: float | None,
                   level_factor: float) -> ClaimStream:
    """The claims of `rate` expected admissions of list cost X ~ `severity` and
    eligible cost factor x X, paid level_factor x min(max(factor X - d, 0), c)
    per unit of rate: thinned by P(factor X > d), severity `ExcessSeverity`,
    factor factor x level_factor (module docstring). With d = 0, no cap and
    level factor 1 it is the plain stream, bit for bit; a stream no admission
    of which reaches d (or with factor or level factor 0) has rate 0."""
    if deductible == 0.0 and cap is None:
        return ClaimStream(rate, severity, factor * level_factor if level_factor != 1.0 else factor)
    if factor <= 0.0 or level_factor <= 0.0 or rate <= 0.0:
        return ClaimStream(0.0, severity, 0.0)
    d = deductible / factor
    claimed = 1.0 if d == 0.0 else float(severity.tails(np.array([d]))[0][0])
    if not claimed > 0.0:
        return ClaimStream(0.0, severity, 0.0)
    excess = ExcessSeverity(severity, d, None if cap is None else cap / factor)
    return ClaimStream(rate * claimed, excess, factor * level_factor)
