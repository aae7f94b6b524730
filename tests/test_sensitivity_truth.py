"""`simulate --truth` (simulation.truth): years drawn from a scenario other
than the one the plan was priced on; promised against true budget exhaustion."""

from __future__ import annotations

import json

import pytest

from pooling.cli import main
from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import load_spec, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError
from pooling.simulation.stress_test import simulate, wilson_interval
from pooling.simulation.truth import truth_scenario
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict

TONGLIAO = INSTANCES / "tongliao.json"
DEFAULT = MODELS / "default.toml"
SHOCKS_X15 = "parameters.frequency_shock_cv=x1.5,parameters.regional_shocks.*.cv=x1.5"
RATE = 0.5998906410735942
"""Tongliao pooled whole under the default spec (solve's rate on the bundled file, with its induced
utilisation; priced again here, not read from a file)."""
PLAN = {"pools": [{"counties": ["150502", "150521", "150522", "150523", "150524", "150525", "150526", "150581"],
                   "rate": RATE}]}


@pytest.fixture(scope="module")
def problem():
    return load_instance(TONGLIAO), load_spec(DEFAULT)


@pytest.fixture(scope="module")
def small():
    """Three small counties with national and regional shocks, pooled whole at its max solvent rate."""
    data = random_instance_dict(5, 3)
    data["parameters"].update(frequency_shock_cv=0.05, regional_shocks={"prefecture": {"weight": 0.3, "cv": 0.1},
                                                                        "county": {"weight": 0.3, "cv": 0.16}})
    instance = instance_from_dict(data, source="small.json")
    spec = spec_from_dict(spec_dict(), source="s.toml")
    rate = PoolPricer(instance, spec).price(instance.ids).max_rate
    return instance, spec, {"pools": [{"counties": list(instance.ids), "rate": min(max(rate, 0.0), 1.0)}]}


def test_a_truth_that_changes_nothing_draws_the_same_years_and_promises_what_it_delivers(small):
    instance, spec, plan = small
    plain = simulate(instance, spec, plan, years=2, scenarios=2000, seed=3).to_dict()
    same = simulate(instance, spec, plan, years=2, scenarios=2000, seed=3,
                    truth="parameters.frequency_shock_cv=x1").to_dict()
    assert "truth" not in plain and "exhaustion_probability_truth" not in plain["pools"][0]
    pool = same["pools"][0]
    assert pool["exhaustion_probability_truth"] == pool["exhaustion_probability_promised"]
    assert pool["ruin_probability_by_year"] == plain["pools"][0]["ruin_probability_by_year"]
    assert same["truth"]["from"] == "inline"
    assert same["provenance"]["instance_sha256"] == plain["provenance"]["instance_sha256"]


def test_shock_cvs_half_as_large_again_break_the_promise_as_the_issue_says(problem):
    instance, spec = problem
    assert PoolPricer(instance, spec).price(PLAN["pools"][0]["counties"]).max_rate == RATE   # the plan is solve's
    n = 20_000
    data = simulate(instance, spec, PLAN, years=1, scenarios=n, seed=1, truth=SHOCKS_X15).to_dict()
    pool = data["pools"][0]
    # the issue's 0.39% -> 3.6% (3.7% with the bundled induced utilisation), and README
    # "Sensitivity and mis-specification" (4 decimals)
    assert round(pool["exhaustion_probability_promised"], 4) == 0.0038
    assert round(pool["exhaustion_probability_truth"], 4) == 0.0368
    low, high = wilson_interval(round(pool["ruin_probability_by_year"][0] * n), n)
    assert low <= pool["exhaustion_probability_truth"] <= high     # the simulation estimates the exact truth
    assert not (low <= pool["exhaustion_probability_promised"] <= high)


def test_a_spec_scenario_by_name_is_the_same_truth_as_inline(small):
    instance, spec, plan = small
    named = spec_from_dict(
        {**spec.to_dict(),
         "uncertainty": {"method": "robust", "scenarios": [{"name": "shocks x1.5", "scale": {
             "parameters.frequency_shock_cv": 1.5, "parameters.regional_shocks.*.cv": 1.5}}]}}, source="u.toml")
    a = simulate(instance, named, plan, years=1, scenarios=500, truth="shocks x1.5").to_dict()
    b = simulate(instance, spec, plan, years=1, scenarios=500, truth=SHOCKS_X15).to_dict()
    assert a["truth"]["from"] == "spec [uncertainty]"
    assert a["pools"][0]["exhaustion_probability_truth"] == b["pools"][0]["exhaustion_probability_truth"]
    assert a["pools"][0]["ruin_probability"] == b["pools"][0]["ruin_probability"]


@pytest.mark.parametrize("truth, message", [
    ("shocks", 'no such scenario in s.toml'),
    ("parameters.frequency_shock_cv=xx", "neither xS"),
    ("parameters.frequency_shock_cv", "no such scenario"),
    ("parameters.frequency_shock_cv=1.5,parameters.x", "expected PATH=xS or PATH=V"),
    ("parameters.frequency_shock_cv=x20", "frequency_shock_cv must be"),
    ("parameters.nothing=x2", "names no numeric field"),
])
def test_bad_truths_are_input_errors(small, truth, message):
    instance, spec, plan = small
    with pytest.raises(InputError, match=message):
        simulate(instance, spec, plan, years=1, scenarios=100, truth=truth)


def test_bad_truth_on_the_command_line_exits_2_and_writes_nothing(tmp_path, capsys):
    result = tmp_path / "result.json"
    result.write_text(json.dumps(PLAN))
    out = tmp_path / "out"
    code = main(["simulate", str(TONGLIAO), "--spec", str(DEFAULT), "--result", str(result), "--scenarios", "100",
                 "--truth", "shocks x9", "--out", str(out)])
    assert code == 2
    assert "--truth" in capsys.readouterr().err
    assert not (out / "stress.json").exists()


def test_truth_names_come_before_inline_reading(small):
    _, spec, _ = small
    odd = spec_from_dict({**spec.to_dict(), "uncertainty": {"method": "robust", "scenarios": [
        {"name": "a=x2", "scale": {"parameters.frequency_shock_cv": 0.5}}]}}, source="u.toml")
    scenario, origin = truth_scenario("a=x2", odd)
    assert origin == "spec [uncertainty]" and scenario.changes[0].value == 0.5
