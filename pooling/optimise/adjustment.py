"""Plans of adjustment funds (issue 27 item 1): which counties share a fund,
the contribution each group takes from the spec's menu, and the members'
rates, with the three baselines (no pooling, adjustment fund, unified pool).

Groups are the spec's candidate pools (optimise.candidates: scope, within,
contiguous, max_counties and min_enrollees mean what they mean for pools). A
group of one has no fund (a member alone is its own fund; contribution 0). A
group of several is priced at every contribution on the menu
under two rules for its members' rates (economics.adjustment_fund: one
common rate, the largest at which the fund and every member are solvent; or
each member's rate alone scaled by the largest common factor that keeps them
solvent) and keeps the best; it is usable when every member's rate is at
least rates.min. The plan
maximises the enrollee-weighted mean rate over partitions of the counties
into usable groups: a set-partitioning MILP (scipy's HiGHS) over the priced
groups, exact for the listed groups.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.adjustment_fund import AdjustmentFundPricer, FundOutcome
from pooling.errors import InputError
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.candidates import candidate_pools

RATE_RULES = ("common", "proportional")
"""How a group's members' rates are set: one common rate, or each member's
rate alone scaled by a common factor (economics.adjustment_fund)."""


@dataclass(frozen=True)
class GroupChoice:
    """A candidate group's best contribution, rate rule and members' rates."""

    counties: tuple[str, ...]
    contribution: float
    rule: str
    rates: tuple[float, ...]                  # per member, ids sorted
    value: float                              # sum N_i r_i
    usable: bool                              # every rate >= rates.min
    tried: tuple[tuple[float, str, float], ...]   # (contribution, rule, sum N_i r_i) for every option


@dataclass(frozen=True)
class AdjustmentPlan:
    """A plan of adjustment funds, its objective and its groups' figures."""

    status: str                      # "optimal" or "infeasible"
    objective: float | None          # enrollee-weighted mean rate
    groups: tuple[FundOutcome, ...]
    candidates: int
    rules: tuple[str, ...] = ()      # each group's rate rule (RATE_RULES)
    unusable: tuple[tuple[str, ...], ...] = ()   # a fixed design's groups below rates.min (evaluate_adjustment_fund)

    def to_dict(self) -> dict[str, Any]:
        out = {"mode": "adjustment_fund", "status": self.status, "objective": self.objective,
               "candidates": self.candidates,
               "groups": [g.to_dict() | {"rate_rule": rule} for g, rule in zip(self.groups, self.rules)]}
        if self.unusable:
            out["below_min_rate"] = [list(g) for g in self.unusable]
        return out


def _checked_instance(instance: Instance, spec: Spec) -> None:
    if spec.adjustment_fund is None:
        raise InputError(f'{spec.source}: pooling.mode must be "adjustment_fund" to plan adjustment funds')
    if instance.contract_options:
        raise InputError(f"{instance.source}: contract_options are not priced with mode \"adjustment_fund\" "
                         f"({spec.source}): members keep their own networks; remove them")


def choose_contribution(pricer: AdjustmentFundPricer, group) -> GroupChoice:
    """The group's best option: a share on the menu and a rate rule (one
    common rate, or members' rates alone scaled together), the one with the
    highest sum N_i r_i among those whose rates all reach rates.min (the
    smaller share, then the common rule, among equals). A group of one has no
    fund: share 0, its rate alone."""
    terms, spec = pricer.spec.adjustment_fund, pricer.spec
    ids = tuple(sorted(group))
    people = [pricer.instance.county(c).enrollees for c in ids]
    menu = (0.0,) if len(ids) == 1 else terms.contribution
    options = []
    for share in menu:
        common = pricer.max_common_rate(ids, share, terms.retention)
        options.append((share, "common", tuple(common for _ in ids)))
        if len(ids) > 1:
            scaled = pricer.max_scaled_rates(ids, share, terms.retention)
            if scaled is not None:
                options.append((share, "proportional", scaled))
    scored = []
    for k, (share, rule, rates) in enumerate(options):
        value = math.fsum(n * r for n, r in zip(people, rates))
        scored.append((min(rates) >= spec.rates.min, value, -k, share, rule, rates))
    usable, value, _, share, rule, rates = max(scored)
    return GroupChoice(ids, share, rule, rates, value, usable,
                       tuple((sh, ru, v) for _, v, _, sh, ru, _ in scored))


def solve_adjustment_fund(instance: Instance, spec: Spec, pricer: AdjustmentFundPricer | None = None,
                          progress: ExecutionPlan | None = None) -> AdjustmentPlan:
    """The best plan of adjustment funds under the spec (module docstring).
    `progress`: a bar of the groups priced on stderr (ExecutionPlan.progress)."""
    _checked_instance(instance, spec)
    pricer = pricer or AdjustmentFundPricer(instance, spec)
    groups = candidate_pools(instance, spec)
    choices = []
    with ProgressBar(progress, len(groups), label="groups priced") as bar:
        for group in groups:
            choices.append(choose_contribution(pricer, group))
            pricer.forget(group)   # memory: the chosen groups' laws are computed again below
            bar.update()
    usable = [c for c in choices if c.usable]
    ids = sorted(instance.ids)
    total = sum(instance.county(c).enrollees for c in ids)
    picked = _partition(ids, usable, total)
    if picked is None:
        return AdjustmentPlan("infeasible", None, (), len(choices))
    outcomes = tuple(_outcome(pricer, usable[j]) for j in picked)
    objective = math.fsum(usable[j].value for j in picked) / total
    return AdjustmentPlan("optimal", objective, outcomes, len(choices), tuple(usable[j].rule for j in picked))


