"""Decomposed solves (pooling.optimise.blocks): the same answer as one MILP over
the whole instance, partial answers when a block is hopeless, the same result
on any number of workers or a Dask cluster, resume after a kill, and a time
limit that covers the whole run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import pooling
from pooling.cli import main
from pooling.optimise.blocks import combined_status, problem_blocks
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict
from tests.tolerances import ROUNDING

TIMING_KEYS = ("wall_seconds", "timings")


def _instance(seed: int, n: int = 12, prefectures: int = 4, provinces: int = 2):
    """A poor random instance (rates below rates.max) with `provinces` provinces
    of whole prefectures; migrants cross prefectures, so pricing a block must
    look beyond it."""
    data = random_instance_dict(seed, n, prefectures, contribution_range=(200.0, 300.0))
    for county in data["counties"]:
        county["province"] = f"pr{int(county['prefecture'][1:]) * provinces // prefectures}"
    return data


SPECS = {
    "within-prefecture": spec_dict(pooling={"within": "prefecture"}),
    "contiguous": spec_dict(pooling={"within": "prefecture", "contiguous": True}),
    "gap-prefecture": spec_dict(pooling={"within": "prefecture"},
                                equalisation={"max_rate_gap": 0.01, "gap_scope": "prefecture"}),
    "gap-province": spec_dict(pooling={"within": "prefecture"},
                              equalisation={"max_rate_gap": 0.02, "gap_scope": "province"}),
    "worse-off": spec_dict(pooling={"within": "prefecture"}, equalisation={"no_county_worse_off": True}),
    "menu": spec_dict(pooling={"within": "prefecture"}, rates={"min": 0.3, "max": 0.9, "step": 0.05}),
    "prefecture-scope": spec_dict(scope="prefecture"),
    "within-province": spec_dict(pooling={"within": "province", "max_counties": 3}),
    "max-min": spec_dict(pooling={"within": "prefecture"}, objective={"kind": "max_min_rate"}),
    "max-min-menu": spec_dict(pooling={"within": "prefecture"}, objective={"kind": "max_min_rate"},
                              rates={"min": 0.3, "max": 0.9, "step": 0.02}),
}


def _plan(result) -> list[tuple[tuple[str, ...], float]]:
    return [(p.pricing.counties, p.rate) for p in result.pools]


@pytest.mark.parametrize("seed", [3, 7, 11])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_decomposed_equals_monolithic(seed, name):
    inst = pooling.instance_from_dict(_instance(seed))
    spec = pooling.spec_from_dict(SPECS[name])
    assert len(problem_blocks(inst, spec)) > 1
    split = pooling.solve(inst, spec)
    whole = pooling.solve(inst, spec, decompose=False)
    if whole.status == "infeasible":
        # Some block is infeasible: the others still get their plan.
        assert split.status in ("partial", "infeasible")
        assert any(g["status"] == "infeasible" for g in split.groups)
        return
    assert split.status == whole.status
    assert split.objective == pytest.approx(whole.objective, abs=1e-8)
    assert split.bound == pytest.approx(whole.bound, abs=1e-7)
    assert split.gap <= 1e-6
    assert split.mean_rate == pytest.approx(whole.mean_rate, abs=1e-8)   # the tie-break too
    # The decomposed plan is a plan of the whole problem: evaluate agrees.
    check = pooling.evaluate(inst, spec, [list(c) for c, _ in _plan(split)])
    assert check.feasible and check.objective == pytest.approx(split.objective, abs=1e-8)


WITHIN = {"within": "prefecture"}
COUPLED = {
    "gap-instance": spec_dict(pooling=WITHIN, equalisation={"max_rate_gap": 0.01, "gap_scope": "instance"}),
    "gap-instance-menu": spec_dict(pooling=WITHIN, equalisation={"max_rate_gap": 0.02, "gap_scope": "instance"},
                                   rates={"min": 0.3, "max": 0.9, "step": 0.01}),
    "gap-instance-coverage": spec_dict(pooling=WITHIN, objective={"kind": "max_effective_coverage"},
                                       equalisation={"max_rate_gap": 0.01, "gap_scope": "instance"}),
    "gap-instance-effective": spec_dict(pooling=WITHIN, objective={"kind": "max_mean_effective_rate"},
                                        equalisation={"max_rate_gap": 0.01, "gap_scope": "instance"}),
    "gap-instance-max-min": spec_dict(pooling=WITHIN, objective={"kind": "max_min_rate"},
                                      equalisation={"max_rate_gap": 0.01, "gap_scope": "instance"}),
    "dispersion-worse-off": spec_dict(pooling=WITHIN, objective={"kind": "min_rate_dispersion"},
                                      equalisation={"no_county_worse_off": True}),
    "dispersion-menu": spec_dict(pooling=WITHIN, objective={"kind": "min_rate_dispersion"},
                                 rates={"min": 0.3, "max": 0.9, "step": 0.02}),
    "dispersion-status-quo": spec_dict(scope="county", objective={"kind": "min_rate_dispersion"}),
    "gap-instance-worse-off": spec_dict(pooling=WITHIN, equalisation={"no_county_worse_off": True,
                                                                      "max_rate_gap": 0.01, "gap_scope": "instance"}),
}


@pytest.mark.parametrize("seed", [3, 7])
@pytest.mark.parametrize("name", sorted(COUPLED))
def test_coupled_rules_decompose_exactly(seed, name):
    """gap_scope "instance" and min_rate_dispersion: the blocks share one rate
    window, searched exactly (pooling.optimise.windows); the answer is the
    monolithic MILP's. Where the two differ in the 8th digit the decomposed plan
    is the better one and still within the monolithic bound."""
    inst = pooling.instance_from_dict(_instance(seed))
    spec = pooling.spec_from_dict(COUPLED[name])
    assert len(problem_blocks(inst, spec)) > 1
    split = pooling.solve(inst, spec)
    whole = pooling.solve(inst, spec, decompose=False)
    assert "coupled by one rate window" in split.termination
    if whole.status == "infeasible":
        assert split.status in ("partial", "infeasible")
        if split.status == "infeasible" and "smallest achievable gap" in " ".join(whole.diagnosis):
            # Both name the same smallest instance-wide gap.
            number = whole.diagnosis[0].split("smallest achievable gap is ")[1][:6]
            assert f"smallest achievable gap is {number}" in " ".join(split.diagnosis)
        return
    assert split.status == whole.status == "optimal"
    better = 1.0 if spec.objective.kind != "min_rate_dispersion" else -1.0
    assert better * (split.objective - whole.objective) >= -1e-8
    assert split.objective == pytest.approx(whole.objective, abs=1e-6)
    assert better * (whole.bound - split.objective) >= -1e-8
    assert split.gap <= whole.gap + 1e-6   # a dispersion of 1e-9 (the lexicographic slack) has a relative gap
    assert split.mean_rate == pytest.approx(whole.mean_rate, abs=1e-6)
    check = pooling.evaluate(inst, spec, [list(c) for c, _ in _plan(split)])
    assert check.feasible and check.objective == pytest.approx(split.objective, abs=1e-8)


@pytest.mark.parametrize("name", ["gap-instance", "gap-instance-max-min", "dispersion-worse-off"])
def test_coupled_rules_with_generated_columns_keep_a_valid_bound(name):
    inst = pooling.instance_from_dict(_instance(3))
    spec = pooling.spec_from_dict(COUPLED[name])
    generated = pooling.solve(inst, spec, candidates="generate")
    enumerated = pooling.solve(inst, spec)
    assert generated.pools and generated.status in ("optimal", "feasible")
    if spec.objective.kind == "min_rate_dispersion":
        assert generated.bound <= enumerated.objective + 1e-9
    else:
        assert generated.bound >= enumerated.objective - 1e-9


def test_coupled_rules_give_partial_answers_and_resume(tmp_path):
    inst = pooling.instance_from_dict(_hopeless(_instance(7)))
    spec = pooling.spec_from_dict(COUPLED["gap-instance"])
    first = pooling.solve(inst, spec, checkpoint=tmp_path)
    assert first.status == "partial"
    assert sorted(g["status"] for g in first.groups) == ["infeasible", "optimal", "optimal", "optimal"]
    rates = [p.rate for p in first.pools]
    assert max(rates) - min(rates) <= 0.01 + ROUNDING
    # Their checkpoints would be every priced pool, no cheaper to verify than to
    # price again: none are kept (tests/test_checkpoints.py), resume solves again.
    assert not list(tmp_path.rglob("*"))
    again = pooling.solve(inst, spec, checkpoint=tmp_path, resume=True)
    assert _comparable(again) == _comparable(first)


def test_blocks_follow_groups_and_gap_scopes():
    inst = pooling.instance_from_dict(_instance(3))
    by_prefecture = problem_blocks(inst, pooling.spec_from_dict(SPECS["within-prefecture"]))
    assert [len(b.members) for b in by_prefecture] == [3, 3, 3, 3]
    by_province = problem_blocks(inst, pooling.spec_from_dict(SPECS["gap-province"]))
    assert len(by_province) == 2 and all(len(b.members) == 6 for b in by_province)
    assert sorted(c for b in by_province for c in b.members) == sorted(inst.ids)
    assert sum(b.enrollees for b in by_province) == inst.total_enrollees


def test_combined_status():
    def result(status, plan):
        return type("R", (), {"status": status, "pools": [1] if plan else []})()
    assert combined_status([result("optimal", True)] * 2) == "optimal"
    assert combined_status([result("optimal", True), result("feasible", True)]) == "feasible"
    assert combined_status([result("optimal", True), result("time_limit", True)]) == "time_limit"
    assert combined_status([result("optimal", True), result("infeasible", False)]) == "partial"
    assert combined_status([result("infeasible", False)] * 2) == "infeasible"
    assert combined_status([result("infeasible", False), result("time_limit", False)]) == "time_limit"


def _hopeless(data: dict) -> dict:
    """The last prefecture's counties cannot pay any rate: tiny revenue."""
    last = data["counties"][-1]["prefecture"]
    for county in data["counties"]:
        if county["prefecture"] == last:
            county["contribution_per_capita"] = 20.0
    return data


