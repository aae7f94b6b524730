"""Instance data model: counties, their funds and risk profiles (DESIGN §County data).

An instance file is JSON with top-level keys ``format`` (``"pooling.instance/3"``;
absent: version 1, data.formats), ``name``, ``year``, ``currency``,
``parameters``, ``counties`` (and optional ``description``, ``places``,
``contract_options``). Everything is validated once, here; the rest of the
package trusts an `Instance`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pooling.data.benefits import BenefitSchedule
from pooling.data.fields import FieldReader, describe, encodable, require_path
from pooling.data.formats import FORMAT_FIELD, format_tag, read_version
from pooling.data.geography import (  # noqa: F401  (re-exported: the instance's parts)
    ADMIN_FINANCING,
    DEFAULT_ADMIN_FINANCING,
    NO_SHOCK,
    TIERS,
    ContractOption,
    OutOfNetworkTerms,
    Place,
    ShockLevel,
    read_contract_options,
    read_places,
    read_regional_shocks,
    read_tiers,
)
from pooling.data.laws import (  # noqa: F401  (re-exported: readers and limits used across data)
    MAX_MONEY,
    MAX_SHOCK_CV,
    MIN_SHOCK_CV,
    OUTSIDE,
    read_severity,
    read_shock_cv,
    read_tail_index,
)
from pooling.data.reading import parse_json_bytes, read_file_bytes
from pooling.errors import FormatWarning, InputError
from pooling.risk.severity import Severity

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
MAX_ADMISSION_RATE = 5.0
"""Admissions per enrollee-year (actual: 0.02-0.3)."""
MIN_ADMISSION_RATE = 1e-6
"""At least one admission per million enrollee-years: below it a county has no
inpatient risk to pool (actual rates are 1e4 times larger)."""
MIGRANT_FACTOR_RANGE = (0.01, 10.0)
"""h: migrants' admission rate relative to residents'."""
YEAR_RANGE = (1900, 2200)
ELASTICITY_RANGE = (-3.0, 0.0)
"""parameters.utilisation_elasticity e, the elasticity of admissions with
respect to the out-of-pocket price 1 - r (CALIBRATION.md: -0.41 on NCMS
claims, -0.37 to -0.68 elsewhere). Positive values (dearer care, more
admissions) are refused: solvency is monotone in the rate only for e <= 0
(docs/model.md, Induced utilisation)."""
DEFAULT_ELASTICITY = 0.0
"""No behavioural response: files without the field keep their meaning."""
DEFAULT_OBSERVED_RATE = 0.5
"""parameters.observed_rate r0, the reimbursement rate at which admission rates
were observed, for counties without `current_rate`. Derived (D): the actual
inpatient reimbursement of NCMS was 46.9 % in 2011 (Meng et al., Lancet 2012)
and about 55 % in 2009 (MoH); 0.5 rounds between them (CALIBRATION.md)."""
ADMIN_FINANCING_V1 = "risk_fund"
"""parameters.admin_financing when a pooling.instance/1 file (any instance
without a format field) omits it: the fund paid the running costs until the
field existed, and docs/formats.md promised that files without it load as
before. From pooling.instance/2 the default is DEFAULT_ADMIN_FINANCING."""


@dataclass(frozen=True)
class Parameters:
    """Instance-wide parameters (DESIGN §County data, instance-level; §Care geography)."""

    admin_fixed_per_fund: float
    out_of_network_factor: float
    out_of_network_claim_share: float
    migrant_admission_factor: float
    outside_severity: Severity
    frequency_shock_cv: float
    tiers: tuple[tuple[str, OutOfNetworkTerms], ...] = ()
    """Every tier of TIERS with its terms (the scalar fields fill omitted tiers)."""
    prefecture_shock: ShockLevel = NO_SHOCK
    county_shock: ShockLevel = NO_SHOCK
    admin_financing: str = "risk_fund"
    utilisation_elasticity: float = DEFAULT_ELASTICITY
    """e: a county's admissions at rate r scale by ((1 - r) / (1 - r0))^e."""
    observed_rate: float = DEFAULT_OBSERVED_RATE
    """r0 of counties without `current_rate` (DEFAULT_OBSERVED_RATE)."""
    benefits: BenefitSchedule | None = None
    """What the fund pays per admission (data.benefits): set from the spec's
    [benefits] by `with_benefits`, never read from an instance file."""

    def terms(self, tier: str) -> OutOfNetworkTerms:
        for name, terms in self.tiers:
            if name == tier:
                return terms
        return OutOfNetworkTerms(self.out_of_network_claim_share, self.out_of_network_factor)

    @property
    def national_shock(self) -> ShockLevel:
        return ShockLevel(1.0 - self.prefecture_shock.weight - self.county_shock.weight,
                          self.frequency_shock_cv)

    @property
    def fund_fixed_cost(self) -> float:
        """F charged to a pool's fund: 0 when the county budget pays running costs."""
        return self.admin_fixed_per_fund if self.admin_financing == "risk_fund" else 0.0


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
    resident_care: tuple[tuple[str, float], ...] = ()
    """Where residents' admissions are bought (key: this or another county id,
    or a place id), weights summing to 1; empty = all at home."""
    admin_in_fund: bool = True
    """parameters.admin_financing == "risk_fund", copied here by the loader so
    every per-county cost is read in one place (`per_capita_costs`)."""
    name_en: str | None = None
    """Optional second name (the bundled files: `name` Chinese, `name_en` romanised)."""
    current_rate: float | None = None
    """The reimbursement rate the county runs today, in [0, 1] (optional): the
    "status quo as run" baseline prices the county alone at it."""

    @property
    def revenue(self) -> float:
        """R_c = N_c p_c."""
        return self.enrollees * self.contribution_per_capita

    @property
    def per_capita_costs(self) -> float:
        """Deterministic rate-independent cost the fund pays, (a_c + o_c) N_c (o_c N_c
        alone when the county budget pays running costs), without the fixed cost."""
        admin = self.admin_per_capita if self.admin_in_fund else 0.0
        return (admin + self.outpatient_per_capita) * self.enrollees

    @property
    def care_at_home(self) -> tuple[tuple[str, float], ...]:
        """resident_care, or all admissions at home when the file gives none."""
        return self.resident_care or ((self.id, 1.0),)


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
    places: tuple[Place, ...] = ()
    contract_options: tuple[ContractOption, ...] = ()
    provenance: dict[str, Any] | None = dataclasses.field(default=None, hash=False)
    """Optional record of where the data came from (`pooling calibrate` writes
    what it estimated from which table): JSON data, never read by the model."""

    def contract(self, option_id: str) -> ContractOption:
        return {o.id: o for o in self.contract_options}[option_id]

    def place(self, place_id: str) -> Place:
        return self._places_by_id[place_id]

    def has_place(self, place_id: str) -> bool:
        return place_id in self._places_by_id

    @property
    def _places_by_id(self) -> dict[str, Place]:
        cache = self.__dict__.get("_place_index")
        if cache is None:
            cache = {p.id: p for p in self.places}
            object.__setattr__(self, "_place_index", cache)
        return cache

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
        needed = sorted({k for c in counties for k, _ in c.migrant_destinations + c.care_at_home
                         if k != OUTSIDE and k not in keep and not self.has_place(k)})
        options = tuple(o for o in self.contract_options if o.origin & keep)
        return dataclasses.replace(self, counties=counties, contract_options=options,
                                   context=tuple(self.county(k) for k in needed))

    @property
    def total_enrollees(self) -> int:
        return sum(c.enrollees for c in self.counties)

    @property
    def prefectures(self) -> tuple[str, ...]:
        return tuple(sorted({c.prefecture for c in self.counties}))


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
    version = read_version(data, "instance", source)
    top = FieldReader(data, source)
    top.raw(FORMAT_FIELD, None)
    name = top.string("name")
    year = top.integer("year", low=YEAR_RANGE[0], high=YEAR_RANGE[1])
    currency = top.string("currency")
    description = top.string("description", default="")
    parameters = _read_parameters(top.table("parameters"), version)
    places = read_places(top.raw("places", []), source)
    raw_options = top.raw("contract_options", [])
    provenance = top.raw("provenance", None)
    if provenance is not None and not isinstance(provenance, dict):
        raise top.fail("provenance", f"must be an object (a record of sources), got {describe(provenance)}")
    raw_counties = top.raw("counties")
    if not isinstance(raw_counties, list) or not raw_counties:
        raise top.fail("counties", f"must be a non-empty list of counties, got {describe(raw_counties)}")
    top.finish()

    _check_unique_ids(raw_counties, source)
    counties = [_read_county(item, source, index, parameters.admin_financing == "risk_fund")
                for index, item in enumerate(raw_counties)]
    total = sum(c.enrollees for c in counties)
    if total > MAX_ENROLLEES:
        raise InputError(f"{source}: counties: enrollees must sum to at most {MAX_ENROLLEES} over the "
                         f"instance, got {total}")
    _check_references(counties, places, source)
    _check_observed_rates(counties, parameters, source)
    options = read_contract_options(raw_options, source, {c.id for c in counties},
                                     {p.id for p in places} | {c.id for c in counties}, version)
    return Instance(name=name, year=year, currency=currency, description=description,
                    parameters=parameters, counties=tuple(counties), source=source, sha256=sha256,
                    places=places, contract_options=options, provenance=provenance)


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


