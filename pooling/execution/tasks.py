"""Run a function over independent tasks on the chosen backend.

`run_tasks(fn, tasks, shared, plan)` calls ``fn(shared, task)`` for every task
and returns the results in task order. `shared` (an instance and a spec, say)
is sent once per worker, not once per task. `on_result(index, result)` is
called in the parent as each task finishes (to write it to disk at once), and
`skip` holds indices already done (a resumed run).

Backends: `workers == 1` runs in this process; `workers > 1` a
`concurrent.futures` process pool (spawned workers: forking a process whose
HiGHS has started threads is unsafe); `scheduler` an address of a Dask
distributed scheduler (the optional extra ``pooling[distributed]``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from pooling.errors import InputError
from pooling.execution.scheduler_address import check_scheduler

MAX_WORKERS = 256
"""More worker processes than this is a typo on any machine this runs on."""


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


def _init_worker(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


def _call_with_shared(fn: Callable, task: Any) -> Any:
    return fn(_SHARED, task)


def run_tasks(fn: Callable[[Any, Any], Any], tasks: Sequence[Any], shared: Any, plan: ExecutionPlan, *,
              on_result: Callable[[int, Any], None] | None = None,
              done: dict[int, Any] | None = None, order: Sequence[int] | None = None) -> list[Any]:
    """``[fn(shared, task) for task in tasks]`` on the plan's backend; `done`
    maps indices already computed to their results (not run again); `order`
    is the submission order (largest tasks first balances a pool), results
    are always returned in task order."""
    results: dict[int, Any] = dict(done or {})
    pending = [i for i in (order if order is not None else range(len(tasks))) if i not in results]
    with ProgressBar(plan, len(tasks), len(results)) as bar:

        def finished(index: int, value: Any) -> None:
            results[index] = value
            if on_result is not None:
                on_result(index, value)
            bar.update()

        if plan.scheduler is not None:
            _run_dask(fn, tasks, shared, plan.scheduler, pending, finished)
        elif plan.workers > 1 and len(pending) > 1:
            _run_pool(fn, tasks, shared, min(plan.workers, len(pending)), pending, finished)
        else:
            for i in pending:
                finished(i, fn(shared, tasks[i]))
    return [results[i] for i in range(len(tasks))]


def _run_pool(fn, tasks, shared, workers: int, pending: list[int], finished) -> None:
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(shared,)) as pool:
        futures = {pool.submit(_call_with_shared, fn, tasks[i]): i for i in pending}
        try:
            remaining = set(futures)
            while remaining:
                ready, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in sorted(ready, key=futures.get):
                    finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run_dask(fn, tasks, shared, address: str, pending: list[int], finished) -> None:
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
        futures = {client.submit(fn, shared_future, tasks[i], pure=False): i for i in pending}
        for future in as_completed(list(futures)):
            finished(futures[future], future.result())
    finally:
        client.close()