def test_a_hopeless_block_does_not_sink_the_rest(tmp_path, capsys):
    data = _hopeless(_instance(7))
    inst = pooling.instance_from_dict(data)
    spec = pooling.spec_from_dict(SPECS["within-prefecture"])
    result = pooling.solve(inst, spec)
    assert result.status == "partial"
    sick = {c["id"] for c in data["counties"] if c["contribution_per_capita"] == 20.0}
    covered = {c for p in result.pools for c in p.pricing.counties}
    assert covered == set(inst.ids) - sick
    statuses = {g["group"]: g["status"] for g in result.groups}
    assert sorted(statuses.values()) == ["infeasible", "optimal", "optimal", "optimal"]
    assert any("top-up" in line or "cannot pay" in line for line in result.diagnosis)
    # The objective is the mean over the enrollees of the blocks with a plan.
    whole = pooling.solve(inst.restricted(sorted(covered)), spec)
    assert result.objective == pytest.approx(whole.objective, abs=1e-9)
    # The CLI writes the partial plan and says so with exit 3.
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    spec_path = tmp_path / "s.toml"
    spec_path.write_text('[pooling]\nscope = "optimise"\nwithin = "prefecture"\n[solvency]\nmeasure = "cvar"\n'
                         'level = 0.99\nreserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')
    out = tmp_path / "out"
    assert main(["solve", str(path), "--spec", str(spec_path), "--out", str(out), "--workers", "1"]) == 3
    written = json.loads((out / "result.json").read_text())
    assert written["status"] == "partial" and len(written["groups"]) == 4
    assert "decomposed into 4 independent blocks" in capsys.readouterr().out


