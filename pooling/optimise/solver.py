"""Running a Pyomo model with HiGHS, and the one place that maps solver
statuses to the project's `Status`.

Uses Pyomo's newer solver layer (pyomo.contrib.solver), which reports the
termination condition, incumbent objective and best bound separately.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import highspy
import pyomo.core as pyo
from pyomo.contrib.solver.common.results import TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from pooling.data.options import SolveOptions

SOLVER_NAME = "highs"


class Status(str, enum.Enum):
    """Outcome of a solve, as written to result.json."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    NO_SOLUTION = "no_solution_found"   # generated columns admit no plan; infeasibility not proven
    PARTIAL = "partial"   # decomposed: some blocks have a plan, others are infeasible or unsolved
    ERROR = "error"


_INFEASIBLE = {TerminationCondition.provenInfeasible, TerminationCondition.locallyInfeasible,
               TerminationCondition.infeasibleOrUnbounded}
_STOPPED_EARLY = {TerminationCondition.iterationLimit, TerminationCondition.interrupted,
                  TerminationCondition.objectiveLimit, TerminationCondition.minStepLength}


def map_status(condition: TerminationCondition, has_incumbent: bool) -> Status:
    """The single mapping from a Pyomo termination condition to `Status`."""
    if condition == TerminationCondition.convergenceCriteriaSatisfied:
        return Status.OPTIMAL
    if condition == TerminationCondition.maxTimeLimit:
        return Status.TIME_LIMIT
    if condition in _INFEASIBLE:
        return Status.INFEASIBLE
    if condition in _STOPPED_EARLY and has_incumbent:
        return Status.FEASIBLE
    return Status.ERROR


@dataclass(frozen=True)
class SolverRun:
    status: Status
    termination: str
    objective: float | None
    bound: float | None
    seconds: float
    has_incumbent: bool


def solver_version() -> str:
    return ".".join(str(v) for v in Highs().version())


_scheduler_threads: int | None = None
"""The thread count HiGHS's process-wide task scheduler was last started with."""


def _use_threads(threads: int) -> None:
    """HiGHS starts one task scheduler per process, sized by the first run's
    `threads`; a later run asking for a different count fails with no
    solution (status error). Reset the scheduler when the count changes."""
    global _scheduler_threads
    if _scheduler_threads is not None and _scheduler_threads != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads = threads


def run_highs(model: pyo.ConcreteModel, options: SolveOptions) -> SolverRun:
    """Solve `model` (maximisation or minimisation) and load the incumbent, if any."""
    _use_threads(options.threads)
    solver = Highs()
    highs_options = {"mip_rel_gap": options.mip_rel_gap, "mip_abs_gap": options.mip_abs_gap,
                     "threads": options.threads, "random_seed": options.random_seed}
    start = time.perf_counter()
    try:
        results = solver.solve(model, time_limit=options.time_limit, solver_options=highs_options,
                               load_solutions=False, raise_exception_on_nonoptimal_result=False)
    except RuntimeError as exc:
        # Pyomo's output capture turns a Ctrl-C that lands inside it into a
        # RuntimeError naming KeyboardInterrupt; it is still the user's interrupt.
        if "KeyboardInterrupt" in str(exc):
            raise KeyboardInterrupt from exc
        raise
    seconds = time.perf_counter() - start
    has_incumbent = results.incumbent_objective is not None
    if has_incumbent:
        results.solution_loader.load_vars()
    status = map_status(results.termination_condition, has_incumbent)
    bound = results.objective_bound
    if bound is not None and abs(bound) == float("inf"):
        bound = None
    return SolverRun(status=status, termination=str(results.termination_condition.name),
                     objective=results.incumbent_objective, bound=bound, seconds=seconds,
                     has_incumbent=has_incumbent)
