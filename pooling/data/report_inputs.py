"""The files `pooling report` reads back: result.json, stress.json and
evaluation.json, as frozen records holding what the report shows.

Each reader takes the parsed JSON, the instance the file was computed on and
the file's name, checks every field the report uses (type, range, length of
lists and intervals, county and pool ids) and returns a record; anything else
is an `InputError` naming the file, the field's path (``pools[2].rate``) and
the value found, which the CLI turns into exit 2. Fields are read with
`FieldReader` and county ids checked with `validate_plan`, the rules every
other loader uses. Fields the report does not show are not read: whether a
result.json or evaluation.json is exactly one (no unknown or missing field)
is `Result.from_dict` / `Evaluation.from_dict`'s job, run by the report
first; stress.json has no other reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pooling.data.fields import FieldReader, describe
from pooling.data.instance import MAX_ENROLLEES, Instance
from pooling.data.plan import validate_plan
from pooling.data.spec import MAX_COUNT, MAX_SCENARIOS, OBJECTIVES, Spec, spec_from_dict

MAX_REPORTED_MONEY = 1e20
"""Largest amount (CNY a year) a pool's budget, expected cost, VaR, CVaR,
surplus, top-up or compensation may hold: instances keep every pool below
2e9 enrollees x 5 admissions x 1e8 CNY = 1e18 of expected cost, so a larger
figure is not one pooling wrote, and it keeps the report's sums and figure
axes far from float overflow."""
HORIZON_YEARS = (1, 100)
"""stress.json `years`: the horizon `simulate --years` and spec simulation.years accept."""
PORTABILITY_KEYS = ("migrant_in_network_share", "migrant_effective_rate", "resident_effective_rate",
                    "effective_coverage", "mean_effective_rate")
"""What enrollees receive (result.json and evaluation.json `portability`): shares, or null."""


# ---------------------------------------------------------------- records

@dataclass(frozen=True)
class PoolRecord:
    """One pool of a result or evaluation: members, rate and the money the report shows."""

    id: str
    counties: tuple[str, ...]
    rate: float
    max_rate: float
    enrollees: int
    budget: float
    expected_cost: float
    var: float
    cvar: float


@dataclass(frozen=True)
class GroupRecord:
    """One independent block of a decomposed solve (result.json `groups`)."""

    label: str
    counties: int
    enrollees: int | None
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    pools: tuple[str, ...]
    diagnosis: tuple[str, ...]


@dataclass(frozen=True)
class BaselineRecord:
    """One baseline of `solve --compare` (result.json `baselines`)."""

    name: str
    status: str
    objective: float | None
    mean_rate: float | None
    min_rate: float | None
    max_rate: float | None
    pools: int


@dataclass(frozen=True)
class GenerationRecord:
    """How the candidate pools were found (result.json `candidate_generation`)."""

    method: str
    rounds: int | None = None
    bound_method: str = ""
    proven_optimal: bool = False


@dataclass(frozen=True)
class NumericsRecord:
    """The worst pricing self-check over the pools priced (result.json `numerics`)."""

    pools_priced: int
    max_mean_rel_error: float
    max_variance_rel_error: float
    max_resolution_rel_diff: float


@dataclass(frozen=True)
class ResultRecord:
    """What the report shows of a result.json."""

    source: str
    status: str
    objective_kind: str
    objective: float | None
    bound: float | None
    gap: float | None
    mean_rate: float | None
    wall_seconds: float
    pools: tuple[PoolRecord, ...]
    diagnosis: tuple[str, ...]
    termination: str | None
    columns: int
    candidate_pools: int
    generation: GenerationRecord
    numerics: NumericsRecord | None
    groups: tuple[GroupRecord, ...]
    baselines: tuple[BaselineRecord, ...]
    portability: dict[str, float | None] | None
    spec: Spec
    provenance: tuple[tuple[str, str], ...]
    instance_sha256: str | None
    group_rates: dict[str, float | None] | None = None
    """A group objective's figures (result.json `group_rates`); None for the other objectives."""


@dataclass(frozen=True)
class StressPoolRecord:
    """One pool of stress.json: its rate, probabilities with 95% intervals, surplus."""

    counties: tuple[str, ...]
    rate: float
    deficit_probability: float
    deficit_interval: tuple[float, float]
    ruin_probability: float
    ruin_interval: tuple[float, float]
    ruin_by_year: tuple[float, ...]
    mean_surplus: float
    passed: bool
    exhaustion_promised: float | None = None
    """simulate --truth: year-1 budget exhaustion probability under the law the plan was priced on."""
    exhaustion_truth: float | None = None
    """... and under the law the years were drawn from (both exact)."""


