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
max_min_group_rate breaks ties lexicographically, as max_min_rate does: with
the worst group's rate held within LEXICOGRAPHIC_TOLERANCE of its optimum,
the plan's mean effective rate is maximised.

The last two are also spec `[objective]` kinds: `solve_group_objective` is
`pooling solve` for them (one MILP over the whole instance, no
decomposition), returning a Result with the groups' figures (`group_rates`).

Monotonicity: for w1 < w2 and plans p1, p2 optimal at each, adding the two
optimality inequalities gives (w2 - w1)(M2 - M1) >= 0, so M2 >= M1 and then
R2 <= R1: the frontier is Pareto-monotone whatever the ties (tested).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pyomo.core as pyo

from pooling.data.instance import Instance
from pooling.data.options import FrontierOptions, SolveOptions
from pooling.data.provenance import provenance
from pooling.data.spec import EQUITY_WEIGHTED_RATE, MAX_MIN_GROUP_RATE, Spec
from pooling.economics.care import MIGRANT, RESIDENT, portability
from pooling.economics.group_rates import (
    MAX_AVERSION,
    atkinson_inverse,
    atkinson_utility,
    county_groups,
    group_figures,
    group_mean,
    group_objective,
    plan_groups,
    worst_group_rate,
)
from pooling.economics.objectives import MEAN_EFFECTIVE_RATE, pool_weight
from pooling.economics.uncertain import complete_scenario_rates
from pooling.errors import InputError
from pooling.execution.deadline import Deadline
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.columns import Candidate, top_rate
from pooling.optimise.formulations.group_rates import build_group_partition
from pooling.optimise.problem import (
    LEXICOGRAPHIC_TOLERANCE,
    PricedProblem,
    diagnose_coupling,
    milp_options,
    price_problem,
    priced_fields,
)
from pooling.optimise.result import PoolOutcome, Result, contract_records, mean_rate, plan_outcomes, relative_gap
from pooling.optimise.solver import SOLVER_NAME, SolverRun, Status, run_highs, solver_version

SOLVER_INFINITE_COST = 1e20
"""HiGHS reads an objective coefficient of this magnitude or more as infinite
(its kHighsInf): an Atkinson utility that large cannot be optimised."""

WEIGHTED, MAX_MIN_GROUP, EQUITY_WEIGHTED = "weighted", MAX_MIN_GROUP_RATE, EQUITY_WEIGHTED_RATE
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


def _refuse_unsupported(instance: Instance, spec: Spec, options: SolveOptions) -> None:
    """What the group objectives do not take (module docstring), before any work."""
    if spec.equalisation.max_rate_gap is not None:
        raise InputError(f"{spec.source}: equalisation.max_rate_gap couples pools' rates; the group objectives "
                         f"and the frontier give every pool its highest rate and do not support it")
    if spec.uncertainty is not None:
        raise InputError(f"{spec.source}: [uncertainty] is not supported by the group objectives and the frontier")
    if options.candidates == "generate":
        raise InputError("--candidates generate: the group objectives and the frontier need enumerated candidate "
                         "pools; use --candidates auto or enumerate")


def _refuse_generated(instance: Instance, options: SolveOptions, priced: PricedProblem) -> None:
    if priced.generated:
        raise InputError(f"{instance.source}: the group objectives and the frontier need enumerated candidate "
                         f"pools, but a group has more than {options.enumeration_limit:,} subsets; raise "
                         f"--enumeration-limit or use a smaller max_counties")


def _columns(instance: Instance, spec: Spec, candidates: list[Candidate]) -> _Columns:
    """Each admissible candidate at its top rate, with its groups' effective rates."""
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


def priced_columns(instance: Instance, spec: Spec, options: SolveOptions | None = None,
                   plan: ExecutionPlan | None = None) -> _Columns:
    """The spec's enumerated admissible columns, each at its top rate, with
    its groups' effective rates; InputError where the group objectives do not
    apply (module docstring)."""
    options = options or SolveOptions()
    _refuse_unsupported(instance, spec, options)
    priced = price_problem(instance, spec, options, None, plan)
    _refuse_generated(instance, options, priced)
    if priced.early is not None:
        raise InputError(f"{instance.source}: no plan: " + "; ".join(priced.early.diagnosis))
    return _columns(instance, spec, priced.admissible)


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


