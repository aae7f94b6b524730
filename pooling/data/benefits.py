"""The spec's ``[benefits]`` table: what the fund pays per admission (issue 25 item 3).

```toml
[benefits]
deductible = 400          # CNY per admission; or by level: { county = 400, prefecture = 1200, province = 2000 }
cap = 60000               # CNY per admission; absent or "none": no cap
level_factors = { county = 1.0, prefecture = 0.85, province = 0.8 }
```

For an admission whose eligible cost is E (the list cost X in network, phi X
out of network, the contract's price factor x X under a contract), at a place
of level L (data.geography.PLACE_LEVELS: a county's hospitals "county", a
prefecture city's "prefecture", a province's "province"; care outside the
instance, `OUTSIDE`, counts as "province"), the fund pays

    r x level_factors[L] x min(max(E - deductible[L], 0), cap)

(r the pool's rate; priced exactly by pooling.risk.benefit_severity). Every
field is optional: deductible 0, no cap and factors 1 are today's meaning, and
a spec without the table means exactly what it meant before (no version
change; `Spec.to_dict` has the table only when the spec gives it, so the
digests of existing results stay).

A list for a field is a **menu** the optimiser chooses from per pool:
`deductible = [0, 400, 1200]` (each entry a number or a table by level),
`cap = [30000, 60000, "none"]`, `level_factors = { prefecture = [0.8, 0.9] }`
(a level's entry a list, or the whole field a list of tables); an entry
given twice is an error, not one schedule. The menu is
the cross product of every field's entries (deductibles, then caps, then
level factors, each in the order given), at most MAX_MENU_SCHEDULES
schedules (`BenefitMenu`); a menu of one schedule is that fixed schedule. A
menu is priced only where a command chooses among its schedules (`pooling
solve`, and `evaluate` of a plan that names each pool's schedule):
`with_benefits` refuses it anywhere else, so no menu is ever priced as some
other schedule.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pooling.data.fields import FieldReader, describe, exact
from pooling.data.geography import PLACE_LEVELS
from pooling.errors import InputError

if TYPE_CHECKING:
    from pooling.data.instance import Instance

OUTSIDE_LEVEL = "province"
"""The level of care outside the instance (`OUTSIDE`: another province's
hospitals, unnamed): the highest, whose terms are the least generous in every
2012 schedule (CALIBRATION.md; assumed for care the schedule cannot place)."""
MAX_DEDUCTIBLE = 1e6
"""A deductible of CNY 1M per admission is beyond any schedule (2012's were
100-2,000): a larger figure is a unit error. Near 1e9 with lognormal costs
only ~1e-50 of admissions reach it and the engine's mean check fails on
streams that rare (measured), so the range stops where it prices."""
MIN_CAP = 100.0
"""A cap below CNY 100 per admission is a unit error (thousands or yuan).
With a cap far below the excess over a large deductible (1 CNY over 1e5)
nearly every claim sits on the cap's atom and its second moment is a
difference of stop-loss terms ~1e15 times larger: measured to fail the
engine's checks, so the range stops here."""
MAX_CAP = 1e12
"""Caps at or above this bind on no admission in range: give none instead."""
MAX_MENU_SCHEDULES = 16
"""A benefit menu's schedules (the cross product of its fields' entries): each
one prices every candidate pool and contract variant again, so the pricing
work and the MILP's columns grow by this factor; 16 keeps a prefecture's
enumeration (1,024 subsets) within ~16,000 priced pools."""
NO_CAP = "none"
"""The cap "no cap", alone or as a menu's entry (TOML has no null)."""


@dataclass(frozen=True)
class LevelTerms:
    """The schedule at one level of care: deductible and cap (CNY per
    admission, on the eligible cost) and the level factor."""

    deductible: float = 0.0
    cap: float | None = None
    level_factor: float = 1.0

    @property
    def trivial(self) -> bool:
        """Pays exactly the eligible cost (today's meaning)."""
        return self.deductible == 0.0 and self.cap is None and self.level_factor == 1.0


