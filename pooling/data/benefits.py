"""The spec's ``[benefits]`` table: what the fund pays per admission (issue 25 item 3).

```toml
[benefits]
deductible = 400          # CNY per admission; or by level: { county = 400, prefecture = 1200, province = 2000 }
cap = 60000               # CNY per admission; absent: no cap
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

A list for a field (a menu the optimiser chooses from per pool) is refused
for now with a message saying so: menus are not implemented yet.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pooling.data.fields import FieldReader, describe
from pooling.data.geography import PLACE_LEVELS

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


def _refuse_menu(reader: FieldReader, key: str, value: Any) -> None:
    if isinstance(value, list):
        raise reader.fail(key, f"must be one value: menus (a list the optimiser chooses from per pool) are "
                               f"not implemented yet, got {describe(value)}")


def _by_level(reader: FieldReader, key: str, default: float, read) -> tuple[float, ...]:
    """A number for every level, or a table {county, prefecture, province}
    (levels left out take `default`)."""
    value = reader.raw(key, default)
    _refuse_menu(reader, key, value)
    if isinstance(value, dict):
        table = reader.table(key)
        values = []
        for level in PLACE_LEVELS:
            _refuse_menu(table, level, table.data.get(level))
            values.append(read(table, level, default))
        table.finish()
        return tuple(values)
    return (read(reader, key, default),) * len(PLACE_LEVELS)


def _deductible(reader: FieldReader, key: str, default: float) -> float:
    return reader.number(key, low=0.0, high=MAX_DEDUCTIBLE, default=default)


def _level_factor(reader: FieldReader, key: str, default: float) -> float:
    return reader.share(key, high=1.0, default=default)


def read_benefits(reader: FieldReader) -> BenefitSchedule | None:
    """The ``[benefits]`` table, or None when the spec has none."""
    if not reader.data:
        reader.finish()
        return None
    deductibles = _by_level(reader, "deductible", 0.0, _deductible)
    _refuse_menu(reader, "cap", reader.data.get("cap"))
    cap = reader.number("cap", low=MIN_CAP, high=MAX_CAP, high_open=True, default=None)
    factors = (1.0,) * len(PLACE_LEVELS)
    if reader.has("level_factors"):
        value = reader.data["level_factors"]
        _refuse_menu(reader, "level_factors", value)
        if not isinstance(value, dict):
            raise reader.fail("level_factors", f"must be a table {{ county = f, prefecture = f, province = f }} "
                                               f"of factors in [0, 1], got {describe(value)}")
        factors = _by_level(reader, "level_factors", 1.0, _level_factor)
    reader.finish()
    return BenefitSchedule(deductibles=deductibles, cap=cap, level_factors=factors)


def with_benefits(instance: Instance, schedule: BenefitSchedule | None) -> Instance:
    """The instance whose care is paid under `schedule` (economics.care reads
    it from `parameters.benefits`): unchanged when the schedule is None or
    trivial (so such a spec prices bit for bit as none), or already there."""
    if schedule is not None and schedule.trivial:
        schedule = None
    if instance.parameters.benefits == schedule:
        return instance
    return dataclasses.replace(instance, parameters=dataclasses.replace(instance.parameters, benefits=schedule))
