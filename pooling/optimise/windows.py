"""Exact decomposition of the rules that couple blocks through one rate window.

Two rules compare the rates of pools in different blocks (pooling.optimise.blocks):
- `max_rate_gap` with gap_scope "instance": every rate of the plan lies in one
  window [L, L + gap];
- the `min_rate_dispersion` objective: the plan's highest rate minus its lowest.
For a fixed window the blocks separate again: each solves its own MILP with its
columns' rates confined to the window (problem.in_window). So the search is
over the window's lower end L, and only finitely many L can be optimal: with
the partition fixed and rates free in [L, L + gap], each objective is monotone
in L until L passes the highest rate some chosen pool can pay, so an optimal L
is a pool's top rate (r*_P, or its highest menu rate); for the dispersion also
a pool's lowest admissible rate (`breakpoints`).

Branch and bound over those values in sorted order (`search`): the L of an
interval [a, b] all give windows inside [a, b + width], so the blocks solved
over that relaxed window bound the interval; a single value is exact. A relaxed
plan whose rates happen to fit one window is a plan of the whole problem (an
incumbent). Intervals whose bound does not beat the incumbent by more than
WINDOW_TOLERANCE are closed, so the answer is the monolithic MILP's. A block's
plan for an interval is kept for a sub-interval whose window still holds all
its rates (optimal over the larger window, feasible in the smaller), so most
blocks are solved once. The bound reported is the largest over the closed
intervals of the blocks' valid bounds (a generated block's is its column
generation bound, valid over every pool).

Lexicographic stages as in the monolithic MILP: max_min_rate then maximises the
mean rate in the window [z*, z* + gap]; min_rate_dispersion D* then maximises
the mean rate over windows of width D* (+ the lexicographic tolerance).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from dataclasses import dataclass
from typing import Any

from pooling.data.instance import Instance
from pooling.data.options import SolveOptions
from pooling.data.spec import Spec
from pooling.economics.objectives import LINEAR_OBJECTIVES, MEAN_RATE, objective_denominator
from pooling.execution.checkpoints import Checkpoints
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import ExecutionPlan
from pooling.optimise import blocks as blocks_module
from pooling.optimise.columns import top_rate
from pooling.optimise.formulations.set_partition import menu_steps
from pooling.optimise.problem import (
    BLOCK_GRACE_SECONDS,
    GENERATED_PROOF_TOLERANCE,
    LEXICOGRAPHIC_TOLERANCE,
    PricedProblem,
    in_window,
    milp_options,
    objective_value,
    price_problem,
    priced_fields,
    solve_columns,
    solve_priced,
    stopped_result,
    unsolved_note,
)
from pooling.optimise.result import Result, relative_gap
from pooling.optimise.solver import Status

WINDOW_TOLERANCE = 1e-9
"""An interval is closed when its bound exceeds the incumbent by at most this
(rate units; the MILPs are solved to a relative gap of 1e-9 too)."""

MIN_MAX = "min_max_rate"
"""What a decomposed min_rate_dispersion asks each block: its lowest highest rate."""


def coupled(spec: Spec) -> bool:
    """Does a rule compare rates across blocks (module docstring)?"""
    eq = spec.equalisation
    return spec.objective.kind == "min_rate_dispersion" or (
        eq.max_rate_gap is not None and eq.gap_scope == "instance")


@dataclass(frozen=True)
class Answer:
    """A block's plan for one window: its primary value (None: no plan), a
    bound on that value valid over the window's columns and one valid over
    every pool, and the lowest and highest rate of the plan."""

    value: float | None
    bound: float
    valid: float
    low: float = math.inf
    high: float = -math.inf
    exact: bool = False   # the MILP proved the value optimal over the window's columns


@dataclass(frozen=True)
class Block:
    """One block of a coupled problem: its sub-instance, priced problem and
    the weight of its objective (D_b)."""

    instance: Instance
    priced: PricedProblem
    weight: float


def breakpoints(blocks: list[Block], spec: Spec, width: float, lowest_too: bool) -> list[float]:
    """The window starts L that can be optimal (module docstring), within the
    range any plan can reach: each block needs a pool paying >= L, and every
    pool's floor must fit below L + width."""
    tops, bottoms, reach, needs = set(), set(), [], []
    for block in blocks:
        columns = block.priced.admissible
        block_tops = [top_rate(c, spec) for c in columns]
        tops.update(block_tops)
        reach.append(max(block_tops))
        block_bottoms = [_bottom_rate(c, spec) for c in columns]
        needs.append(min(block_bottoms))
        if lowest_too:
            bottoms.update(block_bottoms)
    low, high = max(max(needs) - width, spec.rates.min), min(reach)
    return sorted(v for v in tops | bottoms if low - WINDOW_TOLERANCE <= v <= high + WINDOW_TOLERANCE)


