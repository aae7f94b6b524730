"""Benchmark: the 2020s instances china2023.json and henan2023.json (issue 27, item 3).

Per file, three runs, each a `pooling` command in a fresh process, as a user runs it:
- status quo: `pooling solve FILE --spec models/status_quo.toml --workers 2` (every
  prefecture fund alone, the pooling unit of the 2020s);
- provincial pool: `pooling evaluate FILE --spec SPEC --plan PLAN`, the plan one pool per
  province (unified collection and payment, the issue's "unified provincial pool") and SPEC
  the status-quo solvency and rates with `scope = "optimise"`, `within = "province"`, so the
  plan is within the rules;
- provincial adjustment fund: `pooling evaluate FILE --spec ADJUSTMENT_SPEC --plan PLAN
  --workers 2`, the same plan read as one adjustment fund per province whose members are its
  prefecture funds (the issue's middle mode), each paying ADJUSTMENT_CONTRIBUTION of revenue,
  members at the largest solvent rates of the better rate rule (docs/model.md "Adjustment
  funds");
- optimised within each province: `pooling solve FILE --spec SPEC --workers 2 --time-limit
  OPTIMISE_TIME_LIMIT` with SPEC as above plus `contiguous = true` (the optimiser's choice of
  contiguous pools of prefecture funds inside each province; column generation for provinces
  of more than 10 funds, so the gap it reports is kept).
The files carry induced utilisation (parameters.utilisation_elasticity = -0.407, r0 each unit's
current_rate): every rate is a fixed point, members of an adjustment fund each at its own rate.
Target (issue 27): the status quo and the three-mode comparison (prefecture funds, provincial
adjustment fund, unified provincial pool) of china2023 on 2 cores within 10 minutes
(TARGET_SECONDS); the optimised run is reported beside it. Every row records the
1-minute load average at its start and end and the CPU seconds of its process tree (the
machine is shared: wall time alone says little).

Writes benchmarks/results/urrbmi.{json,md}.
Run: python benchmarks/bench_urrbmi.py [--repeat N] [--keep-optimised]
(--keep-optimised: the optimised rows are copied from the existing urrbmi.json, with their own
commit and date, instead of run again.)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling.data.provenance import package_version  # noqa: E402

TARGET_SECONDS = 600.0
"""Issue 27: the status-quo solve and the mode comparison of china2023.json within 10 minutes on 2 cores."""
OPTIMISE_TIME_LIMIT = 600.0
"""The optimised run stops here whatever it has (status feasible or time_limit, with its gap):
the machine is shared and a run past the target says enough."""
FILES = ("china2023", "henan2023")
THREE_MODES = ("status quo (prefecture funds)", "provincial adjustment fund", "unified provincial pool")
"""The rows the target covers."""
ADJUSTMENT_CONTRIBUTION = 0.05
"""Share of revenue each prefecture fund pays into its province's adjustment fund (assumed: a
mid value of the issue's menu, 0.03-0.10; one share keeps the run within the target)."""
STATUS_QUO_TERMS = """[solvency]
measure = "cvar"
level = 0.99
reserve_share = 0.5

[rates]
min = 0.3
max = 0.9
"""
"""models/status_quo.toml's solvency and rates, shared by the specs below."""
ADJUSTMENT_SPEC = """# One adjustment fund per province (bench_urrbmi.py): models/status_quo.toml's solvency and
# rates, prefecture funds keeping their own budgets and paying a share of revenue in.
format = "pooling.spec/1"

[pooling]
scope = "optimise"
within = "province"
mode = "adjustment_fund"

[adjustment_fund]
contribution = [{share}]
retention = 0.0

""" + STATUS_QUO_TERMS
PROVINCIAL_SPEC = """# Unified provincial pools (bench_urrbmi.py): models/status_quo.toml's solvency and rates,
# pools allowed up to a whole province.
format = "pooling.spec/1"

[pooling]
scope = "optimise"
within = "province"

""" + STATUS_QUO_TERMS


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "unknown"


