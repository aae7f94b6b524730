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

A spec with `[pooling] mode = "adjustment_fund"` (or a grid setting
"pooling.mode") plans adjustment funds in its cells
(optimise.adjustment.solve_adjustment_fund); "adjustment_fund.contribution"
takes a share (a menu of one) or a menu per cell. Its rows have the same
columns, the plan's members' rates standing for pools' rates, plus `mode`
and `contribution` (the share its funds take; several, ';'-joined, when
groups chose differently); a unified cell's row has mode "unified" and no
contribution. The figures of unified pools only (subsidy, migrants in
network, effective rates) are empty there.
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

from pooling.data.benefits import BenefitMenu
from pooling.data.inputs import as_problem
from pooling.data.instance import Instance, load_instance, read_file_bytes
from pooling.data.options import SolveOptions
from pooling.data.provenance import package_version
from pooling.data.reading import parse_toml_bytes
from pooling.data.spec import Spec, load_spec, spec_from_dict
from pooling.economics.care import MIGRANT, RESIDENT, portability
from pooling.economics.group_rates import group_mean, plan_groups
from pooling.errors import InputError
from pooling.execution.atomic import write_bytes_atomic
from pooling.execution.checkpoints import Checkpoints, tell
from pooling.execution.tasks import ExecutionPlan, run_tasks
from pooling.optimise.block_records import FINISHED, PlanRejected, agreeing, canonical, check_certificate, verify_plan
from pooling.optimise.problem import plan_objective
from pooling.optimise.result import mean_rate
from pooling.optimise.solve import evaluate, solve

MAX_CELLS = 10_000
"""A grid larger than this is almost surely a typo (a list pasted twice, say)."""

WORSE_OFF_TOLERANCE = 1e-9
"""A county is worse off when its plan rate is below its rate alone by more than this."""

COLUMNS = ("instance", "status", "objective", "bound", "gap", "mean_rate", "min_rate", "max_rate", "pools",
           "counties_worse_off", "subsidy_top_up", "migrants_in_network", "migrant_in_network_share",
           "resident_effective_rate",
           "migrant_effective_rate", "mean_effective_rate", "wall_seconds", "mode", "contribution")
CONTRIBUTION_FIELD = "adjustment_fund.contribution"
"""A grid field whose scalar values are menus of one share (the spec takes a list)."""


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
            if isinstance(resolved.benefits, BenefitMenu):   # a row evaluates its plan with --subsidy
                raise resolved.benefits.refusal("`pooling sweep`")
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
        if field == CONTRIBUTION_FIELD and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        data[section][key] = value
    return data


