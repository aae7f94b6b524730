"""The Python API checks its arguments: paths are loaded, wrong types raise
InputError naming the argument (never a raw AttributeError or TypeError)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pooling
from pooling import InputError, SolveOptions, instance_from_dict, spec_from_dict
from tests.factories import INSTANCES, MODELS, spec_dict, tiny_instance_dict

PLAN_RESULT = {"pools": [{"counties": ["900101", "900102", "900103"], "rate": 0.5}]}


@pytest.fixture(scope="module")
def inst():
    return instance_from_dict(tiny_instance_dict())


@pytest.fixture(scope="module")
def spec():
    return spec_from_dict(spec_dict())


def test_solve_accepts_paths():
    by_path = pooling.solve(str(INSTANCES / "tongliao.json"), MODELS / "default.toml")
    loaded = pooling.solve(pooling.load_instance(INSTANCES / "tongliao.json"),
                           pooling.load_spec(MODELS / "default.toml"))
    assert by_path.status == "optimal"
    assert by_path.objective == loaded.objective


@pytest.mark.parametrize("bad,match", [
    ({"counties": []}, "instance must be a pooling.Instance.*dict.*instance_from_dict"),
    (42, "instance must be a pooling.Instance.*int"),
])
def test_solve_rejects_a_wrong_instance(bad, match, spec):
    with pytest.raises(InputError, match=match):
        pooling.solve(bad, spec)


def test_solve_rejects_a_wrong_spec(inst):
    with pytest.raises(InputError, match=r"spec must be a pooling.Spec.*dict.*spec_from_dict"):
        pooling.solve(inst, {"pooling": {}})


def test_missing_path_is_an_input_error(spec):
    with pytest.raises(InputError):
        pooling.solve("no/such/instance.json", spec)


def test_options_must_be_solve_options(inst, spec):
    with pytest.raises(InputError, match=r"options must be a pooling.SolveOptions.*dict"):
        pooling.solve(inst, spec, options={"time_limit": 60})


@pytest.mark.parametrize("kwargs,match", [
    ({"time_limit": "60"}, "time_limit"),
    ({"threads": "2"}, "threads"),
    ({"time_limit": -1.0}, "time_limit"),
    ({"time_limt": 60}, "unknown solver option time_limt; known: time_limit"),
])
def test_keyword_solver_options_are_checked(kwargs, match, inst, spec):
    with pytest.raises(InputError, match=match):
        pooling.solve(inst, spec, **kwargs)


def test_keyword_solver_options_override_options(inst, spec):
    result = pooling.solve(inst, spec, options=SolveOptions(threads=1), random_seed=3, time_limit=30)
    assert result.solver_options["random_seed"] == 3
    assert result.solver_options["time_limit"] == 30


@pytest.mark.parametrize("kwargs,match", [
    ({"years": 2.5}, "years must be an integer.*2.5"),
    ({"years": 0}, r"years must be in \[1, 100\]"),
    ({"years": 101}, r"years must be in \[1, 100\]"),
    ({"years": True}, "years must be an integer"),
    ({"seed": -1}, "seed must be in"),
    ({"scenarios": 50}, "scenarios must be in"),
    ({"stress": 3}, "stress must be a scenario name or a list"),
    ({"stress": ["epidemic", 1]}, "stress must be a scenario name or a list"),
    ({"reserve_share": 1.5}, r"reserve_share must be a number in \[0, 1\]"),
])
def test_simulate_arguments_are_checked(kwargs, match, inst, spec):
    with pytest.raises(InputError, match=match):
        pooling.simulate(inst, spec, PLAN_RESULT, **kwargs)


def test_simulate_takes_one_stress_name_as_a_string(inst, spec):
    one = pooling.simulate(inst, spec, PLAN_RESULT, scenarios=200, stress="epidemic").to_dict()
    listed = pooling.simulate(inst, spec, PLAN_RESULT, scenarios=200, stress=["epidemic"]).to_dict()
    assert one["stress"] == ["epidemic"]
    assert one["pools"] == listed["pools"]
    with pytest.raises(InputError, match='unknown stress scenario "plague"'):
        pooling.simulate(inst, spec, PLAN_RESULT, scenarios=200, stress="plague")


def test_evaluate_subsidy_must_be_a_bool(inst, spec):
    with pytest.raises(InputError, match="subsidy must be True or False, got 'yes'"):
        pooling.evaluate(inst, spec, [list(inst.ids)], subsidy="yes")


@pytest.mark.parametrize("plan,match", [
    ({"pools": [["900101"]]}, "pools must be a non-empty list"),
    ([], "pools must be a non-empty list"),
    (["900101", "900102", "900103"], r"pools\[0\] must be a non-empty list"),
    ([[900101, 900102, 900103]], "county ids are strings"),
    ([["900101"], ["900102"]], "counties are in no pool"),
    ([["900101", "900101"], ["900102", "900103"]], "each county belongs to exactly one pool"),
    (None, "pools must be a non-empty list"),
])
def test_evaluate_rejects_malformed_plans(plan, match, inst, spec):
    with pytest.raises(InputError, match=match):
        pooling.evaluate(inst, spec, plan)


def test_evaluate_reads_a_plan_file(tmp_path: Path, inst, spec):
    path = tmp_path / "plan.json"
    path.write_text('{"pools": [["900101", "900102", "900103"]]}')
    assert pooling.evaluate(inst, spec, path).objective == \
        pooling.evaluate(inst, spec, [list(inst.ids)]).objective


@pytest.mark.parametrize("loader,hint", [(pooling.load_instance, "instance_from_dict"),
                                         (pooling.load_spec, "spec_from_dict")])
def test_loaders_point_dicts_to_the_from_dict_functions(loader, hint):
    with pytest.raises(InputError, match=f"got dict; for a dict use pooling.{hint}"):
        loader({"name": "x"})
    with pytest.raises(InputError, match="must be a path"):
        loader(3.5)