def _run(args: list[str], out: Path, result_name: str) -> tuple[dict, float, dict]:
    """One `pooling` command in a fresh process: its result file, wall seconds and machine record."""
    load_start, cpu_start = os.getloadavg()[0], _children_cpu()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pooling.cli", *args, "--out", str(out)],
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 4):   # 4: no plan at the time limit (recorded as such)
        raise SystemExit(f"pooling {args[0]} failed ({done.returncode}): {done.stderr}")
    machine = {"cpu_seconds": _children_cpu() - cpu_start, "load_average_1min": [load_start, os.getloadavg()[0]],
               "commit": _commit()}
    return json.loads((out / result_name).read_text()), seconds, machine


def _province_plan(instance: Path) -> dict:
    pools: dict[str, list[str]] = {}
    for county in json.loads(instance.read_text(encoding="utf-8"))["counties"]:
        pools.setdefault(county["province"], []).append(county["id"])
    return {"format": "pooling.plan/1", "pools": [pools[v] for v in sorted(pools)]}


def _row(name: str, mode: str, result: dict, seconds: float, machine: dict, enrollees: dict) -> dict:
    if result.get("mode") == "adjustment_fund":
        return _adjustment_row(name, mode, result, seconds, machine, enrollees)
    pools = result["pools"]
    rates = [p["rate"] for p in pools]
    weights = [sum(enrollees[c] for c in p["counties"]) for p in pools]
    return {"instance": name, "mode": mode, "status": result["status"], "objective": result.get("objective"),
            "gap": result.get("gap"),
            "mean_rate": result.get("mean_rate"), "pools": len(pools),
            "min_rate": min(rates, default=None), "max_rate": max(rates, default=None),
            "rate_spread_enrollee_weighted_sd": _weighted_sd(rates, weights) if rates else None,
            "seconds": seconds, **machine, "date": datetime.date.today().isoformat()}


def _adjustment_row(name: str, mode: str, result: dict, seconds: float, machine: dict, enrollees: dict) -> dict:
    """A row of the adjustment-fund evaluation: rates are the members' (prefecture funds')."""
    members = [m for g in result["groups"] for m in g["members"]]
    rates = [m["rate"] for m in members]
    weights = [enrollees[m["county"]] for m in members]
    return {"instance": name, "mode": mode, "status": result["status"], "objective": result["objective"],
            "gap": None, "mean_rate": result["objective"], "pools": len(result["groups"]),
            "min_rate": min(rates), "max_rate": max(rates),
            "rate_spread_enrollee_weighted_sd": _weighted_sd(rates, weights),
            "contributions": sorted({g["contribution"] for g in result["groups"]}),
            "rate_rules": sorted({g["rate_rule"] for g in result["groups"]}),
            "seconds": seconds, **machine, "date": datetime.date.today().isoformat()}


