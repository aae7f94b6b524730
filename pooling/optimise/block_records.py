"""Checkpoint records of a decomposed solve's blocks, and the check that a
stored plan is what the inputs give before it is trusted.

A finished block (a plan for every county of the block, status optimal or
feasible, not cut by the time limit) is saved as its result.json entry
(`Result.to_dict()`: plain JSON). On resume the record is reused only after
`verify_plan` has recomputed what it claims from the instance and the spec:
every county of the block in exactly one pool, every pool allowed by the
pooling rules and its contracts on offer, each pool re-priced (the stored pool
figures must equal the re-priced ones), each rate admissible for its
re-priced pool (at most its maximum solvent rate, at least every per-pool
rule's floor, on the menu, inside the decomposed solve's rate window), the
rate-gap rule within each gap group, and the objective, mean rate, gap and
contracts recomputed from the plan. The result then carries the re-priced
pools, not the stored ones. Re-pricing a plan's few pools costs a small
share of solving the block (which prices every candidate pool and solves a
MILP).

What is not recomputed: the certificate (status optimal and the bound, which
only solving the block again can prove; checked for consistency: the bound on
the right side of the objective and within the trivial bound) and the solve's
log (timings, candidate counts, the column-generation log and the numerics
summary over every candidate priced: type-checked). A block without a plan
(infeasible, stopped by the time limit, not started) is never kept: a claim of
no plan cannot be checked without solving again, so resume solves it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.rules import describe_bound
from pooling.errors import InputError
from pooling.execution.checkpoints import Checkpoints, tell
from pooling.optimise.candidates import pool_rule_violations
from pooling.optimise.columns import MenuMaker, gap_groups, pool_variants
from pooling.optimise.formulations.set_partition import menu_steps
from pooling.optimise.problem import in_window, plan_objective
from pooling.optimise.result import PoolOutcome, Result, contract_records, mean_rate, plan_outcomes, relative_gap
from pooling.optimise.solver import Status

FINISHED = (Status.OPTIMAL.value, Status.FEASIBLE.value)
"""Statuses of a block (or sweep cell) whose plan is kept and may be reused:
a plan for every county, not cut short by the time limit."""

RATE_TOLERANCE = 1e-9
"""A stored rate may exceed its re-priced pool's maximum solvent rate (or fall
below its floor) by at most this, in rate units: a reported rate is clipped
into the admissible range or snapped to the menu (whose points count within
MENU_SLACK x step), and the same pool priced on a block or on the whole
instance agrees to rounding (~1e-15). Far below any material change: a
tampered rate (0.99 against 0.5913) is off by 0.4."""

GAP_TOLERANCE = 1e-6
"""Rates of one gap group may spread by max_rate_gap plus this: the MILP keeps
the gap only to HiGHS's primal feasibility tolerance (1e-7) and reported rates
are then clipped or snapped."""

OBJECTIVE_TOLERANCE = 1e-9
"""A stored objective must agree with the one recomputed from its plan to
this (rate units): a decomposed solve combines the blocks' objectives, which
sums in another order than one pass over the pools. The stored value is kept
when it agrees, so a resumed result is bit-identical to an uninterrupted one."""


class PlanRejected(ValueError):
    """A stored plan that does not verify (the message says which figure or rule)."""


def canonical(data: Any) -> str:
    """JSON text that compares equal exactly when the data does (floats by repr)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _counties(counties) -> str:
    return "[" + ", ".join(counties) + "]"


def verify_plan(instance: Instance, spec: Spec, entries, window: tuple[float, float] | None = None
                ) -> list[PoolOutcome]:
    """The plan `entries` [(counties, contracts, rate)] re-priced under
    (instance, spec), with every rule checked (module docstring); raises
    PlanRejected naming the first thing that fails. `window`: every rate must
    also lie in it (a decomposed solve's rate floor). Under a [benefits] menu
    each entry has a fourth item, its pool's schedule, which must be on it."""
    ids = set(instance.ids)
    owner: dict[str, int] = {}
    for index, (counties, *_) in enumerate(entries):
        if not counties:
            raise PlanRejected("a pool has no county")
        for cid in counties:
            if cid not in ids:
                raise PlanRejected(f"pool {_counties(counties)} names county {cid!r}, not one of this problem's")
            if cid in owner:
                raise PlanRejected(f"county {cid} is in two pools")
            owner[cid] = index
    missing = sorted(ids - set(owner))
    if missing:
        raise PlanRejected(f"counties {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} are in no pool")
    menu = MenuMaker(instance, spec)
    candidates = []
    for counties, contracts, rate, *rest in entries:
        label = f"pool {_counties(counties)}"
        schedule = rest[0] if rest else None
        try:
            number = menu.index(schedule)
        except KeyError:
            raise PlanRejected(f"{label}: its benefit schedule is not the spec's (nor on its menu)") from None
        problems = pool_rule_violations(instance, spec, counties)
        if problems:
            raise PlanRejected(problems[0])
        members = frozenset(counties)
        if (members, tuple(contracts)) not in pool_variants(instance, [members]):
            raise PlanRejected(f"{label}: contracts {list(contracts)} are not on offer to it")
        candidate = menu.make(members, tuple(contracts), number)
        if window is not None:
            kept = in_window([candidate], window, spec)
            if not kept:
                raise PlanRejected(f"{label}: no admissible rate inside the rate window {window}")
            candidate = kept[0]
        _check_rate(candidate, rate, spec, label)
        candidates.append(candidate)
    rates = [entry[2] for entry in entries]
    _check_gaps(instance, spec, [c.pricing.counties for c in candidates], rates)
    return plan_outcomes([c.pricing for c in candidates], rates)


