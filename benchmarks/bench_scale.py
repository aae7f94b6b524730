"""Benchmark: national-scale solves (issue 12).

Cases, each timed end to end (pricing, generation, MILP) through `pooling.solve`:
- national default spec (instances/china.json, models/default.toml), 1 and 2 workers;
- national prefecture baseline (models/prefecture.toml: one fund per prefecture);
- Henan default spec, and Henan with pools that may cross prefectures inside the
  province (`within = "province"`, contiguous, at most MAX_COUNTIES_PROVINCE counties;
  without henan.json's contract options, which need enumerated pools);
- Henan with one rate band for the whole province (max_rate_gap RATE_BAND,
  gap_scope "instance": the blocks coupled by one rate window);
- synthetic instances of 500, 1,000, 2,500 and 5,000 counties (`pooling generate`,
  ~8 counties a prefecture as nationally), default spec: time against counties
  on a log-log plot;
- the Dask LocalCluster path (2 workers) on the national default spec, when
  dask.distributed is installed.

Targets (issue 12): national default optimal or gap <= 0.1% in <= 10 min on 2
cores; Henan default <= 30 s; Henan within-province gap <= 0.5% in <= 10 min;
time about linear in the number of groups; 2 workers >= 1.7x faster than 1.

Writes benchmarks/results/scale.{json,md} and scale.png.
Run: python benchmarks/bench_scale.py [--quick] [--skip-national] [--only TEXT]
(--only: re-run the cases whose name contains TEXT, keeping the other rows.)
(--quick: Henan and the 500/1,000-county synthetic instances only.)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling import instance_from_dict, load_instance, load_spec, solve, spec_from_dict  # noqa: E402
from pooling.data.generate import generate_instance  # noqa: E402
from pooling.data.provenance import package_version  # noqa: E402
from pooling.optimise.blocks import problem_blocks  # noqa: E402

MAX_COUNTIES_PROVINCE = 4
"""Size cap for Henan pools across prefectures: with 144 units, any connected set
is too many to enumerate; four neighbouring counties already pool ~2 million
enrollees, beyond which diversification gains little (the systemic shock dominates),
and column generation handles the rest."""

TIME_LIMIT = 600.0
"""Seconds per case: the 10-minute target of the longest cases; a case that misses its
target stops here and reports its status, bound and gap at that moment."""

SYNTHETIC_SIZES = (500, 1000, 2500, 5000)
COUNTIES_PER_PREFECTURE = 8
"""2,565 units in 341 prefectures nationally: about 7.5 a prefecture."""


def henan_without_contracts():
    """henan.json without its contract options: contracts are weighed exactly
    over enumerated pools only, and the province-wide group is generated (the
    question here is the pooling map)."""
    data = json.loads((ROOT / "instances" / "henan.json").read_text(encoding="utf-8"))
    data.pop("contract_options", None)
    return instance_from_dict(data, source="henan.json without contract_options")


def province_spec() -> object:
    data = json.loads(json.dumps(load_spec(ROOT / "models" / "default.toml").to_dict()))
    data["pooling"].update(within="province", contiguous=True, max_counties=MAX_COUNTIES_PROVINCE)
    return spec_from_dict(data, source="henan-within-province")


RATE_BAND = 0.02
"""max_rate_gap of the coupled Henan case (gap_scope "instance": one rate band for
the province): the equalised model's 2 points, applied across all 18 prefectures."""


def band_spec() -> object:
    data = json.loads(json.dumps(load_spec(ROOT / "models" / "default.toml").to_dict()))
    data["equalisation"].update(max_rate_gap=RATE_BAND, gap_scope="instance")
    return spec_from_dict(data, source="henan-rate-band")


