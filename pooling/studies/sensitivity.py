"""One-at-a-time sensitivity of a plan to the parameters it was priced on
(issue 23: `pooling evaluate ... --sensitivity [--resolve]`).

Cases. With the spec's ``[uncertainty]`` table, each of its scenarios is one
case (``scale`` null: the scenario's own changes). Otherwise each assumed
parameter of DEFAULT_PARAMETERS is scaled by each of SCALES (x0.5, x1.5) on its
own, everything else as given:

- the admission-shock cvs: ``parameters.frequency_shock_cv``,
  ``parameters.regional_shocks.prefecture.cv``, ``...county.cv``;
- the severity cvs: ``counties.*.severity.cv``, ``places.*.severity.cv``,
  ``parameters.outside_severity.cv``;
- the out-of-network terms: each ``parameters.out_of_network_tiers.TIER.claim_share``
  and ``.factor`` the file gives, and the scalar ``out_of_network_claim_share`` /
  ``out_of_network_factor`` when a tier is omitted (they stand in for it);
- the residents' care split, CARE_SPLIT: in every county, the share of its
  residents' admissions bought away from home (1 minus the weight of its own id
  in ``resident_care``) times s, each away destination's weight times s and the
  home weight 1 - s x away, so the split still sums to 1 and keeps its shape
  away from home;
- ``counties.*.migrant_share``.

A parameter absent from the instance or 0 everywhere (scaling leaves the
instance as it is), out-of-network terms the spec's ``network.settlement``
replaces, and a scaled instance the reader refuses (x1.5 of a cv at its limit, a
share pushed above 1) are skipped, each with its reason: never a crash, never a
silent omission. The spec's own scenarios are never skipped: one the instance
cannot take is an input error naming it, as when solving.

Values. A case's ``objective`` (and ``feasible``, ``mean_rate``) is exactly what
`pooling evaluate` reports for the plan on the case's instance: each pool gets
the rate `solve` would give it under the spec's rules (rates.min/max/step,
equalisation), so at most its maximum solvent rate r*_P there; a pool left
without an admissible rate makes the plan infeasible in that case and every
pool is then at max(r*_P, 0). Each pool's ``rate`` is its r*_P in the case
(``plan_rate`` the rate the plan gives it). The spec's ``[uncertainty]`` is not
applied inside a case (each case is one instance, priced as given).

``resolve`` also solves each case's instance, and the base instance, and
reports the case's optimum (status, objective, pools), whether it differs from
the base optimum (``optimum_changes``), whether the plan is it
(``plan_is_optimal``), and the plan's ``regret``: how much better the case's
optimum does than the plan in that case (optimum minus plan for maximised
objectives, plan minus optimum for min_rate_dispersion; null unless both are
feasible).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pooling.data.geography import TIERS
from pooling.data.inputs import as_problem
from pooling.data.instance import Instance, instance_from_dict
from pooling.data.instance_dict import instance_to_dict
from pooling.data.options import SolveOptions
from pooling.data.plan import read_plan, validate_contracts, validate_plan
from pooling.data.scenarios import ParameterChange, apply_changes, resolve
from pooling.data.spec import Spec
from pooling.errors import InputError, NumericsError
from pooling.execution.tasks import ExecutionPlan, ProgressBar
from pooling.optimise.result import Evaluation
from pooling.optimise.solve import evaluate, solve

SCALES = (0.5, 1.5)
"""The one-at-a-time factors applied to each default parameter."""

SHOCK_PATHS = ("parameters.frequency_shock_cv", "parameters.regional_shocks.prefecture.cv",
               "parameters.regional_shocks.county.cv")
SEVERITY_PATHS = ("counties.*.severity.cv", "places.*.severity.cv", "parameters.outside_severity.cv")
MIGRANT_PATH = "counties.*.migrant_share"
CARE_SPLIT = "counties.*.resident_care:away_share"
"""Not a field: names the residents' care split scaled as the module docstring says."""

REGRET_TOLERANCE = 1e-7
"""A case's proven optimum may fall below the plan's own objective in that case
by this much (rate units) before it is an error: HiGHS's primal feasibility
tolerance (1e-7) lets either MILP's rates sit that far past their bounds.
Beyond it the re-solve missed a plan it should have found (NumericsError)."""

MINIMISED = frozenset({"min_rate_dispersion"})
"""Objective kinds where lower is better (regret = plan - optimum)."""

OBJECTIVE_DEFINITION = (
    "objective, feasible and mean_rate: what `pooling evaluate` reports for the plan on the case's instance "
    "(each pool at the rate solve would give it under the spec's rules, at most its max solvent rate there; "
    "pools at max(r*, 0) when the plan is infeasible there); pools[].rate: the pool's max solvent rate r* in "
    "the case; pools[].plan_rate: the rate the plan gives it")


@dataclass(frozen=True)
class Case:
    """One sensitivity case: `parameter` (a path, CARE_SPLIT, or the name of a
    spec scenario) scaled by `scale` (None: a spec scenario's own changes), and
    the instance file data it evaluates."""

    parameter: str
    scale: float | None
    data: dict[str, Any]
    instance: Instance

    @property
    def label(self) -> str:
        return self.parameter if self.scale is None else f"{self.parameter} x{self.scale:g}"


