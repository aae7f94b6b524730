"""Cheap, valid upper bounds on what any pool of a group can pay, without
pricing it (for column generation, pooling.optimise.generation).

For CVaR: given the shocks a pool shares, E[Y_P | shocks] = E[Y_P] M with M a
mix of unit-mean multipliers, and, CVaR respecting the convex order,
CVaR_a(Y_P) >= E[Y_P] CVaR_a(M) >= kappa E[Y_P], kappa = `group_kappa` (the
national shock, and the prefecture and county shocks spread evenly over as
many units as the pool can hold). Hence r*_P <= U(P) = min(r_max, B_P /
(kappa E[Y_P])), with B_P and a lower bound on E[Y_P] linear in the members.
`rate_bound` maximises U(P) - (enrollee-weighted mean of a dual rho over P)
over all subsets: a fractional 0-1 quadratic programme, solved exactly by
Dinkelbach's method (with the r_max cap as a linear constraint) on a MILP
linearised with w_ij = x_i x_j (`GroupProgram`; `BandedProgram` runs one per
band of pool sizes, each with its kappa). `GroupProgram.cut` excludes a
subset, so a caller can price the maximiser exactly and ask again (lazy exact
pricing). `ListedPools` computes the same kind of bound for every pool of a
listed group at once, with no MILP. With induced utilisation both tighten the
cap by group_economics.ResponseBound (the MILP through its tangent).

The parts: pooling.economics.group_economics (a group's per-county budget and
cost figures, ObjectiveWeights, BOUND_PRICING_SLACK, BoundTimeLimit),
pooling.economics.kappa_bounds (kappa from the shocks) and
pooling.economics.bound_milp (GroupProgram, BandedProgram); this module holds
`rate_bound` and `ListedPools` and re-exports the parts' public names.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

from pooling.economics.bound_milp import BandedProgram, GroupProgram, _size_cap
from pooling.economics.group_economics import (
    BOUND_PRICING_SLACK,
    BoundTimeLimit,
    CountyGroup,
    GroupEconomics,
    ObjectiveWeights,
    effective_ratio,
)
from pooling.economics.kappa_bounds import (
    KappaOf,
    group_kappa,
    kappa_bands,
    kappa_of,
    shock_cvar,
    shocks_cvar,
    two_shock_cvar,
)

__all__ = [
    "BOUND_RESOLUTION",
    "BandedProgram",
    "BoundTimeLimit",
    "CountyGroup",
    "GroupEconomics",
    "GroupProgram",
    "KappaOf",
    "ListedPools",
    "ObjectiveWeights",
    "effective_ratio",
    "group_kappa",
    "kappa_bands",
    "kappa_of",
    "rate_bound",
    "shock_cvar",
    "shocks_cvar",
    "two_shock_cvar",
]

BOUND_RESOLUTION = 1e-6
"""Callers ask whether any pool beats a value by this much (rate units)."""


def rate_bound(econ: GroupEconomics, rho: np.ndarray, *, kappa: float | None, top: float,
               max_counties: int | None, min_enrollees: int, min_size: int = 2,
               weights: ObjectiveWeights | None = None,
               edges: tuple[tuple[int, int], ...] | None = None) -> float:
    """An upper bound on max over pools P of the group (|P| >= min_size,
    within max_counties and min_enrollees) of s_P r*_P - avg_N rho(P), s_P the
    objective's value of one unit of rate per enrollee (1 for the nominal mean
    rate; `weights` bound it, ObjectiveWeights).

    Uses r*_P <= U(P) = min(top, (1 + slack) B_P / (kappa E_lo(P))), E_lo(P) =
    sum_c e_c <= E[Y_P] (fellow members only add in-network cost), and only
    pools with B_P >= 0 (others cannot pay a rate >= 0). Without kappa (VaR,
    ruin) only `top` caps r*_P: top - min rho. Returns -inf when no such
    pool exists, and 0 when every pool's bound is negative (callers need
    max(0, .) only).
    """
    if _size_cap(econ, max_counties, min_enrollees, min_size) is None:
        return -math.inf
    weights = weights or ObjectiveWeights.nominal(len(econ.ids))
    if kappa is None:
        return float(np.max(top * weights.at_top - rho))
    return GroupProgram.build(econ, rho, kappa=kappa, top=top, max_counties=max_counties,
                              min_enrollees=min_enrollees, min_size=min_size, weights=weights,
                              edges=edges).maximise()[0]


class ListedPools:
    """The pools of a group listed one by one (when they are few enough): the
    bound s_P U(P) - avg rho(P) of `GroupProgram` for all of them at once,
    from sparse member sums, so no MILP is needed to find the pools worth
    pricing exactly."""

    def __init__(self, econ: GroupEconomics, pools: list[frozenset[str]], kappa: KappaOf):
        self.econ = econ
        self.pools = pools
        rows = [r for r, members in enumerate(pools) for _ in members]
        cols = [econ.index[c] for members in pools for c in sorted(members)]
        self.matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pools), len(econ.ids)))
        sizes = np.asarray(self.matrix.sum(axis=1)).ravel().astype(int)
        prefectures = np.asarray(((self.matrix @ econ.prefecture_onehot) > 0).sum(axis=1)).ravel().astype(int)
        self.kappa = np.array([kappa(k, m) for k, m in zip(sizes, prefectures)])
        self.budget = self.matrix @ econ.beta - econ.fixed
        # E[Y_P] >= stand-alone costs + migrants brought in network by fellow members
        self.expected = (self.matrix @ econ.alone_mean
                         + np.asarray(self.matrix.multiply(self.matrix @ econ.extra).sum(axis=1)).ravel())
        self.people = self.matrix @ econ.enrollees

    def caps(self, weights: ObjectiveWeights, top: float) -> np.ndarray:
        """Per pool, a bound on s_P r*_P: min(top avg_N(at_top), (1 + slack) B_P
        avg_N(budget weight) / (kappa_k E_lo(P))); -inf where B_P < 0 (no rate
        >= 0 is solvent)."""
        n = self.econ.enrollees
        at_top = top * (self.matrix @ (n * weights.at_top)) / self.people
        with np.errstate(divide="ignore", invalid="ignore"):
            if weights.effective_box is not None:
                ratio = effective_ratio(self.matrix.toarray(), n, weights.effective_box)
                capped = (1.0 + BOUND_PRICING_SLACK) * self.budget * ratio / (self.kappa * self.people)
            else:
                capped = ((1.0 + BOUND_PRICING_SLACK) * self.budget * (self.matrix @ (n * weights.budget))
                          / (self.kappa * self.expected * self.people))
        capped = np.where(self.expected > 0.0, capped, np.inf)
        if self.econ.response is not None:   # induced utilisation: group_economics.ResponseBound
            capped = self.econ.response.tighten(capped, at_top / top)
        return np.where(self.budget < 0.0, -np.inf, np.minimum(at_top, capped))

    def values(self, rho: np.ndarray, weights: ObjectiveWeights, top: float) -> np.ndarray:
        """Per pool: its cap minus avg_N rho (a bound on its reduced rate)."""
        return self.caps(weights, top) - (self.matrix @ (self.econ.enrollees * rho)) / self.people
