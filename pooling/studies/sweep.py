"""Design sweeps: one solve per cell of a grid over spec fields and instances,
a tidy table of the outcomes, and trade-off plots.

A sweep file (TOML)::

    instances = ["instances/xinyang.json"]
    spec = "models/default.toml"
    [grid]
    "equalisation.max_rate_gap" = [0.0, 0.01, 0.02, 0.05]
    "solvency.level" = [0.99, 0.995]
    [options]                     # optional solver options, as for solve
    time_limit = 120

Paths are relative to the sweep file's folder. Every cell's spec is built and
validated before any solve (a bad cell is an InputError naming it). Cells run on
the execution layer (serially, local processes or Dask), each keyed by a hash
of (instance bytes, resolved spec, options); a finished cell is written to
OUT/cells/ at once and skipped when the sweep is run again, so an interrupted
sweep resumes without redoing finished cells.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pooling.data.instance import Instance, load_instance, read_file_bytes
from pooling.data.options import SolveOptions
from pooling.data.provenance import package_version
from pooling.data.reading import parse_toml_bytes
from pooling.data.spec import Spec, load_spec, spec_from_dict
from pooling.errors import InputError
from pooling.execution.atomic import write_bytes_atomic
from pooling.execution.checkpoints import Checkpoints
from pooling.execution.tasks import ExecutionPlan, run_tasks
from pooling.optimise.solve import evaluate, solve

MAX_CELLS = 10_000
"""A grid larger than this is almost surely a typo (a list pasted twice, say)."""

WORSE_OFF_TOLERANCE = 1e-9
"""A county is worse off when its plan rate is below its rate alone by more than this."""

COLUMNS = ("instance", "status", "objective", "bound", "gap", "mean_rate", "min_rate", "max_rate", "pools",
           "counties_worse_off", "subsidy_top_up", "migrants_in_network", "wall_seconds")


@dataclass(frozen=True)
class Cell:
    """One solve of the sweep: an instance file, the swept values, the spec."""

    instance: str
    values: tuple[tuple[str, Any], ...]
    spec: dict[str, Any]
    options: dict[str, Any]
    key: str


@dataclass(frozen=True)
class Sweep:
    source: str
    fields: tuple[str, ...]
    cells: tuple[Cell, ...]


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and build (and validate) every cell."""
    path = Path(path)
    data = parse_toml_bytes(read_file_bytes(path, "sweep"), str(path))
    unknown = sorted(set(data) - {"instances", "spec", "grid", "options"})
    if unknown:
        raise InputError(f"{path}: unknown keys {', '.join(unknown)} (expected instances, spec, grid, options)")
    base = path.parent
    instances = data.get("instances")
    if not isinstance(instances, list) or not instances or not all(isinstance(i, str) for i in instances):
        raise InputError(f"{path}: instances must be a non-empty list of instance file paths")
    if not isinstance(data.get("spec"), str):
        raise InputError(f"{path}: spec must be the path of a spec TOML file")
    spec_path = _resolve(base, data["spec"])
    spec = load_spec(spec_path)
    spec_data = parse_toml_bytes(read_file_bytes(spec_path, "spec"), str(spec_path))
    grid = data.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise InputError(f"{path}: [grid] must map spec fields (\"section.field\") to non-empty lists of values")
    try:
        options = SolveOptions(**data.get("options", {})).to_dict()
    except TypeError as exc:
        raise InputError(f"{path}: [options]: {exc}") from None
    fields = tuple(grid)
    cells_wanted = math.prod(len(grid[f]) for f in fields) * len(instances)   # counted before any is listed
    if cells_wanted > MAX_CELLS:
        sizes = " x ".join([*(f"{len(grid[f])} {f}" for f in fields), f"{len(instances)} instances"])
        raise InputError(f"{path}: {cells_wanted:,} cells ({sizes}), more than the limit of {MAX_CELLS:,}")
    combos = list(itertools.product(*(grid[f] for f in fields)))
    loaded = {name: load_instance(_resolve(base, name)) for name in instances}
    cells = []
    for name in instances:
        for combo in combos:
            values = tuple(zip(fields, combo))
            where = f"{path} cell {dict(values)}"
            cell_spec = _with_values(spec_data, values, path)
            resolved = spec_from_dict(cell_spec, source=where, name=spec.name)
            key = _cell_key(loaded[name], resolved, options)
            cells.append(Cell(str(_resolve(base, name)), values, cell_spec, options, key))
    return Sweep(str(path), fields, tuple(cells))


def _resolve(base: Path, name: str) -> Path:
    candidate = base / name
    return candidate if candidate.exists() or Path(name).is_absolute() else Path(name)


