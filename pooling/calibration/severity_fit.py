"""Severity of one admission fitted to CLAIMS by maximum likelihood (issue 24 item 2).

Claims are divided by their county-year's mean cost per admission (HISTORY's
inpatient_cost / admissions), which removes each county's price level and the
cost trend; one shape is fitted to all of them and each county's severity is
that shape at its own projected mean (estimates.cost_levels). Three families,
chosen by AIC:
- lognormal: closed-form MLE of (mu, sigma) of log x;
- gamma: scipy.stats.gamma.fit with location 0;
- spliced lognormal-Pareto (risk.severity): threshold u at the claims'
  SPLICE_QUANTILE quantile (a fixed, documented choice: the top 5% is the tail,
  at least MIN_TAIL_CLAIMS claims), tail probability = share above u, Pareto
  index by Hill's MLE a = n_u / sum log(x / u), lognormal body truncated at u by
  numerical MLE. A 1e6-CNY admission beside 3,000-CNY means is what a lognormal
  cannot hold and the spliced law can.
Intervals are asymptotic (Fisher information; Hill: a / sqrt(n_u)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from pooling.calibration.estimates import LEVEL, Interval
from pooling.data.laws import SEVERITY_CV_RANGE, TAIL_INDEX_RANGE
from pooling.risk.severity import Severity

MIN_CLAIMS = 30
"""Fewer claims than this fit nothing: the severity then comes from HISTORY alone."""
SPLICE_QUANTILE = 0.95
"""The spliced law's threshold: the claims' 95% quantile (the top 5% is the Pareto tail)."""
MIN_TAIL_CLAIMS = 50
"""Claims above the threshold needed to fit a Pareto index (Hill's estimate has
relative standard error 1 / sqrt(n_u): 14% at 50)."""


@dataclass(frozen=True)
class SeverityFit:
    """The chosen family's shape on claims of mean `unit_mean` (about 1), every
    family's log-likelihood and AIC, intervals, and warnings (a clipped tail)."""

    family: str
    shape: Severity
    unit_mean: float
    claims: int
    fits: dict
    intervals: dict
    warnings: tuple[str, ...]

    def for_mean(self, mean: float) -> Severity:
        """The fitted shape at expected cost `mean` per admission."""
        factor = mean / self.unit_mean
        s = self.shape
        if s.dist != "spliced":
            return Severity(s.dist, s.mean * factor, s.cv)
        return Severity("spliced", s.mean * factor, s.cv, threshold=s.threshold * factor,
                        tail_index=s.tail_index, tail_probability=s.tail_probability)


def _cv_interval(center: float, se: float, to_cv) -> Interval:
    q = float(stats.norm.ppf(0.5 + LEVEL / 2))
    ends = sorted((to_cv(max(center - q * se, 1e-12)), to_cv(center + q * se)))
    return Interval(to_cv(center), ends[0], ends[1])


def _lognormal(x: np.ndarray, logs: np.ndarray) -> tuple[dict, Severity, Interval]:
    mu, sigma = float(logs.mean()), float(logs.std())
    loglik = float(np.sum(stats.norm.logpdf(logs, mu, sigma) - logs))
    cv = math.sqrt(math.expm1(sigma ** 2))
    interval = _cv_interval(sigma, sigma / math.sqrt(2 * len(x)), lambda s: math.sqrt(math.expm1(s ** 2)))
    return {"loglik": loglik, "parameters": 2}, Severity("lognormal", math.exp(mu + sigma ** 2 / 2), cv), interval


def _gamma(x: np.ndarray) -> tuple[dict, Severity, Interval]:
    shape, _, scale = stats.gamma.fit(x, floc=0.0)
    loglik = float(np.sum(stats.gamma.logpdf(x, shape, scale=scale)))
    se = 1.0 / math.sqrt(len(x) * max(float(special.polygamma(1, shape)) - 1.0 / shape, 1e-300))
    interval = _cv_interval(shape, se, lambda k: 1.0 / math.sqrt(k))
    return {"loglik": loglik, "parameters": 2}, Severity("gamma", shape * scale, 1.0 / math.sqrt(shape)), interval