def _check_rate(candidate, rate: Any, spec: Spec, label: str) -> None:
    column = candidate.column
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
        raise PlanRejected(f"{label}: rate {rate!r} is not a number")
    if not candidate.admissible:
        raise PlanRejected(f"{label}: re-priced, it has no admissible rate (maximum solvent rate "
                           f"{column.max_rate:.6g}; {describe_bound(candidate.lower)})")
    if rate > column.max_rate + RATE_TOLERANCE:
        raise PlanRejected(f"{label}: rate {rate!r} is above its maximum solvent rate {column.max_rate!r} "
                           f"(re-priced from the instance and spec)")
    if rate < column.min_rate - RATE_TOLERANCE:
        raise PlanRejected(f"{label}: rate {rate!r} is below the lowest rate the spec allows it, "
                           f"{column.min_rate!r}")
    step = spec.rates.step
    if step is not None:
        k = round((rate - spec.rates.min) / step)
        k_lo, k_hi = menu_steps(column, spec.rates.min, step)
        if abs(spec.rates.min + k * step - rate) > RATE_TOLERANCE or not k_lo <= k <= k_hi:
            raise PlanRejected(f"{label}: rate {rate!r} is not on the rate menu inside its admissible range")


def _check_gaps(instance: Instance, spec: Spec, pools: list[tuple[str, ...]], rates: list[float]) -> None:
    gap = spec.equalisation.max_rate_gap
    if gap is None:
        return
    by_group: dict[str, list[float]] = {}
    for members, rate in zip(pools, rates):
        for group in gap_groups(instance, spec, members):
            by_group.setdefault(group, []).append(rate)
    for group, values in sorted(by_group.items()):
        if max(values) - min(values) > gap + GAP_TOLERANCE:
            raise PlanRejected(f"rates in gap group {group} spread {max(values) - min(values):.6g} > "
                               f"max_rate_gap {gap:g}")


def agreeing(stored: Any, recomputed: float, what: str) -> float:
    """The stored figure when it agrees with the recomputed one (OBJECTIVE_TOLERANCE)."""
    if isinstance(stored, bool) or not isinstance(stored, (int, float)) or \
            not abs(stored - recomputed) <= OBJECTIVE_TOLERANCE:
        raise PlanRejected(f"{what} {stored!r} does not match its plan re-priced ({recomputed!r})")
    return stored


def check_certificate(spec: Spec, objective: float, bound: Any, gap: Any) -> None:
    """The bound on the right side of the objective and inside the trivial
    bound, and the gap the one they give."""
    if bound is not None:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise PlanRejected(f"bound {bound!r} is not a number")
        if spec.objective.kind == "min_rate_dispersion":
            sound = -OBJECTIVE_TOLERANCE <= bound <= objective + OBJECTIVE_TOLERANCE
        else:
            sound = objective - OBJECTIVE_TOLERANCE <= bound <= spec.rates.max + OBJECTIVE_TOLERANCE
        if not sound:
            raise PlanRejected(f"bound {bound!r} is not a bound of objective {objective!r} "
                               f"(rates.max {spec.rates.max:g})")
    if gap != relative_gap(objective, bound):
        raise PlanRejected(f"gap {gap!r} is not the gap of objective {objective!r} and bound {bound!r}")


def block_record(result: Result) -> dict[str, Any] | None:
    """A finished block's checkpoint payload; None for a block that is not
    kept (no plan, or not finished: module docstring)."""
    if result.status not in FINISHED or not result.pools:
        return None
    return {"result": result.to_dict()}


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise PlanRejected(what)


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_log(result: Result) -> None:
    """The solve's log fields, which merge_results combines, have their types."""
    _require(set(result.timings) == {"pricing", "build", "solve"} and
             all(_is_number(v) and v >= 0 for v in result.timings.values()), "timings are not three durations")
    _require(_is_number(result.wall_seconds) and result.wall_seconds >= 0, "wall_seconds is not a duration")
    _require(all(isinstance(line, str) for line in result.diagnosis), "diagnosis is not a list of lines")
    _require(result.termination is None or isinstance(result.termination, str), "termination is not text")
    _require(result.candidate_pools >= 0 and result.columns >= 0, "negative counts of pools")
    n = result.numerics
    _require(n == {} or (set(n) == {"checked_against", "pools_priced", "max_mean_rel_error",
                                    "max_variance_rel_error", "max_resolution_rel_diff", "max_lattice_points"}
                         and isinstance(n["checked_against"], str)
                         and all(isinstance(n[k], int) and not isinstance(n[k], bool)
                                 for k in ("pools_priced", "max_lattice_points"))
                         and all(_is_number(n[k]) for k in ("max_mean_rel_error", "max_variance_rel_error",
                                                            "max_resolution_rel_diff"))),
             "numerics is not a pricing self-check summary")
    g = result.candidate_generation
    _require(isinstance(g.get("method"), str), "candidate_generation has no method")
    if g["method"] == "column_generation":
        _require(isinstance(g.get("enumeration_limit"), int) and isinstance(g.get("rounds"), int)
                 and isinstance(g.get("converged"), bool) and isinstance(g.get("bound_method"), str)
                 and (g.get("stopped") is None or isinstance(g.get("stopped"), str))
                 and isinstance(g.get("proven_optimal", False), bool)
                 and isinstance(g.get("groups", []), list)
                 and all(isinstance(entry, dict) for entry in g.get("groups", [])),
                 "candidate_generation is not a column generation log")