@dataclass(frozen=True)
class StressRecord:
    """What the report shows of a stress.json."""

    source: str
    scenarios: int
    years: int
    seed: int | None
    stress: tuple[str, ...]
    reserve_share: float | None
    ruin_target: float
    pools: tuple[StressPoolRecord, ...]
    any_ruin_probability: float
    any_ruin_interval: tuple[float, float]
    passed: bool
    instance_sha256: str | None
    truth: str | None = None
    """simulate --truth: the scenario the years were drawn from."""


@dataclass(frozen=True)
class ViolationRecord:
    """One rule an evaluated plan breaks."""

    rule: str
    pools: tuple[str, ...]
    rates: tuple[float, ...]
    limit: float | None
    message: str


@dataclass(frozen=True)
class SubsidyPoolRecord:
    """One pool's price of equalisation; `compensation` is its counties' total."""

    id: str
    counties: tuple[str, ...]
    rate_without_subsidy: float
    rate_required: float
    top_up: float
    compensation: float


@dataclass(frozen=True)
class SubsidyRecord:
    """evaluation.json `subsidy` (evaluate --subsidy)."""

    definition: str
    total_top_up: float
    total_compensation: float
    pools: tuple[SubsidyPoolRecord, ...]


@dataclass(frozen=True)
class EvaluationRecord:
    """What the report shows of an evaluation.json."""

    source: str
    status: str
    objective: float
    mean_rate: float | None
    rates_from: str
    pools: tuple[PoolRecord, ...]
    violations: tuple[ViolationRecord, ...]
    subsidy: SubsidyRecord | None
    instance_sha256: str | None
    sensitivity: SensitivityRecord | None = None


@dataclass(frozen=True)
class SensitivityCaseRecord:
    """One case of evaluation.json `sensitivity` (evaluate --sensitivity)."""

    parameter: str
    scale: float | None
    objective: float
    feasible: bool
    regret: float | None = None
    optimum_changes: bool | None = None


@dataclass(frozen=True)
class SensitivityRecord:
    """evaluation.json `sensitivity` and `sensitivity_summary`."""

    source: str
    objective_kind: str
    cases: tuple[SensitivityCaseRecord, ...]
    skipped: tuple[tuple[str, float | None, str], ...]
    resolved: bool


# ---------------------------------------------------------------- field helpers

def _items(reader: FieldReader, key: str, item: str, default: Any = None) -> list[FieldReader]:
    """A list of objects (each `item`, e.g. "pool object"), each as a
    FieldReader whose errors name `key[i].`; `default` when the field is missing."""
    value = reader.raw(key) if default is None else reader.raw(key, default)
    if not isinstance(value, list):
        raise reader.fail(key, f"must be a list of {item}s, got {describe(value)}")
    return [FieldReader(entry, reader.where, f"{reader.path}{key}[{i}].", f"a {item}")
            for i, entry in enumerate(value)]


def _number_or_none(reader: FieldReader, key: str, **bounds: Any) -> float | None:
    """A number, or None when the field is missing or null."""
    if reader.raw(key, None) is None:
        return None
    return reader.number(key, **bounds)


def _text_or_none(reader: FieldReader, key: str) -> str | None:
    """Any text (empty allowed), or None when the field is missing or null."""
    value = reader.raw(key, None)
    if value is not None and not isinstance(value, str):
        raise reader.fail(key, f"must be a string, got {describe(value)}")
    return value


def _numbers(reader: FieldReader, key: str, *, low: float, high: float,
             length: int | None = None) -> tuple[float, ...]:
    """A list of numbers in [low, high], of `length` items when given."""
    value = reader.raw(key)
    if not isinstance(value, list):
        raise reader.fail(key, f"must be a list of numbers, got {describe(value)}")
    if length is not None and len(value) != length:
        raise reader.fail(key, f"must hold {length} numbers, got {len(value)}")
    items = FieldReader({f"{key}[{i}]": v for i, v in enumerate(value)}, reader.where, reader.path)
    return tuple(items.number(f"{key}[{i}]", low=low, high=high) for i in range(len(value)))


