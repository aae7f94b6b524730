"""`pooling report`: one self-contained HTML page and a Markdown twin for a
solved plan (result.json), with the stress test (stress.json) and the
evaluation of a plan (evaluation.json) when given.

The page embeds its figures as base64 PNG and holds no script, style sheet,
font or link from elsewhere: it opens offline. The Markdown twin says the same
with the figures as PNG files beside it. Contents: the certificate (status,
objective, bound, gap) in plain words, the pool map, each county's rate alone
against its rate in the plan, each pool's loss distribution with its budget,
VaR and CVaR, the stress test, the price of equalisation and the rules a plan
breaks, the groups of a decomposed solve, the spec and the provenance.

Beside them `pooling report` writes page.html, the interactive county map
(`pooling.outputs.page`): a separate page, so that report.html keeps no script.

The report is built as a list of blocks (headings, paragraphs, tables,
figures) of plain text and rendered twice, so the two files cannot drift
apart; each renderer escapes all the text it writes (`pooling.outputs.escaping`),
so a name from an input file is shown as written, never as markup. The
input files are read through validating readers (`pooling.data.report_inputs`):
a file that is not what it should be is an InputError naming the field.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pooling.data.instance import Instance, load_instance
from pooling.data.plan import refuse_adjustment_fund
from pooling.data.report_inputs import (
    BaselineRecord,
    EvaluationRecord,
    GroupRecord,
    ResultRecord,
    StressRecord,
    read_evaluation_record,
    read_result_record,
    read_stress_record,
)
from pooling.data.spec import Spec
from pooling.errors import InputError, NumericsError
from pooling.outputs.escaping import escape_html, escape_markdown
from pooling.outputs.files import load_output_json, load_result_json, write_text_atomic
from pooling.outputs.summaries import shown_gap

REPORT_EXTRA = "pip install 'pooling[report]'"
HTML_NAME, MARKDOWN_NAME = "report.html", "report.md"
MAX_TABLE_ROWS = 500
"""County tables longer than this show the largest gains and losses only."""

MAP_CAPTION = ("Approximate layout, not county boundaries: the instance carries no coordinates or shapes, "
               "only which counties border which, so each county is drawn as a cell placed by a deterministic "
               "layout of that adjacency graph (neighbours sit next to each other; positions, shapes and areas "
               "are not geographic). Install the optional extra pooling[maps] to draw the counties on their "
               "real boundaries.")

OBJECTIVE_WORDS = {
    "max_mean_rate": "the enrollee-weighted mean reimbursement rate (higher is better)",
    "max_mean_effective_rate": ("the enrollee-weighted mean effective rate: each person's share of their own "
                                "inpatient care reimbursed, unclaimed care included (higher is better)"),
    "max_effective_coverage": ("effective coverage: all expected reimbursement over all expected inpatient "
                               "cost (higher is better)"),
    "max_min_rate": "the lowest pool rate (higher is better)",
    "min_rate_dispersion": "the spread between the highest and lowest pool rates (lower is better)",
    "max_min_group_rate": ("the worst-off group's effective rate, a group being one county's residents or its "
                           "migrants (higher is better)"),
    "max_equity_weighted_rate": ("Atkinson's equally distributed equivalent of the groups' effective rates, "
                                 "people-weighted, with the spec's aversion to inequality (higher is better)"),
}


def objective_words(kind: str, aversion: float | None = None) -> str:
    """The objective in words; Atkinson's names its aversion (the spec's
    `objective.aversion`, which changes what the figure means)."""
    words = OBJECTIVE_WORDS.get(kind, kind)
    if aversion is None:
        return words
    return words.replace("the spec's aversion to inequality", f"aversion to inequality {aversion:g}")


@dataclass
class ReportFigure:
    name: str          # file stem, e.g. "report-map"
    title: str
    caption: str
    png: bytes


@dataclass
class Report:
    """The blocks of a report, its figures and the warnings met while building it."""

    title: str
    blocks: list[tuple] = field(default_factory=list)
    figures: dict[str, ReportFigure] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    page: str | None = None
    """The interactive map page (page.html, `pooling.outputs.page`), written beside report.html."""

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, lines: list[str]) -> None:
        if lines:
            self.blocks.append(("list", list(lines)))

    def table(self, header: list[str], rows: list[list[Any]], note: str = "") -> None:
        self.blocks.append(("table", list(header), [[_cell(v) for v in row] for row in rows], note))

    def figure(self, name: str, title: str, caption: str, fig) -> None:
        from pooling.outputs.figures import png_bytes
        self.figures[name] = ReportFigure(name, title, caption, png_bytes(fig))
        self.blocks.append(("figure", name))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value / 1e6:,.2f}M {currency}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------- inputs

def check_report_libraries() -> None:
    """matplotlib draws the figures: an optional extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f"pooling report needs matplotlib, which is not installed: {REPORT_EXTRA}") from None


