"""Result objects of `solve` and `evaluate`, and their JSON form.

Every result carries its provenance (hashes, versions, seed) and the
self-checks of the numerics that priced it, so a reader can trust or
reproduce it. Timings are the only fields that vary between identical runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pooling.economics.pools import PoolPricing


@dataclass(frozen=True)
class PoolOutcome:
    """One pool of a plan: its members, rate and economics."""

    id: str
    pricing: PoolPricing
    rate: float

    def to_dict(self) -> dict[str, Any]:
        p = self.pricing
        n = p.numerics
        return {
            "id": self.id,
            "counties": list(p.counties),
            "rate": self.rate,
            "max_rate": p.max_rate,
            "enrollees": p.enrollees,
            "budget": p.budget,
            "revenue": p.revenue,
            "fixed_costs": p.fixed_costs,
            "expected_cost": p.expected_cost,
            "var": p.var,
            "cvar": p.cvar,
            "usable": p.usable,
            "numerics": {"mean_rel_error": n.mean_rel_error,
                         "variance_rel_error": n.variance_rel_error,
                         "discretisation_variance_share": n.discretisation_variance_share,
                         "resolution_rel_diff": n.resolution_rel_diff,
                         "lattice_points": n.points},
        }


def plan_outcomes(pricings: list[PoolPricing], rates: list[float]) -> list[PoolOutcome]:
    """Pools in a canonical order (by smallest county id) with ids P01, P02, ..."""
    order = sorted(range(len(pricings)), key=lambda i: pricings[i].counties)
    width = max(2, len(str(len(pricings))))
    return [PoolOutcome(id=f"P{k + 1:0{width}d}", pricing=pricings[i], rate=rates[i])
            for k, i in enumerate(order)]


def mean_rate(pools: list[PoolOutcome]) -> float:
    """Enrollee-weighted mean rate of a plan."""
    total = sum(p.pricing.enrollees for p in pools)
    return math.fsum(p.pricing.enrollees * p.rate for p in pools) / total


GAP_FLOOR = 1e-6
"""Relative gaps divide by max(|objective|, this): a rate dispersion of 0 would
otherwise turn solver noise into a gap of 1."""


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / |objective| (None without both)."""
    if objective is None or bound is None:
        return None
    return abs(bound - objective) / max(abs(objective), GAP_FLOOR)


def numerics_summary(pricings) -> dict[str, Any]:
    """Worst self-check over the priced pools (closed-form mean/variance, two resolutions)."""
    checks = [p.numerics for p in pricings]
    if not checks:
        return {}
    return {
        "checked_against": ("closed-form mean of Y_P; closed-form variance of the discretised model; "
                            "VaR/CVaR error estimate from spans h and 2h (Richardson)"),
        "pools_priced": len(checks),
        "max_mean_rel_error": max(c.mean_rel_error for c in checks),
        "max_variance_rel_error": max(c.variance_rel_error for c in checks),
        "max_resolution_rel_diff": max(c.resolution_rel_diff for c in checks),
        "max_lattice_points": max(c.points for c in checks),
    }


@dataclass
class Result:
    """Outcome of `solve`: the plan, its certificate (bound, gap) and provenance."""

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_seconds: float
    pools: list[PoolOutcome]
    provenance: dict[str, Any]
    spec: dict[str, Any]
    objective_kind: str
    columns: int
    candidate_pools: int
    timings: dict[str, float]
    solver_options: dict[str, Any]
    numerics: dict[str, Any]
    diagnosis: list[str] = field(default_factory=list)
    termination: str | None = None
    mean_rate: float | None = None
    candidate_generation: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    """Decomposed solves: one entry per independent block (label, counties,
    status, objective, bound, pools, diagnosis); empty for a monolithic solve."""

    @property
    def has_plan(self) -> bool:
        return bool(self.pools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "objective_kind": self.objective_kind,
            "objective": self.objective,
            "mean_rate": self.mean_rate,
            "bound": self.bound,
            "gap": self.gap,
            "wall_seconds": self.wall_seconds,
            "pools": [p.to_dict() for p in self.pools],
            "diagnosis": list(self.diagnosis),
            "columns": self.columns,
            "candidate_pools": self.candidate_pools,
            "candidate_generation": dict(self.candidate_generation),
            "termination": self.termination,
            "timings": dict(self.timings),
            "solver_options": dict(self.solver_options),
            "numerics": dict(self.numerics),
            "spec": self.spec,
            "provenance": dict(self.provenance),
        } | ({"groups": [dict(g) for g in self.groups]} if self.groups else {})


@dataclass(frozen=True)
class Violation:
    """One rule a plan breaks: the rule (a spec field such as "max_rate_gap",
    "no_county_worse_off", "rates.min" or a pooling rule), the pools involved
    (ids as in the plan's pool list, and their counties), the rates involved,
    the limit the rule sets and a readable message."""

    rule: str
    pools: tuple[str, ...]
    counties: tuple[tuple[str, ...], ...]
    rates: tuple[float, ...]
    limit: float | None
    message: str
    county: str | None = None   # the member that sets the limit, for per-county rules
    group: str | None = None    # the gap group, for max_rate_gap

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "pools": list(self.pools),
                "counties": [list(c) for c in self.counties], "rates": list(self.rates),
                "limit": self.limit, "county": self.county, "group": self.group,
                "message": self.message}


@dataclass
class Evaluation:
    """Outcome of `evaluate`: a given plan with the rates `solve` would give
    its pools under the spec's rules and objective, or, when the plan breaks a
    rule, each pool at its maximum solvent rate and the violations."""

    feasible: bool
    objective: float
    pools: list[PoolOutcome]
    violations: list[Violation]
    provenance: dict[str, Any]
    spec: dict[str, Any]
    numerics: dict[str, Any]
    wall_seconds: float
    subsidy: dict[str, Any] | None = None
    mean_rate: float | None = None
    rates_from: str = "solve"   # "solve": the spec's MILP on the plan's pools; "max_rate": r*_P

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "feasible" if self.feasible else "infeasible",
            "subsidy": self.subsidy,
            "feasible": self.feasible,
            "objective_kind": self.spec["objective"]["kind"],
            "objective": self.objective,
            "mean_rate": self.mean_rate,
            "rates_from": self.rates_from,
            "pools": [p.to_dict() for p in self.pools],
            "violations": [v.to_dict() for v in self.violations],
            "violation_messages": [v.message for v in self.violations],
            "wall_seconds": self.wall_seconds,
            "numerics": dict(self.numerics),
            "spec": self.spec,
            "provenance": dict(self.provenance),
        }
