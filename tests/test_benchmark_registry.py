"""The benchmark harness's per-instance checks (benchmarks/registry.py, harness.py),
without running the harness: which instances the scenario pair can run on, and how
a fixed baseline plan that is only partly solvent is recorded."""

import sys
from pathlib import Path

import pytest

from pooling import load_instance
from pooling.economics.loss_scenarios import sample_scenarios
from pooling.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402
import registry  # noqa: E402

ENTRY = {entry.name: entry for entry in registry.INSTANCES}


def test_scenario_pair_is_skipped_with_its_reason_where_scenarios_cannot_express_the_network():
    """Tongliao's city hospitals are approved by all 8 funds: sample_scenarios refuses
    the instance, and the registry says so before sampling instead of crashing."""
    tongliao = load_instance(ROOT / "instances" / "tongliao.json")
    reason = registry.scenario_pair_unsupported(tongliao)
    assert reason is not None and "city:150500" in reason
    with pytest.raises(InputError, match="cannot express"):
        sample_scenarios(tongliao, 2, 0)
    for method in registry.SCENARIO_METHODS:
        assert registry.skip_reason(ENTRY["tongliao"], "contiguous", method,
                                    scenarios_unsupported=reason) == reason
    assert registry.skip_reason(ENTRY["tongliao"], "contiguous", "set_partitioning",
                                scenarios_unsupported=reason) is None


def test_random_instances_keep_the_scenario_pair():
    small = ENTRY["r6"].load()
    assert registry.scenario_pair_unsupported(small) is None
    assert sample_scenarios(small, 2, 0).home.shape == (6, 2)   # and sampling agrees
    assert registry.skip_reason(ENTRY["r6"], "contiguous", "compact") is None


def test_a_partly_solvent_status_quo_is_an_infeasible_baseline_without_a_value():
    """On r6 one county alone has no solvent rate: solve says "partial" and values the
    other five; the baseline (every county alone) is infeasible and has no objective."""
    ctx = {"instance": ENTRY["r6"].load(), "spec": registry.build_spec("contiguous"),
           "options": harness.SolveOptions(time_limit=20)}
    record = harness.RUNNERS["status_quo"](ctx)
    assert record["library_status"] == "partial"
    assert record["status"] == "infeasible" and record["objective"] is None
