"""Design sweeps (pooling.studies.sweep): cells built and validated up front,
one row per cell, finished cells kept and never redone."""

from __future__ import annotations

import csv
import json

import pytest

from pooling import InputError
from pooling.execution.tasks import ExecutionPlan
from pooling.studies import sweep as sweep_module
from pooling.studies.sweep import load_sweep, migrants_in_network, run_sweep, write_table
from tests.factories import tiny_instance_dict
from tests.tolerances import ROUNDING

SPEC = """[pooling]
scope = "optimise"
[solvency]
measure = "cvar"
level = 0.99
reserve_share = 0.5
[rates]
min = 0.3
max = 0.9
"""


def _files(tmp_path, grid: str):
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_instance_dict()))
    (tmp_path / "spec.toml").write_text(SPEC)
    path = tmp_path / "sweep.toml"
    path.write_text(f'instances = ["tiny.json"]\nspec = "spec.toml"\n[grid]\n{grid}')
    return path


GRID = '"equalisation.max_rate_gap" = [0.0, 0.05]\n"solvency.level" = [0.99, 0.995]\n'


def test_cells_are_the_grid_and_validated_up_front(tmp_path):
    sweep = load_sweep(_files(tmp_path, GRID))
    assert len(sweep.cells) == 4 and sweep.fields == ("equalisation.max_rate_gap", "solvency.level")
    assert len({c.key for c in sweep.cells}) == 4
    with pytest.raises(InputError, match=r"cell .*solvency.level.*1.5"):
        load_sweep(_files(tmp_path, '"solvency.level" = [0.99, 1.5]\n'))
    with pytest.raises(InputError, match=r"section\.field"):
        load_sweep(_files(tmp_path, '"level" = [0.99]\n'))


def test_a_sweep_without_rules_in_the_grid(tmp_path):
    sweep = load_sweep(_files(tmp_path, '"solvency.level" = [0.99]\n"rates.max" = [0.8, 0.9]\n'))
    rows = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    assert [r["status"] for r in rows] == ["optimal", "optimal"]
    assert rows[0]["max_rate"] <= 0.8 + ROUNDING


def test_rows_and_table(tmp_path):
    sweep = load_sweep(_files(tmp_path, GRID))
    rows = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    assert [(r["equalisation.max_rate_gap"], r["solvency.level"]) for r in rows] == \
        [(0.0, 0.99), (0.0, 0.995), (0.05, 0.99), (0.05, 0.995)]
    assert all(r["status"] == "optimal" for r in rows)
    # A stricter solvency level never raises the rate; a looser gap never lowers it.
    assert rows[1]["mean_rate"] <= rows[0]["mean_rate"] + ROUNDING
    assert rows[2]["mean_rate"] >= rows[0]["mean_rate"] - ROUNDING
    written = write_table(rows, sweep.fields, tmp_path / "out")
    with written[0].open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4 and table[0]["status"] == "optimal"
    # The frontier's fields (pooling frontier) are sweep outputs too: migrants' rate
    # below residents' (their care away from home is partly out of network).
    for row in rows:
        assert 0 < row["migrant_effective_rate"] < row["resident_effective_rate"] <= row["max_rate"]
        assert row["mean_effective_rate"] <= row["mean_rate"] + ROUNDING
    assert {"resident_effective_rate", "migrant_effective_rate", "mean_effective_rate"} <= set(table[0])


def test_finished_cells_are_not_redone(tmp_path, monkeypatch):
    sweep = load_sweep(_files(tmp_path, GRID))
    out = tmp_path / "out"
    first = run_sweep(sweep.__class__(sweep.source, sweep.fields, sweep.cells[:2]), out, ExecutionPlan())
    calls = []
    real = sweep_module.solve_cell

    def counting(shared, cell):
        calls.append(cell.key)
        return real(shared, cell)

    monkeypatch.setattr(sweep_module, "solve_cell", counting)
    rows = run_sweep(sweep, out, ExecutionPlan())
    assert calls == [c.key for c in sweep.cells[2:]]
    assert rows[:2] == first


