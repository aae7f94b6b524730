"""One problem (a whole instance or a block of one): price its candidate pools,
then decide plan and rates with the set-partitioning MILP.

price_problem enumerates (or generates) the candidate pools and prices each
exactly (PricedProblem); solve_priced runs the spec's MILP over those columns,
optionally with every rate confined to a window (a decomposed solve's floor or
common rate band), and reports the plan with its certificate. solve_columns is
the one place rates are decided, for solve, evaluate and the baselines. Counties
with no admissible pool, and MILPs a coupled rule makes infeasible, get a
diagnosis naming the rule and the relaxation that would admit them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import pyomo.core as pyo

from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.provenance import provenance
from pooling.data.spec import GROUP_OBJECTIVES, Spec
from pooling.economics.group_rates import group_objective, plan_groups
from pooling.economics.objectives import LINEAR_OBJECTIVES, MEAN_RATE, objective_denominator, plan_value
from pooling.economics.pools import PoolPricer
from pooling.economics.rules import describe_bound
from pooling.economics.subsidy import solvency_top_up
from pooling.errors import InputError
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.candidates import (
    candidate_pools,
    group_subsets,
    pool_groups,
)
from pooling.optimise.columns import Candidate, MenuMaker, partition_rules, pool_variants
from pooling.optimise.formulations.set_partition import (
    Column,
    build_set_partition,
    fix_primary_and_maximise_mean,
    menu_steps,
    rates_are_free,
)
from pooling.optimise.result import (
    Result,
    contract_records,
    mean_rate,
    numerics_summary,
    plan_outcomes,
    relative_gap,
)
from pooling.optimise.solver import SOLVER_NAME, SolverRun, Status, run_highs, solver_version

MIN_MILP_SECONDS = 1.0
"""Under a time limit a MILP started near (or past) the deadline may still run
until this long after it, so that the columns already paid for give a plan;
no MILP runs later than that, so a run ends at most this much past its limit
(`milp_options`)."""

BLOCK_GRACE_SECONDS = MIN_MILP_SECONDS + 0.5
"""How long past the deadline a decomposed solve waits for a block a worker
has begun before it abandons it: a MILP's grace, and half a second for the
block's result to be assembled and sent back."""

LAST_MILP_SECONDS = 1e-3
"""The time limit of a MILP asked for after the deadline's grace is over: HiGHS
then stops at once (only a plan its presolve finds is kept)."""


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


def objective_value(kind: str, pools) -> float | None:
    if not pools:
        return None
    rates = [p.rate for p in pools]
    if kind == "max_mean_rate":
        return mean_rate(pools)
    if kind in LINEAR_OBJECTIVES:
        return plan_value(kind, [p.pricing for p in pools], rates)
    if kind == "max_min_rate":
        return min(rates)
    if kind == "min_rate_dispersion":
        return max(rates) - min(rates)
    raise ValueError(f"objective_value does not take {kind!r}: a group objective needs plan_objective")


def plan_objective(instance: Instance, spec: Spec, pools) -> float | None:
    """The spec's objective of a plan: `objective_value`, or for a group
    objective (data.spec.GROUP_OBJECTIVES) its value over the plan's groups."""
    kind = spec.objective.kind
    if kind not in GROUP_OBJECTIVES:
        return objective_value(kind, pools)
    if not pools:
        return None
    cares = [(care, p.rate) for p in pools for care in p.pricing.care]
    return group_objective(kind, spec.objective.aversion, plan_groups(instance, cares))