def _interval(reader: FieldReader, key: str, estimate: float) -> tuple[float, float]:
    """A 95% interval [low, high] of a probability, holding its estimate."""
    low, high = _numbers(reader, key, low=0.0, high=1.0, length=2)
    if not low <= estimate <= high:
        raise reader.fail(key, f"must be an interval [low, high] holding the estimate {estimate:g}, "
                               f"got [{low:g}, {high:g}]")
    return low, high


def _money(reader: FieldReader, key: str, low: float = -MAX_REPORTED_MONEY) -> float:
    return reader.number(key, low=low, high=MAX_REPORTED_MONEY)


def _county_lists(readers: list[FieldReader]) -> list[list[str]]:
    return [r.string_list("counties") for r in readers]


def _sha256(reader: FieldReader) -> str | None:
    """provenance.instance_sha256, when the file records one."""
    if not reader.has("provenance"):
        return None
    provenance = reader.table("provenance")
    return _text_or_none(provenance, "instance_sha256")


def _pool(reader: FieldReader) -> PoolRecord:
    return PoolRecord(
        id=reader.string("id"), counties=tuple(reader.string_list("counties")),
        rate=reader.number("rate", low=0.0, high=1.0),
        max_rate=reader.number("max_rate", low=-MAX_REPORTED_MONEY, high=1.0),
        enrollees=reader.integer("enrollees", low=0, high=MAX_ENROLLEES), budget=_money(reader, "budget"),
        expected_cost=_money(reader, "expected_cost", 0.0), var=_money(reader, "var", 0.0),
        cvar=_money(reader, "cvar", 0.0))


def _pools(top: FieldReader, instance: Instance, complete: bool) -> tuple[PoolRecord, ...]:
    """The `pools` of a result or evaluation: ids distinct, counties of the
    instance, no county twice (every county once when `complete`)."""
    readers = _items(top, "pools", "pool object")
    pools = tuple(_pool(r) for r in readers)
    validate_plan([list(p.counties) for p in pools], instance, top.where, complete=complete)
    _distinct_ids(top, "pools", [p.id for p in pools])
    return pools


