"""Parameter scenarios: an instance with some of its numeric fields scaled or
replaced, addressed by path (issue 23).

A path names fields of the instance file (docs/formats.md), segments joined by
dots: ``parameters.frequency_shock_cv``, ``parameters.regional_shocks.county.cv``,
``counties.*.severity.cv`` (every county), ``counties.410101.admission_rate``
(one county, by id), ``places.*.severity.cv``, ``counties.*.resident_care.*``.
A list of objects (counties, places, contract_options) is indexed by their
``id``; a table by its keys; ``*`` is every item or key. An id that contains a
dot is reached only through ``*``.

``scale`` multiplies a field and ``set`` replaces it. Integer fields
(INTEGER_FIELDS) are rounded to the nearest integer; every other target must be
a number in the file (a bool or text is an error). The changed data is read by
the instance reader, so a scenario that leaves a field outside its range is an
input error naming the scenario, the county and the field.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pooling.data.fields import describe, exact
from pooling.data.instance import Instance, instance_from_dict
from pooling.data.instance_dict import instance_to_dict
from pooling.errors import InputError

OPERATIONS = ("scale", "set")
WILDCARD = "*"
INTEGER_FIELDS = frozenset({"enrollees", "year"})
"""Fields the instance reader requires to be integers: a scaled value is
rounded to the nearest one (1.5 x 3 enrollees is 4 or 5, never 4.5)."""
MAX_FACTOR = 1e6
"""|scale| limit: a factor beyond a million is a typo, not an assumption, and
keeps the product finite for every field the reader accepts."""
ID_LISTS = frozenset({"counties", "places", "contract_options"})
"""Lists of objects addressed by their `id` field."""


@dataclass(frozen=True)
class ParameterChange:
    """One change of a scenario: `operation` ("scale" or "set") with `value` at `path`."""

    path: str
    operation: str
    value: float

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, got {self.operation!r}")
        if not isinstance(self.path, str) or not self.path or any(not s for s in self.path.split(".")):
            raise ValueError(f"path must be dot-separated field names, got {self.path!r}")
        if not math.isfinite(self.value) or (self.operation == "scale" and abs(self.value) > MAX_FACTOR):
            raise ValueError(f"{self.operation} value must be finite (a scale at most {MAX_FACTOR:g} in size), "
                             f"got {self.value!r}")

    @property
    def label(self) -> str:
        return f"{self.path} x{self.value:g}" if self.operation == "scale" else f"{self.path} = {self.value:g}"


@dataclass(frozen=True)
class Scenario:
    """A named set of changes to the instance; `weight` is its probability in a
    predictive mixture (None where weights do not apply)."""

    name: str
    changes: tuple[ParameterChange, ...]
    weight: float | None = None
    source: str = field(default="", compare=False)
    """The file that defines it (a spec's [uncertainty]), named in errors."""


def _matches(node: Any, segment: str, where: str) -> Iterator[tuple[Any, Any, str]]:
    """(container, key, shown segment) for each child of `node` that `segment` names."""
    if isinstance(node, dict):
        keys = sorted(node) if segment == WILDCARD else [segment] if segment in node else []
        for key in keys:
            yield node, key, key
    elif isinstance(node, list) and where in ID_LISTS:
        for index, item in enumerate(node):
            item_id = item.get("id") if isinstance(item, dict) else None
            if segment == WILDCARD or item_id == segment:
                yield node, index, str(item_id)


def resolve(data: dict[str, Any], path: str) -> list[tuple[Any, Any, str]]:
    """Every (container, key, concrete path) that `path` names in file data
    `data`. Empty when it names nothing."""
    found: list[tuple[Any, Any, str]] = []

    def walk(node: Any, segments: list[str], shown: list[str], under: str) -> None:
        # `under`: the key `node` sits at (id lists are known by it).
        head, rest = segments[0], segments[1:]
        for container, key, name in _matches(node, head, under):
            if rest:
                walk(container[key], rest, shown + [name], key if isinstance(key, str) else "")
            else:
                found.append((container, key, ".".join(shown + [name])))

    walk(data, path.split("."), [], "")
    return found


def _changed(old: Any, change: ParameterChange, field: str, where: str) -> float | int:
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        raise InputError(f"{where}: {change.operation} {change.path}: {field} is {describe(old)}, not a number")
    value = old * change.value if change.operation == "scale" else change.value
    if field.rsplit(".", 1)[-1] in INTEGER_FIELDS:
        if not math.isfinite(value):
            raise InputError(f"{where}: {change.label}: {field} becomes {exact(value)}")
        return int(round(value))
    return float(value)


def apply_changes(data: dict[str, Any], changes: tuple[ParameterChange, ...], where: str) -> dict[str, Any]:
    """A copy of instance file data `data` with `changes` applied in order.
    `where` names the scenario in errors (a path that names no field)."""
    changed = copy.deepcopy(data)
    for change in changes:
        targets = resolve(changed, change.path)
        if not targets:
            raise InputError(f"{where}: {change.path} names no numeric field of the instance (paths: "
                             f"parameters.FIELD..., counties.ID|*.FIELD..., places.ID|*.FIELD...; "
                             f"docs/formats.md)")
        for container, key, named_field in targets:
            container[key] = _changed(container[key], change, named_field, where)
    return changed


def scenario_instance(instance: Instance, scenario: Scenario, where: str = "") -> Instance:
    """The instance under `scenario`, validated by the instance reader; its
    source names the scenario, so range errors say which scenario broke which
    county and field."""
    if not scenario.changes:
        return instance
    named = f'scenario "{scenario.name}"' + (f" of {scenario.source}" if scenario.source else "")
    label = f"{where or instance.source}: {named}"
    data = apply_changes(instance_to_dict(instance, all_fields=True), scenario.changes, label)
    changed = instance_from_dict(data, source=f"{instance.source} under {named}")
    # What the file does not hold stays the instance's: the spec's benefit schedule.
    return dataclasses.replace(changed, parameters=dataclasses.replace(
        changed.parameters, benefits=instance.parameters.benefits))
