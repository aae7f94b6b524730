"""Baselines in one place (DESIGN §Formulations, 4): status quo (every county
alone), the status quo as run (every county alone at its `current_rate`, when
the instance gives every county one), full prefecture pooling, greedy merging,
and the optimum.

Fixed partitions (status quo, prefecture) are not bound by the spec's
pooling rules (contiguity, size limits): a prefecture pool that is not
contiguous can beat a contiguous optimum; `breaks_rules` lists such
violations so a comparison is read correctly.

All four are judged by the same spec (solvency, rates, equalisation rules,
objective), so the comparison isolates the choice of pools. Greedy merging
starts from the status quo and repeatedly merges the pair of adjacent pools
(some member of one adjacent to some member of the other) whose merge
improves the plan most, while the merged pool is allowed by the pooling rules
and an improving merge exists. Plans are ranked by (number of inadmissible
pools, whether the coupled rules such as the rate gap can hold, primary
objective, mean rate): merging first repairs counties that cannot stand
alone, then plans whose rates cannot be equalised (fewer pools first).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from pooling.data.benefits import BenefitMenu
from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.spec import GROUP_OBJECTIVES, Spec
from pooling.economics.group_rates import group_objective, plan_groups
from pooling.economics.objectives import LINEAR_OBJECTIVES, plan_value
from pooling.economics.pools import PoolPricer
from pooling.economics.status_quo import as_run
from pooling.economics.status_quo import summary as as_run_summary
from pooling.execution.deadline import Deadline, passed
from pooling.optimise.candidates import pool_rule_violations
from pooling.optimise.columns import CandidateMaker, build_candidates, partition_rules
from pooling.optimise.problem import rate_objective
from pooling.optimise.solve import solve, solve_columns
from pooling.optimise.solver import Status

IMPROVEMENT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class BaselineOutcome:
    name: str
    status: str
    objective: float | None
    mean_rate: float | None
    min_rate: float | None
    max_rate: float | None
    pools: list[list[str]]
    seconds: float
    breaks_rules: list[str] = dataclasses.field(default_factory=list)
    as_run: dict | None = None
    """status_quo_as_run only: each county's expected surplus and deficit probability (economics.status_quo)."""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if data["as_run"] is None:
            del data["as_run"]
        return data


class _OutOfTime(Exception):
    """The deadline passed while a greedy step priced its pools."""


def fixed_plan_value(instance: Instance, spec: Spec, blocks, pricer: PoolPricer,
                     options: SolveOptions, deadline: Deadline | None = None
                     ) -> tuple[int, float, float, list[float]] | None:
    """(inadmissible pools, primary objective, mean rate, rates) of a fixed partition,
    rates chosen by the spec's MILP on its pools (`solve_columns`, as solve and
    evaluate do); None if the rules cannot all hold. Past `deadline` (checked
    before each pool is priced) it raises _OutOfTime."""
    if deadline is None:
        candidates = build_candidates(instance, spec, [frozenset(b) for b in blocks], pricer)
    else:
        maker = CandidateMaker(instance, spec, pricer)
        candidates = []
        for block in blocks:
            if passed(deadline):
                raise _OutOfTime
            candidates.append(maker.make(frozenset(block)))
    bad = sum(1 for c in candidates if not c.admissible)
    if bad:
        return bad, float("-inf"), float("-inf"), []
    rules = partition_rules(spec)
    weights = [c.pricing.enrollees / instance.total_enrollees for c in candidates]
    # Without a gap or a menu, and unless the objective rewards lower rates, the
    # MILP gives each pool of a fixed partition its r*_P: skip HiGHS (greedy calls this often).
    if rules.max_rate_gap is None and rules.rate_step is None and rules.objective != "min_rate_dispersion":
        rates = [c.column.max_rate for c in candidates]
    else:
        solution = solve_columns(instance, spec, [c.column for c in candidates], options,
                                 objective=rate_objective(spec))
        if solution.run.status != Status.OPTIMAL:
            return None
        rates = [0.0] * len(candidates)
        for j, rate in zip(solution.chosen, solution.rates):
            rates[j] = rate
    mean = sum(w * r for w, r in zip(weights, rates))
    if rules.objective in GROUP_OBJECTIVES:
        primary = _group_value(instance, spec, [c.pricing for c in candidates], rates)
    elif rules.objective in LINEAR_OBJECTIVES:
        primary = plan_value(rules.objective, [c.pricing for c in candidates], rates)
    else:
        primary = {"max_min_rate": min(rates), "min_rate_dispersion": -(max(rates) - min(rates))}[rules.objective]
    return 0, primary, mean, rates


