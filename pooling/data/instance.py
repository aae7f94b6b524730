"""Instance data model: counties, their funds and risk profiles (DESIGN §County data).

An instance file is JSON with top-level keys ``name``, ``year``, ``currency``,
``parameters``, ``counties`` (and an optional ``description``). Everything is
validated once, here; the rest of the package trusts an `Instance`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pooling.data.fields import FieldReader, describe, encodable, require_path
from pooling.errors import InputError
from pooling.risk.severity import MIN_BODY_MASS, SEVERITY_FAMILIES, Severity

OUTSIDE = "outside"
"""Reserved destination key: care delivered beyond the instance."""

WEIGHT_SUM_TOLERANCE = 1e-6
"""Destination weights must sum to 1 within this: JSON files round decimals
(six significant digits leave errors below 1e-6), a larger miss is a data error."""

# Validated ranges: physically generous, and inside what the engine is known to
# price right (tests/test_field_ranges.py prices every end of every range).
# Money stays below 1e7 CNY per capita and 2e9 enrollees in all, so no budget
# or revenue comes near float overflow (2e16 CNY at most).
MAX_ENROLLEES = 2_000_000_000
"""Enrollees of one county and of the whole instance (China's population is 1.4e9)."""
MAX_PER_CAPITA = 1e7
"""CNY per enrollee-year for contributions and per-capita costs (actual: ~50-1,000)."""
MAX_MONEY = 1e16
"""CNY for reserves and the fixed cost per fund (MAX_ENROLLEES x 5e6)."""
MAX_ADMISSION_RATE = 5.0
"""Admissions per enrollee-year (actual: 0.02-0.3)."""
MIN_ADMISSION_RATE = 1e-6
"""At least one admission per million enrollee-years: below it a county has no
inpatient risk to pool (actual rates are 1e4 times larger)."""
SEVERITY_MEAN_RANGE = (1.0, 1e8)
"""CNY per admission (actual: ~1e3-1e5); 1e8 keeps 1e10 admissions x their
1e-12 severity quantile far inside float range."""
SEVERITY_CV_RANGE = (0.01, 20.0)
"""cv of one admission's cost (actual: ~0.5-3). Below 0.01 a gamma's shape
(1/cv^2) makes its incomplete-gamma tails slow and inexact."""
TAIL_INDEX_RANGE = (2.5, 100.0)
"""Spliced Pareto index: > 2 for a finite variance. Below 2.5 the window (the
severity's 1e-12 quantile, u (p/1e-12)^(1/a)) outgrows the lattice for small
pools, and the variance beyond it fails the self-check (measured at 2.2 and 2.3
with 1 and 20,000 enrollees); above 100 the tail is no tail."""
MAX_THRESHOLD = 1e10
"""CNY: a splice point above it is beyond any admission's cost."""
MIGRANT_FACTOR_RANGE = (0.01, 10.0)
"""h: migrants' admission rate relative to residents'."""
MIN_SHOCK_CV = 1e-12
"""A non-zero frequency_shock_cv must be at least this. Below it nothing the
package computes changes (the count is Poisson to double precision, the
engine's limit), but other users of theta (the column-generation bound's
CVaR(Theta), Monte Carlo draws) divide by theta^2; write 0 instead."""
MAX_SHOCK_CV = 2.0
"""theta above 2 puts Theta's 1e-12 quantile beyond 40 times its mean."""
YEAR_RANGE = (1900, 2200)


@dataclass(frozen=True)
class Parameters:
    """Instance-wide parameters (DESIGN §County data, instance-level)."""

    admin_fixed_per_fund: float
    out_of_network_factor: float
    out_of_network_claim_share: float
    migrant_admission_factor: float
    outside_severity: Severity
    frequency_shock_cv: float


@dataclass(frozen=True)
class County:
    """One county fund: size, finances, risk profile and migration."""

    id: str
    name: str
    prefecture: str
    province: str | None
    enrollees: int
    contribution_per_capita: float
    reserves: float
    admin_per_capita: float
    outpatient_per_capita: float
    admission_rate: float
    severity: Severity
    migrant_share: float
    migrant_destinations: tuple[tuple[str, float], ...]
    adjacent: tuple[str, ...]

    @property
    def revenue(self) -> float:
        """R_c = N_c p_c."""
        return self.enrollees * self.contribution_per_capita

    @property
    def per_capita_costs(self) -> float:
        """Deterministic rate-independent cost (a_c + o_c) N_c, without the fund's fixed cost."""
        return (self.admin_per_capita + self.outpatient_per_capita) * self.enrollees


@dataclass(frozen=True)
class Instance:
    """A validated instance. `sha256` is the hash of the source file's bytes."""

    name: str
    year: int
    currency: str
    description: str
    parameters: Parameters
    counties: tuple[County, ...]
    source: str
    sha256: str
    context: tuple[County, ...] = ()
    """Counties outside the problem that its counties' migrants live in: looked
    up for pricing (their severity) but never pooled (see `restricted`)."""

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.counties)

    def county(self, county_id: str) -> County:
        return self._by_id[county_id]

    @property
    def _by_id(self) -> dict[str, County]:
        cache = self.__dict__.get("_index")
        if cache is None:
            cache = {c.id: c for c in self.context}
            cache.update({c.id: c for c in self.counties})
            object.__setattr__(self, "_index", cache)
        return cache

    def restricted(self, ids) -> Instance:
        """The sub-problem on `ids` (a block of a decomposed solve): those
        counties, with the counties their migrants live in kept as context, so
        every pool is priced exactly as in the whole instance. Source and hash
        stay the whole file's (provenance)."""
        keep = set(ids)
        counties = tuple(c for c in self.counties if c.id in keep)
        if len(counties) != len(keep):
            raise KeyError(f"not counties of {self.source}: {sorted(keep - set(self.ids))}")
        needed = sorted({k for c in counties for k, _ in c.migrant_destinations
                         if k != OUTSIDE and k not in keep})
        return dataclasses.replace(self, counties=counties,
                                   context=tuple(self.county(k) for k in needed))

    @property
    def total_enrollees(self) -> int:
        return sum(c.enrollees for c in self.counties)

    @property
    def prefectures(self) -> tuple[str, ...]:
        return tuple(sorted({c.prefecture for c in self.counties}))


