"""Every file and option a user can pass is bounded (issue 22): file size,
regular files only, nesting depth, sweep cells counted before they are
listed, --scheduler validated and reached within timeouts. Each refusal is
exit 2 with a message, no traceback, nothing written, and no hang."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from pooling import InputError
from pooling.cli import main
from pooling.data import reading
from pooling.data.instance import load_instance
from pooling.data.reading import MAX_FILE_BYTES, MAX_NESTING, parse_json_bytes, parse_toml_bytes
from pooling.data.spec import load_spec
from pooling.execution import scheduler_address
from pooling.execution.scheduler_address import check_scheduler, parse_scheduler_address
from pooling.execution.tasks import ExecutionPlan
from pooling.studies.sweep import load_sweep
from tests.factories import MODELS, tiny_instance_dict

SPEC = (MODELS / "default.toml").read_text()


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def _files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "i.json").write_text(json.dumps(tiny_instance_dict()))
    (tmp_path / "s.toml").write_text(SPEC)
    return tmp_path / "i.json", tmp_path / "s.toml"


# -- size and kind of file -------------------------------------------------------

def test_a_file_beyond_the_size_limit_is_refused_unread(tmp_path):
    """A sparse file one byte over 256 MiB: refused from its size, nothing read."""
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InputError, match=r"big\.json: instance file is 268,435,457 bytes, larger than the "
                                         r"limit of 268,435,456 bytes \(256 MiB\)"):
        load_instance(big)


def test_a_file_growing_past_the_limit_while_read_is_refused(tmp_path, monkeypatch):
    """The bytes read are counted too (a file that grows, or lies about its size)."""
    path = tmp_path / "s.toml"
    path.write_text(SPEC)
    real_fstat = os.fstat

    def shrunk(fd):
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, *info[1:6], 10, *info[7:]))
    monkeypatch.setattr(reading.os, "fstat", shrunk)
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match="larger than the limit of 100 bytes"):
        load_spec(path)


@pytest.mark.parametrize("command", ["check", "solve", "spec", "plan", "sweep"])
def test_dev_zero_is_refused_as_a_device(tmp_path, capsys, command):
    """Old code: /dev/zero was read until memory ran out."""
    inst, spec = _files(tmp_path)
    out = tmp_path / "out"
    if command == "check":
        argv = ["check", "/dev/zero"]
    elif command == "solve":
        argv = ["solve", "/dev/zero", "--spec", str(spec), "--out", str(out)]
    elif command == "spec":
        argv = ["solve", str(inst), "--spec", "/dev/zero", "--out", str(out)]
    elif command == "plan":
        argv = ["evaluate", str(inst), "--spec", str(spec), "--plan", "/dev/zero", "--out", str(out)]
    else:
        (tmp_path / "sweep.toml").write_text(f'instances = ["/dev/zero"]\nspec = "{spec}"\n[grid]\n'
                                             f'"solvency.level" = [0.99]\n')
        argv = ["sweep", str(tmp_path / "sweep.toml"), "--out", str(out), "--workers", "1"]
    code, err = _cli(argv, capsys)
    assert code == 2
    assert "/dev/zero: " in err and "found a device; only regular files are read" in err
    assert not out.exists()


def test_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    """Opening a FIFO for reading waits for a writer: it is opened non-blocking and refused."""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    code, err = _cli(["check", str(fifo)], capsys)
    assert code == 2 and "found a FIFO (named pipe)" in err
    assert time.monotonic() - start < 30


# -- nesting ---------------------------------------------------------------------

def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_toml(depth: int) -> str:
    return "x = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize("text,parse", [(_deep_json, parse_json_bytes), (_deep_toml, parse_toml_bytes)])
def test_nesting_limit_is_exact(text, parse):
    json_like = parse is parse_json_bytes
    at_limit = text(MAX_NESTING if json_like else MAX_NESTING - 1)    # TOML's top table is a level
    parse(at_limit.encode(), "f")
    with pytest.raises(InputError, match=rf"^f: lists and tables/objects nested more than {MAX_NESTING} deep"):
        parse(text(MAX_NESTING + (1 if json_like else 0)).encode(), "f")


def test_dotted_toml_keys_count_as_levels():
    deep = ".".join(["a"] * (MAX_NESTING + 1)) + " = 1\n"
    with pytest.raises(InputError, match="nested more than 64 deep"):
        parse_toml_bytes(deep.encode(), "f")


@pytest.mark.parametrize("which", ["instance", "spec", "plan", "result", "sweep"])
def test_files_nested_2000_deep_are_input_errors(tmp_path, capsys, which):
    """Old code: RecursionError (exit 1) from every command."""
    inst, spec = _files(tmp_path)
    out = tmp_path / "out"
    deep = tmp_path / ("deep.toml" if which in ("spec", "sweep") else "deep.json")
    deep.write_text(_deep_toml(2000) if which in ("spec", "sweep") else '{"pools": ' + _deep_json(2000) + "}")
    argv = {"instance": ["check", str(deep)],
            "spec": ["solve", str(inst), "--spec", str(deep), "--out", str(out)],
            "plan": ["evaluate", str(inst), "--spec", str(spec), "--plan", str(deep), "--out", str(out)],
            "result": ["simulate", str(inst), "--spec", str(spec), "--result", str(deep), "--out", str(out)],
            "sweep": ["sweep", str(deep), "--out", str(out), "--workers", "1"]}[which]
    code, err = _cli(argv, capsys)
    assert code == 2, err
    assert f"{deep}: lists and tables/objects nested more than 64 deep" in err
    assert not out.exists()


# -- sweep cells -------------------------------------------------------------------

def test_sweep_cells_are_counted_before_they_are_listed(tmp_path):
    """Old code: 7 fields x 40 values built all 40^7 = 1.6e11 cells, then MemoryError."""
    _files(tmp_path)
    fields = ["solvency.level", "solvency.reserve_share", "rates.min", "rates.max", "equalisation.max_rate_gap",
              "equalisation.max_cross_subsidy", "equalisation.max_expected_surplus"]
    grid = "".join(f'"{f}" = [{", ".join(str(0.5 + k / 100) for k in range(40))}]\n' for f in fields)
    path = tmp_path / "sweep.toml"
    path.write_text(f'instances = ["i.json"]\nspec = "s.toml"\n[grid]\n{grid}')
    start = time.monotonic()
    with pytest.raises(InputError, match=r"163,840,000,000 cells \(40 solvency\.level x .* x 1 instances\), "
                                         r"more than the limit of 10,000"):
        load_sweep(path)
    assert time.monotonic() - start < 10


# -- --scheduler -------------------------------------------------------------------

@pytest.mark.parametrize("address,parsed", [
    ("tcp://10.0.0.1:8786", "tcp://10.0.0.1:8786"), ("10.0.0.1:9000", "tcp://10.0.0.1:9000"),
    ("scheduler", "tcp://scheduler:8786"), ("TCP://host-1.example.org:1", "tcp://host-1.example.org:1"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"), ("[::1]", "tcp://[::1]:8786"),
    ("inproc://192.0.2.2/31820/1", "inproc://192.0.2.2/31820/1"), ("  tcp://h:1  ", "tcp://h:1"),
])
def test_accepted_scheduler_addresses(address, parsed):
    assert parse_scheduler_address(address) == parsed


@pytest.mark.parametrize("address,why", [
    ("tls://10.0.0.1:8786", "tls:// is not supported: TLS needs certificates"),
    ("ucx://10.0.0.1:8786", "ucx:// is not supported: UCX needs UCX-Py"),
    ("ws://h:1", "websocket"), ("http://h:1", "unknown scheme 'http://'"),
    ("tcp://h:0", "port 0 is not in [1, 65535]"), ("h:99999", "port 99999 is not in [1, 65535]"),
    ("a b:1", "'a b' is not a host name"), (":8786", "'' is not a host name"),
    ("::1:8786", "'::1' is not a host name"), ("h:x", "the port must be a number"),
    ("inproc://", "inproc:// needs the id"),
])
def test_refused_scheduler_addresses(address, why):
    with pytest.raises(InputError) as err:
        parse_scheduler_address(address)
    assert why in str(err.value) and "accepted: tcp://HOST:PORT" in str(err.value)


@pytest.mark.parametrize("address", ["tls://127.0.0.1:8786", "ucx://127.0.0.1:8786"])
def test_cli_refuses_tls_and_ucx_before_any_work(tmp_path, capsys, address):
    """Old code: TypeError from Dask (exit 1) once the blocks were listed."""
    inst, spec = _files(tmp_path)
    out = tmp_path / "out"
    code, err = _cli(["solve", str(inst), "--spec", str(spec), "--out", str(out), "--scheduler", address], capsys)
    assert code == 2 and "is not supported" in err
    assert not out.exists()


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(scheduler_address, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(scheduler_address, "HANDSHAKE_TIMEOUT", 1.0)


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_port_that_does_not_speak_dask_times_out(short_timeouts, silent_port, tmp_path, capsys):
    """Old code: Client waited for ever (> 300 s) on a port that accepts but does not answer."""
    pytest.importorskip("distributed", reason="the optional extra pooling[distributed]")
    inst, spec = _files(tmp_path)
    out = tmp_path / "out"
    start = time.monotonic()
    code, err = _cli(["solve", str(inst), "--spec", str(spec), "--out", str(out),
                      "--scheduler", f"tcp://127.0.0.1:{silent_port}"], capsys)
    assert code == 2 and "cannot reach a Dask scheduler" in err and "timeout of 1 s" in err
    assert time.monotonic() - start < 30
    assert not out.exists()


def test_an_unreachable_scheduler_fails_even_for_one_block(short_timeouts, tmp_path, capsys):
    """Old code: --scheduler nonsense was silently ignored on a one-block instance."""
    pytest.importorskip("distributed", reason="the optional extra pooling[distributed]")
    inst, spec = _files(tmp_path)
    with socket.socket() as probe:     # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    code, err = _cli(["solve", str(inst), "--spec", str(spec), "--out", str(out),
                      "--scheduler", f"127.0.0.1:{port}"], capsys)
    assert code == 2 and f"cannot reach a Dask scheduler at '127.0.0.1:{port}'" in err
    assert not out.exists()
    with pytest.raises(InputError, match="cannot reach a Dask scheduler"):
        ExecutionPlan(scheduler=f"127.0.0.1:{port}")


def test_a_real_scheduler_is_reached_and_a_worker_is_not_one():
    distributed = pytest.importorskip("distributed", reason="the optional extra pooling[distributed]")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert ExecutionPlan(scheduler=cluster.scheduler_address).scheduler == cluster.scheduler_address
        worker = next(iter(cluster.workers.values())).address
        with pytest.raises(InputError, match=r"not a Dask scheduler .*'Worker'"):
            check_scheduler(worker)
