"""Anything a user can type gets exit 0/2/3/4 and a message, never a
traceback (issue 11's reproducers): arguments out of range, output places that
cannot be written, closed pipes, Ctrl-C at any moment, odd characters."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pooling import InputError, SolveOptions
from pooling.cli import EXIT_INPUT, EXIT_INTERRUPTED, main
from pooling.outputs import files
from tests.factories import INSTANCES, MODELS, spec_dict, tiny_instance_dict

TONGLIAO = str(INSTANCES / "tongliao.json")
DEFAULT_SPEC = str(MODELS / "default.toml")


@pytest.fixture
def tiny(tmp_path):
    inst = tmp_path / "tiny.json"
    inst.write_text(json.dumps(tiny_instance_dict()))
    spec = tmp_path / "spec.toml"
    data = spec_dict(pooling={"contiguous": True})
    spec.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in vals.items())
                            for s, vals in data.items()))
    return inst, spec


def _no_files(folder: Path) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


@pytest.mark.parametrize(("flags", "message"), [
    (["--time-limit", "inf"], "--time-limit must be finite"),
    (["--time-limit", "nan"], "--time-limit must be finite"),
    (["--time-limit", "0"], "--time-limit must be in"),
    (["--threads", "100000"], "--threads must be in [1, 256]"),
    (["--random-seed", "-1"], "--random-seed must be in"),
    (["--mip-rel-gap", "1"], "--mip-rel-gap must be in"),
    (["--enumeration-limit", "0"], "--enumeration-limit must be in"),
])
def test_solver_flags_out_of_range(tiny, tmp_path, capsys, flags, message):
    inst, spec = tiny
    out = tmp_path / "out"
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out), *flags]) == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert _no_files(out)


@pytest.mark.parametrize(("argv", "message"), [
    (["--seed", "-5"], "--seed: must be in [0,"),
    (["--years", "1000"], "--years: must be in [1, 100]"),
    (["--years", "2.5"], "--years: expected an integer"),
    (["--scenarios", "10"], "--scenarios: must be in [100,"),
])
def test_simulate_arguments_out_of_range(tiny, tmp_path, capsys, argv, message):
    inst, spec = tiny
    code = main(["simulate", str(inst), "--spec", str(spec), "--result", str(tmp_path / "r.json"),
                 "--out", str(tmp_path / "out"), *argv])
    assert code == EXIT_INPUT
    assert message in capsys.readouterr().err


def test_solver_options_api_types():
    for kwargs, message in [({"time_limit": "60"}, "time_limit must be a number"),
                            ({"threads": 2.0}, "threads must be an integer"),
                            ({"threads": True}, "threads must be an integer"),
                            ({"candidates": 3}, "candidates must be one of"),
                            ({"time_limit": float("inf")}, "time_limit must be finite")]:
        with pytest.raises(InputError, match=message):
            SolveOptions(**kwargs)


def test_out_is_a_file_or_under_a_file(tiny, tmp_path, capsys):
    inst, spec = tiny
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    for out in (blocker, blocker / "sub"):
        assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == EXIT_INPUT
        assert "--out" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"


def test_out_not_writable_is_refused_before_any_work(tiny, tmp_path, capsys, monkeypatch):
    """A place where no file can be created (read-only mount, no permission:
    simulated, since root ignores permission bits) is refused before solving."""
    inst, spec = tiny

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    monkeypatch.setattr("pooling.optimise.solve.solve", lambda *a, **k: pytest.fail("solved before checking --out"))
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(tmp_path / "out")]) == EXIT_INPUT
    assert "Read-only file system" in capsys.readouterr().err


def test_full_disk_at_write_is_a_clear_error_and_leaves_nothing(tiny, tmp_path, capsys, monkeypatch):
    inst, spec = tiny
    out = tmp_path / "out"
    real_fsync = os.fsync
    calls = {"n": 0}

    def full(fd):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out)]) == EXIT_INPUT
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    err = capsys.readouterr().err
    assert "cannot write" in err and "No space left on device" in err and "nothing was written" in err
    assert calls["n"] == 1 and _no_files(out)


def test_generate_out_folder(tmp_path, capsys):
    assert main(["generate", "--counties", "5", "--prefectures", "1", "--out", str(tmp_path)]) == EXIT_INPUT
    assert "is a folder" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_respect_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        files.write_json_atomic(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask


def test_unencodable_text_is_written_as_escapes(tmp_path):
    files.write_json_atomic(tmp_path / "x.json", {"source": "bad\udcffname"})
    assert json.loads((tmp_path / "x.json").read_text(encoding="utf-8")) == {"source": "bad\udcffname"}


def test_a_path_with_undecodable_bytes_gives_a_message(capsys):
    assert main(["check", "/nonexistent/\udcff.json"]) == EXIT_INPUT
    assert "not found" in capsys.readouterr().err


def test_check_without_spec_prints_rates_alone(capsys):
    assert main(["check", TONGLIAO]) == 0
    out = capsys.readouterr().out
    assert "max solvent rate of each county alone" in out and "150502" in out


def _pooling(*args: str) -> list[str]:
    return [sys.executable, "-m", "pooling.cli", *args]


def test_stdout_closed_early_is_not_an_error():
    done = subprocess.run(["bash", "-c", "set -o pipefail; " + " ".join(_pooling("check", TONGLIAO)) + " | head -1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def _numpy_loaded(pid: int) -> bool:
    """The process has mapped numpy's core extension: it is inside the CLI's
    main(), which imports the numerical libraries (not in Python's own start-up,
    which no program can guard)."""
    try:
        return "_multiarray_umath" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0, 2.5])
def test_ctrl_c_at_any_moment(tmp_path, delay):
    """SIGINT while the libraries load (numpy just mapped, scipy and Pyomo to
    come), while pricing, or while solving: exit 130 (or 0 if the run had
    already finished), a one-line message, no traceback."""
    proc = subprocess.Popen(_pooling("solve", TONGLIAO, "--spec", DEFAULT_SPEC, "--out", str(tmp_path / "out")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    give_up = time.time() + 60
    while not _numpy_loaded(proc.pid) and proc.poll() is None and time.time() < give_up:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (EXIT_INTERRUPTED, 0), err
    assert "Traceback" not in err, err
    if proc.returncode == EXIT_INTERRUPTED:
        assert "interrupted" in err


def _solve_is_interrupted(tiny, out, capsys, *extra: str) -> None:
    """`pooling solve` on the tiny instance exits 130 saying "interrupted", no traceback."""
    inst, spec = tiny
    assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out), *extra]) == EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_inside_pyomos_output_capture_is_an_interrupt(monkeypatch, tiny, tmp_path, capsys):
    """Pyomo's output capture re-raises a Ctrl-C landing inside it as a
    RuntimeError naming KeyboardInterrupt (CI run of 2026-11-30: exit 1 with a
    traceback); the CLI must still say "interrupted" and exit 130."""
    from pyomo.contrib.solver.solvers.highs import Highs

    def interrupted(*_args, **_kwargs):
        raise RuntimeError("KeyboardInterrupt:  (5: <pyomo.common.tee.redirect_fd object>)")

    monkeypatch.setattr(Highs, "solve", interrupted)
    _solve_is_interrupted(tiny, tmp_path / "o", capsys, "--workers", "1")
    assert _no_files(tmp_path / "o")


def test_thread_count_can_change_between_runs_in_one_process(tiny, tmp_path):
    """HiGHS sizes its process-wide scheduler on the first run; a later run with
    another --threads used to end with status error and no plan (exit 1)."""
    inst, spec = tiny
    for run, threads in enumerate(("1", "2", "1")):
        out = tmp_path / f"out{run}"   # a folder per run: solve does not replace a result unless told
        assert main(["solve", str(inst), "--spec", str(spec), "--out", str(out), "--threads", threads]) == 0
        assert json.loads((out / "result.json").read_text())["status"] == "optimal"


def test_ctrl_c_turned_into_another_error_by_a_library_is_an_interrupt(monkeypatch, tiny, tmp_path, capsys):
    """numpy's C import turns a Ctrl-C landing inside it into ImportError
    ("PyCapsule_Import could not import module datetime": CI, 2026-12-01);
    any exception after a SIGINT is the user's interrupt: exit 130, no traceback."""
    import pooling.cli as cli

    def interrupted_import(*_args, **_kwargs):
        try:
            cli._on_sigint(signal.SIGINT, None)
        except KeyboardInterrupt as exc:
            raise ImportError('PyCapsule_Import could not import module "datetime"') from exc

    monkeypatch.setattr(cli, "_check_output", interrupted_import)
    _solve_is_interrupted(tiny, tmp_path / "o", capsys)
    assert signal.getsignal(signal.SIGINT) is not cli._on_sigint   # the caller's handler is back


def test_ctrl_c_swallowed_by_the_solver_writes_nothing(monkeypatch, tiny, tmp_path, capsys):
    """HiGHS stops on a Ctrl-C landing inside its run and reports status error
    with no exception (CI, 2026-12-01: "the solver ended with status error",
    exit 1, and a result.json written); the CLI must still say "interrupted",
    exit 130 and write nothing."""
    import pooling.cli as cli
    from pooling.optimise import solve as solve_module

    real = solve_module.solve

    def swallowed(*args, **kwargs):
        result = real(*args, **kwargs)
        try:
            cli._on_sigint(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass   # what HiGHS does with it
        return result

    monkeypatch.setattr(solve_module, "solve", swallowed)
    _solve_is_interrupted(tiny, tmp_path / "o", capsys, "--workers", "1")
    assert not (tmp_path / "o" / "result.json").exists()
