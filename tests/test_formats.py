"""Files keep their meaning: format versions (data.formats), a result as a plan,
provenance paths and `pooling --version` (issue 21, items 6, 8, 9)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import warnings
from pathlib import Path

import pytest

import pooling
from pooling.cli import DEFAULT_INSTANCE, DEFAULT_SPEC, main
from pooling.data.formats import CURRENT_VERSIONS, FORMAT_FIELD, format_tag
from pooling.data.generate import generate_instance
from pooling.data.instance import ADMIN_FINANCING_V1, instance_from_dict, load_instance
from pooling.data.plan import read_plan
from pooling.data.provenance import provenance, recorded_path
from pooling.data.spec import load_spec, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.errors import FormatWarning, InputError
from pooling.optimise.result import Evaluation, Result
from pooling.optimise.solve import evaluate, solve
from tests.factories import INSTANCES, MODELS, REPO, spec_dict, tiny_instance_dict
from tests.test_cli import _toml, _write_inputs
from tests.tolerances import ROUNDING

SAME_OBJECTIVE = ROUNDING
"""evaluate of a solved plan gives the pools the rates solve gave them through
the same MILP (docs/model.md): equal to rounding."""


def _v1_instance() -> dict:
    """An instance as written before format tags and admin_financing: no
    `format`, no `admin_financing`; contributions low enough that no county's
    rate alone reaches rates.max = 1 under either reading."""
    data = tiny_instance_dict()
    del data["parameters"]["admin_financing"]
    for county in data["counties"]:
        county["contribution_per_capita"] *= 0.7
    return data


def data_fixed_cost(data: dict) -> float:
    return data["parameters"]["admin_fixed_per_fund"]


def _rates_alone(data: dict, source: str = "old.json") -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FormatWarning)
        instance = instance_from_dict(data, source=source)
    pricer = PoolPricer(instance, spec_from_dict(spec_dict(rates={"min": 0.0, "max": 1.0})))
    return [pricer.price([c.id]).max_rate for c in instance.counties]


# ------------------------------------------------------------------ item 6: reading older versions
def test_an_unversioned_instance_keeps_the_meaning_it_was_written_with():
    """The held-out file's bug: without admin_financing the fund paid the
    running costs; read today, the rate must not silently rise."""
    old = _v1_instance()
    with pytest.warns(FormatWarning, match=r'old\.json: no "format" field.*pooling\.instance/1.*'
                                           r'admin_financing means "risk_fund"'):
        instance = instance_from_dict(old, source="old.json")
    assert instance.parameters.admin_financing == ADMIN_FINANCING_V1 == "risk_fund"
    assert instance.parameters.fund_fixed_cost == data_fixed_cost(old) > 0

    explicit = copy.deepcopy(old)
    explicit["parameters"]["admin_financing"] = "risk_fund"
    current = copy.deepcopy(old) | {FORMAT_FIELD: format_tag("instance")}
    assert _rates_alone(old) == _rates_alone(explicit)
    assert all(o < c for o, c in zip(_rates_alone(old), _rates_alone(current))), \
        "version 2's default moves the running costs off the fund: rates rise there, not in version 1"


def test_a_version_1_file_that_names_its_financing_reads_silently():
    data = _v1_instance()
    data["parameters"]["admin_financing"] = "county_budget"
    with warnings.catch_warnings():
        warnings.simplefilter("error", FormatWarning)
        assert instance_from_dict(data).parameters.admin_financing == "county_budget"
        tagged = _v1_instance() | {FORMAT_FIELD: "pooling.instance/1"}
    with pytest.warns(FormatWarning):
        assert instance_from_dict(tagged).parameters.admin_financing == "risk_fund"


def test_cli_reads_an_old_instance_as_written_and_says_so(tmp_path, capsys):
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_v1_instance()))
    explicit = tmp_path / "explicit.json"
    data = _v1_instance()
    data["parameters"]["admin_financing"] = "risk_fund"
    explicit.write_text(json.dumps(data))
    spec = tmp_path / "spec.toml"
    spec.write_text(_toml(spec_dict()))
    assert main(["check", str(old), "--spec", str(spec)]) == 0
    printed = capsys.readouterr()
    assert printed.err.startswith(f'warning: {old}: no "format" field')
    assert f'"{FORMAT_FIELD}": "{format_tag("instance")}"' in printed.err, "the message says how to update"
    assert main(["check", str(explicit), "--spec", str(spec)]) == 0
    again = capsys.readouterr()
    assert again.err == ""
    rates = re.compile(r"^  9\d+ .*$", re.M)
    assert rates.findall(printed.out) == rates.findall(again.out)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """Inputs and every output of the tiny instance: solve, evaluate, simulate."""
    folder = tmp_path_factory.mktemp("written")
    inst, spec = _write_inputs(folder)
    out = folder / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out), "--compare"]) == 0
    assert main(["evaluate", str(inst), "--spec", str(spec), "--plan", str(out / "result.json"),
                 "--out", str(out)]) == 0
    assert main(["simulate", str(inst), "--spec", str(spec), "--result", str(out / "result.json"),
                 "--scenarios", "200", "--out", str(out)]) in (0, 3)
    assert main(["generate", "--counties", "6", "--prefectures", "2", "--out", str(out / "gen.json")]) == 0
    return folder


@pytest.mark.parametrize("kind", ["instance", "spec", "plan", "result", "evaluation", "stress"])
def test_a_newer_version_is_refused_with_exit_2(tmp_path, capsys, written, kind):
    shutil.copytree(written, tmp_path, dirs_exist_ok=True)
    inst, spec, out = tmp_path / "tiny.json", tmp_path / "spec.toml", tmp_path / "out"
    newer = format_tag(kind, CURRENT_VERSIONS[kind] + 1)
    capsys.readouterr()
    if kind == "instance":
        inst.write_text(json.dumps(json.loads(inst.read_text()) | {FORMAT_FIELD: newer}))
    elif kind == "spec":
        spec.write_text(f'{FORMAT_FIELD} = "{newer}"\n' + spec.read_text())
    elif kind == "plan":
        (tmp_path / "plan.json").write_text(json.dumps({FORMAT_FIELD: newer,
                                                        "pools": [["900101", "900102", "900103"]]}))
    else:
        path = out / f"{kind}.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {FORMAT_FIELD: newer}))
    commands = {
        "instance": ["check", str(inst)],
        "spec": ["check", str(inst), "--spec", str(spec)],
        "plan": ["evaluate", str(inst), "--spec", str(spec), "--plan", str(tmp_path / "plan.json"),
                 "--out", str(tmp_path / "o")],
        "result": ["simulate", str(inst), "--spec", str(spec), "--result", str(out / "result.json"),
                   "--out", str(tmp_path / "o")],
        "evaluation": ["report", str(out / "result.json"), "--instance", str(inst),
                       "--evaluation", str(out / "evaluation.json"), "--out", str(tmp_path / "o")],
        "stress": ["report", str(out / "result.json"), "--instance", str(inst),
                   "--stress", str(out / "stress.json"), "--out", str(tmp_path / "o")],
    }[kind]
    assert main(commands) == 2
    err = capsys.readouterr().err
    assert f'{FORMAT_FIELD} "{newer}" is newer than this pooling reads (up to {format_tag(kind)})' in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir()), "nothing written"


@pytest.mark.parametrize("value, message", [
    ("pooling.result/1", 'says this is a result.json (pooling solve), not an instance file'),
    ("pooling.instance/0", 'format must be "pooling.instance/N", N a format version'),
    ("instance/2", 'format must be "pooling.instance/N"'),
    (2, "got 2"),
    (None, "got null"),
])
def test_a_wrong_or_malformed_tag_is_named(value, message):
    with pytest.raises(InputError, match=re.escape(message)) as err:
        instance_from_dict(tiny_instance_dict() | {FORMAT_FIELD: value}, source="f.json")
    assert str(err.value).startswith("f.json: ")


def test_a_spec_of_another_kind_is_refused():
    with pytest.raises(InputError, match=r"s\.toml: format \"pooling\.instance/2\" says this is an instance file, "
                                         r"not a spec file"):
        spec_from_dict(spec_dict() | {FORMAT_FIELD: "pooling.instance/2"}, source="s.toml")


# ------------------------------------------------------------------ item 6: writers write the current version
def test_every_writer_writes_the_current_version(written):
    out = written / "out"
    for name, kind in (("result.json", "result"), ("evaluation.json", "evaluation"), ("stress.json", "stress"),
                       ("gen.json", "instance")):
        data = json.loads((out / name).read_text())
        assert next(iter(data)) == FORMAT_FIELD and data[FORMAT_FIELD] == format_tag(kind), name
    result = json.loads((out / "result.json").read_text())
    assert result["spec"][FORMAT_FIELD] == format_tag("spec"), "the resolved spec is a versioned spec"


def test_bundled_files_carry_the_current_version():
    for path in sorted(INSTANCES.glob("*.json")):
        assert json.loads(path.read_text())[FORMAT_FIELD] == format_tag("instance"), path.name
    for path in sorted(MODELS.glob("*.toml")):
        assert path.read_text().count(f'{FORMAT_FIELD} = "{format_tag("spec")}"\n') == 1, path.name
    for path in sorted((REPO / "docs" / "examples").glob("*.json")):   # plans, and a small instance
        assert json.loads(path.read_text())[FORMAT_FIELD] in (format_tag("plan"), format_tag("instance")), path.name
    for builder in ("build.py", "build_tongliao.py"):   # they write the bundled instances
        assert f'"{FORMAT_FIELD}": "{format_tag("instance")}",' in (INSTANCES / builder).read_text(), builder


# ------------------------------------------------------------------ item 6: round trips
def test_round_trips_keep_content_and_version(tmp_path):
    instance = instance_from_dict(tiny_instance_dict(), source="t.json")
    spec = spec_from_dict(spec_dict())
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict() and again.to_dict()[FORMAT_FIELD] == format_tag("spec")
    result = solve(instance, spec)
    data = json.loads(json.dumps(result.to_dict()))
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    assert pooling.read_result(path).to_dict() == data
    evaluation = json.loads(json.dumps(evaluate(instance, spec, [[c] for c in instance.ids]).to_dict()))
    assert Evaluation.from_dict(evaluation).to_dict() == evaluation
    generated = generate_instance(5, 1, 3)
    assert instance_from_dict(json.loads(json.dumps(generated))).counties


def test_an_untagged_result_reads_as_version_1_and_gains_the_tag(tmp_path):
    """result.json files written before tags: version 1, read as they are."""
    instance = instance_from_dict(tiny_instance_dict(), source="t.json")
    data = json.loads(json.dumps(solve(instance, spec_from_dict(spec_dict())).to_dict()))
    old = {k: v for k, v in data.items() if k != FORMAT_FIELD}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert pooling.read_result(path).to_dict() == data
    with pytest.raises(InputError, match=r"'bound'"):
        Result.from_dict({k: v for k, v in old.items() if k != "bound"}, source="old.json")


# ------------------------------------------------------------------ item 8: a result is a plan
def test_evaluate_a_solved_result_gives_the_same_objective(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert len(result["pools"]) >= 1
    for name, plan in (("tagged", result), ("untagged", {k: v for k, v in result.items() if k != FORMAT_FIELD})):
        (tmp_path / f"{name}.json").write_text(json.dumps(plan))
        assert main(["evaluate", str(inst), "--spec", str(spec), "--plan", str(tmp_path / f"{name}.json"),
                     "--out", str(tmp_path / name)]) == 0, capsys.readouterr().err
        evaluation = json.loads((tmp_path / name / "evaluation.json").read_text())
        assert evaluation["objective"] == pytest.approx(result["objective"], abs=SAME_OBJECTIVE)
        assert [p["rate"] for p in evaluation["pools"]] == pytest.approx([p["rate"] for p in result["pools"]],
                                                                        abs=SAME_OBJECTIVE)
    # an evaluation is a plan too
    assert main(["evaluate", str(inst), "--spec", str(spec), "--plan", str(tmp_path / "tagged" / "evaluation.json"),
                 "--out", str(tmp_path / "again")]) == 0


def test_a_result_with_contracts_is_a_plan_with_those_contracts(tmp_path):
    from tests.test_contracts import _small, load
    spec = spec_from_dict(spec_dict(objective={"kind": "max_mean_effective_rate"}, pooling={"within": "none"},
                                    rates={"min": 0.05}))
    instance = load(_small(44, 0.0, 0.8))
    result = solve(instance, spec)
    assert result.contracts
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result.to_dict()))
    pools, contracts = read_plan(path, instance)
    assert sorted(map(sorted, pools)) == sorted(sorted(p.pricing.counties) for p in result.pools)
    assert contracts == [(frozenset(c["counties"]), c["option"]) for c in result.contracts]
    again = evaluate(instance, spec, path)
    assert again.objective == pytest.approx(result.objective, abs=SAME_OBJECTIVE)
    assert again.contracts == result.contracts


def test_a_result_without_a_plan_is_not_a_plan(tmp_path):
    instance = instance_from_dict(tiny_instance_dict(), source="t.json")
    path = tmp_path / "r.json"
    path.write_text(json.dumps({FORMAT_FIELD: format_tag("result"), "status": "infeasible", "pools": []}))
    with pytest.raises(InputError, match=r'r\.json: the result has no plan \(status "infeasible"\)'):
        read_plan(path, instance)
    path.write_text(json.dumps({FORMAT_FIELD: format_tag("plan"), "pools": [["900101", "900102", "900103"]],
                                "bound": 0.5}))
    with pytest.raises(InputError, match="bound is not a known field"):
        read_plan(path, instance)


# ------------------------------------------------------------------ item 9: provenance and --version
def test_provenance_records_typed_and_defaulted_paths_alike(monkeypatch):
    monkeypatch.chdir(REPO)
    typed = provenance(load_instance("instances/tongliao.json"), load_spec("./models/../models/default.toml"),
                       None, None)
    defaulted = provenance(load_instance(DEFAULT_INSTANCE), load_spec(DEFAULT_SPEC), None, None)
    assert typed == defaulted
    assert (typed["instance"], typed["spec"]) == ("instances/tongliao.json", "models/default.toml")


def test_provenance_paths_outside_the_working_folder_are_absolute(tmp_path, monkeypatch):
    inst, _ = _write_inputs(tmp_path)
    (tmp_path / "work").mkdir()
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.chdir(tmp_path / "work")
    real = str(Path(os.path.realpath(tmp_path)) / "tiny.json")
    assert recorded_path("../tiny.json") == recorded_path(str(inst)) == real
    monkeypatch.chdir(tmp_path)
    assert recorded_path("link/tiny.json") == recorded_path(str(inst)) == "tiny.json"
    assert recorded_path("<memory>") == "<memory>"


def test_cli_solve_records_the_default_inputs_as_if_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    runs = {}
    for name, args in (("defaulted", []), ("typed", [str(DEFAULT_INSTANCE.relative_to(REPO)), "--spec",
                                                     str(DEFAULT_SPEC.relative_to(REPO))])):
        assert main(["solve", *args, "--quiet", "--out", str(tmp_path / name)]) == 0
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())["provenance"]
    assert runs["defaulted"] == runs["typed"]
    assert runs["typed"]["instance"] == "instances/tongliao.json"


def test_version_prints_the_versions_and_exits_0(capsys):
    assert main(["--version"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"pooling {pooling_version()} (Python ")
    for library in ("numpy", "scipy", "pyomo", "highspy"):
        assert f"{library} " in printed
    assert printed.count("\n") == 1


def pooling_version() -> str:
    from importlib import metadata
    return metadata.version("pooling")