def rate_objective(spec: Spec) -> str:
    """The objective the rate-deciding MILP (`solve_columns`) is given for a
    fixed plan. A group objective gives every pool its highest admissible
    rate, which is what the mean rate gives pools that nothing couples (a
    group objective refuses max_rate_gap, data.spec)."""
    return MEAN_RATE if spec.objective.kind in GROUP_OBJECTIVES else spec.objective.kind


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
                  options: SolveOptions, objective: str | None = None, tie_break: bool = True,
                  deadline: Deadline | None = None) -> ColumnSolution:
    """Choose pools and rates among `columns` under the spec's rules and objective.

    The one place rates are decided: `solve` calls it with every admissible
    candidate, `evaluate` and the fixed-partition baselines with the pools of
    one plan (the cover constraints then force every column in), so a plan
    gets the same rates whichever path prices it. `objective` overrides the
    spec's (a decomposed solve's window search asks blocks other questions);
    `tie_break` False skips the second stage (only the primary value is wanted).
    Under a `deadline` each MILP run gets the time then left (`milp_options`)."""
    kind = objective or spec.objective.kind
    if kind in GROUP_OBJECTIVES:   # never a silent mean rate in their place: optimise.equity solves them
        raise ValueError(f"solve_columns does not take the group objective {kind!r}; pass rate_objective(spec)")
    build_start = time.perf_counter()
    rules = dataclasses.replace(partition_rules(spec), objective=kind)
    model = build_set_partition(columns, list(instance.ids), instance.total_enrollees, rules,
                                objective_denominator(kind, instance, instance.ids))
    build_seconds = time.perf_counter() - build_start
    run = run_highs(model, milp_options(options, deadline))
    primary_bound = run.bound
    solve_seconds = run.seconds
    if run.status == Status.OPTIMAL and kind != "max_mean_rate" and tie_break:
        fix_primary_and_maximise_mean(model, run.objective, LEXICOGRAPHIC_TOLERANCE)
        second = run_highs(model, milp_options(options, deadline))
        solve_seconds += second.seconds
        if second.has_incumbent:
            run = second
    chosen, rates = [], []
    if run.has_incumbent:
        chosen = [j for j in model.P if pyo.value(model.y[j]) > 0.5]
        # With free rates r_P = r*_P y_P: a chosen y within HiGHS's integrality tolerance of 1
        # (0.9999999) would shave r*_P, so a chosen pool pays its r*_P exactly.
        free = rates_are_free(rules)
        rates = [_reported_rate(columns[j].max_rate if free else pyo.value(model.r[j]), columns[j], spec)
                 for j in chosen]
    return ColumnSolution(run=run, model=model, primary_bound=primary_bound, chosen=chosen, rates=rates,
                          build_seconds=build_seconds, solve_seconds=solve_seconds)


def in_window(admissible: list[Candidate], window: tuple[float, float], spec: Spec) -> list[Candidate]:
    """The columns with their rates confined to `window` = (lowest, highest):
    each column's floor raised and its r*_P capped, keeping those that still
    have an admissible rate (a menu rate, with a menu). A column capped at
    `highest` then pays at most that, exactly as if the cap were a rule."""
    lowest, highest = window
    kept = []
    for candidate in admissible:
        column = dataclasses.replace(candidate.column, min_rate=max(candidate.column.min_rate, lowest),
                                     max_rate=min(candidate.column.max_rate, highest))
        if column.max_rate < column.min_rate:
            continue
        if spec.rates.step is not None:
            low, high = menu_steps(column, spec.rates.min, spec.rates.step)
            if low > high:
                continue
        kept.append(dataclasses.replace(candidate, column=column))
    return kept


def _trivial_bound(spec: Spec) -> float:
    """A bound valid before anything is solved: no rate exceeds rates.max, no
    dispersion is below 0."""
    return 0.0 if spec.objective.kind == "min_rate_dispersion" else spec.rates.max


def milp_options(options: SolveOptions, deadline: Deadline | None) -> SolveOptions:
    """`options` with the time limit of a MILP started now: until the
    deadline, or until MIN_MILP_SECONDS past it when less is left (at least
    LAST_MILP_SECONDS), never more than the run's own limit. Without a
    deadline, `options` as they are."""
    if deadline is None:
        return options
    left = deadline.remaining()
    limit = max(left, min(MIN_MILP_SECONDS, left + MIN_MILP_SECONDS), LAST_MILP_SECONDS)
    if options.time_limit is not None:
        limit = min(limit, options.time_limit)
    return dataclasses.replace(options, time_limit=limit)


NOT_STARTED_NOTE = "the time limit was reached before this part of the problem was started"
"""The diagnosis of a problem (or block) the time limit stopped before any of its work."""

ABANDONED_NOTE = "the time limit was reached before this part of the problem was finished"
"""The diagnosis of a block abandoned in a worker (running past the limit and its grace)."""


def unsolved_note(why: str) -> str:
    """The diagnosis of a block `blocks.unsolved` reports ("not started" or "abandoned")."""
    return NOT_STARTED_NOTE if why == "not started" else ABANDONED_NOTE


def stopped_result(instance: Instance, spec: Spec, options: SolveOptions, note: str,
                   candidates: list[Candidate] = (), seconds: float = 0.0) -> Result:
    """The time limit struck before a plan: no plan, the trivial bound."""
    return Result(status=Status.TIME_LIMIT.value, objective=None, bound=_trivial_bound(spec), gap=None,
                  wall_seconds=seconds, pools=[], provenance=provenance(instance, spec, SOLVER_NAME, solver_version()),
                  diagnosis=[note], termination="time limit", spec=spec.to_dict(),
                  objective_kind=spec.objective.kind, candidate_pools=len(candidates), columns=0,
                  solver_options=options.to_dict(), candidate_generation={"method": "stopped"},
                  numerics=numerics_summary([c.pricing for c in candidates]),
                  timings={"pricing": seconds, "build": 0.0, "solve": 0.0})


