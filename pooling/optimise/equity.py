"""Plans chosen for groups' effective rates: the equity objectives and the
residents-migrants frontier (issue 25 item 5; docs/model.md "Equity").

Objectives (economics.group_rates for the groups and measures):
- "weighted": (1 - w) R + w M, R and M the people-weighted mean effective
  rates of the residents' and of the migrants' groups, w the weight on
  migrants; the frontier traces it over w in [0, 1];
- "max_min_group_rate": the worst-off group's effective rate;
- "max_equity_weighted_rate": Atkinson's mean of the groups' rates with an
  aversion parameter.
Every pool pays its highest admissible rate (r*_P, or the top menu rate
below it): each objective rises with every group's rate and a group's rate
with its pool's. Each objective is then exactly linear in the column choices
(formulations.group_rates). The columns are the enumerated candidates of
`solve` (pools and contract variants); a spec that needs generated columns or
couples rates (`equalisation.max_rate_gap`) is refused, saying so.

Monotonicity: for w1 < w2 and plans p1, p2 optimal at each, adding the two
optimality inequalities gives (w2 - w1)(M2 - M1) >= 0, so M2 >= M1 and then
R2 <= R1: the frontier is Pareto-monotone whatever the ties (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyomo.core as pyo

from pooling.data.instance import Instance
from pooling.data.options import FrontierOptions, SolveOptions
from pooling.data.spec import Spec
from pooling.economics.care import MIGRANT, RESIDENT, portability
from pooling.economics.group_rates import (
    MAX_AVERSION,
    atkinson_inverse,
    atkinson_mean,
    atkinson_utility,
    county_groups,
    group_mean,
    plan_groups,
    worst_group_rate,
)
from pooling.economics.uncertain import complete_scenario_rates
from pooling.errors import InputError
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.columns import Candidate, top_rate
from pooling.optimise.formulations.group_rates import build_group_partition
from pooling.optimise.problem import price_problem
from pooling.optimise.result import PoolOutcome, plan_outcomes
from pooling.optimise.solver import run_highs

WEIGHTED, MAX_MIN_GROUP, EQUITY_WEIGHTED = "weighted", "max_min_group_rate", "max_equity_weighted_rate"
GROUP_OBJECTIVES = (WEIGHTED, MAX_MIN_GROUP, EQUITY_WEIGHTED)


@dataclass(frozen=True)
class GroupPlan:
    """A plan chosen for a group objective, with its groups' figures."""

    status: str
    objective: float | None        # the objective's exact value for the plan (Atkinson: its mean rate)
    bound: float | None            # the MILP's bound, in the objective's units
    pools: list[PoolOutcome]
    resident_effective_rate: float | None
    migrant_effective_rate: float | None
    mean_effective_rate: float | None
    worst_group_rate: float | None

    @property
    def contracts(self) -> list[str]:
        return sorted(c for p in self.pools for c in p.pricing.contracts)


@dataclass(frozen=True)
class _Columns:
    candidates: list[Candidate]
    rates: list[float]
    groups: list[list]              # per column: [(GroupShare, effective rate at the column's rate)]
    resident_people: float
    migrant_people: float


def priced_columns(instance: Instance, spec: Spec, options: SolveOptions | None = None,
                   plan: ExecutionPlan | None = None) -> _Columns:
    """The spec's enumerated admissible columns, each at its top rate, with
    its groups' effective rates; InputError where the group objectives do not
    apply (module docstring)."""
    options = options or SolveOptions()
    if spec.equalisation.max_rate_gap is not None:
        raise InputError(f"{spec.source}: equalisation.max_rate_gap couples pools' rates; the group objectives "
                         f"and the frontier give every pool its highest rate and do not support it")
    if spec.uncertainty is not None:
        raise InputError(f"{spec.source}: [uncertainty] is not supported by the group objectives and the frontier")
    priced = price_problem(instance, spec, options, None, plan)
    if priced.generated:
        raise InputError(f"{instance.source}: the group objectives and the frontier need enumerated candidate "
                         f"pools, but a group has more than {options.enumeration_limit:,} subsets; raise "
                         f"--enumeration-limit or use a smaller max_counties")
    if priced.early is not None:
        raise InputError(f"{instance.source}: no plan: " + "; ".join(priced.early.diagnosis))
    candidates = priced.admissible
    rates = [top_rate(c, spec) for c in candidates]
    groups = [[(g, rate * g.share) for care in c.pricing.care for g in county_groups(instance, care)]
              for c, rate in zip(candidates, rates)]
    people = {}
    for column in groups:
        for g, _ in column:
            people[g.key] = g.people
    resident = math.fsum(p for (_, who), p in sorted(people.items()) if who == RESIDENT)
    migrant = math.fsum(p for (_, who), p in sorted(people.items()) if who == MIGRANT)
    return _Columns(candidates, rates, groups, resident, migrant)


def _column_value(columns: _Columns, j: int, kind: str, migrant_weight: float, aversion: float) -> float:
    if kind == WEIGHTED:
        total = 0.0
        for g, x in columns.groups[j]:
            if g.who == RESIDENT and columns.resident_people > 0:
                total += (1.0 - migrant_weight) * g.people / columns.resident_people * x
            elif g.who == MIGRANT and columns.migrant_people > 0:
                total += migrant_weight * g.people / columns.migrant_people * x
        return total
    people = columns.resident_people + columns.migrant_people
    return math.fsum(g.people / people * atkinson_utility(x, aversion) for g, x in columns.groups[j])


