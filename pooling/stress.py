"""Stress scenarios for the Monte Carlo stress test (DESIGN §Monte Carlo stress test).

A scenario changes the instance the claims are drawn from, never the plan
(pools, rates) nor the revenue per enrollee:

| field | effect |
|---|---|
| frequency_multiplier f, years | admission rates x f in the listed years (all years if omitted): an epidemic year |
| severity_inflation g | claim costs in year t x (1 + g)^t: costs outgrow the priced basis from year 1 |
| migrant_share_multiplier m | every migrant share x m (capped at 0.95): a migrant surge |
| enrollment_change e | enrollees x (1 + e): revenue, per-capita costs and admissions scale, F does not |
| shock_cv | replaces theta, the cv of the yearly systemic multiplier |
| heavy_tail {tail_probability, tail_index} | every severity gets a Pareto tail above its own (1 - p) quantile (severity.with_pareto_tail) |

Scenarios compose: multipliers multiply, growth rates compound, the last
shock_cv / heavy_tail named wins, `years` lists are merged.
Presets are available by name without being declared in the spec; a spec's
``[simulation.stress.NAME]`` table defines or overrides one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pooling.errors import InputError
from pooling.fields import FieldReader
from pooling.instance import County, Instance
from pooling.severity import with_pareto_tail

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
    years = None
    if reader.has("years"):
        raw = reader.raw("years")
        if (not isinstance(raw, list) or not raw
                or not all(isinstance(y, int) and not isinstance(y, bool) and y >= 1 for y in raw)):
            raise reader.fail("years", f"must be a non-empty list of years >= 1, got {raw!r}")
        years = tuple(sorted(set(raw)))
    heavy = None
    if reader.has("heavy_tail"):
        tail = reader.table("heavy_tail")
        heavy = HeavyTail(
            tail_probability=tail.number("tail_probability", low=0.0, high=0.5, low_open=True),
            tail_index=tail.number("tail_index", low=2.0, low_open=True))
        tail.finish()
    scenario = StressScenario(
        name=name,
        frequency_multiplier=reader.number("frequency_multiplier", low=0.0, low_open=True, default=1.0),
        years=years,
        severity_inflation=reader.number("severity_inflation", low=-0.5, high=1.0, default=0.0),
        migrant_share_multiplier=reader.number("migrant_share_multiplier", low=0.0, default=1.0),
        enrollment_change=reader.number("enrollment_change", low=-0.9, high=10.0, default=0.0),
        shock_cv=reader.number("shock_cv", low=0.0, high=2.0, default=None),
        heavy_tail=heavy)
    reader.finish()
    return scenario


def resolve(names: list[str], declared: dict[str, StressScenario], where: str) -> StressScenario:
    """Compose the named scenarios (spec declarations first, then presets)."""
    scenarios = []
    for name in names:
        if name in declared:
            scenarios.append(declared[name])
        elif name in PRESETS:
            scenarios.append(PRESETS[name])
        else:
            known = ", ".join(sorted(set(declared) | set(PRESETS)))
            raise InputError(f"{where}: unknown stress scenario \"{name}\" (known: {known})")
    return compose(scenarios)


def compose(scenarios: list[StressScenario]) -> StressScenario:
    if not scenarios:
        return BASELINE
    out = scenarios[0]
    for s in scenarios[1:]:
        if out.years is not None and s.years is not None and s.frequency_multiplier != 1.0 \
                and out.frequency_multiplier != 1.0 and out.years != s.years:
            raise InputError(f"stress scenarios \"{out.name}\" and \"{s.name}\" both change admission "
                             f"rates but in different years; define one combined scenario instead")
        freq_years = out.years if out.frequency_multiplier != 1.0 else s.years
        out = StressScenario(
            name=f"{out.name}+{s.name}",
            frequency_multiplier=out.frequency_multiplier * s.frequency_multiplier,
            years=freq_years,
            severity_inflation=(1 + out.severity_inflation) * (1 + s.severity_inflation) - 1,
            migrant_share_multiplier=out.migrant_share_multiplier * s.migrant_share_multiplier,
            enrollment_change=(1 + out.enrollment_change) * (1 + s.enrollment_change) - 1,
            shock_cv=s.shock_cv if s.shock_cv is not None else out.shock_cv,
            heavy_tail=s.heavy_tail if s.heavy_tail is not None else out.heavy_tail)
    return out


def stressed_instance(instance: Instance, scenario: StressScenario, year: int) -> Instance:
    """The instance claims are drawn from in `year` (severity inflation excluded:
    it scales Y exactly and is applied to samples)."""
    if scenario == dataclasses.replace(BASELINE, name=scenario.name):
        return instance
    freq = scenario.frequency_in_year(year)
    grow = 1.0 + scenario.enrollment_change

    def tailed(severity):
        if scenario.heavy_tail is None:
            return severity
        return with_pareto_tail(severity, scenario.heavy_tail.tail_probability,
                                scenario.heavy_tail.tail_index)

    def county(c: County) -> County:
        severity = tailed(c.severity)
        return dataclasses.replace(
            c, admission_rate=c.admission_rate * freq,
            enrollees=max(1, round(c.enrollees * grow)),
            reserves=c.reserves,
            migrant_share=min(c.migrant_share * scenario.migrant_share_multiplier, MAX_MIGRANT_SHARE),
            severity=severity)

    params = instance.parameters
    if scenario.shock_cv is not None:
        params = dataclasses.replace(params, frequency_shock_cv=scenario.shock_cv)
    if scenario.heavy_tail is not None:
        params = dataclasses.replace(params, outside_severity=tailed(params.outside_severity))
    return dataclasses.replace(instance, parameters=params,
                               counties=tuple(county(c) for c in instance.counties))
