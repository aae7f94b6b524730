"""Stress scenarios change the instance as documented (no solver, no sampling)."""

from __future__ import annotations

import pytest

from pooling import InputError, instance_from_dict
from pooling.data.stress import BASELINE, StressScenario
from pooling.simulation.stresses import compose, stressed_instance
from tests.factories import tiny_instance_dict
from tests.tolerances import ROUNDING


def test_baseline_is_the_instance_itself():
    inst = instance_from_dict(tiny_instance_dict())
    assert stressed_instance(inst, BASELINE, 1) is inst


def test_each_field_changes_what_it_says():
    inst = instance_from_dict(tiny_instance_dict())
    scenario = StressScenario("s", frequency_multiplier=1.5, years=(2,), migrant_share_multiplier=10.0,
                              enrollment_change=-0.2, shock_cv=0.3)
    year1, year2 = stressed_instance(inst, scenario, 1), stressed_instance(inst, scenario, 2)
    for base, y1, y2 in zip(inst.counties, year1.counties, year2.counties):
        assert y1.admission_rate == base.admission_rate
        assert y2.admission_rate == pytest.approx(1.5 * base.admission_rate)
        assert y1.enrollees == round(0.8 * base.enrollees)
        assert y1.migrant_share == min(10 * base.migrant_share, 0.95)
        assert y1.contribution_per_capita == base.contribution_per_capita
        assert y1.reserves == base.reserves
    assert year1.parameters.frequency_shock_cv == 0.3
    assert scenario.severity_scale(3) == 1.0


def test_composition_rules():
    a = StressScenario("a", frequency_multiplier=1.2, severity_inflation=0.1, enrollment_change=-0.1)
    b = StressScenario("b", frequency_multiplier=1.5, severity_inflation=0.05, shock_cv=0.2)
    ab = compose([a, b])
    assert ab.name == "a+b"
    assert ab.frequency_multiplier == pytest.approx(1.8)
    assert ab.severity_inflation == pytest.approx(1.1 * 1.05 - 1)
    assert ab.enrollment_change == pytest.approx(-0.1)
    assert ab.shock_cv == 0.2
    clash = [StressScenario("x", frequency_multiplier=2.0, years=(1,)),
             StressScenario("y", frequency_multiplier=2.0, years=(2,))]
    with pytest.raises(InputError, match="both change admission rates but in different years"):
        compose(clash)


def test_heavy_tail_keeps_the_body_and_fattens_the_tail():
    from pooling.data.stress import HeavyTail
    from pooling.risk.severity import Severity
    inst = instance_from_dict(tiny_instance_dict())
    stressed = stressed_instance(inst, StressScenario("h", heavy_tail=HeavyTail(0.01, 2.5)), 1)
    base, tailed = inst.counties[0].severity, stressed.counties[0].severity
    assert tailed.dist == "spliced"
    assert tailed.threshold == pytest.approx(base.upper_quantile(0.01))
    below = tailed.threshold * 0.8
    assert float(tailed.cdf(below)) == pytest.approx(float(base.cdf(below)), rel=ROUNDING)
    far = tailed.threshold * 20
    assert float(tailed.tails(far)[0]) > 100 * float(base.tails(far)[0])
    assert isinstance(stressed.parameters.outside_severity, Severity)
    assert stressed.parameters.outside_severity.dist == "spliced"
