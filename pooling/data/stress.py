"""Stress scenario definitions for the Monte Carlo stress test (DESIGN §Monte Carlo stress test).

They are part of a spec (``[simulation.stress.NAME]``), so they live with the
spec; pooling.simulation.stresses composes them and applies them to an instance.

A scenario changes the instance the claims are drawn from, never the plan
(pools, rates) nor the revenue per enrollee:

| field | effect |
|---|---|
| frequency_multiplier f, years | admission rates x f in the listed years (all years if omitted): an epidemic year |
| severity_inflation g | claim costs in year t x (1 + g)^t: costs outgrow the priced basis from year 1 |
| migrant_share_multiplier m | every migrant share x m (capped at 0.95): a migrant surge |
| enrollment_change e | enrollees x (1 + e): revenue, per-capita costs and admissions scale, F does not |
| shock_cv | replaces theta, the cv of the yearly systemic multiplier |
| heavy_tail {tail_probability, tail_index} | each severity gets a Pareto tail above its (1 - p) quantile |

Scenarios compose: multipliers multiply, growth rates compound, the last
shock_cv / heavy_tail named wins, `years` lists are merged.
Presets are available by name without being declared in the spec; a spec's
``[simulation.stress.NAME]`` table defines or overrides one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pooling.data.fields import FieldReader

MAX_MULTIPLIER = 10.0
"""frequency_multiplier and migrant_share_multiplier: a tenfold change is far
beyond any stress considered (the presets use 1.3 and 1.5), and keeps admission
rates within 10x the instance's validated range."""
MAX_MIGRANT_SHARE = 0.95
"""A surge cannot push a county's migrant share to 1 (the model needs residents)."""


@dataclass(frozen=True)
class HeavyTail:
    tail_probability: float
    tail_index: float


@dataclass(frozen=True)
class StressScenario:
    name: str
    frequency_multiplier: float = 1.0
    years: tuple[int, ...] | None = None
    severity_inflation: float = 0.0
    migrant_share_multiplier: float = 1.0
    enrollment_change: float = 0.0
    shock_cv: float | None = None
    heavy_tail: HeavyTail | None = None

    def frequency_in_year(self, year: int) -> float:
        """Admission-rate multiplier in year `year` (1-based)."""
        if self.years is None or year in self.years:
            return self.frequency_multiplier
        return 1.0

    def severity_scale(self, year: int) -> float:
        return (1.0 + self.severity_inflation) ** year

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["years"] = list(self.years) if self.years is not None else None
        return data


BASELINE = StressScenario(name="baseline")

PRESETS: dict[str, StressScenario] = {
    "epidemic": StressScenario("epidemic", frequency_multiplier=1.3, years=(1,)),
    "inflation": StressScenario("inflation", severity_inflation=0.08),
    "migrant_surge": StressScenario("migrant_surge", migrant_share_multiplier=1.5),
    "enrollment_drop": StressScenario("enrollment_drop", enrollment_change=-0.10),
    "volatile": StressScenario("volatile", shock_cv=0.10),
    "heavy_tail": StressScenario("heavy_tail", heavy_tail=HeavyTail(tail_probability=0.01, tail_index=2.5)),
}
"""Presets (assumed magnitudes, chosen as plausible stresses, not forecasts):
epidemic +30% admissions in year 1; medical inflation 8%/yr (the upper half of
the 5-12% range in shared CALIBRATION, cost growth per admission); migrant
shares x1.5; enrollment -10% (rural depopulation); theta 0.10; the costliest
1% of admissions Pareto-tailed with index 2.5."""


def read_stress_table(reader: FieldReader, name: str) -> StressScenario:
    """Parse one ``[simulation.stress.NAME]`` table."""
    # Here, not at the top: the CLI reads PRESETS for its help without loading scipy (data.instance).
    from pooling.data.instance import read_shock_cv, read_tail_index
    years = None
    if reader.raw("name", default=name) != name:   # a resolved spec repeats the table's name
        raise reader.fail("name", f"must be the table's name {name!r} (or omitted)")
    # null (as a resolved spec in result.json writes an unset field) means unset.
    if reader.has("years") and reader.raw("years") is not None:
        raw = reader.raw("years")
        if (not isinstance(raw, list) or not raw
                or not all(isinstance(y, int) and not isinstance(y, bool) and y >= 1 for y in raw)):
            raise reader.fail("years", f"must be a non-empty list of years >= 1, got {raw!r}")
        years = tuple(sorted(set(raw)))
    heavy = None
    if reader.has("heavy_tail") and reader.raw("heavy_tail") is not None:
        tail = reader.table("heavy_tail")
        heavy = HeavyTail(
            tail_probability=tail.number("tail_probability", low=0.0, high=0.5, low_open=True),
            tail_index=read_tail_index(tail))
        tail.finish()
    scenario = StressScenario(
        name=name,
        frequency_multiplier=reader.number("frequency_multiplier", low=0.0, low_open=True,
                                           high=MAX_MULTIPLIER, default=1.0),
        years=years,
        severity_inflation=reader.number("severity_inflation", low=-0.5, high=1.0, default=0.0),
        migrant_share_multiplier=reader.number("migrant_share_multiplier", low=0.0, high=MAX_MULTIPLIER,
                                               default=1.0),
        enrollment_change=reader.number("enrollment_change", low=-0.9, high=10.0, default=0.0),
        shock_cv=read_shock_cv(reader, "shock_cv", default=None),
        heavy_tail=heavy)
    reader.finish()
    return scenario
