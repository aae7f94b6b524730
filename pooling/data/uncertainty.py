"""The spec's ``[uncertainty]`` table: parameter scenarios the plan must survive (issue 23).

```toml
[uncertainty]
method = "robust"          # or "predictive"
base_weight = 0.5          # predictive: the instance as given; weights sum to 1
[[uncertainty.scenarios]]
name = "shocks x1.5"
weight = 0.5
scale = { "parameters.frequency_shock_cv" = 1.5 }
set = { "counties.410101.admission_rate" = 0.12 }
```

"robust": a pool is solvent in every scenario (the base instance included);
"predictive": under the weighted mixture of the scenarios' claim laws. Paths
and operations are data.scenarios'. Only the spec's shape is checked here; each
scenario is validated against the instance when it is applied
(`scenario_instances`), where a field pushed outside its range is an input
error naming the scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pooling.data.fields import FieldReader, describe, exact
from pooling.data.instance import Instance
from pooling.data.scenarios import OPERATIONS, ParameterChange, Scenario, scenario_instance

METHODS = ("robust", "predictive")
BASE_SCENARIO = "base"
"""Name of the instance as given, always the first scenario (reserved)."""
MAX_UNCERTAINTY_SCENARIOS = 64
"""Each scenario prices every candidate pool once more: beyond 64 the work is
a sweep's, not one solve's."""
WEIGHT_SUM_TOLERANCE = 1e-9
"""Predictive weights must sum to 1 within this (decimals such as 0.1 + 0.2
miss by ~1e-16; a larger miss is a mistake, not rounding)."""


@dataclass(frozen=True)
class Uncertainty:
    """`scenarios` excludes the base, which is always priced (weight
    `base_weight` under "predictive")."""

    method: str
    scenarios: tuple[Scenario, ...]
    base_weight: float | None = None

    @property
    def all_scenarios(self) -> tuple[Scenario, ...]:
        """The base (no change) first, then the spec's scenarios, in order."""
        return (Scenario(BASE_SCENARIO, (), self.base_weight),) + self.scenarios

    def to_dict(self) -> dict[str, Any]:
        """The table as a spec holds it (reloads to an equal Uncertainty)."""
        data: dict[str, Any] = {"method": self.method}
        if self.base_weight is not None:
            data["base_weight"] = self.base_weight
        data["scenarios"] = []
        for scenario in self.scenarios:
            item: dict[str, Any] = {"name": scenario.name}
            if scenario.weight is not None:
                item["weight"] = scenario.weight
            for operation in OPERATIONS:
                changes = {c.path: c.value for c in scenario.changes if c.operation == operation}
                if changes:
                    item[operation] = changes
            data["scenarios"].append(item)
        return data


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """TOML writes `{ parameters.frequency_shock_cv = 2 }` as nested tables and
    `{ "parameters.frequency_shock_cv" = 2 }` as one dotted key: both are paths."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key in value:
            out.extend(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, value)]


def _read_changes(reader: FieldReader) -> tuple[ParameterChange, ...]:
    changes = []
    for operation in OPERATIONS:
        table = reader.raw(operation, {})
        if not isinstance(table, dict):
            raise reader.fail(operation, f"must be a table of path = number, got {describe(table)}")
        for path, value in _flatten(table):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise reader.fail(f"{operation}.{path}", f"must be a finite number, got {describe(value)}")
            try:
                changes.append(ParameterChange(path, operation, float(value)))
            except ValueError as exc:
                raise reader.fail(f"{operation}.{path}", str(exc)) from None
    return tuple(changes)


def read_uncertainty(reader: FieldReader) -> Uncertainty | None:
    """The ``[uncertainty]`` table, or None when the spec has none."""
    if not reader.data:
        reader.finish()
        return None
    method = reader.string("method", choices=METHODS)
    base_weight = reader.number("base_weight", low=0.0, high=1.0, default=None)
    raw = reader.raw("scenarios")
    if not isinstance(raw, list) or not raw:
        raise reader.fail("scenarios", f"must be a non-empty list of scenario tables, got {describe(raw)}")
    if len(raw) > MAX_UNCERTAINTY_SCENARIOS:
        raise reader.fail("scenarios", f"at most {MAX_UNCERTAINTY_SCENARIOS} scenarios (each prices every "
                                       f"pool once more; use a sweep), got {len(raw)}")
    reader.finish()
    scenarios, names = [], {BASE_SCENARIO}
    for index, item in enumerate(raw):
        table = FieldReader(item, reader.where, f"{reader.path}scenarios[{index + 1}].")
        name = table.string("name")
        if name in names:
            raise table.fail("name", f'"{name}" is used twice or is the reserved "{BASE_SCENARIO}"')
        names.add(name)
        weight = table.number("weight", low=0.0, high=1.0, default=None)
        changes = _read_changes(table)
        table.finish()
        if not changes:
            raise table.fail("scale", "a scenario needs at least one change (scale or set)")
        scenarios.append(Scenario(name, changes, weight, source=reader.where))
    if method == "predictive":
        missing = [s.name for s in scenarios if s.weight is None]
        if base_weight is None or missing:
            raise reader.fail("base_weight" if base_weight is None else "scenarios",
                              "predictive needs base_weight and a weight for every scenario"
                              + (f" (none for \"{missing[0]}\")" if missing else ""))
        total = math.fsum([base_weight] + [s.weight for s in scenarios])
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise reader.fail("scenarios", f"base_weight and the scenarios' weights must sum to 1, got "
                                           f"{exact(total)}")
    return Uncertainty(method=method, scenarios=tuple(scenarios), base_weight=base_weight)


def scenario_instances(instance: Instance, uncertainty: Uncertainty | None,
                       where: str = "") -> tuple[tuple[Scenario, Instance], ...]:
    """(scenario, instance under it) for every scenario, the base first; each
    validated (an input error names the scenario, county and field). Without
    uncertainty, the base alone."""
    if uncertainty is None:
        return ((Scenario(BASE_SCENARIO, ()), instance),)
    return tuple((s, scenario_instance(instance, s, where)) for s in uncertainty.all_scenarios)