@dataclass(frozen=True)
class _GroupRun:
    """The group MILP solved: the run that gave the plan (the tie-break stage
    when there is one), the primary stage's bound, the chosen columns."""

    run: SolverRun
    primary_bound: float | None
    chosen: list[int]
    build_seconds: float
    solve_seconds: float


def _group_milp(instance: Instance, spec: Spec, columns: _Columns, kind: str, migrant_weight: float,
                aversion: float, options: SolveOptions, deadline: Deadline | None = None) -> _GroupRun:
    build_start = time.perf_counter()
    keep = list(range(len(columns.candidates)))
    if kind == EQUITY_WEIGHTED and aversion >= 1.0:
        # u(0) = -inf: a column leaving some group at rate 0 is never better than one that does not.
        positive = [j for j in keep if all(x > 0.0 for _, x in columns.groups[j])]
        covered = {cid for j in positive for cid in columns.candidates[j].pricing.counties}
        if covered != set(instance.ids):
            raise InputError(f"{instance.source}: every plan leaves some group with effective rate 0, so "
                             f"Atkinson's mean with aversion {aversion:g} >= 1 is 0 for all of them")
        keep = positive
    members = [columns.candidates[j].pricing.counties for j in keep]
    if kind == MAX_MIN_GROUP:
        model = build_group_partition(members, list(instance.ids), top=spec.rates.max,
                                      group_rates=[{g.key: x for g, x in columns.groups[j]} for j in keep])
    else:
        values = [_column_value(columns, j, kind, migrant_weight, aversion) for j in keep]
        worst = max(range(len(values)), key=lambda i: abs(values[i]))
        if not abs(values[worst]) < SOLVER_INFINITE_COST:
            low = min(x for _, x in columns.groups[keep[worst]])
            raise InputError(f"{spec.source}: objective.aversion {aversion:g} is too large for these rates: a "
                             f"group at effective rate {low:.4g} has Atkinson utility {values[worst]:.3g}, beyond "
                             f"the MILP's infinity ({SOLVER_INFINITE_COST:g}); use a smaller aversion or "
                             f'kind = "{MAX_MIN_GROUP}"')
        model = build_group_partition(members, list(instance.ids), values=values)
    build_seconds = time.perf_counter() - build_start
    run = run_highs(model, milp_options(options, deadline))
    primary_bound, solve_seconds = run.bound, run.seconds
    if kind == MAX_MIN_GROUP and run.status == Status.OPTIMAL:
        # Lexicographic tie-break: many plans share the worst group's rate.
        people = float(instance.total_enrollees)
        model.keep_worst = pyo.Constraint(expr=model.z >= run.objective - LEXICOGRAPHIC_TOLERANCE)
        model.objective.deactivate()
        model.tie_break = pyo.Objective(expr=sum(
            pool_weight(MEAN_EFFECTIVE_RATE, columns.candidates[keep[i]].pricing) * columns.rates[keep[i]]
            / people * model.y[i] for i in model.P), sense=pyo.maximize)
        second = run_highs(model, milp_options(options, deadline))
        solve_seconds += second.seconds
        if second.has_incumbent:
            run = second
    chosen = [keep[i] for i in model.P if pyo.value(model.y[i]) > 0.5] if run.has_incumbent else []
    return _GroupRun(run, primary_bound, chosen, build_seconds, solve_seconds)


def _bound_in_rates(kind: str, bound: float | None, aversion: float) -> float | None:
    """The MILP's bound in the objective's units (Atkinson: through u^-1, increasing)."""
    if bound is None or kind != EQUITY_WEIGHTED:
        return bound
    return atkinson_inverse(bound, aversion)


def _check_arguments(kind: str, migrant_weight, aversion) -> None:
    if kind not in GROUP_OBJECTIVES:
        raise InputError(f"group objective must be one of {', '.join(GROUP_OBJECTIVES)}, got {kind!r}")
    if isinstance(migrant_weight, bool) or not isinstance(migrant_weight, int | float) \
            or not 0.0 <= migrant_weight <= 1.0:
        raise InputError(f"migrant_weight must be a number in [0, 1], got {migrant_weight!r}")
    if isinstance(aversion, bool) or not isinstance(aversion, int | float) or not 0.0 <= aversion <= MAX_AVERSION:
        raise InputError(f"aversion must be a number in [0, {MAX_AVERSION:g}], got {aversion!r}")


