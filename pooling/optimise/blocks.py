"""Decomposition of a solve into independent blocks (exact).

A block is a set of counties that no candidate pool and no rule crosses:
- the groups pools are drawn from: each county (scope "county"), each
  prefecture (scope "prefecture"), each group of `pooling.within` (scope
  "optimise"; one group for within = "none");
- groups linked by a `max_rate_gap` group wider than them (gap_scope
  "province" over prefecture groups, say) are merged into one block;
  gap_scope "instance" and the min_rate_dispersion objective compare every
  pool with every other: the blocks stay separate and share one rate window,
  searched exactly (pooling.optimise.windows);
- max_min_rate compares pools across blocks too, but decomposes exactly in two
  passes (`solve`): each block's best smallest rate, z = their minimum, then
  each block's best mean rate with every rate >= z.
Under the mean-rate objective the blocks' problems share nothing: the
optimum is the enrollee-weighted combination of the blocks' optima, and the
same combination of the blocks' bounds is a valid bound. Each block is solved
on `Instance.restricted(members)`, which prices every pool exactly as the
whole instance does.

Statuses combine honestly: every block optimal -> optimal; every block with a
plan but some only feasible or stopped by the time limit -> feasible or
time_limit; some blocks with a plan and others infeasible or unsolved ->
partial (the plan covers the feasible blocks; `groups` says which); no block
with a plan -> infeasible (all infeasible) or the first other status.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.provenance import package_version
from pooling.data.spec import Spec
from pooling.economics.objectives import objective_denominator
from pooling.execution.deadline import Deadline
from pooling.execution.tasks import (
    ABANDONED,
    NOT_STARTED,
    ExecutionPlan,
    machine_slowdown,
    run_tasks,
    workers_worth_starting,
)
from pooling.optimise.block_records import BlockStore
from pooling.optimise.candidates import group_subsets, pool_groups
from pooling.optimise.columns import pool_variants
from pooling.optimise.result import Result, contract_records, mean_rate, plan_outcomes, relative_gap
from pooling.optimise.solver import Status


@dataclass(frozen=True)
class Block:
    """Counties whose pooling problem is independent of every other block's."""

    label: str
    members: tuple[str, ...]
    enrollees: int


def problem_blocks(instance: Instance, spec: Spec) -> list[Block]:
    """The independent blocks of a problem (module docstring), in order of
    their smallest county id."""
    gap = spec.equalisation.max_rate_gap
    scope = spec.pooling.scope
    if scope == "county":
        groups = [(f"county {cid}", (cid,)) for cid in instance.ids]
    elif scope == "prefecture":
        by_prefecture: dict[str, list[str]] = {}
        for county in instance.counties:
            by_prefecture.setdefault(county.prefecture, []).append(county.id)
        groups = [(f"prefecture {p}", tuple(ids)) for p, ids in by_prefecture.items()]
    else:
        groups = [(g.label, g.members) for g in pool_groups(instance, spec)]
    if gap is not None and spec.equalisation.gap_scope != "instance":
        groups = _merge_by(instance, groups, spec.equalisation.gap_scope)
    blocks = [Block(label, tuple(sorted(members)), sum(instance.county(c).enrollees for c in members))
              for label, members in groups]
    return sorted(blocks, key=lambda b: b.members[0])


def _merge_by(instance: Instance, groups: list[tuple[str, tuple[str, ...]]], key: str):
    """Groups sharing a value of `key` (province, prefecture) joined into one
    block (union-find over the groups; order of first appearance kept)."""
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, (_, members) in enumerate(groups):
        for value in sorted({str(getattr(instance.county(c), key)) for c in members}):
            if value in owner:
                parent[find(index)] = find(owner[value])
            else:
                owner[value] = index
    joined: dict[int, list[int]] = {}
    for index in range(len(groups)):
        joined.setdefault(find(index), []).append(index)
    out = []
    for parts in joined.values():
        members = tuple(c for i in parts for c in groups[i][1])
        value = str(getattr(instance.county(members[0]), key))
        label = groups[parts[0]][0] if len(parts) == 1 else f"{key} {value} ({len(parts)} groups)"
        out.append((label, members))
    return out