def restore_block(payload: Any, instance: Instance, spec: Spec, window: tuple[float, float] | None) -> Result:
    """A block's result from its checkpoint payload, verified against
    (instance, spec) (module docstring); PlanRejected if it does not verify."""
    if not isinstance(payload, dict) or set(payload) != {"result"}:
        raise PlanRejected("it is not a block record")
    data = payload["result"]
    try:
        stored = Result.from_dict(data, source="result")
    except InputError as exc:
        raise PlanRejected(str(exc)) from None
    if stored.status not in FINISHED or not stored.pools:
        raise PlanRejected(f"it holds no finished plan (status {stored.status})")
    if canonical(stored.spec) != canonical(spec.to_dict()) or stored.objective_kind != spec.objective.kind:
        raise PlanRejected("it was solved under another spec")
    _check_log(stored)
    pools = verify_plan(instance, spec, [(p.pricing.counties, p.pricing.contracts, p.rate, p.pricing.benefits)
                                         for p in stored.pools], window)
    for fresh, saved in zip(pools, data["pools"]):
        text = fresh.to_dict()
        if canonical(text) != canonical(saved):
            field = next((k for k in text if canonical(text.get(k)) != canonical(saved.get(k))), "a field")
            raise PlanRejected(f"pool {fresh.id} {_counties(fresh.pricing.counties)}: {field} "
                               f"{saved.get(field)!r} does not match the pool re-priced ({text.get(field)!r})")
    objective = agreeing(stored.objective, plan_objective(instance, spec, pools), "objective")
    check_certificate(spec, objective, stored.bound, stored.gap)
    if stored.mean_rate != mean_rate(pools):
        raise PlanRejected(f"mean_rate {stored.mean_rate!r} does not match its plan ({mean_rate(pools)!r})")
    contracts = contract_records(instance, pools)
    if canonical(contracts) != canonical(stored.contracts):
        raise PlanRejected("its contracts do not match its plan's")
    return dataclasses.replace(stored, pools=pools, contracts=contracts)


class BlockStore:
    """The checkpoints of one pass of a decomposed solve: finished blocks
    saved as they finish, and on resume reused only once their plan verifies
    (anything else is said on stderr, naming the file, and solved again)."""

    def __init__(self, checkpoints: Checkpoints, instance: Instance, spec: Spec,
                 blocks: dict[str, tuple[str, tuple[str, ...]]], floor: float | None = None):
        self.checkpoints, self.instance, self.spec, self.blocks = checkpoints, instance, spec, blocks
        self.window = None if floor is None else (floor, math.inf)
        self._rejected_before = checkpoints.rejected

    def load(self, key: str) -> Result | None:
        payload = self.checkpoints.load(key)
        if payload is None:
            return None
        label, members = self.blocks[key]
        try:
            result = restore_block(payload, self.instance.restricted(members), self.spec, self.window)
        except PlanRejected as exc:
            self.checkpoints.reject(key, f"{label}: {exc}")
            return None
        self.checkpoints.reused += 1
        return result

    def save(self, key: str, result: Result) -> None:
        record = block_record(result)
        if record is not None:
            self.checkpoints.save(key, record)

    def summarise(self, total: int, reused: int) -> None:
        """After loading, on resume: how many blocks are reused and how many solved."""
        if not self.checkpoints.resume:
            return
        rejected = self.checkpoints.rejected - self._rejected_before
        failed = f" ({rejected} of them had a checkpoint that failed verification)" if rejected else ""
        tell(f"resume: {reused} of {total} blocks reused from {self.checkpoints.folder} (each plan verified by "
             f"re-pricing its pools), {total - reused} to solve{failed}")


def with_resume_count(result: Result, checkpoints: Checkpoints | None) -> Result:
    """A resumed result's timings say how many block solves it reused
    (`resumed_blocks`); any other result is returned as it is."""
    if checkpoints is None or not checkpoints.resume:
        return result
    return dataclasses.replace(result, timings={**result.timings, "resumed_blocks": checkpoints.reused})