def _bottom_rate(candidate, spec: Spec) -> float:
    """The lowest rate an admissible candidate can pay (its floor, or its lowest menu rate)."""
    if spec.rates.step is None:
        return candidate.column.min_rate
    k_lo, _ = menu_steps(candidate.column, spec.rates.min, spec.rates.step)
    return spec.rates.min + k_lo * spec.rates.step


class WindowSolver:
    """Answers "each block's best plan with every rate in [lo, hi]" for one
    objective kind, reusing a block's answer when a smaller window still holds it."""

    def __init__(self, blocks: list[Block], spec: Spec, options: SolveOptions, kind: str,
                 deadline: Deadline | None):
        self.blocks, self.spec, self.options, self.kind, self.deadline = blocks, spec, options, kind, deadline
        self.maximise = kind != MIN_MAX
        self.milps = 0

    def answers(self, window: tuple[float, float], previous: list[Answer] | None) -> list[Answer]:
        lo, hi = window
        out = []
        for index, block in enumerate(self.blocks):
            old = previous[index] if previous is not None else None
            if old is not None and old.exact and old.value is not None and \
                    old.low >= lo - WINDOW_TOLERANCE and old.high <= hi + WINDOW_TOLERANCE:
                out.append(old)
            else:
                out.append(self._answer(block, window))
        return out

    def _answer(self, block: Block, window: tuple[float, float]) -> Answer:
        spec, kind, maximise = self.spec, self.kind, self.maximise
        worst = -math.inf if maximise else math.inf      # the bound of a proven infeasible window
        trivial = spec.rates.max if maximise else window[0]
        generated = block.priced.generated
        over_all = trivial   # a generated block's bound valid over every pool, not only its columns
        if generated and kind == spec.objective.kind and block.priced.generated_bound is not None:
            over_all = min(trivial, block.priced.generated_bound)
        columns = in_window(block.priced.admissible, window, spec)
        if {cid for c in columns for cid in c.column.members} != set(block.instance.ids):
            return Answer(None, worst, over_all if generated else worst)   # a county has no pool in the window
        if all(len(c.column.members) == len(block.instance.ids) for c in columns):
            return self._single_pool(block, columns, generated, over_all)
        options = self.options if self.deadline is None else _with_time_left(self.options, self.deadline)
        self.milps += 1
        solution = solve_columns(block.instance, spec, [c.column for c in columns], options,
                                 objective=kind, tie_break=False)
        run = solution.run
        if not solution.chosen:
            bound = worst if run.status == Status.INFEASIBLE else trivial
            return Answer(None, bound, over_all if generated else bound)
        value = run.objective
        bound = run.bound if run.bound is not None else trivial
        bound = max(bound, value) if maximise else min(bound, value)
        valid = bound if not generated else (max(over_all, value) if maximise else min(over_all, value))
        return Answer(value, bound, valid, min(solution.rates), max(solution.rates),
                      exact=run.status == Status.OPTIMAL)

    def _single_pool(self, block: Block, columns, generated: bool, over_all: float) -> Answer:
        """Every column covers the whole block (one county, or one pool with
        contract variants): the best column in closed form, no MILP."""
        best = None
        for candidate in columns:
            rate = top_rate(candidate, self.spec) if self.maximise else _bottom_rate(candidate, self.spec)
            if self.kind in LINEAR_OBJECTIVES:
                value = candidate.column.objective_weight * rate / block.weight
            else:
                value = rate
            better = best is None or (value > best[0] if self.maximise else value < best[0])
            if better:
                best = (value, rate)
        value, rate = best
        valid = value if not generated else (max(over_all, value) if self.maximise else min(over_all, value))
        return Answer(value, value, valid, rate, rate, exact=True)