@dataclass(frozen=True)
class PricedProblem:
    """A problem (a whole instance or one block) with its candidate pools
    priced: what the MILP needs, whatever window its rates are later confined
    to. `early` is the answer when there is nothing to optimise (the time limit
    struck while pricing, or some county has no admissible pool)."""

    candidates: list[Candidate]
    admissible: list[Candidate]
    method: dict
    pricing_seconds: float
    generated_bound: float | None = None
    """The bound valid over every pool when columns were generated (None: enumerated)."""
    generation_stopped: bool = False
    early: Result | None = None

    @property
    def generated(self) -> bool:
        return self.method.get("method") == "column_generation"


def price_problem(instance: Instance, spec: Spec, options: SolveOptions, deadline: Deadline | None,
                  plan: ExecutionPlan | None) -> PricedProblem:
    """Enumerate (or generate) and price the candidate pools of `instance`,
    stopping at the `deadline`."""
    start = time.perf_counter()

    def stopped(candidates, note) -> PricedProblem:
        seconds = time.perf_counter() - start
        early = stopped_result(instance, spec, options, note, candidates, seconds)
        return PricedProblem(candidates, [], {"method": "stopped"}, seconds, early=early)

    if passed(deadline):
        return stopped([], NOT_STARTED_NOTE)
    # Scenarios that cannot bind are priced for the plan's pools only (solve.solve).
    menu = MenuMaker(instance, spec, lambda inst, member: PoolPricer(inst, member, skip_dominated=True))
    groups = candidate_plan(instance, spec, options)
    generated_bound, generation_stopped = None, False
    if groups is None:
        # Every (pool, contracts) under every schedule of a benefit menu: variants of
        # one pool cover the same counties, so the MILP chooses one per pool.
        pools = [(pool, contracts, k) for k in range(len(menu))
                 for pool, contracts in pool_variants(instance, candidate_pools(instance, spec))]
        candidates = []
        with ProgressBar(plan, len(pools), label="pools priced") as bar:
            for pool, contracts, k in pools:
                if passed(deadline):
                    return stopped(candidates, f"the time limit was reached while pricing ({len(candidates):,} of "
                                               f"{len(pools):,} candidate pools priced)")
                candidates.append(menu.make(pool, contracts, k))
                bar.update()
        admissible = [c for c in candidates if c.admissible]
        method = {"method": "enumeration", "mode": options.candidates}
    else:
        if len(menu) > 1:
            raise InputError(f"{spec.source}: a [benefits] menu is weighed exactly over enumerated candidate "
                             f"pools, but this problem needs column generation (a group has more than "
                             f"{options.enumeration_limit:,} candidate pools); raise the enumeration limit, "
                             f"use a smaller max_counties, or give one value per [benefits] field")
        maker = menu.makers[0][1]   # the spec without a menu: its one CandidateMaker
        if instance.contract_options:
            raise InputError(f"{instance.source}: contract options are weighed exactly over enumerated candidate "
                             f"pools, but this problem needs column generation (a group has more than "
                             f"{options.enumeration_limit:,} candidate pools); raise the enumeration limit, "
                             f"use a smaller max_counties, or drop contract_options")
        from pooling.optimise.generation import generate_columns  # scipy.optimize/.stats: only when needed
        generated = generate_columns(instance, spec, groups, maker, deadline, plan)
        candidates, admissible = generated.candidates, generated.columns
        generated_bound, generation_stopped = generated.bound, generated.log.stopped == "time limit"
        method = {"method": "column_generation", "mode": options.candidates,
                  "enumeration_limit": options.enumeration_limit, **generated.log.to_dict()}
    seconds = time.perf_counter() - start
    priced = PricedProblem(candidates, admissible, method, seconds, generated_bound, generation_stopped)
    diagnosis = diagnose_uncovered(instance, spec, candidates)
    if diagnosis and generation_stopped:
        # Not a finding about the problem: the time limit struck before every county had a column.
        early = Result(status=Status.TIME_LIMIT.value, objective=None, bound=generated_bound, gap=None,
                       wall_seconds=seconds, pools=[], provenance=provenance(instance, spec, SOLVER_NAME,
                                                                             solver_version()),
                       diagnosis=["the time limit was reached while generating columns, before every county had "
                                  "an admissible pool; among the pools priced so far:"] + diagnosis,
                       termination="time limit", timings={"pricing": seconds, "build": 0.0, "solve": 0.0},
                       **priced_fields(spec, options, priced))
        priced = dataclasses.replace(priced, early=early)
    elif diagnosis:
        early = Result(status=Status.NO_SOLUTION.value if priced.generated else Status.INFEASIBLE.value,
                       objective=None, bound=None, gap=None, wall_seconds=seconds, pools=[],
                       provenance=provenance(instance, spec, SOLVER_NAME, solver_version()),
                       diagnosis=diagnosis, termination="no admissible candidate pool for some counties",
                       timings={"pricing": seconds, "build": 0.0, "solve": 0.0},
                       **priced_fields(spec, options, priced))
        priced = dataclasses.replace(priced, early=early)
    return priced


