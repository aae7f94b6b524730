"""Severity models: the cost of one inpatient admission.

A `Severity` is given by its family, mean and coefficient of variation (the
form actuaries quote). This module holds the closed forms the claims engine
needs: moments, CDF, quantile and the limited expected value E[min(X, x)],
which drives mean-preserving discretisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from pooling.fields import FieldReader

SEVERITY_FAMILIES = ("lognormal", "gamma")


@dataclass(frozen=True)
class Severity:
    """Cost distribution of one admission: family, mean (CNY) and CV.

    Numerics use only `expected_value`, `second_moment`, `tails`,
    `upper_quantile` (and `cdf`/`quantile` for sampling), so a new family
    needs only these.
    """

    dist: str
    mean: float
    cv: float

    @property
    def sort_key(self) -> tuple:
        """Deterministic ordering key (stream merging sorts severities)."""
        return (self.dist, self.mean, self.cv)

    @property
    def expected_value(self) -> float:
        """E[X]."""
        return self.mean

    @property
    def second_moment(self) -> float:
        """E[X^2]."""
        return self.mean ** 2 * (1.0 + self.cv ** 2)

    def _frozen(self):
        if self.dist == "lognormal":
            sigma2 = math.log1p(self.cv ** 2)
            mu = math.log(self.mean) - 0.5 * sigma2
            return stats.lognorm(s=math.sqrt(sigma2), scale=math.exp(mu))
        shape = 1.0 / self.cv ** 2
        return stats.gamma(a=shape, scale=self.mean / shape)

    def cdf(self, x):
        return self._frozen().cdf(x)

    def quantile(self, p: float) -> float:
        """Upper quantiles via the survival function, accurate far in the tail."""
        return float(self._frozen().isf(1.0 - p)) if p > 0.5 else float(self._frozen().ppf(p))

    def upper_quantile(self, tail_probability: float) -> float:
        return float(self._frozen().isf(tail_probability))

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
            sigma = math.sqrt(math.log1p(self.cv ** 2))
            mu = math.log(self.mean) - 0.5 * sigma ** 2
            z = (np.log(xp) - mu) / sigma
            surv[positive] = special.ndtr(-z)
            surv1[positive] = special.ndtr(sigma - z)
        else:
            shape = 1.0 / self.cv ** 2
            scaled = xp * shape / self.mean
            surv[positive] = special.gammaincc(shape, scaled)
            surv1[positive] = special.gammaincc(shape + 1.0, scaled)
        return surv, surv1

    def limited_mean(self, x: np.ndarray) -> np.ndarray:
        """E[min(X, x)] for x >= 0, in closed form."""
        x = np.asarray(x, dtype=float)
        out = np.zeros_like(x)
        positive = x > 0
        xp = x[positive]
        if self.dist == "lognormal":
            sigma = math.sqrt(math.log1p(self.cv ** 2))
            mu = math.log(self.mean) - 0.5 * sigma ** 2
            z = (np.log(xp) - mu) / sigma
            out[positive] = self.mean * special.ndtr(z - sigma) + xp * special.ndtr(-z)
        else:
            shape = 1.0 / self.cv ** 2
            scale = self.mean / shape
            out[positive] = (self.mean * special.gammainc(shape + 1.0, xp / scale)
                             + xp * special.gammaincc(shape, xp / scale))
        return out


def read_severity(reader: FieldReader) -> Severity:
    """Parse and validate a ``{"dist", "mean", "cv"}`` table."""
    dist = reader.string("dist", choices=SEVERITY_FAMILIES)
    mean = reader.number("mean", low=0.0, low_open=True)
    cv = reader.number("cv", low=0.0, low_open=True, high=20.0)
    reader.finish()
    return Severity(dist=dist, mean=mean, cv=cv)
