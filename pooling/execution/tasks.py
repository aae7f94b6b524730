"""Run a function over independent tasks on the chosen backend.

`run_tasks(fn, tasks, shared, plan)` calls ``fn(shared, task)`` for every task
and returns the results in task order. `shared` (an instance and a spec, say)
is sent once per worker, not once per task. `on_result(index, result)` is
called in the parent as each task finishes (to write it to disk at once), and
`done` holds results already computed (a resumed run). With a `deadline`, a
task not started before it is not started at all: its result is NOT_STARTED
(and `on_result` is not called for it).

Backends: `workers == 1` runs in this process; `workers > 1` a
`concurrent.futures` process pool (spawned workers: forking a process whose
HiGHS has started threads is unsafe); `scheduler` an address of a Dask
distributed scheduler (the optional extra ``pooling[distributed]``).
Starting a worker costs about a second (a new interpreter importing numpy,
scipy and Pyomo), so `workers_worth_starting` tells a caller that knows what
its tasks cost how many workers pay for themselves. Workers are started only
when tasks are submitted, at most `workers` tasks are in flight (nothing
queued that a deadline could make pointless), and they die with the process
that started them (`_die_with_parent`), even when it is killed.
"""

from __future__ import annotations

import ctypes
import heapq
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from pooling.errors import InputError
from pooling.execution.deadline import Deadline, passed
from pooling.execution.scheduler_address import check_scheduler

MAX_WORKERS = 256
"""More worker processes than this is a typo on any machine this runs on."""

WORKER_START_SECONDS = 1.0
"""What starting worker processes costs before the first task runs in them,
on an idle machine: a spawned interpreter importing numpy, scipy and Pyomo
and receiving the shared data (benchmarks/bench_overhead.py: 0.8-1.0 s for
one worker and 1.6-2.3 s for two on the 2-core development machine at a
load average of 4-5; `machine_slowdown` stretches it on a busy machine). Workers
are used only when the time they are expected to save exceeds it
(`workers_worth_starting`)."""

PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the process that started it is alive
(the portable fallback where the kernel cannot signal its death)."""


class NoResult:
    """What a task gives when a deadline left it without a result:
    NOT_STARTED (stopped before it started) or ABANDONED (still unfinished
    in a worker when the parent stopped waiting: `run_tasks`). Module-level
    singletons that survive pickling to and from workers."""

    def __init__(self, name: str):
        self.name = name

    def __reduce__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name


NOT_STARTED = NoResult("NOT_STARTED")
ABANDONED = NoResult("ABANDONED")


@dataclass(frozen=True)
class ExecutionPlan:
    """Where tasks run and what the user sees (never changes a result)."""

    workers: int = 1
    scheduler: str | None = None
    progress: bool | None = None   # None: on when stderr is a terminal
    label: str = "tasks"

    def __post_init__(self):
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or \
                not 1 <= self.workers <= MAX_WORKERS:
            raise InputError(f"workers must be an integer in [1, {MAX_WORKERS}], got {self.workers!r}")
        if self.scheduler is not None:   # its form, and a scheduler answering there, before any work
            object.__setattr__(self, "scheduler", check_scheduler(self.scheduler))
        if self.progress not in (None, True, False):
            raise InputError(f"progress must be True, False or None, got {self.progress!r}")

    @property
    def shows_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else self.progress


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def makespan(costs: Sequence[float], workers: int) -> float:
    """When tasks of these costs end on `workers` processes, each task going
    to the first process free, largest first (the list schedule)."""
    loads = [0.0] * max(1, workers)
    for cost in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads)


def machine_slowdown() -> float:
    """How much slower than on an idle machine CPU-bound work runs now: the
    load average over the last minute per core this process may use, at
    least 1 (1 where the load is unknown)."""
    try:
        return max(1.0, os.getloadavg()[0] / default_workers())
    except (AttributeError, OSError):
        return 1.0


def workers_worth_starting(costs: Sequence[float], workers: int, start_seconds: float | None = None,
                           time_left: float | None = None, slowdown: float = 1.0) -> int:
    """How many of `workers` processes to run tasks of these estimated costs
    (seconds on an idle machine) on: 1 (in this process) unless starting
    more ends the run sooner by more than their start-up (default
    WORKER_START_SECONDS); the fewest that end it soonest. When a time limit
    leaves `time_left` seconds and this process alone could not finish, what
    counts is the work done before the limit: n workers do n (time_left -
    start-up), this process time_left, so the most workers that beat it
    (none when the limit is nearer than twice the start-up, for two). Costs
    and start-up are stretched by `slowdown` (a busy machine: the start-up
    of a worker, an interpreter loading its libraries, is CPU work too)."""
    start_seconds = (WORKER_START_SECONDS if start_seconds is None else start_seconds) * slowdown
    total = math.fsum(costs) * slowdown
    counts = range(2, min(workers, len(costs)) + 1)
    if time_left is not None and total > time_left:
        useful = [n for n in counts if n * (time_left - start_seconds) > time_left]
        return max(useful, default=1)
    best, best_end = 1, total
    for count in counts:
        end = start_seconds + makespan(costs, count) * slowdown
        if end < best_end:
            best, best_end = count, end
    return best


class ProgressBar:
    """A tqdm bar on stderr (counts, rate, ETA), or nothing when progress is off
    or there is no plan (work inside a worker process); a context manager."""

    def __init__(self, plan: ExecutionPlan | None, total: int, done: int = 0, label: str | None = None):
        self._bar = None
        if plan is not None and plan.shows_progress and total:
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=done, desc=label or plan.label, file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)

    def update(self, **status) -> None:
        """One more done; `status` (name=value) is shown after the counts."""
        if self._bar is not None:
            if status:
                self._bar.set_postfix(status, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_SHARED: Any = None

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal a Linux process receives when its parent dies."""