def _admin_financing(reader: FieldReader, version: int) -> str:
    """parameters.admin_financing, its default by the file's format version
    (data.formats.CHANGES): a version-1 file that omits it is read as written,
    with a FormatWarning saying how to ask for the current default."""
    if reader.has("admin_financing") or version >= 2:
        return reader.string("admin_financing", choices=ADMIN_FINANCING, default=DEFAULT_ADMIN_FINANCING)
    reader.raw("admin_financing", None)
    warnings.warn(f'{reader.where}: no "{FORMAT_FIELD}" field, so the file is read as {format_tag("instance", 1)}, '
                  f'where an absent {reader.path}admin_financing means "{ADMIN_FINANCING_V1}" (the fund pays the '
                  f'running costs F and a_c); since {format_tag("instance", 2)} it means "{DEFAULT_ADMIN_FINANCING}". '
                  f'Add "admin_financing": "{ADMIN_FINANCING_V1}" to keep this reading without this warning, or '
                  f'"{FORMAT_FIELD}": "{format_tag("instance")}" for the current one', FormatWarning, stacklevel=4)
    return ADMIN_FINANCING_V1


def _read_parameters(reader: FieldReader, version: int) -> Parameters:
    tiers = read_tiers(reader)
    prefecture_shock, county_shock = read_regional_shocks(reader)
    params = Parameters(
        admin_fixed_per_fund=reader.number("admin_fixed_per_fund", low=0.0, high=MAX_MONEY),
        out_of_network_factor=reader.share("out_of_network_factor"),
        out_of_network_claim_share=reader.share("out_of_network_claim_share"),
        migrant_admission_factor=reader.number("migrant_admission_factor", low=MIGRANT_FACTOR_RANGE[0],
                                               high=MIGRANT_FACTOR_RANGE[1]),
        outside_severity=read_severity(reader.table("outside_severity")),
        frequency_shock_cv=read_shock_cv(reader, "frequency_shock_cv"),
        tiers=tiers, prefecture_shock=prefecture_shock, county_shock=county_shock,
        admin_financing=_admin_financing(reader, version),
        utilisation_elasticity=reader.number("utilisation_elasticity", low=ELASTICITY_RANGE[0],
                                             high=ELASTICITY_RANGE[1], default=DEFAULT_ELASTICITY),
        observed_rate=reader.share("observed_rate", high_open=True, default=DEFAULT_OBSERVED_RATE),
    )
    reader.finish()
    return params


