"""The restricted master LP of column generation and what generation
reports (pooling.optimise.generation, module docstring 1): the LP over the
columns found so far, with county duals in rate units, and the objective
scaling that lets every linear objective use the mean rate's duals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, sparse

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import bound_multipliers
from pooling.economics.care import care_in_pool
from pooling.economics.objectives import EFFECTIVE_COVERAGE, LINEAR_OBJECTIVES, MEAN_RATE, objective_denominator
from pooling.economics.pool_bounds import (
    ObjectiveWeights,
)
from pooling.optimise.columns import Candidate, top_rate

ARTIFICIAL_RATE = -10.0
"""Rate of a county's artificial column: far below any real rate (rates lie in
[0, 1]), so the LP uses it only when no real cover exists."""


@dataclass
class GroupLog:
    """What happened in one group (written to result.json)."""

    label: str
    counties: int
    method: str                      # "enumerated" | "generated"
    columns: int = 0                 # admissible pools in the master at the end
    pools_priced: int = 0            # pools priced exactly (generated groups)
    reduced_rate_bound: float = 0.0  # delta_g: no pool of the group has rr above this

    def to_dict(self) -> dict:
        return {"group": self.label, "counties": self.counties, "method": self.method,
                "columns": self.columns, "pools_priced": self.pools_priced,
                "reduced_rate_bound": self.reduced_rate_bound}


@dataclass
class GenerationLog:
    rounds: int = 0
    converged: bool = True
    stopped: str | None = None       # why generation stopped before converging
    master_lp_value: float | None = None
    lagrangian_bound: float | None = None
    listed_lp_value: float | None = None   # the master LP with listed pools at their caps (a bound)
    bound_method: str = ""
    groups: list[GroupLog] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "converged": self.converged, "stopped": self.stopped,
                "master_lp_value": self.master_lp_value, "lagrangian_bound": self.lagrangian_bound,
                "listed_lp_value": self.listed_lp_value,
                "bound_method": self.bound_method, "groups": [g.to_dict() for g in self.groups]}


@dataclass
class GeneratedColumns:
    """Output of `generate_columns`: every candidate priced (for diagnosis), the
    admissible ones in the master (the MILP's columns), the valid bound and the log."""

    candidates: list[Candidate]
    columns: list[Candidate]
    bound: float | None
    log: GenerationLog


class ObjectiveScale:
    """Linear objectives other than the mean rate in the master's rate units:
    a pool's value w_P t_P / D is N_P (s_P t_P) / N with s_P = w_P N / (N_P D),
    so the duals, reduced rates and the Lagrangian bound keep their form with
    t_P replaced by s_P t_P (pooling.economics.objectives). The exact check
    bounds s_P by a constant per group (`cap`)."""

    def __init__(self, instance: Instance, spec: Spec):
        self.kind = spec.objective.kind
        self.instance = instance
        self.spec = spec
        self.linear = self.kind in LINEAR_OBJECTIVES
        self.nominal = self.kind == MEAN_RATE or not self.linear
        self.people = instance.total_enrollees
        self.denominator = objective_denominator(self.kind, instance, instance.ids) if not self.nominal else 0.0

    def rate(self, candidate: Candidate, rate: float) -> float:
        if self.nominal:
            return rate
        return rate * candidate.column.objective_weight * self.people / (candidate.pricing.enrollees
                                                                          * self.denominator)

    def weights(self, members: tuple[str, ...]) -> ObjectiveWeights:
        """Per-county bounds on s_P (pool_bounds.ObjectiveWeights) valid for
        every pool P that is a proper subset of the group `members` (the whole
        group is priced exactly instead). A network only grows with the pool (a
        place is in network when all its approvers are members), so a member
        c's eligible cost E[Y_c,P] is at most its cost in g - {d} for some
        d != c, the largest of which bounds it. Mean effective rate: s_P is the
        enrollee-weighted mean of e_c,P <= that share. Coverage: s_P r*_P N_P =
        r*_P E[Y_P] N / D <= B_P N / (kappa D), so the budget weight is c's
        stand-alone cost (N / D) / N_c summed against E_lo(P) exactly, and at
        the top rate s_P <= the enrollee-weighted mean of the bounded costs."""
        n = len(members)
        if self.nominal:
            return ObjectiveWeights.nominal(n)
        group = frozenset(members)
        pools = [group - {d} for d in members] if n > 1 else [group]
        counties = [self.instance.county(c) for c in members]
        largest = [max((care_in_pool(self.instance, county, pool) for pool in pools if county.id in pool),
                       key=lambda care: care.eligible) for county in counties]
        if self.kind == EFFECTIVE_COVERAGE:
            per_person = self.people / self.denominator
            alone = [care_in_pool(self.instance, county, frozenset([county.id])) for county in counties]
            return ObjectiveWeights(np.array([a.eligible / a.enrollees * per_person for a in alone]),
                                    np.array([c.eligible / c.enrollees * per_person for c in largest]))
        shares = np.array([c.effective_share for c in largest])
        alone = np.array([care_in_pool(self.instance, county, frozenset([county.id])).effective_share
                          for county in counties])
        totals = np.array([c.total for c in largest])
        low = bound_multipliers(self.instance, self.spec)
        if low is not None:   # induced care: E[Y_P] >= sum m_lo,c T_c e_c (economics.behaviour)
            totals = totals * np.array([low[c] for c in members])
        return ObjectiveWeights(shares, shares, effective_box=(totals, np.minimum(alone, shares), shares))


class RestrictedMaster:
    """The restricted master LP over the current columns (module docstring, 1)."""

    def __init__(self, instance: Instance, spec: Spec):
        self.ids = tuple(sorted(instance.ids))
        self.row = {cid: i for i, cid in enumerate(self.ids)}
        self.total = instance.total_enrollees
        self.enrollees = np.array([instance.county(c).enrollees for c in self.ids], dtype=float)
        self.spec = spec
        self.columns: dict[frozenset[str], Candidate] = {}
        self.scale = ObjectiveScale(instance, spec)

    def add(self, members: frozenset[str], candidate: Candidate) -> bool:
        if members in self.columns or not candidate.admissible:
            return False
        self.columns[members] = candidate
        return True

    def value(self, candidate: Candidate) -> float:
        return candidate.pricing.enrollees * self.scale.rate(candidate, top_rate(candidate, self.spec)) / self.total

    def solve(self, extra: list[tuple[frozenset[str], float]] = ()
              ) -> tuple[float, np.ndarray, dict[frozenset[str], float]]:
        """(LP value, county duals in rate units rho_c, LP value of y per column),
        with `extra` columns (members, value in the master's units) beside the
        master's own (pools not priced, at an upper bound on their value)."""
        keys = list(self.columns) + [k for k, _ in extra]
        n, m = len(self.ids), len(keys)
        rows = [self.row[c] for key in keys for c in sorted(key)] + list(range(n))
        cols = [j for j, key in enumerate(keys) for _ in key] + list(range(m, m + n))
        a_eq = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, m + n))
        values = np.array([self.value(self.columns[k]) for k in self.columns] + [v for _, v in extra]
                          + list(ARTIFICIAL_RATE * self.enrollees / self.total))
        res = optimize.linprog(-values, A_eq=a_eq, b_eq=np.ones(n), bounds=(0, None), method="highs")
        if res.status != 0:
            raise RuntimeError(f"restricted master LP failed: {res.message}")
        pi = -np.asarray(res.eqlin.marginals)
        rho = pi * self.total / self.enrollees
        return float(-res.fun), rho, {k: float(res.x[j]) for j, k in enumerate(keys)}
