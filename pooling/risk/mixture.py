"""Risk of a weighted mixture of lattice laws: the predictive law of issue 23.

A predictive spec prices a pool under the mixture Z of its scenarios' claim
laws: with probability w_s the year is scenario s, and then Z = a_s Y_s + b_s
(a_s > 0; a = 1, b = 0 for the claims themselves, a = rate, b = -budget for a
scenario's net loss). Each Y_s is the engine's lattice law (risk.claims), read
with the engine's own convention (risk.measures): atom i spread uniformly over
its cell [x_i - h/2, x_i + h/2]. So each F_s is continuous and piecewise
linear, and so is the mixture CDF F(z) = sum_s w_s F_s((z - b_s) / a_s): its
VaR is found exactly, as the root of F(z) = level on the segment between the
two cell edges (of any component) that bracket it, with no common lattice to
regrid onto. CVaR is the Rockafellar-Uryasev value at that root, VaR +
E[(Z - VaR)+] / (1 - level), the stop-loss of each spread law summed exactly
(whole cells above, the part of the cell that straddles it, and the mean a
claim cap puts beyond the lattice: LatticeLaw.mean_beyond).

Resolution. As in the engine's band step, the figures are computed at the
laws' spans h and on pairs of cells (2h), and Richardson-extrapolated, R_h +
(R_h - R_2h) / 3; |R_h - R_2h| / 3 is the reported error estimate. A mixture
of one law (every scenario giving the pool the same model) is that law, and
its caller uses the engine's figures directly.

Self-checks (enforced, NumericsError): total mass against sum_s w_s, the
mixture's mean computed from its stop-loss at the bottom of its support
against sum_s w_s (a_s E[Y_s] + b_s) from the scenarios' closed forms, and
VaR within the range of the components' VaRs (a mixture's quantile lies
between its components' quantiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pooling.errors import NumericsError
from pooling.risk.claims import LatticeLaw

MIXTURE_MASS_TOLERANCE = 1e-6
"""|mixture mass - 1|: each law's mass is within claims.MASS_TOLERANCE (1e-7)
of 1 and the weights sum to 1 within 1e-9; 1e-6 leaves room for 64
scenarios' errors adding up and nothing for a lost component."""
MIXTURE_MEAN_TOLERANCE = 1e-6
"""Relative miss of the mixture's mean (from its stop-loss) against the
weighted closed-form means: each law passes claims.MEAN_TOLERANCE (1e-6)
against its own closed form, and a weighted mean of such errors stays within
it; an error in the stop-loss sums shows as far more."""
MIXTURE_VAR_SLACK = 1e-9
"""Relative slack of the check that the mixture's VaR lies within its
components' VaRs (round-off of the root on its segment)."""


@dataclass(frozen=True)
class Component:
    """One scenario of a mixture: with probability `weight`, Z = scale Y + shift,
    Y of law `law` with closed-form mean `mean` (E[Y], claims off the lattice included)."""

    weight: float
    law: LatticeLaw
    mean: float
    scale: float = 1.0
    shift: float = 0.0


@dataclass(frozen=True)
class MixtureRisk:
    """VaR and CVaR of a mixture at `level`, extrapolated, with the error
    estimate and the self-check figures."""

    level: float
    var: float
    cvar: float
    mean: float                 # sum_s w_s (a_s E[Y_s] + b_s) (closed forms)
    resolution_rel_diff: float  # |R_h - R_2h| / (3 |R|), the larger of VaR's and CVaR's
    mass_error: float
    mean_rel_error: float


@dataclass(frozen=True)
class _Spread:
    """A spread lattice law mapped by z = scale y + shift: cell edges, the CDF
    at them, and suffix sums for the stop-loss."""

    weight: float
    edges: np.ndarray      # n + 1 cell edges (z units), increasing
    cdf: np.ndarray        # F at the edges: 0, pmf[0], pmf[0] + pmf[1], ...
    tail_mass: np.ndarray  # mass of cells i.. (n + 1 entries, last 0)
    tail_first: np.ndarray # sum over cells i.. of mass x centre (z units)
    beyond: float          # scale x mean_beyond (z units), above the last edge


def _spread(component: Component, pairs: bool) -> _Spread:
    law = component.law
    pmf = np.asarray(law.pmf, dtype=float)
    start, span = law.start, law.span
    if pairs:   # cells i and i + 1 merged (the engine's coarse lattice: pairs from cell 0)
        if len(pmf) % 2:
            pmf = np.append(pmf, 0.0)
        pmf = pmf[0::2] + pmf[1::2]
        start, span = start + 0.5 * span, 2.0 * span
    a, b = component.scale, component.shift
    n = len(pmf)
    edges = a * (start + span * (np.arange(n + 1, dtype=float) - 0.5)) + b
    centres = 0.5 * (edges[:-1] + edges[1:])
    cdf = np.concatenate(([0.0], np.cumsum(pmf)))
    tail_mass = np.concatenate((np.cumsum(pmf[::-1])[::-1], [0.0]))
    tail_first = np.concatenate((np.cumsum((pmf * centres)[::-1])[::-1], [0.0]))
    return _Spread(component.weight, edges, cdf, tail_mass, tail_first, a * law.mean_beyond)