def solve_groups(instance: Instance, spec: Spec, kind: str, *, migrant_weight: float = 0.5, aversion: float = 1.0,
                 options: SolveOptions | None = None, columns: _Columns | None = None) -> GroupPlan:
    """The plan that maximises a group objective (module docstring) among the
    spec's columns (`columns`: priced once by priced_columns and reused)."""
    if kind not in GROUP_OBJECTIVES:
        raise InputError(f"group objective must be one of {', '.join(GROUP_OBJECTIVES)}, got {kind!r}")
    if isinstance(migrant_weight, bool) or not isinstance(migrant_weight, int | float) \
            or not 0.0 <= migrant_weight <= 1.0:
        raise InputError(f"migrant_weight must be a number in [0, 1], got {migrant_weight!r}")
    if isinstance(aversion, bool) or not isinstance(aversion, int | float) or not 0.0 <= aversion <= MAX_AVERSION:
        raise InputError(f"aversion must be a number in [0, {MAX_AVERSION:g}], got {aversion!r}")
    options = options or SolveOptions()
    columns = columns or priced_columns(instance, spec, options)
    keep = list(range(len(columns.candidates)))
    if kind == EQUITY_WEIGHTED and aversion >= 1.0:
        # u(0) = -inf: a column leaving some group at rate 0 is never better than one that does not.
        keep = [j for j in keep if all(x > 0.0 for _, x in columns.groups[j])] or keep
    members = [columns.candidates[j].pricing.counties for j in keep]
    if kind == MAX_MIN_GROUP:
        model = build_group_partition(members, list(instance.ids), top=spec.rates.max,
                                      group_rates=[{g.key: x for g, x in columns.groups[j]} for j in keep])
    else:
        values = [_column_value(columns, j, kind, migrant_weight, aversion) for j in keep]
        if any(not math.isfinite(v) for v in values):
            raise InputError(f"{instance.source}: every plan leaves some group with effective rate 0, so "
                             f"Atkinson's mean with aversion {aversion:g} >= 1 is 0 for all of them")
        model = build_group_partition(members, list(instance.ids), values=values)
    run = run_highs(model, options)
    if not run.has_incumbent:
        return GroupPlan(run.status.value, None, None, [], None, None, None, None)
    chosen = [keep[i] for i in model.P if pyo.value(model.y[i]) > 0.5]
    pools = complete_scenario_rates(instance, spec, plan_outcomes([columns.candidates[j].pricing for j in chosen],
                                                                  [columns.rates[j] for j in chosen]))
    groups = plan_groups(instance, [(care, p.rate) for p in pools for care in p.pricing.care])
    resident, migrant = group_mean(groups, RESIDENT), group_mean(groups, MIGRANT)
    bound = run.bound
    if kind == WEIGHTED:
        objective = (1.0 - migrant_weight) * (resident or 0.0) + migrant_weight * (migrant or 0.0)
    elif kind == MAX_MIN_GROUP:
        objective = worst_group_rate(groups)
    else:
        objective = atkinson_mean(groups, aversion)
        bound = None if bound is None else atkinson_inverse(bound, aversion)
    if bound is not None and objective is not None:
        bound = max(bound, objective)
    mean = portability((care, p.rate) for p in pools for care in p.pricing.care)["mean_effective_rate"]
    return GroupPlan(run.status.value, objective, bound, pools, resident, migrant, mean, worst_group_rate(groups))


FRONTIER_FIELDS = ("weight", "resident_effective_rate", "migrant_effective_rate", "mean_effective_rate",
                   "contracts", "pools")
"""frontier.csv's columns: `contracts` the contract options taken (ids joined
by ';'), `pools` the number of pools."""


def frontier(instance: Instance, spec: Spec, options: FrontierOptions | None = None,
             solve_options: SolveOptions | None = None, plan: ExecutionPlan | None = None) -> list[dict]:
    """The residents-migrants frontier: for each weight w on migrants (evenly
    spaced over [0, 1], `options.points` of them) the plan maximising
    (1 - w) R + w M, as FRONTIER_FIELDS rows. The columns are priced once."""
    options = options or FrontierOptions()
    solve_options = solve_options or SolveOptions()
    columns = priced_columns(instance, spec, solve_options, plan)
    if columns.migrant_people <= 0.0:
        raise InputError(f"{instance.source}: no county has migrants (migrant_share > 0): there is no "
                         f"residents-migrants frontier to trace")
    rows = []
    with ProgressBar(plan, options.points, label="frontier points") as bar:
        for weight in options.weights():
            found = solve_groups(instance, spec, WEIGHTED, migrant_weight=weight, options=solve_options,
                                 columns=columns)
            if not found.pools:
                raise InputError(f"{instance.source}: no plan at weight {weight:g} (solver status {found.status})")
            rows.append({"weight": weight, "resident_effective_rate": found.resident_effective_rate,
                         "migrant_effective_rate": found.migrant_effective_rate,
                         "mean_effective_rate": found.mean_effective_rate,
                         "contracts": ";".join(found.contracts), "pools": len(found.pools)})
            bar.update()
    return rows
