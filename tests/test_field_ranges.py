"""Every numeric field has a validated range where the engine is right
(docs/formats.md): at both ends a small instance prices without error and
gives finite numbers; just outside, the loader raises an InputError naming
the file, county (where there is one) and field, with the range."""

from __future__ import annotations

import copy
import math

import pytest

from pooling import instance_from_dict, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError
from tests.factories import county, instance_dict, spec_dict

SPLICED = {"dist": "spliced", "mean": 4000.0, "cv": 1.0, "threshold": 20_000.0,
           "tail_index": 3.0, "tail_probability": 0.01}


def _instance_data() -> dict:
    """Two counties, migrants from 1 to 2 and outside, so every field is used."""
    return instance_dict([
        county("1", migrant_share=0.2, migrant_destinations={"2": 0.5, "outside": 0.5}, adjacent=["2"]),
        county("2", adjacent=["1"]),
    ], frequency_shock_cv=0.03)


def _set(data: dict, target: str, field: str, value) -> None:
    if target == "county":
        data["counties"][0][field] = value
    elif target == "parameters":
        data["parameters"][field] = value
    elif target in ("lognormal", "gamma"):
        data["counties"][0]["severity"] = {"dist": target, "mean": 4000.0, "cv": 1.0, field: value}
    elif target == "spliced":
        data["counties"][0]["severity"] = dict(SPLICED, **{field: value})
    elif target == "outside_severity":
        data["parameters"]["outside_severity"][field] = value
    else:
        raise AssertionError(target)


# (target, field, low end, high end, just below, just above)
INSTANCE_FIELDS = [
    ("county", "enrollees", 1, 2_000_000_000 - 20_000, 0, 2_000_000_001),
    ("county", "contribution_per_capita", 0.0, 1e7, -1e-9, 1.0000001e7),
    ("county", "reserves", 0.0, 1e16, -1e-9, 1.0000001e16),
    ("county", "admin_per_capita", 0.0, 1e7, -1e-9, 1.0000001e7),
    ("county", "outpatient_per_capita", 0.0, 1e7, -1e-9, 1.0000001e7),
    ("county", "admission_rate", 1e-6, 5.0, 0.99e-6, 5.0000001),
    ("county", "migrant_share", 0.0, 0.999999, -1e-9, 1.0),
    ("parameters", "admin_fixed_per_fund", 0.0, 1e16, -1e-9, 1.0000001e16),
    ("parameters", "out_of_network_factor", 0.0, 1.0, -1e-9, 1.0000001),
    ("parameters", "out_of_network_claim_share", 0.0, 1.0, -1e-9, 1.0000001),
    ("parameters", "migrant_admission_factor", 0.01, 10.0, 0.0099, 10.000001),
    ("parameters", "frequency_shock_cv", 1e-12, 2.0, 0.99e-12, 2.0000001),
    ("parameters", "frequency_shock_cv", 0.0, 2.0, -1e-9, 2.0000001),
    ("lognormal", "mean", 1.0, 1e8, 0.999, 1.0000001e8),
    ("lognormal", "cv", 0.01, 20.0, 0.0099, 20.000001),
    ("gamma", "mean", 1.0, 1e8, 0.999, 1.0000001e8),
    ("gamma", "cv", 0.01, 20.0, 0.0099, 20.000001),
    ("outside_severity", "mean", 1.0, 1e8, 0.999, 1.0000001e8),
    ("spliced", "threshold", 20_000.0, 1e10, None, 1.0000001e10),
    ("spliced", "tail_index", 2.5, 100.0, 2.4999, 100.00001),
    ("spliced", "tail_probability", 1e-12, 0.999, 0.0, 1.0),
]


def _label(case) -> str:
    return f"{case[0]}.{case[1]}"


def _price_all(data: dict, spec: dict | None = None) -> None:
    instance = instance_from_dict(data, source="ranges.json")
    pricer = PoolPricer(instance, spec_from_dict(spec or spec_dict(), source="ranges.toml"))
    for pool in ([cid] for cid in instance.ids):
        pricing = pricer.price(pool)
        for value in (pricing.max_rate, pricing.cvar, pricing.var, pricing.budget, pricing.expected_cost):
            assert math.isfinite(value), (pool, pricing)
        assert pricing.cvar > 0.0


@pytest.mark.parametrize("case", INSTANCE_FIELDS, ids=_label)
def test_instance_field_ends_price_finitely(case):
    target, field, low, high, _, _ = case
    for value in (low, high):
        data = _instance_data()
        _set(data, target, field, value)
        _price_all(data)


@pytest.mark.parametrize("case", INSTANCE_FIELDS, ids=_label)
def test_instance_field_just_outside_is_an_input_error(case):
    target, field, _, _, below, above = case
    where = {"county": 'county "1": ', "parameters": "parameters.", "outside_severity":
             "parameters.outside_severity.", "lognormal": 'county "1": severity.',
             "gamma": 'county "1": severity.', "spliced": 'county "1": severity.'}[target]
    for value in (below, above):
        if value is None:
            continue
        data = _instance_data()
        _set(data, target, field, value)
        with pytest.raises(InputError) as err:
            instance_from_dict(data, source="ranges.json")
        assert str(err.value).startswith(f"ranges.json: {where}{field} must be "), str(err.value)


