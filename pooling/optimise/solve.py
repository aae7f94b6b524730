"""`solve` and `evaluate`: the package's two main entry points.

solve: enumerate candidate pools, price each exactly, keep the usable ones
(r*_P >= r_min) as columns of the set-partitioning MILP, solve it with HiGHS
and report the plan with its certificate. Groups with too many subsets to
enumerate get generated columns instead (pooling.optimise.generation); the result then
says so and carries a bound valid over every pool, not only the generated ones. evaluate: price a given plan, each
pool at its maximum solvent rate, and list the rules it breaks.
"""

from __future__ import annotations

import dataclasses
import time

import pyomo.environ as pyo

from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.plan import validate_plan
from pooling.data.provenance import provenance
from pooling.data.spec import Spec
from pooling.economics.pools import PoolPricer
from pooling.economics.rules import describe_bound
from pooling.economics.subsidy import price_of_equalisation
from pooling.optimise.candidates import (
    candidate_pools,
    group_subsets,
    pool_groups,
    pool_rule_violations,
)
from pooling.optimise.columns import Candidate, CandidateMaker, partition_rules
from pooling.optimise.formulations.set_partition import (
    Column,
    build_set_partition,
    fix_primary_and_maximise_mean,
)
from pooling.optimise.generation import GeneratedColumns, generate_columns
from pooling.optimise.result import (
    Evaluation,
    Result,
    mean_rate,
    numerics_summary,
    plan_outcomes,
)
from pooling.optimise.solver import SOLVER_NAME, Status, run_highs, solver_version

GAP_FLOOR = 1e-6
"""Relative gaps divide by max(|objective|, this): a rate dispersion of 0 would
otherwise turn solver noise into a gap of 1."""


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    return abs(bound - objective) / max(abs(objective), GAP_FLOOR)


def diagnose_uncovered(instance: Instance, spec: Spec, candidates: list[Candidate]) -> list[str]:
    """One line per county that no admissible candidate pool contains, naming
    the rule that blocks its best pool and the relaxation that would admit it."""
    lines = []
    for county in instance.counties:
        mine = [c for c in candidates if county.id in c.pricing.counties]
        if any(c.admissible for c in mine):
            continue
        label = f"county {county.id} ({county.name})"
        if not mine:
            lines.append(f'{label}: no candidate pool contains it under the pooling rules (scope '
                         f'"{spec.pooling.scope}", min_enrollees {spec.pooling.min_enrollees})')
            continue
        best = max(mine, key=lambda c: c.pricing.max_rate - c.column.min_rate)
        pool = "[" + ", ".join(best.pricing.counties) + "]"
        r_star, bound = best.pricing.max_rate, best.lower
        if bound.rule == "rates.min":
            lines.append(
                f"{label}: none of its {len(mine)} candidate pools is solvent at rates.min "
                f"{spec.rates.min:.4g}; the best, {pool}, can pay at most {r_star:.4f} "
                f"({spec.solvency.measure} at level {spec.solvency.level:g}); lowering rates.min to "
                f"{max(r_star, 0.0):.4f} or raising reserve_share would admit it")
        elif not best.on_menu and r_star >= bound.value:
            lines.append(f"{label}: no rate on the menu (step {spec.rates.step:g}) lies in its best "
                         f"pool {pool}'s admissible range [{bound.value:.4f}, {r_star:.4f}]")
        else:
            lines.append(
                f"{label}: every candidate pool breaks a rule; the best, {pool}, can pay at most "
                f"{r_star:.4f} but {describe_bound(bound)}; {_relaxation(spec, bound, r_star)}")
    return lines


def _relaxation(spec: Spec, bound, r_star: float) -> str:
    eq = spec.equalisation
    short = bound.value - r_star
    if bound.rule == "no_county_worse_off":
        return f"raising equalisation.tolerance to {eq.tolerance + short:.4f} would admit it"
    if bound.rule == "max_cross_subsidy":
        return "raising equalisation.max_cross_subsidy would admit it"
    if bound.rule == "max_expected_surplus":
        return "raising equalisation.max_expected_surplus would admit it"
    return "relaxing that rule would admit it"


def _objective_value(kind: str, pools) -> float | None:
    if not pools:
        return None
    rates = [p.rate for p in pools]
    if kind == "max_mean_rate":
        return mean_rate(pools)
    if kind == "max_min_rate":
        return min(rates)
    return max(rates) - min(rates)


