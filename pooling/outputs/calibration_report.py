"""`pooling report DIR/calibration.json`: the calibration report (issue 24 item 6).

The estimates of `pooling calibrate` with their 95% intervals (trend, shock
variances, each county's admission rate, credibility and mean cost per
admission), fitted against observed admissions per county-year with the
residuals by year, and the severity fit (a QQ plot when the severity was
fitted to CLAIMS). Built as the result report is (`pooling.outputs.report`:
one list of blocks rendered as report.html and report.md, figures as PNG
beside the Markdown, every string escaped by the renderer), from a file read
through a validating reader (`pooling.data.calibration_inputs`).

A file is a calibration.json when its format tag says so
(``"format": "pooling.calibration/N"``, `is_calibration_file`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pooling.data.calibration_inputs import (
    SHOCK_PARTS,
    CalibrationRecord,
    IntervalRecord,
    read_calibration_record,
)
from pooling.data.formats import file_format
from pooling.data.instance import parse_json_bytes, read_file_bytes
from pooling.errors import InputError
from pooling.outputs.files import load_output_json
from pooling.outputs.report import MAX_TABLE_ROWS, Report, check_report_libraries

KIND = "calibration"
"""The format kind of calibration.json (data.formats)."""


def is_calibration_file(path: str | Path) -> bool:
    """Whether `path` is a JSON object tagged as a calibration.json. Anything
    unreadable or otherwise tagged is not (its own reader then says why)."""
    try:
        data = parse_json_bytes(read_file_bytes(Path(path), "result"), str(path))
        kind, _ = file_format(data, str(path), "result")
    except (InputError, OSError):
        return False
    return kind == KIND


def read_calibration_file(path: str | Path) -> CalibrationRecord:
    """A calibration.json written by `pooling calibrate`, validated (InputError naming the field)."""
    data = load_output_json(Path(path), KIND)
    return read_calibration_record(data, str(path))


def _g(value: float) -> str:
    return f"{value:.4g}"


def _interval_cells(item: IntervalRecord | None) -> list[str]:
    if item is None:
        return ["not identified", "-", "-"]
    return [_g(item.estimate), _g(item.low), _g(item.high)]


def build_calibration_report(path: str | Path) -> Report:
    """Read and check the file, then build the report (nothing is written)."""
    check_report_libraries()
    path = Path(path)
    record = read_calibration_file(path)
    tables = dict(record.tables)
    report = Report(title=f"Calibration report: {tables['history'] or path.name}")
    given = ", ".join(f"{name.upper()} {value}" for name, value in record.tables if value is not None)
    report.paragraph(
        f"From {path.name} (pooling calibrate): {len(record.counties)} counties, history {record.years[0]}-"
        f"{record.years[-1]} ({len(record.years)} years), projected to {record.pricing_year}; tables: "
        f"{given or '-'}. Every interval is a 95% interval.")
    report.items([f"Warning from calibrate: {w}" for w in record.warnings])
    _estimates_section(report, record)
    _counties_section(report, record)
    _fit_section(report, record)
    _severity_section(report, record)
    return report


def _estimates_section(report: Report, record: CalibrationRecord) -> None:
    report.heading("Estimates")
    rows = [["trend of admission rates (annual growth g)", *_interval_cells(record.admission_trend)],
            ["trend of cost per admission (annual growth)", *_interval_cells(record.cost_trend)]]
    dof = dict(record.degrees_of_freedom)
    for part in SHOCK_PARTS:
        rows.append([f"shock variance, {part} ((weight x cv)^2; {dof.get(part, '-')} degrees of freedom)",
                     *_interval_cells(record.shock_variance[part])])
    report.table(["quantity", "estimate", "95% low", "95% high"], rows,
                 note="A rate multiplies by 1 + g a year. A shock part is 'not identified' when the panel "
                      "cannot tell it apart (one prefecture, or no prefecture with two counties).")
    if record.mapping:
        report.paragraph(f"Shock weights and cvs in the instance: {record.mapping}.")


def _counties_section(report: Report, record: CalibrationRecord) -> None:
    report.heading("Counties")
    counties = list(record.counties)
    note = ""
    if len(counties) > MAX_TABLE_ROWS:
        counties = sorted(counties, key=lambda c: (c.credibility, c.id))[:MAX_TABLE_ROWS]
        note = f"The {MAX_TABLE_ROWS} counties of least credibility of {len(record.counties)} are shown."
    rows = []
    for c in counties:
        observed = sum(c.admissions)
        fitted = "-" if c.fitted is None else f"{sum(c.fitted):,.0f}"
        rows.append([c.id, c.name or "-", c.prefecture or "-", *_interval_cells(c.admission_rate),
                     f"{c.credibility:.3f}", *_interval_cells(c.severity_mean), f"{observed:,.0f}", fitted])
    report.table(["id", "name", "prefecture", f"admission rate {record.pricing_year}", "95% low", "95% high",
                  "credibility", "mean cost per admission", "95% low", "95% high", "observed admissions",
                  "fitted admissions"], rows,
                 note=(note + " " if note else "") + "Admission rates by Buhlmann-Straub credibility toward the "
                      "prefecture (credibility: the weight on the county's own history), projected along the "
                      "trend; admissions summed over the history's years.")


def _fit_section(report: Report, record: CalibrationRecord) -> None:
    from pooling.outputs.calibration_figures import Z95, fit_figure, log_residuals, shock_sd
    report.heading("Fitted against observed admissions")
    if any(c.fitted is None for c in record.counties):
        report.paragraph("This calibration.json has no fitted admissions (observed.fitted; written by an older "
                         "pooling): run pooling calibrate again to draw them.")
        return
    residuals = log_residuals(record)
    sd = shock_sd(record)
    within = float(np.mean(np.abs(residuals) <= Z95 * sd)) if sd > 0 else float("nan")
    year_means = residuals.mean(axis=0)
    report.paragraph(
        f"Fitted: each county's enrollees x its credible admission rate moved back along the trend, without the "
        f"year's shock; the residual log((observed + 1/2) / fitted) is then that year's shock multiplier (log "
        f"scale) plus Poisson noise. Over {residuals.size:,} county-years the residuals have mean "
        f"{residuals.mean():+.4f} and sd {residuals.std():.4f}, against {sd:.4f} for the fitted shocks alone; "
        + (f"{100 * within:.1f}% lie within +-1.96 sd of the fitted shocks. " if sd > 0 else "")
        + f"Yearly means range from {year_means.min():+.4f} to {year_means.max():+.4f}.")
    report.figure("calibration-fit", "Fitted against observed admissions",
                  "Left: observed against fitted admissions, one point per county-year, with the 45-degree line "
                  "(log axes; a year with no admission drawn at 1/2). Right: the residuals by year (points "
                  "spread sideways by county), their yearly mean and the band +-1.96 sd of the fitted shocks "
                  "(Poisson noise widens it for small counties).", fit_figure(record))
    rows = [[str(year), f"{float(m):+.4f}", f"{float(np.min(r)):+.4f}", f"{float(np.max(r)):+.4f}"]
            for year, m, r in zip(record.years, year_means, residuals.T)]
    report.table(["year", "mean residual", "lowest", "highest"], rows)


def _severity_section(report: Report, record: CalibrationRecord) -> None:
    from pooling.outputs.calibration_figures import qq_figure
    severity = record.severity
    report.heading("Severity")
    if not severity.from_claims:
        report.paragraph(f"Severity from HISTORY alone ({severity.source}): a {severity.family} law at each "
                         f"county's mean cost per admission, its cv from the year-to-year scatter of the yearly "
                         f"means. No claims were given, so there is no QQ plot.")
    else:
        report.paragraph(f"Fitted to {severity.claims:,} claims by maximum likelihood, each claim divided by its "
                         f"county-year's mean cost per admission; family chosen by AIC: {severity.family}.")
        if severity.aic:
            best = min(a for _, a in severity.aic)
            report.table(["family", "AIC", "AIC - best"],
                         [[name, f"{aic:.2f}", f"{aic - best:.2f}"] for name, aic in severity.aic])
    rows = [[name, *_interval_cells(value)] if isinstance(value, IntervalRecord) else [name, _g(value), "-", "-"]
            for name, value in severity.intervals]
    report.table(["severity parameter", "estimate", "95% low", "95% high"], rows)
    if severity.from_claims:
        if severity.qq_fitted is None:
            report.paragraph("This calibration.json has no claim quantiles (severity.qq; written by an older "
                             "pooling): run pooling calibrate again to draw the QQ plot.")
        else:
            report.figure("calibration-severity-qq", "Severity fit (QQ plot)",
                          f"The fitted {severity.family} law's quantiles (as priced: a clipped cv or tail index "
                          f"shows as a misfit) against the claims' empirical quantiles at "
                          f"{len(severity.qq_fitted)} probabilities, each claim divided by its county-year's mean "
                          f"cost; points on the line: a good fit.", qq_figure(record))

