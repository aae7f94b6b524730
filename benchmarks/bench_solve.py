"""Benchmark: time to price candidate pools and to solve, per instance.

For each case it measures, in the same run:
- pricing all candidate pools with the engine (shifted window, adaptive span,
  two-resolution error control) vs a plain baseline: one FFT of 2^20 points on
  [0, U] per pool, no window shift, no error control;
- the MILP solve vs the brute-force oracle over all set partitions (<= 10
  counties), on the same prices.
Prints a table with ratios and writes benchmarks/results/solve.{json,md}.

Run: python benchmarks/bench_solve.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling import instance_from_dict, load_instance, load_spec, solve, spec_from_dict  # noqa: E402
from pooling.data.provenance import package_version  # noqa: E402
from pooling.economics.pools import PoolPricer, pool_model  # noqa: E402
from pooling.optimise.bruteforce import brute_force  # noqa: E402
from pooling.optimise.candidates import candidate_pools  # noqa: E402
from pooling.risk.lattice import _severity_lattice  # noqa: E402
from pooling.risk.measures import lattice_var_cvar  # noqa: E402
from pooling.risk.windows import _window  # noqa: E402
from tests.factories import random_instance_dict, spec_dict  # noqa: E402

PLAIN_POINTS = 2 ** 20


def plain_fft_cvar(model, level):
    """Baseline: FFT on [0, U] with 2^20 points, no shift, no error control."""
    _, high = _window(model)
    span = high / PLAIN_POINTS
    sev, _ = _severity_lattice(model.streams, span, PLAIN_POINTS)
    phi = np.fft.rfft(sev)
    lam, theta = model.expected_count, model.shock_cv
    if theta > 0:
        transform = np.exp(-(1 / theta ** 2) * np.log1p(-lam * theta ** 2 * (phi - 1.0)))
    else:
        transform = np.exp(lam * (phi - 1.0))
    pmf = np.maximum(np.fft.irfft(transform, PLAIN_POINTS), 0.0)
    return lattice_var_cvar(0.0, span, pmf, level)[1]


def cases():
    yield "tongliao/default", load_instance(ROOT / "instances/tongliao.json"), load_spec(ROOT / "models/default.toml")
    yield ("tongliao/optimise_any", load_instance(ROOT / "instances/tongliao.json"),
           load_spec(ROOT / "models/optimise_any.toml"))
    for seed, n in ((101, 8), (102, 10)):
        inst = instance_from_dict(random_instance_dict(seed, n_counties=n, n_prefectures=1,
                                                       contribution_range=(220.0, 360.0)),
                                  source=f"random-{seed}-{n}")
        yield f"random{n}/contiguous", inst, spec_from_dict(spec_dict(pooling={"contiguous": True}))


def run_case(name, inst, spec, repeat):
    pools = candidate_pools(inst, spec)
    engine_times, plain_times = [], []
    worst_diff = 0.0
    for _ in range(repeat):
        pricer = PoolPricer(inst, spec)
        start = time.perf_counter()
        priced = [pricer.price(p) for p in pools]
        engine_times.append(time.perf_counter() - start)
    sample = pools[:: max(1, len(pools) // 20)]  # baseline on <= ~20 pools, scaled up
    for _ in range(repeat):
        start = time.perf_counter()
        for p in sample:
            cv = plain_fft_cvar(pool_model(inst, p), spec.solvency.level)
            ref = pricer.price(p).cvar
            worst_diff = max(worst_diff, abs(cv - ref) / ref)
        plain_times.append((time.perf_counter() - start) * len(pools) / len(sample))
    solve_times, brute_times = [], []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = solve(inst, spec)
        solve_times.append(result.timings["solve"] + result.timings["build"])
    brute = None
    if len(inst.counties) <= 10:
        for _ in range(repeat):
            pricer = PoolPricer(inst, spec)
            [pricer.price(p) for p in pools]  # same prices, timed separately above
            start = time.perf_counter()
            brute = brute_force(inst, spec, pricer)
            brute_times.append(time.perf_counter() - start)
    return {
        "case": name, "counties": len(inst.counties), "candidate_pools": len(pools),
        "max_lattice_points": max(p.numerics.points for p in priced),
        "pricing_seconds": min(engine_times), "plain_fft_pricing_seconds": min(plain_times),
        "pricing_speedup": min(plain_times) / min(engine_times),
        "plain_vs_engine_cvar_max_rel_diff": worst_diff,
        "milp_seconds": min(solve_times),
        "brute_force_seconds": min(brute_times) if brute_times else None,
        "milp_speedup_vs_brute_force": (min(brute_times) / min(solve_times)) if brute_times else None,
        "objective": result.objective, "status": result.status,
        "brute_force_objective": brute.objective if brute else None,
    }


def _num(value, fmt, suffix=""):
    return "-" if value is None else f"{value:{fmt}}{suffix}"


def markdown(rows, meta):
    lines = [
        "# Solve benchmark", "",
        f"{meta['date']} on {meta['machine']}, Python {meta['python']}, HiGHS via Pyomo "
        f"{meta['pyomo']}; best of {meta['repeat']}. Pricing baseline: one plain 2^20-point FFT "
        f"per pool on [0, U]; solve baseline: brute force over all set partitions (same prices).", "",
        "| case | counties | pools | pricing s | plain FFT s | speedup | CVaR diff | MILP s | "
        "brute force s | speedup | objective |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['counties']} | {r['candidate_pools']} | {r['pricing_seconds']:.2f} | "
            f"{r['plain_fft_pricing_seconds']:.2f} | {r['pricing_speedup']:.1f}x | "
            f"{r['plain_vs_engine_cvar_max_rel_diff']:.1e} | {r['milp_seconds']:.3f} | "
            f"{_num(r['brute_force_seconds'], '.2f')} | {_num(r['milp_speedup_vs_brute_force'], '.0f', 'x')} | "
            f"{r['objective']:.4f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    rows = []
    for name, inst, spec in cases():
        row = run_case(name, inst, spec, args.repeat)
        rows.append(row)
        print(json.dumps(row))
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {platform.node()}",
            "python": platform.python_version(), "pyomo": package_version("pyomo"), "repeat": args.repeat}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "solve.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "solve.md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
