"""Every bundled instance loads; the small ones solve under every bundled spec."""

from __future__ import annotations

import dataclasses

import pytest

from pooling import load_instance, load_spec, solve
from pooling.optimise.solve import evaluate
from tests.factories import INSTANCES, MODELS

INSTANCE_FILES = sorted(INSTANCES.glob("*.json"))
SPEC_FILES = sorted(MODELS.glob("*.toml"))
SMALL = 12  # counties: instances up to this size are solved in the suite


def test_there_are_bundled_files():
    assert INSTANCE_FILES and SPEC_FILES


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda p: p.name)
def test_instance_loads_and_is_documented(path):
    inst = load_instance(path)
    assert inst.counties
    assert path.name in (INSTANCES / "README.md").read_text(), "instance lacks a README entry"


DEFAULT_INSTANCE = INSTANCES / "tongliao.json"
SOLVE_MATRIX = [(DEFAULT_INSTANCE, s) for s in SPEC_FILES]
"""Every spec on the default instance; the other small instances are solved
under the default spec in tests/test_instances_real.py (a full matrix would
cost minutes)."""


RUIN_PATHS = 2_000
"""Paths per pool for a bundled ruin spec in this test (benchmarks and the
README run them as bundled)."""


@pytest.mark.parametrize("path,spec_path", SOLVE_MATRIX, ids=lambda p: p.name)
def test_small_instances_solve(path, spec_path):
    inst = load_instance(path)
    if len(inst.counties) > SMALL:
        pytest.skip(f"{path.name} has {len(inst.counties)} counties; solved in benchmarks")
    spec = load_spec(spec_path)
    if spec.solvency.measure == "ruin":
        # The ruin measure's rate is a Monte Carlo order statistic: the spec as
        # bundled draws 10,000 paths per county (25 s); 2,000 exercise the same
        # code, and the plan is re-priced under the same spec below.
        spec = dataclasses.replace(spec, simulation=dataclasses.replace(spec.simulation, scenarios=RUIN_PATHS))
    result = solve(inst, spec)
    assert result.status == "optimal", result.diagnosis
    assert result.gap <= 1e-6
    # The reported plan, re-priced independently of the MILP, gives the same objective.
    plan = [list(p.pricing.counties) for p in result.pools]
    schedules = [{"pool": list(p.pricing.counties), "schedule": p.pricing.benefits.to_dict()}
                 for p in result.pools if p.pricing.benefits is not None]   # a [benefits] menu's choices
    assert evaluate(inst, spec, plan, benefits=schedules).objective == pytest.approx(result.objective, abs=1e-7)
