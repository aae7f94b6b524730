"""Arguments of the Python API checked at the boundary: an instance or a spec
may be given as the validated object or as the path of its file; anything
else is an InputError that says what to pass instead."""

from __future__ import annotations

import os
from typing import Any

from pooling.data.benefits import BenefitMenu, with_benefits
from pooling.data.instance import Instance, load_instance
from pooling.data.settlement import under_settlement
from pooling.data.spec import Spec, load_spec
from pooling.errors import InputError


def _as(value: Any, kind: type, load, where: str, what: str, from_dict: str):
    if isinstance(value, kind):
        return value
    if isinstance(value, str | os.PathLike):
        return load(value)
    hint = f" (for a dict use pooling.{from_dict})" if isinstance(value, dict) else ""
    raise InputError(f"{where}: {what} must be a pooling.{kind.__name__} or the path of its file, "
                     f"got {type(value).__name__}{hint}")


def as_instance(value: Any, where: str) -> Instance:
    """An Instance, or one loaded from a path (what an actuary passes first)."""
    return _as(value, Instance, load_instance, where, "instance", "instance_from_dict")


def as_spec(value: Any, where: str) -> Spec:
    """A Spec, or one loaded from a path."""
    return _as(value, Spec, load_spec, where, "spec", "spec_from_dict")


MENU_COMMANDS = ("solve", "evaluate")
"""The commands that choose among (solve) or price (evaluate) a benefit
menu's schedules per pool; every other refuses a menu (data.benefits)."""


def as_problem(instance: Any, spec: Any, where: str) -> tuple[Instance, Spec]:
    """(instance, spec) checked as above, the instance under the spec's
    settlement rules (data.settlement) and benefit schedule (data.benefits):
    what solve, evaluate and simulate price."""
    instance, spec = as_instance(instance, where), as_spec(spec, where)
    if spec.adjustment_fund is not None:   # never unified pools priced for an adjustment-fund spec
        raise InputError(f'{spec.source}: pooling.mode "adjustment_fund" is not taken by {where}, which prices '
                         "unified pools; `pooling solve` plans adjustment funds "
                         "(pooling.optimise.adjustment.solve_adjustment_fund)")
    if isinstance(spec.benefits, BenefitMenu):
        if where not in MENU_COMMANDS:
            raise spec.benefits.refusal(f"`{where}`")
        return under_settlement(instance, spec.network.settlement), spec   # each schedule priced in its column
    return with_benefits(under_settlement(instance, spec.network.settlement), spec.benefits), spec