def _is_file(path: Path) -> bool:
    """Whether a file is there; a path the system cannot look up (too long) is not one."""
    try:
        return path.is_file()
    except OSError:
        return False


def find_instance(result: dict[str, Any], result_path: Path, instance_path: str | Path | None,
                  warnings: list[str]) -> Instance:
    """The instance a result was solved on: --instance if given, else the path
    in its provenance (as given, i.e. from the current folder, or from the
    result's folder and the folders above it). A file whose SHA-256 differs
    from the one recorded is used with a warning."""
    provenance = result.get("provenance") if isinstance(result.get("provenance"), dict) else {}
    recorded_path, recorded_sha = provenance.get("instance"), provenance.get("instance_sha256")
    if instance_path is not None:
        path = Path(instance_path)
    else:
        if not isinstance(recorded_path, str) or not recorded_path or recorded_path.startswith("<"):
            raise InputError(f"{result_path}: provenance.instance does not name an instance file "
                             f"({recorded_path!r}): pass --instance INSTANCE.json")
        given = Path(recorded_path)
        tries = [given] if given.is_absolute() else \
            [given] + [folder / given for folder in [result_path.parent, *result_path.resolve().parent.parents]]
        path = next((p for p in tries if _is_file(p)), None)
        if path is None:
            raise InputError(f"{result_path}: instance {recorded_path} (from provenance.instance) not found from "
                             f"here or from {result_path.parent}: pass --instance INSTANCE.json")
    instance = load_instance(path)
    if isinstance(recorded_sha, str) and recorded_sha and recorded_sha != instance.sha256:
        warnings.append(f"{result_path} was solved on a different instance file than {path} "
                        f"(sha256 {recorded_sha[:12]}... vs {instance.sha256[:12]}...)")
    return instance


STRESS_FIELDS = ("scenarios", "years", "ruin_target", "pools", "plan")
"""Fields every stress.json has: a file without them is another kind of file."""


def read_stress_file(path: Path, instance: Instance) -> StressRecord:
    """A stress.json written by `pooling simulate`, validated."""
    data = load_output_json(path, "stress")
    lacking = [key for key in STRESS_FIELDS if key not in data]
    if lacking:
        raise InputError(f"{path}: not a stress.json written by `pooling simulate` (no {lacking[0]!r})")
    return read_stress_record(data, instance, str(path))


def read_evaluation_file(path: Path, instance: Instance) -> EvaluationRecord:
    """An evaluation.json written by `pooling evaluate`, validated as the
    report reads it, then as `Evaluation.from_dict` reads it back."""
    from pooling.optimise.result import Evaluation
    data = load_output_json(path, "evaluation")
    evaluation = read_evaluation_record(data, instance, str(path))
    Evaluation.from_dict(data, source=str(path))
    return evaluation


# ---------------------------------------------------------------- words

def certificate_words(result: ResultRecord) -> str:
    """The status, objective, bound and gap of a result in a sentence or two."""
    status = result.status
    what = objective_words(result.objective_kind, result.spec.objective.aversion)
    objective, bound, gap = result.objective, result.bound, result.gap
    value = f"{what} is {_rate(objective)}"
    gap_text = "-" if gap is None else f"{100 * shown_gap(gap):.4g}%"
    if status == "optimal":
        return (f"Proven optimal: {value}, and no plan allowed by the spec can do better than the bound "
                f"{_rate(bound)} (gap {gap_text}).")
    if status == "feasible":
        return (f"A feasible plan, not proven optimal: {value}; the best possible is at most {_rate(bound)} "
                f"(gap {gap_text}).")
    if status == "time_limit":
        return ("The time limit was reached. " + (f"Best plan found: {value}; bound {_rate(bound)} "
                f"(gap {gap_text}), so it may not be optimal." if result.pools else "No plan was found."))
    if status == "partial":
        return (f"Partial: the problem splits into independent blocks, and some have no plan (see the groups "
                f"below). Over the blocks with a plan, {value}; bound {_rate(bound)} (gap {gap_text}).")
    if status == "infeasible":
        return "Infeasible: no plan meets every rule of the spec (the diagnosis below says why)."
    if status == "no_solution_found":
        return ("No plan found: the generated columns admit no plan. This is not a proof that none exists "
                "(the diagnosis below says more).")
    return f"Status {status}: no certificate."


