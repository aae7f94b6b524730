"""Stress test under mis-specification (issue 23 item 3: `simulate --truth`).

The plan's rates were priced on the instance as given; `--truth SCENARIO`
draws the simulated years from another instance: the scenario applied to it.
SCENARIO is the name of a scenario of the spec's ``[uncertainty]`` table, or
inline changes, ``PATH=xS`` (scale) or ``PATH=V`` (set), several joined by
commas, with the paths of data.scenarios:
``parameters.frequency_shock_cv=x1.5,parameters.regional_shocks.*.cv=x1.5``.
A name is looked up first; text with ``=`` that is no name is read inline.

What the plan promised against what the truth delivers is the probability of
exhausting the committed budget in year 1: claims paid r x Y above B =
revenue + u x the members' reserves - fixed costs (year-1 ruin; u the reserve
share the simulation starts from). Both are exact (the FFT lattice, no
sampling): `promised` under the law the plan was priced on, `truth` under the
year-1 law the years are drawn from, and the simulated year-1 ruin
probability estimates the latter.
"""

from __future__ import annotations

import math

import numpy as np

from pooling.data.scenarios import ParameterChange, Scenario
from pooling.data.spec import Spec
from pooling.errors import InputError
from pooling.risk.claims import LatticeLaw

INLINE_HELP = ("a scenario name of the spec's [uncertainty], or inline changes PATH=xS (scale) or PATH=V (set), "
               "comma-separated, e.g. parameters.frequency_shock_cv=x1.5,parameters.regional_shocks.*.cv=x1.5")


def _inline(text: str) -> Scenario:
    changes = []
    for item in text.split(","):
        path, sep, value = item.strip().partition("=")
        path, value = path.strip(), value.strip()
        operation = "scale" if value[:1] in ("x", "X") else "set"
        number = value[1:] if operation == "scale" else value
        try:
            if not sep:
                raise ValueError("expected PATH=xS or PATH=V")
            try:
                amount = float(number)
            except ValueError:
                raise ValueError(f"{value!r} is neither xS (a scale) nor a number") from None
            changes.append(ParameterChange(path, operation, amount))
        except ValueError as exc:
            raise InputError(f"--truth {text!r}: {item.strip()!r}: {exc}; give {INLINE_HELP}") from None
    return Scenario(text, tuple(changes))


def truth_scenario(truth: str | Scenario, spec: Spec) -> tuple[Scenario, str]:
    """(the scenario, where it came from: "spec [uncertainty]" or "inline")."""
    if isinstance(truth, Scenario):
        return truth, "given"
    if not isinstance(truth, str) or not truth.strip():
        raise InputError(f"simulate: truth must be {INLINE_HELP}; got {truth!r}")
    named = {s.name: s for s in spec.uncertainty.scenarios} if spec.uncertainty is not None else {}
    if truth in named:
        return named[truth], "spec [uncertainty]"
    if "=" in truth:
        return _inline(truth), "inline"
    known = ", ".join(f'"{n}"' for n in named) or "none: the spec has no [uncertainty] table"
    raise InputError(f'--truth "{truth}": no such scenario in {spec.source} (scenarios: {known}); give '
                     f"{INLINE_HELP}")


def changes_to_dict(scenario: Scenario) -> list[dict]:
    return [{"path": c.path, "operation": c.operation, "value": c.value} for c in scenario.changes]


def exhaustion_probability(law: LatticeLaw, rate: float, budget: float) -> float:
    """P(rate x Y > budget) for Y on the lattice `law` (exact, up to the
    lattice's discretisation; mass capped at the lattice's end counts as above)."""
    if rate <= 0.0:
        return 0.0 if budget >= 0.0 else 1.0
    points = law.start + law.span * np.arange(len(law.pmf))
    mass = float(law.pmf[rate * points > budget].sum())
    return min(1.0, max(0.0, mass / float(law.pmf.sum()))) if math.isfinite(mass) else math.nan
