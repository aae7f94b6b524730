"""Set-partitioning MILP over priced candidate pools (DESIGN §Formulations, 1).

Columns are candidate pools with their maximum solvent rate r*_P. Variables:
y_P binary (pool chosen), r_P continuous (its rate). Constraints:
  r_min * y_P <= r_P <= r*_P * y_P     (a pool pays a solvent rate, or nothing)
  sum_{P contains c} y_P = 1           (every county in exactly one pool)
Objective (max_mean_rate): maximise sum_P N_P r_P / N, the enrollee-weighted
mean rate. The builder is a pure function of the data; it never solves.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo


@dataclass(frozen=True)
class Column:
    """A usable candidate pool as the MILP sees it."""

    members: tuple[str, ...]
    enrollees: int
    max_rate: float


def build_set_partition(columns: list[Column], county_ids: list[str], total_enrollees: int,
                        min_rate: float) -> pyo.ConcreteModel:
    """Pyomo model of the set-partitioning problem. Every county must be in some column."""
    covering: dict[str, list[int]] = {cid: [] for cid in county_ids}
    for j, col in enumerate(columns):
        for cid in col.members:
            covering[cid].append(j)
    uncovered = [cid for cid, js in covering.items() if not js]
    if uncovered:
        raise ValueError(f"counties without a column: {uncovered}")

    m = pyo.ConcreteModel(name="set_partition")
    m.P = pyo.RangeSet(0, len(columns) - 1)
    m.C = pyo.Set(initialize=list(county_ids), ordered=True)
    m.y = pyo.Var(m.P, domain=pyo.Binary)
    m.r = pyo.Var(m.P, bounds=lambda _m, j: (0.0, columns[j].max_rate))
    m.rate_cap = pyo.Constraint(m.P, rule=lambda _m, j: _m.r[j] <= columns[j].max_rate * _m.y[j])
    m.rate_floor = pyo.Constraint(m.P, rule=lambda _m, j: _m.r[j] >= min_rate * _m.y[j])
    m.cover = pyo.Constraint(m.C, rule=lambda _m, c: sum(_m.y[j] for j in covering[c]) == 1)
    m.objective = pyo.Objective(
        expr=sum((columns[j].enrollees / total_enrollees) * m.r[j] for j in m.P), sense=pyo.maximize)
    return m
