"""Benchmark: fixed costs of a run, and how closely --time-limit holds (issue 21).

Each case is a fresh `python -m pooling.cli ...` process timed from its start
to its exit (what a user waits for), with its CPU time (user + sys, children
included):
- imports: `import pooling.cli`, and everything `pooling solve` imports;
- worker start-up: two trivial tasks on 1 and 2 spawned workers (the
  interpreter, the libraries a block needs, the shared instance), the cost
  `pooling.execution.tasks.WORKER_START_SECONDS` stands for;
- `pooling solve` on Tongliao (one 8-county block) under the default spec and
  under models/status_quo.toml (8 one-county blocks), and on a generated
  7-county instance of 2 prefectures (2 blocks), with --workers 1 and the
  default (every core);
- Henan (18 prefectures, minutes without a limit) with --time-limit 5 and 10
  on the default workers and on 1: elapsed against the limit, prefectures
  with a plan.

With --baseline REV the same cases run on that commit too (`git archive`
into a temporary folder, first on PYTHONPATH), interleaved with the current
tree's runs so that both see the same machine load. Timings are the best of
--repeat runs (the median is kept too): the machine is shared. The load
average is recorded with each case. Python writes bytecode caches as a user's
would (PYTHONDONTWRITEBYTECODE is cleared for the runs, after a warm-up run).

Writes benchmarks/results/overhead.{json,md}.
Run: python benchmarks/bench_overhead.py [--repeat N] [--baseline REV] [--skip-henan]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling.data.provenance import package_version  # noqa: E402

HENAN_LIMITS = (5.0, 10.0)
"""The limits of issue 21's report (17.1 s and 18.7 s elapsed before)."""

SMALL_INSTANCE = ("--counties", "7", "--prefectures", "2", "--seed", "3")
"""`pooling generate` arguments of the 7-county, 2-block instance."""

SOLVE_IMPORTS = ("import pooling.optimise; import pooling.optimise.solve, pooling.optimise.baselines, "
                 "pooling.outputs.summaries, pooling.outputs.files")

WORKER_PROBE = """
import sys, time

if __name__ == "__main__":
    # Everything inside the guard: a spawned worker re-imports this file, and
    # should import only what pooling's own workers import (the CLI's main
    # module is as light).
    from pooling.data.instance import load_instance
    from pooling.data.options import SolveOptions
    from pooling.data.spec import load_spec
    from pooling.execution.deadline import Deadline
    from pooling.execution.tasks import _run_pool
    from pooling.optimise.blocks import problem_blocks
    from pooling.optimise.solve import _solve_block

    shared = (load_instance(sys.argv[1]), load_spec(sys.argv[2]), SolveOptions())
    workers = int(sys.argv[3])
    blocks = problem_blocks(shared[0], shared[1])[:workers]
    # A deadline already passed: each block returns at once, so what is timed is
    # the workers' start (interpreter, the block solver's imports, the shared
    # data) and one round trip each; the pool itself even for one worker.
    tasks = [(b, Deadline.after(0.0), None) for b in blocks]
    start = time.perf_counter()
    _run_pool(_solve_block, tasks, shared, workers, list(range(len(tasks))), lambda i, r: None, None, 0.0)
    print(time.perf_counter() - start)
"""


def load() -> float:
    return os.getloadavg()[0]


class Tree:
    """A source tree to run: the working tree, or a commit extracted to a folder."""

    def __init__(self, label: str, path: Path, commit: str):
        self.label, self.path, self.commit = label, path, commit

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = str(self.path) + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def run(self, args: list[str], cwd: Path | None = None) -> tuple[float, float, int, str]:
        """(wall seconds, CPU seconds of the process and its children, exit code, stdout)."""
        before = os.times()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], cwd=cwd or self.path, env=self.env(),
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        return wall, cpu, done.returncode, done.stdout


def _commit(rev: str = "HEAD") -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def extract(rev: str, folder: Path) -> Tree:
    data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(folder, filter="data")
    return Tree(f"baseline {rev}", folder, _commit(rev))


ONLY: str | None = None
"""--only: the text a case's name must contain to be run."""


