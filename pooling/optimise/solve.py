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

from pooling.data.benefits import BenefitMenu, schedule_from_dict
from pooling.data.inputs import as_problem
from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.plan import labelled_plan_schedules, read_plan, validate_contracts, validate_plan
from pooling.data.provenance import provenance
from pooling.data.spec import GROUP_OBJECTIVES, Spec
from pooling.data.uncertainty import scenario_instances
from pooling.economics.explain import gain_decomposition, require_exact_measure
from pooling.economics.group_rates import group_figures
from pooling.economics.pools import PoolPricer
from pooling.economics.rules import describe_bound
from pooling.economics.subsidy import price_of_equalisation
from pooling.economics.uncertain import complete_scenario_rates
from pooling.economics.welfare import welfare_records
from pooling.errors import InputError
from pooling.execution.checkpoints import Checkpoints, tell
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import NOT_STARTED, ExecutionPlan
from pooling.optimise.block_records import BlockStore, with_resume_count
from pooling.optimise.blocks import block_key, merge_results, problem_blocks, run_blocks, unsolved
from pooling.optimise.candidates import (
    pool_rule_violations,
)
from pooling.optimise.columns import Candidate, CandidateMaker, MenuMaker
from pooling.optimise.problem import (  # noqa: F401  (GENERATED_PROOF_TOLERANCE, candidate_plan: imported from here)
    BLOCK_GRACE_SECONDS,
    GENERATED_PROOF_TOLERANCE,
    LEXICOGRAPHIC_TOLERANCE,
    ColumnSolution,
    candidate_plan,
    objective_value,
    plan_objective,
    rate_objective,
    smallest_gap,
    solve_columns,
    solve_whole,
    stopped_result,
    unsolved_note,
)
from pooling.optimise.result import (
    Evaluation,
    Result,
    Violation,
    contract_records,
    mean_rate,
    numerics_summary,
    plan_outcomes,
    pool_instance,
)
from pooling.optimise.solver import SOLVER_NAME, Status, solver_version
from pooling.optimise.windows import coupled, solve_coupled


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
          started: float | None = None, **solver_options) -> Result:
    """Choose the plan that optimises the spec's objective; see module docstring.

    Solver options come as `options` (a SolveOptions) and/or keywords
    (time_limit=60, threads=2, ...) that override it; `time_limit` covers the
    whole run (starting workers, pricing, generation, bounds, MILPs), counted
    from `started` (a time.monotonic() reading: the command line passes its
    own start) or from this call. `instance` and `spec` may also be the paths
    of their files. Independent blocks (pooling.optimise.blocks) are solved
    separately and merged, on up to `workers` local processes (as many as pay
    for their start-up) or the Dask `scheduler` (the result does not depend on
    either); with `checkpoint` a folder, each finished block is written there
    at once (JSON) and `resume` reuses those whose plan verifies against the
    inputs (pooling.optimise.block_records), saying on stderr what it reused.
    Blocks the time limit stops are not checkpointed. With [welfare] in the
    spec the result carries each group's welfare record (economics.welfare)."""
    instance, spec = as_problem(instance, spec, "solve")
    result = _solve_problem(instance, spec, time_limit, options, workers, scheduler, progress, checkpoint,
                            resume, started, solver_options)
    result = dataclasses.replace(result, pools=complete_scenario_rates(instance, spec, result.pools))
    if spec.welfare is None:
        return result
    return dataclasses.replace(result, welfare=plan_welfare_records(instance, spec, result.pools))


def plan_welfare_records(instance: Instance, spec: Spec, pools) -> list[dict]:
    """The [welfare] records of a plan, each pool on the instance it was priced
    on (its own schedule under a [benefits] menu: result.pool_instance)."""
    if not isinstance(spec.benefits, BenefitMenu):
        return welfare_records(instance, spec.welfare, pools)
    return [w for p in pools for w in welfare_records(pool_instance(instance, p), spec.welfare, [p])]


