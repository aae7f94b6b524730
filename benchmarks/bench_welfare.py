"""Benchmark: what the [welfare] records cost (issue 25 item 4).

For each bundled instance, every county alone at rate 0.6 under the default
spec (models/default.toml; its settlement and no benefit schedule), the
default [welfare] terms: seconds to compute every group's record
(pooling.economics.welfare.welfare_records, one process, best of --repeat),
the records, the widest catastrophic
bracket and the people-weighted incidence by group kind. The figures are
computed where `solve` or `evaluate` ends, once per run, outside its time limit.
The first instance also pays for importing scipy.stats (severity cdfs).

Writes benchmarks/results/welfare.{json,md}.
Run: python benchmarks/bench_welfare.py [--repeat N] [--instances tongliao,xinyang,henan,china]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling.data.inputs import as_problem  # noqa: E402
from pooling.data.provenance import package_version  # noqa: E402
from pooling.data.welfare import WelfareTerms  # noqa: E402
from pooling.economics.welfare import plan_welfare, welfare_records  # noqa: E402

RATE = 0.6


def run(name: str, repeat: int) -> dict:
    instance, _ = as_problem(ROOT / "instances" / f"{name}.json", ROOT / "models" / "default.toml", "bench")
    pools = [SimpleNamespace(id=cid, rate=RATE, pricing=SimpleNamespace(counties=(cid,), contracts=()))
             for cid in instance.ids]
    best, records = float("inf"), []
    for _ in range(repeat):
        start = time.perf_counter()
        records = welfare_records(instance, WelfareTerms(), pools)
        best = min(best, time.perf_counter() - start)
    return {"instance": name, "counties": len(instance.ids), "records": len(records), "seconds": best,
            "widest_bracket": max(w["catastrophic_bracket"] for w in records),
            "incidence_by_group": {w["group"]: w["catastrophic_incidence"] for w in plan_welfare(records)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--instances", default="tongliao,xinyang,henan,china")
    args = parser.parse_args()
    rows = [run(name, args.repeat) for name in args.instances.split(",")]
    meta = {"benchmark": "welfare", "pooling": package_version("pooling"), "python": platform.python_version(),
            "machine": platform.machine(), "rate": RATE, "repeat": args.repeat}
    out = ROOT / "benchmarks" / "results"
    (out / "welfare.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# [welfare] records: cost", "",
             f"Every county alone at rate {RATE}, default spec and [welfare] terms; best of {args.repeat}.", "",
             "| instance | counties | records | seconds | widest bracket | incidence: residents | "
             "migrants other province |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        inc = r["incidence_by_group"]
        lines.append(f"| {r['instance']} | {r['counties']:,} | {r['records']:,} | {r['seconds']:.1f} | "
                     f"{r['widest_bracket']:.1e} | {inc.get('residents', float('nan')):.4f} | "
                     f"{inc.get('migrants_other_province', float('nan')):.4f} |")
    (out / "welfare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
