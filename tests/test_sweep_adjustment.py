"""`pooling sweep` over adjustment-fund specs (issue 27 item 4): the
contribution as a grid axis, rows with the sweep's columns plus mode and
contribution, equal to solve_adjustment_fund cell by cell, and checkpoints
verified by re-pricing the groups when a sweep is run again."""

from __future__ import annotations

import csv
import json

from pooling.cli import main
from pooling.data.instance import load_instance
from pooling.data.spec import spec_from_dict
from pooling.execution.checkpoints import payload_digest
from pooling.execution.tasks import ExecutionPlan
from pooling.optimise.adjustment import solve_adjustment_fund
from pooling.studies import sweep as sweep_module
from pooling.studies.sweep import COLUMNS, load_sweep, run_sweep
from tests.factories import county, instance_dict

SPEC = """format = "pooling.spec/1"
[pooling]
scope = "optimise"
mode = "adjustment_fund"
[adjustment_fund]
contribution = [0.0]
retention = 0.0
[solvency]
measure = "cvar"
level = 0.99
reserve_share = 0.0
[rates]
min = 0.2
max = 0.9
"""
SMALL = [("a", "p1", 500, 200.0), ("b", "p1", 700, 190.0), ("c", "p2", 400, 210.0)]
"""tests/test_adjustment_fund.py's small group: tens of admissions, budgets near the claims."""


def _files(tmp_path, grid: str, elasticity: float = 0.0):
    data = instance_dict([county(cid, prefecture=pref, enrollees=n, contribution_per_capita=p, reserves=0.0,
                                 admission_rate=0.05, current_rate=0.3) for cid, pref, n, p in SMALL],
                         admin_fixed_per_fund=0.0, frequency_shock_cv=0.2,
                         regional_shocks={"county": {"weight": 0.3, "cv": 0.4}}, utilisation_elasticity=elasticity)
    (tmp_path / "small.json").write_text(json.dumps(data))
    (tmp_path / "spec.toml").write_text(SPEC)
    path = tmp_path / "sweep.toml"
    path.write_text(f'instances = ["small.json"]\nspec = "spec.toml"\n[grid]\n{grid}')
    return path


def test_contribution_is_a_grid_axis_and_rows_equal_the_plans(tmp_path):
    sweep = load_sweep(_files(tmp_path, '"adjustment_fund.contribution" = [0.0, 0.05, 0.2]\n'))
    assert [c.spec["adjustment_fund"]["contribution"] for c in sweep.cells] == [[0.0], [0.05], [0.2]]
    rows = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    instance = load_instance(tmp_path / "small.json")
    for cell, row in zip(sweep.cells, rows):
        plan = solve_adjustment_fund(instance, spec_from_dict(cell.spec))
        assert row["mode"] == "adjustment_fund" and row["status"] == plan.status == "optimal"
        assert row["objective"] == row["mean_rate"] == plan.objective
        rates = [m.rate for g in plan.groups for m in g.members]
        assert (row["min_rate"], row["max_rate"], row["pools"]) == (min(rates), max(rates), len(plan.groups))
        funds = {g.contribution_share for g in plan.groups if len(g.counties) > 1}
        assert row["contribution"] == (funds.pop() if funds else 0.0)
        assert row["bound"] is None and row["subsidy_top_up"] is None
        assert row["counties_worse_off"] == 0    # a fund is chosen only where it beats c = 0
    assert rows[0]["contribution"] == 0.0 and rows[2]["contribution"] == 0.2
    assert rows[2]["objective"] > rows[0]["objective"]     # pooling through a fund helps here
    # The same columns as a unified sweep's, plus mode and contribution, on the command line.
    out = tmp_path / "cli"
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(out), "--workers", "1"]) == 0
    with (out / "sweep.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["adjustment_fund.contribution", *COLUMNS]
    assert [r["mode"] for r in table] == ["adjustment_fund"] * 3


def test_checkpoints_are_verified_by_repricing_the_groups(tmp_path, monkeypatch):
    sweep = load_sweep(_files(tmp_path, '"adjustment_fund.contribution" = [0.05, 0.2]\n'))
    out = tmp_path / "out"
    first = run_sweep(sweep, out, ExecutionPlan())
    calls = []
    real = sweep_module.solve_cell

    def counting(shared, cell):
        calls.append(cell.key)
        return real(shared, cell)
    monkeypatch.setattr(sweep_module, "solve_cell", counting)
    assert run_sweep(sweep, out, ExecutionPlan()) == first and calls == []
    # A checkpoint whose rates were raised past solvency (its digest made to
    # match: not damaged, wrong) is refused and its cell solved again.
    path = next(p for p in (out / "cells").iterdir() if sweep.cells[1].key in p.name)
    record = json.loads(path.read_text())
    record["payload"]["plan"][0]["rates"] = [r + 0.2 for r in record["payload"]["plan"][0]["rates"]]
    record["payload_sha256"] = payload_digest(record["payload"])
    path.write_text(json.dumps(record))
    again = run_sweep(sweep, out, ExecutionPlan())
    assert calls == [sweep.cells[1].key] and again[0] == first[0]
    assert {k: v for k, v in again[1].items() if k != "wall_seconds"} == \
        {k: v for k, v in first[1].items() if k != "wall_seconds"}


def test_a_sweep_with_induced_utilisation(tmp_path):
    """e < 0 on the instance: the cells' plans are the fixed points."""
    sweep = load_sweep(_files(tmp_path, '"adjustment_fund.contribution" = [0.1]\n', elasticity=-0.407))
    (row,) = run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    plan = solve_adjustment_fund(load_instance(tmp_path / "small.json"), spec_from_dict(sweep.cells[0].spec))
    assert row["objective"] == plan.objective and row["mode"] == "adjustment_fund"
    assert all(m.admission_multiplier > 1.0 for g in plan.groups for m in g.members)   # rates above r0 0.3