def _distinct_ids(reader: FieldReader, key: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, pid in enumerate(ids):
        if pid in seen:
            raise reader.fail(f"{key}[{index}].id", f'"{pid}" is also the id of {key}[{seen[pid]}]')
        seen[pid] = index


def _portability(top: FieldReader) -> dict[str, float | None] | None:
    if top.raw("portability", None) is None:
        return None
    table = top.table("portability")
    return {key: _number_or_none(table, key) for key in PORTABILITY_KEYS}


GROUP_RATE_KEYS = ("resident_effective_rate", "migrant_effective_rate", "mean_effective_rate", "worst_group_rate")
"""result.json's `group_rates` (a group objective's figures)."""


def _group_rates(top: FieldReader) -> dict[str, float | None] | None:
    if top.raw("group_rates", None) is None:
        return None
    table = top.table("group_rates")
    return {key: _number_or_none(table, key) for key in GROUP_RATE_KEYS}


# ---------------------------------------------------------------- result.json

def read_result_record(data: Any, instance: Instance, source: str) -> ResultRecord:
    """The report's view of a result.json's content (see the module docstring)."""
    top = FieldReader(data, source, what="a result.json object")
    spec_table = top.raw("spec")
    if not isinstance(spec_table, dict):
        raise top.fail("spec", f"must be the resolved spec (an object), got {describe(spec_table)}")
    spec = spec_from_dict(spec_table, source=f"{source}: spec")
    return ResultRecord(
        source=source, status=top.string("status"), objective_kind=top.string("objective_kind", choices=OBJECTIVES),
        objective=_number_or_none(top, "objective"),
        bound=_number_or_none(top, "bound"), gap=_number_or_none(top, "gap"),
        mean_rate=_number_or_none(top, "mean_rate"),
        wall_seconds=top.number("wall_seconds", low=0.0), pools=_pools(top, instance, complete=False),
        diagnosis=tuple(top.string_list("diagnosis")), termination=_text_or_none(top, "termination"),
        columns=top.integer("columns", low=0, high=MAX_COUNT),
        candidate_pools=top.integer("candidate_pools", low=0, high=MAX_COUNT),
        generation=_generation(top.table("candidate_generation")), numerics=_numerics(top.table("numerics")),
        groups=tuple(_group(r) for r in _items(top, "groups", "block object", default=[])),
        baselines=tuple(_baseline(r) for r in _items(top, "baselines", "baseline object", default=[])),
        portability=_portability(top), spec=spec, provenance=_provenance(top.table("provenance")),
        instance_sha256=_sha256(top), group_rates=_group_rates(top))


def _generation(table: FieldReader) -> GenerationRecord:
    method = _text_or_none(table, "method") or ""
    if method != "column_generation":
        return GenerationRecord(method=method)
    return GenerationRecord(method=method, rounds=table.integer("rounds", low=0, high=MAX_COUNT),
                            bound_method=_text_or_none(table, "bound_method") or "",
                            proven_optimal=table.boolean("proven_optimal", default=False))


def _numerics(table: FieldReader) -> NumericsRecord | None:
    if not table.data:
        return None
    return NumericsRecord(pools_priced=table.integer("pools_priced", low=0, high=MAX_COUNT),
                          **{key: table.number(key, low=0.0) for key in
                             ("max_mean_rel_error", "max_variance_rel_error", "max_resolution_rel_diff")})


def _group(reader: FieldReader) -> GroupRecord:
    enrollees = reader.raw("enrollees", None)
    return GroupRecord(
        label=reader.string("group"), counties=len(reader.string_list("counties")),
        enrollees=None if enrollees is None else reader.integer("enrollees", low=0, high=MAX_ENROLLEES),
        status=reader.string("status"), objective=_number_or_none(reader, "objective"),
        bound=_number_or_none(reader, "bound"), gap=_number_or_none(reader, "gap"),
        pools=tuple(reader.string_list("pools")), diagnosis=tuple(reader.string_list("diagnosis")))


def _baseline(reader: FieldReader) -> BaselineRecord:
    pools = reader.raw("pools")
    if not isinstance(pools, list):
        raise reader.fail("pools", f"must be a list of pools, got {describe(pools)}")
    return BaselineRecord(
        name=reader.string("name"), status=reader.string("status"),
        **{key: _number_or_none(reader, key) for key in ("objective", "mean_rate", "min_rate", "max_rate")},
        pools=len(pools))


def _provenance(table: FieldReader) -> tuple[tuple[str, str], ...]:
    """Each provenance entry as text (null as "-", nested values as Python writes them)."""
    return tuple((key, "-" if value is None else str(value)) for key, value in table.data.items())


# ---------------------------------------------------------------- stress.json

def read_stress_record(data: Any, instance: Instance, source: str) -> StressRecord:
    """The report's view of a stress.json's content (see the module docstring)."""
    top = FieldReader(data, source, what="a stress.json object written by `pooling simulate`")
    years = top.integer("years", low=HORIZON_YEARS[0], high=HORIZON_YEARS[1])
    readers = _items(top, "pools", "pool object")
    validate_plan(_county_lists(readers), instance, source)
    plan = top.table("plan")
    any_ruin = plan.number("any_ruin_probability", low=0.0, high=1.0)
    share = top.raw("reserve_share", None)
    seed = top.raw("seed", None)
    return StressRecord(
        source=source, scenarios=top.integer("scenarios", low=1, high=MAX_SCENARIOS),
        years=years, seed=None if seed is None else top.integer("seed", low=0),
        stress=tuple(top.string_list("stress")) if top.has("stress") else (),
        reserve_share=None if share is None else top.number("reserve_share", low=0.0, high=1.0),
        ruin_target=top.number("ruin_target", low=0.0, high=1.0),
        pools=tuple(_stress_pool(r, years) for r in readers), any_ruin_probability=any_ruin,
        any_ruin_interval=_interval(plan, "any_ruin_probability_ci", any_ruin),
        passed=plan.boolean("passed"), instance_sha256=_sha256(top),
        truth=top.table("truth").string("scenario") if top.raw("truth", None) is not None else None)


def _stress_pool(reader: FieldReader, years: int) -> StressPoolRecord:
    deficit = reader.number("deficit_probability", low=0.0, high=1.0)
    ruin = reader.number("ruin_probability", low=0.0, high=1.0)
    return StressPoolRecord(
        counties=tuple(reader.string_list("counties")), rate=reader.number("rate", low=0.0, high=1.0),
        deficit_probability=deficit, deficit_interval=_interval(reader, "deficit_probability_ci", deficit),
        ruin_probability=ruin, ruin_interval=_interval(reader, "ruin_probability_ci", ruin),
        ruin_by_year=_numbers(reader, "ruin_probability_by_year", low=0.0, high=1.0, length=years),
        mean_surplus=_money(reader, "mean_surplus"), passed=reader.boolean("passed"),
        exhaustion_promised=_number_or_none(reader, "exhaustion_probability_promised", low=0.0, high=1.0),
        exhaustion_truth=_number_or_none(reader, "exhaustion_probability_truth", low=0.0, high=1.0))


# ---------------------------------------------------------------- evaluation.json

def read_evaluation_record(data: Any, instance: Instance, source: str) -> EvaluationRecord:
    """The report's view of an evaluation.json's content (see the module docstring)."""
    top = FieldReader(data, source, what="an evaluation.json object written by `pooling evaluate`")
    pools = _pools(top, instance, complete=True)
    ids = {p.id for p in pools}
    violations = tuple(_violation(r, ids) for r in _items(top, "violations", "violation object"))
    subsidy = None
    if top.raw("subsidy", None) is not None:
        subsidy = _subsidy(top.table("subsidy"), instance)
    return EvaluationRecord(
        source=source, status=top.string("status", choices=("feasible", "infeasible")),
        objective=top.number("objective"),
        mean_rate=_number_or_none(top, "mean_rate"),
        rates_from=top.string("rates_from"), pools=pools, violations=violations, subsidy=subsidy,
        instance_sha256=_sha256(top),
        sensitivity=_sensitivity(top) if top.raw("sensitivity", None) is not None else None)


def _scale(reader: FieldReader) -> float | None:
    return _number_or_none(reader, "scale", low=0.0, high=MAX_REPORTED_MONEY)


def _sensitivity(top: FieldReader) -> SensitivityRecord:
    cases = []
    for r in _items(top, "sensitivity", "sensitivity case"):
        changes = r.raw("optimum_changes", None)
        cases.append(SensitivityCaseRecord(
            parameter=r.string("parameter"), scale=_scale(r),
            objective=r.number("objective", low=-MAX_REPORTED_MONEY, high=MAX_REPORTED_MONEY),
            feasible=r.boolean("feasible"),
            regret=_number_or_none(r, "regret", low=-MAX_REPORTED_MONEY, high=MAX_REPORTED_MONEY),
            optimum_changes=None if changes is None else r.boolean("optimum_changes")))
    summary = top.table("sensitivity_summary")
    skipped = tuple((s.string("parameter"), _scale(s), s.string("reason"))
                    for s in _items(summary, "skipped", "skipped case", default=[]))
    return SensitivityRecord(source=_text_or_none(summary, "source") or "",
                             objective_kind=top.string("objective_kind", choices=OBJECTIVES),
                             cases=tuple(cases), skipped=skipped,
                             resolved=summary.boolean("resolve", default=False))


def _violation(reader: FieldReader, ids: set[str]) -> ViolationRecord:
    pools = reader.string_list("pools")
    unknown = [p for p in pools if p not in ids]
    if unknown:
        raise reader.fail("pools", f'name pools of this file, got "{unknown[0]}", which is not one')
    return ViolationRecord(rule=reader.string("rule"), pools=tuple(pools),
                           rates=_numbers(reader, "rates", low=-MAX_REPORTED_MONEY, high=MAX_REPORTED_MONEY),
                           limit=_number_or_none(reader, "limit", low=-MAX_REPORTED_MONEY,
                                                 high=MAX_REPORTED_MONEY),
                           message=reader.string("message"))


def _subsidy(table: FieldReader, instance: Instance) -> SubsidyRecord:
    readers = _items(table, "pools", "pool object")
    validate_plan(_county_lists(readers), instance, f"{table.where}: subsidy")
    pools = tuple(_subsidy_pool(r) for r in readers)
    _distinct_ids(table, "pools", [p.id for p in pools])
    return SubsidyRecord(definition=_text_or_none(table, "definition") or "",
                         total_top_up=_money(table, "total_top_up", 0.0),
                         total_compensation=_money(table, "total_compensation", 0.0), pools=pools)


def _subsidy_pool(reader: FieldReader) -> SubsidyPoolRecord:
    counties = tuple(reader.string_list("counties"))
    compensation = 0.0
    for entry in _items(reader, "county_compensation", "county object", default=[]):
        county = entry.string("id")
        if county not in counties:
            raise entry.fail("id", f'must be a county of this pool, got "{county}"')
        compensation += _money(entry, "compensation", 0.0)
    return SubsidyPoolRecord(
        id=reader.string("id"), counties=counties,
        rate_without_subsidy=reader.number("rate_without_subsidy", low=-MAX_REPORTED_MONEY, high=1.0),
        rate_required=reader.number("rate_required", low=0.0, high=1.0), top_up=_money(reader, "top_up", 0.0),
        compensation=compensation)
