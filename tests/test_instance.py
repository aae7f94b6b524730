"""Instance loading and validation: good files load, bad ones fail with a message
that names the file, the county and the field."""

from __future__ import annotations

import json

import pytest

from pooling import InputError, instance_from_dict, load_instance
from tests.factories import county, instance_dict, tiny_instance_dict


def test_tiny_instance_loads_with_all_fields():
    inst = instance_from_dict(tiny_instance_dict())
    assert inst.ids == ("900101", "900102", "900103")
    c = inst.county("900101")
    assert c.enrollees == 15_000
    assert c.migrant_destinations == (("900102", 0.5), ("outside", 0.5))
    assert c.revenue == 15_000 * 400.0
    assert inst.total_enrollees == 63_000
    assert inst.parameters.out_of_network_factor == 0.6


def test_sha256_is_of_file_bytes(tmp_path):
    import hashlib
    path = tmp_path / "tiny.json"
    raw = json.dumps(tiny_instance_dict(), indent=1).encode()
    path.write_bytes(raw)
    assert load_instance(path).sha256 == hashlib.sha256(raw).hexdigest()


def _mutate_county(field, value, index=0):
    data = tiny_instance_dict()
    if value is KeyError:
        del data["counties"][index][field]
    else:
        data["counties"][index][field] = value
    return data


BAD_COUNTY_FIELDS = [
    ("migrant_share", 1.5, 'county "900101": migrant_share must be in [0, 1), got 1.5'),
    ("migrant_share", 1.0, 'county "900101": migrant_share must be in [0, 1), got 1'),
    ("enrollees", -5, 'county "900101": enrollees must be in [1, 2000000000], got -5'),
    ("enrollees", 100.5, 'county "900101": enrollees must be an integer'),
    ("enrollees", "many", 'county "900101": enrollees must be an integer, got "many"'),
    ("enrollees", KeyError, 'county "900101": enrollees is missing'),
    ("reserves", -1.0, 'county "900101": reserves must be in [0, 1e+16], got -1'),
    ("admission_rate", 0.0, 'county "900101": admission_rate must be in [1e-06, 5], got 0'),
    ("contribution_per_capita", True, 'contribution_per_capita must be a number, got true'),
    ("severity", {"dist": "pareto", "mean": 1.0, "cv": 1.0},
     'county "900101": severity.dist must be one of "lognormal" | "gamma" | "spliced", got "pareto"'),
    ("severity", {"dist": "gamma", "mean": 1.0}, 'county "900101": severity.cv is missing'),
    ("severity", {"dist": "gamma", "mean": -3.0, "cv": 1.0},
     'county "900101": severity.mean must be in [1, 1e+08], got -3'),
    ("adjacent", "900102", 'county "900101": adjacent must be a list of strings'),
    ("colour", "blue", 'county "900101": colour is not a known field'),
    ("migrant_destinations", {"900102": 0.5, "outside": 0.4},
     'county "900101": migrant_destinations weights must sum to 1'),
    ("migrant_destinations", {"900199": 0.5, "outside": 0.5},
     'county "900101": migrant_destinations.900199 is not a county or place id of this instance'),
    ("migrant_destinations", {"900101": 0.5, "outside": 0.5},
     'county "900101": migrant_destinations.900101 is the county itself'),
    ("migrant_destinations", {"900102": -0.5, "outside": 1.5},
     'county "900101": migrant_destinations.900102 must be >= 0, got -0.5'),
]


@pytest.mark.parametrize("field,value,message", BAD_COUNTY_FIELDS)
def test_bad_county_field_is_named(tmp_path, field, value, message):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(_mutate_county(field, value)))
    with pytest.raises(InputError) as err:
        load_instance(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_asymmetric_adjacency_names_both_counties():
    data = tiny_instance_dict()
    data["counties"][2]["adjacent"] = []
    with pytest.raises(InputError, match='county "900102": adjacent lists "900103" but county "900103" '
                                         'does not list "900102"'):
        instance_from_dict(data, source="tiny.json")


def test_unknown_adjacent_id():
    data = tiny_instance_dict()
    data["counties"][0]["adjacent"] = ["900102", "123456"]
    with pytest.raises(InputError, match='county "900101": adjacent names "123456"'):
        instance_from_dict(data, source="tiny.json")


def test_duplicate_county_id():
    data = instance_dict([county("1"), county("1")])
    with pytest.raises(InputError, match='county "1": id appears more than once'):
        instance_from_dict(data, source="x.json")


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["parameters"].update(out_of_network_factor=1.2),
     "x.json: parameters.out_of_network_factor must be in [0, 1], got 1.2"),
    (lambda d: d["parameters"].pop("frequency_shock_cv"), "parameters.frequency_shock_cv is missing"),
    (lambda d: d["parameters"]["outside_severity"].update(cv=0), "parameters.outside_severity.cv must be"),
    (lambda d: d.update(counties=[]), "counties must be a non-empty list"),
    (lambda d: d.update(extra=1), "x.json: extra is not a known field"),
    (lambda d: d.pop("currency"), "x.json: currency is missing"),
    (lambda d: d.update(year="2012"), "x.json: year must be an integer"),
    (lambda d: d["counties"].append([1, 2]), "x.json: county #4: expected a table/object, got a list"),
])
def test_bad_top_level(mutate, message):
    data = tiny_instance_dict()
    mutate(data)
    with pytest.raises(InputError) as err:
        instance_from_dict(data, source="x.json")
    assert message in str(err.value)


@pytest.mark.parametrize("text,message", [
    ('{"name": "x", ', "not valid JSON"),
    ('{"name": "x", "name": "y"}', 'key "name" appears twice'),
    ('[1, 2]', "expected a table/object, got a list"),
    ('{"name": NaN}', "name must be a string"),
])
def test_broken_files(tmp_path, text, message):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_instance(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_non_finite_number_rejected():
    data = tiny_instance_dict()
    data["counties"][0]["reserves"] = float("nan")
    with pytest.raises(InputError, match='county "900101": reserves must be a finite number'):
        instance_from_dict(data, source="x.json")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="instance file not found"):
        load_instance(tmp_path / "nope.json")