def spec_words(spec: Spec) -> list[str]:
    """The resolved spec (result.json `spec`) as sentences."""
    pooling, solvency, rates, eq = spec.pooling, spec.solvency, spec.rates, spec.equalisation
    if pooling.scope == "county":
        who = "Each county keeps its own fund (no pooling)."
    elif pooling.scope == "prefecture":
        who = "Each prefecture pools all its counties into one fund."
    else:
        who = ("Counties may pool in any grouping the optimiser chooses"
               + (f", within the same {pooling.within}" if pooling.within != "none" else "")
               + (", and each pool must be contiguous (connected by shared borders)" if pooling.contiguous else "")
               + (f", at most {pooling.max_counties} counties per pool" if pooling.max_counties else "")
               + (f", at least {pooling.min_enrollees:,} enrollees per pool" if pooling.min_enrollees else "")
               + ".")
    if solvency.measure == "ruin":
        risk = (f"Solvency: the probability that a pool's reserves run out within "
                f"{solvency.horizon_years} year(s) is at most {1 - solvency.level:.4g} (simulated)")
    else:
        risk = (f"Solvency: each pool's {'VaR' if solvency.measure == 'var' else 'CVaR'} at level "
                f"{solvency.level:g} of one year's claims paid is covered by its budget")
    risk += (f", where the budget is its revenue plus {100 * solvency.reserve_share:g}% of its "
             f"members' reserves, less fixed and per-capita costs.")
    menu = f" in steps of {rates.step:g}" if rates.step else ""
    lines = [who, risk, f"Reimbursement rates lie between {rates.min:g} and {rates.max:g}{menu}."]
    rules = []
    if eq.max_rate_gap is not None:
        rules.append(f"rates of any two pools in the same {eq.gap_scope} differ by at most {eq.max_rate_gap:g}")
    if eq.no_county_worse_off:
        rules.append("no county gets a lower rate than it could pay alone"
                     + (f" (tolerance {eq.tolerance:g})" if eq.tolerance else ""))
    if eq.max_cross_subsidy is not None:
        rules.append(f"each county's expected net outflow is at most {eq.max_cross_subsidy:g} of its revenue")
    if eq.max_expected_surplus is not None:
        rules.append(f"each pool's expected surplus is at most {eq.max_expected_surplus:g} of its revenue")
    lines.append("Equalisation rules: " + ("; ".join(rules) if rules else "none") + ".")
    lines.append(f"Objective: {objective_words(spec.objective.kind, spec.objective.aversion)}.")
    return lines


# ---------------------------------------------------------------- build

def build_report(result_path: str | Path, *, stress_path: str | Path | None = None,
                 evaluation_path: str | Path | None = None,
                 instance_path: str | Path | None = None) -> Report:
    """Read the files, check them against each other and build the report
    (nothing is written). Bad input is an InputError naming the file and field."""
    from pooling.optimise.result import Result
    from pooling.outputs.frames import price_alone
    check_report_libraries()
    result_path = Path(result_path)
    data = load_result_json(result_path)
    refuse_adjustment_fund(data, str(result_path), "`pooling report`")
    warnings: list[str] = []
    instance = find_instance(data, result_path, instance_path, warnings)
    result = read_result_record(data, instance, str(result_path))  # what the report shows, field by field
    Result.from_dict(data, source=str(result_path))  # and the whole file is a result.json
    stress = evaluation = None
    if stress_path is not None:
        stress = read_stress_file(Path(stress_path), instance)
        _same_instance(stress.instance_sha256, instance, Path(stress_path), warnings)
    if evaluation_path is not None:
        evaluation = read_evaluation_file(Path(evaluation_path), instance)
        _same_instance(evaluation.instance_sha256, instance, Path(evaluation_path), warnings)

    report = Report(title=f"Pooling report: {instance.name} ({instance.year})", warnings=warnings)
    currency = instance.currency
    _summary(report, result, instance, result_path)
    from pooling.outputs.summaries import schedule_lines
    schedules = schedule_lines(data.get("pools", []))
    if schedules:
        report.paragraph("Benefit schedule of each pool, chosen from the spec's [benefits] menu: "
                         + "; ".join(line.strip().replace(" benefits:", ":") for line in schedules) + ".")
    alone = price_alone(instance, result.spec)
    shares = network_shares(data)
    _plan_section(report, result, instance, currency)
    _rates_section(report, result, instance, alone, shares)
    from pooling.outputs.page import PAGE_NAME, build_page
    report.page = build_page(instance, result.pools, alone, shares, f"{instance.name} ({instance.year}): pools, "
                             f"rates and migrants' care, county by county", MAP_CAPTION)
    report.blocks.insert(report.blocks.index(("h2", "The plan")) + 1,
                         ("p", f"The interactive map, {PAGE_NAME} beside this page (one file, nothing fetched), shows "
                               f"every county with its pool, its rate alone and in the plan and its migrants' "
                               f"in-network share, and finds a county by name or code."))
    _loss_section(report, result, instance, currency)
    if data.get("welfare") is not None:
        _welfare_section(report, _welfare_records(data["welfare"], result_path), data.get("spec"))
    if stress is not None:
        _stress_section(report, stress, result, Path(stress_path), currency)
    if evaluation is not None:
        _evaluation_section(report, evaluation, result, instance, Path(evaluation_path), currency)
    if result.groups:
        _groups_section(report, result.groups)
    if result.baselines:
        _baselines_section(report, result.baselines)
    _spec_section(report, result)
    for k, warning in enumerate(warnings):
        report.blocks.insert(k, ("p", f"Warning: {warning}."))
    return report