def _spliced(x: np.ndarray, logs: np.ndarray) -> tuple[dict, Severity, dict, list[str]] | None:
    threshold = float(np.quantile(x, SPLICE_QUANTILE))
    tail, body = x[x > threshold], logs[x <= threshold]
    if len(tail) < MIN_TAIL_CLAIMS or len(body) < MIN_TAIL_CLAIMS:
        return None
    log_u = math.log(threshold)
    p = len(tail) / len(x)
    a = len(tail) / float(np.sum(np.log(tail / threshold)))

    def negative(theta):
        mu, log_sigma = theta
        sigma = math.exp(log_sigma)
        return -(np.sum(stats.norm.logpdf(body, mu, sigma)) - len(body) * stats.norm.logcdf((log_u - mu) / sigma))

    start = (float(body.mean()), math.log(max(float(body.std()), 1e-3)))
    found = optimize.minimize(negative, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10,
                                                                               "maxiter": 4000})
    mu, sigma = float(found.x[0]), math.exp(float(found.x[1]))
    warnings = []
    low, high = TAIL_INDEX_RANGE
    if not low <= a <= high:
        warnings.append(f"the fitted Pareto tail index {a:.3g} is outside [{low:g}, {high:g}], the range the "
                        f"claims engine prices; it was clipped to {min(max(a, low), high):g} (a tail heavier "
                        f"than 2.5 is then priced too light)")
        a = min(max(a, low), high)
    loglik = (-float(found.fun) - float(np.sum(body)) + len(body) * math.log1p(-p) + len(tail) * math.log(p)
              + float(np.sum(math.log(a) + a * log_u - (a + 1.0) * np.log(tail))))
    cv = math.sqrt(math.expm1(sigma ** 2))
    shape = Severity("spliced", math.exp(mu + sigma ** 2 / 2), cv, threshold=threshold, tail_index=a,
                     tail_probability=p)
    q = float(stats.norm.ppf(0.5 + LEVEL / 2))
    se_a = a / math.sqrt(len(tail))
    se_p = math.sqrt(p * (1 - p) / len(x))
    intervals = {"tail_index": Interval(a, max(a - q * se_a, 0.0), a + q * se_a),
                 "tail_probability": Interval(p, max(p - q * se_p, 0.0), p + q * se_p),
                 "threshold_quantile": SPLICE_QUANTILE}
    return {"loglik": loglik, "parameters": 5}, shape, intervals, warnings


def fit_severity(normalised: np.ndarray) -> SeverityFit:
    """The best of lognormal, gamma and spliced by AIC on claims divided by
    their county-year mean (module docstring)."""
    x = np.asarray(normalised, dtype=float)
    logs = np.log(x)
    fits, candidates = {}, {}
    info, shape, interval = _lognormal(x, logs)
    fits["lognormal"], candidates["lognormal"] = info, (shape, {"cv": interval}, [])
    info, shape, interval = _gamma(x)
    fits["gamma"], candidates["gamma"] = info, (shape, {"cv": interval}, [])
    spliced = _spliced(x, logs)
    if spliced is not None:
        info, shape, intervals, warnings = spliced
        fits["spliced"], candidates["spliced"] = info, (shape, intervals, warnings)
    for info in fits.values():
        info["aic"] = 2 * info["parameters"] - 2 * info["loglik"]
    family = min(fits, key=lambda name: (fits[name]["aic"], name))
    shape, intervals, warnings = candidates[family]
    low, high = SEVERITY_CV_RANGE
    if not low <= shape.cv <= high:
        clipped = min(max(shape.cv, low), high)
        warnings = warnings + [f"the fitted cv {shape.cv:.3g} is outside [{low:g}, {high:g}]; clipped to {clipped:g}"]
        shape = Severity(shape.dist, shape.mean, clipped, threshold=shape.threshold, tail_index=shape.tail_index,
                         tail_probability=shape.tail_probability)
    return SeverityFit(family=family, shape=shape, unit_mean=shape.expected_value, claims=len(x), fits=fits,
                       intervals=intervals, warnings=tuple(warnings))