def _solve_problem(instance: Instance, spec: Spec, time_limit, options, workers, scheduler, progress,
                   checkpoint, resume, started, solver_options) -> Result:
    """`solve` on a checked problem, without the welfare records."""
    if time_limit is not None:
        solver_options["time_limit"] = time_limit
    options = solve_options(options, **solver_options)
    plan = ExecutionPlan(workers=workers, scheduler=scheduler, progress=progress, label="blocks solved")
    if not isinstance(resume, bool):
        raise InputError(f"resume must be True or False, got {resume!r}")
    if started is not None and (isinstance(started, bool) or not isinstance(started, int | float)):
        raise InputError(f"started must be a time.monotonic() reading, got {started!r}")
    if spec.uncertainty is not None:   # a scenario leaving a field out of range: an input error before any work
        scenario_instances(instance, spec.uncertainty)
    start = time.perf_counter()
    deadline = None if options.time_limit is None else Deadline.after(options.time_limit, started)
    if spec.objective.kind in GROUP_OBJECTIVES:
        if checkpoint is not None and resume:
            tell("resume: a group objective is solved as one MILP, which keeps no checkpoint: solved from the start")
        from pooling.optimise.equity import solve_group_objective
        return solve_group_objective(instance, spec, options, deadline, plan)
    blocks = problem_blocks(instance, spec) if options.decompose else []
    if len(blocks) <= 1:
        if checkpoint is not None and resume:
            tell("resume: this problem is one block, which keeps no checkpoint: solved from the start")
        return solve_whole(instance, spec, options, deadline, plan)
    store = Checkpoints(checkpoint, resume, kind="block") if checkpoint is not None else None

    def solve_blocks(block_spec: Spec, floor: float | None) -> list[Result]:
        # Only finished blocks are checkpointed (block_records): one that ended
        # in a solver error (a Ctrl-C landing inside HiGHS), by the time limit
        # (stopped, or never started) or without a plan is solved again on resume.
        keys = [block_key(instance, block_spec, options, b, floor) for b in blocks]
        records = None if store is None else \
            BlockStore(store, instance, block_spec, {k: (b.label, b.members) for k, b in zip(keys, blocks)}, floor)
        results = run_blocks(_solve_block, [(b, deadline, floor) for b in blocks], (instance, block_spec, options),
                             blocks, keys, plan, records, keep=lambda r: r.status != Status.ERROR.value,
                             deadline=deadline, grace=BLOCK_GRACE_SECONDS)
        for i, why in unsolved(results).items():
            results[i] = stopped_result(instance, block_spec, options, unsolved_note(why))
        return results

    base = dict(spec=spec.to_dict(), objective_kind=spec.objective.kind, solver_options=options.to_dict(),
                provenance=provenance(instance, spec, SOLVER_NAME, solver_version()))
    if coupled(spec):
        # Its blocks' checkpoints would be every priced candidate pool, which
        # cannot be verified more cheaply than priced again: none are kept.
        if store is not None and resume:
            tell(f"resume: this solve's blocks share one rate window and keep no checkpoints; "
                 f"all {len(blocks)} are solved again")
        return with_resume_count(solve_coupled(instance, spec, options, blocks, deadline, plan, None, base, start),
                                 store)
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
    return with_resume_count(merge_results(instance, spec, blocks, results, base, time.perf_counter() - start),
                             store)


def _solve_block(shared, task) -> Result:
    """One block of a decomposed solve (a task: runs in a worker process);
    NOT_STARTED when the deadline has passed before it starts."""
    instance, spec, options = shared
    block, deadline, floor = task
    if passed(deadline):
        return NOT_STARTED
    window = None if floor is None else (floor, math.inf)
    return solve_whole(instance.restricted(block.members), spec, options, deadline, None, window)


