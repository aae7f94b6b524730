"""Benchmark: what induced utilisation costs a solve (issue 25 item 1).

`pooling solve INSTANCE --spec models/default.toml --workers 1` on Tongliao
and Xinyang, as bundled and with parameters.utilisation_elasticity set to
the sourced -0.41 (a copy of the file), each a fresh process timed from start
to exit: CPU time (user + sys of the child, what the 2-core budget pays) and
elapsed, best of --repeat runs (the machine is shared; the median is kept
too, with the load average). The behavioural solve's fixed point
(economics.behaviour) prices each pool 2-3 times on lattices shared across
its search (risk.scaled); the target is at most 1.5x the CPU of e = 0.

With --baseline REV the same cases also run on that commit (`git archive`
into a temporary folder, first on PYTHONPATH), interleaved with the current
tree's runs.

Writes benchmarks/results/behaviour.{json,md}.
Run: python benchmarks/bench_behaviour.py [--repeat N] [--baseline REV]
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

INSTANCES = ("tongliao", "xinyang")
ELASTICITY = -0.41
"""The sourced elasticity of admissions w.r.t. the out-of-pocket price (CALIBRATION.md)."""
TARGET_RATIO = 1.5
"""Issue 25's budget for the behavioural solve: CPU at most 1.5x that of e = 0."""


def _run(args: list[str], pythonpath: str, cwd: Path) -> tuple[float, float]:
    """(CPU seconds of the child, elapsed seconds) of one `python -m pooling.cli ...`,
    run from `cwd` (not the repository: `-m` puts the working folder first on the path)."""
    env = dict(os.environ, PYTHONPATH=pythonpath)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pooling.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"pooling {' '.join(args)} failed ({proc.returncode}): {stderr}")
    return usage.ru_utime + usage.ru_stime, elapsed


def _instances(folder: Path, names=INSTANCES, elasticity: float = ELASTICITY) -> dict[tuple[str, float], Path]:
    """Each bundled instance written with the elasticity 0 and with `elasticity`."""
    out = {}
    for name in names:
        data = json.loads((ROOT / "instances" / f"{name}.json").read_text())
        for e in (0.0, elasticity):
            data["parameters"]["utilisation_elasticity"] = e
            path = folder / f"{name}_e{e:g}.json"
            path.write_text(json.dumps(data))
            out[(name, e)] = path
    return out


def _trees(baseline: str | None, folder: Path) -> dict[str, str]:
    trees = {"current": str(ROOT)}
    if baseline:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline], check=True,
                                 capture_output=True).stdout
        target = folder / "baseline"
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        trees[f"baseline {baseline}"] = str(target)
    return trees


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = _instances(folder)
        trees = _trees(args.baseline, folder)
        for (name, e), path in files.items():
            runs: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
            loads = []
            for _ in range(args.repeat):
                for tree, pythonpath in trees.items():   # interleaved: both see the same load
                    out = folder / f"out_{name}_{e:g}_{len(runs[tree])}"
                    runs[tree].append(_run(["solve", str(path), "--spec", str(ROOT / "models" / "default.toml"),
                                            "--workers", "1", "--out", str(out)], pythonpath, folder))
                    loads.append(os.getloadavg()[0])
            for tree, timings in runs.items():
                cpu = [c for c, _ in timings]
                wall = [w for _, w in timings]
                cases.append({"tree": tree, "instance": name, "elasticity": e, "cpu_best": min(cpu),
                              "cpu_median": statistics.median(cpu), "wall_best": min(wall),
                              "wall_median": statistics.median(wall), "load": [round(x, 2) for x in loads]})
                print(f"{tree:>20} {name:>9} e={e:<6g} cpu {min(cpu):6.2f} s (median {statistics.median(cpu):6.2f})"
                      f"  wall {min(wall):6.2f} s  load {max(loads):.1f}", flush=True)
    ratios = []
    for tree in trees:
        for name in INSTANCES:
            by_e = {c["elasticity"]: c for c in cases if c["tree"] == tree and c["instance"] == name}
            ratios.append({"tree": tree, "instance": name,
                           "cpu_ratio": by_e[ELASTICITY]["cpu_best"] / by_e[0.0]["cpu_best"]})
    report = {"benchmark": "behaviour", "pooling": package_version("pooling"), "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(), "repeat": args.repeat,
              "elasticity": ELASTICITY, "target_ratio": TARGET_RATIO, "cases": cases, "ratios": ratios}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "behaviour.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Induced utilisation: solve CPU with and without the response", "",
             f"`pooling solve INSTANCE --spec models/default.toml --workers 1`, a fresh process each, best of "
             f"{args.repeat} (CPU = user + sys of the process; the machine is shared, load averages below). "
             f"e = parameters.utilisation_elasticity; target: e = {ELASTICITY:g} at most {TARGET_RATIO:g}x "
             f"the CPU of e = 0. Written by benchmarks/bench_behaviour.py.", "",
             "| tree | instance | e | CPU best (s) | CPU median (s) | elapsed best (s) | load (1 min) |",
             "|---|---|---|---|---|---|---|"]
    for c in cases:
        lines.append(f"| {c['tree']} | {c['instance']} | {c['elasticity']:g} | {c['cpu_best']:.2f} | "
                     f"{c['cpu_median']:.2f} | {c['wall_best']:.2f} | {min(c['load']):.1f}-{max(c['load']):.1f} |")
    lines += ["", "| tree | instance | CPU ratio e = -0.41 / e = 0 | target met |", "|---|---|---|---|"]
    for r in ratios:
        lines.append(f"| {r['tree']} | {r['instance']} | {r['cpu_ratio']:.2f}x | "
                     f"{'yes' if r['cpu_ratio'] <= TARGET_RATIO else 'no'} |")
    (args.out / "behaviour.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