@pytest.mark.parametrize("value", [10 ** 400, -(10 ** 400)])
@pytest.mark.parametrize("field", ["enrollees", "contribution_per_capita", "reserves", "admission_rate"])
def test_huge_integer_literals_are_input_errors(field, value):
    """Old code: OverflowError from math.isfinite on a 401-digit integer."""
    data = _instance_data()
    data["counties"][0][field] = value
    with pytest.raises(InputError) as err:
        instance_from_dict(data, source="ranges.json")
    assert str(err.value).startswith(f'ranges.json: county "1": {field} must be ')
    assert "an integer of 401 digits" in str(err.value)


def test_money_that_would_overflow_is_an_input_error():
    """Old code: contribution 1e300 x enrollees 1e9 overflowed to inf in the budget."""
    data = _instance_data()
    data["counties"][0].update(contribution_per_capita=1e300, enrollees=1_000_000_000)
    with pytest.raises(InputError, match=r'county "1": contribution_per_capita must be in \[0, 1e\+07\], '
                                         r"got 1e\+300"):
        instance_from_dict(data, source="ranges.json")


def test_total_enrollees_are_bounded():
    data = _instance_data()
    for record in data["counties"]:
        record["enrollees"] = 1_500_000_000
    with pytest.raises(InputError, match=r"ranges\.json: counties: enrollees must sum to at most 2000000000"):
        instance_from_dict(data, source="ranges.json")


def test_year_is_bounded():
    data = _instance_data()
    data["year"] = 10 ** 30
    with pytest.raises(InputError, match=r"ranges.json: year must be in \[1900, 2200\]"):
        instance_from_dict(data, source="ranges.json")


# (section, field, low end, high end, just below, just above)
SPEC_FIELDS = [
    ("solvency", "level", 0.5, 0.9999, 0.4999, 0.99991),
    ("solvency", "reserve_share", 0.0, 1.0, -1e-9, 1.0000001),
    ("rates", "min", 0.0, 0.9, -1e-9, None),
    ("rates", "max", 0.3, 1.0, None, 1.0000001),
    ("rates", "step", 1e-4, 1.0, 0.99e-4, 1.0000001),
    ("equalisation", "max_rate_gap", 0.0, 1.0, -1e-9, 1.0000001),
    ("equalisation", "max_cross_subsidy", 0.0, 10.0, -1e-9, 10.000001),
    ("equalisation", "max_expected_surplus", 0.0, 10.0, -1e-9, 10.000001),
]

SPEC_INTEGERS = [
    ("pooling", "max_counties", 1, 2_000_000_000),
    ("pooling", "min_enrollees", 0, 2_000_000_000),
    ("simulation", "scenarios", 100, 10_000_000),
    ("simulation", "years", 1, 100),
    ("simulation", "seed", 0, 2 ** 64 - 1),
]


@pytest.mark.parametrize("case", SPEC_FIELDS, ids=_label)
def test_spec_field_ends_price_finitely_and_outside_is_an_input_error(case):
    section, field, low, high, below, above = case
    for value in (low, high):
        _price_all(_instance_data(), spec_dict(**{section: {field: value}}))
    for value in (below, above):
        if value is None:
            continue
        with pytest.raises(InputError) as err:
            spec_from_dict(spec_dict(**{section: {field: value}}), source="ranges.toml")
        assert str(err.value).startswith(f"ranges.toml: {section}.{field} must be "), str(err.value)


@pytest.mark.parametrize("case", SPEC_INTEGERS, ids=_label)
def test_spec_integer_ends(case):
    section, field, low, high = case
    for value in (low, high):
        spec = spec_from_dict(spec_dict(**{section: {field: value}}), source="ranges.toml")
        assert getattr(getattr(spec, section), field) == value
    for value in (low - 1, high + 1, 10 ** 400):
        with pytest.raises(InputError) as err:
            spec_from_dict(spec_dict(**{section: {field: value}}), source="ranges.toml")
        assert str(err.value).startswith(f"ranges.toml: {section}.{field} must be in [{low}, {high}]")


@pytest.mark.parametrize("field,low,high,below,above", [
    ("frequency_multiplier", 1e-9, 10.0, 0.0, 10.000001),
    ("migrant_share_multiplier", 0.0, 10.0, -1e-9, 10.000001),
    ("shock_cv", 0.0, 2.0, 1e-13, 2.0000001),
    ("severity_inflation", -0.5, 1.0, -0.5000001, 1.0000001),
    ("enrollment_change", -0.9, 10.0, -0.9000001, 10.000001),
])
def test_stress_field_ranges(field, low, high, below, above):
    for value in (low, high):
        spec = spec_from_dict(spec_dict(simulation={"stress": {"s": {field: value}}}))
        assert getattr(spec.simulation.stress["s"], field) == value
    for value in (below, above):
        with pytest.raises(InputError) as err:
            spec_from_dict(spec_dict(simulation={"stress": {"s": {field: value}}}), source="ranges.toml")
        assert str(err.value).startswith(f"ranges.toml: simulation.stress.s.{field} must be ")


def test_ruin_measure_prices_at_the_level_ends():
    for level in (0.5, 0.9999):
        spec = spec_dict(solvency={"measure": "ruin", "level": level}, simulation={"scenarios": 1000})
        _price_all(copy.deepcopy(_instance_data()), spec)