LEXICOGRAPHIC_TOLERANCE = 1e-9
"""Second stage keeps the primary objective within this of its optimum."""


GENERATED_PROOF_TOLERANCE = 1e-7
"""With generated columns the plan is reported optimal when the bound valid
over every pool is within this of its objective, in rate units (absolute:
every objective is a rate or a difference of rates in [0, 1]; HiGHS's
feasibility tolerance leaves ~1e-9 noise in them)."""


def candidate_plan(instance: Instance, spec: Spec, options: SolveOptions):
    """Per group, its allowed pools or None (generate columns); None overall
    when every group is enumerated (the plain enumeration path)."""
    if spec.pooling.scope != "optimise" or options.candidates == "enumerate":
        return None
    plan = []
    for group in pool_groups(instance, spec):
        if options.candidates == "generate" and len(group.members) > 1:
            plan.append((group, None))
        else:
            plan.append((group, group_subsets(instance, spec, group, options.enumeration_limit)))
    if all(subsets is not None for _, subsets in plan):
        return None
    return plan


def solve(instance: Instance, spec: Spec, time_limit: float | None = None, *,
          options: SolveOptions | None = None) -> Result:
    """Choose the plan that optimises the spec's objective; see module docstring."""
    options = options or SolveOptions()
    if time_limit is not None:
        options = dataclasses.replace(options, time_limit=time_limit)
    start = time.perf_counter()
    maker = CandidateMaker(instance, spec, PoolPricer(instance, spec))
    plan = candidate_plan(instance, spec, options)
    generated: GeneratedColumns | None = None
    if plan is None:
        candidates = [maker.make(pool) for pool in candidate_pools(instance, spec)]
        admissible = [c for c in candidates if c.admissible]
        method = {"method": "enumeration", "mode": options.candidates}
    else:
        generated = generate_columns(instance, spec, plan, maker)
        candidates, admissible = generated.candidates, generated.columns
        method = {"method": "column_generation", "mode": options.candidates,
                  "enumeration_limit": options.enumeration_limit, **generated.log.to_dict()}
    pricing_seconds = time.perf_counter() - start
    base = dict(spec=spec.to_dict(), objective_kind=spec.objective.kind,
                candidate_pools=len(candidates), columns=len(admissible),
                solver_options=options.to_dict(), candidate_generation=method,
                numerics=numerics_summary([c.pricing for c in candidates]))
    prov = provenance(instance, spec, SOLVER_NAME, solver_version())
    unproven = Status.NO_SOLUTION.value if generated is not None else None

    diagnosis = diagnose_uncovered(instance, spec, candidates)
    if diagnosis:
        return Result(status=unproven or Status.INFEASIBLE.value, objective=None, bound=None, gap=None,
                      wall_seconds=time.perf_counter() - start, pools=[], provenance=prov,
                      diagnosis=diagnosis, termination="no admissible candidate pool for some counties",
                      timings={"pricing": pricing_seconds, "build": 0.0, "solve": 0.0}, **base)

    build_start = time.perf_counter()
    columns = [c.column for c in admissible]
    rules = partition_rules(spec)
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, rules)
    build_seconds = time.perf_counter() - build_start
    run = run_highs(model, options)
    primary_bound = run.bound
    solve_seconds = run.seconds
    if run.status == Status.OPTIMAL and spec.objective.kind != "max_mean_rate":
        fix_primary_and_maximise_mean(model, run.objective, LEXICOGRAPHIC_TOLERANCE)
        second = run_highs(model, options)
        solve_seconds += second.seconds
        if second.has_incumbent:
            run = second

    pools = []
    if run.has_incumbent:
        chosen = [j for j in model.P if pyo.value(model.y[j]) > 0.5]
        rates = [_reported_rate(pyo.value(model.r[j]), columns[j], spec) for j in chosen]
        pools = plan_outcomes([admissible[j].pricing for j in chosen], rates)
    objective = _objective_value(spec.objective.kind, pools)
    status = run.status
    bound = primary_bound
    if generated is not None:
        # The MILP's bound holds over the generated columns only.
        bound = generated.bound
        proven = objective is not None and bound is not None and \
            abs(bound - objective) <= GENERATED_PROOF_TOLERANCE
        if status == Status.OPTIMAL and not proven:
            status = Status.FEASIBLE
        method["proven_optimal"] = status == Status.OPTIMAL
    maximise = model.objective.sense == pyo.maximize
    if bound is not None and objective is not None:
        bound = max(bound, objective) if maximise else min(bound, objective)
    if run.status == Status.INFEASIBLE:
        diagnosis = diagnose_coupling(instance, spec, columns, options)
        if generated is not None:
            status = Status.NO_SOLUTION
            diagnosis = ["no plan found among the generated columns (infeasibility is not proven "
                         "for groups whose columns were generated)"] + diagnosis
    return Result(status=status.value, objective=objective, bound=bound,
                  gap=_gap(objective, bound), wall_seconds=time.perf_counter() - start, pools=pools,
                  provenance=prov, diagnosis=diagnosis, termination=run.termination,
                  mean_rate=mean_rate(pools) if pools else None,
                  timings={"pricing": pricing_seconds, "build": build_seconds, "solve": solve_seconds},
                  **base)


