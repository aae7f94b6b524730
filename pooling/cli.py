"""Command line: ``pooling solve | evaluate | check | simulate | generate | calibrate | report``.

Exit codes: 0 solved (or plan feasible, or stress test passed), 1 internal
error (a bug: the traceback is shown), 2 bad input (anything a user can type or
write: arguments, files, an output place that cannot be written), 3 infeasible
(result.json still written) or stress test failed (stress.json still written),
4 time limit with no plan found, 130 interrupted (Ctrl-C).
Arguments and inputs are validated, and the output place checked writable,
before any work; everything is computed before anything is written; files are
written atomically. A closed stdout (``| head``) does not stop the run.

Module-level imports are the standard library only, so that Ctrl-C while the
numerical libraries load is handled like Ctrl-C at any later moment.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from pooling.errors import FormatWarning, InputError, NumericsError

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_PLAN = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
"""128 + SIGINT, the shell's convention for a run stopped by Ctrl-C."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instances" / "tongliao.json"
DEFAULT_SPEC = PROJECT_ROOT / "models" / "default.toml"
DEFAULT_OUT = Path("out")


def _default(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(f"{path}: bundled default {what} not found; pass one explicitly "
                         f"(the defaults ship with a source checkout installed by `pip install -e .`)")
    return path


def say(text: str = "") -> None:
    """Print to stdout; a reader that went away (``| head``) silences the rest
    of the output instead of failing the run."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _load(args):
    from pooling.data.instance import load_instance
    from pooling.data.spec import load_spec
    instance = load_instance(args.instance or _default(DEFAULT_INSTANCE, "instance"))
    spec = load_spec(args.spec or _default(DEFAULT_SPEC, "spec"))
    return instance, spec


def _not_interrupted() -> None:
    """Before anything is written: a Ctrl-C that a library swallowed (HiGHS
    stops and reports status error) still ends the run as interrupted."""
    if _sigint_seen:
        raise KeyboardInterrupt


def _write(folder: str, name: str, data: dict) -> Path:
    from pooling.outputs.files import write_json_atomic
    _not_interrupted()
    path = Path(folder) / name
    write_json_atomic(path, data)
    return path


def _write_welfare_frame(args, result) -> None:
    """--format with [welfare]: the per-group welfare records as welfare.csv|parquet too."""
    from pooling.outputs.frames import welfare_frame
    frame = welfare_frame(result)
    if frame is not None:
        say(f"wrote {_write_frame(args, 'welfare', frame)}")


def _write_frame(args, stem: str, frame) -> Path:
    """--format csv|parquet: the pool frame beside the JSON (result.csv, ...)."""
    from pooling.outputs.frames import write_frame
    _not_interrupted()
    return write_frame(frame, Path(args.out) / f"{stem}.{args.format}", args.format)


def cmd_solve(args) -> int:
    from pooling.data.benefits import BenefitMenu
    from pooling.data.options import options_from_namespace
    from pooling.optimise.baselines import compare
    from pooling.optimise.solve import solve
    from pooling.outputs.summaries import baselines_table, result_summary
    options = options_from_namespace(args)
    instance, spec = _load(args)
    if spec.adjustment_fund is not None:
        return _solve_adjustment_fund(args, instance, spec, options)
    if args.compare and isinstance(spec.benefits, BenefitMenu):   # before any work: nothing is written
        raise spec.benefits.refusal("`solve --compare` (greedy merging prices one schedule)")
    plan = _execution_plan(args, "blocks solved")
    result = solve(instance, spec, options=options, workers=plan.workers, scheduler=plan.scheduler,
                   progress=plan.progress, checkpoint=Path(args.out) / "blocks", resume=args.resume,
                   started=args.started)
    data = result.to_dict()
    if args.compare:
        data["baselines"] = [b.to_dict() for b in compare(instance, spec, optimum=result, options=options,
                                                           started=args.started)]
    path = _write(args.out, _result_name(args, result.status), data)
    _say_replaced(path, getattr(args, "previous_status", None), result.status)
    say(result_summary(data, instance))
    if args.compare:
        say(baselines_table(data["baselines"]))
    say(f"wrote {path}")
    if args.format:
        say(f"wrote {_write_frame(args, 'result', result.to_frame(instance))}")
        _write_welfare_frame(args, result)
    if result.status in ("infeasible", "partial"):
        return EXIT_INFEASIBLE
    if not result.pools:
        if result.status in ("time_limit", "no_solution_found"):
            return EXIT_NO_PLAN
        print(f"internal error: the solver ended with status {result.status} (termination "
              f"{result.termination}) and no plan; please report it with the command and files",
              file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def _solve_adjustment_fund(args, instance, spec, options) -> int:
    """`solve` with [pooling] mode = "adjustment_fund" (issue 27): the plan of
    adjustment funds with each member's expected transfers, and with
    --compare the three designs' mean rates, in result.json."""
    from pooling.data.formats import FORMAT_FIELD, format_tag
    from pooling.data.provenance import provenance
    from pooling.execution.tasks import ExecutionPlan
    from pooling.optimise.adjustment import compare_modes, solve_adjustment_fund
    progress = ExecutionPlan(progress=False if args.quiet else (True if args.progress else None),
                             label="groups priced")   # on stderr only: stdout and files stay as they were
    if args.compare:
        comparison = compare_modes(instance, spec, options=options, started=args.started, progress=progress)
        plan = comparison.adjustment_fund
    else:
        plan = solve_adjustment_fund(instance, spec, progress=progress)
    data = {FORMAT_FIELD: format_tag("result")} | plan.to_dict() | {
        "spec": spec.to_dict(), "provenance": provenance(instance, spec, None, None)}
    if args.compare:
        data["baselines"] = comparison.to_dict()
    path = _write(args.out, _result_name(args, plan.status), data)
    mean = "none" if plan.objective is None else f"{plan.objective:.6f}"
    say(f"adjustment funds: {plan.status}; mean rate {mean}, {len(plan.groups)} groups")
    say(f"wrote {path}")
    return EXIT_OK if plan.status == "optimal" else EXIT_INFEASIBLE


COMPLETE_STATUSES = ("optimal", "feasible")
"""A result with a plan for every county, not cut short by the time limit."""


def _previous_status(out: Path) -> str | None:
    """The status of the result.json already in the output folder (None: none there)."""
    import json
    path = out / "result.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return "unreadable"
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else "unknown"


def _check_previous_result(args) -> None:
    """Note, before any work, what OUT/result.json holds (if anything): `solve`
    replaces a result and says so, but keeps a complete plan (`optimal`,
    `feasible`) rather than replace it by an incomplete one unless --overwrite."""
    args.previous_status = _previous_status(Path(args.out))


INCOMPLETE_NAME = "result.incomplete.json"
"""Where `solve` writes an incomplete result that would have replaced a complete one."""


def _result_name(args, status: str) -> str:
    """result.json, or INCOMPLETE_NAME when this run's incomplete result would
    replace a complete plan and --overwrite was not given."""
    previous = getattr(args, "previous_status", None)
    if previous in COMPLETE_STATUSES and status not in COMPLETE_STATUSES and not args.overwrite:
        return INCOMPLETE_NAME
    return "result.json"


def _say_replaced(path: Path, previous: str | None, status: str) -> None:
    """On stderr: what became of the result.json that was in the output folder."""
    if previous is None:
        return
    if path.name == INCOMPLETE_NAME:
        print(f"warning: kept {path.with_name('result.json')}, which holds a complete plan (status {previous}); "
              f"this run's result (status {status}) is in {path}. Pass --resume to finish from the blocks "
              f"kept in {path.with_name('blocks')}, or --overwrite to replace it", file=sys.stderr)
    elif previous in COMPLETE_STATUSES and status not in COMPLETE_STATUSES:
        print(f"warning: replaced {path}, which held a complete plan (status {previous}), by this run's "
              f"result with status {status} (--overwrite)", file=sys.stderr)
    else:
        print(f"replaced {path} (it held status {previous})", file=sys.stderr)


def cmd_evaluate(args) -> int:
    from pooling.data.plan import read_plan
    from pooling.optimise.solve import evaluate
    from pooling.outputs.summaries import evaluation_summary, sensitivity_table
    if args.resolve and not args.sensitivity:
        raise InputError("--resolve re-solves each sensitivity case: it needs --sensitivity")
    instance, spec = _load(args)
    plan, contracts = read_plan(args.plan, instance)
    if spec.adjustment_fund is not None:
        return _evaluate_adjustment_fund(args, instance, spec, plan, contracts)
    if args.workers:
        raise InputError('--workers is taken by evaluate only with [pooling] mode = "adjustment_fund"')
    contracts = [{"pool": sorted(pool), "option": option} for pool, option in contracts]
    # The plan by its file, so that an error about its schedules names it.
    evaluation = evaluate(instance, spec, args.plan, subsidy=args.subsidy, explain=args.explain, contracts=contracts)
    if args.sensitivity:
        from pooling.studies.sensitivity import sensitivity
        found = sensitivity(instance, spec, [sorted(pool) for pool in plan], contracts=contracts,
                            resolve=args.resolve, progress=None)
        evaluation = found.attach(evaluation)
    data = evaluation.to_dict()
    path = _write(args.out, "evaluation.json", data)
    say(evaluation_summary(data, instance))
    if args.sensitivity:
        say(sensitivity_table(data))
    say(f"wrote {path}")
    if args.format:
        say(f"wrote {_write_frame(args, 'evaluation', evaluation.to_frame(instance))}")
        _write_welfare_frame(args, evaluation)
    return EXIT_OK if evaluation.feasible else EXIT_INFEASIBLE


def _evaluate_adjustment_fund(args, instance, spec, plan, contracts) -> int:
    """`evaluate` with [pooling] mode = "adjustment_fund": the plan's pools are
    groups each sharing one adjustment fund (a fixed design, e.g. one per
    province; pooling.optimise.adjustment.evaluate_adjustment_fund), written
    to evaluation.json with each member's expected transfers."""
    from pooling.data.formats import FORMAT_FIELD, format_tag
    from pooling.data.provenance import provenance
    from pooling.optimise.adjustment import evaluate_adjustment_fund
    for flag, given in (("--subsidy", args.subsidy), ("--explain", args.explain),
                        ("--sensitivity", args.sensitivity), ("--format", args.format), ("contracts", contracts)):
        if given:
            raise InputError(f'{flag} is not taken by evaluate with mode "adjustment_fund" ({spec.source})')
    plan_out = evaluate_adjustment_fund(instance, spec, plan, workers=args.workers or 1)
    data = {FORMAT_FIELD: format_tag("evaluation")} | plan_out.to_dict() | {
        "spec": spec.to_dict(), "provenance": provenance(instance, spec, None, None)}
    path = _write(args.out, "evaluation.json", data)
    count = plan_out.candidates
    say(f"adjustment funds (given groups): {plan_out.status}; mean rate {plan_out.objective:.6f}, "
        f"{count} group{'' if count == 1 else 's'}")
    for i, (group, rule) in enumerate(zip(plan_out.groups, plan_out.rules), start=1):
        rates = [m.rate for m in group.members]
        say(f"  group {i} ({len(group.members)} member{'' if len(group.members) == 1 else 's'}): contribution "
            f"{group.contribution_share:g} of revenue, rate rule {rule}, member rates {min(rates):.4f}-"
            f"{max(rates):.4f}, paid in {group.means:,.0f}")
    for members in plan_out.unusable:
        say(f"  below rates.min: {', '.join(members)}")
    say(f"wrote {path}")
    return EXIT_OK if plan_out.status == "feasible" else EXIT_INFEASIBLE


def _progress_bar(label: str, pools: int):
    """The simulator's progress callback (share of pools done) as a tqdm bar
    on stderr counting pools, shown when stderr is a terminal."""
    from pooling.execution.tasks import ExecutionPlan, ProgressBar
    bar = ProgressBar(ExecutionPlan(progress=None), pools, label=label)
    done = [0]

    def update(fraction: float) -> None:
        now = round(fraction * pools)
        for _ in range(now - done[0]):
            bar.update()
        done[0] = now
        if now >= pools:
            bar.close()
    return update


def cmd_simulate(args) -> int:
    from pooling.outputs.files import load_result_json
    from pooling.outputs.summaries import stress_summary
    from pooling.simulation.stress_test import simulate
    instance, spec = _load(args)
    result_data = load_result_json(Path(args.result))
    recorded = result_data.get("provenance", {}).get("instance_sha256") \
        if isinstance(result_data.get("provenance"), dict) else None
    if recorded and recorded != instance.sha256:
        print(f"warning: {args.result} was solved on a different instance file "
              f"(sha256 {str(recorded)[:12]}... vs {instance.sha256[:12]}...)", file=sys.stderr)
    pools = result_data.get("pools")
    report = simulate(instance, spec, result_data, years=args.years, scenarios=args.scenarios,
                      seed=args.seed, stress=args.stress or [], reserve_share=args.reserve_share, truth=args.truth,
                      progress=_progress_bar("pools simulated", len(pools) if isinstance(pools, list) else 0))
    data = report.to_dict()
    if data.get("spec_growth_not_simulated"):
        growth = ", ".join(f"{k} {v:g}" for k, v in data["spec_growth_not_simulated"].items())
        print(f"note: the spec's [solvency] {growth} priced the plan, but the stress test draws every year at the "
              "instance's figures (add --stress inflation for growing costs; docs/model.md, 'Multi-year ruin')",
              file=sys.stderr)
    path = _write(args.out, "stress.json", data)
    say(stress_summary(data, instance))
    say(f"wrote {path}")
    if args.format:
        say(f"wrote {_write_frame(args, 'stress', report.to_frame(instance))}")
    return EXIT_OK if data["plan"]["passed"] else EXIT_INFEASIBLE


def _report_folder(args) -> Path:
    """Where `pooling report` writes: --out, else the result's folder."""
    return Path(args.out) if args.out is not None else Path(args.result).parent


def cmd_report(args) -> int:
    """One self-contained HTML page and a Markdown twin (figures beside it)
    for a result, with its stress test and an evaluation when given."""
    from pooling.outputs.calibration_report import build_calibration_report, is_calibration_file
    from pooling.outputs.report import build_report, write_report
    if is_calibration_file(args.result):
        given = [flag for flag, value in (("--stress", args.stress), ("--evaluation", args.evaluation),
                                          ("--instance", args.instance)) if value is not None]
        if given:
            raise InputError(f"{args.result}: a calibration.json has its own report; {given[0]} goes with a "
                             f"result.json")
        report = build_calibration_report(args.result)
    else:
        report = build_report(args.result, stress_path=args.stress, evaluation_path=args.evaluation,
                              instance_path=args.instance)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    written = write_report(report, _report_folder(args))
    figures = sum(path.suffix == ".png" for path in written)
    say(f"wrote {written[0]} and {written[1]} ({figures} figures beside them"
        + (", and the map page page.html)" if any(path.name == "page.html" for path in written) else ")"))
    return EXIT_OK


def _candidate_summary(instance, spec) -> str:
    """How many candidate pools solve would enumerate, and for how many groups
    it would generate columns instead (default options)."""
    from pooling.data.options import SolveOptions
    from pooling.optimise.candidates import candidate_pools
    from pooling.optimise.solve import candidate_plan
    plan = candidate_plan(instance, spec, SolveOptions())
    if plan is None:
        return f"{len(candidate_pools(instance, spec))} candidate pools"
    listed = sum(len(subsets) for _, subsets in plan if subsets is not None)
    generated = [group for group, subsets in plan if subsets is None]
    return (f"{listed} candidate pools enumerated; {len(generated)} group(s) with more than "
            f"{SolveOptions().enumeration_limit:,} subsets get generated columns "
            f"({', '.join(g.label for g in generated[:5])}{', ...' if len(generated) > 5 else ''})")


def cmd_check(args) -> int:
    """Validate the instance (and spec); print each county's maximum solvent
    rate on its own, under --spec or, without it, the bundled default spec."""
    from pooling.data.instance import load_instance
    from pooling.data.spec import load_spec
    from pooling.economics.pools import PoolPricer
    instance = load_instance(args.instance)
    prefectures = instance.prefectures
    say(f"{args.instance}: valid instance \"{instance.name}\" ({instance.year}, {instance.currency}): "
        f"{len(instance.counties)} counties in {len(prefectures)} prefectures, "
        f"{instance.total_enrollees:,} enrollees")
    if args.spec:
        spec = load_spec(args.spec)
        say(f"{args.spec}: valid spec; {_candidate_summary(instance, spec)}")
    elif DEFAULT_SPEC.exists():
        spec = load_spec(DEFAULT_SPEC)
        say(f"no --spec: rates below are under the bundled default spec {DEFAULT_SPEC.name}")
    else:
        say("no --spec and no bundled default spec: pass --spec SPEC for each county's rate")
        return EXIT_OK
    from pooling.data.settlement import under_settlement
    from pooling.execution.tasks import ExecutionPlan, ProgressBar
    from pooling.outputs.summaries import pad
    # Under a [benefits] menu each schedule's pricer, and each county's best rate over them.
    pricers = [PoolPricer(under_settlement(instance, member.network.settlement), member)
               for _, member in spec.schedule_specs()]
    alone = []
    with ProgressBar(ExecutionPlan(progress=None), len(instance.counties), label="counties priced") as bar:
        for county in instance.counties:
            alone.append(max((pricer.price([county.id]) for pricer in pricers), key=lambda p: p.max_rate))
            bar.update()
    best = f", the best of its {len(pricers)} [benefits] schedules" if len(pricers) > 1 else ""
    say(f"max solvent rate of each county alone ({spec.solvency.measure} "
        f"{spec.solvency.level:g}, reserve_share {spec.solvency.reserve_share:g}{best}):")
    for county, p in zip(instance.counties, alone):
        flag = "" if p.usable else f"  (below rates.min {spec.rates.min:g})"
        say(f"  {county.id}  {pad(county.name, 32)} {county.enrollees:>10,}  {p.max_rate:.4f}{flag}")
    return EXIT_OK


def cmd_generate(args) -> int:
    from pooling.data.generate import generate_instance
    from pooling.data.instance import instance_from_dict
    from pooling.outputs.files import write_json_atomic
    try:
        data = generate_instance(args.counties, args.prefectures, args.seed)
    except ValueError as exc:
        raise InputError(f"generate: {exc}") from None
    instance = instance_from_dict(data, source="generated")  # validate before writing
    if args.history:
        return _generate_history(args, data, instance)
    _not_interrupted()
    write_json_atomic(Path(args.out), data)
    say(f"wrote {args.out}: {len(instance.counties)} counties in {len(instance.prefectures)} "
        f"prefectures, {instance.total_enrollees:,} enrollees (synthetic, seed {args.seed})")
    return EXIT_OK


def _generate_history(args, data: dict, instance) -> int:
    """generate --history: the instance (the truth) and FUNDS, HISTORY, CLAIMS
    tables simulated from it, all into the folder --out."""
    from pooling.calibration.synthetic import simulate_panel
    from pooling.outputs.files import write_csv_atomic, write_json_atomic
    panel = simulate_panel(instance, args.history, args.seed)
    folder = Path(args.out)
    _not_interrupted()
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("funds", "history", "claims"):
        write_csv_atomic(folder / f"{name}.csv", panel[name])
    write_json_atomic(folder / "truth.json", panel["truth"])
    write_json_atomic(folder / "instance.json", data)
    say(f"wrote {folder}: instance.json (the truth, {len(instance.counties)} counties, year {instance.year}), "
        f"funds.csv, history.csv ({args.history} years), claims.csv ({len(panel['claims']):,} sampled "
        f"admissions), truth.json")
    return EXIT_OK


def cmd_calibrate(args) -> int:
    """Tables to DIR/instance.json and DIR/calibration.json (and the
    uncertainty fragment); everything is estimated before anything is written."""
    from pooling.calibration.calibrate import calibrate
    from pooling.data.instance import load_instance
    from pooling.outputs.files import write_json_atomic, write_text_atomic
    base = load_instance(args.base) if args.base else None
    result = calibrate(args.funds, args.history, claims=args.claims, base=base, year=args.year)
    fragment = result.uncertainty_toml(args.uncertainty) if args.uncertainty else None
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    folder = Path(args.out)
    _not_interrupted()
    write_json_atomic(folder / "calibration.json", result.record)
    write_json_atomic(folder / "instance.json", result.instance)
    record = result.record
    trend, shocks = record["trend"], record["shock_variance"]

    def show(item) -> str:
        return "not identified" if item is None else \
            f"{item['estimate']:.4g} [{item['low']:.4g}, {item['high']:.4g}]"
    say(f"calibrated {len(record['counties'])} counties, years {record['years'][0]}-{record['years'][1]}, "
        f"projected to {record['pricing_year']} (95% intervals)")
    say(f"  trend: admissions {show(trend['admissions'])} a year, cost per admission {show(trend['cost'])}")
    for part in ("national", "prefecture", "county"):
        say(f"  shock variance {part}: {show(shocks[part])}")
    credibility = [c["credibility"] for c in record["counties"].values()]
    say(f"  credibility toward the prefecture: {min(credibility):.3f}-{max(credibility):.3f}")
    say(f"  severity: {record['severity']['family']} from {record['severity']['source']}")
    say(f"wrote {folder / 'instance.json'} and {folder / 'calibration.json'}")
    if fragment is not None:
        write_text_atomic(folder / "uncertainty.toml", fragment)
        say(f"wrote {folder / 'uncertainty.toml'} ([uncertainty] for a spec, {args.uncertainty})")
    return EXIT_OK


MAX_SEED = 2**63 - 1
"""numpy's SeedSequence takes any non-negative integer; a bound keeps seeds printable
and recordable as JSON integers every reader can hold."""

MAX_GENERATED_COUNTIES = 100_000
"""Far above China's ~2,850 county-level units; larger requests are typos."""


def _bounded_int(low: int, high: int):
    """An argparse type: an integer in [low, high] (argparse turns the error
    into a usage message and exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:,}, {high:,}], got {text}")
        return value
    parse.__name__ = "integer"
    return parse


def cmd_sweep(args) -> int:
    """Every cell of the grid solved (finished cells reused), the tidy table
    and the trade-off plot written, a one-line summary per cell printed."""
    from pooling.studies.sweep import load_sweep, plot_tradeoff, run_sweep, write_table
    sweep = load_sweep(args.sweep)
    out = Path(args.out)
    rows = run_sweep(sweep, out, _execution_plan(args, "cells solved"))
    written = write_table(rows, sweep.fields, out)
    figure = plot_tradeoff(rows, sweep.fields, out)
    for row in rows:
        values = ", ".join(f"{f}={row[f]}" for f in sweep.fields)
        mean = "-" if row["mean_rate"] is None else f"{row['mean_rate']:.4f}"
        objective = "-" if row["objective"] is None else f"{row['objective']:.4f}"
        say(f"{Path(row['instance']).stem}: {values}: {row['status']}, objective {objective}, mean rate {mean}")
    for path in written + ([figure] if figure else []):
        say(f"wrote {path}")
    return EXIT_OK


def cmd_frontier(args) -> int:
    """The residents-migrants frontier: one optimal plan per weight on
    migrants, DIR/frontier.csv and DIR/frontier.png."""
    from pooling.data.options import FrontierOptions
    from pooling.execution.tasks import ExecutionPlan
    from pooling.optimise.equity import FRONTIER_FIELDS, frontier
    from pooling.outputs.frontier import plot_frontier, write_frontier_csv
    points = FrontierOptions(points=args.points)
    instance, spec = _load(args)
    plan = ExecutionPlan(workers=1, progress=False if args.quiet else (True if args.progress else None),
                         label="frontier")
    rows = frontier(instance, spec, points, plan=plan)
    _not_interrupted()
    out = Path(args.out)
    written = [write_frontier_csv(rows, FRONTIER_FIELDS, out), plot_frontier(rows, instance.name, out)]
    for row in rows:
        say(f"weight {row['weight']:.3f}: residents {row['resident_effective_rate']:.4f}, migrants "
            f"{row['migrant_effective_rate']:.4f}, mean {row['mean_effective_rate']:.4f}, {row['pools']} pools"
            + (f", contracts {row['contracts']}" if row["contracts"] else ""))
    for path in written:
        if path is not None:
            say(f"wrote {path}")
    return EXIT_OK


def _check_output(args) -> None:
    """The output place is writable: checked before any work, so a long run is
    never lost to a typo in --out."""
    from pooling.outputs.files import check_writable_file, check_writable_folder
    if args.command == "generate":
        if args.out is None:
            args.out = "generated" if args.history else "generated.json"
        (check_writable_folder if args.history else check_writable_file)(Path(args.out))
    elif args.command == "report":
        from pooling.outputs.report import check_report_libraries
        check_writable_folder(_report_folder(args))
        check_report_libraries()
    elif getattr(args, "out", None) is not None:
        check_writable_folder(Path(args.out))
    if args.command == "solve":
        _check_previous_result(args)
    if getattr(args, "format", None) is not None:
        from pooling.outputs.frames import check_format
        check_format(args.format)


def _add_execution_arguments(parser: argparse.ArgumentParser, work: str, workers_note: str = "") -> None:
    """--workers, --scheduler, --progress | --quiet: where `work` runs and what is shown."""
    from pooling.execution.tasks import MAX_WORKERS
    parser.add_argument("--workers", type=_bounded_int(1, MAX_WORKERS), metavar="N",
                        help=f"local worker processes for {work} (default: every core{workers_note})")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help=f"run {work} on a Dask distributed scheduler (pip install 'pooling[distributed]')")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="progress bars on stderr even when it is not a terminal")
    shown.add_argument("--quiet", action="store_true", help="no progress bars")


def _execution_plan(args, label: str):
    """The ExecutionPlan of --workers, --scheduler, --progress and --quiet."""
    from pooling.execution.tasks import ExecutionPlan, default_workers
    progress = False if args.quiet else (True if args.progress else None)
    return ExecutionPlan(workers=args.workers or default_workers(), scheduler=args.scheduler, progress=progress,
                         label=label)


def build_parser() -> argparse.ArgumentParser:
    from pooling.data.options import add_solve_arguments
    from pooling.data.provenance import versions
    from pooling.data.stress import PRESETS
    parser = argparse.ArgumentParser(prog="pooling", description="Actuarial fund-pooling optimiser.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # --version on one line
    found = versions()
    parser.add_argument("--version", action="version", help="print the versions of pooling, Python and the "
                        "numerical libraries, and exit",
                        version=f"pooling {found.pop('pooling')} (" + ", ".join(f"{k} {v}" for k, v in found.items())
                        + ")")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="choose the optimal pooling plan and write result.json")
    p.add_argument("instance", nargs="?", help=f"instance JSON (default: {DEFAULT_INSTANCE.name})")
    p.add_argument("--spec", help=f"model spec TOML (default: models/{DEFAULT_SPEC.name})")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.add_argument("--compare", action="store_true",
                   help="also run the baselines under the same spec (status quo, prefecture pooling, greedy "
                        "merging; with mode adjustment_fund: no pooling, adjustment funds, unified pools); adds "
                        "them to result.json and prints a comparison (refused under a [benefits] menu)")
    add_solve_arguments(p)
    _add_execution_arguments(p, "independent blocks",
                             "; fewer, or none, when the blocks are too small to repay starting them")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="reuse the blocks a previous run finished (kept in OUT/blocks/, each verified "
                            "before use) and solve the rest; replaces OUT/result.json")
    again.add_argument("--overwrite", action="store_true",
                       help="replace OUT/result.json even when it holds a complete plan and this run's "
                            "result is incomplete (without it, that result goes to OUT/result.incomplete.json)")
    p.add_argument("--format", choices=("csv", "parquet"),
                   help="also write the pools as a table beside the JSON, OUT/result.csv or .parquet "
                        "(pip install 'pooling[report]')")
    p.set_defaults(func=cmd_solve, solves=True)

    p = sub.add_parser("evaluate", help="price a given plan and write evaluation.json")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", required=True, help="model spec TOML")
    p.add_argument("--plan", required=True,
                   help='plan JSON ({"pools": [["id", ...], ...]}), or a result.json or evaluation.json')
    p.add_argument("--subsidy", action="store_true",
                   help="also report the price of equalisation: the top-up per pool that keeps it "
                        "solvent with no county worse off, and per-county compensation")
    p.add_argument("--explain", action="store_true",
                   help="also split the change of the objective against the status quo into composition, "
                        "fixed-cost saving, diversification, network and rules (evaluation.json's explain)")
    p.add_argument("--sensitivity", action="store_true",
                   help="also evaluate the plan with each assumed parameter scaled x0.5 and x1.5 on its own "
                        "(or in each scenario of the spec's [uncertainty]): evaluation.json's sensitivity, "
                        "a table with the largest swings first")
    p.add_argument("--resolve", action="store_true",
                   help="with --sensitivity: also solve each case and report whether the optimal plan "
                        "changes and the plan's regret (the case's optimum against the plan)")
    from pooling.execution.tasks import MAX_WORKERS
    p.add_argument("--workers", type=_bounded_int(1, MAX_WORKERS), metavar="N",
                   help='with [pooling] mode = "adjustment_fund": local worker processes pricing the groups '
                        "(default 1)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.add_argument("--format", choices=("csv", "parquet"),
                   help="also write the pools as a table beside the JSON, OUT/evaluation.csv or .parquet "
                        "(pip install 'pooling[report]')")
    p.set_defaults(func=cmd_evaluate, solves=True)

    p = sub.add_parser("simulate", help="Monte Carlo stress test of a solved plan; writes stress.json")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", required=True, help="model spec TOML ([simulation] gives defaults)")
    p.add_argument("--result", required=True, help="result.json written by `pooling solve`")
    p.add_argument("--years", type=_bounded_int(1, 100),
                   help="horizon in years, 1-100 (default: spec simulation.years)")
    p.add_argument("--scenarios", type=_bounded_int(100, 10_000_000),
                   help="simulated paths, 100-10,000,000 (default: spec simulation.scenarios)")
    p.add_argument("--seed", type=_bounded_int(0, MAX_SEED), help="random seed >= 0 (default: spec simulation.seed)")
    p.add_argument("--reserve-share", type=float, metavar="U",
                   help="share of the members' reserves each pool starts from, 0-1 (default: the spec's "
                        "solvency.reserve_share, as the rates were priced)")
    p.add_argument("--stress", nargs="+", metavar="NAME",
                   help=f"stress scenarios to compose (presets: {', '.join(sorted(PRESETS))})")
    p.add_argument("--truth", metavar="SCENARIO",
                   help="draw the years from this scenario instead of the instance the plan was priced on: a "
                        "scenario name of the spec's [uncertainty], or PATH=xS / PATH=V changes, comma-separated "
                        "(parameters.frequency_shock_cv=x1.5,parameters.regional_shocks.*.cv=x1.5); stress.json "
                        "then gives each pool's year-1 budget exhaustion probability promised and true")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: out)")
    p.add_argument("--format", choices=("csv", "parquet"),
                   help="also write the pools as a table beside the JSON, OUT/stress.csv or .parquet "
                        "(pip install 'pooling[report]')")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("generate", help="write a synthetic instance drawn from census distributions")
    p.add_argument("--counties", type=_bounded_int(1, MAX_GENERATED_COUNTIES), required=True,
                   help="number of counties")
    p.add_argument("--prefectures", type=_bounded_int(1, MAX_GENERATED_COUNTIES), required=True,
                   help="number of prefectures")
    p.add_argument("--seed", type=_bounded_int(0, MAX_SEED), default=0, help="random seed (default 0)")
    p.add_argument("--history", type=_bounded_int(3, 100), metavar="YEARS",
                   help="also simulate YEARS of county history from the instance (the truth): --out is then a "
                        "folder with instance.json, funds.csv, history.csv, claims.csv and truth.json")
    p.add_argument("--out", help="output file (default generated.json; with --history a folder, default generated)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("calibrate", help="estimate a calibrated instance from county tables (FUNDS, HISTORY, "
                                         "CLAIMS); writes instance.json and calibration.json")
    p.add_argument("funds", help="FUNDS table (CSV, or Parquet with pyarrow): one row per county fund")
    p.add_argument("history", help="HISTORY table: id, year, enrollees, admissions, inpatient_cost[, paid]")
    p.add_argument("--claims", help="CLAIMS table: id, year, cost (one row per admission, or a sample)")
    p.add_argument("--base", help="instance JSON holding the same counties: what the tables do not carry "
                                  "(parameters, places, adjacency, migrant destinations, contracts)")
    p.add_argument("--year", type=_bounded_int(1900, 2200),
                   help="pricing year the estimates are projected to (default: the year after the history)")
    p.add_argument("--uncertainty", choices=("predictive", "robust"),
                   help="also write OUT/uncertainty.toml, the spec's [uncertainty] table from the intervals")
    p.add_argument("--out", default="out/calibrated", help="output folder (default out/calibrated)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("report", help="write a self-contained HTML report (and a Markdown twin) of a result "
                                      "or of a calibration")
    p.add_argument("result", help="result.json written by `pooling solve`, or calibration.json written by "
                                  "`pooling calibrate` (its calibration report)")
    p.add_argument("--stress", help="stress.json written by `pooling simulate` for this plan")
    p.add_argument("--evaluation", help="evaluation.json written by `pooling evaluate` (e.g. with --subsidy)")
    p.add_argument("--instance", help="instance JSON (default: the path in the result's provenance)")
    p.add_argument("--out", help="output folder (default: the result's folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sweep", help="solve a grid of specs and instances; write sweep.csv/.parquet and a plot")
    p.add_argument("sweep", help="sweep TOML: instances, spec, [grid] of spec fields, optional [options]")
    p.add_argument("--out", default="out/sweep", help="output folder (default out/sweep); finished cells are "
                                                      "kept in OUT/cells/ and skipped when the sweep runs again")
    _add_execution_arguments(p, "the cells")
    p.set_defaults(func=cmd_sweep, solves=True)

    from pooling.data.options import FRONTIER_OPTIONS, MAX_FRONTIER_POINTS
    p = sub.add_parser("frontier", help="trace the efficient frontier between residents' and migrants' effective "
                                        "rates; write frontier.csv and frontier.png")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", required=True, help="model spec TOML")
    p.add_argument("--points", type=_bounded_int(2, MAX_FRONTIER_POINTS), default=11, metavar="N",
                   help=FRONTIER_OPTIONS["points"])
    p.add_argument("--out", default="out/frontier", help="output folder (default out/frontier)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="progress bars on stderr even when it is not a terminal")
    shown.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_frontier, solves=True)

    p = sub.add_parser("check", help="validate an instance (and spec) and print each county's rate alone")
    p.add_argument("instance", help="instance JSON")
    p.add_argument("--spec", help="model spec TOML (default: the bundled default spec, for the rates)")
    p.set_defaults(func=cmd_check)
    return parser


_sigint_seen = False
"""Set by `_on_sigint`: a Ctrl-C arrived during this run."""


def _on_sigint(signum, frame) -> None:
    """Python's own behaviour (raise KeyboardInterrupt), remembering that it
    happened: libraries may turn the interrupt into another exception (numpy's
    C import into an ImportError, Pyomo's output capture into a RuntimeError)."""
    global _sigint_seen
    _sigint_seen = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (never raises for user input)."""
    global _sigint_seen
    _sigint_seen = False
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if in_main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(warnings.showwarning)
            return _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)


def _show_warning(default):
    """A FormatWarning (a file read by an older format's rules) printed as
    ``warning: ...`` like the CLI's other warnings; any other as Python shows it."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FormatWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def _main(argv: list[str] | None) -> int:
    started = time.monotonic()   # --time-limit counts from here
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as stop:  # --help (0) or a usage error (2), already printed
            return stop.code if isinstance(stop.code, int) else EXIT_INPUT
        args.started = started
        if getattr(args, "solves", False):
            import pooling.optimise  # noqa: F401  (before scipy loads: the package docstring says why)
        _check_output(args)
        if getattr(args, "scheduler", None) is not None:   # before any work, even if one block would not use it
            from pooling.execution.scheduler_address import check_scheduler
            check_scheduler(args.scheduler)
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except NumericsError as exc:
        print(f"numerical error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted: nothing was written by the unfinished step", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # internal bug: show it in full, it is ours to fix
        if _sigint_seen:   # a library turned the user's Ctrl-C into another exception
            print("interrupted: nothing was written by the unfinished step", file=sys.stderr)
            return EXIT_INTERRUPTED
        traceback.print_exc()
        print("internal error: please report it with the command and files above", file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    """The console script: main(), then exit with its code. After Ctrl-C the
    process leaves at once (os._exit): an import cut short by the interrupt can
    otherwise make interpreter shutdown report death by SIGINT (exit -2)
    instead of 130. Files are written atomically, so nothing is half-written.
    Once main() has returned the work is done: a Ctrl-C during interpreter
    shutdown is ignored, so it cannot turn a finished run's exit code into -2."""
    try:
        code = main()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:   # after main's own handler, before the signal was ignored
        print("interrupted: nothing was written by the unfinished step", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