def _comparable(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in TIMING_KEYS}


def test_two_workers_give_the_serial_result(monkeypatch):
    inst = pooling.instance_from_dict(_instance(11))
    spec = pooling.spec_from_dict(SPECS["contiguous"])
    # Blocks this small run in process unless starting workers is free.
    monkeypatch.setattr("pooling.execution.tasks.WORKER_START_SECONDS", 0.0)
    assert _comparable(pooling.solve(inst, spec, workers=2)) == _comparable(pooling.solve(inst, spec))


def test_local_dask_cluster_gives_the_serial_result():
    distributed = pytest.importorskip("distributed", reason="the optional extra pooling[distributed]")
    inst = pooling.instance_from_dict(_instance(11))
    spec = pooling.spec_from_dict(SPECS["gap-province"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        on_dask = pooling.solve(inst, spec, scheduler=cluster.scheduler_address)
    assert _comparable(on_dask) == _comparable(pooling.solve(inst, spec))


def _pooling(*args: str) -> list[str]:
    return [sys.executable, "-m", "pooling.cli", *args]


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path):
    data = _instance(5, n=40, prefectures=10)
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    spec = str(MODELS / "default.toml")
    full = tmp_path / "full"
    done = subprocess.run(_pooling("solve", str(path), "--spec", spec, "--out", str(full), "--workers", "1"),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen(_pooling("solve", str(path), "--spec", spec, "--out", str(out), "--workers", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blocks = out / "blocks"
    give_up = time.time() + 300
    while proc.poll() is None and len(list(blocks.glob("*.json"))) < 3 and time.time() < give_up:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    finished = len(list(blocks.glob("*.json")))
    assert 3 <= finished < 10 and not (out / "result.json").exists()
    resumed = subprocess.run(_pooling("solve", str(path), "--spec", spec, "--out", str(out), "--workers", "1",
                                      "--resume"), capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    first = json.loads((full / "result.json").read_text())
    second = json.loads((out / "result.json").read_text())
    for data in (first, second):
        for key in TIMING_KEYS:
            data.pop(key)
    assert first == second


def test_time_limit_covers_pricing_and_generation():
    """Henan under the default spec takes minutes; with a 3 s limit the run
    stops within a few seconds, with a valid bound never above rates.max."""
    inst = pooling.load_instance(INSTANCES / "henan.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    start = time.perf_counter()
    result = pooling.solve(inst, spec, time_limit=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 3 + 8, elapsed
    assert result.status in ("time_limit", "partial")
    assert result.bound is None or result.bound <= spec.rates.max
    if result.objective is not None:
        assert result.objective <= result.bound + ROUNDING
        assert result.gap is not None and result.gap >= 0


def test_a_tiny_time_limit_gives_a_bound_within_the_rates():
    """--time-limit 0.001 used to report bound 1.62 (above rates.max 0.9) and gap 1.9."""
    inst = pooling.load_instance(INSTANCES / "tongliao.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    result = pooling.solve(inst, spec, time_limit=0.001)
    assert result.status == "time_limit"
    assert result.bound is not None and result.bound <= spec.rates.max
    assert result.gap is None or 0 <= result.gap <= 1