def _with_time_left(options: SolveOptions, deadline: Deadline) -> SolveOptions:
    return milp_options(options, deadline)


@dataclass(frozen=True)
class Outcome:
    """The search's answer: the best value (objective's sense made "larger is
    better"), the window of its plan, the bound valid over every pool, and
    whether the search finished."""

    value: float | None
    window: tuple[float, float] | None
    bound: float
    finished: bool
    intervals: int
    milps: int


def search(solver: WindowSolver, values: list[float], width: float, combine, deadline: Deadline | None) -> Outcome:
    """Branch and bound over the window start L in `values` (module
    docstring). `combine(answers, last_start)` turns the blocks' answers for
    the relaxed window of the starts up to `last_start` into (value of the
    plan or None, bound over the windows it stands for, bound valid over every
    pool, the plan's window or None); larger is better."""
    if not values:
        return Outcome(None, None, -math.inf, True, 0, 0)
    best: list = [None, None]          # value, window
    closed = -math.inf                 # largest valid bound over closed intervals
    heap: list = []
    evaluated = 0

    def visit(i: int, j: int, previous) -> None:
        nonlocal closed, evaluated
        evaluated += 1
        lo, hi = values[i], min(values[j] + width, solver.spec.rates.max)
        answers = solver.answers((lo, hi), previous)
        value, bound, valid, plan_window = combine(answers, values[j])
        if value is not None and (best[0] is None or value > best[0]):
            best[0], best[1] = value, plan_window
        if i == j or bound == -math.inf or (value is not None and bound <= value + WINDOW_TOLERANCE):
            closed = max(closed, valid)
            return
        heapq.heappush(heap, (-bound, i, j, valid, answers))

    visit(0, len(values) - 1, None)
    finished = True
    while heap:
        top = -heap[0][0]
        if best[0] is not None and top <= best[0] + WINDOW_TOLERANCE:
            break
        if passed(deadline):
            finished = False
            break
        _, i, j, _, answers = heapq.heappop(heap)
        middle = (i + j) // 2
        visit(i, middle, answers)
        visit(middle + 1, j, answers)
    for entry in heap:
        closed = max(closed, entry[3])
    bound = max(closed, best[0]) if best[0] is not None else closed
    return Outcome(best[0], best[1], bound, finished, evaluated, solver.milps)


def combiner(kind: str, blocks: list[Block], width: float):
    """`combine` for `search` under objective `kind` (see search)."""
    total = math.fsum(b.weight for b in blocks)

    def plan_window(answers):
        low, high = min(a.low for a in answers), max(a.high for a in answers)
        return (low, low + width) if high - low <= width + WINDOW_TOLERANCE else None

    def combine(answers, last_start):
        if kind == MIN_MAX:
            # Larger is better: minus the dispersion. Every L of the interval is at
            # most last_start and each block's highest rate at least its bound, so
            # no plan of the interval beats last_start - max_b bound_b.
            bound = last_start - max(a.bound for a in answers)
            valid = last_start - max(a.valid for a in answers)
            if any(a.value is None for a in answers):
                return None, -math.inf, valid, None
            window = plan_window(answers)
            value = -(max(a.high for a in answers) - min(a.low for a in answers)) if window else None
            return value, bound, valid, window
        if any(a.value is None for a in answers):
            valid = _merge(kind, blocks, [a.valid for a in answers], total)
            return None, -math.inf, valid, None
        window = plan_window(answers)
        value = _merge(kind, blocks, [a.value for a in answers], total) if window else None
        bound = _merge(kind, blocks, [a.bound for a in answers], total)
        valid = _merge(kind, blocks, [a.valid for a in answers], total)
        return value, bound, valid, window

    return combine


