"""Checkpoints are data, never code, and never trusted (issue 22.1), and a
resume says what it did (issue 21.7): OUT/blocks/ and OUT/cells/ hold JSON;
old pickles are never opened; a forged or damaged checkpoint is named on
stderr and its work done again; blocks the time limit stopped are solved on
resume; a resumed result is bit-identical to an uninterrupted one; `solve`
does not replace a result unless told."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import pickle
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.cli import main
from pooling.data.inputs import as_problem
from pooling.data.options import SolveOptions
from pooling.execution import checkpoints as checkpoints_module
from pooling.execution.checkpoints import FORMAT, VERSION, Checkpoints, payload_digest
from pooling.execution.tasks import ExecutionPlan
from pooling.optimise.blocks import block_key, problem_blocks
from pooling.optimise.result import Result, mean_rate, relative_gap
from pooling.studies.sweep import load_sweep, run_sweep
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict

TIMING_KEYS = ("wall_seconds", "timings")
SPEC = spec_dict(pooling={"within": "prefecture"})


def _instance_dict() -> dict:
    """Six prefectures of four counties: six independent blocks under SPEC."""
    return random_instance_dict(5, 24, 6, contribution_range=(200.0, 300.0))


@pytest.fixture(scope="module")
def problem():
    return pooling.instance_from_dict(_instance_dict()), pooling.spec_from_dict(SPEC)


@pytest.fixture(scope="module")
def uninterrupted(problem):
    """The same problem solved in one go, without checkpoints."""
    result = pooling.solve(*problem)
    assert result.status == "optimal" and len(result.groups) == 6
    return _comparable(result)


def _comparable(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in TIMING_KEYS}


def _envelope(path: Path) -> dict:
    return json.loads(path.read_text())


def _rewrite(path: Path, mutate) -> None:
    """Change a checkpoint's payload as a forger would: the hash made to match."""
    envelope = _envelope(path)
    envelope["payload"] = mutate(envelope["payload"])
    envelope["payload_sha256"] = payload_digest(envelope["payload"])
    path.write_text(json.dumps(envelope))


