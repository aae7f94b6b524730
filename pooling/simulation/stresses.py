"""Stress scenarios composed and applied: the instance claims are drawn from
in a stressed year (definitions and presets: pooling.data.stress)."""

from __future__ import annotations

import dataclasses

from pooling.data.instance import County, Instance
from pooling.data.stress import BASELINE, MAX_MIGRANT_SHARE, PRESETS, StressScenario
from pooling.errors import InputError
from pooling.risk.severity import with_pareto_tail


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
