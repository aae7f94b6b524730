"""Spec loading: every bundled spec loads; bad specs name the file and field."""

from __future__ import annotations

import json
import re

import pytest

from pooling import InputError, load_spec, spec_from_dict
from tests.factories import MODELS, spec_dict


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.name)
def test_bundled_specs_load(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.rates.min <= spec.rates.max
    assert len(spec.sha256) == 64


def test_defaults_filled_in():
    spec = spec_from_dict(spec_dict())
    assert spec.pooling.within == "prefecture"
    assert spec.pooling.contiguous is False
    assert spec.pooling.max_counties is None
    assert spec.objective.kind == "max_mean_rate"
    assert spec.to_dict()["solvency"] == {"measure": "cvar", "level": 0.99, "reserve_share": 0.5,
                                          "horizon_years": 1}


@pytest.mark.parametrize("sections,message", [
    ({"pooling": {"scope": "nation"}}, 'pooling.scope must be one of "county" | "prefecture" | "optimise"'),
    ({"pooling": {"contiguous": "yes"}}, "pooling.contiguous must be true or false"),
    ({"pooling": {"max_counties": 0}}, "pooling.max_counties must be in [1, 2000000000], got 0"),
    ({"pooling": {"within": "county"}}, "pooling.within must be one of"),
    ({"simulation": {"stress": {"x": {"frequency_multiplier": -1}}}},
     "simulation.stress.x.frequency_multiplier must be in (0, 10], got -1"),
    ({"simulation": {"stress": {"x": {"years": [0]}}}}, "simulation.stress.x.years must be a non-empty list"),
    ({"simulation": {"stress": {"x": {"heavy_tail": {"tail_probability": 0.01, "tail_index": 1.5}}}}},
     "simulation.stress.x.heavy_tail.tail_index must be in [2.5, 100] (> 2 for a finite variance"),
    ({"simulation": {"scenarios": 10}}, "simulation.scenarios must be in [100, 10000000], got 10"),
    ({"pooling": {"contigous": True}}, "pooling.contigous is not a known field"),
    ({"solvency": {"level": 1.0}}, "solvency.level must be in [0.5, 0.9999], got 1"),
    ({"solvency": {"measure": "expectation"}}, 'solvency.measure must be one of "cvar" | "var" | "ruin"'),
    ({"solvency": {"measure": "ruin", "horizon_years": 101}}, "solvency.horizon_years must be in [1, 100], got 101"),
    ({"solvency": {"reserve_share": -0.1}}, "solvency.reserve_share must be in [0, 1], got -0.1"),
    ({"solvency": {"horizon_years": 3}}, "solvency.horizon_years must be 1"),
    ({"rates": {"min": 0.8, "max": 0.5}}, "rates.min must be <= rates.max (0.5), got 0.8"),
    ({"rates": {"max": 1.5}}, "rates.max must be in (0, 1], got 1.5"),
    ({"objective": {"kind": "max_happiness"}}, 'objective.kind must be one of "max_mean_rate"'),
    ({"equalisation": {"max_rate_gap": 1.5}}, "equalisation.max_rate_gap must be in [0, 1], got 1.5"),
    ({"equalisation": {"tolerance": 0.01}}, "equalisation.tolerance applies only with no_county_worse_off"),
    ({"equalisation": {"gap_scope": "county"}}, "equalisation.gap_scope must be one of"),
    ({"equalisation": {"max_rate_gap": 0.1, "gap": 0.1}}, "equalisation.gap is not a known field"),
    ({"rates": {"step": 0}}, "rates.step must be in (0, 1], got 0"),
])
def test_bad_spec_fields(sections, message):
    with pytest.raises(InputError) as err:
        spec_from_dict(spec_dict(**sections), source="bad.toml")
    assert str(err.value).startswith("bad.toml: ")
    assert message in str(err.value)


def test_missing_required_section():
    data = spec_dict()
    del data["solvency"]
    with pytest.raises(InputError, match=re.escape("bad.toml: solvency is missing")):
        spec_from_dict(data, source="bad.toml")


def test_broken_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[pooling\nscope = 1\n")
    with pytest.raises(InputError, match=f"{path}: not valid TOML"):
        load_spec(path)


def test_stress_tables_parse_and_compose():
    from pooling.data.stress import PRESETS
    from pooling.simulation.stresses import resolve
    spec = spec_from_dict(spec_dict(simulation={"stress": {
        "flu": {"frequency_multiplier": 1.2, "years": [2, 1, 2]},
        "epidemic": {"frequency_multiplier": 2.0}}}))
    flu = spec.simulation.stress["flu"]
    assert flu.years == (1, 2) and flu.frequency_in_year(3) == 1.0
    # A spec table overrides the preset of the same name.
    assert spec.simulation.stress["epidemic"].frequency_multiplier == 2.0
    combined = resolve(["flu", "inflation", "enrollment_drop"], spec.simulation.stress, "s.toml")
    assert combined.frequency_in_year(1) == pytest.approx(1.2)
    assert combined.severity_scale(2) == pytest.approx(1.08 ** 2)
    assert combined.enrollment_change == pytest.approx(PRESETS["enrollment_drop"].enrollment_change)


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.name)
def test_a_resolved_spec_reloads(path):
    """result.json stores the resolved spec (defaults filled in): it must load
    back to the same spec, so a result can be reproduced from itself."""
    spec = load_spec(path)
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())), source="resolved")
    assert again.to_dict() == spec.to_dict()
