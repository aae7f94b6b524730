"""The execution layer (pooling.execution): one deadline per run, tasks a
deadline stops before they start, workers started only when they pay for
themselves, the same result serially and on workers, and workers that die
with the process that started them."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pooling
from pooling.execution import tasks
from pooling.execution.checkpoints import Checkpoints
from pooling.execution.deadline import Deadline, passed
from pooling.execution.tasks import (
    ABANDONED,
    NOT_STARTED,
    ExecutionPlan,
    makespan,
    run_tasks,
    workers_worth_starting,
)
from pooling.optimise import blocks as blocks_module
from pooling.optimise.block_records import BlockStore
from pooling.optimise.blocks import block_costs, problem_blocks, run_blocks, unsolved
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict

TIMING_KEYS = ("wall_seconds", "timings")


def _square(shared, task):
    return shared * task * task


def _sleep(shared, task):
    time.sleep(task)
    return task


def test_deadline_counts_from_the_start_it_is_given():
    now = time.monotonic()
    assert Deadline.after(10.0, started=now - 4.0).remaining() == pytest.approx(6.0, abs=0.5)
    assert passed(Deadline.after(1.0, started=now - 2.0))
    assert not passed(None) and not passed(Deadline.after(60.0))
    # Pickled to a worker it is the same instant; on another machine the wall clock reads it.
    later = pickle.loads(pickle.dumps(Deadline.after(30.0)))
    assert later.remaining() == pytest.approx(30.0, abs=0.5)
    elsewhere = Deadline(monotonic=-1e9, wall=later.wall, machine="another-host/boot")
    assert elsewhere.remaining() == pytest.approx(30.0, abs=0.5)


def test_no_result_markers_survive_pickling():
    assert pickle.loads(pickle.dumps(NOT_STARTED)) is NOT_STARTED
    assert pickle.loads(pickle.dumps(ABANDONED)) is ABANDONED


def test_tasks_past_the_deadline_are_not_started_and_not_reported():
    seen = []
    gone = Deadline.after(0.0)
    out = run_tasks(_square, [1, 2, 3], 2, ExecutionPlan(), on_result=lambda i, v: seen.append(i),
                    done={1: 8}, deadline=gone)
    assert out == [NOT_STARTED, 8, NOT_STARTED] and seen == []
    out = run_tasks(_square, [1, 2, 3], 2, ExecutionPlan(workers=2), on_result=lambda i, v: seen.append(i),
                    deadline=gone)
    assert out == [NOT_STARTED] * 3 and seen == []


def _begin_and_sleep(folder, task):
    name, seconds = task
    (Path(folder) / name).touch()
    time.sleep(seconds)
    return name


def test_a_pool_waits_past_the_deadline_only_for_tasks_begun(tmp_path):
    """Two 60 s tasks on two workers and a third queued behind them, a 4 s
    deadline, 1 s of grace: the parent stops waiting at most 1 s after the
    deadline; a task a worker had begun is ABANDONED, one never begun (a
    worker slow to start on a busy machine, or the queued one) NOT_STARTED."""
    start = time.monotonic()
    out = run_tasks(_begin_and_sleep, [("a", 60.0), ("b", 60.0), ("c", 0.0)], str(tmp_path),
                    ExecutionPlan(workers=2), deadline=Deadline.after(4.0), grace=1.0)
    assert time.monotonic() - start < 4.0 + 1.0 + 3.0   # the kill and shutdown are quick
    assert out[:2] == [ABANDONED if (tmp_path / name).exists() else NOT_STARTED for name in "ab"]
    assert out[2] is NOT_STARTED and not (tmp_path / "c").exists()


def test_a_pool_gives_results_in_task_order():
    out = run_tasks(_square, [3, 1, 2, 5], 1, ExecutionPlan(workers=2), order=[3, 0, 2, 1])
    assert out == [9, 1, 4, 25]


def test_workers_are_started_only_when_they_save_more_than_their_start_up():
    start = tasks.WORKER_START_SECONDS
    assert workers_worth_starting([0.05] * 8, 2) == 1            # 8 single-county blocks
    assert workers_worth_starting([10.0, 10.0], 2) == 2
    assert workers_worth_starting([10.0, 10.0], 8) == 2          # no more than there are tasks
    assert workers_worth_starting([30.0, 0.2, 0.2], 2) == 1      # the largest task dominates either way
    assert workers_worth_starting([start, start], 2) == 1        # saving exactly the start-up: not worth it
    assert workers_worth_starting([5.0] * 6, 4, start_seconds=0.0) == 3   # 3 and 4 both end at 10: fewest
    assert makespan([3.0, 3.0, 2.0, 2.0, 2.0], 2) == 7.0
    # Under a time limit this process cannot beat: workers only if they do more before it.
    assert workers_worth_starting([10.0] * 4, 2, start_seconds=1.5, time_left=2.9) == 1
    assert workers_worth_starting([10.0] * 4, 2, start_seconds=1.5, time_left=3.1) == 2
    assert workers_worth_starting([10.0] * 4, 4, start_seconds=1.5, time_left=60.0) == 4
    # A machine 4x busier: the start-up is 4x longer too, so a 10 s limit no longer repays it.
    assert workers_worth_starting([10.0] * 4, 2, start_seconds=1.5, time_left=10.0) == 2
    assert workers_worth_starting([10.0] * 4, 2, start_seconds=1.5, time_left=10.0, slowdown=4.0) == 1
    # Without a limit the slowdown stretches both sides alike.
    assert workers_worth_starting([10.0, 10.0], 2, slowdown=4.0) == 2
    assert workers_worth_starting([0.05] * 8, 2, slowdown=4.0) == 1


def test_block_costs_tell_small_blocks_from_generated_ones():
    inst = pooling.load_instance(INSTANCES / "henan.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    blocks = problem_blocks(inst, spec)
    costs = dict(zip((b.label for b in blocks), block_costs(inst, spec, pooling.SolveOptions(), blocks)))
    assert costs["prefecture 419000"] < 0.1                       # one county
    assert costs["prefecture 411300"] >= blocks_module.GENERATED_GROUP_SECONDS   # 13 counties: generated
    assert costs["prefecture 410600"] < 0.2 < 2.0 < costs["prefecture 410700"]   # 12 pools against 888
    tongliao = pooling.load_instance(INSTANCES / "tongliao.json")
    status_quo = pooling.load_spec(MODELS / "status_quo.toml")
    small = block_costs(tongliao, status_quo, pooling.SolveOptions(), problem_blocks(tongliao, status_quo))
    assert len(small) == 8 and workers_worth_starting(small, 2) == 1


def test_small_blocks_run_in_this_process(monkeypatch):
    """Tongliao under status_quo.toml (8 one-county blocks) on 2 workers runs
    serially: starting the workers would cost 10x the work."""
    def no_pool(*args, **kwargs):
        raise AssertionError("workers started for blocks of a few milliseconds")

    monkeypatch.setattr(tasks, "_run_pool", no_pool)
    result = pooling.solve(INSTANCES / "tongliao.json", MODELS / "status_quo.toml", workers=2)
    assert result.status == "optimal" and len(result.pools) == 8


def _comparable(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("spec", ["contiguous", "gap-province"])
def test_workers_and_serial_write_the_same_result(tmp_path, monkeypatch, spec):
    """The same result.json (timings apart) whether the blocks run in this
    process or on two workers (forced here by a free start-up)."""
    data = random_instance_dict(11, 12, 4, contribution_range=(200.0, 300.0))
    for county in data["counties"]:
        county["province"] = f"pr{int(county['prefecture'][1:]) // 2}"
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    specs = {"contiguous": spec_dict(pooling={"within": "prefecture", "contiguous": True}),
             "gap-province": spec_dict(pooling={"within": "prefecture"},
                                       equalisation={"max_rate_gap": 0.02, "gap_scope": "province"})}
    inst, sp = pooling.load_instance(path), pooling.spec_from_dict(specs[spec])
    assert len(problem_blocks(inst, sp)) > 1
    serial = pooling.solve(inst, sp, workers=1).to_dict()
    pools_used = []
    original = tasks._run_pool
    monkeypatch.setattr(tasks, "WORKER_START_SECONDS", 0.0)
    monkeypatch.setattr(tasks, "_run_pool", lambda *a, **k: pools_used.append(a[3]) or original(*a, **k))
    parallel = pooling.solve(inst, sp, workers=2).to_dict()
    assert pools_used == [2]
    assert json.dumps(_comparable(parallel), sort_keys=True) == json.dumps(_comparable(serial), sort_keys=True)


def test_blocks_not_started_are_marked_and_never_checkpointed(tmp_path):
    inst = pooling.instance_from_dict(random_instance_dict(3, 11, n_prefectures=3))
    spec = pooling.spec_from_dict(spec_dict(pooling={"within": "prefecture"}))
    blocks = problem_blocks(inst, spec)
    keys = [f"k{i}" for i in range(len(blocks))]
    store = BlockStore(Checkpoints(tmp_path / "blocks", kind="block"), inst, spec,
                       {k: (b.label, b.members) for k, b in zip(keys, blocks)})
    from pooling.optimise.solve import _solve_block
    gone = Deadline.after(0.0)
    out = run_blocks(_solve_block, [(b, gone, None) for b in blocks], (inst, spec, pooling.SolveOptions()),
                     blocks, keys, ExecutionPlan(), store, deadline=gone)
    assert unsolved(out) == dict.fromkeys(range(len(blocks)), "not started")
    assert not (tmp_path / "blocks").exists() or not any((tmp_path / "blocks").iterdir())
    # solve records them as time_limit with no plan, saying they were not started; also when
    # the blocks share one rate window (pooling.optimise.windows prices them first).
    coupled = pooling.spec_from_dict(spec_dict(pooling={"within": "prefecture"},
                                               equalisation={"max_rate_gap": 0.02, "gap_scope": "instance"}))
    for which, problem_spec in (("separate", spec), ("coupled", coupled)):
        folder = tmp_path / f"{which}-blocks"
        result = pooling.solve(inst, problem_spec, time_limit=1e-9, checkpoint=folder)
        assert result.status == "time_limit" and not result.pools
        assert all(g["status"] == "time_limit" and "before this part of the problem was started" in
                   " ".join(g["diagnosis"] + result.diagnosis) for g in result.groups)
        assert not folder.exists() or not any(folder.iterdir()), which


def _children(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live descendant of `pid`, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = (int(fields[1]), fields[19])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in parents.items() if ppid in frontier}
        found |= {(p, parents[p][1]) for p in frontier}
    return found


def _alive(processes: set[tuple[int, str]]) -> set[int]:
    alive = set()
    for pid, started in processes:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and fields[19] == started:
            alive.add(pid)
    return alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_workers_die_with_a_killed_solve(tmp_path):
    """SIGKILL of `pooling solve` while its workers run Henan's blocks: no
    worker and no resource tracker survives it (they used to run on for
    minutes, orphaned)."""
    proc = subprocess.Popen([sys.executable, "-m", "pooling.cli", "solve", str(INSTANCES / "henan.json"),
                             "--workers", "2", "--out", str(tmp_path / "out"), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + 180
        children: set[tuple[int, str]] = set()
        while time.monotonic() < give_up and proc.poll() is None:
            children = _children(proc.pid)
            commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid, _ in children
                        if Path(f"/proc/{pid}/cmdline").exists()]
            if sum(b"spawn_main" in c for c in commands) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the solve ended before its workers were seen"
        time.sleep(1.0)   # the workers import, then take blocks
        children = _children(proc.pid)
        assert len(children) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        give_up = time.monotonic() + 10
        while _alive(children) and time.monotonic() < give_up:
            time.sleep(0.1)
        assert not _alive(children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