def _cdf(spread: _Spread, z: np.ndarray) -> np.ndarray:
    """F at points z (piecewise linear through the cell edges)."""
    return np.interp(z, spread.edges, spread.cdf)


def _stop_loss(spread: _Spread, t: float) -> float:
    """E[(Z - t)+] of one spread law: cells wholly above t, the part of the
    cell containing t (uniform mass: (top - t)^2 / (2 width) per unit), and the
    mean beyond the lattice (claims above a cap, all above any t on it)."""
    edges = spread.edges
    if t <= edges[0]:
        return float(spread.tail_first[0] - t * spread.tail_mass[0]) + spread.beyond
    if t >= edges[-1]:
        return 0.0
    k = int(np.searchsorted(edges, t, side="right")) - 1       # t in cell k
    mass = float(spread.tail_mass[k] - spread.tail_mass[k + 1])
    width = float(edges[k + 1] - edges[k])
    partial = mass * (edges[k + 1] - t) ** 2 / (2.0 * width) if width > 0.0 else 0.0
    above = float(spread.tail_first[k + 1] - t * spread.tail_mass[k + 1])
    return above + partial + spread.beyond


def _risk(spreads: list[_Spread], level: float) -> tuple[float, float]:
    """(VaR, CVaR) of the mixture of spread laws, exact for them."""
    edges = np.unique(np.concatenate([s.edges for s in spreads]))
    total = np.zeros(len(edges))
    for s in spreads:
        total += s.weight * _cdf(s, edges)
    j = int(np.searchsorted(total, level, side="left"))
    if j == 0:
        var = float(edges[0])
    elif j >= len(edges):
        var = float(edges[-1])
    else:
        low, high = float(total[j - 1]), float(total[j])
        fraction = (level - low) / (high - low) if high > low else 1.0
        var = float(edges[j - 1] + (edges[j] - edges[j - 1]) * min(max(fraction, 0.0), 1.0))
    excess = math.fsum(s.weight * _stop_loss(s, var) for s in spreads)
    return var, var + excess / (1.0 - level)


def component_var(component: Component, level: float) -> float:
    """VaR of one component on its own, by the same root finding (for the bracket check)."""
    return _risk([_spread(Component(1.0, component.law, component.mean, component.scale, component.shift),
                          False)], level)[0]


def mixture_risk(components: list[Component], level: float) -> MixtureRisk:
    """VaR and CVaR at `level` of the mixture, extrapolated from spans h and 2h
    (module docstring), its self-checks enforced."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not components or any(not c.weight >= 0.0 or not c.scale > 0.0 for c in components):
        raise ValueError("a mixture needs components with weights >= 0 and scales > 0")
    fine_spreads = [_spread(c, False) for c in components]
    fine = _risk(fine_spreads, level)
    coarse = _risk([_spread(c, True) for c in components], level)
    var, cvar = (f + (f - c) / 3.0 for f, c in zip(fine, coarse))
    mean = math.fsum(c.weight * (c.scale * c.mean + c.shift) for c in components)
    scale = max(abs(mean), max(c.scale * c.mean for c in components), 1e-300)
    diff = max(abs(f - c) / 3.0 / max(abs(e), scale) for f, c, e in zip(fine, coarse, (var, cvar)))
    mass = math.fsum(c.weight * float(np.sum(c.law.pmf)) for c in components)
    mass_error = abs(mass - 1.0)
    bottom = min(float(s.edges[0]) for s in fine_spreads)
    lattice_mean = bottom + math.fsum(s.weight * _stop_loss(s, bottom) for s in fine_spreads)
    mean_error = abs(lattice_mean - mean) / scale
    failures = []
    if not mass_error <= MIXTURE_MASS_TOLERANCE:
        failures.append(f"total mass off by {mass_error:.3g} (tolerance {MIXTURE_MASS_TOLERANCE:g})")
    if not mean_error <= MIXTURE_MEAN_TOLERANCE:
        failures.append(f"mean off by {mean_error:.3g} relative (tolerance {MIXTURE_MEAN_TOLERANCE:g})")
    component_vars = [component_var(c, level) for c in components if c.weight > 0.0]
    slack = MIXTURE_VAR_SLACK * scale
    if not min(component_vars) - slack <= fine[0] <= max(component_vars) + slack:
        failures.append(f"VaR {fine[0]:.9g} outside its components' [{min(component_vars):.9g}, "
                        f"{max(component_vars):.9g}]")
    if failures:
        raise NumericsError("the scenarios' mixture law failed its self-checks: " + "; ".join(failures))
    return MixtureRisk(level=level, var=float(var), cvar=float(cvar), mean=mean, resolution_rel_diff=diff,
                       mass_error=mass_error, mean_rel_error=mean_error)