def _reject_duplicate_keys(where: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InputError(f"{where}: key \"{key}\" appears twice in the same object")
            out[key] = value
        return out
    return hook


def parse_json_bytes(raw: bytes, where: str) -> Any:
    """Parse JSON with clear errors (broken syntax, duplicate keys, bad encoding)."""
    try:
        text = raw.decode("utf-8-sig")   # a leading byte-order mark is allowed
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys(where))
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def read_file_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: expected a {what} file, found a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file ({exc.strerror})") from None


def load_instance(path: str | Path) -> Instance:
    """Load and validate an instance JSON file."""
    require_path(path, "load_instance", "instance_from_dict(data)")
    path = Path(path)
    raw = read_file_bytes(path, "instance")
    data = parse_json_bytes(raw, str(path))
    return instance_from_dict(data, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def instance_from_dict(data: Any, source: str = "<memory>", sha256: str | None = None) -> Instance:
    """Validate parsed instance data. Without `sha256`, hashes canonical JSON of `data`."""
    if sha256 is None:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    top = FieldReader(data, source)
    name = top.string("name")
    year = top.integer("year", low=YEAR_RANGE[0], high=YEAR_RANGE[1])
    currency = top.string("currency")
    description = top.string("description", default="")
    parameters = _read_parameters(top.table("parameters"))
    raw_counties = top.raw("counties")
    if not isinstance(raw_counties, list) or not raw_counties:
        raise top.fail("counties", f"must be a non-empty list of counties, got {describe(raw_counties)}")
    top.finish()

    _check_unique_ids(raw_counties, source)
    counties = [_read_county(item, source, index) for index, item in enumerate(raw_counties)]
    total = sum(c.enrollees for c in counties)
    if total > MAX_ENROLLEES:
        raise InputError(f"{source}: counties: enrollees must sum to at most {MAX_ENROLLEES} over the "
                         f"instance, got {total}")
    _check_references(counties, source)
    return Instance(name=name, year=year, currency=currency, description=description,
                    parameters=parameters, counties=tuple(counties), source=source, sha256=sha256)


def _check_unique_ids(raw_counties: list, source: str) -> None:
    """Duplicate ids first: a repeated county would otherwise fail later checks
    (destinations, adjacency) with a message that hides the real mistake."""
    first: dict[str, int] = {}
    for index, item in enumerate(raw_counties):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            cid = item["id"]
            if cid in first:
                raise InputError(f"{_county_where(item, source, index)}: id appears more than once "
                                 f"(counties #{first[cid] + 1} and #{index + 1}); county ids must be unique")
            first[cid] = index


def read_shock_cv(reader: FieldReader, key: str, **default) -> float | None:
    """A shock cv theta: 0, or in [MIN_SHOCK_CV, MAX_SHOCK_CV] (see MIN_SHOCK_CV).
    `default=...` as for FieldReader.number."""
    value = reader.number(key, low=0.0, high=MAX_SHOCK_CV, **default)
    if value is not None and 0.0 < value < MIN_SHOCK_CV:
        raise reader.fail(key, f"must be 0 or in [{MIN_SHOCK_CV:g}, {MAX_SHOCK_CV:g}] (a cv below "
                               f"{MIN_SHOCK_CV:g} changes no result: write 0), got {value:g}")
    return value


def _read_parameters(reader: FieldReader) -> Parameters:
    params = Parameters(
        admin_fixed_per_fund=reader.number("admin_fixed_per_fund", low=0.0, high=MAX_MONEY),
        out_of_network_factor=reader.number("out_of_network_factor", low=0.0, high=1.0),
        out_of_network_claim_share=reader.number("out_of_network_claim_share", low=0.0, high=1.0),
        migrant_admission_factor=reader.number("migrant_admission_factor", low=MIGRANT_FACTOR_RANGE[0],
                                               high=MIGRANT_FACTOR_RANGE[1]),
        outside_severity=read_severity(reader.table("outside_severity")),
        frequency_shock_cv=read_shock_cv(reader, "frequency_shock_cv"),
    )
    reader.finish()
    return params


def _county_where(item: Any, source: str, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        shown = item["id"].encode("utf-8", "backslashreplace").decode("utf-8")
        return f'{source}: county "{shown}"'
    return f"{source}: county #{index + 1}"


def _read_county(item: Any, source: str, index: int) -> County:
    reader = FieldReader(item, _county_where(item, source, index))
    county_id = reader.string("id")
    name = reader.string("name")
    prefecture = reader.string("prefecture")
    province = reader.string("province") if reader.has("province") else None
    enrollees = reader.integer("enrollees", low=1, high=MAX_ENROLLEES)
    contribution = reader.number("contribution_per_capita", low=0.0, high=MAX_PER_CAPITA)
    reserves = reader.number("reserves", low=0.0, high=MAX_MONEY)
    admin = reader.number("admin_per_capita", low=0.0, high=MAX_PER_CAPITA)
    outpatient = reader.number("outpatient_per_capita", low=0.0, high=MAX_PER_CAPITA)
    admission_rate = reader.number("admission_rate", low=MIN_ADMISSION_RATE, high=MAX_ADMISSION_RATE)
    severity = read_severity(reader.table("severity"))
    migrant_share = reader.number("migrant_share", low=0.0, high=1.0, high_open=True)
    destinations = _read_destinations(reader, county_id, migrant_share)
    adjacent = reader.string_list("adjacent")
    reader.finish()
    return County(id=county_id, name=name, prefecture=prefecture, province=province,
                  enrollees=enrollees, contribution_per_capita=contribution, reserves=reserves,
                  admin_per_capita=admin, outpatient_per_capita=outpatient,
                  admission_rate=admission_rate, severity=severity, migrant_share=migrant_share,
                  migrant_destinations=destinations, adjacent=tuple(adjacent))


def _read_destinations(reader: FieldReader, county_id: str, migrant_share: float):
    table = reader.table("migrant_destinations")
    weights = []
    for key in sorted(table.data):
        if not encodable(key):
            raise table.fail(key.encode("utf-8", "backslashreplace").decode("utf-8"),
                             "must be valid Unicode text (a lone surrogate, e.g. a \\ud800 escape)")
        if key == county_id:
            raise table.fail(key, "is the county itself; migrants live outside their county")
        weights.append((key, table.number(key, low=0.0)))
    table.finish()
    total = math.fsum(w for _, w in weights)
    if migrant_share > 0 and abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise reader.fail("migrant_destinations",
                          f"weights must sum to 1 (migrant_share is {migrant_share:g}), got {total:.9g}")
    if migrant_share == 0 and weights and abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise reader.fail("migrant_destinations",
                          f"weights must sum to 1 or be empty (migrant_share is 0), got {total:.9g}")
    return tuple(weights)


def _check_references(counties: list[County], source: str) -> None:
    """Cross-county checks: unique ids, known destinations, symmetric adjacency."""
    seen: set[str] = set()
    for county in counties:
        if county.id in seen:
            raise InputError(f'{source}: county "{county.id}": id appears more than once')
        seen.add(county.id)
    for county in counties:
        where = f'{source}: county "{county.id}"'
        for dest, _ in county.migrant_destinations:
            if dest != OUTSIDE and dest not in seen:
                raise InputError(f'{where}: migrant_destinations.{dest} is not a county id of this '
                                 f'instance (use "{OUTSIDE}" for care beyond the instance)')
        if len(set(county.adjacent)) != len(county.adjacent):
            raise InputError(f"{where}: adjacent lists a county more than once")
        for other in county.adjacent:
            if other == county.id:
                raise InputError(f"{where}: adjacent lists the county itself")
            if other not in seen:
                raise InputError(f'{where}: adjacent names "{other}", which is not a county id of this instance')
    by_id = {c.id: c for c in counties}
    for county in counties:
        for other in county.adjacent:
            if county.id not in by_id[other].adjacent:
                raise InputError(f'{source}: county "{county.id}": adjacent lists "{other}" but '
                                 f'county "{other}" does not list "{county.id}" (adjacency must be symmetric)')


def read_tail_index(reader: FieldReader) -> float:
    """A Pareto tail index in TAIL_INDEX_RANGE (> 2: finite variance)."""
    tail_index = reader.number("tail_index")
    low, high = TAIL_INDEX_RANGE
    if not low <= tail_index <= high:
        raise reader.fail("tail_index", f"must be in [{low:g}, {high:g}] (> 2 for a finite variance; "
                                        f"near 2 the lattice outgrows its limit), got {tail_index:g}")
    return tail_index


def read_severity(reader: FieldReader) -> Severity:
    """Parse and validate a severity table: ``{"dist", "mean", "cv"}``, plus
    ``threshold``, ``tail_index``, ``tail_probability`` for ``"spliced"``."""
    dist = reader.string("dist", choices=SEVERITY_FAMILIES)
    mean = reader.number("mean", low=SEVERITY_MEAN_RANGE[0], high=SEVERITY_MEAN_RANGE[1])
    cv = reader.number("cv", low=SEVERITY_CV_RANGE[0], high=SEVERITY_CV_RANGE[1])
    if dist != "spliced":
        reader.finish()
        return Severity(dist=dist, mean=mean, cv=cv)
    threshold = reader.number("threshold", low=0.0, low_open=True, high=MAX_THRESHOLD)
    tail_index = read_tail_index(reader)
    tail_probability = reader.number("tail_probability", low=0.0, high=1.0, low_open=True, high_open=True)
    reader.finish()
    body = Severity(dist="lognormal", mean=mean, cv=cv)
    if body.cdf(threshold) < MIN_BODY_MASS:
        lowest = body.quantile(MIN_BODY_MASS)
        raise reader.fail("threshold", f"must be >= {lowest:.6g} (the body lognormal's "
                                       f"{MIN_BODY_MASS:g} quantile), got {threshold:g}")
    return Severity(dist=dist, mean=mean, cv=cv, threshold=threshold, tail_index=tail_index,
                    tail_probability=tail_probability)
