"""Benchmark: per-pool pricing time of the old engine vs the new one, same run (issue 12, item 3).

For every pool of benchmarks/results/pricing_reference.json (Tongliao candidates,
Henan pools, national single-county pools, shock-cv and Pareto-tail variants):
- old: benchmarks/reference_engine.price (frozen copy of the engine at 86b707d);
- new: pooling.economics.pools.PoolPricer(...)._price (the package, memo bypassed).
The two are timed interleaved, pool by pool (old, new, then new, old on the next
repeat), best of --repeat per pool, so machine load hits both alike. Reported per
set: mean ms per pool, the speed-up (sum of old times / sum of new times), and the
largest relative differences of VaR, CVaR and max rate against the stored
reference and against the old engine re-run here.

The new engine's pure memos (per severity set: band._severity_grid and
_key_quadrature; per lattice size: _phase_steps, _cell_transform; per county:
care.county_care's flows and their streams) are warm after a group's first pools, as they are in a
solve; `cold_ms` reports the first pool of each set with every memo cleared.

Writes benchmarks/results/bench_pricing.{json,md}.
Run: python benchmarks/bench_pricing.py [--repeat N] [--step K]   (K: every K-th pool)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import pricing_reference  # noqa: E402
import reference_engine  # noqa: E402

from pooling.economics.pools import PoolPricer  # noqa: E402
from pooling.risk import band, windows  # noqa: E402

FIELDS = ("var", "cvar", "max_rate")


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def run(repeat: int, step: int) -> dict:
    rows = pricing_reference.load_reference()
    pools = rows["pools"][::step] if step > 1 else rows["pools"]
    pricers: dict[tuple[str, str], PoolPricer] = {}
    results = []
    cold = {}
    for i, ref in enumerate(pools):
        key = (ref["instance"], ref["variant"])
        instance, spec = pricing_reference.instance(*key), pricing_reference.spec(ref["spec"])
        if key not in pricers:
            pricers[key] = PoolPricer(instance, spec)
        pricer = pricers[key]
        members = frozenset(ref["members"])
        if ref["set"] not in cold:
            for memo in (band._severity_grid, band._key_quadrature, windows._shock_quantiles,
                         band._phase_steps, band._cell_transform):
                memo.cache_clear()
            for memo in ("_care", "_severities", "_care_totals"):                # care.county_care's flows
                instance.__dict__.pop(memo, None)
            started = time.perf_counter()
            pricer._price(members)
            cold[ref["set"]] = (time.perf_counter() - started) * 1e3
        old_t, new_t = [], []
        for r in range(repeat):
            order = ("old", "new") if (i + r) % 2 == 0 else ("new", "old")
            for which in order:
                started = time.perf_counter()
                if which == "old":
                    old = reference_engine.price(instance, spec, members)
                    old_t.append(time.perf_counter() - started)
                else:
                    new = pricer._price(members)
                    new_t.append(time.perf_counter() - started)
        results.append({
            "set": ref["set"], "variant": ref["variant"], "members": len(members),
            "old_ms": min(old_t) * 1e3, "new_ms": min(new_t) * 1e3, "new_points": new.numerics.points,
            **{f"vs_reference_{f}": _rel(getattr(new, f), ref[f]) for f in FIELDS},
            **{f"vs_old_{f}": _rel(getattr(new, f), old[f]) for f in FIELDS},
            "old_vs_reference": max(_rel(old[f], ref[f]) for f in FIELDS),
        })
    summary = {}
    for name in ("tongliao", "henan", "china", "variants", "all"):
        part = [r for r in results if name in ("all", r["set"])]
        if not part:
            continue
        old_total, new_total = sum(r["old_ms"] for r in part), sum(r["new_ms"] for r in part)
        summary[name] = {
            "pools": len(part),
            "old_ms_per_pool": old_total / len(part),
            "new_ms_per_pool": new_total / len(part),
            "speedup": old_total / new_total,
            "min_pool_speedup": min(r["old_ms"] / r["new_ms"] for r in part),
            "cold_ms": cold.get(name),
            **{f"max_rel_{f}_vs_reference": max(r[f"vs_reference_{f}"] for r in part) for f in FIELDS},
            **{f"max_rel_{f}_vs_old": max(r[f"vs_old_{f}"] for r in part) for f in FIELDS},
            "pools_over_1e-4": sum(max(r[f"vs_reference_{f}"] for f in FIELDS) > 1e-4 for r in part),
            "old_rerun_vs_reference": max(r["old_vs_reference"] for r in part),
        }
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": commit, "reference_commit": rows["reference_commit"], "repeat": repeat, "step": step,
            "python": platform.python_version(), "machine": platform.machine(),
            "summary": summary, "pools": results}


def markdown(data: dict) -> str:
    lines = ["# Pricing throughput: old engine vs new (issue 12, item 3)", "",
             f"Working tree at {data['commit'][:10]} (plus uncommitted changes); reference prices from "
             f"{data['reference_commit'][:10]}. Best of {data['repeat']} interleaved runs per pool; "
             "speed-up = sum of old times / sum of new times. Produced by `benchmarks/bench_pricing.py`.", "",
             "| set | pools | old ms/pool | new ms/pool | speed-up | slowest-pool speed-up | "
             "max rel VaR | max rel CVaR | max rel max_rate | pools > 1e-4 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in data["summary"].items():
        lines.append(f"| {name} | {s['pools']} | {s['old_ms_per_pool']:.2f} | {s['new_ms_per_pool']:.3f} | "
                     f"{s['speedup']:.1f}x | {s['min_pool_speedup']:.1f}x | "
                     f"{s['max_rel_var_vs_reference']:.1e} | {s['max_rel_cvar_vs_reference']:.1e} | "
                     f"{s['max_rel_max_rate_vs_reference']:.1e} | {s['pools_over_1e-4']} |")
    lines += ["", "Differences are against the stored reference (benchmarks/results/pricing_reference.json); "
              "the old engine re-run here differs from it by at most "
              f"{max(s['old_rerun_vs_reference'] for s in data['summary'].values()):.1e} relative (BLAS "
              "summation order: this run is single-threaded). Pools over 1e-4 are "
              "those where the old engine is itself off a converged lattice (tests/test_pricing_accuracy.py).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step", type=int, default=1)
    args = parser.parse_args()
    data = run(args.repeat, args.step)
    md = markdown(data)
    print(md)
    out = HERE / "results"
    (out / "bench_pricing.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "bench_pricing.md").write_text(md)


if __name__ == "__main__":
    main()