def _adjacent(instance: Instance, a, b) -> bool:
    members = set(b)
    return any(other in members for cid in a for other in instance.county(cid).adjacent)


def greedy(instance: Instance, spec: Spec, pricer: PoolPricer | None = None,
           options: SolveOptions | None = None, deadline: Deadline | None = None) -> list[list[str]]:
    """Greedy merging from the status quo (module docstring). Past `deadline`
    it stops with the plan merged so far (check with `passed(deadline)`)."""
    pricer = pricer if pricer is not None else PoolPricer(instance, spec)
    options = options or SolveOptions()
    optimise_rules = dataclasses.replace(spec, pooling=dataclasses.replace(spec.pooling, scope="optimise"))

    def score(plan):
        value = fixed_plan_value(instance, spec, plan, pricer, options, deadline)
        if value is None:  # pools admissible but coupled rules (rate gap) fail: fewer pools is closer
            return (0, 0, -float(len(plan)), float("-inf"))
        return (-value[0], 1, value[1], value[2])

    plan = [[cid] for cid in sorted(instance.ids)]
    try:
        current = score(plan)
        while not passed(deadline):
            best, best_plan = None, None
            for i in range(len(plan)):
                for j in range(i + 1, len(plan)):
                    if not _adjacent(instance, plan[i], plan[j]):
                        continue
                    merged = sorted(plan[i] + plan[j])
                    if pool_rule_violations(instance, optimise_rules, merged):
                        continue
                    trial = [p for k, p in enumerate(plan) if k not in (i, j)] + [merged]
                    value = score(trial)
                    if best is None or value > best:
                        best, best_plan = value, trial
            if best is None or not _improves(best, current):
                return sorted(plan)
            plan, current = best_plan, best
    except _OutOfTime:   # a step cut short: the plan merged so far stands (the caller sees the deadline)
        pass
    return sorted(plan)


def _improves(new, old) -> bool:
    if new[:2] != old[:2]:
        return new[:2] > old[:2]
    if abs(new[2] - old[2]) > IMPROVEMENT_TOLERANCE:
        return new[2] > old[2]
    return new[3] > old[3] + IMPROVEMENT_TOLERANCE


def compare(instance: Instance, spec: Spec, optimum=None, options: SolveOptions | None = None,
            started: float | None = None):
    """Status quo, prefecture pooling, greedy merging and the optimum under one
    spec. A time limit in `options` covers them all, counted from `started` (a
    time.monotonic() reading: the command line passes when the run began, so
    the optimum's solve counts too): a baseline the deadline cuts short says
    so in its status (time_limit, or partial for a fixed partition)."""
    options = options or SolveOptions()
    if isinstance(spec.benefits, BenefitMenu):
        raise spec.benefits.refusal("`solve --compare` (greedy merging prices one schedule)")
    if started is None:
        started = time.monotonic()
    deadline = None if options.time_limit is None else Deadline.after(options.time_limit, started)
    outcomes = []
    for name, scope in (("status_quo", "county"), ("prefecture", "prefecture")):
        fixed = dataclasses.replace(spec, pooling=dataclasses.replace(spec.pooling, scope=scope))
        outcomes.append(_from_result(name, solve(instance, fixed, options=options, started=started),
                                     instance, spec, cut_short=passed(deadline)))
    start = time.perf_counter()
    pricer = PoolPricer(instance, spec)
    plan = greedy(instance, spec, pricer, options, deadline)
    cut_short = passed(deadline)
    value = fixed_plan_value(instance, spec, plan, pricer, options)
    feasible = value is not None and value[0] == 0
    outcomes.append(BaselineOutcome(
        name="greedy", status="time_limit" if cut_short else "feasible" if feasible else "infeasible",
        objective=_reported(spec, value[1]) if feasible else None,
        mean_rate=value[2] if feasible else None,
        min_rate=min(value[3]) if feasible else None, max_rate=max(value[3]) if feasible else None,
        pools=plan, seconds=time.perf_counter() - start))
    observed = status_quo_as_run(instance, spec, pricer)
    if observed is not None:
        outcomes.insert(1, observed)
    optimum = optimum if optimum is not None else solve(instance, spec, options=options, started=started)
    outcomes.append(_from_result("optimum", optimum, cut_short=passed(deadline)))
    return outcomes


