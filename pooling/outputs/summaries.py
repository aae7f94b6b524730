"""Readable plan, evaluation, stress and baseline tables for the terminal."""

from __future__ import annotations

import unicodedata
from typing import Any

from pooling.data.instance import Instance

GAP_SHOWN_AS_ZERO = 1e-9
"""Relative MIP gaps smaller than this (either sign) are shown as 0 in the
terminal and the report: it is the relative gap HiGHS is asked to close by
default (SolveOptions.mip_rel_gap), and gaps far below it are rounding in the
objective and the bound (a proven optimum printed as "1.4e-14 %" or
"-0.000000"), not room for a better plan. result.json keeps the exact figure."""


def objective_label(record: dict[str, Any]) -> str:
    """A result's or evaluation's objective kind, with its aversion when the
    resolved spec gives one (Atkinson's kind: the figure depends on it)."""
    spec = record.get("spec")
    table = spec.get("objective") if isinstance(spec, dict) else None
    aversion = table.get("aversion") if isinstance(table, dict) else None
    kind = record["objective_kind"]
    return kind if aversion is None else f"{kind}, aversion {aversion:g}"


def shown_gap(gap: float | None) -> float | None:
    """The gap as displayed: 0 when below GAP_SHOWN_AS_ZERO in size."""
    return None if gap is None else 0.0 if abs(gap) < GAP_SHOWN_AS_ZERO else gap


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal: East Asian wide and fullwidth
    characters (county names in Chinese) take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def pad(text: str, width: int) -> str:
    """`text` left-aligned in `width` terminal columns (str.ljust counts
    characters, so a column of Chinese names would drift)."""
    return text + " " * max(0, width - display_width(text))


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plan_table(pools: list[dict[str, Any]], instance: Instance) -> str:
    """Fixed-width table of pools: id, counties, rate, max rate, enrollees."""
    header = ("pool", "rate", "max rate", "enrollees", "counties")
    rows = []
    for pool in pools:
        names = ", ".join(f"{instance.county(c).name} ({c})" for c in pool["counties"])
        rows.append((pool["id"], _fmt(pool["rate"]), _fmt(pool["max_rate"]),
                     f"{pool['enrollees']:,}", names))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
             + "  " + header[4]]
    for row in rows:
        lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                               for i, (v, w) in enumerate(zip(row[:4], widths))) + "  " + row[4])
    return "\n".join(lines)


SCENARIO_LINES_UP_TO = 12
"""Pools listed one line each with their rate in every scenario; beyond this
many only the count of pools each scenario binds is printed (result.json has
every pool's)."""


def scenario_lines(pools: list[dict[str, Any]]) -> list[str]:
    """Under [uncertainty]: each pool's max rate in every scenario and, under
    "robust", the scenario that binds it (the smallest rate)."""
    priced = [p for p in pools if p.get("scenario_rates")]
    if not priced:
        return []
    binding: dict[str, int] = {}
    for pool in priced:
        if pool.get("binding_scenario") is not None:
            binding[pool["binding_scenario"]] = binding.get(pool["binding_scenario"], 0) + 1
    lines = []
    if binding:
        lines.append("binding scenario (robust: the pool's max rate is its rate there): "
                     + ", ".join(f"{name} in {n} pool{'s' if n > 1 else ''}" for name, n in binding.items()))
    if len(priced) <= SCENARIO_LINES_UP_TO:
        for pool in priced:
            rates = ", ".join(f"{name} {_fmt(rate)}" for name, rate in pool["scenario_rates"].items())
            bound = pool.get("binding_scenario")
            lines.append(f"  {pool['id']} max rate by scenario: {rates}"
                         + (f" (binding: {bound})" if bound is not None else ""))
    return lines


