"""Set partitioning for objectives over groups' effective rates (issue 25 item 5;
pooling.economics.group_rates).

Each column j pays a fixed rate (its highest admissible one) and gives each
group g of its member counties the effective rate v_g,j. Exactly one chosen
column covers a county, so a group's rate is sum_{j covers g} v_g,j y_j and
any function of it is sum_{j covers g} f(v_g,j) y_j: the objectives are linear
in the binaries y_j, exactly.
- "sum": maximise sum_j c_j y_j (c_j: the column's value, e.g. the weighted
  sum of its groups' rates, or of their Atkinson utilities);
- "max_min": maximise z with z <= sum_{j covers g} v_g,j y_j for every group g.
The builder is a pure function of the data; it never solves.
"""

from __future__ import annotations

import pyomo.core as pyo


def build_group_partition(members: list[tuple[str, ...]], county_ids: list[str], *,
                          values: list[float] | None = None,
                          group_rates: list[dict[tuple[str, str], float]] | None = None,
                          top: float = 1.0) -> pyo.ConcreteModel:
    """Pyomo model: choose one column per county. `values` (c_j) gives the
    "sum" objective; `group_rates` ({(county, who): v_g,j} per column, every
    group of a county present in each column covering it) the "max_min" one,
    with z in [0, top]."""
    if (values is None) == (group_rates is None):
        raise ValueError("give exactly one of values (sum) and group_rates (max_min)")
    covering: dict[str, list[int]] = {cid: [] for cid in county_ids}
    for j, cols in enumerate(members):
        for cid in cols:
            covering[cid].append(j)
    uncovered = [cid for cid, js in covering.items() if not js]
    if uncovered:
        raise ValueError(f"counties without a column: {uncovered}")
    m = pyo.ConcreteModel(name="group_partition")
    m.P = pyo.RangeSet(0, len(members) - 1)
    m.C = pyo.Set(initialize=list(county_ids), ordered=True)
    m.y = pyo.Var(m.P, domain=pyo.Binary)
    m.cover = pyo.Constraint(m.C, rule=lambda _m, c: sum(_m.y[j] for j in covering[c]) == 1)
    if values is not None:
        m.objective = pyo.Objective(expr=sum(values[j] * m.y[j] for j in m.P), sense=pyo.maximize)
        return m
    keys = sorted({key for rates in group_rates for key in rates})
    m.z = pyo.Var(bounds=(0.0, top))
    m.worst = pyo.Constraint(range(len(keys)), rule=lambda _m, i: _m.z <= sum(
        group_rates[j][keys[i]] * _m.y[j] for j in covering[keys[i][0]] if keys[i] in group_rates[j]))
    m.objective = pyo.Objective(expr=m.z, sense=pyo.maximize)
    return m