def solve_groups(instance: Instance, spec: Spec, kind: str, *, migrant_weight: float = 0.5, aversion: float = 1.0,
                 options: SolveOptions | None = None, columns: _Columns | None = None) -> GroupPlan:
    """The plan that maximises a group objective (module docstring) among the
    spec's columns (`columns`: priced once by priced_columns and reused)."""
    _check_arguments(kind, migrant_weight, aversion)
    options = options or SolveOptions()
    columns = columns or priced_columns(instance, spec, options)
    found = _group_milp(instance, spec, columns, kind, migrant_weight, aversion, options)
    if not found.run.has_incumbent:
        return GroupPlan(found.run.status.value, None, None, [], None, None, None, None)
    pools = complete_scenario_rates(instance, spec, plan_outcomes([columns.candidates[j].pricing for j in found.chosen],
                                                                  [columns.rates[j] for j in found.chosen]))
    groups = plan_groups(instance, [(care, p.rate) for p in pools for care in p.pricing.care])
    resident, migrant = group_mean(groups, RESIDENT), group_mean(groups, MIGRANT)
    bound = _bound_in_rates(kind, found.primary_bound, aversion)
    if kind == WEIGHTED:
        objective = (1.0 - migrant_weight) * (resident or 0.0) + migrant_weight * (migrant or 0.0)
    else:
        objective = group_objective(kind, aversion, groups)
    if bound is not None and objective is not None:
        bound = max(bound, objective)
    mean = portability((care, p.rate) for p in pools for care in p.pricing.care)["mean_effective_rate"]
    return GroupPlan(found.run.status.value, objective, bound, pools, resident, migrant, mean, worst_group_rate(groups))


def solve_group_objective(instance: Instance, spec: Spec, options: SolveOptions, deadline: Deadline | None,
                          plan: ExecutionPlan | None) -> Result:
    """`pooling solve` for a spec whose objective is a group objective
    (data.spec.GROUP_OBJECTIVES): the candidate pools priced as for every
    solve, then the exact group MILP over them (module docstring). The Result
    has the status, objective, bound and gap of any solve, and the plan's
    `group_rates` (economics.group_rates.group_figures)."""
    kind, aversion = spec.objective.kind, spec.objective.aversion
    _refuse_unsupported(instance, spec, options)
    priced = price_problem(instance, spec, options, deadline, plan)
    _refuse_generated(instance, options, priced)
    if priced.early is not None:
        return priced.early
    start = time.perf_counter()
    columns = _columns(instance, spec, priced.admissible)
    found = _group_milp(instance, spec, columns, kind, 0.0, aversion if aversion is not None else 1.0, options,
                        deadline)
    run = found.run
    pools = plan_outcomes([columns.candidates[j].pricing for j in found.chosen],
                          [columns.rates[j] for j in found.chosen])
    cares = [(care, p.rate) for p in pools for care in p.pricing.care]
    objective = group_objective(kind, aversion, plan_groups(instance, cares)) if pools else None
    bound = _bound_in_rates(kind, found.primary_bound, aversion)
    if bound is not None:
        # No group's rate exceeds its pool's, nor any rate rates.max: a solver
        # stopped early may report a looser bound.
        bound = min(bound, spec.rates.max)
        if objective is not None:
            bound = max(bound, objective)
    diagnosis = []
    if run.status == Status.INFEASIBLE:
        diagnosis = diagnose_coupling(instance, spec, [c.column for c in priced.admissible],
                                      milp_options(options, deadline))
    return Result(status=run.status.value, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                  wall_seconds=priced.pricing_seconds + time.perf_counter() - start, pools=pools,
                  contracts=contract_records(instance, pools),
                  provenance=provenance(instance, spec, SOLVER_NAME, solver_version()), diagnosis=diagnosis,
                  termination=run.termination, mean_rate=mean_rate(pools) if pools else None,
                  timings={"pricing": priced.pricing_seconds, "build": found.build_seconds,
                           "solve": found.solve_seconds},
                  group_rates=group_figures(instance, cares) if pools else None,
                  **priced_fields(spec, options, priced))


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