def result_summary(result: dict[str, Any], instance: Instance) -> str:
    """Readable summary of result.json for the terminal."""
    lines = [f"instance {instance.name} ({len(instance.counties)} counties, "
             f"{instance.total_enrollees:,} enrollees); spec scope {result['spec']['pooling']['scope']}"]
    lines.append(f"status {result['status']}; objective ({objective_label(result)}) {_fmt(result['objective'])}; "
                 f"bound {_fmt(result['bound'])}; gap {_fmt(shown_gap(result['gap']), 6)}; "
                 f"{result['columns']} usable columns of {result['candidate_pools']} candidates; "
                 f"{result['wall_seconds']:.2f} s")
    generation = result.get("candidate_generation") or {}
    if generation.get("method") == "column_generation":
        generated = [g for g in generation["groups"] if g["method"] == "generated"]
        lines.append(
            f"columns generated for {len(generated)} of {len(generation['groups'])} groups (more than "
            f"{generation['enumeration_limit']:,} subsets, or --candidates generate): "
            f"{sum(g['pools_priced'] for g in generated):,} pools priced in {generation['rounds']} rounds"
            f"{'' if generation['converged'] else ' (stopped: ' + str(generation['stopped']) + ')'}; the "
            f"bound is {generation['bound_method']}; "
            + ("proven optimal" if generation.get("proven_optimal") else "optimality not proven"))
    if result.get("groups"):
        counts: dict[str, int] = {}
        for group in result["groups"]:
            counts[group["status"]] = counts.get(group["status"], 0) + 1
        lines.append(f"decomposed into {len(result['groups'])} independent blocks: "
                     + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if result["pools"]:
        lines.append(plan_table(result["pools"], instance))
        lines.extend(schedule_lines(result["pools"]))
        lines.extend(scenario_lines(result["pools"]))
        for extra in (portability_line(result), group_rates_line(result)):
            if extra:
                lines.append(extra)
        lines.extend(welfare_lines(result, instance.currency))
    for line in result.get("diagnosis", []):
        lines.append(f"diagnosis: {line}")
    return "\n".join(lines)


def portability_line(data: dict[str, Any]) -> str | None:
    """What enrollees receive under a plan (result.json's or evaluation.json's portability)."""
    p = data.get("portability")
    if not p:
        return None
    return (f"enrollees receive: mean effective rate {_fmt(p['mean_effective_rate'])}, effective coverage "
            f"{_fmt(p['effective_coverage'])}; residents' effective rate {_fmt(p['resident_effective_rate'])}; "
            f"migrants' effective rate {_fmt(p['migrant_effective_rate'])}, "
            f"in network {_fmt(p['migrant_in_network_share'])} of their admissions")


def schedule_lines(pools: list[dict[str, Any]]) -> list[str]:
    """Each pool's benefit schedule, when the spec's [benefits] is a menu (pools carry `benefits`)."""
    from pooling.data.benefits import schedule_from_dict
    from pooling.optimise.result import schedule_label
    return [f"  {p['id']} benefits: {schedule_label(schedule_from_dict(p['benefits'], p['id']))}"
            for p in pools if p.get("benefits")]


def group_rates_line(data: dict[str, Any]) -> str | None:
    """A group objective's figures (result.json's or evaluation.json's `group_rates`)."""
    g = data.get("group_rates")
    if not g:
        return None
    return (f"groups (a county's residents, or its migrants; people-weighted means): residents "
            f"{_fmt(g['resident_effective_rate'])}, migrants {_fmt(g['migrant_effective_rate'])}; worst-off group "
            f"{_fmt(g['worst_group_rate'])}")


def welfare_lines(data: dict[str, Any], currency: str) -> list[str]:
    """What enrollees pay under a plan, by group kind (result.json's or
    evaluation.json's `welfare`, the spec's [welfare]); none without it."""
    from pooling.economics.welfare import plan_welfare
    records = data.get("welfare")
    if not records:
        return []
    return [f"{w['group'].replace('_', ' ')} pay {w['out_of_pocket_per_enrollee']:,.0f} {currency} a year each "
            f"out of pocket ({_fmt(w['out_of_pocket_per_admission'], 0)} per admission, "
            f"{_fmt(w['share_of_bill_paid'])} of the bill); catastrophic incidence "
            f"{w['catastrophic_incidence']:.4f}"
            + (f"; travel {w['travel_cost_per_enrollee']:,.0f} {currency} each (assumed)"
               if w["travel_cost_per_enrollee"] else "")
            for w in plan_welfare(records)]


def explain_lines(explain: dict[str, Any]) -> list[str]:
    parts = explain["parts"]
    return [f"gain over the status quo ({explain['objective_kind']}): {explain['status_quo']:.4f} -> "
            f"{explain['plan']:.4f}, {explain['total']:+.4f} = "
            + " ".join(f"{name.replace('_', ' ')} {value:+.4f}" for name, value in parts.items())] \
        + [f"behaviour [{', '.join(pool['counties'])}]: max rate {b['max_rate_without_response']:.4f} without "
           f"the response, {b['max_rate_with_response']:.4f} with it; admissions x{b['admission_multiplier']:.4f} "
           f"at rate {pool['rate']:.4f}"
           for pool in explain.get("pools", []) for b in [pool.get("behaviour")] if b]


def evaluation_summary(evaluation: dict[str, Any], instance: Instance) -> str:
    lines = [f"plan on {instance.name}: {evaluation['status']}; objective ({objective_label(evaluation)}) "
             f"{_fmt(evaluation['objective'])}; mean rate {_fmt(evaluation.get('mean_rate'))}",
             plan_table(evaluation["pools"], instance), *schedule_lines(evaluation["pools"]),
             *scenario_lines(evaluation["pools"])]
    for extra in (portability_line(evaluation), group_rates_line(evaluation)):
        if extra:
            lines.append(extra)
    lines.extend(welfare_lines(evaluation, instance.currency))
    if evaluation.get("explain"):
        lines.extend(explain_lines(evaluation["explain"]))
    lines.extend(f"violation: {v['message'] if isinstance(v, dict) else v}" for v in evaluation["violations"])
    if evaluation.get("subsidy"):
        sub = evaluation["subsidy"]
        lines.append(f"price of equalisation: top-up {sub['total_top_up']:,.0f} {instance.currency}; "
                     f"county compensation {sub['total_compensation']:,.0f} {instance.currency}/yr")
        for p in sub["pools"]:
            lines.append(f"  {p['id']}: rate {p['rate_without_subsidy']:.4f} -> required "
                         f"{p['rate_required']:.4f}, top-up {p['top_up']:,.0f}")
    return "\n".join(lines)


def stress_summary(data: dict[str, Any], instance: Instance) -> str:
    """Readable table of stress.json."""
    lines = [f"stress test: {data['scenarios']:,} scenarios x {data['years']} years, seed {data['seed']}, "
             f"stress {'+'.join(data['stress']) or 'none'}; ruin target {data['ruin_target']:.4g}"]
    header = f"{'counties':<28} {'rate':>6} {'P(deficit)':>10} {'P(ruin)':>9} {'95% CI':>17} " \
             f"{'mean surplus':>14} {'passed':>6}"
    lines.append(header)
    for p in data["pools"]:
        names = ",".join(p["counties"])
        names = names if len(names) <= 28 else names[:25] + "..."
        ci = f"[{p['ruin_probability_ci'][0]:.4f},{p['ruin_probability_ci'][1]:.4f}]"
        lines.append(f"{names:<28} {p['rate']:6.4f} {p['deficit_probability']:10.4f} "
                     f"{p['ruin_probability']:9.4f} {ci:>17} {p['mean_surplus']:14,.0f} "
                     f"{'yes' if p['passed'] else 'NO':>6}")
    if data.get("truth"):
        truth = data["truth"]
        lines.append(f"years drawn from --truth {truth['scenario']} ({truth['from']}), not the instance the rates "
                     f"were priced on; year-1 budget exhaustion (claims paid above the committed budget):")
        for p in data["pools"]:
            names = ",".join(p["counties"])
            names = names if len(names) <= 28 else names[:25] + "..."
            low, high = p["ruin_probability_ci"] if len(p["ruin_probability_by_year"]) == 1 else (None, None)
            simulated = f"{p['ruin_probability_by_year'][0]:.4f}" + (
                "" if low is None else f" [{low:.4f},{high:.4f}]")
            lines.append(f"  {names:<28} promised {p['exhaustion_probability_promised']:.4f}, true "
                         f"{p['exhaustion_probability_truth']:.4f} (exact), simulated {simulated}")
    plan = data["plan"]
    lines.append(f"any pool ruined: {plan['any_ruin_probability']:.4f} "
                 f"[{plan['any_ruin_probability_ci'][0]:.4f}, {plan['any_ruin_probability_ci'][1]:.4f}]; "
                 f"plan {'passed' if plan['passed'] else 'FAILED'}")
    return "\n".join(lines)


def baselines_table(baselines: list[dict[str, Any]]) -> str:
    """Status quo vs prefecture pooling vs greedy vs optimum, one line each."""
    lines = [f"{'plan':<17} {'status':<11} {'objective':>9} {'mean rate':>9} {'min rate':>8} "
             f"{'max rate':>8} {'pools':>5} {'seconds':>8}"]
    for b in baselines:
        lines.append(f"{b['name']:<17} {b['status']:<11} {_fmt(b['objective']):>9} "
                     f"{_fmt(b['mean_rate']):>9} {_fmt(b['min_rate']):>8} {_fmt(b['max_rate']):>8} "
                     f"{len(b['pools']):>5} {b['seconds']:>8.2f}"
                     + ("  (breaks the pooling rules)" if b.get("breaks_rules") else ""))
        as_run = b.get("as_run")
        if as_run:
            lines.append(f"{'':<17} at current rates: expected surplus {as_run['expected_surplus']:,.0f}, "
                         f"{as_run['expected_deficit_share']:.0%} of counties in deficit on average, "
                         f"{as_run['insolvent_share']:.0%} above their solvent rate")
    return "\n".join(lines)


def scale_label(scale: float | None) -> str:
    """How a sensitivity case's scale is shown: x0.5, or "scenario" for a spec scenario."""
    return "scenario" if scale is None else f"x{scale:g}"


def _item(case: Any, name: str) -> Any:
    return case[name] if isinstance(case, dict) else getattr(case, name)


def sensitivity_groups(cases: list[Any], base: float) -> list[tuple[str, list[Any], float]]:
    """(parameter, its cases by scale, swing) with the largest swing first;
    swing = the range of the objective over the parameter's cases and the base
    (ties by parameter, so the order is deterministic). Cases are
    evaluation.json entries or the report's SensitivityCaseRecords."""
    by_parameter: dict[str, list[Any]] = {}
    for case in cases:
        by_parameter.setdefault(_item(case, "parameter"), []).append(case)
    groups = []
    for parameter, mine in by_parameter.items():
        values = [base] + [_item(c, "objective") for c in mine]
        mine = sorted(mine, key=lambda c: (_item(c, "scale") is None, _item(c, "scale") or 0.0))
        groups.append((parameter, mine, max(values) - min(values)))
    return sorted(groups, key=lambda g: (-g[2], g[0]))


def sensitivity_table(evaluation: dict[str, Any]) -> str:
    """evaluation.json's sensitivity as a table, largest swing first: per case
    the objective, its change against the plan as given, the pools' max solvent
    rates (lowest-highest) and, after --resolve, the regret and whether the
    optimal plan changes; then what was skipped and why."""
    summary = evaluation.get("sensitivity_summary") or {}
    base = evaluation["objective"]
    resolved = bool(summary.get("resolve"))
    lines = [f"sensitivity of {evaluation['objective_kind']} {_fmt(base)} ({summary.get('source', '')}; "
             f"{len(evaluation['sensitivity'])} cases, largest swing first; rate = max solvent rate r*):"]
    header = f"  {'parameter':<48} {'scale':>8} {'objective':>9} {'change':>8} {'rate':>15}"
    if resolved:
        header += f" {'regret':>8} {'optimum':>9}"
    lines.append(header)
    for parameter, cases, _ in sensitivity_groups(evaluation["sensitivity"], base):
        for case in cases:
            rates = [p["rate"] for p in case["pools"]]
            low, high = min(rates), max(rates)
            rate = f"{low:.4f}" if low == high else f"{low:.4f}-{high:.4f}"
            name = parameter if len(parameter) <= 48 else "..." + parameter[-45:]
            line = (f"  {name:<48} {scale_label(case['scale']):>8} {_fmt(case['objective']):>9} "
                    f"{case['objective'] - base:+8.4f} {rate:>15}")
            if not case["feasible"]:
                line += "  (plan infeasible)"
            if resolved:
                changes = case.get("optimum_changes")
                line += (f" {_fmt(case.get('regret')):>8} "
                         f"{'-' if changes is None else ('changes' if changes else 'same'):>9}")
            lines.append(line)
    for skipped in summary.get("skipped", []):
        lines.append(f"  skipped {skipped['parameter']} {scale_label(skipped['scale'])}: {skipped['reason']}")
    return "\n".join(lines)
