"""Quadrature of a Gamma(mean 1, cv) shock for the adjustment fund's mixture
over the common shocks (pooling.risk.excess; docs/model.md, "Adjustment
funds"): cells of given probability with an edge at the solvency level, two
nodes per cell, as many cells as the group's own spread asks for."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammainc, gammaincinv

from pooling.risk.compound import CompoundModel

MIN_BODY_CELLS = 8
"""Fewest cells below the level (small groups: wide conditional laws)."""
MAX_BODY_CELLS = 512
"""Most cells below the level: nodes cost an FFT per member each (nested for
prefecture shocks)."""
CELLS_PER_SPREAD = 12.0
"""Cells of a shock's quadrature below the level: CELLS_PER_SPREAD times
(w cv) / s, the shock's relative spread over the group's own relative spread
given the shocks (`_conditional_spread`), within [MIN_BODY_CELLS,
MAX_BODY_CELLS]. Each cell gets two nodes, mean +- sd of Theta in it (three
moments kept, so the error falls as the cell's width cubed, not squared), and
the conditional laws must overlap from node to node or the mixture is a comb:
VaR then lands between its teeth. Measured against the engine for members of
400 to 3,200 admissions and their group at shock cv 0.05 to 0.4: 12 kept VaR
and CVaR within 4e-4 (lattice resolution included; the limit tests in
tests/test_adjustment_fund.py hold them to ADJUSTMENT_ACCURACY)."""
TAIL_SPLITS = 6
"""The top tail cell is halved this many times more, so the far tail (levels
up to 0.9999) has nodes of its own."""


def gamma_nodes(cv: float, level: float, body: int | None = None, tail: int | None = None,
                splits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, weights) of Theta ~ Gamma(mean 1, cv): `body` cells of equal
    probability below the solvency level, `tail` above it (the top one halved
    `splits` times), each cell two nodes of half its weight at its mean plus
    and minus its sd (from E[Theta^j; a < Theta < b] = P_{k+j}(k b) -
    P_{k+j}(k a) times (k+1)...(k+j-1) / k^(j-1), k = 1/cv^2; one node at the
    mean where the lower would fall below 0), so the weights sum to 1 and
    Theta's mean is exact and its variance too but for such a cell. A cell edge at the level keeps the
    shock's own upper tail, which CVaR averages, whole. cv = 0: the single
    node 1."""
    if cv == 0.0:
        return np.ones(1), np.ones(1)
    body = MIN_BODY_CELLS if body is None else body
    tail = max(4, body // 2) if tail is None else tail
    splits = TAIL_SPLITS if splits is None else splits
    k = 1.0 / (cv * cv)
    upper = level + (1.0 - level) * np.arange(tail) / tail
    last = 1.0 - (1.0 - level) / tail * 0.5 ** np.arange(1, splits + 1)
    probs = np.concatenate((level * np.arange(body) / body, upper, last, [1.0]))
    edges = np.concatenate(([0.0], gammaincinv(k, probs[1:-1]), [np.inf]))   # in X = k Theta
    weights = np.diff(gammainc(k, edges))
    first = np.diff(gammainc(k + 1.0, edges))                        # E[Theta; cell]
    second = np.diff(gammainc(k + 2.0, edges)) * (k + 1.0) / k       # E[Theta^2; cell]
    keep = weights > 0.0
    weights, first, second = weights[keep], first[keep], second[keep]
    mean = first / weights
    spread = np.sqrt(np.maximum(second / weights - mean * mean, 0.0))
    spread = np.where(mean - spread >= 0.0, spread, 0.0)     # a cell at 0 too skewed: its mean alone
    nodes = np.concatenate((mean - spread, mean + spread))
    return nodes, np.concatenate((weights, weights)) / 2.0


def _conditional_spread(model: CompoundModel) -> float:
    """sd / mean of the group's total given the common shocks at 1, from its
    Poisson variance alone (the county shocks only widen the conditional laws,
    so leaving them out errs towards more nodes): the narrowest of the
    conditional laws a shock quadrature must step across."""
    mean = model.mean
    if mean <= 0.0:
        return 1.0
    poisson = math.fsum(s.second_moment_sum for part in (model, *model.parts) for s in part.streams)
    return math.sqrt(poisson) / mean


def _body_cells(shock_spread: float, spread: float) -> int:
    """Quadrature cells below the level for a shock of relative spread w cv (CELLS_PER_SPREAD)."""
    if shock_spread <= 0.0:
        return MIN_BODY_CELLS
    wanted = math.ceil(CELLS_PER_SPREAD * shock_spread / max(spread, 1e-300))
    return int(min(MAX_BODY_CELLS, max(MIN_BODY_CELLS, wanted)))


FINE_FACTOR = 4
"""A sum of shocks (`summed_nodes`) is first built on the product of their
own quadratures, each with this many times the cells the sum will get, then
cut into the sum's cells."""


def summed_nodes(levels: list[tuple[float, float]], level: float, body: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, weights) of M = sum_u w_u Theta_u (independent Gamma(1, cv_u)
    shocks, `levels` = [(w_u, cv_u)]): the product of the shocks' own
    quadratures (FINE_FACTOR x `body` cells each) is a fine discrete law of M
    with its mean and variance; sorted and cut into `body` cells of equal
    probability below `level` and the tail cells of `gamma_nodes` above it,
    each cell two nodes at its mean +- sd (one where the lower would fall
    below 0). So M's mean and variance are kept and a group whose members all
    share one prefecture is mixed over one variable, not a grid of pairs."""
    values, weights = np.zeros(1), np.ones(1)
    for w, cv in levels:
        nodes, node_weights = gamma_nodes(cv, level, FINE_FACTOR * body)
        values = np.add.outer(values, w * nodes).ravel()
        weights = np.multiply.outer(weights, node_weights).ravel()
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    tail = max(4, body // 2)
    upper = level + (1.0 - level) * np.arange(tail) / tail
    last = 1.0 - (1.0 - level) / tail * 0.5 ** np.arange(1, TAIL_SPLITS + 1)
    edges = np.concatenate((level * np.arange(1, body) / body, upper, last))
    centres = np.cumsum(weights) - 0.5 * weights            # each atom's cell by its middle
    cell = np.searchsorted(edges, centres, side="right")
    count = len(edges) + 1
    mass = np.bincount(cell, weights=weights, minlength=count)
    first = np.bincount(cell, weights=weights * values, minlength=count)
    keep = mass > 0.0
    mean = np.zeros(count)
    mean[keep] = first[keep] / mass[keep]
    second = np.bincount(cell, weights=weights * (values - mean[cell]) ** 2, minlength=count)
    mass, mean, second = mass[keep], mean[keep], second[keep]
    spread = np.sqrt(second / mass)
    spread = np.where(mean - spread >= 0.0, spread, 0.0)
    return np.concatenate((mean - spread, mean + spread)), np.concatenate((mass, mass)) / 2.0
