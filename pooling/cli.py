"""Command line: ``pooling solve | evaluate | check``.

Exit codes: 0 solved (or plan feasible, or stress test passed), 1 internal
error, 2 bad input, 3 infeasible (result.json still written) or stress test
failed (stress.json still written), 4 time limit with no plan found.
Inputs are validated and everything is computed before anything is written;
files are written atomically.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from pooling.data.generate import generate_instance
from pooling.data.instance import Instance, instance_from_dict, load_instance
from pooling.data.options import (
    SolveOptions,
    add_solve_arguments,
    options_from_namespace,
)
from pooling.data.plan import load_plan
from pooling.data.spec import load_spec
from pooling.data.stress import PRESETS
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError, NumericsError
from pooling.optimise.baselines import compare
from pooling.optimise.candidates import candidate_pools
from pooling.optimise.solve import candidate_plan, evaluate, solve
from pooling.outputs.files import load_result_json, write_json_atomic
from pooling.outputs.summaries import (
    baselines_table,
    evaluation_summary,
    result_summary,
    stress_summary,
)
from pooling.simulate.stress_test import simulate

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 1, 2, 3, 4

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instances" / "tongliao.json"
DEFAULT_SPEC = PROJECT_ROOT / "models" / "default.toml"
DEFAULT_OUT = Path("out")


def _default(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(f"{path}: bundled default {what} not found; pass one explicitly "
                         f"(the defaults ship with a source checkout installed by `pip install -e .`)")
    return path


def _load(args) -> tuple[Instance, object]:
    instance = load_instance(args.instance or _default(DEFAULT_INSTANCE, "instance"))
    spec = load_spec(args.spec or _default(DEFAULT_SPEC, "spec"))
    return instance, spec


def cmd_solve(args) -> int:
    instance, spec = _load(args)
    options = options_from_namespace(args)
    result = solve(instance, spec, options=options)
    data = result.to_dict()
    if args.compare:
        data["baselines"] = [b.to_dict() for b in compare(instance, spec, optimum=result, options=options)]
    write_json_atomic(Path(args.out) / "result.json", data)
    print(result_summary(data, instance))
    if args.compare:
        print(baselines_table(data["baselines"]))
    print(f"wrote {Path(args.out) / 'result.json'}")
    if result.status == "infeasible":
        return EXIT_INFEASIBLE
    if not result.pools:
        return EXIT_NO_PLAN if result.status in ("time_limit", "no_solution_found") else EXIT_INTERNAL
    return EXIT_OK


def cmd_evaluate(args) -> int:
    instance, spec = _load(args)
    plan = load_plan(args.plan, instance)
    evaluation = evaluate(instance, spec, plan, subsidy=args.subsidy)
    data = evaluation.to_dict()
    write_json_atomic(Path(args.out) / "evaluation.json", data)
    print(evaluation_summary(data, instance))
    print(f"wrote {Path(args.out) / 'evaluation.json'}")
    return EXIT_OK if evaluation.feasible else EXIT_INFEASIBLE


def _progress_bar(label: str):
    """A one-line progress bar on stderr (only when stderr is a terminal)."""
    if not sys.stderr.isatty():
        return None

    def update(fraction: float) -> None:
        filled = int(round(30 * fraction))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return update


def cmd_simulate(args) -> int:
    instance, spec = _load(args)
    result_data = load_result_json(Path(args.result))
    recorded = result_data.get("provenance", {}).get("instance_sha256")
    if recorded and recorded != instance.sha256:
        print(f"warning: {args.result} was solved on a different instance file "
              f"(sha256 {recorded[:12]}... vs {instance.sha256[:12]}...)", file=sys.stderr)
    report = simulate(instance, spec, result_data, years=args.years, scenarios=args.scenarios,
                      seed=args.seed, stress=args.stress or [],
                      progress=_progress_bar("simulating pools"))
    data = report.to_dict()
    write_json_atomic(Path(args.out) / "stress.json", data)
    print(stress_summary(data, instance))
    print(f"wrote {Path(args.out) / 'stress.json'}")
    return EXIT_OK if data["plan"]["passed"] else EXIT_INFEASIBLE


def _candidate_summary(instance, spec) -> str:
    """How many candidate pools solve would enumerate, and for how many groups
    it would generate columns instead (default options)."""
    plan = candidate_plan(instance, spec, SolveOptions())
    if plan is None:
        return f"{len(candidate_pools(instance, spec))} candidate pools"
    listed = sum(len(subsets) for _, subsets in plan if subsets is not None)
    generated = [group for group, subsets in plan if subsets is None]
    return (f"{listed} candidate pools enumerated; {len(generated)} group(s) with more than "
            f"{SolveOptions().enumeration_limit:,} subsets get generated columns "
            f"({', '.join(g.label for g in generated[:5])}{', ...' if len(generated) > 5 else ''})")


def cmd_check(args) -> int:
    instance = load_instance(args.instance)
    prefectures = instance.prefectures
    print(f"{args.instance}: valid instance \"{instance.name}\" ({instance.year}, {instance.currency}): "
          f"{len(instance.counties)} counties in {len(prefectures)} prefectures, "
          f"{instance.total_enrollees:,} enrollees")
    if args.spec:
        spec = load_spec(args.spec)
        print(f"{args.spec}: valid spec; {_candidate_summary(instance, spec)}")
        pricer = PoolPricer(instance, spec)
        print(f"max solvent rate of each county alone ({spec.solvency.measure} "
              f"{spec.solvency.level:g}, reserve_share {spec.solvency.reserve_share:g}):")
        for county in instance.counties:
            p = pricer.price([county.id])
            flag = "" if p.usable else f"  (below rates.min {spec.rates.min:g})"
            print(f"  {county.id}  {county.name:<32} {county.enrollees:>10,}  {p.max_rate:.4f}{flag}")
    return EXIT_OK


def cmd_generate(args) -> int:
    try:
        data = generate_instance(args.counties, args.prefectures, args.seed)
    except ValueError as exc:
        raise InputError(f"generate: {exc}") from None
    instance = instance_from_dict(data, source="generated")  # validate before writing
    write_json_atomic(Path(args.out), data)
    print(f"wrote {args.out}: {len(instance.counties)} counties in {len(instance.prefectures)} "
          f"prefectures, {instance.total_enrollees:,} enrollees (synthetic, seed {args.seed})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pooling", description="Actuarial fund-pooling optimiser.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="choose the optimal pooling plan and write result.json")
    p.add_argument("instance", nargs="?", help=f"instance JSON (default: {DEFAULT_INSTANCE.name})")
    p.add_argument("--spec", help=f"model spec TOML (default: models/{DEFAULT_SPEC.name})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.add_argument("--compare", action="store_true",
                   help="also run the baselines (status quo, prefecture pooling, greedy merging) "
                        "under the same spec; adds them to result.json and prints a comparison")
    add_solve_arguments(p)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("evaluate", help="price a given plan and write evaluation.json")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", required=True, help="model spec TOML")
    p.add_argument("--plan", required=True, help='plan JSON: {"pools": [["id", ...], ...]}')
    p.add_argument("--subsidy", action="store_true",
                   help="also report the price of equalisation: the top-up per pool that keeps it "
                        "solvent with no county worse off, and per-county compensation")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("simulate", help="Monte Carlo stress test of a solved plan; writes stress.json")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", required=True, help="model spec TOML ([simulation] gives defaults)")
    p.add_argument("--result", required=True, help="result.json written by `pooling solve`")
    p.add_argument("--years", type=int, help="horizon in years (default: spec simulation.years)")
    p.add_argument("--scenarios", type=int, help="simulated paths (default: spec simulation.scenarios)")
    p.add_argument("--seed", type=int, help="random seed (default: spec simulation.seed)")
    p.add_argument("--stress", nargs="+", metavar="NAME",
                   help=f"stress scenarios to compose (presets: {', '.join(sorted(PRESETS))})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("generate", help="write a synthetic instance drawn from census distributions")
    p.add_argument("--counties", type=int, required=True, help="number of counties")
    p.add_argument("--prefectures", type=int, required=True, help="number of prefectures")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="generated.json", help="output file (default generated.json)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("check", help="validate an instance (and spec) and summarise it")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", help="model spec TOML")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except NumericsError as exc:
        print(f"numerical error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception:  # internal bug: show it in full, it is ours to fix
        traceback.print_exc()
        print("internal error: please report it with the command and files above", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