def _die_with_parent(parent: int) -> None:
    """End this worker when process `parent` ends, however it ends (SIGKILL
    included): on Linux the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG);
    elsewhere, and as a fallback, a daemon thread polls the parent's pid. A
    parent already gone by now is noticed at once."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass   # the polling thread below still works

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


_STARTED: Any = None


def _init_worker(parent: int, started, fn: Callable, shared: Any) -> None:
    """A worker's start: tie its life to the parent's (a parent that died
    while `fn` and `shared` were handed over, by multiprocessing's own
    transfer of the initializer's arguments, is noticed here and the worker
    exits), keep `shared` for every task. `fn` comes before `shared` in the
    arguments only so that its modules import before the shared data's. `started` (shared memory, a flag
    per task) tells the parent which tasks a worker has begun. Skip
    interpreter teardown at exit: a worker holds nothing to clean up, and
    tearing down numpy, scipy and Pyomo takes part of a second the parent
    would wait for."""
    global _SHARED, _STARTED
    _die_with_parent(parent)
    if "fork" in multiprocessing.get_all_start_methods():
        # A worker starts no process; under "fork" the multiprocessing locks
        # libraries make (Pyomo makes one) are unnamed, so a worker killed at
        # the deadline leaves nothing for the resource tracker to clean up.
        multiprocessing.set_start_method("fork", force=True)
    _STARTED = started
    _SHARED = shared
    import atexit
    atexit.register(os._exit, 0)


def _call_with_shared(fn: Callable, index: int, task: Any, deadline: Deadline | None) -> Any:
    if passed(deadline):   # queued before the deadline, reached after it
        return NOT_STARTED
    _STARTED[index] = 1
    return fn(_SHARED, task)


def run_tasks(fn: Callable[[Any, Any], Any], tasks: Sequence[Any], shared: Any, plan: ExecutionPlan, *,
              on_result: Callable[[int, Any], None] | None = None,
              done: dict[int, Any] | None = None, order: Sequence[int] | None = None,
              deadline: Deadline | None = None, grace: float = 0.0) -> list[Any]:
    """``[fn(shared, task) for task in tasks]`` on the plan's backend; `done`
    maps indices already computed to their results (not run again); `order`
    is the start order (largest tasks first balances a pool), results are
    always returned in task order; tasks not started by `deadline` give
    NOT_STARTED. `fn` should itself stop soon after the deadline; a process
    pool waits past it only for tasks its workers have begun, at most `grace`
    seconds (those still unfinished give ABANDONED), then kills its workers
    (a worker still starting up under a short limit is not waited for)."""
    results: dict[int, Any] = dict(done or {})
    pending = [i for i in (order if order is not None else range(len(tasks))) if i not in results]
    with ProgressBar(plan, len(tasks), len(results)) as bar:

        def finished(index: int, value: Any) -> None:
            results[index] = value
            if isinstance(value, NoResult):
                return
            if on_result is not None:
                on_result(index, value)
            bar.update()

        if plan.scheduler is not None:
            _run_dask(fn, tasks, shared, plan.scheduler, pending, finished, deadline)
        elif plan.workers > 1 and len(pending) > 1:
            _run_pool(fn, tasks, shared, min(plan.workers, len(pending)), pending, finished, deadline, grace)
        else:
            for i in pending:
                finished(i, NOT_STARTED if passed(deadline) else fn(shared, tasks[i]))
    return [results[i] for i in range(len(tasks))]


def _run_pool(fn, tasks, shared, workers: int, pending: list[int], finished, deadline: Deadline | None,
              grace: float) -> None:
    """At most `workers` tasks in flight, the next submitted as one ends.
    Past the deadline nothing more is submitted; the parent then waits only
    for tasks a worker has begun, at most `grace` seconds, and kills the
    workers: tasks begun give ABANDONED, the others NOT_STARTED (a worker
    still starting up is not waited for)."""
    context = get_context("spawn")
    started = context.RawArray("b", len(tasks))   # set by a worker as it begins a task
    queue = iter(pending)
    running: dict = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(os.getpid(), started, fn, shared)) as pool:

        def start_next() -> None:
            """Submit the next task, unless the deadline has passed (then none is)."""
            for i in queue:
                if passed(deadline):
                    finished(i, NOT_STARTED)
                    continue
                running[pool.submit(_call_with_shared, fn, i, tasks[i], deadline)] = i
                return

        def give_up() -> None:
            for i in sorted(running.values()):
                finished(i, ABANDONED if started[i] else NOT_STARTED)
            running.clear()
            _kill_workers(pool)
            for i in queue:
                finished(i, NOT_STARTED)

        try:
            for _ in range(workers):
                start_next()
            while running:
                timeout = None
                if deadline is not None:
                    left = deadline.remaining()
                    if left <= 0 and not any(started[i] for i in running.values()):
                        give_up()   # nothing begun is left to wait for
                        break
                    timeout = left if left > 0 else max(0.0, left + grace)
                ready, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                if not ready and deadline is not None and deadline.remaining() + grace <= 0:
                    give_up()
                    break
                for future in sorted(ready, key=running.get):
                    finished(running.pop(future), future.result())
                    start_next()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers now (their tasks' results are no longer wanted);
    the pool's own shutdown then finds them gone. ProcessPoolExecutor has
    no public way to do this before Python 3.14 (terminate_workers)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()


def _run_dask(fn, tasks, shared, address: str, pending: list[int], finished, deadline: Deadline | None) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("--scheduler needs Dask distributed: pip install 'pooling[distributed]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
    try:
        [shared_future] = client.scatter([shared], broadcast=True)
        futures = {client.submit(_call_on_dask, fn, shared_future, tasks[i], deadline, pure=False): i
                   for i in pending}
        for future in as_completed(list(futures)):
            finished(futures[future], future.result())
    finally:
        client.close()


def _call_on_dask(fn: Callable, shared: Any, task: Any, deadline: Deadline | None) -> Any:
    return NOT_STARTED if passed(deadline) else fn(shared, task)