def _reported_rate(value: float, column: Column, spec: Spec) -> float:
    """The solver's rate without tolerance noise: snapped to the menu, or clipped
    into the column's admissible range [L_P, r*_P]."""
    if spec.rates.step is not None:
        k = round((value - spec.rates.min) / spec.rates.step)
        return spec.rates.min + k * spec.rates.step
    return min(max(value, column.min_rate), column.max_rate)


def diagnose_coupling(instance: Instance, spec: Spec, columns: list[Column],
                      options: SolveOptions) -> list[str]:
    """Why the MILP is infeasible although every county has an admissible pool."""
    eq = spec.equalisation
    if eq.max_rate_gap is None:
        return ["no partition of the counties into admissible candidate pools exists: every county "
                "is in some admissible pool, but those pools overlap in ways no partition can use"]
    relaxed = dataclasses.replace(partition_rules(spec), max_rate_gap=1.0, objective="min_group_gap")
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, relaxed)
    run = run_highs(model, options)
    if run.objective is None:
        return ["no partition of the counties into admissible candidate pools exists, "
                "even without max_rate_gap"]
    groups = {}
    for g in model.G:
        hi, lo = pyo.value(model.group_hi[g]), pyo.value(model.group_lo[g])
        groups[g] = hi - lo
    worst = max(groups, key=groups.get)
    chosen = [columns[j] for j in model.P if pyo.value(model.y[j]) > 0.5 and worst in columns[j].gap_groups]
    lowest = min(chosen, key=lambda c: c.max_rate)
    highest = max(chosen, key=lambda c: c.min_rate)
    return [f"no plan keeps every {eq.gap_scope} within max_rate_gap {eq.max_rate_gap:g}: the smallest "
            f"achievable gap is {run.objective:.4f} (in {eq.gap_scope} {worst}), because pool "
            f"[{', '.join(lowest.members)}] can pay at most {lowest.max_rate:.4f} while pool "
            f"[{', '.join(highest.members)}] must pay at least {highest.min_rate:.4f}; setting "
            f"max_rate_gap to {run.objective:.4f} would restore feasibility"]


def evaluate(instance: Instance, spec: Spec, plan, *, pricer: PoolPricer | None = None,
             subsidy: bool = False) -> Evaluation:
    """Price a plan (a list of lists of county ids): each pool at its maximum
    solvent rate r*_P, floored at 0 (a pool with r*_P < rates.min is reported
    with that rate and listed as a violation)."""
    start = time.perf_counter()
    plan = validate_plan(plan, instance)
    pricer = pricer if pricer is not None else PoolPricer(instance, spec)
    priced = [pricer.price(pool) for pool in plan]
    violations = []
    for pool, pricing in zip(plan, priced):
        violations.extend(pool_rule_violations(instance, spec, pool))
        if not pricing.usable:
            violations.append(
                f"pool [{', '.join(pricing.counties)}]: max solvent rate {pricing.max_rate:.4f} < "
                f"rates.min {spec.rates.min:g}")
    pools = plan_outcomes(priced, [max(p.max_rate, 0.0) for p in priced])
    extra = price_of_equalisation(spec, pools, pricer) if subsidy else None
    return Evaluation(subsidy=extra, feasible=not violations, objective=mean_rate(pools), pools=pools,
                      violations=violations, provenance=provenance(instance, spec, None, None),
                      spec=spec.to_dict(), numerics=numerics_summary(priced),
                      wall_seconds=time.perf_counter() - start)