def _merge(kind: str, blocks: list[Block], values: list[float], total: float) -> float:
    if any(v == -math.inf for v in values):
        return -math.inf
    if kind == "max_min_rate":
        return min(values)
    return math.fsum(b.weight * v for b, v in zip(blocks, values)) / total


def _price_block(shared, task) -> PricedProblem:
    """Price one block of a coupled solve (a task: runs in a worker process)."""
    instance, spec, options = shared
    block, deadline = task
    return price_problem(instance.restricted(block.members), spec, options, deadline, None)


def _with_kind(spec: Spec, kind: str) -> Spec:
    return dataclasses.replace(spec, objective=dataclasses.replace(spec.objective, kind=kind))


def solve_coupled(instance: Instance, spec: Spec, options: SolveOptions, blocks: list, deadline: Deadline | None,
                  plan: ExecutionPlan, store: Checkpoints | None, base: dict[str, Any], start: float) -> Result:
    """A decomposed solve whose blocks share one rate window (module docstring):
    every block priced once (in parallel, checkpointed), the window searched on
    the priced columns, then each block solved in the chosen window and merged."""
    keys = [blocks_module.block_key(instance, spec, options, b, "priced") for b in blocks]
    priced = blocks_module.run_blocks(_price_block, [(b, deadline) for b in blocks], (instance, spec, options),
                                      blocks, keys, plan, store, deadline=deadline,
                                      grace=BLOCK_GRACE_SECONDS)
    for i, why in blocks_module.unsolved(priced).items():   # not saved: priced afresh on resume
        early = stopped_result(instance.restricted(blocks[i].members), spec, options, unsolved_note(why))
        priced[i] = PricedProblem([], [], {"method": "stopped"}, 0.0, early=early)
    usable = [i for i, p in enumerate(priced) if p.early is None]
    results: list[Result | None] = [p.early for p in priced]
    kind, original = spec.objective.kind, spec
    parts = []
    for i in usable:
        sub = instance.restricted(blocks[i].members)
        parts.append(Block(sub, priced[i], objective_denominator(kind, sub, sub.ids)))
    eq = spec.equalisation
    width = eq.max_rate_gap if eq.max_rate_gap is not None and eq.gap_scope == "instance" else math.inf
    if width < math.inf:
        # The blocks drop the instance-wide gap: a window of width gap implies it,
        # and a wider (relaxed) window only needs a valid bound; without it, rates
        # are free under a linear objective and each block's MILP is a pure
        # set partition.
        spec = dataclasses.replace(spec, equalisation=dataclasses.replace(eq, max_rate_gap=None))
    search_log, outcome, final_kind = [], None, kind
    if parts:
        stage_kind = MIN_MAX if kind == "min_rate_dispersion" else kind
        solver = WindowSolver(parts, spec, options, stage_kind, deadline)
        outcome = search(solver, breakpoints(parts, spec, width, stage_kind == MIN_MAX), width,
                         combiner(stage_kind, parts, width), deadline)
        search_log.append(outcome)
        if kind in ("min_rate_dispersion", "max_min_rate"):
            final_kind = MEAN_RATE
        if kind == "min_rate_dispersion" and outcome.value is not None:
            # Second stage: the best mean rate among plans within D* of each other.
            narrow = min(-outcome.value + LEXICOGRAPHIC_TOLERANCE, width)
            second = search(WindowSolver(parts, spec, options, MEAN_RATE, deadline),
                            breakpoints(parts, spec, narrow, False), narrow,
                            combiner(MEAN_RATE, parts, narrow), deadline)
            search_log.append(second)
            if second.window is not None:
                outcome = dataclasses.replace(outcome, window=second.window,
                                              finished=outcome.finished and second.finished)
    smallest = None
    if outcome is not None and outcome.window is None and outcome.finished and kind != "min_rate_dispersion":
        # No window of width max_rate_gap fits every block: the smallest that does.
        widest = search(WindowSolver(parts, spec, options, MIN_MAX, deadline),
                        breakpoints(parts, spec, math.inf, True), math.inf,
                        combiner(MIN_MAX, parts, math.inf), deadline)
        smallest = -widest.value if widest.value is not None and widest.finished else None
    final_spec = _with_kind(spec, final_kind)
    for index, i in enumerate(usable):
        if outcome is None or outcome.window is None:
            # The instance-wide diagnosis goes with the first block only.
            results[i] = _no_window(original, options, parts[index].priced, outcome, width, smallest, base,
                                    index == 0)
        else:
            results[i] = solve_priced(parts[index].instance, final_spec, options, deadline, priced[i],
                                      outcome.window)
    merged = blocks_module.merge_results(instance, spec, blocks, results, base, time.perf_counter() - start)
    return _certified(merged, spec, outcome, search_log)