def test_migrants_in_network_counts_destinations_in_the_same_pool(tmp_path):
    from pooling import instance_from_dict
    inst = instance_from_dict(tiny_instance_dict())
    # 900101: 15,000 x 0.2 migrants, half in 900102; 900103: 8,000 x 0.1, all in 900101.
    assert migrants_in_network(inst, [["900101", "900102", "900103"]]) == pytest.approx(1500 + 800)
    assert migrants_in_network(inst, [["900101"], ["900102"], ["900103"]]) == 0
    assert migrants_in_network(inst, [["900101", "900103"], ["900102"]]) == pytest.approx(800)


def test_cli_sweep_resumes_after_a_kill_without_redoing_cells(tmp_path):
    """`pooling sweep` killed part-way and run again solves only the missing
    cells (the finished cells' files are not rewritten) and writes the table
    and the plot."""
    import signal
    import subprocess
    import sys
    import time
    path = _files(tmp_path, '"equalisation.max_rate_gap" = [0.0, 0.01, 0.02, 0.05]\n'
                            '"solvency.level" = [0.99, 0.995, 0.999]\n')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pooling.cli", "sweep", str(path), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = out / "cells"
    give_up = time.time() + 300
    while proc.poll() is None and len(list(cells.glob("*.json"))) < 3 and time.time() < give_up:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.json")}
    assert 3 <= len(before) < 12 and not (out / "sweep.csv").exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in cells.glob("*.json")}
    assert len(after) == 12 and all(after[name] == stamp for name, stamp in before.items())
    with (out / "sweep.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 12
    assert (out / "sweep.png").exists()


def test_a_row_evaluates_the_plan_with_its_contracts():
    """A cell's subsidy figures come from the plan as solved, contracts included
    (the row's evaluation dropped them): Xinyang as one pool with the
    Gushi-Beijing contract."""
    import pooling
    from pooling.studies.sweep import Cell, cell_row
    from tests.factories import INSTANCES, MODELS, REPO
    inst, spec = pooling.load_instance(INSTANCES / "xinyang.json"), pooling.load_spec(MODELS / "default.toml")
    plan = json.loads((REPO / "docs" / "examples" / "xinyang_prefecture_contract.json").read_text())
    evaluated = pooling.evaluate(inst, spec, plan["pools"], contracts=plan["contracts"], subsidy=True)
    assert evaluated.pools[0].pricing.contracts == ("gushi-beijing",)
    cell = Cell(str(INSTANCES / "xinyang.json"), (), {}, {}, "k")
    outcome = {"status": "optimal", "objective": evaluated.objective, "bound": evaluated.objective, "gap": 0.0,
               "mean_rate": evaluated.pools[0].rate, "wall_seconds": 0.0}
    row = cell_row(cell, inst, spec, outcome, evaluated.pools)
    assert row["subsidy_top_up"] == evaluated.subsidy["total_top_up"]


def test_a_row_s_in_network_share_counts_contracts_as_the_result_does(tmp_path):
    """Xinyang pooled whole with its Beijing contract options: the row's
    `migrant_in_network_share` is result.json's plan figure (every route in
    network: the pool, contracts, settlement), while `migrants_in_network`
    counts only migrants living in another county of their own pool."""
    from pooling import load_instance, load_spec, solve
    from pooling.optimise.result import plan_portability
    from tests.factories import INSTANCES, MODELS

    path = tmp_path / "sweep.toml"
    path.write_text(f'instances = ["{INSTANCES / "xinyang.json"}"]\nspec = "{MODELS / "prefecture.toml"}"\n'
                    '[grid]\n"solvency.level" = [0.99]\n')
    (row,) = run_sweep(load_sweep(path), tmp_path / "out", ExecutionPlan())
    result = solve(load_instance(INSTANCES / "xinyang.json"), load_spec(MODELS / "prefecture.toml"))
    want = plan_portability(result.pools)["migrant_in_network_share"]
    assert row["migrant_in_network_share"] == pytest.approx(want, rel=ROUNDING)
    assert 0.0 < row["migrant_in_network_share"] < 1.0
    plan = [list(p.pricing.counties) for p in result.pools]
    assert row["migrants_in_network"] == pytest.approx(migrants_in_network(load_instance(INSTANCES / "xinyang.json"),
                                                                            plan), rel=ROUNDING)
