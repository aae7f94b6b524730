"""Solver options, declared once and shared by the Python API and the CLI.

Each `OptionSpec` names an option, its type, default and help; `SolveOptions`
holds the values. The CLI builds its flags from `SOLVE_OPTIONS`, so the two
front ends cannot drift apart.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import Any

from pooling.errors import InputError

CANDIDATE_MODES = ("auto", "enumerate", "generate")
"""How solve finds columns: enumerate groups with at most enumeration_limit
subsets and generate columns for larger ones (auto), enumerate every group
(refusing more than candidates.MAX_CANDIDATES pools), or generate columns for
every group of two or more counties."""


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

    def __post_init__(self):
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError(f"time_limit must be > 0 seconds, got {self.time_limit}")
        if not 0 <= self.mip_rel_gap < 1:
            raise InputError(f"mip_rel_gap must be in [0, 1), got {self.mip_rel_gap}")
        if not self.mip_abs_gap >= 0:
            raise InputError(f"mip_abs_gap must be >= 0, got {self.mip_abs_gap}")
        if self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if self.random_seed < 0:
            raise InputError(f"random_seed must be >= 0, got {self.random_seed}")
        if self.candidates not in CANDIDATE_MODES:
            raise InputError(f"candidates must be one of {', '.join(CANDIDATE_MODES)}, got {self.candidates!r}")
        if self.enumeration_limit < 1:
            raise InputError(f"enumeration_limit must be >= 1, got {self.enumeration_limit}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class OptionSpec:
    name: str
    type: type
    help: str
    choices: tuple[str, ...] | None = None


SOLVE_OPTIONS = (
    OptionSpec("time_limit", float,
               "stop the MILP after S seconds and return the incumbent (status time_limit); "
               "pricing and column generation before it are not limited"),
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
)


def add_solve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one --flag per solver option to an argparse parser."""
    defaults = SolveOptions()
    for opt in SOLVE_OPTIONS:
        flag = "--" + opt.name.replace("_", "-")
        parser.add_argument(flag, dest=opt.name, type=opt.type, default=getattr(defaults, opt.name),
                            choices=opt.choices,
                            metavar=None if opt.choices else opt.type.__name__.upper(), help=opt.help)


def options_from_namespace(namespace: argparse.Namespace) -> SolveOptions:
    return SolveOptions(**{opt.name: getattr(namespace, opt.name) for opt in SOLVE_OPTIONS})
