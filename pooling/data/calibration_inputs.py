"""calibration.json (written by `pooling calibrate`) read back for `pooling
report`, as one frozen record holding what the calibration report shows.

The file is data: every field the report uses is checked (type, range, the
length of each county's yearly series, intervals that hold their estimate,
the same county ids in `counties` and `observed`), and anything else is an
`InputError` naming the file, the field's path (``counties.X.credibility``)
and the value found, which the CLI turns into exit 2. Fields the report does
not show are not read. `observed.fitted` and `severity.qq` are optional
(files written before they existed lack them): the report then says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pooling.data.fields import FieldReader, describe
from pooling.data.instance import MAX_ENROLLEES
from pooling.data.report_inputs import MAX_REPORTED_MONEY

MAX_YEAR = 10_000
"""Years (of the history and the pricing year) are read in [0, MAX_YEAR]."""
MAX_ADMISSIONS = 5 * MAX_ENROLLEES
"""Admissions of a county-year: at most 5 per enrollee (the instance's admission_rate bound)."""
MAX_ESTIMATE = MAX_REPORTED_MONEY
"""Largest magnitude of any estimate or interval end (a growth rate, a
variance, a cost per admission): far beyond any figure calibrate writes, and
far from float overflow in the report's figures."""
SHOCK_PARTS = ("national", "prefecture", "county")


@dataclass(frozen=True)
class IntervalRecord:
    """An estimate with its 95% interval, low <= estimate <= high."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class CalibratedCounty:
    """One county of calibration.json: its estimates and its panel."""

    id: str
    name: str | None
    prefecture: str | None
    admission_rate: IntervalRecord
    credibility: float
    severity_mean: IntervalRecord
    admissions: tuple[float, ...]
    enrollees: tuple[float, ...]
    fitted: tuple[float, ...] | None


@dataclass(frozen=True)
class SeverityRecord:
    """calibration.json `severity`: the family and where it came from, its
    intervals (name -> interval, or a number such as the splice quantile), each
    family's AIC when fitted to claims, and the QQ points when the file has them."""

    source: str
    family: str
    from_claims: bool
    claims: int | None
    intervals: tuple[tuple[str, IntervalRecord | float], ...]
    aic: tuple[tuple[str, float], ...]
    qq_probabilities: tuple[float, ...] | None
    qq_empirical: tuple[float, ...] | None
    qq_fitted: tuple[float, ...] | None


@dataclass(frozen=True)
class CalibrationRecord:
    """What the calibration report shows of a calibration.json."""

    source: str
    tables: tuple[tuple[str, str | None], ...]
    years: tuple[int, ...]
    pricing_year: int
    admission_trend: IntervalRecord
    cost_trend: IntervalRecord
    shock_variance: dict[str, IntervalRecord | None]
    degrees_of_freedom: tuple[tuple[str, int], ...]
    mapping: str
    counties: tuple[CalibratedCounty, ...]
    severity: SeverityRecord
    warnings: tuple[str, ...]


def _interval(reader: FieldReader, key: str, *, low: float = -MAX_ESTIMATE) -> IntervalRecord:
    """An ``{"estimate", "low", "high"}`` object with low <= estimate <= high, each >= `low`."""
    table = reader.table(key)
    values = [table.number(k, low=low, high=MAX_ESTIMATE) for k in ("estimate", "low", "high")]
    estimate, lo, hi = values
    if not lo <= estimate <= hi:
        raise reader.fail(key, f"must be an interval holding its estimate (low <= estimate <= high), got "
                               f"estimate {estimate:g}, low {lo:g}, high {hi:g}")
    return IntervalRecord(estimate, lo, hi)


def _optional_text(reader: FieldReader, key: str) -> str | None:
    if reader.raw(key, None) is None:
        return None
    return reader.string(key)


def _series(reader: FieldReader, key: str, length: int, *, low: float, high: float,
            low_open: bool = False) -> tuple[float, ...]:
    """A list of `length` numbers in [low, high] (low excluded when `low_open`)."""
    value = reader.raw(key)
    if not isinstance(value, list):
        raise reader.fail(key, f"must be a list of numbers, got {describe(value)}")
    if len(value) != length:
        raise reader.fail(key, f"must hold {length} numbers (one a year), got {len(value)}")
    items = FieldReader({f"{key}[{i}]": v for i, v in enumerate(value)}, reader.where, reader.path)
    return tuple(items.number(f"{key}[{i}]", low=low, high=high, low_open=low_open) for i in range(length))


def _by_county(reader: FieldReader, key: str, ids: list[str]) -> FieldReader:
    """An object keyed by county id holding exactly the ids of `counties`."""
    table = reader.table(key)
    keys = list(table.data)
    missing = [i for i in ids if i not in table.data]
    if missing:
        raise table.fail(missing[0], "is missing (every county of `counties` needs its series)")
    extra = [k for k in keys if k not in set(ids)]
    if extra:
        raise table.fail(extra[0], "is not a county of `counties`")
    return table


def read_calibration_record(data: Any, source: str) -> CalibrationRecord:
    """The report's view of a calibration.json's content (module docstring)."""
    top = FieldReader(data, source, what="a calibration.json object written by `pooling calibrate`")
    first, last = _series(top, "years", 2, low=0, high=MAX_YEAR)
    if first != int(first) or last != int(last) or last < first:
        raise top.fail("years", f"must be [first, last], whole years with first <= last, got [{first:g}, {last:g}]")
    pricing_year = top.integer("pricing_year", low=0, high=MAX_YEAR)
    tables_reader = top.table("tables")
    tables = tuple((name, _optional_text(tables_reader, name)) for name in ("funds", "history", "claims"))
    trend = top.table("trend")
    shocks = top.table("shock_variance")
    variance = {part: (None if shocks.raw(part, None) is None else _interval(shocks, part, low=0.0))
                for part in SHOCK_PARTS}
    dof = shocks.table("degrees_of_freedom")
    degrees = tuple((part, dof.integer(part, low=0, high=MAX_ADMISSIONS)) for part in SHOCK_PARTS
                    if dof.has(part))
    observed = top.table("observed")
    year_values = observed.raw("years")
    count = int(last - first) + 1
    years = tuple(int(y) for y in _series(observed, "years", count, low=first, high=last))
    if list(years) != list(range(int(first), int(last) + 1)):
        raise observed.fail("years", f"must be the years {int(first)} to {int(last)} in order, got "
                                     f"{describe(year_values)}")
    counties_reader = top.table("counties")
    ids = list(counties_reader.data)
    if not ids:
        raise top.fail("counties", "must hold at least one county, got an empty object")
    admissions = _by_county(observed, "admissions", ids)
    enrollees = _by_county(observed, "enrollees", ids)
    fitted = _by_county(observed, "fitted", ids) if observed.raw("fitted", None) is not None else None
    counties = []
    for county_id in ids:
        item = counties_reader.table(county_id)
        counties.append(CalibratedCounty(
            id=county_id, name=_optional_text(item, "name"), prefecture=_optional_text(item, "prefecture"),
            admission_rate=_interval(item, "admission_rate", low=0.0),
            credibility=item.number("credibility", low=0.0, high=1.0),
            severity_mean=_interval(item, "severity_mean", low=0.0),
            admissions=_series(admissions, county_id, count, low=0.0, high=MAX_ADMISSIONS),
            enrollees=_series(enrollees, county_id, count, low=0.0, high=MAX_ENROLLEES, low_open=True),
            fitted=None if fitted is None else _series(fitted, county_id, count, low=0.0, high=MAX_ADMISSIONS,
                                                       low_open=True)))
    warnings = top.raw("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise top.fail("warnings", f"must be a list of strings, got {describe(warnings)}")
    return CalibrationRecord(
        source=source, tables=tables, years=years, pricing_year=pricing_year,
        admission_trend=_interval(trend, "admissions", low=-1.0), cost_trend=_interval(trend, "cost", low=-1.0),
        shock_variance=variance, degrees_of_freedom=degrees, mapping=_optional_text(shocks, "mapping") or "",
        counties=tuple(counties), severity=_severity(top.table("severity")), warnings=tuple(warnings))


def _severity(table: FieldReader) -> SeverityRecord:
    source = table.string("source")
    family = table.string("family")
    from_claims = source == "claims"
    intervals: list[tuple[str, IntervalRecord | float]] = []
    aic: list[tuple[str, float]] = []
    claims = None
    if from_claims:
        claims = table.integer("claims", low=1, high=MAX_ADMISSIONS)
        found = table.table("intervals")
        for name, value in found.data.items():
            intervals.append((name, _interval(found, name) if isinstance(value, dict)
                              else found.number(name, low=-MAX_ESTIMATE, high=MAX_ESTIMATE)))
        fits = table.table("fits")
        for name in fits.data:
            aic.append((name, fits.table(name).number("aic", low=-MAX_ESTIMATE, high=MAX_ESTIMATE)))
    else:
        intervals.append(("cv", _interval(table, "cv", low=0.0)))
    probabilities = empirical = fitted = None
    if table.raw("qq", None) is not None:
        qq = table.table("qq")
        raw = qq.raw("probabilities")
        length = len(raw) if isinstance(raw, list) else -1
        if length < 1:
            raise qq.fail("probabilities", f"must be a non-empty list of numbers, got {describe(raw)}")
        probabilities = _series(qq, "probabilities", length, low=0.0, high=1.0, low_open=True)
        if any(p >= 1.0 for p in probabilities) or list(probabilities) != sorted(set(probabilities)):
            raise qq.fail("probabilities", "must be increasing, each below 1")
        empirical = _series(qq, "empirical", length, low=0.0, high=MAX_ESTIMATE, low_open=True)
        fitted = _series(qq, "fitted", length, low=0.0, high=MAX_ESTIMATE, low_open=True)
    return SeverityRecord(source=source, family=family, from_claims=from_claims, claims=claims,
                          intervals=tuple(intervals), aic=tuple(aic), qq_probabilities=probabilities,
                          qq_empirical=empirical, qq_fitted=fitted)