def measure(trees: list[Tree], name: str, args_of, repeat: int, check=None, cwd_of=None) -> list[dict]:
    """Run the case `repeat` times on each tree, interleaved; one row per tree."""
    if ONLY is not None and ONLY not in name:
        return []
    samples: dict[str, list] = {t.label: [] for t in trees}
    for _ in range(repeat):
        for tree in trees:
            loadavg = load()
            wall, cpu, code, out = tree.run(args_of(tree), cwd=cwd_of(tree) if cwd_of else None)
            samples[tree.label].append((wall, cpu, code, out, loadavg))
    rows = []
    for tree in trees:
        runs = samples[tree.label]
        best = min(runs, key=lambda r: r[0])
        row = {"case": name, "tree": tree.label, "commit": tree.commit, "runs": len(runs),
               "best_seconds": best[0], "median_seconds": statistics.median(r[0] for r in runs),
               "best_cpu_seconds": min(r[1] for r in runs), "exit_codes": sorted({r[2] for r in runs}),
               "load_average": round(statistics.mean(r[4] for r in runs), 2)}
        if check is not None:
            row.update(check(tree, best[3]))
        rows.append(row)
        print(f"{name} [{tree.label}]: best {row['best_seconds']:.2f} s, median {row['median_seconds']:.2f} s, "
              f"cpu {row['best_cpu_seconds']:.2f} s, load {row['load_average']}", file=sys.stderr)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each small case (default 5)")
    parser.add_argument("--henan-repeat", type=int, default=2, help="runs of each Henan case (default 2)")
    parser.add_argument("--baseline", metavar="REV", help="also run the cases on this commit")
    parser.add_argument("--skip-henan", action="store_true", help="no Henan time-limit cases")
    parser.add_argument("--only", metavar="TEXT", help="re-run only the cases whose name contains TEXT and keep "
                                                       "the other rows of the existing overhead.json")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    global ONLY
    ONLY = args.only
    work = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    trees = [Tree("current", ROOT, _commit() + ("+" if _dirty() else ""))]
    if args.baseline:
        trees.append(extract(args.baseline, work / "baseline"))
    small = work / "small.json"
    trees[0].run(["-m", "pooling.cli", "generate", *SMALL_INSTANCE, "--out", str(small)])
    probe = work / "probe.py"
    probe.write_text(WORKER_PROBE)
    for tree in trees:   # warm-up: bytecode caches written, files read once
        tree.run(["-m", "pooling.cli", "solve", "--out", str(work / "warm"), "--quiet"])

    rows: list[dict] = []
    rows += measure(trees, "import pooling.cli", lambda t: ["-c", "import pooling.cli"], args.repeat)
    rows += measure(trees, "imports of pooling solve", lambda t: ["-c", SOLVE_IMPORTS], args.repeat)
    for workers in (1, 2):
        rows += measure(trees[:1], f"worker start-up, {workers} worker{'s' * (workers > 1)}",
                        lambda t, w=workers: [str(probe), str(ROOT / "instances" / "henan.json"),
                                              str(ROOT / "models" / "default.toml"), str(w)],
                        args.repeat, check=lambda t, out: {"inside_seconds": float(out.strip() or "nan")})

    def solve_case(name: str, instance: Path, spec: str, workers: int | None):
        extra = ["--workers", str(workers)] if workers else []
        label = f"{name}, {'--workers ' + str(workers) if workers else 'default workers'}"

        def args_of(tree):
            return ["-m", "pooling.cli", "solve", str(instance), "--spec", str(ROOT / "models" / spec),
                    "--out", str(work / "out" / tree.label.replace(" ", "_")), "--quiet", *extra]

        return measure(trees, label, args_of, args.repeat, check=lambda t, out: _result(work, t))

    for workers in (1, None):
        rows += solve_case("tongliao default", ROOT / "instances" / "tongliao.json", "default.toml", workers)
        rows += solve_case("tongliao status_quo", ROOT / "instances" / "tongliao.json", "status_quo.toml", workers)
        rows += solve_case("7 counties, 2 blocks", small, "default.toml", workers)
    if not args.skip_henan:
        for limit in HENAN_LIMITS:
            for workers in (None, 1):
                extra = ["--workers", str(workers)] if workers else []
                label = f"henan --time-limit {limit:g}, {'--workers 1' if workers else 'default workers'}"

                def args_of(tree, limit=limit, extra=extra):
                    return ["-m", "pooling.cli", "solve", str(ROOT / "instances" / "henan.json"),
                            "--time-limit", str(limit), "--out", str(work / "out" / tree.label.replace(" ", "_")),
                            "--quiet", *extra]

                for row in measure(trees, label, args_of, args.henan_repeat, check=lambda t, out: _result(work, t)):
                    row["limit"] = limit
                    row["over_limit_seconds"] = row["best_seconds"] - limit
                    rows.append(row)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
            "pooling": package_version("pooling"), "highspy": package_version("highspy"),
            "repeat": args.repeat, "henan_repeat": args.henan_repeat,
            "trees": {t.label: t.commit for t in trees},
            "small_instance": "pooling generate " + " ".join(SMALL_INSTANCE)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only is not None:
        rows, meta = _merged(out / "overhead.json", rows, meta, args.only)
    (out / "overhead.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (out / "overhead.md").write_text(markdown(rows, meta))
    print(f"wrote {out / 'overhead.md'}")


def _merged(path: Path, rows: list[dict], meta: dict, only: str) -> tuple[list[dict], dict]:
    """The existing results with the re-run rows in place of theirs (same case
    and tree; new ones appended), the re-run noted in the metadata."""
    old = json.loads(path.read_text()) if path.exists() else {"meta": meta, "rows": []}
    fresh = {(r["case"], r["tree"]): r for r in rows}
    merged = [fresh.pop((r["case"], r["tree"]), r) for r in old["rows"]] + list(fresh.values())
    reruns = [*old["meta"].get("reruns", []), {"only": only, "trees": meta["trees"]}]
    return merged, dict(old["meta"], reruns=reruns)


def _dirty() -> bool:
    return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip())


