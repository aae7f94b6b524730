"""The spec's [uncertainty] table (data.uncertainty): shape, weights, reload."""

from __future__ import annotations

import tomllib

import pytest

from pooling import spec_from_dict
from pooling.data.instance import instance_from_dict
from pooling.data.uncertainty import scenario_instances
from pooling.errors import InputError
from tests.factories import county, instance_dict, spec_dict
from tests.tolerances import ROUNDING

ISSUE_EXAMPLE = """
[uncertainty]
method = "predictive"
base_weight = 0.5
[[uncertainty.scenarios]]
name = "shocks x0.5"
weight = 0.25
scale = { "parameters.frequency_shock_cv" = 0.5, "parameters.regional_shocks.county.cv" = 0.5 }
[[uncertainty.scenarios]]
name = "shocks x1.5"
weight = 0.25
scale = { parameters.frequency_shock_cv = 1.5 }
set = { "counties.1.admission_rate" = 0.1 }
"""


def _spec(uncertainty: dict):
    return spec_from_dict(spec_dict() | {"uncertainty": uncertainty}, source="u.toml")


def test_the_issue_example_reads_with_quoted_and_dotted_paths():
    spec = _spec(tomllib.loads(ISSUE_EXAMPLE)["uncertainty"])
    u = spec.uncertainty
    assert u.method == "predictive" and u.base_weight == 0.5
    assert [s.name for s in u.all_scenarios] == ["base", "shocks x0.5", "shocks x1.5"]
    assert [(c.path, c.operation, c.value) for c in u.scenarios[1].changes] == [
        ("parameters.frequency_shock_cv", "scale", 1.5), ("counties.1.admission_rate", "set", 0.1)]


def test_a_spec_with_uncertainty_reloads_from_its_resolved_form():
    spec = _spec(tomllib.loads(ISSUE_EXAMPLE)["uncertainty"])
    again = spec_from_dict(spec.to_dict(), source="again")
    assert again.uncertainty == spec.uncertainty


def test_a_spec_without_uncertainty_resolves_as_before():
    assert "uncertainty" not in spec_from_dict(spec_dict()).to_dict()


@pytest.mark.parametrize("table, message", [
    ({"method": "worst"}, "uncertainty.method must be one of"),
    ({"method": "robust", "scenarios": []}, "uncertainty.scenarios must be a non-empty list"),
    ({"method": "robust", "scenarios": [{"name": "base", "scale": {"a": 2}}]}, 'reserved "base"'),
    ({"method": "robust", "scenarios": [{"name": "a", "scale": {"x": 2}}, {"name": "a", "scale": {"x": 2}}]},
     "used twice"),
    ({"method": "robust", "scenarios": [{"name": "a"}]}, "needs at least one change"),
    ({"method": "robust", "scenarios": [{"name": "a", "scale": {"x": "2"}}]}, r"scale.x must be a finite number"),
    ({"method": "robust", "scenarios": [{"name": "a", "scale": {"x": 2}, "add": {}}]}, "add is not a known field"),
    ({"method": "predictive", "scenarios": [{"name": "a", "weight": 0.5, "scale": {"x": 2}}]},
     "needs base_weight"),
    ({"method": "predictive", "base_weight": 0.6, "scenarios": [{"name": "a", "weight": 0.5, "scale": {"x": 2}}]},
     "must sum to 1, got 1.1"),
])
def test_malformed_tables_are_input_errors_naming_the_field(table, message):
    with pytest.raises(InputError, match=message):
        _spec(table)


def test_scenarios_are_validated_against_the_instance_naming_the_scenario():
    instance = instance_from_dict(instance_dict([county("1")], frequency_shock_cv=0.3))
    spec = _spec({"method": "robust", "scenarios": [{"name": "x2", "scale": {"parameters.frequency_shock_cv": 2}}]})
    with pytest.raises(InputError,
                       match=r'scenario "x2" of u.toml: parameters.frequency_shock_cv must be in \[0, 0.5\]'):
        scenario_instances(instance, spec.uncertainty)
    ok = _spec({"method": "robust", "scenarios": [{"name": "x1.5", "scale": {"parameters.frequency_shock_cv": 1.5}}]})
    pairs = scenario_instances(instance, ok.uncertainty)
    assert [s.name for s, _ in pairs] == ["base", "x1.5"] and pairs[0][1] is instance
    assert pairs[1][1].parameters.frequency_shock_cv == pytest.approx(0.45, rel=ROUNDING)