def _same_instance(recorded: str | None, instance: Instance, path: Path, warnings: list[str]) -> None:
    if recorded and recorded != instance.sha256:
        warnings.append(f"{path} was computed on a different instance file than the result's "
                        f"(sha256 {recorded[:12]}... vs {instance.sha256[:12]}...)")


def _summary(report: Report, result: ResultRecord, instance: Instance, result_path: Path) -> None:
    pools = result.pools
    covered = sum(len(p.counties) for p in pools)
    report.paragraph(f"{instance.name}, policy year {instance.year}: {len(instance.counties)} counties in "
                     f"{len(instance.prefectures)} prefecture(s), {instance.total_enrollees:,} enrollees. "
                     f"Plan from {result_path.name}: status {result.status}, {len(pools)} pool(s) covering "
                     f"{covered} of {len(instance.counties)} counties.")
    report.paragraph(certificate_words(result))
    if result.mean_rate is not None and result.objective_kind != "max_mean_rate":
        report.paragraph(f"Enrollee-weighted mean rate of the plan: {_rate(result.mean_rate)}.")
    from pooling.outputs.summaries import group_rates_line, portability_line
    receive = portability_line({"portability": result.portability})
    if receive:
        report.paragraph(receive[0].upper() + receive[1:] + ".")
    groups = group_rates_line({"group_rates": result.group_rates})
    if groups:
        report.paragraph(groups[0].upper() + groups[1:] + ".")
    if not pools:
        report.paragraph(f"This result has no plan (status {result.status}): there is no pool to map, price "
                         f"or stress-test. The counties are shown alone below.")
    report.items([f"Diagnosis: {line}" for line in result.diagnosis])


def _plan_section(report: Report, result: ResultRecord, instance: Instance, currency: str) -> None:
    from pooling.outputs.figures import pool_map
    pools = result.pools
    report.heading("The plan")
    if not _boundary_map(report, instance, pools):
        report.figure("report-map", "Pool map", MAP_CAPTION, pool_map(instance, pools))
    if not pools:
        return
    rows = []
    for p in pools:
        names = ", ".join(instance.county(c).name for c in p.counties)
        risk = p.cvar if result.spec.solvency.measure != "var" else p.var
        rows.append([p.id, names, p.enrollees, p.rate, p.max_rate, _money(p.budget, currency),
                     _money(p.rate * p.expected_cost, currency), _money(p.rate * p.var, currency),
                     _money(p.rate * p.cvar, currency), _money(p.budget - p.rate * risk, currency)])
    report.table(["pool", "counties", "enrollees", "rate", "max rate", "budget", "expected claims paid",
                  "VaR of claims paid", "CVaR of claims paid", "margin"], rows,
                 note="Claims paid = rate x eligible cost Y. Budget = revenue + committed reserves - costs; "
                      "margin = budget - rate x the solvency measure (VaR or CVaR), at least 0 in a solvent pool.")


def _boundary_map(report: Report, instance: Instance, pools) -> bool:
    """The pool map on county boundaries when the extra pooling[maps] is installed and some county
    id matches a boundary, with the ids that do not listed; False (nothing added) otherwise."""
    from pooling.outputs import maps
    if not maps.maps_available():
        return False
    match = maps.match_boundaries(instance)
    if not match.shapes:
        report.paragraph(f"No county id matched a boundary in {maps.BOUNDARY_SOURCE}: the map below is the "
                         f"adjacency layout.")
        return False
    report.figure("report-map", "Pool map", maps.map_caption(match, instance, len(pools)),
                  maps.pool_boundary_map(instance, pools, match))
    report.items(maps.mismatch_lines(match))
    return True


def network_shares(data: dict[str, Any]) -> dict[str, float | None]:
    """Each county's share of its migrants' expected admissions that are in its pool's network, from
    result.json's `county_care` (None: the county has no migrants); counties without a plan are absent."""
    from pooling.optimise.result import care_from_rows
    shares: dict[str, float | None] = {}
    for pool in data.get("pools") or []:
        for care in care_from_rows(pool.get("county_care") or [], f"pool {pool.get('id')}"):
            shares[care.county] = (None if care.migrant_admissions <= 0 else
                                   min(1.0, care.migrant_in_network_admissions / care.migrant_admissions))
    return shares