def _no_window(spec: Spec, options: SolveOptions, priced: PricedProblem, outcome: Outcome | None, width: float,
               smallest: float | None, base: dict[str, Any], say: bool) -> Result:
    """A block's result when no common window was found: infeasible, or stopped."""
    finished = outcome is not None and outcome.finished
    if finished:
        what = (f"no plan keeps every pool of the instance within max_rate_gap {width:g}: no common rate window "
                f"of that width admits a plan of every block")
        if smallest is not None:
            what += (f"; the smallest achievable gap is {smallest:.4f}: setting max_rate_gap to {smallest:.4f} "
                     f"would restore feasibility")
    else:
        what = "the time limit was reached before a common rate window admitting every block was found"
    status = Status.INFEASIBLE if finished and not priced.generated else \
        (Status.NO_SOLUTION if finished else Status.TIME_LIMIT)
    return Result(status=status.value, objective=None, bound=None, gap=None,
                  wall_seconds=priced.pricing_seconds, pools=[], diagnosis=[what] if say else [], termination=what,
                  timings={"pricing": priced.pricing_seconds, "build": 0.0, "solve": 0.0},
                  provenance=base["provenance"], **priced_fields(spec, options, priced))


def _certified(merged: Result, spec: Spec, outcome: Outcome | None, log: list[Outcome]) -> Result:
    """The merged result with the objective of the whole plan and the search's
    bound; optimal only when the search closed every interval."""
    kind = spec.objective.kind
    windows = sum(o.intervals for o in log)
    milps = sum(o.milps for o in log)
    termination = (f"{merged.termination}, coupled by one rate window: {windows} windows searched, "
                   f"{milps} block MILPs")
    if not merged.pools or outcome is None or outcome.value is None:
        return dataclasses.replace(merged, termination=termination)
    objective = objective_value(kind, merged.pools)
    if kind == "min_rate_dispersion":
        bound = min(max(0.0, -outcome.bound), objective)
    else:
        bound = min(max(outcome.bound, objective), spec.rates.max)
    status = merged.status
    if not outcome.finished and status in (Status.OPTIMAL.value, Status.FEASIBLE.value):
        status = Status.TIME_LIMIT.value
    elif status == Status.OPTIMAL.value and abs(bound - objective) > GENERATED_PROOF_TOLERANCE:
        status = Status.FEASIBLE.value
    return dataclasses.replace(merged, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                               status=status, termination=termination)