def evaluate(instance: Instance, spec: Spec, plan, *, pricer: PoolPricer | None = None,
             subsidy: bool = False, options: SolveOptions | None = None, explain: bool = False,
             contracts=None, benefits=None) -> Evaluation:
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
    (a plan file's own contracts are read with it). Under a [benefits] menu
    every pool names its schedule, one of the menu's: `benefits` [{"pool":
    [ids], "schedule": {deductible, cap, level_factors}}, ...] (a plan file's,
    or a result.json's pools', are read with it)."""
    instance, spec = as_problem(instance, spec, "evaluate")
    menu = isinstance(spec.benefits, BenefitMenu)
    if menu and (subsidy or explain or pricer is not None):
        raise spec.benefits.refusal("`evaluate --subsidy`, `--explain` or `--sensitivity`")
    start = time.perf_counter()
    for name, flag in (("subsidy", subsidy), ("explain", explain)):
        if not isinstance(flag, bool):
            raise InputError(f"{name} must be True or False, got {flag!r} ({type(flag).__name__})")
    if explain:
        require_exact_measure(spec)   # before any work
    fields, plan_name = None, "evaluate"   # where each named schedule came from: (file, field)
    if isinstance(plan, (str, os.PathLike)):
        plan_name = str(plan)
        if benefits is None:
            labelled = labelled_plan_schedules(plan)
            benefits, fields = [item for _, item in labelled], [(str(plan), name) for name, _ in labelled]
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
    schedules = _pool_schedules(spec, plan, benefits, fields, plan_name)
    if menu:
        makers = MenuMaker(instance, spec)
        candidates = [makers.make(pool, tuple(sorted(chosen.get(frozenset(pool), ()))), k)
                      for pool, k in zip(plan, schedules)]
    else:
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
        solution = solve_columns(instance, spec, columns, options, objective=rate_objective(spec))
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
        alone = evaluate(instance, dataclasses.replace(spec, welfare=None), [[c] for c in sorted(instance.ids)],
                         pricer=pricer, options=options)   # the status quo needs no welfare records
        status_quo = {p.pricing.counties[0]: p.rate for p in alone.pools}
        explained = gain_decomposition(
            instance, spec, pricer, [(p.pricing.counties, p.rate, p.pricing.contracts) for p in pools], status_quo)
    welfare = None if spec.welfare is None else plan_welfare_records(instance, spec, pools)
    groups = None
    if spec.objective.kind in GROUP_OBJECTIVES:
        groups = group_figures(instance, [(care, p.rate) for p in pools for care in p.pricing.care])
    return Evaluation(subsidy=extra, explain=explained, contracts=contract_records(instance, pools), welfare=welfare,
                      feasible=not violations, group_rates=groups,
                      objective=plan_objective(instance, spec, pools), mean_rate=mean_rate(pools),
                      rates_from=rates_from, pools=pools, violations=violations,
                      provenance=provenance(instance, spec, None, None), spec=spec.to_dict(),
                      numerics=numerics_summary(priced), wall_seconds=time.perf_counter() - start)


def _pool_schedules(spec: Spec, plan: list[list[str]], benefits, fields=None, plan_name: str = "evaluate") -> list[int]:
    """Each pool's number on the spec's [benefits] menu (evaluate's
    `benefits`); [0, ...] without a menu, where a plan naming schedules is
    refused (the spec's own schedule is what it prices). Errors name the
    plan (`plan_name`: its file), and `fields` each item's (file, field)
    (a plan file's; else `evaluate`'s argument `benefits`)."""
    given = [] if benefits is None else benefits
    if not isinstance(given, (list, tuple)):
        raise InputError(f'evaluate: benefits must be a list of {{"pool": [ids], "schedule": {{...}}}}, '
                         f"got {type(given).__name__}")
    fields = fields or [("evaluate", f"benefits[{k}]") for k in range(len(given))]
    if not isinstance(spec.benefits, BenefitMenu):
        if given:
            raise InputError(f"{plan_name}: the plan names benefit schedules for its pools ({fields[0][1]}, ...), "
                             f"but the [benefits] of {spec.source} is not a menu (it prices every pool under its "
                             f"own schedule): drop the plan's benefits or evaluate under the spec that offered them")
        return [0] * len(plan)
    menu, pools = spec.benefits, {frozenset(p): i for i, p in enumerate(plan)}
    found: dict[int, int] = {}
    for (where, name), item in zip(fields, given):
        if not isinstance(item, dict) or set(item) != {"pool", "schedule"}:
            raise InputError(f'{where}: {name} must be {{"pool": [ids], "schedule": {{...}}}}, got {item!r}')
        pool = item["pool"]
        index = pools.get(frozenset(pool)) if isinstance(pool, (list, tuple)) else None
        if index is None:
            raise InputError(f"{where}: {name}.pool {pool!r} is not a pool of the plan")
        members = f"[{', '.join(plan[index])}]"
        held = name if name.endswith(".benefits") else f"{name}.schedule"   # a result's pool holds it as benefits
        schedule = schedule_from_dict(item["schedule"], where, f"{held}.")
        if schedule not in menu.schedules:
            raise InputError(f"{where}: {held} (pool {members}) is not on the spec's [benefits] menu "
                             f"({len(menu.schedules)} schedules in {spec.source})")
        if index in found:
            raise InputError(f"{where}: {name}: pool {members} is given a schedule twice")
        found[index] = menu.schedules.index(schedule)
    missing = [p for i, p in enumerate(plan) if i not in found]
    if missing:
        raise InputError(f"{plan_name}: pool [{', '.join(missing[0])}] names no benefit schedule, but the "
                         f"[benefits] of {spec.source} is a menu: the plan must name each pool's schedule "
                         f"(\"benefits\": [{{\"pool\": [...], \"schedule\": {{...}}}}])")
    return [found[i] for i in range(len(plan))]


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
        if max(bound.value, 0.0) <= r_star or bound.value == -math.inf:   # -inf: met at every rate
            continue
        if bound.rule == "rates.min":
            message = (f"{label}: max solvent rate {r_star:.4f} < rates.min {spec.rates.min:g} "
                       f"({spec.solvency.measure} at level {spec.solvency.level:g})")
        else:
            message = f"{label}: can pay at most {r_star:.4f} but {describe_bound(bound)}"
        found.append(Violation(rule=bound.rule, pools=(pid,), counties=(counties,), rates=(r_star,),
                               limit=bound.value if math.isfinite(bound.value) else None,   # inf: met at no rate
                               county=bound.county, message=message))
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
        smallest = smallest_gap(mine, alone, spec, options)[0].objective
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