def _rate_change_map(report: Report, instance: Instance, plan_rates: dict[str, float],
                     alone: dict[str, float], shares: dict[str, float | None]) -> None:
    """The maps of each county's rate change against alone and of its migrants' in-network share
    (extra pooling[maps] only)."""
    from pooling.outputs import maps
    if not maps.maps_available():
        return
    match = maps.match_boundaries(instance)
    if match.shapes:
        report.figure("report-rate-map", "Rate change map",
                      f"Each county's rate in the plan minus its rate alone, on county boundaries from "
                      f"{maps.BOUNDARY_SOURCE} (green: gains, red: loses; grey, hatched: no plan).",
                      maps.rate_change_map(instance, plan_rates, alone, match))
        if any(v is not None for v in shares.values()):
            report.figure("report-network-map", "Migrants' in-network share",
                          "Each county's share of its migrants' expected admissions that fall in its pool's "
                          "network (care where they live is in network when the pool approves the place or a "
                          "contract serves it), on county boundaries (grey, hatched: no plan or no migrants).",
                          maps.network_share_map(instance, shares, match))


def _rates_section(report: Report, result: ResultRecord, instance: Instance, alone: dict[str, float],
                   shares: dict[str, float | None]) -> None:
    from pooling.outputs.figures import rate_change
    plan_rates = {c: p.rate for p in result.pools for c in p.counties}
    pool_ids = {c: p.id for p in result.pools for c in p.counties}
    report.heading("Who gains, who loses")
    source = ("Status quo: each county's maximum solvent rate on its own, priced here under the result's spec "
              "(result.json" + (" has baselines but they give no per-county rates" if result.baselines
                                else " holds no status-quo rates") + ").")
    if plan_rates:
        changes = [plan_rates[c] - alone[c] for c in plan_rates]
        gain = sum(1 for d in changes if d > 1e-9)
        lose = sum(1 for d in changes if d < -1e-9)
        enrollees_gain = sum(instance.county(c).enrollees for c in plan_rates if plan_rates[c] - alone[c] > 1e-9)
        report.paragraph(f"{gain} of {len(plan_rates)} counties gain a higher rate than alone "
                         f"({enrollees_gain:,} enrollees), {lose} get a lower one, "
                         f"{len(plan_rates) - gain - lose} keep the same. {source}")
        report.figure("report-rates", "Rate per county", "Each county's rate alone (status quo) and in the plan. "
                      + source, rate_change(instance, plan_rates, alone, pool_ids))
        _rate_change_map(report, instance, plan_rates, alone, shares)
    else:
        report.paragraph(source)
    rows = []
    for county in instance.counties:
        rate = plan_rates.get(county.id)
        change = None if rate is None else rate - alone[county.id]
        rows.append([county.id, county.name, county.prefecture, county.enrollees, pool_ids.get(county.id, "no plan"),
                     alone[county.id], rate, "-" if change is None else f"{change:+.4f}"])
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        rows.sort(key=lambda r: -abs(float(r[-1])) if r[-1] != "-" else 0.0)
        rows, note = rows[:MAX_TABLE_ROWS], f"The {MAX_TABLE_ROWS} largest changes of {len(instance.counties)}."
    report.table(["county", "name", "prefecture", "enrollees", "pool", "rate alone", "rate in plan", "change"],
                 rows, note=note)


def _loss_section(report: Report, result: ResultRecord, instance: Instance, currency: str) -> None:
    from pooling.economics.behaviour import multipliers
    from pooling.economics.pools import pool_model
    from pooling.outputs.figures import MAX_LOSS_PANELS, MEASURE_NAMES, loss_distributions
    from pooling.risk.claims import lattice_law
    pools = result.pools
    if not pools:
        return
    report.heading("Loss distributions")
    chosen = sorted(pools, key=lambda p: (-p.enrollees, p.id))[:MAX_LOSS_PANELS]
    chosen.sort(key=lambda p: p.id)
    panels, failed = [], []
    for p in chosen:
        try:
            # admissions at the pool's rate (induced utilisation; as observed without it)
            law = lattice_law(pool_model(instance, frozenset(p.counties),
                                         multipliers=multipliers(instance, p.counties, p.rate)))
        except NumericsError as exc:
            failed.append(f"{p.id}: {exc}")
            continue
        panels.append((p, law))
    measure, level = result.spec.solvency.measure, result.spec.solvency.level
    note = "" if len(chosen) == len(pools) else \
        f" The {len(chosen)} largest pools by enrollees of {len(pools)} are shown."
    if panels:
        report.figure("report-losses", "Loss distributions",
                      f"Each pool's claims paid in a year (rate x Y, the exact aggregate law of the eligible cost Y "
                      f"computed by FFT, as priced) with its budget, expected claims, and VaR and CVaR at level "
                      f"{level:g}. A pool is solvent when rate x {MEASURE_NAMES.get(measure, measure)} does not "
                      f"exceed its budget; at the maximum solvent rate the two lines meet.{note}",
                      loss_distributions(panels, currency, measure, level))
    report.items([f"Loss distribution not drawn for {line}" for line in failed])


