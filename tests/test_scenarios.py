"""Instances written back as file data, and parameter scenarios by path (data.scenarios)."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.instance_dict import instance_to_dict
from pooling.data.scenarios import ParameterChange, Scenario, apply_changes, resolve, scenario_instance
from pooling.errors import FormatWarning, InputError
from tests.factories import INSTANCES, county, instance_dict, random_instance_dict
from tests.tolerances import ROUNDING


@pytest.mark.parametrize("name", ["tongliao", "xinyang", "binzhou", "henan"])
def test_bundled_instances_read_back_equal(name):
    instance = load_instance(INSTANCES / f"{name}.json")
    again = instance_from_dict(instance_to_dict(instance), source=instance.source, sha256=instance.sha256)
    assert again == instance


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6))
def test_generated_instances_read_back_equal(seed, n):
    data = random_instance_dict(seed, n, n_prefectures=min(n, 2))
    instance = instance_from_dict(data)
    assert instance_from_dict(instance_to_dict(instance), sha256=instance.sha256) == instance


def test_a_version_1_file_is_written_in_the_current_format_with_its_meaning():
    data = instance_dict([county("1")])
    del data["parameters"]["admin_financing"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FormatWarning)
        old = instance_from_dict(data)
    assert old.parameters.admin_financing == "risk_fund"
    written = instance_to_dict(old)
    assert written["format"] == "pooling.instance/3" and written["parameters"]["admin_financing"] == "risk_fund"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)
        assert instance_from_dict(written, sha256=old.sha256) == old


def test_a_block_is_not_written_as_a_file():
    instance = instance_from_dict(instance_dict([
        county("1", migrant_share=0.1, migrant_destinations={"2": 1.0}), county("2")]))
    with pytest.raises(ValueError, match="restricted"):
        instance_to_dict(instance.restricted(["1"]))


def _two_counties():
    return instance_from_dict(instance_dict(
        [county("1", adjacent=["2"], resident_care={"1": 0.75, "2": 0.25}), county("2", adjacent=["1"])],
        frequency_shock_cv=0.1, regional_shocks={"county": {"weight": 0.3, "cv": 0.2}}))


def test_paths_name_fields_by_id_key_and_wildcard():
    data = instance_to_dict(_two_counties())
    assert [p for _, _, p in resolve(data, "counties.*.severity.cv")] == ["counties.1.severity.cv",
                                                                         "counties.2.severity.cv"]
    assert [p for _, _, p in resolve(data, "counties.2.admission_rate")] == ["counties.2.admission_rate"]
    assert [p for _, _, p in resolve(data, "counties.*.resident_care.*")] == ["counties.1.resident_care.1",
                                                                              "counties.1.resident_care.2"]
    assert resolve(data, "counties.3.admission_rate") == []
    assert resolve(data, "counties.*.adjacent.0") == []       # plain lists are not indexed


def test_scale_and_set_change_exactly_the_named_fields():
    base = _two_counties()
    changed = scenario_instance(base, Scenario("s", (
        ParameterChange("parameters.frequency_shock_cv", "scale", 1.5),
        ParameterChange("parameters.regional_shocks.county.cv", "set", 0.05),
        ParameterChange("counties.2.enrollees", "scale", 1.5),
        ParameterChange("counties.*.severity.cv", "scale", 2.0))))
    assert changed.parameters.frequency_shock_cv == pytest.approx(0.15, rel=ROUNDING)
    assert changed.parameters.county_shock.cv == 0.05 and changed.parameters.county_shock.weight == 0.3
    assert changed.county("2").enrollees == 30_000 and isinstance(changed.county("2").enrollees, int)
    assert changed.county("1").enrollees == 20_000
    assert [c.severity.cv for c in changed.counties] == [2.0, 2.0]
    assert changed.county("1").resident_care == base.county("1").resident_care
    assert "scenario \"s\"" in changed.source


def test_a_scenario_without_changes_is_the_instance_itself():
    base = _two_counties()
    assert scenario_instance(base, Scenario("base", ())) is base


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_scaling_by_one_changes_nothing(seed):
    base = instance_from_dict(random_instance_dict(seed, 3))
    paths = ("parameters.frequency_shock_cv", "counties.*.severity.cv", "counties.*.enrollees",
             "counties.*.admission_rate", "parameters.outside_severity.mean")
    same = scenario_instance(base, Scenario("one", tuple(ParameterChange(p, "scale", 1.0) for p in paths)))
    assert same.counties == base.counties and same.parameters == base.parameters


@pytest.mark.parametrize("change, message", [
    (ParameterChange("parameters.regional_shocks.county.cv", "scale", 4.0),
     r'scenario "bad": parameters.regional_shocks.county.cv must be in \[0, 0.5\], got 0.8'),
    (ParameterChange("counties.*.migrant_share", "set", 1.0), r'scenario "bad".*county "1".*migrant_share'),
    (ParameterChange("counties.*.name", "scale", 2.0), r'scenario "bad".*counties.1.name is "County 1", not a number'),
    (ParameterChange("parameters.no_such_field", "scale", 2.0), r'scenario "bad".*names no numeric field'),
    (ParameterChange("counties.9.admission_rate", "set", 0.1), r'scenario "bad".*names no numeric field'),
])
def test_a_scenario_that_breaks_the_instance_is_an_input_error_naming_it(change, message):
    with pytest.raises(InputError, match=message):
        scenario_instance(_two_counties(), Scenario("bad", (change,)))


def test_changes_leave_the_input_data_alone():
    data = instance_to_dict(_two_counties())
    before = repr(data)
    apply_changes(data, (ParameterChange("counties.*.severity.cv", "scale", 2.0),), "here")
    assert repr(data) == before


@pytest.mark.parametrize("kwargs", [dict(path="", operation="scale", value=1.0),
                                    dict(path="a..b", operation="scale", value=1.0),
                                    dict(path="a", operation="add", value=1.0),
                                    dict(path="a", operation="scale", value=float("nan")),
                                    dict(path="a", operation="scale", value=1e7)])
def test_malformed_changes_are_refused(kwargs):
    with pytest.raises(ValueError):
        ParameterChange(**kwargs)