def _outcome(pricer: AdjustmentFundPricer, choice: GroupChoice) -> FundOutcome:
    return pricer.price_group(choice.counties, choice.contribution, pricer.spec.adjustment_fund.retention,
                              choice.rates)


def _partition(ids: list[str], choices: list[GroupChoice], total: int) -> list[int] | None:
    """Indices of the usable groups that cover every county once and maximise
    sum N_P r_P (None when no partition exists)."""
    if not choices:
        return None
    row = {cid: k for k, cid in enumerate(ids)}
    cover = lil_matrix((len(ids), len(choices)))
    for j, choice in enumerate(choices):
        for cid in choice.counties:
            cover[row[cid], j] = 1.0
    if np.any(np.asarray(cover.sum(axis=1)).ravel() == 0):
        return None
    value = np.array([c.value / total for c in choices])
    found = milp(-value, constraints=LinearConstraint(cover.tocsr(), 1.0, 1.0), integrality=np.ones(len(choices)),
                 bounds=Bounds(0.0, 1.0))
    if found.status != 0 or found.x is None:
        return None
    return [j for j in range(len(choices)) if found.x[j] > 0.5]


def _price_fixed_group(shared, group) -> tuple[GroupChoice, FundOutcome | None]:
    """One group of a fixed design: its best option and, where any rate is
    positive, its figures (a task of `evaluate_adjustment_fund`)."""
    instance, spec, pricer = shared
    pricer = pricer or AdjustmentFundPricer(instance, spec)
    choice = choose_contribution(pricer, group)
    outcome = _outcome(pricer, choice) if max(choice.rates) > 0.0 else None
    pricer.forget(group)
    return choice, outcome


def evaluate_adjustment_fund(instance: Instance, spec: Spec, groups,
                             pricer: AdjustmentFundPricer | None = None, workers: int = 1) -> AdjustmentPlan:
    """A fixed design of adjustment funds: `groups` (a partition of the
    counties, e.g. one group per province) each share one fund, at the
    contribution and rate rule `choose_contribution` picks from the spec's
    menu (a menu of one share fixes it), members at the largest solvent rates
    of that rule. Status "feasible" when every group's rates reach rates.min,
    else "infeasible" (every group still priced where any rate is positive;
    `unusable` names the others). The pool rules (within, contiguous, ...) are
    not applied: the groups are the design asked for. `workers` > 1 prices
    the groups on that many processes (largest first; the same figures)."""
    from pooling.execution.tasks import ExecutionPlan, run_tasks
    _checked_instance(instance, spec)
    ids = sorted(instance.ids)
    known = set(ids)
    seen: set[str] = set()
    for group in groups:
        unknown, twice = sorted(set(group) - known), sorted(seen & set(group))
        if unknown:
            raise InputError(f"plan: county {unknown[0]} is not in {instance.source}")
        if twice:
            raise InputError(f"plan: county {twice[0]} is in two groups")
        seen |= set(group)
    if seen != known:
        raise InputError(f"plan: {len(known - seen)} counties of {instance.source} are in no group, e.g. "
                         f"{sorted(known - seen)[0]}")
    ordered = sorted((tuple(sorted(g)) for g in groups), key=lambda g: g[0])
    largest = sorted(range(len(ordered)), key=lambda k: -len(ordered[k]))
    priced = run_tasks(_price_fixed_group, ordered, (instance, spec, pricer if workers == 1 else None),
                       ExecutionPlan(workers=workers, progress=False, label="groups"), order=largest)
    outcomes, rules, unusable = [], [], []
    for choice, outcome in priced:
        if not choice.usable:
            unusable.append(choice.counties)
        if outcome is not None:
            outcomes.append(outcome)
            rules.append(choice.rule)
    value = math.fsum(choice.value for choice, _ in priced)
    total = sum(instance.county(c).enrollees for c in ids)
    return AdjustmentPlan("infeasible" if unusable else "feasible", value / total, tuple(outcomes), len(groups),
                          tuple(rules), tuple(unusable))


@dataclass(frozen=True)
class ModeComparison:
    """The three designs under one spec's rules: no pooling, adjustment funds, unified pools."""

    no_pooling: float | None
    adjustment_fund: AdjustmentPlan
    unified: float | None
    unified_status: str

    def to_dict(self) -> dict[str, Any]:
        return {"no_pooling": self.no_pooling, "adjustment_fund": self.adjustment_fund.objective,
                "unified": self.unified, "unified_status": self.unified_status}


def compare_modes(instance: Instance, spec: Spec, pricer: AdjustmentFundPricer | None = None,
                  progress: ExecutionPlan | None = None, **solve_options) -> ModeComparison:
    """The enrollee-weighted mean rate of each design (None: no feasible plan).
    No pooling: every county alone at its own largest solvent rate (each must
    reach rates.min); unified: `solve` under the same spec in mode "unified".
    `progress`: the adjustment funds' bar of groups priced (and the unified solve's bars)."""
    from pooling.economics.pools import PoolPricer
    from pooling.optimise.solve import solve
    plan = solve_adjustment_fund(instance, spec, pricer, progress)
    unified_spec = dataclasses.replace(spec, adjustment_fund=None)
    alone = PoolPricer(instance, unified_spec)
    rates = [(instance.county(c).enrollees, alone.price({c}).max_rate) for c in sorted(instance.ids)]
    total = sum(n for n, _ in rates)
    no_pooling = (math.fsum(n * r for n, r in rates) / total
                  if all(r >= spec.rates.min for _, r in rates) else None)
    unified = solve(instance, unified_spec, progress=False if progress is None else progress.progress,
                    **solve_options)
    return ModeComparison(no_pooling, plan, unified.objective, unified.status)