def _stress_section(report: Report, stress: StressRecord, result: ResultRecord, path: Path,
                    currency: str) -> None:
    from pooling.outputs.figures import stress_figure
    ids = {frozenset(p.counties): p.id for p in result.pools}
    pool_ids = [ids.get(frozenset(p.counties), f"S{i + 1}") for i, p in enumerate(stress.pools)]
    report.heading("Stress test")
    names = "+".join(stress.stress) or "none"
    low, high = stress.any_ruin_interval
    share = "-" if stress.reserve_share is None else f"{100 * stress.reserve_share:g}%"
    report.paragraph(
        f"From {path.name}: {stress.scenarios:,} simulated paths of {stress.years} year(s), stress "
        f"scenario(s) {names}, seed {stress.seed}. Each pool starts from {share} of its members' reserves. The "
        f"plan {'passed' if stress.passed else 'FAILED'}: the probability that some pool is ruined is "
        f"{stress.any_ruin_probability:.4f} (95% interval {low:.4f} to {high:.4f}) against a target of "
        f"{stress.ruin_target:.4g} per pool.")
    if any(i not in ids.values() for i in pool_ids):
        report.paragraph("Some stress-tested pools are not pools of this result (ids S1, S2, ...): the stress "
                         "test was run on another plan.")
    report.figure("report-stress", "Stress test", "Ruin by year and year-1 deficit per pool, with 95% Wilson "
                  "intervals (by year: computed here from the probability and the number of paths), against the "
                  "target 1 - level.", stress_figure(stress, pool_ids))
    rows = []
    for pid, p in zip(pool_ids, stress.pools):
        low, high = p.ruin_interval
        rows.append([pid, p.rate, p.deficit_probability, p.ruin_probability, f"{low:.4f} - {high:.4f}",
                     ", ".join(f"{v:.4f}" for v in p.ruin_by_year), _money(p.mean_surplus, currency), p.passed])
    report.table(["pool", "rate", "P(deficit, year 1)", "P(ruin)", "95% interval", "P(ruin) by year",
                  "mean surplus, year 1", "passed"], rows)
    if stress.truth is not None:
        report.paragraph(
            f"The years were drawn from the scenario {stress.truth}, not from the instance the rates were priced "
            f"on (simulate --truth). Promised against true: the probability that year-1 claims paid exceed the "
            f"committed budget (revenue, the committed reserves, less fixed costs), both exact, and its "
            f"simulated estimate (the year-1 ruin probability).")
        report.table(["pool", "rate", "promised", "true (exact)", "simulated, year 1"],
                     [[pid, p.rate, p.exhaustion_promised, p.exhaustion_truth, p.ruin_by_year[0]]
                      for pid, p in zip(pool_ids, stress.pools)])


WELFARE_NUMBERS = ("people", "admissions", "billed_cost", "out_of_pocket", "catastrophic_incidence",
                   "travel_cost_per_enrollee")
"""Fields of a welfare record the report's table sums (economics.welfare.plan_welfare)."""


def _welfare_records(records: Any, path: Path) -> list[dict[str, Any]]:
    """result.json's `welfare` records, every field the report uses checked."""
    from pooling.economics.welfare import GROUPS
    for i, w in enumerate(records):
        where = f"{path}: welfare[{i}]"
        if not isinstance(w, dict) or w.get("group") not in GROUPS:
            raise InputError(f"{where}: field 'group' must be one of {', '.join(GROUPS)}")
        for key in WELFARE_NUMBERS:
            value = w.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise InputError(f"{where}: field {key!r} must be a finite number >= 0, got {value!r}")
    return records


def _welfare_section(report: Report, records: list[dict[str, Any]], spec: Any) -> None:
    from pooling.economics.welfare import plan_welfare
    terms = spec.get("welfare", {}) if isinstance(spec, dict) else {}
    report.heading("What enrollees pay")
    rows = [[w["group"].replace("_", " "), round(w["people"]), w["out_of_pocket_per_enrollee"],
             w["out_of_pocket_per_admission"], w["share_of_bill_paid"], w["catastrophic_incidence"],
             w["travel_cost_per_enrollee"]] for w in plan_welfare(records)]
    report.table(["group", "people", "out-of-pocket per enrollee", "out-of-pocket per admission",
                  "share of the bill paid", "catastrophic incidence", "travel cost per enrollee (A)"], rows,
                 note=f"Expected yearly figures under the plan, summed over its counties (per county: "
                      f"result.json's welfare, or --format). Catastrophic: one enrollee's yearly inpatient "
                      f"out-of-pocket cost above {terms.get('catastrophic_share', '-')} x income per capita "
                      f"{terms.get('income_per_capita', '-')} (docs/model.md, Welfare). Travel cost: an assumed "
                      f"{terms.get('travel_cost', '-')} per out-of-network admission.")