@dataclass(frozen=True)
class BenefitSchedule:
    """A fixed benefit schedule: deductibles and level factors by level (in
    PLACE_LEVELS order) and one cap."""

    deductibles: tuple[float, ...] = (0.0, 0.0, 0.0)
    cap: float | None = None
    level_factors: tuple[float, ...] = (1.0, 1.0, 1.0)

    def terms(self, level: str) -> LevelTerms:
        i = PLACE_LEVELS.index(level)
        return LevelTerms(self.deductibles[i], self.cap, self.level_factors[i])

    @property
    def trivial(self) -> bool:
        """Pays the eligible cost at every level: prices exactly as no schedule."""
        return all(self.terms(level).trivial for level in PLACE_LEVELS)

    def to_dict(self) -> dict[str, Any]:
        """The table as a spec holds it (reloads to an equal schedule)."""
        first = self.deductibles[0]
        data: dict[str, Any] = {"deductible": first if all(d == first for d in self.deductibles)
                                else dict(zip(PLACE_LEVELS, self.deductibles, strict=True))}
        if self.cap is not None:
            data["cap"] = self.cap
        data["level_factors"] = dict(zip(PLACE_LEVELS, self.level_factors, strict=True))
        return data


@dataclass(frozen=True)
class BenefitMenu:
    """Benefit schedules the optimiser chooses from per pool: the cross
    product of the `[benefits]` fields' entries (module docstring), in order."""

    schedules: tuple[BenefitSchedule, ...]
    table: dict[str, Any] = field(compare=False)
    """The table as the resolved spec holds it: every field's entries as lists."""
    source: str = field(default="<memory>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.table)

    def refusal(self, where: str) -> InputError:
        return InputError(f"{self.source}: benefits is a menu of {len(self.schedules)} schedules, which {where} "
                          f"does not take (only `pooling solve` chooses among them, and `pooling evaluate` prices "
                          f"a plan naming each pool's schedule); give one value per [benefits] field to use it here")


def _entries(reader: FieldReader, key: str, value: Any) -> list[Any]:
    """The entries of a field: its list (a menu), or the one value."""
    if not isinstance(value, list):
        return [value]
    if not value:
        raise reader.fail(key, "must not be an empty list (a menu lists at least one entry)")
    return list(value)


def _by_level(reader: FieldReader, key: str, default: float, read) -> list[tuple[float, ...]]:
    """The options of a field given by level: each a number for every level,
    or a table {county, prefecture, province} (levels left out take
    `default`; a level's value may be a list: every combination is an
    option); the field itself may be a list of such entries."""
    value = reader.raw(key, default)
    options: dict[tuple[float, ...], str] = {}   # each option -> the entry that gave it
    for k, entry in enumerate(_entries(reader, key, value)):
        item_key = f"{key}[{k}]" if isinstance(value, list) else key
        holder = FieldReader({item_key: entry}, reader.where, reader.path)
        if isinstance(entry, dict):
            table = holder.table(item_key)
            per_level = []
            for level in PLACE_LEVELS:
                given = table.raw(level, default)
                values: dict[float, str] = {}
                for j, item in enumerate(_entries(table, level, given)):
                    name = f"{level}[{j}]" if isinstance(given, list) else level
                    _add_once(values, read(FieldReader({name: item}, table.where, table.path), name, default),
                              f"{table.path}{name}", exact, reader.where)
                per_level.append(list(values))
            table.finish()
            for combination in itertools.product(*per_level):
                _add_once(options, tuple(combination), f"{reader.path}{item_key}", _levels, reader.where)
        else:
            _add_once(options, (read(holder, item_key, default),) * len(PLACE_LEVELS), f"{reader.path}{item_key}",
                      _levels, reader.where)
    return list(options)


def _add_once(seen: dict, option: Any, field_name: str, show, where: str) -> None:
    """Record a menu entry; a repeated one is refused (it would collapse
    silently into one schedule: a user who typed it twice made a mistake)."""
    if option in seen:
        raise InputError(f"{where}: {field_name} repeats {show(option)}, already given by {seen[option]}; "
                         f"list each entry of a menu once")
    seen[option] = field_name


def _levels(option: tuple[float, ...]) -> str:
    """A per-level option as the spec writes it: one number, or a table by level."""
    if all(v == option[0] for v in option):
        return exact(option[0])
    return "{ " + ", ".join(f"{level} = {exact(v)}" for level, v in zip(PLACE_LEVELS, option, strict=True)) + " }"


def _deductible(reader: FieldReader, key: str, default: float) -> float:
    return reader.number(key, low=0.0, high=MAX_DEDUCTIBLE, default=default)


def _level_factor(reader: FieldReader, key: str, default: float) -> float:
    return reader.share(key, high=1.0, default=default)


def _caps(reader: FieldReader) -> list[float | None]:
    value = reader.raw("cap", None)
    if value is None:
        return [None]
    caps: dict[float | None, str] = {}
    for k, entry in enumerate(_entries(reader, "cap", value)):
        key = f"cap[{k}]" if isinstance(value, list) else "cap"
        cap = None if entry == NO_CAP else \
            FieldReader({key: entry}, reader.where, reader.path).number(key, low=MIN_CAP, high=MAX_CAP, high_open=True)
        _add_once(caps, cap, f"{reader.path}{key}", lambda c: f'"{NO_CAP}"' if c is None else exact(c), reader.where)
    return list(caps)


def read_benefits(reader: FieldReader) -> BenefitSchedule | BenefitMenu | None:
    """The ``[benefits]`` table: a fixed schedule, a menu (a list for some
    field, more than one schedule in all), or None when the spec has none."""
    if not reader.data:
        reader.finish()
        return None
    deductibles = _by_level(reader, "deductible", 0.0, _deductible)
    caps = _caps(reader)
    factors = [(1.0,) * len(PLACE_LEVELS)]
    if reader.has("level_factors"):
        value = reader.data["level_factors"]
        if not isinstance(value, dict) and not (isinstance(value, list) and value
                                                and all(isinstance(v, dict) for v in value)):
            raise reader.fail("level_factors", f"must be a table {{ county = f, prefecture = f, province = f }} "
                                               f"of factors in [0, 1] (or a list of such tables: a menu), got "
                                               f"{describe(value)}")
        factors = _by_level(reader, "level_factors", 1.0, _level_factor)
    reader.finish()
    schedules = [BenefitSchedule(deductibles=d, cap=c, level_factors=f)
                 for d, c, f in itertools.product(deductibles, caps, factors)]
    if len(schedules) == 1:
        return schedules[0]
    if len(schedules) > MAX_MENU_SCHEDULES:
        raise InputError(f"{reader.where}: {reader.path.rstrip('.') or 'benefits'} is a menu of {len(schedules)} "
                         f"schedules ({len(deductibles)} deductibles x {len(caps)} caps x {len(factors)} level "
                         f"factor sets); at most {MAX_MENU_SCHEDULES} are weighed")
    table: dict[str, Any] = {"deductible": [_deductible_entry(d) for d in deductibles]}
    if caps != [None]:
        table["cap"] = [NO_CAP if c is None else c for c in caps]
    table["level_factors"] = [dict(zip(PLACE_LEVELS, f, strict=True)) for f in factors]
    return BenefitMenu(schedules=tuple(schedules), table=table, source=reader.where)


def _deductible_entry(deductibles: tuple[float, ...]) -> float | dict[str, float]:
    first = deductibles[0]
    return first if all(d == first for d in deductibles) else dict(zip(PLACE_LEVELS, deductibles, strict=True))


def schedule_from_dict(data: Any, where: str, path: str = "benefits.") -> BenefitSchedule:
    """One pool's schedule as result.json records it (`BenefitSchedule.to_dict`);
    errors name `where` (the file) and the field under `path`."""
    found = read_benefits(FieldReader(data, where, path, "a benefit schedule"))
    if not isinstance(found, BenefitSchedule):
        raise InputError(f"{where}: {path.rstrip('.')} must be one schedule (one value per field), got a menu")
    return found


def with_benefits(instance: Instance, schedule: BenefitSchedule | None) -> Instance:
    """The instance whose care is paid under `schedule` (economics.care reads
    it from `parameters.benefits`): unchanged when the schedule is None or
    trivial (so such a spec prices bit for bit as none), or already there.
    A menu is refused (module docstring): price each of its schedules."""
    if isinstance(schedule, BenefitMenu):
        raise schedule.refusal("this command")
    if schedule is not None and schedule.trivial:
        schedule = None
    if instance.parameters.benefits == schedule:
        return instance
    return dataclasses.replace(instance, parameters=dataclasses.replace(instance.parameters, benefits=schedule))