@dataclass(frozen=True)
class Skipped:
    parameter: str
    scale: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "scale": self.scale, "reason": self.reason}


@dataclass(frozen=True)
class Sensitivity:
    """Outcome of `sensitivity`: `cases` (evaluation.json's `sensitivity`) and
    `summary` (its `sensitivity_summary`: how the cases were chosen, what was
    skipped and why, the base optimum with `resolve`)."""

    cases: tuple[dict[str, Any], ...]
    summary: dict[str, Any]

    def attach(self, evaluation: Evaluation) -> Evaluation:
        """The evaluation with this sensitivity in it (written to evaluation.json)."""
        return dataclasses.replace(evaluation, sensitivity=[dict(c) for c in self.cases],
                                   sensitivity_summary=dict(self.summary))


def _scaled_case(data: dict[str, Any], path: str, scale: float, where: str) -> dict[str, Any]:
    return apply_changes(data, (ParameterChange(path, "scale", scale),), where)


def _present(data: dict[str, Any], path: str) -> str | None:
    """Why scaling `path` would change nothing (None: it would change something)."""
    found = resolve(data, path)
    if not found:
        return "absent from the instance"
    values = [container[key] for container, key, _ in found]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0 for v in values):
        return "0 in the instance: scaling leaves it 0"
    return None


def _care_split(data: dict[str, Any], scale: float) -> dict[str, Any]:
    """CARE_SPLIT scaled by `scale`; an InputError when a county's away share
    times `scale` exceeds 1."""
    out = copy.deepcopy(data)
    for county in out["counties"]:
        care = county.get("resident_care")
        if not care:
            continue
        cid = county["id"]
        away = math.fsum(w for key, w in care.items() if key != cid)
        if away == 0.0:
            continue
        if away * scale > 1.0:
            raise InputError(f'county "{cid}": care away from home {away:g} x{scale:g} = {away * scale:g} '
                             f"exceeds 1")
        county["resident_care"] = {key: (w * scale if key != cid else 0.0) for key, w in care.items()}
        county["resident_care"][cid] = max(0.0, 1.0 - math.fsum(w * scale for key, w in care.items()
                                                                if key != cid))
    return out


def _tier_paths(data: dict[str, Any]) -> list[str]:
    tiers = data["parameters"].get("out_of_network_tiers") or {}
    paths = [f"parameters.out_of_network_tiers.{tier}.{field}" for tier in TIERS if tier in tiers
             for field in ("claim_share", "factor")]
    if len(tiers) < len(TIERS):   # the scalars stand in for an omitted tier
        paths += ["parameters.out_of_network_claim_share", "parameters.out_of_network_factor"]
    return paths


def default_cases(instance: Instance, spec: Spec) -> tuple[list[Case], list[Skipped]]:
    """The default one-at-a-time cases (module docstring) and those skipped,
    each with its reason. Every case's data is read back by the instance reader
    here, so a case that survives is a valid instance."""
    data = instance_to_dict(instance)
    cases: list[Case] = []
    skipped: list[Skipped] = []
    makers: list[tuple[str, Callable[[float], dict[str, Any]], str | None]] = []
    for path in (*SHOCK_PATHS, *SEVERITY_PATHS):
        makers.append((path, lambda s, p=path: _scaled_case(data, p, s, f"{p} x{s:g}"), _present(data, path)))
    if spec.network.settlement != "instance":
        skipped.extend(Skipped("parameters.out_of_network_tiers", s,
                               f'the spec\'s network.settlement "{spec.network.settlement}" replaces the '
                               f"instance's out-of-network terms") for s in SCALES)
    else:
        for path in _tier_paths(data):
            makers.append((path, lambda s, p=path: _scaled_case(data, p, s, f"{p} x{s:g}"), _present(data, path)))
    away = [c for c in instance.counties if any(key != c.id and w > 0 for key, w in c.resident_care)]
    makers.append((CARE_SPLIT, lambda s: _care_split(data, s),
                   None if away else "no county buys residents' care away from home"))
    makers.append((MIGRANT_PATH, lambda s: _scaled_case(data, MIGRANT_PATH, s, f"{MIGRANT_PATH} x{s:g}"),
                   _present(data, MIGRANT_PATH)))
    for parameter, make, why_not in makers:
        for scale in SCALES:
            if why_not is not None:
                skipped.append(Skipped(parameter, scale, why_not))
                continue
            source = f"{instance.source} with {parameter} x{scale:g}"
            try:
                changed = make(scale)
                read = instance_from_dict(changed, source=source)
            except InputError as exc:
                skipped.append(Skipped(parameter, scale, f"out of range: {str(exc).removeprefix(source + ': ')}"))
                continue
            cases.append(Case(parameter, scale, changed, read))
    return cases, skipped


