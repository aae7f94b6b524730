"""Severity models: the cost of one inpatient admission.

A `Severity` is given by its family, mean and coefficient of variation (the
form actuaries quote). This module holds the closed forms the claims engine
needs: moments, CDF, quantile and the limited expected value E[min(X, x)],
which drives mean-preserving discretisation, and a sampler for Monte Carlo.

Families
- ``lognormal``, ``gamma``: given by their mean and cv.
- ``spliced``: catastrophic admissions. A lognormal body (the lognormal with
  the given `mean` and `cv`, conditioned on X <= `threshold`) with weight
  1 - `tail_probability`, and above the threshold u a Pareto-I tail with
  survival P(X > x | X > u) = (u / x)^`tail_index`, weight `tail_probability`.
  So S(u) = tail_probability exactly. `mean` and `cv` are the *body's*
  lognormal parameters, not the moments of X: use `expected_value` and
  `second_moment`. The tail index must exceed 2 so that Var X is finite
  (the engine's window and its closed-form variance check need it).

Spliced closed forms (body lognormal mu, sigma; z(x) = (ln x - mu) / sigma;
F_u = Phi(z(u)); p = tail_probability, a = tail_index, m = mean):
    S(x)  = p + (1 - p) [Phi(z(u)) - Phi(z(x))] / F_u          x <= u
          = p (u / x)^a                                         x > u
    E[X; X > x] = (1 - p) m [Phi(z(u) - sigma) - Phi(z(x) - sigma)] / F_u
                  + p a u / (a - 1)                             x <= u
                = p (u / x)^a a x / (a - 1)                     x > u
    E[X]   = (1 - p) m Phi(z(u) - sigma) / F_u + p a u / (a - 1)
    E[X^2] = (1 - p) m^2 (1 + cv^2) Phi(z(u) - 2 sigma) / F_u + p a u^2 / (a - 2)
Differences of Phi are taken between upper tails when both arguments are
positive, so tail values keep their relative precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

SEVERITY_FAMILIES = ("lognormal", "gamma", "spliced")

MIN_BODY_MASS = 1e-6
"""A spliced threshold must leave at least this much of the untruncated
lognormal's mass below it: a threshold far below the lognormal's bulk is
almost surely a unit error, and the truncated body would be numerically
degenerate."""


def _lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with the given mean and cv."""
    sigma2 = math.log1p(cv ** 2)
    return math.log(mean) - 0.5 * sigma2, math.sqrt(sigma2)


def _ndtr_between(z_low: np.ndarray, z_high: float) -> np.ndarray:
    """Phi(z_high) - Phi(z_low) for z_low <= z_high, from upper tails where
    z_low > 0 (both tails small), from lower tails otherwise."""
    z_low = np.asarray(z_low, dtype=float)
    upper = special.ndtr(-z_low) - special.ndtr(-z_high)
    lower = special.ndtr(z_high) - special.ndtr(z_low)
    return np.maximum(np.where(z_low > 0, upper, lower), 0.0)


def _output(values: np.ndarray, like):
    """A float for scalar input, an array otherwise."""
    return float(values) if np.ndim(like) == 0 else values