class _Payload:
    """Unpickling it writes `marker`: what a planted checkpoint could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _plant_pickle(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(_Payload(marker)))


def _block_keys(instance, spec) -> list[str]:
    settled, spec = as_problem(instance, spec, "test")
    return [block_key(settled, spec, SolveOptions(), b) for b in problem_blocks(settled, spec)]


# ---------------------------------------------------------------- data, never code

def test_a_planted_block_pickle_is_never_opened(problem, uninterrupted, tmp_path, capsys):
    instance, spec = problem
    marker = tmp_path / "ran"
    keys = _block_keys(instance, spec)
    for key in keys:   # the names a planted file would use (predictable hashes)
        _plant_pickle(tmp_path / "blocks" / f"{key}.pickle", marker)
    resumed = pooling.solve(instance, spec, checkpoint=tmp_path / "blocks", resume=True)
    assert not marker.exists()
    assert _comparable(resumed) == uninterrupted
    err = capsys.readouterr().err
    assert err.count("ignored 6 checkpoint file(s) of the old pickle format") == 1
    assert "resume: 0 of 6 blocks reused" in err


def test_a_planted_cell_pickle_is_never_opened(tmp_path, capsys):
    sweep = load_sweep(_sweep_files(tmp_path))
    marker = tmp_path / "ran"
    for cell in sweep.cells:
        _plant_pickle(tmp_path / "out" / "cells" / f"{cell.key}.pickle", marker)
    rows = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    assert not marker.exists()
    assert [r["status"] for r in rows] == ["optimal", "optimal"]
    assert capsys.readouterr().err.count("old pickle format") == 1
    envelope = _envelope(tmp_path / "out" / "cells" / f"{sweep.cells[0].key}.json")
    assert (envelope["format"], envelope["version"], envelope["kind"], envelope["key"]) == \
        (FORMAT, VERSION, "cell", sweep.cells[0].key)


IN_MEMORY_PICKLE = {"tasks.py"}
"""Modules allowed to pickle: pooling.execution.tasks pickles (fn, shared) in
this process and unpickles it in the worker it spawned, over that worker's
pipe (what multiprocessing does with any argument); nothing from disk."""


def test_nothing_in_the_package_unpickles_or_evaluates():
    """Files are data, never code: no module imports a deserialiser that can
    run code, or calls eval/exec, but for the in-memory hand-over to workers."""
    package = Path(pooling.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                found.append(f"{path.name}:{node.lineno} {node.func.id}()")
            found += [f"{path.name}:{node.lineno} import {n}" for n in names
                      if n.split(".")[0] in ("pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib")
                      and not (n == "pickle" and path.name in IN_MEMORY_PICKLE and path.parent.name == "execution")]
    assert found == []


JSON_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def _bits(data):
    """The data with every float as its bit pattern (0.0 and -0.0 differ)."""
    if isinstance(data, float):
        return ("float", struct.pack("<d", data))
    if isinstance(data, list):
        return [_bits(v) for v in data]
    if isinstance(data, dict):
        return {k: _bits(v) for k, v in data.items()}
    return data


@settings(max_examples=60, deadline=None, database=None)
@given(payload=JSON_DATA)
def test_a_payload_reads_back_exactly(tmp_path_factory, payload):
    folder = tmp_path_factory.mktemp("roundtrip")
    Checkpoints(folder, kind="block").save("k", payload)
    loaded = Checkpoints(folder, resume=True, kind="block").load("k")
    assert _bits(loaded) == _bits(payload)


def test_the_envelope_is_checked(tmp_path, capsys, monkeypatch):
    store = Checkpoints(tmp_path, resume=True, kind="block")
    Checkpoints(tmp_path, kind="block").save("a", {"x": 0.1})
    assert Checkpoints(tmp_path, kind="block").load("a") is None        # not resuming: nothing read
    assert store.load("a") == {"x": 0.1} and store.load("missing") is None
    (tmp_path / "b.json").write_bytes((tmp_path / "a.json").read_bytes())   # a file under another key
    assert store.load("b") is None
    assert Checkpoints(tmp_path, resume=True, kind="cell").load("a") is None
    os.mkfifo(tmp_path / "c.json")                                        # would block a reader
    assert store.load("c") is None
    monkeypatch.setattr(checkpoints_module, "MAX_CHECKPOINT_BYTES", 8)
    assert store.load("a") is None
    err = capsys.readouterr().err
    for reason in ("was written for 'block' 'a', not block b", "was written for 'block' 'a', not cell a",
                   "is not a regular file", "is larger than 8 bytes"):
        assert reason in err
    Checkpoints(tmp_path, kind="block").save("nan", {"x": math.nan})     # JSON cannot hold it: not kept
    assert not (tmp_path / "nan.json").exists() and "not kept" in capsys.readouterr().err


# ---------------------------------------------------------------- never trusted

def _raise_rate(rate_of):
    """A mutation raising the first pool's rate (and its stated maximum
    solvent rate, so the record reads consistently) to rate_of(pool)."""
    def mutate(payload):
        stored = Result.from_dict(payload["result"])
        first = stored.pools[0]
        rate = rate_of(first)
        pricing = dataclasses.replace(first.pricing, max_rate=rate)
        pools = [dataclasses.replace(first, pricing=pricing, rate=rate), *stored.pools[1:]]
        objective = mean_rate(pools)
        bound = max(stored.bound, objective)
        forged = dataclasses.replace(stored, pools=pools, objective=objective, mean_rate=objective, bound=bound,
                                     gap=relative_gap(objective, bound))
        return {"result": forged.to_dict()}
    return mutate


@pytest.mark.parametrize("rate_of", [lambda pool: 0.99, lambda pool: pool.pricing.max_rate + 0.01],
                         ids=["0.99", "max_rate+0.01"])
def test_a_checkpoint_with_a_raised_rate_is_solved_again(problem, uninterrupted, tmp_path, capsys, rate_of):
    instance, spec = problem
    folder = tmp_path / "blocks"
    pooling.solve(instance, spec, checkpoint=folder)
    forged = sorted(folder.glob("*.json"))[2]
    _rewrite(forged, _raise_rate(rate_of))
    capsys.readouterr()
    resumed = pooling.solve(instance, spec, checkpoint=folder, resume=True)
    assert all(p.rate <= p.pricing.max_rate for p in resumed.pools)
    assert _comparable(resumed) == uninterrupted
    assert resumed.timings["resumed_blocks"] == 5
    err = capsys.readouterr().err
    assert f"warning: {forged}: " in err and "above its maximum solvent rate" in err
    assert "resume: 5 of 6 blocks reused" in err and "1 of them had a checkpoint that failed verification" in err


@pytest.mark.parametrize("damage,reason", [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: "\x00\xff garbage", "not valid JSON"),
    (lambda text: "[1, 2, 3]", "not a pooling-checkpoint file"),
    (lambda text: text.replace(f'"version":{VERSION}', '"version":99'), "format version 99"),
    (lambda text: text.replace('"rate":0.', '"rate":0.0'), "payload_sha256"),
    (lambda text: json.dumps({**json.loads(text), "payload": {"result": {"status": "optimal"}},
                              "payload_sha256": payload_digest({"result": {"status": "optimal"}})}),
     "missing field"),
])
def test_a_damaged_checkpoint_is_solved_again(problem, uninterrupted, tmp_path, capsys, damage, reason):
    instance, spec = problem
    folder = tmp_path / "blocks"
    pooling.solve(instance, spec, checkpoint=folder)
    broken = sorted(folder.glob("*.json"))[0]
    broken.write_text(damage(broken.read_text()))
    capsys.readouterr()
    resumed = pooling.solve(instance, spec, checkpoint=folder, resume=True)
    assert _comparable(resumed) == uninterrupted
    err = capsys.readouterr().err
    assert f"warning: {broken}: " in err and reason in err
    assert "resume: 5 of 6 blocks reused" in err


# ---------------------------------------------------------------- resume says what it did

def test_resume_is_bit_identical_and_counts_what_it_reused(problem, uninterrupted, tmp_path, capsys):
    instance, spec = problem
    folder = tmp_path / "blocks"
    first = pooling.solve(instance, spec, checkpoint=folder)
    assert "resumed_blocks" not in first.timings
    for path in sorted(folder.glob("*.json"))[:3]:
        path.unlink()
    capsys.readouterr()
    resumed = pooling.solve(instance, spec, checkpoint=folder, resume=True)
    assert json.dumps(_comparable(resumed)) == json.dumps(uninterrupted)
    assert resumed.timings["resumed_blocks"] == 3
    assert "resume: 3 of 6 blocks reused" in capsys.readouterr().err
    again = pooling.solve(instance, spec, checkpoint=folder, resume=True)
    assert again.timings["resumed_blocks"] == 6 and _comparable(again) == uninterrupted


def test_blocks_stopped_by_the_time_limit_are_solved_on_resume(problem, uninterrupted, tmp_path):
    """--time-limit stops blocks before they start (or mid-way): they are not
    kept as finished, and a resume without a limit solves them all."""
    instance, spec = problem
    folder = tmp_path / "blocks"
    stopped = pooling.solve(instance, spec, checkpoint=folder, time_limit=1e-3)
    unfinished = [g for g in stopped.groups if g["status"] not in ("optimal", "feasible")]
    assert unfinished, "the limit should stop some block"
    assert len(list(folder.glob("*.json"))) == len(stopped.groups) - len(unfinished)
    resumed = pooling.solve(instance, spec, checkpoint=folder, resume=True)
    assert resumed.status == "optimal" and all(g["status"] == "optimal" for g in resumed.groups)
    assert _comparable(resumed) == uninterrupted


def test_a_solve_with_coupled_blocks_keeps_no_checkpoints_and_says_so(tmp_path, capsys):
    instance = pooling.instance_from_dict(_instance_dict())
    spec = pooling.spec_from_dict(spec_dict(pooling={"within": "prefecture"},
                                            equalisation={"max_rate_gap": 0.02, "gap_scope": "instance"}))
    first = pooling.solve(instance, spec, checkpoint=tmp_path)
    assert not list(tmp_path.iterdir())
    resumed = pooling.solve(instance, spec, checkpoint=tmp_path, resume=True)
    assert _comparable(resumed) == _comparable(first) and resumed.timings["resumed_blocks"] == 0
    assert "share one rate window and keep no checkpoints; all 6 are solved again" in capsys.readouterr().err


# ---------------------------------------------------------------- sweeps

def _sweep_files(tmp_path: Path) -> Path:
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_instance_dict()))
    (tmp_path / "spec.toml").write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\n'
                                        'level = 0.99\nreserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')
    path = tmp_path / "sweep.toml"
    path.write_text('instances = ["tiny.json"]\nspec = "spec.toml"\n[grid]\n"solvency.level" = [0.99, 0.995]\n')
    return path


def _set_row(field, value):
    def mutate(payload):
        payload["row"][field] = value
        return payload
    return mutate


def _set_rate(value):
    def mutate(payload):
        payload["plan"][0]["rate"] = value
        payload["row"].update(min_rate=value, max_rate=value, mean_rate=value, objective=value)
        return payload
    return mutate


@pytest.mark.parametrize("mutate,reason", [
    (_set_row("objective", 0.999), "objective 0.999 does not match its plan re-priced"),
    (_set_row("counties_worse_off", 3), "counties_worse_off 3 does not match"),
    (_set_rate(0.99), "above its maximum solvent rate"),
    (lambda payload: {"row": payload["row"], "plan": payload["plan"][:1] if len(payload["plan"]) > 1 else
                      [{**payload["plan"][0], "counties": payload["plan"][0]["counties"][:1]}]}, "in no pool"),
])
def test_a_forged_sweep_cell_is_solved_again(tmp_path, capsys, mutate, reason):
    sweep = load_sweep(_sweep_files(tmp_path))
    out = tmp_path / "out"
    first = run_sweep(sweep, out, ExecutionPlan())
    forged = out / "cells" / f"{sweep.cells[0].key}.json"
    _rewrite(forged, mutate)
    capsys.readouterr()
    rows = run_sweep(sweep, out, ExecutionPlan())
    assert [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "wall_seconds"} for r in first]
    assert rows[1] == first[1]   # reused: the same row, wall time included
    err = capsys.readouterr().err
    assert f"warning: {forged}: " in err and reason in err
    assert "sweep: 1 of 2 cells reused" in err and "1 of them had a checkpoint that failed verification" in err


def test_a_sweep_cell_checkpoint_holds_its_row_and_plan(tmp_path):
    sweep = load_sweep(_sweep_files(tmp_path))
    rows = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    payload = _envelope(tmp_path / "out" / "cells" / f"{sweep.cells[0].key}.json")["payload"]
    assert payload["row"] == json.loads(json.dumps(rows[0]))
    assert sorted(c for pool in payload["plan"] for c in pool["counties"]) == ["900101", "900102", "900103"]


# ---------------------------------------------------------------- the CLI never replaces a result silently

def _cli_files(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "i.json").write_text(json.dumps(_instance_dict()))
    (tmp_path / "s.toml").write_text('[pooling]\nscope = "optimise"\nwithin = "prefecture"\n[solvency]\n'
                                     'measure = "cvar"\nlevel = 0.99\nreserve_share = 0.5\n[rates]\n'
                                     'min = 0.3\nmax = 0.9\n')
    return str(tmp_path / "i.json"), str(tmp_path / "s.toml")


def test_solve_never_replaces_a_complete_result_by_an_incomplete_one_unless_told(tmp_path, capsys):
    inst, spec = _cli_files(tmp_path)
    out = tmp_path / "out"
    args = ["solve", inst, "--spec", spec, "--out", str(out), "--workers", "1", "--quiet"]
    assert main(args) == 0
    written = (out / "result.json").read_bytes()
    capsys.readouterr()
    # A run cut short keeps the complete result and writes its own beside it.
    assert main(args + ["--time-limit", "0.001"]) in (3, 4)
    err = capsys.readouterr().err
    assert f"warning: kept {out / 'result.json'}, which holds a complete plan (status optimal)" in err
    assert "--resume" in err and "--overwrite" in err and "Traceback" not in err
    assert (out / "result.json").read_bytes() == written
    assert json.loads((out / "result.incomplete.json").read_text())["status"] not in ("optimal", "feasible")
    # A complete run replaces it and says so.
    assert main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "resume: 6 of 6 blocks reused" in err and f"replaced {out / 'result.json'} (it held status optimal)" in err
    resumed = json.loads((out / "result.json").read_text())
    assert resumed["timings"]["resumed_blocks"] == 6
    assert {k: v for k, v in resumed.items() if k not in TIMING_KEYS} == \
        {k: v for k, v in json.loads(written).items() if k not in TIMING_KEYS}
    # --overwrite replaces it by an incomplete one, with a warning.
    assert main(args + ["--overwrite", "--time-limit", "0.001"]) in (3, 4)
    assert f"warning: replaced {out / 'result.json'}, which held a complete plan (status optimal), by this " \
           f"run's result with status" in capsys.readouterr().err
    assert json.loads((out / "result.json").read_text())["status"] not in ("optimal", "feasible")


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    inst, spec = _cli_files(tmp_path)
    assert main(["solve", inst, "--spec", spec, "--out", str(tmp_path / "o"), "--resume", "--overwrite"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

