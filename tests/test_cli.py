"""The command line: exit codes, files written (or not), readable errors, determinism."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pooling.cli import main
from tests.factories import spec_dict, tiny_instance_dict

TIMING_KEYS = ("wall_seconds", "timings")


def _write_inputs(tmp_path, instance=None, spec_text=None):
    inst = tmp_path / "tiny.json"
    inst.write_text(json.dumps(instance or tiny_instance_dict()))
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_text or _toml(spec_dict(pooling={"contiguous": True})))
    return inst, spec


def _toml(data: dict) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _strip_timings(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in TIMING_KEYS}


def test_solve_writes_result_and_table(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "optimal"
    printed = capsys.readouterr().out
    assert "max rate" in printed and "County 900101 (900101)" in printed
    assert not list(out.glob(".*.tmp")), "temporary file left behind"


def test_solve_is_deterministic(tmp_path):
    inst, spec = _write_inputs(tmp_path)
    runs = []
    for name in ("a", "b"):
        assert main(["solve", str(inst), "--spec", str(spec), "--out", str(tmp_path / name)]) == 0
        runs.append(_strip_timings(json.loads((tmp_path / name / "result.json").read_text())))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("breakage,message", [
    (lambda d: d["counties"][0].update(migrant_share=1.5),
     'county "900101": migrant_share must be in [0, 1), got 1.5'),
    (lambda d: d["counties"][1].update(adjacent=["900101"]), "adjacency must be symmetric"),
])
def test_bad_instance_exit_2_no_traceback_nothing_written(tmp_path, capsys, breakage, message):
    data = tiny_instance_dict()
    breakage(data)
    inst, spec = _write_inputs(tmp_path, instance=data)
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {inst}: ")
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_bad_spec_exit_2(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path, spec_text="[pooling]\nscope = 'nation'\n")
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert f"{spec}: pooling.scope must be one of" in capsys.readouterr().err


def test_infeasible_exit_3_with_result(tmp_path, capsys):
    data = tiny_instance_dict()
    data["counties"][2]["contribution_per_capita"] = 120.0
    inst, spec = _write_inputs(tmp_path, instance=data, spec_text=_toml(spec_dict("county")))
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == 3
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "partial"   # the other two counties keep their plans
    assert any("900103" in line for line in result["diagnosis"])


def test_evaluate_and_bad_plan(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"pools": [["900101", "900102", "900103"]]}))
    out = tmp_path / "out"
    assert main(["evaluate", str(inst), "--spec", str(spec), "--plan", str(plan), "--out", str(out)]) == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["pools"][0]["counties"] == ["900101", "900102", "900103"]
    plan.write_text(json.dumps({"pools": [["900101", "900102"], ["900102", "900103"]]}))
    out2 = tmp_path / "out2"
    assert main(["evaluate", str(inst), "--spec", str(spec), "--plan", str(plan), "--out", str(out2)]) == 2
    assert 'county "900102" is in pools[0] and pools[1]' in capsys.readouterr().err
    assert not out2.exists()


def test_check_prints_standalone_rates(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    assert main(["check", str(inst), "--spec", str(spec)]) == 0
    printed = capsys.readouterr().out
    assert "valid instance" in printed and "900103" in printed


def test_console_script_runs_as_module(tmp_path):
    """The installed entry point's module runs in a subprocess (real exit code)."""
    inst, _spec = _write_inputs(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pooling.cli", "check", str(inst)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    missing = subprocess.run([sys.executable, "-m", "pooling.cli", "check", str(tmp_path / "none.json")],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert "instance file not found" in missing.stderr and "Traceback" not in missing.stderr


def test_simulate_writes_identical_stress_json(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == 0
    outputs = []
    for name in ("s1", "s2"):
        code = main(["simulate", str(inst), "--spec", str(spec), "--result", str(out / "result.json"),
                     "--years", "3", "--scenarios", "2000", "--seed", "5", "--stress", "epidemic",
                     "--out", str(tmp_path / name)])
        assert code in (0, 3)
        outputs.append((tmp_path / name / "stress.json").read_bytes())
    assert outputs[0] == outputs[1]
    data = json.loads(outputs[0])
    assert data["scenarios"] == 2000 and data["years"] == 3 and data["stress"] == ["epidemic"]
    for key in ("counties", "rate", "deficit_probability", "deficit_probability_ci", "ruin_probability",
                "ruin_probability_ci", "mean_surplus", "var", "cvar", "passed"):
        assert key in data["pools"][0]
    assert code == (0 if data["plan"]["passed"] else 3)
    assert "P(ruin)" in capsys.readouterr().out


def test_simulate_bad_inputs_exit_2(tmp_path, capsys):
    inst, spec = _write_inputs(tmp_path)
    broken = tmp_path / "result.json"
    broken.write_text(json.dumps({"status": "optimal", "pools": [{"counties": ["900101"], "rate": 0.5}]}))
    out = tmp_path / "out"
    assert main(["simulate", str(inst), "--spec", str(spec), "--result", str(broken),
                 "--out", str(out)]) == 2
    assert "counties are in no pool" in capsys.readouterr().err
    assert main(["simulate", str(inst), "--spec", str(spec), "--result", str(tmp_path / "none.json"),
                 "--out", str(out)]) == 2
    assert "result file not found" in capsys.readouterr().err
    assert not out.exists()


def test_generate_writes_a_valid_instance(tmp_path, capsys):
    from pooling import load_instance
    out = tmp_path / "g.json"
    assert main(["generate", "--counties", "12", "--prefectures", "3", "--seed", "4", "--out", str(out)]) == 0
    inst = load_instance(out)
    assert len(inst.counties) == 12 and len(inst.prefectures) == 3
    again = tmp_path / "h.json"
    assert main(["generate", "--counties", "12", "--prefectures", "3", "--seed", "4", "--out", str(again)]) == 0
    assert out.read_bytes() == again.read_bytes()
    assert main(["generate", "--counties", "2", "--prefectures", "3", "--out", str(tmp_path / "x.json")]) == 2
    assert "generate:" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
