"""Tables for pandas: one row per county of a plan, each county's rate alone,
and pool frames written beside the JSON (``--format csv|parquet``).

pandas (and pyarrow for parquet) are optional: the extra ``pooling[report]``.
They are imported on first use, so the rest of the package never needs them.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from pooling.data.instance import Instance
from pooling.data.spec import Spec, spec_from_dict
from pooling.errors import InputError
from pooling.outputs.escaping import escape_spreadsheet_cell

REPORT_EXTRA = "pip install 'pooling[report]'"
FORMATS = ("csv", "parquet")

COUNTY_COLUMNS = ("id", "name", "prefecture", "province", "enrollees", "pool", "rate", "effective_rate",
                  "resident_effective_rate", "migrant_effective_rate", "migrant_in_network_share",
                  "rate_alone", "change")
"""Columns of `county_frame`; `rate_alone` and `change` only when the rates alone are given;
the effective rates from the pools' `county_care` (NaN when a result has none)."""


def pandas_module(what: str):
    """pandas, or an InputError naming the extra to install."""
    try:
        import pandas
    except ImportError:
        raise InputError(f"{what} needs pandas, which is not installed: {REPORT_EXTRA}") from None
    return pandas


def check_format(fmt: str | None) -> None:
    """Before any work: the libraries a --format needs are installed."""
    if fmt is None:
        return
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    pandas_module(f"--format {fmt}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError(f"--format parquet needs pyarrow, which is not installed: {REPORT_EXTRA}") from None


def write_frame(frame, path: Path, fmt: str) -> Path:
    """Write a frame atomically as CSV (UTF-8, no index) or parquet; returns the path.
    CSV is opened in spreadsheets: a text cell that would start a formula (a
    county name such as ``=HYPERLINK(...)``) is written with a leading
    apostrophe (`escape_spreadsheet_cell`); parquet keeps every value as it is."""
    from pooling.outputs.files import write_bytes_atomic, write_text_atomic
    check_format(fmt)
    path = Path(path)
    if fmt == "csv":
        write_text_atomic(path, spreadsheet_safe(frame).to_csv(index=False, lineterminator="\n"))
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_bytes_atomic(path, buffer.getvalue())
    return path


def spreadsheet_safe(frame):
    """A copy of `frame` whose text cells cannot start a spreadsheet formula."""
    from pandas.api.types import is_numeric_dtype
    safe = frame.copy()
    for column in safe.columns:
        if not is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(escape_spreadsheet_cell)
    return safe


def spec_from_result(data: dict[str, Any], source: str = "result.json") -> Spec:
    """The spec a result.json was solved under, rebuilt from its resolved
    `spec` (defaults filled in; a resolved spec loads back as itself)."""
    resolved = data.get("spec") if isinstance(data, dict) else None
    if not isinstance(resolved, dict):
        raise InputError(f"{source}: has no `spec` object: not a result.json written by `pooling solve`")
    return spec_from_dict(resolved, source=f"{source} (spec)")


def price_alone(instance: Instance, spec: Spec, ids=None) -> dict[str, float]:
    """Each county's maximum solvent rate on its own under `spec` (the status
    quo of separate county funds), floored at 0 and capped at rates.max as
    pricing does, under the spec's settlement rules and benefit schedule as a
    solve prices them; `ids` restricts it to some counties. Under a
    [benefits] menu, the highest over the menu's schedules (a county alone
    would take its best)."""
    from pooling.data.inputs import as_problem
    from pooling.economics.pools import PoolPricer
    instance, spec = as_problem(instance, spec, "solve")   # solve's pricing, a menu's schedules included
    pricers = [PoolPricer(instance, member) for _, member in spec.schedule_specs()]
    return {cid: max(0.0, *(pricer.price([cid]).max_rate for pricer in pricers)) for cid in (ids or instance.ids)}


def _plan_of(result: Any) -> list[tuple[str, list[str], float]]:
    """(pool id, counties, rate) of a Result, Evaluation or their JSON."""
    if isinstance(result, dict):
        return [(p["id"], list(p["counties"]), p["rate"]) for p in result.get("pools", [])]
    return [(p.id, list(p.pricing.counties), p.rate) for p in result.pools]


def _care_of(result: Any) -> dict[str, Any]:
    """Each county's CountyCare from a result's pools (JSON or objects)."""
    from pooling.optimise.result import care_from_rows
    if isinstance(result, dict):
        return {care.county: care for p in result.get("pools", [])
                for care in care_from_rows(p.get("county_care", []), f"pool {p.get('id')}")}
    return {c.county: c for p in result.pools for c in p.pricing.care}


def _county_shares(care, rate: float) -> dict[str, float]:
    from pooling.economics.care import portability
    if care is None:
        return dict.fromkeys(COUNTY_COLUMNS[7:11], math.nan)
    shares = portability([(care, rate)])
    # A county's effective rate is over its care at billed prices (contracted care at
    # its contract's price); coverage's list-price yardstick is the plan's, not a county's.
    value = {"effective_rate": shares["mean_effective_rate"], **{k: shares[k] for k in COUNTY_COLUMNS[8:11]}}
    return {k: math.nan if v is None else v for k, v in value.items()}


def county_frame(result: Any, instance: Instance, rates_alone: dict[str, float] | None = None):
    """One row per county of the instance: id, name, prefecture, province,
    enrollees, its pool's id and rate (empty for a county the plan does not
    cover, e.g. a block of a partial result with no plan), and with
    `rates_alone` (see `price_alone()`) its rate alone and the change."""
    pandas = pandas_module("county_frame()")
    pool_of = {cid: (pid, rate) for pid, counties, rate in _plan_of(result) for cid in counties}
    care = _care_of(result)
    rows = []
    for county in instance.counties:
        pid, rate = pool_of.get(county.id, (None, math.nan))
        row = {"id": county.id, "name": county.name, "prefecture": county.prefecture,
               "province": county.province, "enrollees": county.enrollees, "pool": pid, "rate": rate,
               **_county_shares(care.get(county.id), rate)}
        if rates_alone is not None:
            alone = rates_alone.get(county.id, math.nan)
            row.update(rate_alone=alone, change=rate - alone)
        rows.append(row)
    columns = [c for c in COUNTY_COLUMNS if rates_alone is not None or c not in ("rate_alone", "change")]
    return pandas.DataFrame(rows, columns=columns)


def welfare_frame(result: Any):
    """One row per group of a plan's welfare records (economics.welfare.RECORD_FIELDS;
    the spec's [welfare]): a Result, Evaluation or their JSON. None when the
    result has no records (its spec had no [welfare])."""
    from pooling.economics.welfare import RECORD_FIELDS
    records = result.get("welfare") if isinstance(result, dict) else result.welfare
    if records is None:
        return None
    pandas = pandas_module("welfare_frame()")
    return pandas.DataFrame([{f: (math.nan if w.get(f) is None else w.get(f)) for f in RECORD_FIELDS}
                             for w in records], columns=list(RECORD_FIELDS))