def status_quo_as_run(instance: Instance, spec: Spec, pricer: PoolPricer) -> BaselineOutcome | None:
    """Every county alone at its `current_rate` (economics.status_quo), when
    every county has one (a plan must cover all counties); status "as_run",
    its objective the spec's at those rates (linear objectives)."""
    if any(c.current_rate is None for c in instance.counties):
        return None
    start = time.perf_counter()
    rows = as_run(instance, spec, pricer)
    rates = [r.current_rate for r in rows]
    pricings = [pricer.price([r.county]) for r in rows]
    kind = spec.objective.kind
    if kind in GROUP_OBJECTIVES:
        objective = _group_value(instance, spec, pricings, rates)
    elif kind in LINEAR_OBJECTIVES:
        objective = plan_value(kind, pricings, rates)
    else:
        objective = {"max_min_rate": min(rates), "min_rate_dispersion": max(rates) - min(rates)}[kind]
    summary = as_run_summary(rows, instance)
    return BaselineOutcome(name="status_quo_as_run", status="as_run", objective=objective,
                           mean_rate=summary["mean_rate"], min_rate=min(rates), max_rate=max(rates),
                           pools=[[r.county] for r in rows], seconds=time.perf_counter() - start, as_run=summary)


def _group_value(instance: Instance, spec: Spec, pricings, rates) -> float:
    """A group objective of a plan given as pricings and rates."""
    return group_objective(spec.objective.kind, spec.objective.aversion,
                           plan_groups(instance, [(care, r) for p, r in zip(pricings, rates) for care in p.care]))


def _reported(spec: Spec, primary: float) -> float:
    return -primary if spec.objective.kind == "min_rate_dispersion" else primary


def _from_result(name, result, instance=None, spec=None, cut_short: bool = False) -> BaselineOutcome:
    if result.status == "partial":
        # A plan of some blocks only is not a plan of the instance: infeasible
        # when a block has no plan, unknown ("time_limit") when the run's
        # deadline stopped it.
        return BaselineOutcome(name=name, status="time_limit" if cut_short else "infeasible", objective=None,
                               mean_rate=None, min_rate=None,
                               max_rate=None, pools=[], seconds=result.wall_seconds)
    rates = [p.rate for p in result.pools]
    broken = []
    if instance is not None:
        optimise_rules = dataclasses.replace(spec, pooling=dataclasses.replace(spec.pooling, scope="optimise"))
        for p in result.pools:
            broken.extend(pool_rule_violations(instance, optimise_rules, p.pricing.counties))
    return BaselineOutcome(name=name, status=result.status, objective=result.objective,
                           mean_rate=result.mean_rate if result.pools else None,
                           min_rate=min(rates) if rates else None, max_rate=max(rates) if rates else None,
                           pools=[list(p.pricing.counties) for p in result.pools],
                           seconds=result.wall_seconds, breaks_rules=broken)
