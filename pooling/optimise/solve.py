"""`solve` and `evaluate`: the package's two main entry points.

solve: enumerate candidate pools, price each exactly, keep the usable ones
(r*_P >= r_min) as columns of the set-partitioning MILP, solve it with HiGHS
and report the plan with its certificate. Groups with too many subsets to
enumerate get generated columns instead (pooling.optimise.generation); the result then
says so and carries a bound valid over every pool, not only the generated ones.
evaluate: give a given plan's pools the rates solve would give them (the same
MILP, restricted to the plan's pools: `solve_columns`) and list every rule it
breaks, structured (`Violation`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass

import pyomo.environ as pyo

from pooling.data.inputs import as_problem
from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.plan import read_plan, validate_contracts, validate_plan
from pooling.data.provenance import provenance
from pooling.data.spec import Spec
from pooling.economics.explain import gain_decomposition, require_exact_measure
from pooling.economics.objectives import LINEAR_OBJECTIVES, objective_denominator, plan_value
from pooling.economics.pools import PoolPricer
from pooling.economics.rules import describe_bound
from pooling.economics.subsidy import price_of_equalisation, solvency_top_up
from pooling.errors import InputError
from pooling.execution.checkpoints import Checkpoints
from pooling.execution.tasks import ExecutionPlan, ProgressBar, run_tasks
from pooling.optimise.blocks import block_key, merge_results, problem_blocks
from pooling.optimise.candidates import (
    candidate_pools,
    group_subsets,
    pool_groups,
    pool_rule_violations,
)
from pooling.optimise.columns import Candidate, CandidateMaker, partition_rules, pool_variants
from pooling.optimise.formulations.set_partition import (
    Column,
    build_set_partition,
    fix_primary_and_maximise_mean,
    menu_steps,
    rates_are_free,
)
from pooling.optimise.generation import GeneratedColumns, generate_columns
from pooling.optimise.result import (
    Evaluation,
    Result,
    Violation,
    contract_records,
    mean_rate,
    numerics_summary,
    plan_outcomes,
    relative_gap,
)
from pooling.optimise.solver import SOLVER_NAME, SolverRun, Status, run_highs, solver_version

MIN_MILP_SECONDS = 1.0
"""Under a time limit the MILP of a priced problem runs at least this long, so
that the columns already paid for give a plan; a run may end up to this much
past its limit."""


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
                f"({spec.solvency.measure} at level {spec.solvency.level:g}); "
                f"{_solvency_remedies(instance, spec, best.pricing)}")
        elif not best.on_menu and r_star >= bound.value:
            lines.append(f"{label}: no rate on the menu (step {spec.rates.step:g}) lies in its best "
                         f"pool {pool}'s admissible range [{bound.value:.4f}, {r_star:.4f}]")
        else:
            lines.append(
                f"{label}: every candidate pool breaks a rule; the best, {pool}, can pay at most "
                f"{r_star:.4f} but {describe_bound(bound)}; {_relaxation(spec, bound, r_star)}")
    return lines


def _solvency_remedies(instance: Instance, spec: Spec, pricing) -> str:
    """What would make a pool solvent at rates.min: only the remedies that
    would actually work (a rate floor below 0 or a reserve share above 1 is
    no remedy), and for VaR/CVaR the exact top-up that would."""
    r_star, floor = pricing.max_rate, spec.rates.min
    remedies = []
    if r_star >= 0.0:
        remedies.append(f"lowering rates.min to {r_star:.4f}")
    if spec.solvency.measure == "ruin":
        if spec.solvency.reserve_share < 1.0:
            remedies.append("raising solvency.reserve_share (the ruin rate is simulated: re-solve to check)")
        if not remedies:
            return (f"it cannot pay even rate 0: its yearly net income "
                    f"{pricing.revenue - pricing.fixed_costs:,.0f} {instance.currency} after fixed costs "
                    f"does not keep its committed reserves from ruin; only outside funding would admit it")
        return " or ".join(remedies) + " would admit it"
    top_up = solvency_top_up(pricing, floor)
    reserves = math.fsum(instance.county(cid).reserves for cid in pricing.counties)
    share = spec.solvency.reserve_share + top_up / reserves if reserves > 0 else math.inf
    if share <= 1.0:
        remedies.append(f"raising solvency.reserve_share to {share:.4f}")
    remedies.append(f"a top-up of {top_up:,.0f} {instance.currency} (its budget B_P {pricing.budget:,.0f} "
                    f"must reach rates.min x {spec.solvency.measure.upper()} of its claims = "
                    f"{floor * pricing.risk:,.0f})")
    prefix = "" if r_star >= 0.0 else "it cannot pay even rate 0 (its budget is below zero); "
    return prefix + " or ".join(remedies) + " would admit it"


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
    if kind in LINEAR_OBJECTIVES:
        return plan_value(kind, [p.pricing for p in pools], rates)
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


@dataclass(frozen=True)
class ColumnSolution:
    """The spec's set-partitioning MILP solved over some columns: the run that
    gave the plan (the lexicographic second stage when there is one), the
    chosen columns and their reported rates (empty without an incumbent)."""

    run: SolverRun
    model: pyo.ConcreteModel
    primary_bound: float | None
    chosen: list[int]
    rates: list[float]
    build_seconds: float
    solve_seconds: float


def solve_columns(instance: Instance, spec: Spec, columns: list[Column],
                  options: SolveOptions) -> ColumnSolution:
    """Choose pools and rates among `columns` under the spec's rules and objective.

    The one place rates are decided: `solve` calls it with every admissible
    candidate, `evaluate` and the fixed-partition baselines with the pools of
    one plan (the cover constraints then force every column in), so a plan
    gets the same rates whichever path prices it."""
    build_start = time.perf_counter()
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, partition_rules(spec),
                                objective_denominator(spec.objective.kind, instance, instance.ids))
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
    chosen, rates = [], []
    if run.has_incumbent:
        chosen = [j for j in model.P if pyo.value(model.y[j]) > 0.5]
        # With free rates r_P = r*_P y_P: a chosen y within HiGHS's integrality tolerance of 1
        # (0.9999999) would shave r*_P, so a chosen pool pays its r*_P exactly.
        free = rates_are_free(partition_rules(spec))
        rates = [_reported_rate(columns[j].max_rate if free else pyo.value(model.r[j]), columns[j], spec)
                 for j in chosen]
    return ColumnSolution(run=run, model=model, primary_bound=primary_bound, chosen=chosen, rates=rates,
                          build_seconds=build_seconds, solve_seconds=solve_seconds)


def solve_options(options: SolveOptions | None = None, **overrides) -> SolveOptions:
    """`options` (default SolveOptions()) with keyword overrides, validated by
    SolveOptions itself; every mistake is an InputError naming the option."""
    if options is not None and not isinstance(options, SolveOptions):
        raise InputError(f"options must be a pooling.SolveOptions, e.g. SolveOptions(time_limit=60), got "
                         f"{type(options).__name__}; or pass solver options as keywords "
                         f"(solve(instance, spec, time_limit=60))")
    known = [f.name for f in dataclasses.fields(SolveOptions)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"unknown solver option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"known: {', '.join(known)}")
    try:
        return dataclasses.replace(options if options is not None else SolveOptions(), **overrides)
    except (TypeError, ValueError) as exc:  # SolveOptions reports its own InputError; this is a fallback
        raise InputError(f"solver options {overrides}: {exc}") from None


def solve(instance: Instance, spec: Spec, time_limit: float | None = None, *,
          options: SolveOptions | None = None, workers: int = 1, scheduler: str | None = None,
          progress: bool | None = False, checkpoint: str | os.PathLike | None = None, resume: bool = False,
          **solver_options) -> Result:
    """Choose the plan that optimises the spec's objective; see module docstring.

    Solver options come as `options` (a SolveOptions) and/or keywords
    (time_limit=60, threads=2, ...) that override it; `time_limit` covers the
    whole run (pricing, generation, MILP). `instance` and `spec` may also be
    the paths of their files. Independent blocks (pooling.optimise.blocks) are
    solved separately and merged, on `workers` local processes or the Dask
    `scheduler` (the result does not depend on either); with `checkpoint` a
    folder, each finished block is written there at once and `resume` reuses
    them."""
    instance, spec = as_problem(instance, spec, "solve")
    if time_limit is not None:
        solver_options["time_limit"] = time_limit
    options = solve_options(options, **solver_options)
    plan = ExecutionPlan(workers=workers, scheduler=scheduler, progress=progress, label="blocks solved")
    if not isinstance(resume, bool):
        raise InputError(f"resume must be True or False, got {resume!r}")
    start = time.perf_counter()
    deadline = None if options.time_limit is None else time.time() + options.time_limit
    blocks = problem_blocks(instance, spec) if options.decompose else []
    if len(blocks) <= 1:
        return _solve_whole(instance, spec, options, deadline, plan)
    store = Checkpoints(checkpoint, resume) if checkpoint is not None else None

    def solve_blocks(block_spec: Spec, floor: float | None) -> list[Result]:
        keys = [block_key(instance, block_spec, options, b, floor) for b in blocks]
        done = {}
        if store is not None:
            done = {i: r for i, k in enumerate(keys) if (r := store.load(k)) is not None}
        return run_tasks(_solve_block, [(b, deadline, floor) for b in blocks], (instance, block_spec, options),
                         plan, on_result=(lambda i, r: store.save(keys[i], r)) if store is not None else None,
                         done=done, order=sorted(range(len(blocks)), key=lambda i: -len(blocks[i].members)))

    base = dict(spec=spec.to_dict(), objective_kind=spec.objective.kind, solver_options=options.to_dict(),
                provenance=provenance(instance, spec, SOLVER_NAME, solver_version()))
    results = solve_blocks(spec, None)
    if spec.objective.kind == "max_min_rate" and all(r.pools for r in results):
        # Exact two-pass decomposition: the best smallest rate of the whole
        # problem is the smallest of the blocks' best smallest rates, z; then each
        # block maximises its mean rate with every rate >= z (the monolithic
        # lexicographic stage, which separates once z is fixed).
        floor = min(r.objective for r in results) - LEXICOGRAPHIC_TOLERANCE
        mean_spec = dataclasses.replace(spec, objective=dataclasses.replace(spec.objective, kind="max_mean_rate"))
        second = solve_blocks(mean_spec, floor)
        results = [dataclasses.replace(again, bound=first.bound) if again.pools else again
                   for first, again in zip(results, second)]
    return merge_results(instance, spec, blocks, results, base, time.perf_counter() - start)


def _solve_block(shared, task) -> Result:
    """One block of a decomposed solve (a task: runs in a worker process)."""
    instance, spec, options = shared
    block, deadline, floor = task
    return _solve_whole(instance.restricted(block.members), spec, options, deadline, None, floor)


def _above_floor(admissible: list[Candidate], floor: float, spec: Spec) -> list[Candidate]:
    """The columns with their lowest rate raised to `floor`, those that still
    have an admissible rate (a menu rate, with a menu)."""
    raised = []
    for candidate in admissible:
        column = dataclasses.replace(candidate.column, min_rate=max(candidate.column.min_rate, floor))
        if column.max_rate < column.min_rate:
            continue
        if spec.rates.step is not None:
            low, high = menu_steps(column, spec.rates.min, spec.rates.step)
            if low > high:
                continue
        raised.append(dataclasses.replace(candidate, column=column))
    return raised


def _trivial_bound(spec: Spec) -> float:
    """A bound valid before anything is solved: no rate exceeds rates.max, no
    dispersion is below 0."""
    return 0.0 if spec.objective.kind == "min_rate_dispersion" else spec.rates.max


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.time()


def _solve_whole(instance: Instance, spec: Spec, options: SolveOptions, deadline: float | None,
                 plan: ExecutionPlan | None, floor: float | None = None) -> Result:
    """The monolithic solve of `instance` (a whole instance or one block);
    `floor` raises every pool's lowest admissible rate (the second pass of a
    decomposed max_min_rate solve)."""
    start = time.perf_counter()
    prov = provenance(instance, spec, SOLVER_NAME, solver_version())

    def stopped(candidates, pricing_seconds, note) -> Result:
        """The time limit struck before a plan: no plan, the trivial bound."""
        return Result(status=Status.TIME_LIMIT.value, objective=None, bound=_trivial_bound(spec), gap=None,
                      wall_seconds=time.perf_counter() - start, pools=[], provenance=prov,
                      diagnosis=[note], termination="time limit", spec=spec.to_dict(),
                      objective_kind=spec.objective.kind, candidate_pools=len(candidates), columns=0,
                      solver_options=options.to_dict(), candidate_generation={"method": "stopped"},
                      numerics=numerics_summary([c.pricing for c in candidates]),
                      timings={"pricing": pricing_seconds, "build": 0.0, "solve": 0.0})

    if deadline is not None and _remaining(deadline) <= 0:
        return stopped([], 0.0, "the time limit was reached before this part of the problem was started")
    maker = CandidateMaker(instance, spec, PoolPricer(instance, spec))
    groups = candidate_plan(instance, spec, options)
    generated: GeneratedColumns | None = None
    if groups is None:
        pools = pool_variants(instance, candidate_pools(instance, spec))
        candidates = []
        with ProgressBar(plan, len(pools), label="pools priced") as bar:
            for pool, contracts in pools:
                if deadline is not None and time.time() > deadline:
                    return stopped(candidates, time.perf_counter() - start,
                                   f"the time limit was reached while pricing ({len(candidates):,} of "
                                   f"{len(pools):,} candidate pools priced)")
                candidates.append(maker.make(pool, contracts))
                bar.update()
        admissible = [c for c in candidates if c.admissible]
        method = {"method": "enumeration", "mode": options.candidates}
    else:
        if instance.contract_options:
            raise InputError(f"{instance.source}: contract options are weighed exactly over enumerated candidate "
                             f"pools, but this problem needs column generation (a group has more than "
                             f"{options.enumeration_limit:,} candidate pools); raise the enumeration limit, "
                             f"use a smaller max_counties, or drop contract_options")
        generated = generate_columns(instance, spec, groups, maker, deadline)
        candidates, admissible = generated.candidates, generated.columns
        method = {"method": "column_generation", "mode": options.candidates,
                  "enumeration_limit": options.enumeration_limit, **generated.log.to_dict()}
    pricing_seconds = time.perf_counter() - start
    base = dict(spec=spec.to_dict(), objective_kind=spec.objective.kind,
                candidate_pools=len(candidates), columns=len(admissible),
                solver_options=options.to_dict(), candidate_generation=method,
                numerics=numerics_summary([c.pricing for c in candidates]))
    unproven = Status.NO_SOLUTION.value if generated is not None else None

    diagnosis = diagnose_uncovered(instance, spec, candidates)
    if diagnosis:
        return Result(status=unproven or Status.INFEASIBLE.value, objective=None, bound=None, gap=None,
                      wall_seconds=time.perf_counter() - start, pools=[], provenance=prov,
                      diagnosis=diagnosis, termination="no admissible candidate pool for some counties",
                      timings={"pricing": pricing_seconds, "build": 0.0, "solve": 0.0}, **base)

    if floor is not None:
        admissible = _above_floor(admissible, floor, spec)
    columns = [c.column for c in admissible]
    if deadline is not None:
        # The MILP gets what is left, but at least MIN_MILP_SECONDS: with the
        # columns priced, a plan is usually a moment away.
        left = max(_remaining(deadline), MIN_MILP_SECONDS)
        options = dataclasses.replace(options, time_limit=min(options.time_limit, left))
    fixed = solve_columns(instance, spec, columns, options)
    run = fixed.run
    primary_bound, build_seconds, solve_seconds = fixed.primary_bound, fixed.build_seconds, fixed.solve_seconds
    pools = plan_outcomes([admissible[j].pricing for j in fixed.chosen], fixed.rates)
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
        if generated.log.stopped == "time limit" and status in (Status.OPTIMAL, Status.FEASIBLE):
            status = Status.TIME_LIMIT
        method["proven_optimal"] = status == Status.OPTIMAL
    maximise = spec.objective.kind != "min_rate_dispersion"   # the primary objective's sense
    if bound is not None:
        # No rate exceeds rates.max and no dispersion is negative: a solver
        # stopped early (say before its root LP) may report a looser bound.
        bound = min(bound, _trivial_bound(spec)) if maximise else max(bound, _trivial_bound(spec))
    if bound is not None and objective is not None:
        bound = max(bound, objective) if maximise else min(bound, objective)
    if run.status == Status.INFEASIBLE:
        diagnosis = diagnose_coupling(instance, spec, columns, options)
        if generated is not None:
            status = Status.NO_SOLUTION
            diagnosis = ["no plan found among the generated columns (infeasibility is not proven "
                         "for groups whose columns were generated)"] + diagnosis
    return Result(status=status.value, objective=objective, bound=bound,
                  gap=relative_gap(objective, bound), wall_seconds=time.perf_counter() - start, pools=pools,
                  contracts=contract_records(instance, pools),
                  provenance=prov, diagnosis=diagnosis, termination=run.termination,
                  mean_rate=mean_rate(pools) if pools else None,
                  timings={"pricing": pricing_seconds, "build": build_seconds, "solve": solve_seconds},
                  **base)


def _reported_rate(value: float, column: Column, spec: Spec) -> float:
    """The solver's rate without tolerance noise: snapped to the menu, or clipped
    into the column's admissible range [L_P, r*_P]; either way inside
    [rates.min, rates.max] (rates.min + k step can land 1 ulp past rates.max)."""
    if spec.rates.step is not None:
        k = round((value - spec.rates.min) / spec.rates.step)
        value = spec.rates.min + k * spec.rates.step
    else:
        value = min(max(value, column.min_rate), column.max_rate)
    return min(max(value, spec.rates.min), spec.rates.max)


def _smallest_gap(columns: list[Column], instance: Instance, spec: Spec,
                  options: SolveOptions) -> tuple[SolverRun, pyo.ConcreteModel]:
    """The spec's MILP over `columns` with the rate gap turned into the
    objective: the smallest gap any partition of `instance` allows."""
    relaxed = dataclasses.replace(partition_rules(spec), max_rate_gap=1.0, objective="min_group_gap")
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, relaxed)
    return run_highs(model, options), model


def diagnose_coupling(instance: Instance, spec: Spec, columns: list[Column],
                      options: SolveOptions) -> list[str]:
    """Why the MILP is infeasible although every county has an admissible pool."""
    eq = spec.equalisation
    if eq.max_rate_gap is None:
        return ["no partition of the counties into admissible candidate pools exists: every county "
                "is in some admissible pool, but those pools overlap in ways no partition can use"]
    run, model = _smallest_gap(columns, instance, spec, options)
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
             subsidy: bool = False, options: SolveOptions | None = None, explain: bool = False,
             contracts=None) -> Evaluation:
    """Price a plan (a list of lists of county ids, or a plan JSON file) under the spec's rules.

    Each pool becomes the candidate `solve` would build (same rate bounds,
    menu and gap groups), and the set-partitioning MILP restricted to the
    plan's pools chooses the rates (`solve_columns`), so evaluating solve's
    plan reproduces solve's rates and objective. When a pool has no
    admissible rate or the rates cannot satisfy a coupled rule (max_rate_gap),
    the plan is infeasible: every violation is listed and each pool is shown
    at its maximum solvent rate r*_P floored at 0. Pooling-rule violations
    (contiguity, size...) make the plan infeasible but do not change its rates.
    With `explain`, the change of the objective against the status quo (every
    county alone, evaluated the same way) is split into its sources
    (economics.explain). `contracts`: [{"pool": [ids], "option": ID}, ...]
    (a plan file's own contracts are read with it)."""
    instance, spec = as_problem(instance, spec, "evaluate")
    start = time.perf_counter()
    for name, flag in (("subsidy", subsidy), ("explain", explain)):
        if not isinstance(flag, bool):
            raise InputError(f"{name} must be True or False, got {flag!r} ({type(flag).__name__})")
    if explain:
        require_exact_measure(spec)   # before any work
    if isinstance(plan, (str, os.PathLike)):
        plan, taken = read_plan(plan, instance)
    else:
        plan = validate_plan(plan, instance)
        taken = []
    if contracts is not None:
        taken = validate_contracts(contracts, plan, instance, "evaluate: contracts")
    chosen = {}
    for members, option in taken:
        chosen.setdefault(members, []).append(option)
    options = solve_options(options)
    pricer = pricer if pricer is not None else PoolPricer(instance, spec)
    maker = CandidateMaker(instance, spec, pricer)
    candidates = [maker.make(pool, tuple(sorted(chosen.get(frozenset(pool), ())))) for pool in plan]
    priced = [c.pricing for c in candidates]
    ids = {p.pricing.counties: p.id for p in plan_outcomes(priced, [0.0] * len(priced))}
    violations: list[Violation] = []
    for pool, candidate in zip(plan, candidates):
        pid = ids[candidate.pricing.counties]
        violations.extend(Violation(rule=_pooling_rule(message), pools=(pid,),
                                    counties=(candidate.pricing.counties,), rates=(), limit=None,
                                    message=f"{pid} {message}")
                          for message in pool_rule_violations(instance, spec, pool))
        violations.extend(_rate_violations(pid, candidate, spec))
    rates = None
    if all(c.admissible for c in candidates):
        columns = [c.column for c in candidates]
        solution = solve_columns(instance, spec, columns, options)
        if solution.run.status == Status.OPTIMAL:
            rates = [0.0] * len(candidates)
            for j, rate in zip(solution.chosen, solution.rates):
                rates[j] = rate
        else:
            violations.extend(_coupling_violations(instance, spec, candidates, ids, options, solution))
    rates_from = "solve" if rates is not None else "max_rate"
    if rates is None:
        rates = [max(p.max_rate, 0.0) for p in priced]
    pools = plan_outcomes(priced, rates)
    extra = price_of_equalisation(spec, pools, pricer) if subsidy else None
    explained = None
    if explain:
        alone = evaluate(instance, spec, [[c] for c in sorted(instance.ids)], pricer=pricer, options=options)
        status_quo = {p.pricing.counties[0]: p.rate for p in alone.pools}
        explained = gain_decomposition(
            instance, spec, pricer, [(p.pricing.counties, p.rate, p.pricing.contracts) for p in pools], status_quo)
    return Evaluation(subsidy=extra, explain=explained, contracts=contract_records(instance, pools),
                      feasible=not violations,
                      objective=_objective_value(spec.objective.kind, pools), mean_rate=mean_rate(pools),
                      rates_from=rates_from, pools=pools, violations=violations,
                      provenance=provenance(instance, spec, None, None), spec=spec.to_dict(),
                      numerics=numerics_summary(priced), wall_seconds=time.perf_counter() - start)


POOLING_RULE_WORDS = (("not connected", "pooling.contiguous"), ("max_counties", "pooling.max_counties"),
                      ("min_enrollees", "pooling.min_enrollees"), ("spans several", "pooling.within"),
                      ("scope", "pooling.scope"))
"""The pooling rule each message of candidates.pool_rule_violations is about
(its messages name the rule; this only labels them)."""


def _pooling_rule(message: str) -> str:
    return next((rule for word, rule in POOLING_RULE_WORDS if word in message), "pooling")


def _label(pid: str, counties) -> str:
    return f"{pid} [{', '.join(counties)}]"


def _rate_violations(pid: str, candidate: Candidate, spec: Spec) -> list[Violation]:
    """Why a pool of a plan has no admissible rate (empty if it has one): every
    bound of the candidate above its r*_P, or no menu rate in its range."""
    if candidate.admissible:
        return []
    pricing, column = candidate.pricing, candidate.column
    counties, r_star, label = pricing.counties, pricing.max_rate, _label(pid, pricing.counties)
    found = []
    for bound in candidate.bounds:
        if max(bound.value, 0.0) <= r_star:
            continue
        if bound.rule == "rates.min":
            message = (f"{label}: max solvent rate {r_star:.4f} < rates.min {spec.rates.min:g} "
                       f"({spec.solvency.measure} at level {spec.solvency.level:g})")
        else:
            message = f"{label}: can pay at most {r_star:.4f} but {describe_bound(bound)}"
        found.append(Violation(rule=bound.rule, pools=(pid,), counties=(counties,), rates=(r_star,),
                               limit=bound.value, county=bound.county, message=message))
    if not found and not candidate.on_menu:
        found.append(Violation(
            rule="rates.step", pools=(pid,), counties=(counties,), rates=(column.min_rate, r_star),
            limit=spec.rates.step,
            message=f"{label}: no rate on the menu (rates.min + k x step {spec.rates.step:g}) lies in its "
                    f"admissible range [{column.min_rate:.4f}, {r_star:.4f}]"))
    if not found:  # cannot happen with the bounds above; never call an inadmissible pool fine
        found.append(Violation(rule="rates", pools=(pid,), counties=(counties,),
                               rates=(column.min_rate, r_star), limit=None,
                               message=f"{label}: admissible range [{column.min_rate:.4f}, {r_star:.4f}] "
                                       f"is empty"))
    return found


def _coupling_violations(instance: Instance, spec: Spec, candidates: list[Candidate], ids: dict,
                         options: SolveOptions, solution: ColumnSolution) -> list[Violation]:
    """Why the MILP on a plan's own pools has no solution although every pool
    has an admissible rate: per gap group, the same MILP on that group's pools
    alone decides; a group that fails is named with its smallest achievable
    gap and the two pools that force it."""
    eq = spec.equalisation
    columns = [c.column for c in candidates]
    if solution.run.status != Status.INFEASIBLE or eq.max_rate_gap is None:
        every = tuple(ids[c.members] for c in columns)
        return [Violation(rule="solver", pools=every, counties=tuple(c.members for c in columns), rates=(),
                          limit=None, message=f"no rates found for the plan: the MILP on its pools ended "
                                              f"with status {solution.run.status.value} "
                                              f"({solution.run.termination})")]
    found = []
    groups = sorted({g for col in columns for g in col.gap_groups})
    for group in groups:
        mine = [dataclasses.replace(col, gap_groups=(group,)) for col in columns if group in col.gap_groups]
        alone = instance.restricted(cid for col in mine for cid in col.members)
        if solve_columns(alone, spec, mine, options).run.status != Status.INFEASIBLE:
            continue
        smallest = _smallest_gap(mine, alone, spec, options)[0].objective
        lowest = min(mine, key=lambda c: c.max_rate)
        highest = max(mine, key=lambda c: c.min_rate)
        pair = (lowest, highest) if lowest is not highest else (lowest,)
        where = f"{eq.gap_scope} {group}" if eq.gap_scope != "instance" else "the instance"
        gap_text = f"{smallest:.4f}" if smallest is not None else "unknown"
        found.append(Violation(
            rule="max_rate_gap", pools=tuple(ids[c.members] for c in pair),
            counties=tuple(c.members for c in pair), rates=(lowest.max_rate, highest.min_rate),
            limit=eq.max_rate_gap, group=group,
            message=f"max_rate_gap {eq.max_rate_gap:g} cannot hold in {where}: pool "
                    f"{_label(ids[lowest.members], lowest.members)} can pay at most {lowest.max_rate:.4f} "
                    f"while pool {_label(ids[highest.members], highest.members)} must pay at least "
                    f"{highest.min_rate:.4f}; the smallest gap the plan's pools allow there is {gap_text} "
                    f"({len(mine)} pools in the group)"))
    if not found:
        every = tuple(ids[c.members] for c in columns)
        found.append(Violation(
            rule="max_rate_gap", pools=every, counties=tuple(c.members for c in columns), rates=(),
            limit=eq.max_rate_gap,
            message=f"max_rate_gap {eq.max_rate_gap:g}: each {eq.gap_scope} could keep the gap on its own, "
                    f"but pools spanning several {eq.gap_scope}s tie their rates together and no rates "
                    f"satisfy every {eq.gap_scope} at once"))
    return found