def run_blocks(fn: Callable[[Any, Any], Any], tasks: list, shared: tuple, blocks: list[Block], keys: list[str],
               plan: ExecutionPlan, store: BlockStore | None, keep: Callable[[Any], bool] = lambda _: True,
               deadline: Deadline | None = None, grace: float = 0.0) -> list:
    """`fn(shared, task)` for each block's task, `shared` = (instance, spec,
    options) of the problem the blocks come from. Runs on the plan's backend
    with as many of its workers as pay for themselves (`block_costs`, and
    the time the deadline leaves: `workers_worth_starting`), in `run_order` (a
    `deadline` means a time limit); with a checkpoint `store`, finished tasks
    are saved under their key as they finish (those `keep` accepts and the
    store keeps: pooling.optimise.block_records) and, when resuming, saved
    ones that verify are not run again. A block the deadline stopped before
    it started gives NOT_STARTED, one still running in a worker `grace`
    seconds past it ABANDONED (`unsolved`; neither is saved)."""
    done = {}
    if store is not None:
        done = {i: r for i, k in enumerate(keys) if (r := store.load(k)) is not None}
        store.summarise(len(keys), len(done))

    def save(index: int, value: Any) -> None:
        if store is not None and keep(value):
            store.save(keys[index], value)

    if plan.scheduler is None and plan.workers > 1:
        costs = [c for i, c in enumerate(block_costs(*shared, blocks)) if i not in done]
        workers = workers_worth_starting(costs, plan.workers, slowdown=machine_slowdown(),
                                         time_left=None if deadline is None else deadline.remaining())
        plan = dataclasses.replace(plan, workers=workers)
    return run_tasks(fn, tasks, shared, plan, on_result=save, done=done,
                     order=run_order(blocks, deadline is not None, plan.workers), deadline=deadline, grace=grace)


def unsolved(results: list) -> dict[int, str]:
    """The blocks `run_blocks` left without a result: index -> "not started"
    (the deadline passed before it started) or "abandoned" (unfinished in a
    worker when the run stopped waiting for it)."""
    return {i: "not started" if r is NOT_STARTED else "abandoned"
            for i, r in enumerate(results) if r is NOT_STARTED or r is ABANDONED}


POOL_SECONDS = 0.004
"""Pricing one candidate pool: 2-6 ms on the development machine (Henan's
prefectures, 12 to 888 enumerated pools each)."""

BLOCK_SECONDS = 0.03
"""A block's fixed part: its sub-instance, the MILP's build and solve (15-50 ms
for a small one)."""

GENERATED_GROUP_SECONDS = 3.0
"""A group that gets generated columns (more than enumeration_limit subsets):
rounds of pricing and the bound over every pool, about 2-20 s on Henan's
prefectures of 11 to 13 counties; the lower end, since only the decision
to start workers rests on it."""


def block_costs(instance: Instance, spec: Spec, options: SolveOptions, blocks: list[Block]) -> list[float]:
    """Each block's estimated solve time (seconds), from the candidate pools
    it will price (counted, not priced) and its groups that get generated
    columns: enough to tell tasks that cannot pay for a worker process
    (tens of milliseconds) from those that can (seconds)."""
    owner = {c: i for i, block in enumerate(blocks) for c in block.members}
    costs = [BLOCK_SECONDS] * len(blocks)
    if spec.pooling.scope != "optimise":
        for i, block in enumerate(blocks):
            if spec.pooling.scope == "county":
                pools = [[c] for c in block.members]
            else:   # one pool a prefecture (a block may join several under a gap rule)
                by_prefecture: dict[str, list[str]] = {}
                for c in block.members:
                    by_prefecture.setdefault(instance.county(c).prefecture, []).append(c)
                pools = list(by_prefecture.values())
            costs[i] += POOL_SECONDS * len(pool_variants(instance, pools))
        return costs
    for group in pool_groups(instance, spec):
        i = owner[group.members[0]]
        generate = options.candidates == "generate" and len(group.members) > 1
        subsets = None if generate else group_subsets(instance, spec, group, options.enumeration_limit)
        if subsets is None:   # generated, or enumerated in full: seconds either way
            costs[i] += GENERATED_GROUP_SECONDS
        else:
            costs[i] += POOL_SECONDS * len(pool_variants(instance, subsets))
    return costs