def _evaluation_section(report: Report, evaluation: EvaluationRecord, result: ResultRecord, instance: Instance,
                        path: Path, currency: str) -> None:
    from pooling.outputs.figures import subsidy_figure
    report.heading("Evaluation of a plan")
    same = {frozenset(p.counties) for p in evaluation.pools} == {frozenset(p.counties) for p in result.pools}
    report.paragraph(
        f"From {path.name}: {'the same partition as the result' if same else 'a different partition'} "
        f"({len(evaluation.pools)} pools) is {evaluation.status} under its spec; objective "
        f"{_rate(evaluation.objective)}, mean rate {_rate(evaluation.mean_rate)}; rates "
        + ("as `solve` would give them." if evaluation.rates_from == "solve"
           else "shown at each pool's maximum solvent rate (the plan breaks a rule)."))
    if evaluation.violations:
        report.paragraph(f"{len(evaluation.violations)} rule(s) broken:")
        report.table(["rule", "pools", "rates", "limit", "message"],
                     [[v.rule, ", ".join(v.pools), ", ".join(f"{r:.4f}" for r in v.rates), v.limit, v.message]
                      for v in evaluation.violations])
    else:
        report.paragraph("No rule is broken.")
    subsidy = evaluation.subsidy
    if subsidy is not None:
        report.paragraph(f"Price of equalisation: a total top-up of {_money(subsidy.total_top_up, currency)} "
                         f"per year keeps every pool solvent with no county worse off; county compensation "
                         f"{_money(subsidy.total_compensation, currency)} per year. {subsidy.definition}")
        report.figure("report-subsidy", "Price of equalisation",
                      "Per pool: the rate without subsidy and the rate the equalisation requires, and the yearly "
                      "top-up that pays for the difference.", subsidy_figure(subsidy, currency))
        rows = [[p.id, ", ".join(instance.county(c).name for c in p.counties), p.rate_without_subsidy,
                 p.rate_required, _money(p.top_up, currency), _money(p.compensation, currency)]
                for p in subsidy.pools]
        report.table(["pool", "counties", "rate without subsidy", "rate required", "top-up", "compensation"], rows)
    else:
        report.paragraph("No price of equalisation in this file (run `pooling evaluate` with --subsidy).")
    if evaluation.sensitivity is not None:
        _sensitivity_part(report, evaluation)


def _sensitivity_part(report: Report, evaluation: EvaluationRecord) -> None:
    from pooling.outputs.figures import MAX_TORNADO_ROWS, tornado
    from pooling.outputs.summaries import scale_label, sensitivity_groups
    found = evaluation.sensitivity
    kind = found.objective_kind
    report.paragraph(
        f"Sensitivity ({found.source}): the plan evaluated again with each case's parameters, everything else as "
        f"given; the objective is what `pooling evaluate` gives the plan on that instance. "
        f"{len(found.cases)} cases, {len(found.skipped)} skipped.")
    report.figure("report-sensitivity", "Sensitivity (tornado)",
                  f"The plan's {kind} in each case against its value as given (the vertical line), largest swing "
                  f"first (at most {MAX_TORNADO_ROWS} parameters); hatched: the plan breaks a rule in that case.",
                  tornado(found, evaluation.objective, kind))
    rows = []
    for parameter, cases, _ in sensitivity_groups(list(found.cases), evaluation.objective):
        for case in cases:
            row = [parameter, scale_label(case.scale), case.objective, case.objective - evaluation.objective,
                   "yes" if case.feasible else "no"]
            if found.resolved:
                row += [case.regret, "-" if case.optimum_changes is None else
                        ("changes" if case.optimum_changes else "same")]
            rows.append(row)
    header = ["parameter", "scale", "objective", "change", "plan feasible"]
    report.table(header + (["regret", "optimal plan"] if found.resolved else []), rows)
    if found.skipped:
        report.items([f"Skipped {parameter} {scale_label(scale)}: {reason}"
                      for parameter, scale, reason in found.skipped])


def _groups_section(report: Report, groups: tuple[GroupRecord, ...]) -> None:
    report.heading("Independent blocks")
    report.paragraph("The problem was split into independent blocks, solved separately; a block without a plan "
                     "does not stop the others.")
    rows = [[g.label, g.counties, g.enrollees, g.status, g.objective, g.bound, shown_gap(g.gap),
             ", ".join(g.pools) or "-",
             "; ".join(g.diagnosis) or "-"] for g in groups]
    report.table(["block", "counties", "enrollees", "status", "objective", "bound", "gap", "pools", "diagnosis"],
                 rows)


def _baselines_section(report: Report, baselines: tuple[BaselineRecord, ...]) -> None:
    report.heading("Baselines")
    report.table(["plan", "status", "objective", "mean rate", "min rate", "max rate", "pools"],
                 [[b.name, b.status, b.objective, b.mean_rate, b.min_rate, b.max_rate, b.pools] for b in baselines],
                 note="Under the same spec (solve --compare).")