def run_case(label: str, instance, spec, **kwargs) -> dict:
    start = time.perf_counter()
    result = solve(instance, spec, time_limit=TIME_LIMIT, **kwargs)
    wall = time.perf_counter() - start
    print(f"{label}: {result.status} objective {result.objective} gap {result.gap} in {wall:.1f} s",
          file=sys.stderr)
    return {"case": label, "counties": len(instance.counties), "groups": len(problem_blocks(instance, spec)),
            "workers": kwargs.get("workers", 1), "backend": "dask" if kwargs.get("scheduler") else "local",
            "status": result.status, "objective": result.objective, "bound": result.bound, "gap": result.gap,
            "wall_seconds": wall, "pools_priced": result.candidate_pools, "columns": result.columns,
            "pricing_seconds": result.timings.get("pricing")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Henan and two synthetic sizes only")
    parser.add_argument("--skip-national", action="store_true", help="no china.json cases")
    parser.add_argument("--only", metavar="TEXT", help="re-run only the cases whose name contains TEXT and keep "
                                                       "the other rows of the existing scale.json")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    default = load_spec(ROOT / "models" / "default.toml")
    rows = []

    def run(label: str, instance_of, spec, **kwargs) -> None:
        if args.only is None or args.only in label:
            rows.append(run_case(label, instance_of(), spec, **kwargs))

    def henan():
        return load_instance(ROOT / "instances" / "henan.json")

    run("henan default", henan, default, workers=2)
    if not args.quick:
        run("henan within province", henan_without_contracts, province_spec(), workers=2)
        run(f"henan one rate band {RATE_BAND:g} (gap_scope instance)", henan, band_spec(), workers=2)
    if not (args.quick or args.skip_national):
        def china():
            return load_instance(ROOT / "instances" / "china.json")
        run("national default", china, default, workers=1)
        run("national default", china, default, workers=2)
        run("national prefecture", china, load_spec(ROOT / "models" / "prefecture.toml"), workers=2)
        try:
            from distributed import LocalCluster
        except ImportError:
            print("dask.distributed not installed: LocalCluster case skipped", file=sys.stderr)
        else:
            if args.only is None or args.only in "national default":
                with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
                    run("national default", china, default, workers=2, scheduler=cluster.scheduler_address)
    for n in SYNTHETIC_SIZES[:2] if args.quick else SYNTHETIC_SIZES:
        def synthetic(n=n):
            return instance_from_dict(generate_instance(n, max(1, n // COUNTIES_PER_PREFECTURE), seed=1),
                                      source=f"synthetic-{n}")
        run(f"synthetic {n}", synthetic, default, workers=2)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cores": 2,
            "pooling": package_version("pooling"), "highspy": package_version("highspy"),
            "time_limit": TIME_LIMIT, "quick": args.quick}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only is not None:
        rows, meta = _merged(out / "scale.json", rows, meta, args.only)
    (out / "scale.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "scale.md").write_text(markdown(rows, meta))
    plot(rows, out / "scale.png")
    print(f"wrote {out / 'scale.md'}")


def _merged(path: Path, rows: list[dict], meta: dict, only: str) -> tuple[list[dict], dict]:
    """The existing results with the re-run rows in place of theirs (same case,
    workers and backend; new cases appended), each re-run row marked with the
    commit it ran on."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    old = json.loads(path.read_text()) if path.exists() else {"meta": meta, "rows": []}
    key = ("case", "workers", "backend")
    fresh = {tuple(r[k] for k in key): dict(r, commit=commit) for r in rows}
    merged = [fresh.pop(tuple(r[k] for k in key), r) for r in old["rows"]] + list(fresh.values())
    meta = dict(old["meta"], reruns=[*old["meta"].get("reruns", []), {"only": only, "commit": commit}])
    return merged, meta


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# Scale benchmark (issue 12)", "",
             f"Python {meta['python']}, {meta['machine']}, HiGHS {meta['highspy']}; time limit "
             f"{meta['time_limit']:.0f} s a case. Command: `python benchmarks/bench_scale.py`.", "",
             "| case | counties | groups | workers | backend | status | objective | gap | seconds | pools priced |",
             "|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        gap = "-" if r["gap"] is None else f"{100 * r['gap']:.3f}%"
        obj = "-" if r["objective"] is None else f"{r['objective']:.4f}"
        case = r["case"] + (f" ({r['commit']})" if r.get("commit") else "")
        lines.append(f"| {case} | {r['counties']:,} | {r['groups']:,} | {r['workers']} | {r['backend']} | "
                     f"{r['status']} | {obj} | {gap} | {r['wall_seconds']:.1f} | {r['pools_priced']:,} |")
    national = {r["workers"]: r["wall_seconds"] for r in rows
                if r["case"] == "national default" and r["backend"] == "local"}
    if 1 in national and 2 in national:
        lines += ["", f"Speed-up from 1 to 2 workers on the national default spec: "
                      f"{national[1] / national[2]:.2f}x."]
    lines += ["", "The commit in brackets is the one each row ran on (`--only` re-runs some rows)."]
    if meta.get("notes"):
        lines += ["", meta["notes"]]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    synthetic = sorted((r["counties"], r["wall_seconds"]) for r in rows if r["case"].startswith("synthetic"))
    if len(synthetic) < 2:
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys = zip(*synthetic)
    ax.loglog(xs, ys, "o-", label="synthetic, default spec, 2 workers")
    ax.loglog(xs, [ys[0] * x / xs[0] for x in xs], "--", color="grey", label="linear")
    ax.set_xlabel("counties")
    ax.set_ylabel("wall seconds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