def _with_values(spec: dict, values, path: Path) -> dict:
    data = json.loads(json.dumps(spec))
    for field, value in values:
        section, _, key = field.partition(".")
        if not key or "." in key:
            raise InputError(f"{path}: grid field {field!r} must be \"section.field\", e.g. \"solvency.level\"")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise InputError(f"{path}: grid field {field!r}: {section} is not a table")
        data[section][key] = value
    return data


def _cell_key(instance: Instance, spec: Spec, options: dict) -> str:
    text = json.dumps([instance.sha256, spec.to_dict(), options, package_version("pooling")], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def solve_cell(_shared, cell: Cell) -> dict[str, Any]:
    """Solve one cell and summarise it as a table row (a task: may run in a worker)."""
    instance = load_instance(cell.instance)
    spec = spec_from_dict(cell.spec, source=cell.instance)
    result = solve(instance, spec, options=SolveOptions(**cell.options))
    row: dict[str, Any] = {field: value for field, value in cell.values}
    rates = [p.rate for p in result.pools]
    row.update(instance=cell.instance, status=result.status, objective=result.objective, bound=result.bound,
               gap=result.gap, mean_rate=result.mean_rate, min_rate=min(rates, default=None),
               max_rate=max(rates, default=None), pools=len(result.pools), wall_seconds=result.wall_seconds)
    row.update(counties_worse_off=None, subsidy_top_up=None, migrants_in_network=None)
    if result.pools:
        plan = [list(p.pricing.counties) for p in result.pools]
        rate_of = {c: p.rate for p in result.pools for c in p.pricing.counties}
        pricing = evaluate(instance, spec, plan, subsidy=spec.solvency.measure != "ruin")
        if pricing.subsidy is not None:
            row["subsidy_top_up"] = pricing.subsidy["total_top_up"]
            alone = {c["id"]: c["rate_alone"] for p in pricing.subsidy["pools"]
                     for c in p["county_compensation"] if c["solvent_alone"]}
            row["counties_worse_off"] = sum(1 for c, r in alone.items() if rate_of[c] < r - WORSE_OFF_TOLERANCE)
        row["migrants_in_network"] = migrants_in_network(instance, plan)
    return row


def migrants_in_network(instance: Instance, plan: list[list[str]]) -> float:
    """Enrollees living in another county of their own pool (expected count)."""
    pool_of = {c: i for i, pool in enumerate(plan) for c in pool}
    total = 0.0
    for county in instance.counties:
        if county.id not in pool_of:
            continue
        inside = math.fsum(w for k, w in county.migrant_destinations if pool_of.get(k) == pool_of[county.id])
        total += county.enrollees * county.migrant_share * inside
    return total


def run_sweep(sweep: Sweep, out: Path, plan: ExecutionPlan) -> list[dict[str, Any]]:
    """Every cell's row, in grid order; finished cells come from OUT/cells/."""
    store = Checkpoints(out / "cells", resume=True)
    done = {i: row for i, c in enumerate(sweep.cells) if (row := store.load(c.key)) is not None}
    return run_tasks(solve_cell, list(sweep.cells), None, plan,
                     on_result=lambda i, row: store.save(sweep.cells[i].key, row), done=done)


def write_table(rows: list[dict[str, Any]], fields: tuple[str, ...], out: Path) -> list[Path]:
    """sweep.csv always; sweep.parquet when pandas and pyarrow are installed."""
    columns = list(fields) + [c for c in COLUMNS if c not in fields]
    table = [{c: row.get(c) for c in columns} for row in rows]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(table)
    written = [out / "sweep.csv"]
    write_bytes_atomic(written[0], text.getvalue().encode("utf-8"))
    try:
        import pandas as pd
        data = io.BytesIO()
        pd.DataFrame(table, columns=columns).to_parquet(data, index=False)
    except ImportError:
        return written
    written.append(out / "sweep.parquet")
    write_bytes_atomic(written[1], data.getvalue())
    return written


def plot_tradeoff(rows: list[dict[str, Any]], fields: tuple[str, ...], out: Path) -> Path | None:
    """Mean rate against the first swept field, one line per value of the
    others (and per instance): with max_rate_gap first, the price of
    equalisation curve."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not fields:
        return None
    x_field = fields[0]
    series: dict[str, list[tuple[Any, float]]] = {}
    for row in rows:
        if row.get("mean_rate") is None or row.get("status") == "partial":
            continue
        label = ", ".join([Path(row["instance"]).stem] + [f"{f}={row[f]}" for f in fields[1:]])
        series.setdefault(label, []).append((row[x_field], row["mean_rate"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in sorted(series.items()):
        points.sort(key=lambda p: p[0])
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label)
    ax.set_xlabel(x_field)
    ax.set_ylabel("enrollee-weighted mean rate")
    ax.set_title("Sweep: mean rate against " + x_field)
    if series:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "sweep.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