@dataclass(frozen=True)
class Severity:
    """Cost distribution of one admission: family, mean (CNY) and CV, plus the
    splice point and Pareto tail of the ``spliced`` family (None otherwise).

    Numerics use only `expected_value`, `second_moment`, `tails`,
    `upper_quantile` (and `cdf`/`quantile`/`sample` for checks and Monte
    Carlo), so a new family needs only these.
    """

    dist: str
    mean: float
    cv: float
    threshold: float | None = None
    tail_index: float | None = None
    tail_probability: float | None = None

    @property
    def sort_key(self) -> tuple:
        """Deterministic ordering key (stream merging sorts severities);
        absent spliced fields sort as -1."""
        def value(v):
            return -1.0 if v is None else float(v)
        return (self.dist, self.mean, self.cv, value(self.threshold), value(self.tail_index),
                value(self.tail_probability))

    # -- spliced helpers ----------------------------------------------------

    def _spliced(self):
        """(mu, sigma, z_u, F_u, u, a, p) of a spliced severity."""
        mu, sigma = _lognormal_params(self.mean, self.cv)
        u = self.threshold
        z_u = (math.log(u) - mu) / sigma
        return mu, sigma, z_u, float(special.ndtr(z_u)), u, self.tail_index, self.tail_probability

    def _spliced_body_mean(self) -> float:
        """(1 - p) E[X; body] = (1 - p) m Phi(z_u - sigma) / F_u."""
        _, sigma, z_u, f_u, _, _, p = self._spliced()
        return (1.0 - p) * self.mean * float(special.ndtr(z_u - sigma)) / f_u

    def _spliced_isf(self, t: np.ndarray) -> np.ndarray:
        """x with S(x) = t, for t in [0, 1] (vectorised)."""
        mu, sigma, z_u, f_u, u, a, p = self._spliced()
        t = np.asarray(t, dtype=float)
        out = np.empty_like(t)
        tail = t <= p
        with np.errstate(divide="ignore"):
            out[tail] = u * np.power(p / t[tail], 1.0 / a)
        tb = t[~tail]
        # Body: Phi(z_u) - Phi(z_x) = D with D = (t - p) F_u / (1 - p).
        d = (tb - p) * f_u / (1.0 - p)
        lower = f_u * (1.0 - tb) / (1.0 - p)            # Phi(z_x)
        upper = float(special.ndtr(-z_u)) + d             # Phi(-z_x)
        z = np.where(lower <= 0.5, special.ndtri(np.minimum(lower, 1.0)),
                     -special.ndtri(np.minimum(upper, 1.0)))
        out[~tail] = np.minimum(np.exp(mu + sigma * z), u)
        return out

    def _spliced_ppf(self, q: np.ndarray) -> np.ndarray:
        """x with F(x) = q, for q in [0, 1] (vectorised; lower tail accurate)."""
        mu, sigma, _, f_u, u, a, p = self._spliced()
        q = np.asarray(q, dtype=float)
        out = np.empty_like(q)
        body = q <= 1.0 - p
        out[body] = np.minimum(np.exp(mu + sigma * special.ndtri(q[body] * f_u / (1.0 - p))), u)
        with np.errstate(divide="ignore"):
            out[~body] = u * np.power(p / (1.0 - q[~body]), 1.0 / a)
        return out

    # -- moments ----------------------------------------------------------------

    @property
    def expected_value(self) -> float:
        """E[X]."""
        if self.dist == "spliced":
            a, u, p = self.tail_index, self.threshold, self.tail_probability
            return self._spliced_body_mean() + p * a * u / (a - 1.0)
        return self.mean

    @property
    def second_moment(self) -> float:
        """E[X^2]."""
        if self.dist == "spliced":
            _, sigma, z_u, f_u, u, a, p = self._spliced()
            body = (1.0 - p) * self.mean ** 2 * (1.0 + self.cv ** 2) * float(special.ndtr(z_u - 2.0 * sigma)) / f_u
            return body + p * a * u ** 2 / (a - 2.0)
        return self.mean ** 2 * (1.0 + self.cv ** 2)

    # -- distribution functions -------------------------------------------------

    def _frozen(self):
        from scipy import stats  # here, not at the top: scipy.stats takes ~0.5 s to import and solve never needs it
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            return stats.lognorm(s=sigma, scale=math.exp(mu))
        shape = 1.0 / self.cv ** 2
        return stats.gamma(a=shape, scale=self.mean / shape)

    def cdf(self, x):
        """P(X <= x)."""
        if self.dist != "spliced":
            return self._frozen().cdf(x)
        mu, sigma, _, f_u, u, a, p = self._spliced()
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        out = np.zeros_like(xs)
        body = (xs > 0) & (xs <= u)
        out[body] = (1.0 - p) * special.ndtr((np.log(xs[body]) - mu) / sigma) / f_u
        tail = xs > u
        out[tail] = 1.0 - p * np.power(u / xs[tail], a)
        return _output(out if np.ndim(x) else out[0], x)

    def quantile(self, p: float) -> float:
        """Upper quantiles via the survival function, accurate far in the tail."""
        if self.dist == "spliced":
            return self.upper_quantile(1.0 - p) if p > 0.5 else float(self._spliced_ppf(np.array([p]))[0])
        return float(self._frozen().isf(1.0 - p)) if p > 0.5 else float(self._frozen().ppf(p))

    def upper_quantile(self, tail_probability: float) -> float:
        """x with P(X > x) = tail_probability, from closed-form inverses (no
        scipy frozen distribution: this is on the pricing hot path)."""
        if self.dist == "spliced":
            return float(self._spliced_isf(np.array([tail_probability]))[0])
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            return math.exp(mu - sigma * float(special.ndtri(tail_probability)))
        shape = 1.0 / self.cv ** 2
        return float(special.gammainccinv(shape, tail_probability)) * self.mean / shape

    def tails(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(S(x), S1(x)) for x >= 0: the survival function P(X > x) and the
        size-biased one, E[X; X > x] / E[X]. Computed from upper tails
        directly, so far-tail values keep their relative precision."""
        x = np.asarray(x, dtype=float)
        surv = np.ones_like(x)
        surv1 = np.ones_like(x)
        positive = x > 0
        xp = x[positive]
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            z = (np.log(xp) - mu) / sigma
            surv[positive] = special.ndtr(-z)
            surv1[positive] = special.ndtr(sigma - z)
        elif self.dist == "gamma":
            shape = 1.0 / self.cv ** 2
            scaled = xp * shape / self.mean
            surv[positive] = special.gammaincc(shape, scaled)
            surv1[positive] = special.gammaincc(shape + 1.0, scaled)
        else:
            mu, sigma, z_u, f_u, u, a, p = self._spliced()
            mean = self.expected_value
            tail_mean = p * a * u / (a - 1.0)            # E[X; X > u]
            s = np.empty_like(xp)
            s1 = np.empty_like(xp)
            body = xp <= u
            z = (np.log(xp[body]) - mu) / sigma
            s[body] = p + (1.0 - p) * _ndtr_between(z, z_u) / f_u
            s1[body] = ((1.0 - p) * self.mean * _ndtr_between(z - sigma, z_u - sigma) / f_u
                        + tail_mean) / mean
            xt = xp[~body]
            ratio = np.power(u / xt, a)
            s[~body] = p * ratio
            with np.errstate(invalid="ignore"):
                # x = inf (a claim's share phi near 5e-324 divides the lattice by
                # it): no mass beyond, where ratio * x would be 0 * inf = nan.
                s1[~body] = np.where(np.isinf(xt), 0.0, p * ratio * (a * xt / (a - 1.0)) / mean)
            surv[positive] = s
            surv1[positive] = s1
        return surv, surv1

    def limited_mean(self, x: np.ndarray) -> np.ndarray:
        """E[min(X, x)] for x >= 0, in closed form."""
        x = np.asarray(x, dtype=float)
        out = np.zeros_like(x)
        positive = x > 0
        xp = x[positive]
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            z = (np.log(xp) - mu) / sigma
            out[positive] = self.mean * special.ndtr(z - sigma) + xp * special.ndtr(-z)
        elif self.dist == "gamma":
            shape = 1.0 / self.cv ** 2
            scale = self.mean / shape
            out[positive] = (self.mean * special.gammainc(shape + 1.0, xp / scale)
                             + xp * special.gammaincc(shape, xp / scale))
        else:
            mu, sigma, z_u, f_u, u, a, p = self._spliced()
            vals = np.empty_like(xp)
            body = xp <= u
            xb = xp[body]
            z = (np.log(xb) - mu) / sigma
            surv = p + (1.0 - p) * _ndtr_between(z, z_u) / f_u
            vals[body] = (1.0 - p) * self.mean * special.ndtr(z - sigma) / f_u + xb * surv
            # Above u: body mean plus p E[min(u Pareto, x)] = p u [1 + (1 - (u/x)^(a-1)) / (a - 1)].
            xt = xp[~body]
            vals[~body] = (self._spliced_body_mean()
                           + p * u * (1.0 - np.expm1((a - 1.0) * np.log(u / xt)) / (a - 1.0)))
            out[positive] = vals
        return out

    def limited_second_moment(self, x: float) -> float:
        """E[min(X, x)^2] (0 for x <= 0), in closed form: E[X^2; X <= x] + x^2 S(x)
        (lognormal: m^2 (1 + cv^2) Phi(z(x) - 2 sigma); gamma: a (a + 1) s^2
        P(a + 2, x / s); spliced: the body's share below min(x, u) and the
        Pareto's p a u^2 (1 - (u / x)^(a - 2)) / (a - 2) between u and x)."""
        if not x > 0.0:
            return 0.0
        surv = float(self.tails(np.array([x]))[0][0])
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            below = self.second_moment * float(special.ndtr((math.log(x) - mu) / sigma - 2.0 * sigma))
        elif self.dist == "gamma":
            shape = 1.0 / self.cv ** 2
            below = self.second_moment * float(special.gammainc(shape + 2.0, x * shape / self.mean))
        else:
            mu, sigma, _, f_u, u, a, p = self._spliced()
            body = (1.0 - p) * self.mean ** 2 * (1.0 + self.cv ** 2) / f_u
            below = body * float(special.ndtr((math.log(min(x, u)) - mu) / sigma - 2.0 * sigma))
            if x > u:
                below += p * a * u * u * -math.expm1((a - 2.0) * math.log(u / x)) / (a - 2.0)
        return below + x * x * surv

    def upper_second_moment(self, x: np.ndarray) -> np.ndarray:
        """E[X^2; X > x] for x >= 0, in closed form from upper tails (so far-tail
        values keep their relative precision): lognormal m^2 (1 + cv^2)
        Phi(2 sigma - z(x)); gamma E[X^2] Q(a + 2, x / s); spliced the body's
        share between min(x, u) and u plus the Pareto's p (u / max(x, u))^a a
        max(x, u)^2 / (a - 2). Benefit schedules' excess laws need it
        (pooling.risk.benefit_severity)."""
        x = np.asarray(x, dtype=float)
        out = np.full_like(x, self.second_moment)
        positive = x > 0
        xp = x[positive]
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            out[positive] = self.second_moment * special.ndtr(2.0 * sigma - (np.log(xp) - mu) / sigma)
        elif self.dist == "gamma":
            shape = 1.0 / self.cv ** 2
            out[positive] = self.second_moment * special.gammaincc(shape + 2.0, xp * shape / self.mean)
        else:
            mu, sigma, z_u, f_u, u, a, p = self._spliced()
            body = (1.0 - p) * self.mean ** 2 * (1.0 + self.cv ** 2) / f_u
            low = np.minimum(xp, u)
            vals = body * _ndtr_between((np.log(low) - mu) / sigma - 2.0 * sigma, z_u - 2.0 * sigma)
            high = np.maximum(xp, u)
            with np.errstate(invalid="ignore", over="ignore"):
                pareto = np.where(np.isinf(high), 0.0, p * np.power(u / high, a) * a * high * high / (a - 2.0))
            out[positive] = vals + pareto
        return out

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` independent draws of X (for per-admission Monte Carlo)."""
        if self.dist == "lognormal":
            mu, sigma = _lognormal_params(self.mean, self.cv)
            return rng.lognormal(mu, sigma, size)
        if self.dist == "gamma":
            shape = 1.0 / self.cv ** 2
            return rng.gamma(shape, self.mean / shape, size)
        # Inverse transform on the survival scale: t = 1 - U is uniform on (0, 1].
        return self._spliced_isf(1.0 - rng.random(size))


def with_pareto_tail(severity: Severity, tail_probability: float, tail_index: float) -> Severity:
    """The heavy-tail stress of a severity: a Pareto tail (index a) above the
    (1 - p) quantile of a lognormal body with the same mean and cv. For a
    lognormal severity the law below the threshold is unchanged; a gamma one
    is first replaced by the lognormal of equal mean and cv (the spliced body
    is lognormal). A spliced severity keeps its own tail."""
    if severity.dist == "spliced":
        return severity
    body = Severity("lognormal", severity.mean, severity.cv)
    threshold = body.upper_quantile(tail_probability)
    return Severity("spliced", severity.mean, severity.cv, threshold=threshold,
                    tail_index=tail_index, tail_probability=tail_probability)
