"""Benchmark: what resuming from verified checkpoints costs (issues 21.7, 22.1).

On a synthetic instance of 200 counties in 40 prefectures (`pooling generate
--counties 200 --prefectures 40 --seed 1`, default spec: 40 independent
blocks), one worker:
- a fresh solve writing its checkpoints (OUT/blocks/*.json);
- a resume with every block checkpointed: each block's plan verified by
  re-pricing its pools (pooling.optimise.block_records) instead of solved;
  the time is the verification's cost;
- a solve stopped by a 1 s time limit, then a resume without a limit: the
  blocks the limit stopped (or never started) are solved, and the result is
  the fresh one.
Each run is `pooling solve` in a fresh process, as a user runs it. Both
resumed results are checked bit-identical to the fresh one (timings aside).

Writes benchmarks/results/resume.{json,md}.
Run: python benchmarks/bench_resume.py
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling.data.provenance import package_version  # noqa: E402

COUNTIES, PREFECTURES, SEED = 200, 40, 1
LIMIT = 1.0
"""Seconds of the stopped run: a few blocks finish, the rest are stopped or never start."""


def _pooling(*args: str) -> list[str]:
    return [sys.executable, "-m", "pooling.cli", *args]


def _solve(instance: Path, out: Path, *extra: str) -> tuple[dict, float, str]:
    """`pooling solve` in a fresh process (as a user runs it): result.json,
    seconds, and the resume line it printed (its folder named OUT/blocks)."""
    start = time.perf_counter()
    done = subprocess.run(_pooling("solve", str(instance), "--spec", str(ROOT / "models" / "default.toml"),
                                   "--out", str(out), "--workers", "1", "--quiet", *extra),
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 3):
        raise SystemExit(f"pooling solve failed ({done.returncode}): {done.stderr}")
    said = next((line for line in done.stderr.splitlines() if line.startswith("resume:")), "")
    return json.loads((out / "result.json").read_text()), seconds, said.replace(str(out / "blocks"), "OUT/blocks")


def _comparable(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if k not in ("wall_seconds", "timings")})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "generated.json"
        subprocess.run(_pooling("generate", "--counties", str(COUNTIES), "--prefectures", str(PREFECTURES),
                                "--seed", str(SEED), "--out", str(instance)), capture_output=True, check=True)
        full, cut = Path(tmp) / "full", Path(tmp) / "cut"
        fresh, fresh_s, _ = _solve(instance, full)
        kept = len(list((full / "blocks").glob("*.json")))
        reused, reused_s, reused_said = _solve(instance, full, "--resume")
        stopped, stopped_s, _ = _solve(instance, cut, "--time-limit", f"{LIMIT:g}")
        kept_after_limit = len(list((cut / "blocks").glob("*.json")))
        finished, finished_s, finished_said = _solve(instance, cut, "--resume")
    rows = [
        {"case": "fresh solve", "seconds": fresh_s, "status": fresh["status"], "blocks_kept": kept,
         "resumed_blocks": None, "identical_to_fresh": True},
        {"case": "resume, every block checkpointed", "seconds": reused_s, "status": reused["status"],
         "blocks_kept": kept, "resumed_blocks": reused["timings"].get("resumed_blocks"),
         "identical_to_fresh": _comparable(reused) == _comparable(fresh), "said": reused_said},
        {"case": f"solve with --time-limit {LIMIT:g}", "seconds": stopped_s, "status": stopped["status"],
         "blocks_kept": kept_after_limit, "resumed_blocks": None,
         "identical_to_fresh": _comparable(stopped) == _comparable(fresh),
         "block_statuses": sorted({g["status"] for g in stopped["groups"]})},
        {"case": "resume without a limit", "seconds": finished_s, "status": finished["status"],
         "blocks_kept": kept_after_limit, "resumed_blocks": finished["timings"].get("resumed_blocks"),
         "identical_to_fresh": _comparable(finished) == _comparable(fresh), "said": finished_said},
    ]
    meta = {"instance": f"pooling generate --counties {COUNTIES} --prefectures {PREFECTURES} --seed {SEED}",
            "spec": "models/default.toml", "blocks": len(fresh["groups"]), "workers": 1,
            "pooling": package_version("pooling"), "python": platform.python_version(),
            "machine": platform.machine(), "verification_share": reused_s / fresh_s}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "resume.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    text = markdown(rows, meta)
    (out / "resume.md").write_text(text)
    print(text)


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# Resume from verified checkpoints", "",
             f"Instance `{meta['instance']}` ({meta['blocks']} blocks), `{meta['spec']}`, "
             f"{meta['workers']} worker; pooling {meta['pooling']}, Python {meta['python']}.", "",
             "| case | seconds | status | blocks kept | blocks reused | same result as fresh |",
             "|---|---:|---|---:|---:|---|"]
    for row in rows:
        reused = "-" if row["resumed_blocks"] is None else row["resumed_blocks"]
        lines.append(f"| {row['case']} | {row['seconds']:.2f} | {row['status']} | {row['blocks_kept']} | "
                     f"{reused} | {'yes' if row['identical_to_fresh'] else 'no'} |")
    lines += ["", f"Verifying every block (re-pricing its plan's pools) took "
                  f"{100 * meta['verification_share']:.1f}% of the fresh solve's time (process start and "
                  f"imports included). One run of each case on a shared machine: the seconds are "
                  f"indicative.", ""]
    lines += [f"- {row['case']}: `{row['said']}`" for row in rows if row.get("said")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
