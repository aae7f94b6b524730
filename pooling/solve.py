"""`solve` and `evaluate`: the package's two main entry points.

solve: enumerate candidate pools, price each exactly, keep the usable ones
(r*_P >= r_min) as columns of the set-partitioning MILP, solve it with HiGHS
and report the plan with its certificate. evaluate: price a given plan, each
pool at its maximum solvent rate, and list the rules it breaks.
"""

from __future__ import annotations

import dataclasses
import time

import pyomo.environ as pyo

from pooling.candidates import candidate_pools, pool_rule_violations
from pooling.formulations.set_partition import Column, build_set_partition
from pooling.instance import Instance
from pooling.options import SolveOptions
from pooling.plan import validate_plan
from pooling.pools import PoolPricer, PoolPricing
from pooling.result import (Evaluation, Result, mean_rate, numerics_summary, plan_outcomes,
                            provenance)
from pooling.solver import SOLVER_NAME, Status, run_highs, solver_version
from pooling.spec import Spec


def _gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    return max(0.0, bound - objective) / max(abs(objective), 1e-12)


def diagnose_uncovered(instance: Instance, spec: Spec, priced: list[PoolPricing]) -> list[str]:
    """One line per county that no usable candidate pool contains."""
    lines = []
    r_min = spec.rates.min
    for county in instance.counties:
        mine = [p for p in priced if county.id in p.counties]
        if any(p.usable for p in mine):
            continue
        if not mine:
            lines.append(f'county {county.id} ({county.name}): no candidate pool contains it under the '
                         f'pooling rules (scope "{spec.pooling.scope}", min_enrollees '
                         f'{spec.pooling.min_enrollees})')
            continue
        best = max(mine, key=lambda p: p.max_rate)
        lines.append(
            f"county {county.id} ({county.name}): none of its {len(mine)} candidate pools is solvent at "
            f"rates.min {r_min:.4g}; the best, [{', '.join(best.counties)}], can pay at most "
            f"{best.max_rate:.4f} ({spec.solvency.measure} at level {spec.solvency.level:g}); lowering "
            f"rates.min to {max(best.max_rate, 0.0):.4f} or raising reserve_share would admit it")
    return lines


def solve(instance: Instance, spec: Spec, time_limit: float | None = None, *,
          options: SolveOptions | None = None) -> Result:
    """Choose the pooling plan that maximises the spec's objective; see module docstring."""
    options = options or SolveOptions()
    if time_limit is not None:
        options = dataclasses.replace(options, time_limit=time_limit)
    start = time.perf_counter()
    candidates = candidate_pools(instance, spec)
    pricer = PoolPricer(instance, spec)
    priced = [pricer.price(c) for c in candidates]
    pricing_seconds = time.perf_counter() - start
    usable = [p for p in priced if p.usable]
    base = dict(spec=spec.to_dict(), objective_kind=spec.objective.kind,
                candidate_pools=len(candidates), columns=len(usable),
                solver_options=options.to_dict(), numerics=numerics_summary(priced))
    version = solver_version()
    prov = provenance(instance, spec, SOLVER_NAME, version)

    diagnosis = diagnose_uncovered(instance, spec, priced)
    if diagnosis:
        wall = time.perf_counter() - start
        return Result(status=Status.INFEASIBLE.value, objective=None, bound=None, gap=None,
                      wall_seconds=wall, pools=[], provenance=prov, diagnosis=diagnosis,
                      termination="no usable candidate pool for some counties",
                      timings={"pricing": pricing_seconds, "build": 0.0, "solve": 0.0}, **base)

    build_start = time.perf_counter()
    columns = [Column(p.counties, p.enrollees, p.max_rate) for p in usable]
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, spec.rates.min)
    build_seconds = time.perf_counter() - build_start
    run = run_highs(model, options)

    pools = []
    if run.has_incumbent:
        chosen = [j for j in model.P if pyo.value(model.y[j]) > 0.5]
        # Solver tolerances can leave r_P a hair outside [r_min, r*_P]; the
        # rate a pool pays is clipped back into its own solvent range.
        rates = [min(max(pyo.value(model.r[j]), spec.rates.min), usable[j].max_rate) for j in chosen]
        pools = plan_outcomes([usable[j] for j in chosen], rates)
    objective = mean_rate(pools) if pools else None
    bound = run.bound if run.bound is None or objective is None else max(run.bound, objective)
    if run.status == Status.INFEASIBLE:
        diagnosis = ["no partition of the counties into usable candidate pools exists: every county "
                     "is in some usable pool, but those pools overlap in ways no partition can use"]
    wall = time.perf_counter() - start
    return Result(status=run.status.value, objective=objective, bound=bound,
                  gap=_gap(objective, bound), wall_seconds=wall, pools=pools, provenance=prov,
                  diagnosis=diagnosis, termination=run.termination,
                  timings={"pricing": pricing_seconds, "build": build_seconds, "solve": run.seconds},
                  **base)


def evaluate(instance: Instance, spec: Spec, plan, *, pricer: PoolPricer | None = None) -> Evaluation:
    """Price a plan (a list of lists of county ids): each pool at its maximum
    solvent rate r*_P, floored at 0 (a pool with r*_P < rates.min is reported
    with that rate and listed as a violation)."""
    start = time.perf_counter()
    plan = validate_plan(plan, instance)
    pricer = pricer or PoolPricer(instance, spec)
    priced = [pricer.price(pool) for pool in plan]
    violations = []
    for pool, pricing in zip(plan, priced):
        violations.extend(pool_rule_violations(instance, spec, pool))
        if not pricing.usable:
            violations.append(
                f"pool [{', '.join(pricing.counties)}]: max solvent rate {pricing.max_rate:.4f} < "
                f"rates.min {spec.rates.min:g}")
    pools = plan_outcomes(priced, [max(p.max_rate, 0.0) for p in priced])
    return Evaluation(feasible=not violations, objective=mean_rate(pools), pools=pools,
                      violations=violations, provenance=provenance(instance, spec, None, None),
                      spec=spec.to_dict(), numerics=numerics_summary(priced),
                      wall_seconds=time.perf_counter() - start)
