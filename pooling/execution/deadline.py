"""One deadline per run: the moment a time limit strikes, fixed once when the
run starts and read by every stage (workers starting, pricing, column
generation, bounds, MILPs), so that the limit covers the whole run rather
than each stage afresh.

The deadline is kept on the monotonic clock (a change of the wall clock
cannot stretch or cut it), which every process of one machine shares; a
process on another machine (a Dask worker) reads the same instant on its
wall clock instead.
"""

from __future__ import annotations

import functools
import socket
import time
from dataclasses import dataclass


@functools.cache
def _machine() -> str:
    """This machine and boot: processes that share it share the monotonic clock."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
    except OSError:   # not Linux: the host name alone (the clock is shared until a reboot)
        boot = ""
    return f"{socket.gethostname()}/{boot}"


@dataclass(frozen=True)
class Deadline:
    """The instant a run's time limit strikes (pickled to worker processes)."""

    monotonic: float
    """time.monotonic() at the deadline, on `machine`."""
    wall: float
    """The same instant by time.time(), for a process on another machine."""
    machine: str

    @classmethod
    def after(cls, seconds: float, started: float | None = None) -> Deadline:
        """`seconds` after `started` (a time.monotonic() reading: when the run
        began, so that work done before this call counts), or after now."""
        now = time.monotonic()
        at = (now if started is None else started) + seconds
        return cls(monotonic=at, wall=time.time() + (at - now), machine=_machine())

    def remaining(self) -> float:
        """Seconds left (negative once the deadline has passed)."""
        if self.machine == _machine():
            return self.monotonic - time.monotonic()
        return self.wall - time.time()

    def passed(self) -> bool:
        return self.remaining() <= 0.0


def passed(deadline: Deadline | None) -> bool:
    """Has `deadline` passed (never, without one)?"""
    return deadline is not None and deadline.passed()