def _cell_key(instance: Instance, spec: Spec, options: dict) -> str:
    text = json.dumps([instance.sha256, spec.to_dict(), options, package_version("pooling")], sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def solve_cell(_shared, cell: Cell) -> dict[str, Any]:
    """Solve one cell (a task: may run in a worker): its table row and its
    plan, {"row": ..., "plan": [{"counties", "contracts", "rate"}, ...]}, the
    JSON data its checkpoint holds."""
    instance = load_instance(cell.instance)
    spec = spec_from_dict(cell.spec, source=cell.instance)
    if spec.adjustment_fund is not None:
        return _solve_fund_cell(cell, instance, spec)
    result = solve(instance, spec, options=SolveOptions(**cell.options))
    outcome = {name: getattr(result, name) for name in OUTCOME_FIELDS}
    plan = [{"counties": list(p.pricing.counties), "contracts": list(p.pricing.contracts), "rate": p.rate}
            for p in result.pools]
    return {"row": cell_row(cell, instance, spec, outcome, result.pools), "plan": plan}


OUTCOME_FIELDS = ("status", "objective", "bound", "gap", "mean_rate", "wall_seconds")
"""The solve's figures a row copies (the rest it computes from the plan)."""


def cell_row(cell: Cell, instance: Instance, spec: Spec, outcome: dict[str, Any], pools) -> dict[str, Any]:
    """A cell's table row from its solve's `outcome` (OUTCOME_FIELDS) and plan."""
    row: dict[str, Any] = {field: value for field, value in cell.values}
    rates = [p.rate for p in pools]
    row.update(instance=cell.instance, min_rate=min(rates, default=None), max_rate=max(rates, default=None),
               pools=len(pools), **outcome)
    row.update(counties_worse_off=None, subsidy_top_up=None, migrants_in_network=None,
               migrant_in_network_share=None, resident_effective_rate=None, migrant_effective_rate=None,
               mean_effective_rate=None, mode="unified", contribution=None)
    if pools:
        plan = [list(p.pricing.counties) for p in pools]
        rate_of = {c: p.rate for p in pools for c in p.pricing.counties}
        contracts = [{"pool": list(p.pricing.counties), "option": o} for p in pools for o in p.pricing.contracts]
        pricing = evaluate(instance, spec, plan, contracts=contracts or None, subsidy=spec.solvency.measure != "ruin")
        if pricing.subsidy is not None:
            row["subsidy_top_up"] = pricing.subsidy["total_top_up"]
            alone = {c["id"]: c["rate_alone"] for p in pricing.subsidy["pools"]
                     for c in p["county_compensation"] if c["solvent_alone"]}
            row["counties_worse_off"] = sum(1 for c, r in alone.items() if rate_of[c] < r - WORSE_OFF_TOLERANCE)
        row["migrants_in_network"] = migrants_in_network(instance, plan)
        # The frontier's figures (pooling frontier): groups' people-weighted means, and the plan's mean.
        cares = [(care, p.rate) for p in pools for care in p.pricing.care]
        groups = plan_groups(instance, cares)
        figures = portability(cares)
        row.update(migrant_in_network_share=figures["migrant_in_network_share"],
                   resident_effective_rate=group_mean(groups, RESIDENT),
                   migrant_effective_rate=group_mean(groups, MIGRANT),
                   mean_effective_rate=figures["mean_effective_rate"])
    return row


def _solve_fund_cell(cell: Cell, instance: Instance, spec: Spec) -> dict[str, Any]:
    """A cell of adjustment funds: its row and plan, {"counties",
    "contribution", "rates"} per group (rates per member, ids sorted)."""
    import time

    from pooling.optimise.adjustment import solve_adjustment_fund
    started = time.perf_counter()
    plan = solve_adjustment_fund(instance, spec)
    outcome = {"status": plan.status, "objective": plan.objective, "bound": None, "gap": None,
               "mean_rate": plan.objective, "wall_seconds": time.perf_counter() - started}
    groups = [{"counties": list(g.counties), "contribution": g.contribution_share,
               "rates": [m.rate for m in g.members]} for g in plan.groups]
    return {"row": fund_row(cell, instance, spec, outcome, groups), "plan": groups}


def fund_row(cell: Cell, instance: Instance, spec: Spec, outcome: dict[str, Any],
             groups: list[dict[str, Any]]) -> dict[str, Any]:
    """An adjustment-fund cell's row from its plan's groups (module docstring):
    counties worse off are members whose rate is below their rate alone (the
    unified engine's pool of one under the same rules)."""
    import dataclasses

    from pooling.economics.pools import PoolPricer
    row: dict[str, Any] = {field: value for field, value in cell.values}
    rates = [r for g in groups for r in g["rates"]]
    shares = sorted({g["contribution"] for g in groups if len(g["counties"]) > 1})
    row.update(instance=cell.instance, min_rate=min(rates, default=None), max_rate=max(rates, default=None),
               pools=len(groups), **outcome)
    row.update(counties_worse_off=None, subsidy_top_up=None, migrants_in_network=None,
               migrant_in_network_share=None, resident_effective_rate=None, migrant_effective_rate=None,
               mean_effective_rate=None, mode="adjustment_fund",
               contribution=";".join(f"{x:g}" for x in shares) if len(shares) > 1 else (shares[0] if shares
                                                                                          else 0.0))
    if groups:
        alone = PoolPricer(instance, dataclasses.replace(spec, adjustment_fund=None))
        row["counties_worse_off"] = sum(1 for g in groups for c, r in zip(g["counties"], g["rates"])
                                        if r < alone.price({c}).max_rate - WORSE_OFF_TOLERANCE)
    return row


def _restore_fund_cell(payload: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """An adjustment-fund cell's row from its checkpoint, once verified: every
    group re-priced at its contribution and members' rates
    (economics.adjustment_fund) must be solvent with every rate at least
    rates.min, the groups a partition of the counties, and the row computed
    again from the plan must equal the stored one."""
    from pooling.economics.adjustment_fund import AdjustmentFundPricer
    instance = load_instance(cell.instance)
    spec = spec_from_dict(cell.spec, source=cell.instance)
    stored, groups = payload["row"], payload["plan"]
    if stored.get("status") not in FINISHED or not groups:
        raise PlanRejected(f"it holds no finished plan (status {stored.get('status')!r})")
    seen: list[str] = []
    pricer = AdjustmentFundPricer(instance, spec)
    people = 0.0
    for group in groups:
        if not isinstance(group, dict) or set(group) != {"counties", "contribution", "rates"} or \
                not isinstance(group["counties"], list) or not isinstance(group["rates"], list) or \
                len(group["rates"]) != len(group["counties"]) or \
                not all(isinstance(c, str) for c in group["counties"]) or \
                not all(isinstance(r, int | float) and not isinstance(r, bool) for r in group["rates"]):
            raise PlanRejected("its plan is not a list of groups with counties, a contribution and rates")
        if sorted(group["counties"]) != group["counties"] or not set(group["counties"]) <= set(instance.ids):
            raise PlanRejected(f"group {group['counties']} is not a sorted list of the instance's counties")
        seen += group["counties"]
        outcome = pricer.price_group(group["counties"], group["contribution"], spec.adjustment_fund.retention,
                                     group["rates"])
        pricer.forget(group["counties"])
        if not outcome.solvent or min(group["rates"]) < spec.rates.min:
            raise PlanRejected(f"group {group['counties']} is not solvent at its rates, or below rates.min")
        people += math.fsum(instance.county(c).enrollees * r for c, r in zip(group["counties"], group["rates"]))
    if sorted(seen) != sorted(instance.ids):
        raise PlanRejected("its groups are not a partition of the instance's counties")
    outcome = {name: stored.get(name) for name in OUTCOME_FIELDS} | {"bound": None, "gap": None}
    objective = people / sum(c.enrollees for c in instance.counties)
    outcome["objective"] = agreeing(outcome["objective"], objective, "objective")
    outcome["mean_rate"] = outcome["objective"]
    row = fund_row(cell, instance, spec, outcome, groups)
    return _as_stored(row, stored)


def _as_stored(row: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The re-priced row, once it equals the checkpoint's stored row field by field."""
    if canonical(row) != canonical(stored):
        field = next((k for k in list(row) + list(stored) if canonical(row.get(k)) != canonical(stored.get(k))),
                     "a field")
        raise PlanRejected(f"{field} {stored.get(field)!r} does not match its plan re-priced ({row.get(field)!r})")
    return row


def restore_cell(payload: Any, cell: Cell) -> dict[str, Any]:
    """A finished cell's row from its checkpoint, once verified: its plan
    re-priced under the cell's instance and spec and checked against every
    rule (optimise.block_records.verify_plan), the objective recomputed from
    it, and the whole row computed again from the plan and compared with the
    stored one. PlanRejected says what does not match."""
    if not isinstance(payload, dict) or set(payload) != {"row", "plan"} or \
            not isinstance(payload["row"], dict) or not isinstance(payload["plan"], list):
        raise PlanRejected("it is not a sweep cell record")
    if payload["row"].get("mode") == "adjustment_fund":
        return _restore_fund_cell(payload, cell)
    stored, entries = payload["row"], []
    if stored.get("status") not in FINISHED or not payload["plan"]:
        raise PlanRejected(f"it holds no finished plan (status {stored.get('status')!r})")
    for entry in payload["plan"]:
        if not isinstance(entry, dict) or set(entry) != {"counties", "contracts", "rate"} or \
                not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                        for v in (entry["counties"], entry["contracts"])):
            raise PlanRejected("its plan is not a list of pools with counties, contracts and a rate")
        entries.append((tuple(entry["counties"]), tuple(entry["contracts"]), entry["rate"]))
    raw = load_instance(cell.instance)
    instance, spec = as_problem(raw, spec_from_dict(cell.spec, source=cell.instance), "sweep")
    pools = verify_plan(instance, spec, entries)
    outcome = {name: stored.get(name) for name in OUTCOME_FIELDS}
    outcome["objective"] = agreeing(outcome["objective"], plan_objective(instance, spec, pools), "objective")
    outcome["mean_rate"] = mean_rate(pools)
    check_certificate(spec, outcome["objective"], outcome["bound"], outcome["gap"])
    seconds = outcome["wall_seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
        raise PlanRejected(f"wall_seconds {seconds!r} is not a duration")
    row = cell_row(cell, raw, spec, outcome, pools)
    return _as_stored(row, stored)


def migrants_in_network(instance: Instance, plan: list[list[str]]) -> float:
    """Enrollees living in another county of their own pool (expected count):
    migrants the pool itself brings in network. Care in network by a contract
    or by the settlement rules is not counted here; the row's
    `migrant_in_network_share` (result.json's portability figure) counts every
    way, as a share of migrants' admissions."""
    pool_of = {c: i for i, pool in enumerate(plan) for c in pool}
    total = 0.0
    for county in instance.counties:
        if county.id not in pool_of:
            continue
        inside = math.fsum(w for k, w in county.migrant_destinations if pool_of.get(k) == pool_of[county.id])
        total += county.enrollees * county.migrant_share * inside
    return total


def run_sweep(sweep: Sweep, out: Path, plan: ExecutionPlan) -> list[dict[str, Any]]:
    """Every cell's row, in grid order. Finished cells come from OUT/cells/
    once they verify (`restore_cell`); a cell whose checkpoint does not is
    said on stderr, naming the file, and solved again."""
    store = Checkpoints(out / "cells", resume=True, kind="cell")
    done = {}
    for index, cell in enumerate(sweep.cells):
        payload = store.load(cell.key)
        if payload is None:
            continue
        try:
            done[index] = {"row": restore_cell(payload, cell), "plan": payload["plan"]}
        except PlanRejected as exc:
            store.reject(cell.key, f"cell {dict(cell.values)} of {Path(cell.instance).name}: {exc}")
    if done or store.rejected:
        failed = f" ({store.rejected} of them had a checkpoint that failed verification)" if store.rejected else ""
        tell(f"sweep: {len(done)} of {len(sweep.cells)} cells reused from {store.folder} (each plan verified by "
             f"re-pricing its pools), {len(sweep.cells) - len(done)} to solve{failed}")
    records = run_tasks(solve_cell, list(sweep.cells), None, plan,
                        on_result=lambda i, record: _keep(store, sweep.cells[i], record), done=done)
    return [record["row"] for record in records]


def _keep(store: Checkpoints, cell: Cell, record: dict[str, Any]) -> None:
    """A finished cell is kept; one without a finished plan is solved again by the next run."""
    if record["row"].get("status") in FINISHED and record["plan"]:
        store.save(cell.key, record)


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
