"""Risk measures (VaR, CVaR) on lattice distributions and on samples.

Lattice convention: a lattice distribution has atoms at ``start + span * i``.
Mean-preserving discretisation puts on atom i the mass of the continuous law
around it, so the continuous CDF is best approximated by spreading each atom
uniformly over ``[x_i - span/2, x_i + span/2]``: the CDF is then piecewise
linear through the cell edges. VaR and CVaR below are exact for that spread
law; they differ from the continuous law's by O(span^2) where the density is
smooth, instead of O(span) for raw atoms.

Definitions (DESIGN §Solvency): VaR_a is the a-quantile; CVaR_a is the
Rockafellar-Uryasev tail mean min_t { t + E[(X - t)+] / (1 - a) }.
"""

from __future__ import annotations

import math

import numpy as np


def lattice_var_cvar(start: float, span: float, pmf: np.ndarray, level: float) -> tuple[float, float]:
    """(VaR, CVaR) at `level` of the spread lattice law (see module docstring)."""
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
    # Upper tail: the part of cell j above VaR (uniform, so its mean is the
    # midpoint of [VaR, cell top]) plus every atom above cell j.
    partial_mass = max(float(cdf[j]) - level, 0.0)
    partial = partial_mass * 0.5 * (var + centre_j + 0.5 * span)
    upper = pmf[j + 1:]
    upper_mass = float(upper.sum())
    indices = np.arange(j + 1, len(pmf), dtype=float)
    upper_first = upper_mass * start + span * float(upper @ indices)
    # Remaining tail mass beyond the lattice (numerically ~0) is ignored.
    cvar = (partial + upper_first) / (1.0 - level)
    return float(var), float(cvar)


def empirical_quantile_index(n: int, level: float) -> int:
    """0-based index of the empirical level-quantile of n sorted samples: the
    smallest k with (k + 1) / n >= level. level * n is rounded to 9 decimals
    first, so 0.55 * 100 = 55.000000000000007 counts as 55."""
    return max(int(math.ceil(round(level * n, 9))) - 1, 0)


def sample_var_cvar(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Empirical VaR (smallest x with F_n(x) >= level) and R-U CVaR of samples."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ordered = np.sort(np.asarray(samples, dtype=float))
    var = float(ordered[empirical_quantile_index(len(ordered), level)])
    excess = np.maximum(ordered - var, 0.0).mean()
    return var, float(var + excess / (1.0 - level))