def _result(work: Path, tree: Tree) -> dict:
    """Status and blocks with a plan of the run's result.json."""
    path = work / "out" / tree.label.replace(" ", "_") / "result.json"
    if not path.exists():
        return {"status": "no result.json"}
    data = json.loads(path.read_text())
    path.unlink()   # the next run writes its own
    groups = data.get("groups") or []
    return {"status": data["status"], "objective": data["objective"],
            "blocks": len(groups) or 1, "blocks_with_plan": sum(1 for g in groups if g["pools"]) if groups
            else int(bool(data["pools"]))}


def markdown(rows: list[dict], meta: dict) -> str:
    trees = ", ".join(f"{label} = {commit}" for label, commit in meta["trees"].items())
    lines = ["# Overhead benchmark (issue 21)", "",
             f"Python {meta['python']}, {meta['machine']}, {meta['cores']} cores (shared with other jobs: "
             f"see the load average), HiGHS {meta['highspy']}; {trees}. Fresh processes timed from start to "
             f"exit; best and median of {meta['repeat']} runs ({meta['henan_repeat']} for Henan); CPU = user "
             f"+ sys. The small instance: `{meta['small_instance']}`. Command: "
             "`python benchmarks/bench_overhead.py`.", "",
             "| case | tree | best s | median s | CPU s | load avg | status | blocks planned | over limit s |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        planned = f"{r['blocks_with_plan']}/{r['blocks']}" if "blocks" in r else "-"
        over = f"{r['over_limit_seconds']:+.2f}" if "over_limit_seconds" in r else "-"
        lines.append(f"| {r['case']} | {r['tree']} ({r['commit']}) | {r['best_seconds']:.2f} | "
                     f"{r['median_seconds']:.2f} | {r['best_cpu_seconds']:.2f} | {r['load_average']:.1f} | "
                     f"{r.get('status', '-')} | {planned} | {over} |")
    current = {r["case"]: r for r in rows if r["tree"] == "current"}
    compared = [(r, current[r["case"]]) for r in rows if r["tree"] != "current" and r["case"] in current]
    if compared:
        lines += ["", "Best times, baseline -> current:", ""]
        lines += [f"- {now['case']}: {old['best_seconds']:.2f} s -> {now['best_seconds']:.2f} s "
                  f"({old['best_seconds'] / now['best_seconds']:.1f}x; CPU {old['best_cpu_seconds']:.2f} -> "
                  f"{now['best_cpu_seconds']:.2f} s)" for old, now in compared]
    starts = [r for r in rows if "inside_seconds" in r]
    if starts:
        lines += ["", "Worker start-up inside the probe (spawn to the last trivial result): "
                  + "; ".join(f"{r['case'].split(', ')[1]} {r['inside_seconds']:.2f} s at load "
                              f"{r['load_average']:.1f}" for r in starts) + "."]
    if meta.get("notes"):
        lines += ["", meta["notes"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