def priced_fields(spec: Spec, options: SolveOptions, priced: PricedProblem) -> dict:
    """The fields of a Result that come from the spec, options and pricing."""
    return dict(spec=spec.to_dict(), objective_kind=spec.objective.kind,
                candidate_pools=len(priced.candidates), columns=len(priced.admissible),
                solver_options=options.to_dict(), candidate_generation=dict(priced.method),
                numerics=numerics_summary([c.pricing for c in priced.candidates]))


def solve_whole(instance: Instance, spec: Spec, options: SolveOptions, deadline: Deadline | None,
                 plan: ExecutionPlan | None, window: tuple[float, float] | None = None) -> Result:
    """The monolithic solve of `instance` (a whole instance or one block)."""
    priced = price_problem(instance, spec, options, deadline, plan)
    return priced.early or solve_priced(instance, spec, options, deadline, priced, window)


def solve_priced(instance: Instance, spec: Spec, options: SolveOptions, deadline: Deadline | None,
                 priced: PricedProblem, window: tuple[float, float] | None = None) -> Result:
    """The spec's MILP over a priced problem's columns, with every rate in
    `window` when given (a decomposed solve's rate floor or rate band)."""
    start = time.perf_counter()
    prov = provenance(instance, spec, SOLVER_NAME, solver_version())
    admissible = priced.admissible if window is None else in_window(priced.admissible, window, spec)
    base = priced_fields(spec, options, priced)
    method = base["candidate_generation"]
    columns = [c.column for c in admissible]
    # Under a time limit each MILP gets the time left (milp_options): with the
    # columns priced, a plan is usually a moment away.
    fixed = solve_columns(instance, spec, columns, options, deadline=deadline)
    run = fixed.run
    primary_bound, build_seconds, solve_seconds = fixed.primary_bound, fixed.build_seconds, fixed.solve_seconds
    pools = plan_outcomes([admissible[j].pricing for j in fixed.chosen], fixed.rates)
    objective = objective_value(spec.objective.kind, pools)
    status = run.status
    bound = primary_bound
    if priced.generated:
        # The MILP's bound holds over the generated columns only.
        bound = priced.generated_bound
        proven = objective is not None and bound is not None and \
            abs(bound - objective) <= GENERATED_PROOF_TOLERANCE
        if status == Status.OPTIMAL and not proven:
            status = Status.FEASIBLE
        if priced.generation_stopped and status in (Status.OPTIMAL, Status.FEASIBLE):
            status = Status.TIME_LIMIT
        method["proven_optimal"] = status == Status.OPTIMAL
    maximise = spec.objective.kind != "min_rate_dispersion"   # the primary objective's sense
    if bound is not None:
        # No rate exceeds rates.max and no dispersion is negative: a solver
        # stopped early (say before its root LP) may report a looser bound.
        bound = min(bound, _trivial_bound(spec)) if maximise else max(bound, _trivial_bound(spec))
    if bound is not None and objective is not None:
        bound = max(bound, objective) if maximise else min(bound, objective)
    diagnosis = []
    if run.status == Status.INFEASIBLE:
        diagnosis = diagnose_coupling(instance, spec, columns, milp_options(options, deadline))
        if priced.generated:
            status = Status.NO_SOLUTION
            diagnosis = ["no plan found among the generated columns (infeasibility is not proven "
                         "for groups whose columns were generated)"] + diagnosis
    return Result(status=status.value, objective=objective, bound=bound,
                  gap=relative_gap(objective, bound),
                  wall_seconds=priced.pricing_seconds + time.perf_counter() - start, pools=pools,
                  contracts=contract_records(instance, pools),
                  provenance=prov, diagnosis=diagnosis, termination=run.termination,
                  mean_rate=mean_rate(pools) if pools else None,
                  timings={"pricing": priced.pricing_seconds, "build": build_seconds, "solve": solve_seconds},
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


def smallest_gap(columns: list[Column], instance: Instance, spec: Spec,
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
    run, model = smallest_gap(columns, instance, spec, options)
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