def run_order(blocks: list[Block], limited: bool = False, workers: int = 1) -> list[int]:
    """The order blocks are started in: the largest first (the longest tasks
    first balance a pool of workers, so the whole run ends soonest). Under a
    time limit (`limited`) the `workers` - 1 largest still start first and
    the rest smallest first, so that as many blocks and counties as possible
    have a plan if the limit strikes while the run still ends about as soon
    (national, 2 workers: at a 60 s limit 250 of 341 prefectures and 1,442
    of 2,565 counties have a plan, 8 prefectures largest first; at an ample
    limit the run took 171 s, 203 s largest first)."""
    largest = sorted(range(len(blocks)), key=lambda i: (-len(blocks[i].members), i))
    if not limited:
        return largest
    first = largest[:max(0, workers - 1)]
    return first + sorted(largest[len(first):], key=lambda i: (len(blocks[i].members), i))


def block_key(instance: Instance, spec: Spec, options: SolveOptions, block: Block,
              floor: float | None = None) -> str:
    """Identity of a block's solve for checkpoints: same inputs, options and
    code version give the same key, anything else another."""
    deterministic = {k: v for k, v in options.to_dict().items() if k not in ("time_limit",)}
    text = json.dumps([instance.sha256, spec.sha256, spec.to_dict(), deterministic, list(block.members),
                       floor, package_version("pooling")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_PLANLESS_ORDER = (Status.TIME_LIMIT.value, Status.NO_SOLUTION.value, Status.ERROR.value,
                   Status.INFEASIBLE.value)
"""Without any plan, a status other than infeasible says more (infeasibility is not proven)."""


def combined_status(results: list[Result]) -> str:
    """One status for the blocks' statuses (module docstring)."""
    statuses = [r.status for r in results]
    with_plan = [r for r in results if r.pools]
    if len(with_plan) == len(results):
        if all(s == Status.OPTIMAL.value for s in statuses):
            return Status.OPTIMAL.value
        return Status.TIME_LIMIT.value if Status.TIME_LIMIT.value in statuses else Status.FEASIBLE.value
    if with_plan:
        return Status.PARTIAL.value
    if all(s == Status.INFEASIBLE.value for s in statuses):
        return Status.INFEASIBLE.value
    return next(s for s in _PLANLESS_ORDER if s in statuses)


def merge_numerics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst self-checks over the blocks' summaries."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    out = dict(parts[0])
    out["pools_priced"] = sum(p["pools_priced"] for p in parts)
    for key in ("max_mean_rel_error", "max_variance_rel_error", "max_resolution_rel_diff", "max_lattice_points"):
        out[key] = max(p[key] for p in parts)
    return out


def merge_generation(parts: list[dict[str, Any]], blocks: int, mode: str) -> dict[str, Any]:
    """The blocks' candidate_generation records as one."""
    generated = [p for p in parts if p.get("method") == "column_generation"]
    out: dict[str, Any] = {"method": "column_generation" if generated else "enumeration", "mode": mode,
                           "decomposed_blocks": blocks}
    if generated:
        out.update({
            "enumeration_limit": generated[0]["enumeration_limit"],
            "rounds": max(p["rounds"] for p in generated),
            "converged": all(p["converged"] for p in generated),
            "stopped": next((p["stopped"] for p in generated if p.get("stopped")), None),
            "bound_method": "per block: " + generated[0]["bound_method"],
            "proven_optimal": all(p.get("proven_optimal") for p in generated),
        })
    out["groups"] = [g for p in parts for g in p.get("groups", [])]
    return out


def _generation_record(block: Block, result: Result) -> dict[str, Any]:
    """A block's candidate_generation record, with a group entry for an
    enumerated block too (as generation logs enumerated groups)."""
    record = dict(result.candidate_generation)
    if record.get("method") != "column_generation":
        record["groups"] = [{"group": block.label, "counties": len(block.members), "method": "enumerated",
                             "columns": result.columns, "pools_priced": result.candidate_pools,
                             "reduced_rate_bound": 0.0}]
    return record


def merge_results(instance: Instance, spec: Spec, blocks: list[Block], results: list[Result],
                  base: dict[str, Any], wall_seconds: float) -> Result:
    """The decomposed solve's result: the blocks' plans side by side, objective
    and bound enrollee-weighted over the blocks that have a plan (all blocks
    unless the status is partial), `groups` with every block's outcome."""
    planned = [(b, r) for b, r in zip(blocks, results) if r.pools]
    pricings = [p.pricing for _, r in planned for p in r.pools]
    rates = [p.rate for _, r in planned for p in r.pools]
    pools = plan_outcomes(pricings, rates)
    ids = {p.pricing.counties: p.id for p in pools}
    objective = bound = None
    if planned and spec.objective.kind == "max_min_rate":
        objective = min(p.rate for p in pools)
        bound = min(r.bound if r.bound is not None else spec.rates.max for _, r in planned)
        bound = min(max(bound, objective), spec.rates.max)
    elif planned:
        # Each block's objective is sum w_P r_P / D_b: the whole is their D-weighted mean
        # (D_b the block's enrollees, or its total cost of care for coverage).
        weight = {b.label: objective_denominator(spec.objective.kind, instance, b.members) for b, _ in planned}
        covered = math.fsum(weight.values())
        objective = math.fsum(weight[b.label] * r.objective for b, r in planned) / covered
        bound = math.fsum(weight[b.label] * (r.bound if r.bound is not None else spec.rates.max)
                          for b, r in planned) / covered
        bound = min(max(bound, objective), spec.rates.max)
    groups, diagnosis = [], []
    for block, result in zip(blocks, results):
        groups.append({"group": block.label, "counties": list(block.members), "enrollees": block.enrollees,
                       "status": result.status, "objective": result.objective, "bound": result.bound,
                       "gap": result.gap, "pools": [ids[p.pricing.counties] for p in result.pools],
                       "diagnosis": list(result.diagnosis)})
        diagnosis.extend(line if line.startswith(block.label) else f"{block.label}: {line}"
                         for line in result.diagnosis)
    timings = {key: math.fsum(r.timings.get(key, 0.0) for r in results) for key in ("pricing", "build", "solve")}
    return Result(status=combined_status(results), objective=objective, bound=bound,
                  gap=relative_gap(objective, bound), wall_seconds=wall_seconds, pools=pools,
                  contracts=contract_records(instance, pools), diagnosis=diagnosis,
                  termination=f"decomposed into {len(blocks)} independent blocks",
                  mean_rate=mean_rate(pools) if pools else None, timings=timings,
                  candidate_pools=sum(r.candidate_pools for r in results),
                  columns=sum(r.columns for r in results),
                  numerics=merge_numerics([r.numerics for r in results]),
                  candidate_generation=merge_generation(
                      [_generation_record(b, r) for b, r in zip(blocks, results)], len(blocks),
                      base["solver_options"]["candidates"]),
                  groups=groups, **{k: base[k] for k in ("spec", "objective_kind", "solver_options", "provenance")})
