"""Set-partitioning MILP over priced candidate pools (DESIGN §Formulations, 1).

Columns are candidate pools with their maximum solvent rate r*_P and a
lower bound L_P (rates.min and the per-pool equalisation rules: no county
worse off, cross-subsidy cap, expected-surplus cap). Variables: y_P binary
(pool chosen), r_P continuous (its rate). Constraints:
  L_P * y_P <= r_P <= r*_P * y_P      (a chosen pool pays an admissible rate)
  sum_{P contains c} y_P = 1          (every county in exactly one pool)
  hi_g - lo_g <= gap                  (max_rate_gap within each gap group g,
                                       hi_g >= r_P, lo_g <= r_P + r_max (1 - y_P))
  r_P = r_min y_P + step k_P, k_P integer (rate menu r_min + k step, when a
                                       step is given; k within the column's bounds)
With the mean-rate objective and neither a gap nor a menu, r_P = r*_P y_P
is an expression, not a variable (each pool then pays its r*_P).
Objectives: max_mean_rate (sum N_P r_P / N), max_mean_effective_rate and
max_effective_coverage (sum w_P r_P / D, the column's weight over the
objective's total: pooling.economics.objectives), max_min_rate (z <= r_P +
r_max (1 - y_P)) and min_rate_dispersion (hi - lo over the whole plan). The
model carries `mean_rate` (an expression) so a solver can break ties
lexicographically. The builder is a pure function of the data; it never solves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyomo.core as pyo

LINEAR_KINDS = ("max_mean_rate", "max_mean_effective_rate", "max_effective_coverage")
"""Objectives sum_P w_P r_P / D: each chosen pool wants its highest rate."""
OBJECTIVE_KINDS = (*LINEAR_KINDS, "max_min_rate", "min_rate_dispersion", "min_group_gap", "min_max_rate")
"""The spec's objectives; min_group_gap (smallest largest gap over the gap
groups), used to diagnose an infeasible max_rate_gap; min_max_rate (the lowest
highest rate), which a decomposed min_rate_dispersion asks of each block."""


@dataclass(frozen=True)
class Column:
    """A usable candidate pool as the MILP sees it."""

    members: tuple[str, ...]
    enrollees: int
    max_rate: float
    min_rate: float = 0.0
    gap_groups: tuple[str, ...] = ()
    weight: float | None = None
    """w_P of a linear objective (None: enrollees, the mean rate's)."""
    contracts: tuple[str, ...] = ()
    """Contract options the pool takes in this column (variants of one pool
    cover the same counties, so at most one of them is chosen)."""

    @property
    def objective_weight(self) -> float:
        return float(self.enrollees) if self.weight is None else self.weight


@dataclass(frozen=True)
class PartitionRules:
    """Coupling rules and the objective of the MILP."""

    objective: str = "max_mean_rate"
    min_rate: float = 0.0
    max_rate: float = 1.0
    max_rate_gap: float | None = None
    rate_step: float | None = None


MENU_SLACK = 1e-9
"""Rates within 1e-9 of a menu point count as on it (floating-point grids)."""


def menu_steps(column: Column, origin: float, step: float) -> tuple[int, int]:
    """Range of k with origin + k step inside [L_P, r*_P] (empty if k_lo > k_hi)."""
    k_lo = max(0, int(math.ceil((column.min_rate - origin) / step - MENU_SLACK)))
    k_hi = int(math.floor((column.max_rate - origin) / step + MENU_SLACK))
    return k_lo, k_hi


def rates_are_free(rules: PartitionRules) -> bool:
    """True when every chosen pool pays its r*_P at the optimum: mean-rate
    objective, no rate gap, no menu (so r_P needs no variable)."""
    return rules.objective in LINEAR_KINDS and rules.max_rate_gap is None and rules.rate_step is None


def build_set_partition(columns: list[Column], county_ids: list[str], total_enrollees: int,
                        rules: PartitionRules = PartitionRules(),
                        objective_total: float | None = None) -> pyo.ConcreteModel:
    """Pyomo model of the set-partitioning problem. Every county must be in some column.
    `objective_total` is D of a linear objective (default: total_enrollees)."""
    if rules.objective not in OBJECTIVE_KINDS:
        raise ValueError(f"unknown objective {rules.objective!r}")
    covering: dict[str, list[int]] = {cid: [] for cid in county_ids}
    for j, col in enumerate(columns):
        for cid in col.members:
            covering[cid].append(j)
    uncovered = [cid for cid, js in covering.items() if not js]
    if uncovered:
        raise ValueError(f"counties without a column: {uncovered}")

    top = rules.max_rate
    m = pyo.ConcreteModel(name="set_partition")
    m.P = pyo.RangeSet(0, len(columns) - 1)
    m.C = pyo.Set(initialize=list(county_ids), ordered=True)
    m.y = pyo.Var(m.P, domain=pyo.Binary)
    if rates_are_free(rules):
        if any(col.min_rate > col.max_rate for col in columns):
            raise ValueError("a column's rate floor exceeds its r*_P; drop it before building")
        # Nothing couples the rates and the objective rewards each one: a chosen
        # pool pays r*_P. r_P = r*_P y_P as an expression halves the model.
        m.r = pyo.Expression(m.P, rule=lambda _m, j: columns[j].max_rate * _m.y[j])
    else:
        slack = MENU_SLACK if rules.rate_step is not None else 0.0
        m.r = pyo.Var(m.P, bounds=lambda _m, j: (0.0, columns[j].max_rate + slack))
        m.rate_cap = pyo.Constraint(m.P, rule=lambda _m, j: _m.r[j] <= (columns[j].max_rate + slack) * _m.y[j])
        m.rate_floor = pyo.Constraint(m.P, rule=lambda _m, j: _m.r[j] >= columns[j].min_rate * _m.y[j])
    m.cover = pyo.Constraint(m.C, rule=lambda _m, c: sum(_m.y[j] for j in covering[c]) == 1)

    if rules.rate_step is not None:
        steps = {j: menu_steps(columns[j], rules.min_rate, rules.rate_step) for j in m.P}
        if any(lo > hi for lo, hi in steps.values()):
            raise ValueError("a column has no menu rate within its bounds; drop it before building")
        m.k = pyo.Var(m.P, domain=pyo.NonNegativeIntegers, bounds=lambda _m, j: (0, steps[j][1]))
        m.menu = pyo.Constraint(m.P, rule=lambda _m, j: _m.r[j] == rules.min_rate * _m.y[j]
                                + rules.rate_step * _m.k[j])
        m.menu_hi = pyo.Constraint(m.P, rule=lambda _m, j: _m.k[j] <= steps[j][1] * _m.y[j])
        m.menu_lo = pyo.Constraint(m.P, rule=lambda _m, j: _m.k[j] >= steps[j][0] * _m.y[j])

    if rules.max_rate_gap is not None:
        groups = sorted({g for col in columns for g in col.gap_groups})
        members = {g: [j for j, col in enumerate(columns) if g in col.gap_groups] for g in groups}
        m.G = pyo.Set(initialize=groups, ordered=True)
        m.group_hi = pyo.Var(m.G, bounds=(0.0, top))
        m.group_lo = pyo.Var(m.G, bounds=(0.0, top))
        m.gap_hi = pyo.Constraint(
            [(g, j) for g in groups for j in members[g]],
            rule=lambda _m, g, j: _m.group_hi[g] >= _m.r[j])
        m.gap_lo = pyo.Constraint(
            [(g, j) for g in groups for j in members[g]],
            rule=lambda _m, g, j: _m.group_lo[g] <= _m.r[j] + top * (1 - _m.y[j]))
        m.gap = pyo.Constraint(m.G, rule=lambda _m, g: _m.group_hi[g] - _m.group_lo[g] <= rules.max_rate_gap)

    m.mean_rate = pyo.Expression(
        expr=sum((columns[j].enrollees / total_enrollees) * m.r[j] for j in m.P))
    if rules.objective == "max_mean_rate":
        m.objective = pyo.Objective(expr=m.mean_rate, sense=pyo.maximize)
    elif rules.objective in LINEAR_KINDS:
        total = objective_total if objective_total is not None else total_enrollees
        m.objective = pyo.Objective(expr=sum((columns[j].objective_weight / total) * m.r[j] for j in m.P),
                                    sense=pyo.maximize)
    elif rules.objective == "max_min_rate":
        m.z = pyo.Var(bounds=(0.0, top))
        m.min_link = pyo.Constraint(m.P, rule=lambda _m, j: _m.z <= _m.r[j] + top * (1 - _m.y[j]))
        m.objective = pyo.Objective(expr=m.z, sense=pyo.maximize)
    elif rules.objective == "min_group_gap":
        m.widest = pyo.Var(bounds=(0.0, top))
        m.widest_link = pyo.Constraint(m.G, rule=lambda _m, g: _m.widest >= _m.group_hi[g] - _m.group_lo[g])
        m.objective = pyo.Objective(expr=m.widest, sense=pyo.minimize)
    elif rules.objective == "min_max_rate":
        m.plan_hi = pyo.Var(bounds=(0.0, top))
        m.plan_hi_link = pyo.Constraint(m.P, rule=lambda _m, j: _m.plan_hi >= _m.r[j])
        m.objective = pyo.Objective(expr=m.plan_hi, sense=pyo.minimize)
    else:
        m.plan_hi = pyo.Var(bounds=(0.0, top))
        m.plan_lo = pyo.Var(bounds=(0.0, top))
        m.plan_hi_link = pyo.Constraint(m.P, rule=lambda _m, j: _m.plan_hi >= _m.r[j])
        m.plan_lo_link = pyo.Constraint(m.P, rule=lambda _m, j: _m.plan_lo <= _m.r[j] + top * (1 - _m.y[j]))
        m.objective = pyo.Objective(expr=m.plan_hi - m.plan_lo, sense=pyo.minimize)
    return m


def fix_primary_and_maximise_mean(m: pyo.ConcreteModel, primary_value: float, tolerance: float) -> None:
    """Second lexicographic stage: keep the primary objective within `tolerance`
    of its optimum and maximise the mean rate among such plans."""
    primary = m.objective
    if primary.sense == pyo.maximize:
        m.keep_primary = pyo.Constraint(expr=primary.expr >= primary_value - tolerance)
    else:
        m.keep_primary = pyo.Constraint(expr=primary.expr <= primary_value + tolerance)
    primary.deactivate()
    m.tie_break = pyo.Objective(expr=m.mean_rate, sense=pyo.maximize)