def _weighted_sd(values: list[float], weights: list[int]) -> float:
    total = sum(weights)
    mean = sum(v * w for v, w in zip(values, weights)) / total
    return (sum(w * (v - mean) ** 2 for v, w in zip(values, weights)) / total) ** 0.5


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the fastest is kept")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--keep-optimised", action="store_true",
                        help="copy the optimised rows from the existing urrbmi.json instead of running them")
    args = parser.parse_args(argv)
    kept = []
    if args.keep_optimised:
        previous = json.loads((Path(args.out) / "urrbmi.json").read_text())["rows"]
        kept = [r for r in previous if r["mode"] == "optimised within province"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        spec = tmp / "provincial.toml"
        spec.write_text(PROVINCIAL_SPEC)
        contiguous = tmp / "provincial_contiguous.toml"
        contiguous.write_text(PROVINCIAL_SPEC.replace('within = "province"', 'within = "province"\ncontiguous = true'))
        adjustment = tmp / "adjustment.toml"
        adjustment.write_text(ADJUSTMENT_SPEC.format(share=ADJUSTMENT_CONTRIBUTION))
        for name in FILES:
            instance = ROOT / "instances" / f"{name}.json"
            enrollees = {c["id"]: c["enrollees"] for c in json.loads(instance.read_text())["counties"]}
            plan = tmp / f"{name}-provinces.json"
            plan.write_text(json.dumps(_province_plan(instance)))
            runs = {"status quo (prefecture funds)": (["solve", str(instance), "--spec",
                                                       str(ROOT / "models" / "status_quo.toml"),
                                                       "--workers", "2", "--quiet"], "result.json"),
                    "provincial adjustment fund": (["evaluate", str(instance), "--spec", str(adjustment), "--plan",
                                                    str(plan), "--workers", "2"], "evaluation.json"),
                    "unified provincial pool": (["evaluate", str(instance), "--spec", str(spec), "--plan", str(plan)],
                                                "evaluation.json"),
                    "optimised within province": (["solve", str(instance), "--spec", str(contiguous), "--workers",
                                                   "2", "--time-limit", f"{OPTIMISE_TIME_LIMIT:g}", "--quiet"],
                                                  "result.json")}
            if args.keep_optimised:
                del runs["optimised within province"]
            for mode, (command, result_name) in runs.items():
                best = None
                for k in range(args.repeat):
                    measured = _run(command, tmp / f"{name}-{len(rows)}-{k}", result_name)
                    if best is None or measured[1] < best[1]:
                        best = measured
                rows.append(_row(name, mode, *best, enrollees) | {"repeat": args.repeat})
                print(json.dumps(rows[-1]), flush=True)
            rows += [r for r in kept if r["instance"] == name]
    write(Path(args.out), rows, kept=bool(kept))


def _number(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def write(out: Path, rows: list[dict], kept: bool = False) -> None:
    """urrbmi.json and urrbmi.md from `rows` (`kept`: the optimised rows copied from an earlier run)."""
    china = [r for r in rows if r["instance"] == "china2023"]
    total = sum(r["seconds"] for r in china if r["mode"] in THREE_MODES)
    data = {"benchmark": "urrbmi", "pooling": package_version("pooling"), "python": platform.python_version(),
            "machine": platform.machine(), "cores": os.cpu_count(), "target_seconds": TARGET_SECONDS,
            "china2023_three_mode_seconds": total, "met": total <= TARGET_SECONDS, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "urrbmi.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = ["# The 2020s instances: prefecture funds, provincial adjustment fund, unified provincial pool", "",
             f"pooling {data['pooling']}, Python {data['python']}, {data['machine']}, {data['cores']} cores shared "
             "with other jobs; each run a `pooling` command in a fresh process (best of the row's repeats). "
             "Status quo: `solve --spec models/status_quo.toml --workers 2` (every prefecture fund alone); "
             "provincial pool: `evaluate` of one pool per province under the status-quo solvency and rates "
             "(CVaR 99 %, half the reserves, rates 0.3-0.9); provincial adjustment fund: `evaluate --workers 2` "
             "of the same plan read as one adjustment fund per province, each prefecture fund paying "
             f"{ADJUSTMENT_CONTRIBUTION:.0%} of its revenue in (assumed), no retention, rates its members' "
             "(prefecture funds'); optimised within province: `solve` under that spec "
             "with `contiguous = true`, `--workers 2 --time-limit 600` (column generation for provinces of more "
             "than 10 funds: status feasible, with the gap it proves). Load: the 1-minute load average at the "
             "start and "
             "end of the run; CPU s: its process tree's CPU time. Rate sd: enrollee-weighted standard deviation "
             "of the pools' rates. These files are hypothetical designs on rescaled data (instances/README.md). "
             "They carry induced utilisation (utilisation_elasticity -0.407, r0 = current_rate): every rate is "
             "a fixed point (docs/model.md)." + (
                 " The optimised rows are copied from an earlier run (`--keep-optimised`; their commit and "
                 "date), which may predate the elasticity in the files." if kept else ""),
             "",
             "| instance | mode | status | gap | pools | mean rate | min rate | max rate | rate sd | seconds | CPU s "
             "| load | repeats | commit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        load = r["load_average_1min"]
        gap = "-" if r["gap"] is None else f"{r['gap']:.4%}"
        lines.append(f"| {r['instance']} | {r['mode']} | {r['status']} | {gap} | {r['pools']} | "
                     f"{_number(r['mean_rate'])} | {_number(r['min_rate'])} | {_number(r['max_rate'])} | "
                     f"{_number(r['rate_spread_enrollee_weighted_sd'])} | "
                     f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {load[0]:.1f}-{load[1]:.1f} | {r['repeat']} | "
                     f"{r['commit']} |")
    lines += ["", f"china2023.json, status quo and the three-mode comparison (the first three modes): {total:.1f} s "
              f"(target <= {TARGET_SECONDS:.0f} s on 2 cores: {'met' if data['met'] else 'NOT met'} in this run); "
              "the optimised run is beside it (a row's commit and date say when it was measured)."]
    (out / "urrbmi.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
