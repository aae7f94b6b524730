"""Instance data model: counties, their funds and risk profiles (DESIGN §County data).

An instance file is JSON with top-level keys ``name``, ``year``, ``currency``,
``parameters``, ``counties`` (and an optional ``description``). Everything is
validated once, here; the rest of the package trusts an `Instance`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pooling.data.fields import FieldReader, describe
from pooling.errors import InputError
from pooling.risk.severity import MIN_BODY_MASS, SEVERITY_FAMILIES, Severity

OUTSIDE = "outside"
"""Reserved destination key: care delivered beyond the instance."""

WEIGHT_SUM_TOLERANCE = 1e-6
"""Destination weights must sum to 1 within this: JSON files round decimals
(six significant digits leave errors below 1e-6), a larger miss is a data error."""


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

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.counties)

    def county(self, county_id: str) -> County:
        return self._by_id[county_id]

    @property
    def _by_id(self) -> dict[str, County]:
        cache = self.__dict__.get("_index")
        if cache is None:
            cache = {c.id: c for c in self.counties}
            object.__setattr__(self, "_index", cache)
        return cache

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
        text = raw.decode("utf-8")
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
    year = top.integer("year")
    currency = top.string("currency")
    description = top.string("description", default="")
    parameters = _read_parameters(top.table("parameters"))
    raw_counties = top.raw("counties")
    if not isinstance(raw_counties, list) or not raw_counties:
        raise top.fail("counties", f"must be a non-empty list of counties, got {describe(raw_counties)}")
    top.finish()

    counties = [_read_county(item, source, index) for index, item in enumerate(raw_counties)]
    _check_references(counties, source)
    return Instance(name=name, year=year, currency=currency, description=description,
                    parameters=parameters, counties=tuple(counties), source=source, sha256=sha256)


def _read_parameters(reader: FieldReader) -> Parameters:
    params = Parameters(
        admin_fixed_per_fund=reader.number("admin_fixed_per_fund", low=0.0),
        out_of_network_factor=reader.number("out_of_network_factor", low=0.0, high=1.0),
        out_of_network_claim_share=reader.number("out_of_network_claim_share", low=0.0, high=1.0),
        migrant_admission_factor=reader.number("migrant_admission_factor", low=0.0, low_open=True),
        outside_severity=read_severity(reader.table("outside_severity")),
        frequency_shock_cv=reader.number("frequency_shock_cv", low=0.0, high=2.0),
    )
    reader.finish()
    return params


def _county_where(item: Any, source: str, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return f'{source}: county "{item["id"]}"'
    return f"{source}: county #{index + 1}"


def _read_county(item: Any, source: str, index: int) -> County:
    reader = FieldReader(item, _county_where(item, source, index))
    county_id = reader.string("id")
    name = reader.string("name")
    prefecture = reader.string("prefecture")
    province = reader.string("province") if reader.has("province") else None
    enrollees = reader.integer("enrollees", low=1)
    contribution = reader.number("contribution_per_capita", low=0.0)
    reserves = reader.number("reserves", low=0.0)
    admin = reader.number("admin_per_capita", low=0.0)
    outpatient = reader.number("outpatient_per_capita", low=0.0)
    admission_rate = reader.number("admission_rate", low=0.0, low_open=True)
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


def read_severity(reader: FieldReader) -> Severity:
    """Parse and validate a severity table: ``{"dist", "mean", "cv"}``, plus
    ``threshold``, ``tail_index``, ``tail_probability`` for ``"spliced"``."""
    dist = reader.string("dist", choices=SEVERITY_FAMILIES)
    mean = reader.number("mean", low=0.0, low_open=True)
    cv = reader.number("cv", low=0.0, low_open=True, high=20.0)
    if dist != "spliced":
        reader.finish()
        return Severity(dist=dist, mean=mean, cv=cv)
    threshold = reader.number("threshold", low=0.0, low_open=True)
    tail_index = reader.number("tail_index")
    if not tail_index > 2.0:
        raise reader.fail("tail_index", f"must be > 2 (finite variance), got {tail_index:g}")
    tail_probability = reader.number("tail_probability", low=0.0, high=1.0, low_open=True, high_open=True)
    reader.finish()
    body = Severity(dist="lognormal", mean=mean, cv=cv)
    if body.cdf(threshold) < MIN_BODY_MASS:
        lowest = body.quantile(MIN_BODY_MASS)
        raise reader.fail("threshold", f"must be >= {lowest:.6g} (the body lognormal's "
                                       f"{MIN_BODY_MASS:g} quantile), got {threshold:g}")
    return Severity(dist=dist, mean=mean, cv=cv, threshold=threshold, tail_index=tail_index,
                    tail_probability=tail_probability)