def _county_where(item: Any, source: str, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        shown = item["id"].encode("utf-8", "backslashreplace").decode("utf-8")
        return f'{source}: county "{shown}"'
    return f"{source}: county #{index + 1}"


def _read_county(item: Any, source: str, index: int, admin_in_fund: bool = True) -> County:
    reader = FieldReader(item, _county_where(item, source, index))
    county_id = reader.string("id")
    name = reader.string("name")
    name_en = reader.string("name_en") if reader.has("name_en") else None
    prefecture = reader.string("prefecture")
    province = reader.string("province") if reader.has("province") else None
    enrollees = reader.integer("enrollees", low=1, high=MAX_ENROLLEES)
    contribution = reader.number("contribution_per_capita", low=0.0, high=MAX_PER_CAPITA)
    reserves = reader.number("reserves", low=0.0, high=MAX_MONEY)
    admin = reader.number("admin_per_capita", low=0.0, high=MAX_PER_CAPITA)
    outpatient = reader.number("outpatient_per_capita", low=0.0, high=MAX_PER_CAPITA)
    admission_rate = reader.number("admission_rate", low=MIN_ADMISSION_RATE, high=MAX_ADMISSION_RATE)
    severity = read_severity(reader.table("severity"))
    migrant_share = reader.share("migrant_share", high_open=True)
    destinations = _read_destinations(reader, county_id, migrant_share)
    resident_care = _read_weights(reader, "resident_care") if reader.has("resident_care") else ()
    adjacent = reader.string_list("adjacent")
    current_rate = reader.share("current_rate", default=None)
    reader.finish()
    return County(id=county_id, name=name, prefecture=prefecture, province=province,
                  enrollees=enrollees, contribution_per_capita=contribution, reserves=reserves,
                  admin_per_capita=admin, outpatient_per_capita=outpatient,
                  admission_rate=admission_rate, severity=severity, migrant_share=migrant_share,
                  migrant_destinations=destinations, adjacent=tuple(adjacent),
                  resident_care=resident_care, admin_in_fund=admin_in_fund, name_en=name_en,
                  current_rate=current_rate)


def _read_weights(reader: FieldReader, key: str) -> tuple[tuple[str, float], ...]:
    """A table of non-negative weights summing to 1 (resident_care)."""
    table = reader.table(key)
    weights = []
    for name in sorted(table.data):
        if not encodable(name):
            raise table.fail(name.encode("utf-8", "backslashreplace").decode("utf-8"),
                             "must be valid Unicode text (a lone surrogate, e.g. a \\ud800 escape)")
        weights.append((name, table.share(name, high=None)))
    table.finish()
    total = math.fsum(w for _, w in weights)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise reader.fail(key, f"weights must sum to 1, got {total:.9g}")
    return tuple(weights)


def _read_destinations(reader: FieldReader, county_id: str, migrant_share: float):
    table = reader.table("migrant_destinations")
    weights = []
    for key in sorted(table.data):
        if not encodable(key):
            raise table.fail(key.encode("utf-8", "backslashreplace").decode("utf-8"),
                             "must be valid Unicode text (a lone surrogate, e.g. a \\ud800 escape)")
        if key == county_id:
            raise table.fail(key, "is the county itself; migrants live outside their county")
        weights.append((key, table.share(key, high=None)))
    table.finish()
    total = math.fsum(w for _, w in weights)
    if migrant_share > 0 and abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise reader.fail("migrant_destinations",
                          f"weights must sum to 1 (migrant_share is {migrant_share:g}), got {total:.9g}")
    if migrant_share == 0 and weights and abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise reader.fail("migrant_destinations",
                          f"weights must sum to 1 or be empty (migrant_share is 0), got {total:.9g}")
    return tuple(weights)


def _check_observed_rates(counties: list[County], params: Parameters, source: str) -> None:
    """With a behavioural response, a county's r0 (its current_rate) must be
    below 1: the multiplier ((1 - r) / (1 - r0))^e divides by 1 - r0."""
    if params.utilisation_elasticity == 0.0:
        return
    for county in counties:
        if county.current_rate is not None and county.current_rate >= 1.0:
            raise InputError(f'{source}: county "{county.id}": current_rate is 1, the rate admissions were '
                             f"observed at; with parameters.utilisation_elasticity "
                             f"{params.utilisation_elasticity:g} it must be below 1 (admissions scale by "
                             f"((1 - r) / (1 - current_rate))^e)")


def _check_references(counties: list[County], places: tuple[Place, ...], source: str) -> None:
    """Cross-county checks: unique ids, known destinations and places of care, symmetric adjacency."""
    seen: set[str] = set()
    for county in counties:
        if county.id in seen:
            raise InputError(f'{source}: county "{county.id}": id appears more than once')
        seen.add(county.id)
    place_ids = {p.id for p in places}
    clash = sorted(place_ids & seen)
    if clash:
        raise InputError(f'{source}: place "{clash[0]}": id is also a county id; place ids must differ '
                         f"from county ids (a county of the file is its own place of care)")
    for county in counties:
        where = f'{source}: county "{county.id}"'
        for dest, _ in county.migrant_destinations:
            if dest != OUTSIDE and dest not in seen and dest not in place_ids:
                raise InputError(f'{where}: migrant_destinations.{dest} is not a county or place id of this '
                                 f'instance (use "{OUTSIDE}" for care beyond the instance)')
        for key, _ in county.resident_care:
            if key not in seen and key not in place_ids:
                raise InputError(f'{where}: resident_care.{key} is not a county or place id of this instance')
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

