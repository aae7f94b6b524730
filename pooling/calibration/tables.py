"""County panels read and validated: FUNDS, HISTORY and CLAIMS tables (issue 24).

A table comes from a CSV file (read with the standard library: no pandas
needed), a Parquet file (needs pyarrow, the `report` extra) or, through the
API, a pandas DataFrame (anything with ``columns`` and ``to_dict("records")``).
Every refusal is an InputError naming the table, the row (data rows counted
from 1; a CSV's line is the row + 1, after its header) and the column: a
missing or unknown column, text in a numeric column, a negative count, a
duplicate (id, year), a year with no enrollees, a county id that FUNDS does not
hold, a county without a year the others have.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pooling.data.reading import read_file_bytes
from pooling.errors import InputError

FUNDS_COLUMNS = ("id", "name", "prefecture", "province", "enrollees", "contribution_per_capita", "reserves",
                 "admin_per_capita", "outpatient_per_capita")
FUNDS_OPTIONAL = ("migrant_share", "current_rate")
HISTORY_COLUMNS = ("id", "year", "enrollees", "admissions", "inpatient_cost")
HISTORY_OPTIONAL = ("paid",)
CLAIMS_COLUMNS = ("id", "year", "cost")
TEXT_COLUMNS = frozenset({"id", "name", "prefecture", "province"})
INTEGER_COLUMNS = frozenset({"year", "enrollees", "admissions"})
SHARE_COLUMNS = frozenset({"migrant_share", "current_rate"})
MIN_YEARS = 3
"""A trend and a residual variance need at least 3 years (1 degree of freedom left)."""
MAX_COUNT = 2_000_000_000
"""Largest enrollees or admissions in one row (the instance's enrollee limit)."""
MAX_MONEY = 1e16
"""Largest money amount in one cell, CNY (the instance's limit)."""


@dataclass(frozen=True)
class Fund:
    """One FUNDS row: a county fund's finances as the instance holds them."""

    id: str
    name: str
    prefecture: str
    province: str
    enrollees: int
    contribution_per_capita: float
    reserves: float
    admin_per_capita: float
    outpatient_per_capita: float
    migrant_share: float | None
    current_rate: float | None


@dataclass(frozen=True)
class Panel:
    """Validated tables: funds in FUNDS order; per county, its history rows in
    year order (every county has the same years); claims (may be empty)."""

    funds: tuple[Fund, ...]
    years: tuple[int, ...]
    enrollees: tuple[tuple[int, ...], ...]
    """[county][year]."""
    admissions: tuple[tuple[int, ...], ...]
    inpatient_cost: tuple[tuple[float, ...], ...]
    paid: tuple[tuple[float, ...], ...] | None
    claims: tuple[tuple[str, int, float], ...]
    """(county id, year, cost) per claim row."""
    names: tuple[str, str, str | None]
    """How FUNDS, HISTORY and CLAIMS are named in messages (CLAIMS None: not given)."""


def _where(table: str, row: int, column: str) -> str:
    line = f" (line {row + 1})" if table.lower().endswith(".csv") else ""
    return f"{table}: row {row}{line}, column {column}"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{where}: must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            raise InputError(f"{where}: must be a number, got text {text[:40]!r}") from None
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: must be a finite number, got {value!r}")
    return number


def _cell(row: dict[str, Any], column: str, table: str, index: int, required: bool = True) -> Any:
    """One cell parsed by its column's kind; None when an optional cell is empty."""
    where = _where(table, index, column)
    value = row.get(column)
    if _is_missing(value):
        if required:
            raise InputError(f"{where}: is empty")
        return None
    if column in TEXT_COLUMNS:
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return str(int(value))      # a DataFrame's numeric ids (410101) are ids
        raise InputError(f"{where}: must be text, got {value!r}")
    number = _number(value, where)
    if column in INTEGER_COLUMNS:
        if not number.is_integer():
            raise InputError(f"{where}: must be a whole number, got {value!r}")
        if column != "year" and number < 0:
            raise InputError(f"{where}: must be a count >= 0, got {value!r}")
        if abs(number) > MAX_COUNT:
            raise InputError(f"{where}: must be at most {MAX_COUNT:,}, got {value!r}")
        return int(number)
    if number < 0:
        raise InputError(f"{where}: must be >= 0, got {value!r}")
    if column in SHARE_COLUMNS and number > 1:
        raise InputError(f"{where}: must be a share in [0, 1], got {value!r}")
    if number > MAX_MONEY:
        raise InputError(f"{where}: must be at most {MAX_MONEY:g}, got {value!r}")
    return number


def _check_columns(columns: list[str], table: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{table}: column {missing[0]} is missing (required: {', '.join(required)})")
    unknown = [c for c in columns if c not in required + optional]
    if unknown:
        raise InputError(f"{table}: column {unknown[0]!s} is not a known column (known: "
                         f"{', '.join(required + optional)})")
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InputError(f"{table}: column {column} appears twice")
        seen.add(column)


def read_rows(source: Any, what: str) -> tuple[list[str], list[dict[str, Any]], str]:
    """(columns, rows, name for messages) of a CSV or Parquet path, a DataFrame
    or a list of row dicts."""
    if hasattr(source, "columns") and hasattr(source, "to_dict"):
        name = f"{what} (DataFrame)"
        return [str(c) for c in source.columns], source.to_dict("records"), name
    if isinstance(source, list) and all(isinstance(row, dict) for row in source):
        columns = list(dict.fromkeys(key for row in source for key in row))
        return [str(c) for c in columns], source, f"{what} (rows)"
    if not isinstance(source, (str, Path)):
        raise InputError(f"{what}: expected a path to a CSV or Parquet file or a pandas DataFrame, "
                         f"got {type(source).__name__}")
    path = Path(source)
    raw = read_file_bytes(path, what)
    if path.suffix.lower() == ".parquet":
        return _parquet_rows(raw, str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        lines = list(reader)
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file ({exc})") from None
    if not lines:
        raise InputError(f"{path}: empty file (expected a header line of column names)")
    columns = [c.strip() for c in lines[0]]
    rows = []
    for number, line in enumerate(lines[1:], start=1):
        if not any(cell.strip() for cell in line):
            continue
        if len(line) != len(columns):
            raise InputError(f"{path}: row {number} (line {number + 1}) has {len(line)} cells, the header "
                             f"{len(columns)}")
        rows.append(dict(zip(columns, line)))
    return columns, rows, str(path)


def _parquet_rows(raw: bytes, name: str) -> tuple[list[str], list[dict[str, Any]], str]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{name}: reading Parquet needs pyarrow: pip install 'pooling[report]' "
                         f"(or give the table as CSV)") from None
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({exc})") from None
    return list(table.column_names), table.to_pylist(), name


def _funds(source: Any) -> tuple[tuple[Fund, ...], str]:
    columns, rows, name = read_rows(source, "FUNDS")
    _check_columns(columns, name, FUNDS_COLUMNS, FUNDS_OPTIONAL)
    if not rows:
        raise InputError(f"{name}: no rows (one per county fund expected)")
    funds, first = [], {}
    for index, row in enumerate(rows, start=1):
        cells = {c: _cell(row, c, name, index, c not in FUNDS_OPTIONAL) for c in FUNDS_COLUMNS + FUNDS_OPTIONAL}
        if cells["id"] in first:
            raise InputError(f"{_where(name, index, 'id')}: county {cells['id']} appears twice (rows "
                             f"{first[cells['id']]} and {index})")
        first[cells["id"]] = index
        if cells["enrollees"] < 1:
            raise InputError(f"{_where(name, index, 'enrollees')}: must be >= 1 (a fund with no enrollees)")
        funds.append(Fund(**cells))
    return tuple(funds), name


def read_panel(funds: Any, history: Any, claims: Any = None) -> Panel:
    """The three tables validated against each other (see the module docstring)."""
    fund_rows, funds_name = _funds(funds)
    ids = {f.id: i for i, f in enumerate(fund_rows)}
    columns, rows, history_name = read_rows(history, "HISTORY")
    _check_columns(columns, history_name, HISTORY_COLUMNS, HISTORY_OPTIONAL)
    has_paid = "paid" in columns
    cells: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
    for index, row in enumerate(rows, start=1):
        values = {c: _cell(row, c, history_name, index) for c in HISTORY_COLUMNS + (("paid",) if has_paid else ())}
        if values["id"] not in ids:
            raise InputError(f"{_where(history_name, index, 'id')}: county {values['id']} is not in {funds_name}")
        key = (values["id"], values["year"])
        if key in cells:
            raise InputError(f"{_where(history_name, index, 'year')}: county {key[0]} has year {key[1]} twice "
                             f"(rows {cells[key][0]} and {index})")
        if values["enrollees"] < 1:
            raise InputError(f"{_where(history_name, index, 'enrollees')}: a year with no enrollees (must be >= 1: "
                             f"an admission rate needs enrollees)")
        if values["admissions"] == 0 and values["inpatient_cost"] > 0:
            raise InputError(f"{_where(history_name, index, 'inpatient_cost')}: {values['inpatient_cost']:g} CNY of "
                             f"inpatient cost with 0 admissions")
        cells[key] = (index, values)
    years = sorted({year for _, year in cells})
    if len(years) < MIN_YEARS:
        raise InputError(f"{history_name}: {len(years)} year(s) of history; calibration needs at least {MIN_YEARS} "
                         f"(a trend and a residual variance)")
    if years != list(range(years[0], years[-1] + 1)):
        gap = next(y for y in range(years[0], years[-1]) if y not in years)
        raise InputError(f"{history_name}: no county has year {gap}; years must be consecutive")
    table: dict[str, list] = {"enrollees": [], "admissions": [], "inpatient_cost": [], "paid": []}
    for fund in fund_rows:
        for year in years:
            if (fund.id, year) not in cells:
                raise InputError(f"{history_name}: county {fund.id} has no row for year {year} (every county "
                                 f"of {funds_name} needs every year {years[0]}-{years[-1]})")
        for column in table:
            if column != "paid" or has_paid:
                table[column].append(tuple(cells[(fund.id, y)][1][column] for y in years))
    claim_rows: list[tuple[str, int, float]] = []
    claims_name = None
    if claims is not None:
        columns, rows, claims_name = read_rows(claims, "CLAIMS")
        _check_columns(columns, claims_name, CLAIMS_COLUMNS, ())
        for index, row in enumerate(rows, start=1):
            values = {c: _cell(row, c, claims_name, index) for c in CLAIMS_COLUMNS}
            if values["id"] not in ids:
                raise InputError(f"{_where(claims_name, index, 'id')}: county {values['id']} is not in {funds_name}")
            if values["year"] not in years:
                raise InputError(f"{_where(claims_name, index, 'year')}: year {values['year']} is not a year of "
                                 f"{history_name} ({years[0]}-{years[-1]})")
            if values["cost"] <= 0:
                raise InputError(f"{_where(claims_name, index, 'cost')}: an admission's cost must be > 0, got "
                                 f"{values['cost']:g}")
            claim_rows.append((values["id"], values["year"], values["cost"]))
    return Panel(funds=fund_rows, years=tuple(years), enrollees=tuple(table["enrollees"]),
                 admissions=tuple(table["admissions"]), inpatient_cost=tuple(table["inpatient_cost"]),
                 paid=tuple(table["paid"]) if has_paid else None, claims=tuple(claim_rows),
                 names=(funds_name, history_name, claims_name))
