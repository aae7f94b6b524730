"""Solver options, declared once and shared by the Python API and the CLI.

Each `OptionSpec` names an option, its type, default and help; `SolveOptions`
holds the values. The CLI builds its flags from `SOLVE_OPTIONS`, so the two
front ends cannot drift apart.
"""

from __future__ import annotations

import argparse
import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from pooling.errors import InputError

CANDIDATE_MODES = ("auto", "enumerate", "generate")
"""How solve finds columns: enumerate groups with at most enumeration_limit
subsets and generate columns for larger ones (auto), enumerate every group
(refusing more than candidates.MAX_CANDIDATES pools), or generate columns for
every group of two or more counties."""


MAX_TIME_LIMIT = 1e7
"""About 116 days: any finite limit a run could use; inf is refused (omit the option instead)."""

MAX_THREADS = 256
"""HiGHS aborts the whole process for absurd thread counts (100,000 seen); more threads
than cores only slows it down, and 256 exceeds any machine this runs on."""

MAX_RANDOM_SEED = 2**31 - 1
"""HiGHS's random_seed is a 32-bit signed integer."""

MAX_ENUMERATION_LIMIT = 10**7
"""Far above the 50,000 candidate pools enumeration accepts (candidates.MAX_CANDIDATES)."""


def _check_number(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                  high_open: bool = False, unit: str = "") -> None:
    """A real number (not a bool, not a string), finite and inside [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite{unit}, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise InputError(f"{name} must be in {left}{low:g}, {high:g}{right}{unit}, got {value!r}")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer argument (not a bool, not a float such as 2.5; numpy integers
    count) inside [low, high], returned as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer in [{low:,}, {high:,}], got {value!r} "
                         f"({type(value).__name__})")
    if not low <= value <= high:
        raise InputError(f"{name} must be in [{low:,}, {high:,}], got {value:,}")
    return int(value)


@dataclass(frozen=True)
class SolveOptions:
    """Options of one MILP solve (recorded in every result)."""

    time_limit: float | None = None
    mip_rel_gap: float = 1e-9
    mip_abs_gap: float = 1e-10
    threads: int = 1
    random_seed: int = 0
    candidates: str = "auto"
    enumeration_limit: int = 1024
    decompose: bool = True

    def __post_init__(self):
        if self.time_limit is not None:
            _check_number("time_limit", self.time_limit, 0.0, MAX_TIME_LIMIT, low_open=True,
                          unit=" (seconds; omit it for no limit)")
        _check_number("mip_rel_gap", self.mip_rel_gap, 0.0, 1.0, high_open=True)
        _check_number("mip_abs_gap", self.mip_abs_gap, 0.0, 1.0)
        check_int("threads", self.threads, 1, MAX_THREADS)
        check_int("random_seed", self.random_seed, 0, MAX_RANDOM_SEED)
        if not isinstance(self.candidates, str) or self.candidates not in CANDIDATE_MODES:
            raise InputError(f"candidates must be one of {', '.join(CANDIDATE_MODES)}, got {self.candidates!r}")
        check_int("enumeration_limit", self.enumeration_limit, 1, MAX_ENUMERATION_LIMIT)
        if not isinstance(self.decompose, bool):
            raise InputError(f"decompose must be True or False, got {self.decompose!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


MAX_FRONTIER_POINTS = 1001
"""Weights on migrants the frontier traces: one MILP each over columns priced
once; beyond ~1,000 the points are closer than the solver's tolerance."""


@dataclass(frozen=True)
class FrontierOptions:
    """Options of `pooling frontier` (API: pooling.frontier): `points` weights
    on migrants evenly spaced over [0, 1], both ends included."""

    points: int = 11

    def __post_init__(self):
        check_int("points", self.points, 2, MAX_FRONTIER_POINTS)

    def weights(self) -> list[float]:
        """The weights, exactly 0 and 1 at the ends."""
        last = self.points - 1
        return [k / last for k in range(self.points)]


FRONTIER_OPTIONS = {"points": "weights on migrants traced, evenly spaced over [0, 1] with both ends "
                              f"(default {FrontierOptions().points}, at least 2, at most {MAX_FRONTIER_POINTS})"}
"""Help of each FrontierOptions field, shared by the CLI's flags."""


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: type
    help: str
    choices: tuple[str, ...] | None = None


SOLVE_OPTIONS = (
    OptionSpec("time_limit", float,
               "stop the whole run after S seconds, counted from its start (starting workers, pricing, "
               "column generation, bounds and MILPs share one deadline), and return the best plan found "
               "(status time_limit); a MILP reached near the limit may run up to 1 s past it"),
    OptionSpec("mip_rel_gap", float,
               "relative optimality gap at which HiGHS stops (default 1e-9: proven optimal)"),
    OptionSpec("mip_abs_gap", float, "absolute optimality gap on the mean rate (default 1e-10)"),
    OptionSpec("threads", int, "HiGHS threads (default 1, which keeps runs bit-reproducible)"),
    OptionSpec("random_seed", int, "HiGHS random seed (default 0)"),
    OptionSpec("candidates", str,
               "auto (default): enumerate every pool of a group with at most --enumeration-limit "
               "subsets, generate columns (heuristic pricing, bound stated) for larger groups; "
               "enumerate: every group in full; generate: columns for every group", CANDIDATE_MODES),
    OptionSpec("enumeration_limit", int,
               "largest number of subsets of one group that auto enumerates "
               "(default 1024: up to 10 counties when any subset may pool)"),
    OptionSpec("decompose", bool,
               "solve independent blocks (groups no pool or rule crosses) separately and merge them "
               "(default); --no-decompose solves one MILP over the whole instance (same answer)"),
)


def add_solve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one --flag per solver option to an argparse parser."""
    defaults = SolveOptions()
    for opt in SOLVE_OPTIONS:
        flag = "--" + opt.name.replace("_", "-")
        if opt.type is bool:
            parser.add_argument(flag, dest=opt.name, action=argparse.BooleanOptionalAction,
                                default=getattr(defaults, opt.name), help=opt.help)
            continue
        parser.add_argument(flag, dest=opt.name, type=opt.type, default=getattr(defaults, opt.name),
                            choices=opt.choices,
                            metavar=None if opt.choices else opt.type.__name__.upper(), help=opt.help)


def options_from_namespace(namespace: argparse.Namespace) -> SolveOptions:
    """The options of parsed command-line flags; errors name the flag as typed."""
    try:
        return SolveOptions(**{opt.name: getattr(namespace, opt.name) for opt in SOLVE_OPTIONS})
    except InputError as exc:
        message = str(exc)
        for opt in SOLVE_OPTIONS:
            if message.startswith(f"{opt.name} "):
                message = "--" + opt.name.replace("_", "-") + message[len(opt.name):]
        raise InputError(message) from None