def _spec_section(report: Report, result: ResultRecord) -> None:
    report.heading("Spec, certificate and provenance")
    report.items(spec_words(result.spec))
    generation = result.generation
    lines = [certificate_words(result),
             f"Solver termination: {result.termination or '-'}; {result.columns} usable columns of "
             f"{result.candidate_pools} candidate pools; {result.wall_seconds:.2f} s."]
    if generation.method == "column_generation":
        lines.append(f"Columns were generated ({generation.rounds} rounds); the bound is "
                     f"{generation.bound_method}; "
                     + ("proven optimal." if generation.proven_optimal else "optimality not proven."))
    numerics = result.numerics
    if numerics is not None:
        lines.append(f"Pricing self-checks over {numerics.pools_priced} pools: mean error at most "
                     f"{numerics.max_mean_rel_error:.2g}, variance error at most "
                     f"{numerics.max_variance_rel_error:.2g}, VaR/CVaR resolution error at most "
                     f"{numerics.max_resolution_rel_diff:.2g} (relative).")
    report.items(lines)
    report.table(["provenance", "value"], [list(row) for row in result.provenance])


# ---------------------------------------------------------------- render

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1f1f1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
       border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #d5d5d5; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; margin-top: 0.3em; } p.note { font-size: 0.85em; color: #555; }
"""


NUM_TD = '<td class="num">'


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("M", "").split(" ")[0].lstrip("+-")
    return stripped.replace(".", "", 1).isdigit()


def render_html(report: Report) -> str:
    """The page: inline CSS, figures as data: URIs, no script, nothing fetched."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape_html(report.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{escape_html(report.title)}</h1>"]
    for block in report.blocks:
        kind = block[0]
        if kind == "h2":
            out.append(f"<h2>{escape_html(block[1])}</h2>")
        elif kind == "p":
            out.append(f"<p>{escape_html(block[1])}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{escape_html(line)}</li>" for line in block[1]) + "</ul>")
        elif kind == "table":
            _, header, rows, note = block
            head = "".join(f"<th>{escape_html(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(
                (NUM_TD if _numeric(v) else "<td>") + f"{escape_html(v)}</td>" for v in row) + "</tr>"
                for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            if note:
                out.append(f'<p class="note">{escape_html(note)}</p>')
        elif kind == "figure":
            fig = report.figures[block[1]]
            data = base64.b64encode(fig.png).decode("ascii")
            out.append(f'<figure id="{fig.name}"><img src="data:image/png;base64,{data}" '
                       f'alt="{escape_html(fig.title)}"><figcaption>{escape_html(fig.caption)}</figcaption>'
                       f"</figure>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def render_markdown(report: Report) -> str:
    """The Markdown twin: the same blocks, figures as PNG files beside it."""
    out = [f"# {escape_markdown(report.title)}", ""]
    for block in report.blocks:
        kind = block[0]
        if kind == "h2":
            out += [f"## {escape_markdown(block[1])}", ""]
        elif kind == "p":
            out += [escape_markdown(block[1], block_start=True), ""]
        elif kind == "list":
            out += [f"- {escape_markdown(line, block_start=True)}" for line in block[1]] + [""]
        elif kind == "table":
            _, header, rows, note = block
            out.append("| " + " | ".join(escape_markdown(h) for h in header) + " |")
            out.append("|" + "|".join("---:" if rows and all(_numeric(r[i]) for r in rows) else "---"
                                      for i in range(len(header))) + "|")
            out += ["| " + " | ".join(escape_markdown(v) for v in row) + " |" for row in rows]
            out.append("")
            if note:
                out += [f"*{escape_markdown(note)}*", ""]
        elif kind == "figure":
            fig = report.figures[block[1]]
            out += [f"![{escape_markdown(fig.title)}]({fig.name}.png)", "", f"*{escape_markdown(fig.caption)}*", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def write_report(report: Report, folder: str | Path) -> list[Path]:
    """Write report.html, report.md and the figures' PNG files into `folder`
    (each atomically); return the paths written, the page first."""
    from pooling.outputs.files import write_bytes_atomic
    folder = Path(folder)
    written = []
    for fig in report.figures.values():
        path = folder / f"{fig.name}.png"
        write_bytes_atomic(path, fig.png)
        written.append(path)
    markdown = folder / MARKDOWN_NAME
    write_text_atomic(markdown, render_markdown(report))
    if report.page is not None:
        from pooling.outputs.page import PAGE_NAME
        write_text_atomic(folder / PAGE_NAME, report.page)
        written.append(folder / PAGE_NAME)
    page = folder / HTML_NAME
    write_text_atomic(page, render_html(report))
    return [page, markdown, *written]