def spec_cases(instance: Instance, spec: Spec) -> list[Case]:
    """One case per scenario of the spec's [uncertainty] (an input error names
    a scenario the instance cannot take)."""
    data = instance_to_dict(instance)
    cases = []
    for scenario in spec.uncertainty.scenarios:
        where = f'{spec.source}: [uncertainty] scenario "{scenario.name}"'
        changed = apply_changes(data, scenario.changes, where)
        read = instance_from_dict(changed, source=f'{instance.source} under scenario "{scenario.name}"')
        cases.append(Case(scenario.name, None, changed, read))
    return cases


def _pools(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [{"counties": list(p.pricing.counties), "rate": p.pricing.max_rate, "plan_rate": p.rate}
            for p in evaluation.pools]


def _partition(pools) -> frozenset[frozenset[str]]:
    return frozenset(frozenset(p) for p in pools)


def _optimum(instance: Instance, spec: Spec, options: SolveOptions) -> dict[str, Any]:
    result = solve(instance, spec, options=options)
    return {"status": result.status, "objective": result.objective, "gap": result.gap,
            "pools": [list(p.pricing.counties) for p in result.pools]}


def regret(kind: str, plan_objective: float, optimum_objective: float) -> float:
    """How much better the optimum does than the plan (>= 0 up to solver tolerance)."""
    return plan_objective - optimum_objective if kind in MINIMISED else optimum_objective - plan_objective


def sensitivity(instance: Instance | str, spec: Spec | str, plan, *, contracts=None, resolve: bool = False,
                options: SolveOptions | None = None, progress: bool | None = False) -> Sensitivity:
    """The plan (a list of lists of county ids, or a plan file) evaluated in
    every sensitivity case (module docstring); with `resolve`, each case and
    the base solved too. Every case is built and validated before any is
    evaluated. `progress`: a bar counting cases on stderr (None: when stderr
    is a terminal)."""
    instance, spec = as_problem(instance, spec, "sensitivity")
    if not isinstance(resolve, bool):
        raise InputError(f"sensitivity: resolve must be True or False, got {resolve!r}")
    options = options if options is not None else SolveOptions()
    if isinstance(plan, str):
        plan, taken = read_plan(plan, instance)
        contracts = [{"pool": sorted(pool), "option": option} for pool, option in taken] + list(contracts or [])
    else:
        plan = validate_plan(plan, instance)
    if contracts:
        validate_contracts(contracts, plan, instance, "sensitivity: contracts")
    pools = [sorted(pool) for pool in plan]
    if spec.uncertainty is not None:
        cases, skipped, source = spec_cases(instance, spec), [], "spec [uncertainty] scenarios"
    else:
        cases, skipped = default_cases(instance, spec)
        source = "default parameters, one at a time"
    plain = dataclasses.replace(spec, uncertainty=None, welfare=None)   # cases need no welfare records
    kind = spec.objective.kind
    base_optimum = None
    work = len(cases) * (2 if resolve else 1) + (1 if resolve else 0)
    out = []
    with ProgressBar(ExecutionPlan(progress=progress), work, label="sensitivity cases") as bar:
        if resolve:
            base_optimum = _optimum(instance, plain, options)
            bar.update()
        for case in cases:
            evaluation = evaluate(case.instance, plain, pools, options=options, contracts=contracts)
            bar.update()
            entry: dict[str, Any] = {"parameter": case.parameter, "scale": case.scale,
                                     "objective": evaluation.objective, "feasible": evaluation.feasible,
                                     "mean_rate": evaluation.mean_rate, "pools": _pools(evaluation)}
            if resolve:
                optimum = _optimum(case.instance, plain, options)
                bar.update()
                entry.update(_resolved(kind, case, pools, evaluation, optimum, base_optimum))
            out.append(entry)
    summary = {"source": source, "scales": list(SCALES) if spec.uncertainty is None else None,
               "cases": len(out), "skipped": [s.to_dict() for s in skipped], "resolve": resolve,
               "base_optimum": base_optimum, "objective_definition": OBJECTIVE_DEFINITION}
    return Sensitivity(tuple(out), summary)


def _resolved(kind: str, case: Case, pools: list[list[str]], evaluation: Evaluation, optimum: dict[str, Any],
              base_optimum: dict[str, Any]) -> dict[str, Any]:
    """The --resolve fields of one case (module docstring)."""
    found = bool(optimum["pools"]) and optimum["status"] in ("optimal", "feasible")
    lost = None
    if found and evaluation.feasible and optimum["objective"] is not None:
        lost = regret(kind, evaluation.objective, optimum["objective"])
        if optimum["status"] == "optimal" and lost < -REGRET_TOLERANCE:
            raise NumericsError(f"sensitivity case {case.label}: the plan's objective {evaluation.objective!r} "
                                f"beats the proven optimum {optimum['objective']!r} by {-lost:.3g} (more than "
                                f"REGRET_TOLERANCE {REGRET_TOLERANCE:g}): please report it")
    return {"optimum": optimum,
            "optimum_changes": (_partition(optimum["pools"]) != _partition(base_optimum["pools"])) if found else None,
            "plan_is_optimal": (_partition(optimum["pools"]) == _partition(pools)) if found else None,
            "regret": lost}
