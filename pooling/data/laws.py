"""Laws and limits shared by the instance's readers: severities and shock cvs
read from files (with the ranges where the engine is known to price right),
the money limit and the reserved "outside" key. Kept apart from `instance` so
that its parts (data.geography: places, tiers, contracts) read them too."""

from __future__ import annotations

from pooling.data.fields import FieldReader, exact
from pooling.risk.severity import MIN_BODY_MASS, SEVERITY_FAMILIES, Severity

OUTSIDE = "outside"
"""Reserved destination key: care delivered beyond the instance."""

MAX_MONEY = 1e16
"""CNY for reserves and the fixed cost per fund (MAX_ENROLLEES x 5e6)."""
SEVERITY_MEAN_RANGE = (1.0, 1e8)
"""CNY per admission (actual: ~1e3-1e5); 1e8 keeps 1e10 admissions x their
1e-12 severity quantile far inside float range."""
SEVERITY_CV_RANGE = (0.01, 20.0)
"""cv of one admission's cost (actual: ~0.5-3). Below 0.01 a gamma's shape
(1/cv^2) makes its incomplete-gamma tails slow and inexact."""
TAIL_INDEX_RANGE = (2.5, 100.0)
"""Spliced Pareto index: > 2 for a finite variance. Below 2.5 the window (the
severity's 1e-12 quantile, u (p/1e-12)^(1/a)) outgrows the lattice for small
pools, and the variance beyond it fails the self-check (measured at 2.2 and 2.3
with 1 and 20,000 enrollees); above 100 the tail is no tail."""
MAX_THRESHOLD = 1e10
"""CNY: a splice point above it is beyond any admission's cost."""


MIN_SHOCK_CV = 1e-12
"""A non-zero frequency_shock_cv must be at least this. Below it nothing the
package computes changes (the count is Poisson to double precision, the
engine's limit), but other users of theta (the column-generation bound's
CVaR(Theta), Monte Carlo draws) divide by theta^2; write 0 instead."""
MAX_SHOCK_CV = 0.5
"""Largest shock cv theta (national, regional, stress). Theta ~ Gamma(shape
1 / theta^2): at theta = 1 (exponential) a pool of 1e8 admissions with a second
independent part did not converge within MAX_POINTS lattice points (Richardson
estimate 7e-2), at 2 the density is singular at 0 and rounding moved a large
pool's mean by 1e-5 (issue 22). At 0.5 (shape 4) pools of up to 1e10
admissions with several parts price; calibrated values are 0.03-0.16 and the
`volatile` stress preset is 0.10."""


def read_shock_cv(reader: FieldReader, key: str, **default) -> float | None:
    """A shock cv theta: 0, or in [MIN_SHOCK_CV, MAX_SHOCK_CV] (see MIN_SHOCK_CV).
    `default=...` as for FieldReader.number."""
    value = reader.number(key, low=0.0, high=MAX_SHOCK_CV, **default)
    if value is not None and 0.0 < value < MIN_SHOCK_CV:
        raise reader.fail(key, f"must be 0 or in [{MIN_SHOCK_CV:g}, {MAX_SHOCK_CV:g}] (a cv below "
                               f"{MIN_SHOCK_CV:g} changes no result: write 0), got {exact(value)}")
    return value




def read_tail_index(reader: FieldReader) -> float:
    """A Pareto tail index in TAIL_INDEX_RANGE (> 2: finite variance)."""
    tail_index = reader.number("tail_index")
    low, high = TAIL_INDEX_RANGE
    if not low <= tail_index <= high:
        raise reader.fail("tail_index", f"must be in [{low:g}, {high:g}] (> 2 for a finite variance; "
                                        f"near 2 the lattice outgrows its limit), got {exact(tail_index)}")
    return tail_index


def read_severity(reader: FieldReader) -> Severity:
    """Parse and validate a severity table: ``{"dist", "mean", "cv"}``, plus
    ``threshold``, ``tail_index``, ``tail_probability`` for ``"spliced"``."""
    dist = reader.string("dist", choices=SEVERITY_FAMILIES)
    mean = reader.number("mean", low=SEVERITY_MEAN_RANGE[0], high=SEVERITY_MEAN_RANGE[1])
    cv = reader.number("cv", low=SEVERITY_CV_RANGE[0], high=SEVERITY_CV_RANGE[1])
    if dist != "spliced":
        reader.finish()
        return Severity(dist=dist, mean=mean, cv=cv)
    threshold = reader.number("threshold", low=0.0, low_open=True, high=MAX_THRESHOLD)
    tail_index = read_tail_index(reader)
    tail_probability = reader.number("tail_probability", low=0.0, high=1.0, low_open=True, high_open=True)
    reader.finish()
    body = Severity(dist="lognormal", mean=mean, cv=cv)
    if body.cdf(threshold) < MIN_BODY_MASS:
        lowest = body.quantile(MIN_BODY_MASS)
        raise reader.fail("threshold", f"must be >= {lowest:.6g} (the body lognormal's "
                                       f"{MIN_BODY_MASS:g} quantile), got {exact(threshold)}")
    return Severity(dist=dist, mean=mean, cv=cv, threshold=threshold, tail_index=tail_index,
                    tail_probability=tail_probability)

