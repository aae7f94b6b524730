"""Result objects of `solve` and `evaluate`, and their JSON form.

Every result carries its provenance (hashes, versions, seed) and the
self-checks of the numerics that priced it, so a reader can trust or
reproduce it. Timings are the only fields that vary between identical runs.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

from pooling.data.benefits import BenefitSchedule, schedule_from_dict, with_benefits
from pooling.data.formats import FORMAT_FIELD, format_tag, read_version
from pooling.data.plan import refuse_adjustment_fund
from pooling.economics.care import CARE_FIELDS, CountyCare, care_row, portability
from pooling.economics.pools import PoolPricing
from pooling.errors import InputError
from pooling.risk.claims import AggregateResult

REPORT_EXTRA = "pip install 'pooling[report]'"


def _pandas(what: str):
    """pandas, imported on first use (an optional extra)."""
    try:
        import pandas
    except ImportError:
        raise InputError(f"{what} needs pandas, which is not installed: {REPORT_EXTRA}") from None
    return pandas


class _Reader:
    """Fields of a JSON object read back, every failure an InputError naming
    the file and the field."""

    def __init__(self, data: Any, where: str, what: str):
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected an object ({what}), got {type(data).__name__}")
        self.data, self.where, self.what = data, where, what

    def __call__(self, key: str, *types: type, optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise InputError(f"{self.where}: missing field {key!r}: not {self.what}")
        value = self.data[key]
        if types and not isinstance(value, types) and not (optional and value is None):
            raise InputError(f"{self.where}: field {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                             f"got {value!r}")
        return value

    def number(self, key: str, optional: bool = False) -> float | None:
        value = self(key, int, float, optional=optional)
        if isinstance(value, bool):
            raise InputError(f"{self.where}: field {key!r} must be a number, got {value!r}")
        return value

    def table(self, key: str) -> _Reader:
        return _Reader(self(key, dict), f"{self.where}.{key}", self.what)


def _same_as_file(obj: Any, data: dict[str, Any], where: str, what: str) -> None:
    """A read-back object must write the file's content exactly: name the first
    field that differs (an unknown key, or a value the object cannot hold).
    The format tag is the one exception: the object writes the current one
    (a file of an older version, or one without a tag, was checked by
    `read_version` and is read as its version means)."""
    try:
        written = obj.to_dict()
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(f"{where}: cannot be read back ({type(exc).__name__}: {exc}): not {what}") from None
    if FORMAT_FIELD in written:
        data = {FORMAT_FIELD: written[FORMAT_FIELD]} | {k: v for k, v in data.items() if k != FORMAT_FIELD}
    for key in list(data) + [k for k in written if k not in data]:
        if key not in written:
            raise InputError(f"{where}: unknown field {key!r}: not {what}")
        if key not in data:
            raise InputError(f"{where}: missing field {key!r}: not {what}")
        if written[key] != data[key]:
            raise InputError(f"{where}: field {key!r} cannot be read back as written: not {what}")


def _names(counties: tuple[str, ...] | list[str], instance) -> str:
    return "; ".join(instance.county(c).name for c in counties)


def _html_table(caption: str, header: list[str], rows: list[list[Any]]) -> str:
    """A small HTML table for notebooks (`_repr_html_`)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return html.escape("-" if value is None else str(value))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (f"<table><caption style=\"text-align:left\">{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


PORTABILITY_FIELDS = ("migrant_in_network_share", "migrant_effective_rate", "resident_effective_rate",
                      "effective_coverage", "mean_effective_rate")
"""What enrollees receive (economics.care.portability), per pool and per plan."""
POOL_COLUMNS = ("id", "counties", "names", "n_counties", "rate", "max_rate", "enrollees", "budget", "revenue",
                "fixed_costs", "expected_cost", "var", "cvar", "usable", *PORTABILITY_FIELDS)
"""Columns of `Result.to_frame()` (one row per pool); `names` only with an instance;
with induced utilisation also `admission_multiplier`; under a [benefits] menu
also `benefits` (schedule_label); under [uncertainty] also `binding_scenario`
and one SCENARIO_RATE_COLUMN + name per scenario."""
SCENARIO_RATE_COLUMN = "max_rate:"
"""Prefix of the frame column holding a pool's max rate in one scenario ("max_rate:base")."""


@dataclass(frozen=True)
class PoolOutcome:
    """One pool of a plan: its members, rate and economics."""

    id: str
    pricing: PoolPricing
    rate: float
    admission_multiplier: float | None = None
    """Induced utilisation (economics.behaviour): the members' m_c at this
    pool's rate, admission-weighted; computed from the pricing when not given,
    None without a behavioural response (and then absent from result.json)."""

    def __post_init__(self) -> None:
        if self.admission_multiplier is None and self.pricing.behaviour is not None:
            object.__setattr__(self, "admission_multiplier", self.pricing.behaviour.admission_multiplier(self.rate))

    def to_dict(self) -> dict[str, Any]:
        p = self.pricing
        n = p.numerics
        return {
            "id": self.id,
            "counties": list(p.counties),
            "rate": self.rate,
            "max_rate": p.max_rate,
            "enrollees": p.enrollees,
            "budget": p.budget,
            "revenue": p.revenue,
            "fixed_costs": p.fixed_costs,
            "expected_cost": p.expected_cost,
            "var": p.var,
            "cvar": p.cvar,
            "usable": p.usable,
            "numerics": {"mean_rel_error": n.mean_rel_error,
                         "variance_rel_error": n.variance_rel_error,
                         "discretisation_variance_share": n.discretisation_variance_share,
                         "resolution_rel_diff": n.resolution_rel_diff,
                         "lattice_points": n.points},
        } | ({"contracts": list(p.contracts)} if p.contracts else {}) \
          | ({"benefits": p.benefits.to_dict()} if p.benefits is not None else {}) \
          | ({"scenario_rates": dict(p.scenario_rates)} if p.scenario_rates else {}) \
          | ({"binding_scenario": p.binding_scenario} if p.binding_scenario is not None else {}) \
          | ({"admission_multiplier": self.admission_multiplier} if self.admission_multiplier is not None else {}) \
          | ({"portability": self.portability(),
              "county_care": [care_row(c) for c in p.care]} if p.care else {})

    def portability(self) -> dict[str, float | None]:
        return portability((care, self.rate) for care in self.pricing.care)

    @classmethod
    def from_dict(cls, data: Any, *, measure: str = "cvar", level: float = math.nan,
                  where: str = "pool") -> PoolOutcome:
        """A pool read back from its JSON entry. Fields result.json does not
        hold are rebuilt: the risk figure the rate was priced on (VaR or CVaR
        by the spec's `measure`), the law's level, mean (= expected_cost);
        unknown ones are NaN (the law's variance, mass error) or empty (the
        per-county expected costs). `to_dict()` gives the entry back exactly."""
        r = _Reader(data, where, "a pool of result.json")
        n = r.table("numerics")
        var, cvar, expected = r.number("var"), r.number("cvar"), r.number("expected_cost")
        counties = r("counties", list)
        if not all(isinstance(c, str) for c in counties):
            raise InputError(f"{where}: field 'counties' must be a list of county ids, got {counties!r}")
        numerics = AggregateResult(
            law=None, level=level, var=var, cvar=cvar, mean=expected, variance=math.nan,
            mean_rel_error=n.number("mean_rel_error"), variance_rel_error=n.number("variance_rel_error"),
            resolution_rel_diff=n.number("resolution_rel_diff"), points=n("lattice_points", int),
            discretisation_variance_share=n.number("discretisation_variance_share"), mass_error=math.nan)
        pricing = PoolPricing(
            counties=tuple(counties), enrollees=r("enrollees", int), revenue=r.number("revenue"),
            fixed_costs=r.number("fixed_costs"), budget=r.number("budget"), expected_cost=expected,
            var=var, cvar=cvar, risk=var if measure == "var" else cvar, max_rate=r.number("max_rate"),
            usable=r("usable", bool), county_expected_cost=(), numerics=numerics,
            care=_read_care(r, where), contracts=tuple(r("contracts", list, optional=True) or ()),
            scenario_rates=_read_scenario_rates(r, where), binding_scenario=r("binding_scenario", str, optional=True),
            benefits=_read_schedule(r, where))
        multiplier = r.number("admission_multiplier", optional=True)
        if multiplier is not None and not multiplier > 0.0:
            raise InputError(f"{where}: field 'admission_multiplier' must be a positive number, got {multiplier!r}")
        outcome = cls(id=r("id", str), pricing=pricing, rate=r.number("rate"), admission_multiplier=multiplier)
        _same_as_file(outcome, data, where, "a pool of result.json")
        return outcome

    def row(self, instance=None) -> dict[str, Any]:
        """One row of a pool frame (see POOL_COLUMNS)."""
        p = self.pricing
        row = {"id": self.id, "counties": ",".join(p.counties)}
        if instance is not None:
            row["names"] = _names(p.counties, instance)
        row.update(n_counties=len(p.counties), rate=self.rate, max_rate=p.max_rate, enrollees=p.enrollees,
                   budget=p.budget, revenue=p.revenue, fixed_costs=p.fixed_costs,
                   expected_cost=p.expected_cost, var=p.var, cvar=p.cvar, usable=p.usable)
        shares = self.portability() if p.care else {}
        row.update({f: (math.nan if shares.get(f) is None else shares[f]) for f in PORTABILITY_FIELDS})
        if self.admission_multiplier is not None:
            row["admission_multiplier"] = self.admission_multiplier
        if p.benefits is not None:
            row["benefits"] = schedule_label(p.benefits)
        if p.scenario_rates:
            row["binding_scenario"] = p.binding_scenario
            row.update({f"{SCENARIO_RATE_COLUMN}{name}": rate for name, rate in p.scenario_rates})
        return row


def _read_schedule(r: _Reader, where: str) -> BenefitSchedule | None:
    """A pool's `benefits` (its schedule from the spec's menu), or None."""
    data = r("benefits", dict, optional=True)
    return None if data is None else schedule_from_dict(data, f"{where}.benefits")


def schedule_label(schedule: BenefitSchedule | None) -> str:
    """A pool's schedule in one line (frames, reports): deductible, cap and level factors."""
    if schedule is None:
        return ""
    data = schedule.to_dict()
    deductible = data["deductible"]
    text = "deductible " + (f"{deductible:,.0f}" if not isinstance(deductible, dict)
                            else "/".join(f"{v:,.0f}" for v in deductible.values()))
    text += f"; cap {data['cap']:,.0f}" if "cap" in data else "; no cap"
    return text + "; level factors " + "/".join(f"{v:g}" for v in data["level_factors"].values())


def _read_scenario_rates(r: _Reader, where: str) -> tuple[tuple[str, float], ...]:
    """A pool's `scenario_rates` ({scenario: max rate}, [uncertainty] only), each rate a number."""
    table = r("scenario_rates", dict, optional=True) or {}
    rates = []
    for name, rate in table.items():
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise InputError(f"{where}: scenario_rates.{name} must be a number, got {rate!r}")
        rates.append((str(name), float(rate)))
    return tuple(rates)


def _read_care(r: _Reader, where: str) -> tuple[CountyCare, ...]:
    return care_from_rows(r("county_care", list, optional=True) or [], where)


def care_from_rows(rows: list, where: str = "pool") -> tuple[CountyCare, ...]:
    """A pool's `county_care` entries of result.json as CountyCare, each field checked."""
    care = []
    for i, row in enumerate(rows):
        entry = _Reader(row, f"{where}.county_care[{i}]", "a pool of result.json")
        care.append(CountyCare(county=entry("county", str), enrollees=entry("enrollees", int),
                               **{f: entry.number(f) for f in CARE_FIELDS[2:]},
                               list_total=entry.number("list_total", optional=True),
                               admission_multiplier=_positive(entry, "admission_multiplier", 1.0)))
    return tuple(care)


def _positive(entry: _Reader, key: str, default: float) -> float:
    value = entry.number(key, optional=True)
    if value is None:
        return default
    if not value > 0.0:
        raise InputError(f"{entry.where}: field {key!r} must be a positive number, got {value!r}")
    return float(value)


def contract_records(instance, pools: list[PoolOutcome]) -> list[dict[str, Any]]:
    """result.json's `contracts`: per contract taken, its pool and what it serves."""
    from pooling.economics.care import contract_served
    return [{"pool": p.id, "counties": list(p.pricing.counties),
             **contract_served(pool_instance(instance, p), frozenset(p.pricing.counties), instance.contract(option),
                               p.rate)}
            for p in pools for option in p.pricing.contracts]


def pool_instance(instance, pool: PoolOutcome):
    """The instance a pool of a plan was priced on: under a [benefits] menu,
    with the pool's own schedule (`instance` then carries none: data.inputs)."""
    return instance if pool.pricing.benefits is None else with_benefits(instance, pool.pricing.benefits)


def plan_portability(pools: list[PoolOutcome]) -> dict[str, Any]:
    """The plan's portability (empty when its pools carry no care figures)."""
    pairs = [(care, p.rate) for p in pools for care in p.pricing.care]
    return portability(pairs) if pairs else {}


def _portability_entry(pools: list[PoolOutcome]) -> dict[str, Any]:
    """{"portability": ...} for a plan's JSON, or {} when its pools carry no care figures."""
    shares = plan_portability(pools)
    return {"portability": shares} if shares else {}


def _welfare_entry(records: list[dict[str, Any]] | None) -> dict[str, Any]:
    """{"welfare": records} for a plan's JSON, or {} without [welfare] (files keep their bytes)."""
    return {} if records is None else {"welfare": [dict(w) for w in records]}


def _read_welfare(r: _Reader) -> list[dict[str, Any]] | None:
    records = r("welfare", list, optional=True)
    if records is not None and not all(isinstance(w, dict) for w in records):
        raise InputError(f"{r.where}: field 'welfare' must be a list of objects (one per group)")
    return None if records is None else [dict(w) for w in records]


GROUP_RATE_FIELDS = ("resident_effective_rate", "migrant_effective_rate", "mean_effective_rate",
                     "worst_group_rate")
"""result.json's `group_rates` (economics.group_rates.group_figures), with a group objective only."""


def _group_rates_entry(figures: dict[str, float | None] | None) -> dict[str, Any]:
    """{"group_rates": figures} for a plan's JSON, or {} for the other objectives (files keep their bytes)."""
    return {} if figures is None else {"group_rates": dict(figures)}


def _read_group_rates(r: _Reader) -> dict[str, float | None] | None:
    if r("group_rates", dict, optional=True) is None:
        return None
    table = r.table("group_rates")
    return {key: table.number(key, optional=True) for key in GROUP_RATE_FIELDS}


def _pool_frame(pools: list[PoolOutcome], instance, what: str):
    pandas = _pandas(what)
    columns = [c for c in POOL_COLUMNS if c != "names" or instance is not None]
    if any(p.admission_multiplier is not None for p in pools):
        columns.append("admission_multiplier")
    if any(p.pricing.benefits is not None for p in pools):   # a [benefits] menu: each pool's schedule
        columns.append("benefits")
    scenarios = next((p.pricing.scenario_rates for p in pools if p.pricing.scenario_rates), ())
    if scenarios:   # [uncertainty]: the binding scenario and the max rate in each
        columns += ["binding_scenario"] + [f"{SCENARIO_RATE_COLUMN}{name}" for name, _ in scenarios]
    return pandas.DataFrame([p.row(instance) for p in pools], columns=columns)


def _pool_html(pools: list[PoolOutcome]) -> list[list[Any]]:
    return [[p.id, p.rate, p.pricing.max_rate, p.pricing.enrollees, ", ".join(p.pricing.counties)]
            for p in pools]


def _spec_measure(spec: Any) -> tuple[str, float]:
    solvency = spec.get("solvency") if isinstance(spec, dict) else None
    if not isinstance(solvency, dict):
        return "cvar", math.nan
    level = solvency.get("level")
    return str(solvency.get("measure", "cvar")), float(level) if isinstance(level, (int, float)) else math.nan


def _spec_and_pools(r, source: str) -> tuple[dict, list[PoolOutcome]]:
    """The resolved spec and the pools of a result.json or evaluation.json
    (the spec's measure and level rebuild each pool's risk figure)."""
    spec = r("spec", dict)
    measure, level = _spec_measure(spec)
    return spec, [PoolOutcome.from_dict(p, measure=measure, level=level, where=f"{source}: pools[{i}]")
                  for i, p in enumerate(r("pools", list))]


def plan_outcomes(pricings: list[PoolPricing], rates: list[float]) -> list[PoolOutcome]:
    """Pools in a canonical order (by smallest county id) with ids P01, P02, ..."""
    order = sorted(range(len(pricings)), key=lambda i: pricings[i].counties)
    width = max(2, len(str(len(pricings))))
    return [PoolOutcome(id=f"P{k + 1:0{width}d}", pricing=pricings[i], rate=rates[i])
            for k, i in enumerate(order)]


def mean_rate(pools: list[PoolOutcome]) -> float:
    """Enrollee-weighted mean rate of a plan."""
    total = sum(p.pricing.enrollees for p in pools)
    return math.fsum(p.pricing.enrollees * p.rate for p in pools) / total


GAP_FLOOR = 1e-6
"""Relative gaps divide by max(|objective|, this): a rate dispersion of 0 would
otherwise turn solver noise into a gap of 1."""


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound - objective| / |objective| (None without both)."""
    if objective is None or bound is None:
        return None
    return abs(bound - objective) / max(abs(objective), GAP_FLOOR)


def numerics_summary(pricings) -> dict[str, Any]:
    """Worst self-check over the priced pools (closed-form mean/variance, two resolutions)."""
    checks = [p.numerics for p in pricings]
    if not checks:
        return {}
    return {
        "checked_against": ("closed-form mean of Y_P; closed-form variance of the discretised model; "
                            "VaR/CVaR error estimate from spans h and 2h (Richardson)"),
        "pools_priced": len(checks),
        "max_mean_rel_error": max(c.mean_rel_error for c in checks),
        "max_variance_rel_error": max(c.variance_rel_error for c in checks),
        "max_resolution_rel_diff": max(c.resolution_rel_diff for c in checks),
        "max_lattice_points": max(c.points for c in checks),
    }


@dataclass
class Result:
    """Outcome of `solve`: the plan, its certificate (bound, gap) and provenance."""

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    wall_seconds: float
    pools: list[PoolOutcome]
    provenance: dict[str, Any]
    spec: dict[str, Any]
    objective_kind: str
    columns: int
    candidate_pools: int
    timings: dict[str, float]
    solver_options: dict[str, Any]
    numerics: dict[str, Any]
    diagnosis: list[str] = field(default_factory=list)
    termination: str | None = None
    mean_rate: float | None = None
    candidate_generation: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    """Decomposed solves: one entry per independent block (label, counties,
    status, objective, bound, pools, diagnosis); empty for a monolithic solve."""
    baselines: list[dict[str, Any]] = field(default_factory=list)
    """`solve --compare`: the baselines beside the optimum (result.json's
    `baselines`); empty otherwise."""
    contracts: list[dict[str, Any]] = field(default_factory=list)
    """Contract options the plan takes (`contract_records`); empty when none."""
    welfare: list[dict[str, Any]] | None = None
    """Per-group welfare records (economics.welfare) when the spec has [welfare]; None (absent) otherwise."""
    group_rates: dict[str, float | None] | None = None
    """A group objective's plan in four figures (economics.group_rates.group_figures); None (absent) for
    the other objectives, whose results keep their bytes."""

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> Result:
        """A result read back from result.json's content; `to_dict()` gives
        that content back exactly (pools as in `PoolOutcome.from_dict`).
        Anything else is an InputError naming the file and field."""
        what = "a result.json written by `pooling solve`"
        refuse_adjustment_fund(data, source, "Result.from_dict")
        r = _Reader(data, source, what)
        read_version(data, "result", source)   # every result version so far means the same
        spec, pools = _spec_and_pools(r, source)
        result = cls(
            status=r("status", str), objective=r.number("objective", optional=True),
            bound=r.number("bound", optional=True), gap=r.number("gap", optional=True),
            wall_seconds=r.number("wall_seconds"), pools=pools, provenance=r("provenance", dict), spec=spec,
            objective_kind=r("objective_kind", str), columns=r("columns", int),
            candidate_pools=r("candidate_pools", int), timings=r("timings", dict),
            solver_options=r("solver_options", dict), numerics=r("numerics", dict),
            diagnosis=list(r("diagnosis", list)), termination=r("termination", str, optional=True),
            mean_rate=r.number("mean_rate", optional=True),
            candidate_generation=r("candidate_generation", dict),
            groups=list(r("groups", list, optional=True) or []),
            baselines=list(r("baselines", list, optional=True) or []),
            contracts=list(r("contracts", list, optional=True) or []),
            welfare=_read_welfare(r), group_rates=_read_group_rates(r))
        _same_as_file(result, data, source, what)
        return result

    def to_frame(self, instance=None):
        """The plan as a pandas DataFrame, one row per pool (POOL_COLUMNS:
        counties as comma-separated ids; their names too when `instance` is
        given). Needs pandas (``pip install 'pooling[report]'``)."""
        return _pool_frame(self.pools, instance, "Result.to_frame()")

    def _repr_html_(self) -> str:
        caption = (f"pooling result: {self.status}; {self.objective_kind} {_fmt(self.objective)}, "
                   f"bound {_fmt(self.bound)}, gap {_fmt(self.gap)}; {len(self.pools)} pools")
        if not self.pools:
            caption += " (no plan)"
        return _html_table(caption, ["pool", "rate", "max rate", "enrollees", "counties"], _pool_html(self.pools))

    def to_dict(self) -> dict[str, Any]:
        return {
            FORMAT_FIELD: format_tag("result"),
            "status": self.status,
            "objective_kind": self.objective_kind,
            "objective": self.objective,
            "mean_rate": self.mean_rate,
            "bound": self.bound,
            "gap": self.gap,
            "wall_seconds": self.wall_seconds,
            "pools": [p.to_dict() for p in self.pools],
            "contracts": [dict(c) for c in self.contracts],
            "diagnosis": list(self.diagnosis),
            "columns": self.columns,
            "candidate_pools": self.candidate_pools,
            "candidate_generation": dict(self.candidate_generation),
            "termination": self.termination,
            "timings": dict(self.timings),
            "solver_options": dict(self.solver_options),
            "numerics": dict(self.numerics),
            "spec": self.spec,
            "provenance": dict(self.provenance),
        } | _portability_entry(self.pools) \
          | ({"groups": [dict(g) for g in self.groups]} if self.groups else {}) \
          | ({"baselines": [dict(b) for b in self.baselines]} if self.baselines else {}) \
          | _welfare_entry(self.welfare) | _group_rates_entry(self.group_rates)


@dataclass(frozen=True)
class Violation:
    """One rule a plan breaks: the rule (a spec field such as "max_rate_gap",
    "no_county_worse_off", "rates.min" or a pooling rule), the pools involved
    (ids as in the plan's pool list, and their counties), the rates involved,
    the limit the rule sets and a readable message."""

    rule: str
    pools: tuple[str, ...]
    counties: tuple[tuple[str, ...], ...]
    rates: tuple[float, ...]
    limit: float | None
    message: str
    county: str | None = None   # the member that sets the limit, for per-county rules
    group: str | None = None    # the gap group, for max_rate_gap

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "pools": list(self.pools),
                "counties": [list(c) for c in self.counties], "rates": list(self.rates),
                "limit": self.limit, "county": self.county, "group": self.group,
                "message": self.message}

    @classmethod
    def from_dict(cls, data: Any, where: str = "violation") -> Violation:
        r = _Reader(data, where, "a violation of evaluation.json")
        violation = cls(rule=r("rule", str), pools=tuple(r("pools", list)),
                        counties=tuple(tuple(c) for c in r("counties", list)), rates=tuple(r("rates", list)),
                        limit=r.number("limit", optional=True), message=r("message", str),
                        county=r("county", str, optional=True), group=r("group", str, optional=True))
        _same_as_file(violation, data, where, "a violation of evaluation.json")
        return violation


@dataclass
class Evaluation:
    """Outcome of `evaluate`: a given plan with the rates `solve` would give
    its pools under the spec's rules and objective, or, when the plan breaks a
    rule, each pool at its maximum solvent rate and the violations."""

    feasible: bool
    objective: float
    pools: list[PoolOutcome]
    violations: list[Violation]
    provenance: dict[str, Any]
    spec: dict[str, Any]
    numerics: dict[str, Any]
    wall_seconds: float
    subsidy: dict[str, Any] | None = None
    mean_rate: float | None = None
    rates_from: str = "solve"   # "solve": the spec's MILP on the plan's pools; "max_rate": r*_P
    explain: dict[str, Any] | None = None
    """`evaluate --explain`: the gain against the status quo by source (economics.explain)."""
    contracts: list[dict[str, Any]] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] | None = None
    """`evaluate --sensitivity`: the plan in each one-at-a-time case (studies.sensitivity)."""
    sensitivity_summary: dict[str, Any] | None = None
    """How the sensitivity cases were chosen, those skipped and why, the base optimum (--resolve)."""
    welfare: list[dict[str, Any]] | None = None
    """Per-group welfare records (economics.welfare) when the spec has [welfare]; None (absent) otherwise."""
    group_rates: dict[str, float | None] | None = None
    """As Result.group_rates: with a group objective only."""

    def to_dict(self) -> dict[str, Any]:
        return {
            FORMAT_FIELD: format_tag("evaluation"),
            "status": "feasible" if self.feasible else "infeasible",
            "subsidy": self.subsidy,
            "feasible": self.feasible,
            "objective_kind": self.spec["objective"]["kind"],
            "objective": self.objective,
            "mean_rate": self.mean_rate,
            "rates_from": self.rates_from,
            "pools": [p.to_dict() for p in self.pools],
            "contracts": [dict(c) for c in self.contracts],
            "violations": [v.to_dict() for v in self.violations],
            "violation_messages": [v.message for v in self.violations],
            "wall_seconds": self.wall_seconds,
            "numerics": dict(self.numerics),
            "spec": self.spec,
            "provenance": dict(self.provenance),
        } | _portability_entry(self.pools) \
          | ({"explain": self.explain} if self.explain is not None else {}) \
          | ({"sensitivity": [dict(c) for c in self.sensitivity]} if self.sensitivity is not None else {}) \
          | ({"sensitivity_summary": dict(self.sensitivity_summary)}
             if self.sensitivity_summary is not None else {}) \
          | _welfare_entry(self.welfare) | _group_rates_entry(self.group_rates)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>") -> Evaluation:
        """An evaluation read back from evaluation.json's content; `to_dict()`
        gives that content back exactly."""
        what = "an evaluation.json written by `pooling evaluate`"
        r = _Reader(data, source, what)
        read_version(data, "evaluation", source)
        spec, pools = _spec_and_pools(r, source)
        violations = [Violation.from_dict(v, where=f"{source}: violations[{i}]")
                      for i, v in enumerate(r("violations", list))]
        evaluation = cls(
            feasible=r("feasible", bool), objective=r.number("objective"), pools=pools, violations=violations,
            provenance=r("provenance", dict), spec=spec, numerics=r("numerics", dict),
            wall_seconds=r.number("wall_seconds"), subsidy=r("subsidy", dict, optional=True),
            mean_rate=r.number("mean_rate", optional=True), rates_from=r("rates_from", str),
            explain=r("explain", dict, optional=True), contracts=list(r("contracts", list, optional=True) or []),
            sensitivity=r("sensitivity", list, optional=True),
            sensitivity_summary=r("sensitivity_summary", dict, optional=True), welfare=_read_welfare(r),
            group_rates=_read_group_rates(r))
        _same_as_file(evaluation, data, source, what)
        return evaluation

    def to_frame(self, instance=None):
        """The plan as a pandas DataFrame, one row per pool (as
        `Result.to_frame`), plus `violations` (how many broken rules involve
        the pool) and, with the price of equalisation, `rate_required`,
        `top_up` and `compensation` (its counties' total)."""
        frame = _pool_frame(self.pools, instance, "Evaluation.to_frame()")
        frame["violations"] = [sum(1 for v in self.violations if p.id in v.pools) for p in self.pools]
        if self.subsidy:
            by_id = {entry.get("id"): entry for entry in self.subsidy.get("pools", [])}
            frame["rate_required"] = [by_id.get(p.id, {}).get("rate_required", math.nan) for p in self.pools]
            frame["top_up"] = [by_id.get(p.id, {}).get("top_up", math.nan) for p in self.pools]
            frame["compensation"] = [
                math.fsum(c.get("compensation", 0.0) for c in by_id.get(p.id, {}).get("county_compensation", []))
                for p in self.pools]
        return frame

    def _repr_html_(self) -> str:
        caption = (f"pooling evaluation: {'feasible' if self.feasible else 'infeasible'}; "
                   f"objective {_fmt(self.objective)}; {len(self.pools)} pools; "
                   f"{len(self.violations)} rule(s) broken")
        table = _html_table(caption, ["pool", "rate", "max rate", "enrollees", "counties"], _pool_html(self.pools))
        if self.violations:
            table += "<ul>" + "".join(f"<li>{html.escape(v.message)}</li>" for v in self.violations) + "</ul>"
        return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
