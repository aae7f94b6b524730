"""Figures of the calibration report (matplotlib Figure objects, Agg, drawn
under `PLAIN_FIGURE_TEXT` like every report figure): observed against fitted
admissions per county-year with the 45-degree line, the residuals by year,
and the severity fit as a QQ plot. They take the validated
`pooling.data.calibration_inputs.CalibrationRecord`.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from pooling.data.calibration_inputs import CalibrationRecord
from pooling.outputs.figures import plain_text

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: a two-sided 95% band."""
ZERO_COUNT_OFFSET = 0.5
"""Residuals are log((A + 1/2) / fitted), the calibration's log scale
(calibration.estimates): a county-year with no admission still has one."""
POINT, YEAR_MEAN, BAND = "#3b6ea8", "#b2182b", "#7f7f7f"


def _plain_log_axes(ax) -> None:
    """Log axes labelled as plain numbers (the default labels are mathtext,
    which PLAIN_FIGURE_TEXT would draw as written)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())


def log_residuals(record: CalibrationRecord) -> np.ndarray:
    """[county, year] log((A + 1/2) / fitted): the year's shock multiplier
    (log scale) plus Poisson noise. Needs `observed.fitted`."""
    observed = np.array([c.admissions for c in record.counties], dtype=float)
    fitted = np.array([c.fitted for c in record.counties], dtype=float)
    return np.log((observed + ZERO_COUNT_OFFSET) / fitted)


def shock_sd(record: CalibrationRecord) -> float:
    """The fitted multiplier's sd on the log scale: sqrt of the three variances' sum (unidentified parts 0)."""
    return math.sqrt(sum(v.estimate for v in record.shock_variance.values() if v is not None))


@plain_text
def fit_figure(record: CalibrationRecord) -> Figure:
    """Left: observed against fitted admissions, one point per county-year,
    log axes, the 45-degree line. Right: residuals by year, every county's
    point, the year's mean (the national shock, roughly) and the band
    +-1.96 sd of the fitted shocks."""
    observed = np.array([c.admissions for c in record.counties], dtype=float)
    fitted = np.array([c.fitted for c in record.counties], dtype=float)
    residuals = log_residuals(record)
    years = np.array(record.years, dtype=float)
    fig = Figure(figsize=(11, 4.4))
    left, right = fig.subplots(1, 2)
    shown = np.maximum(observed, ZERO_COUNT_OFFSET)
    left.scatter(fitted.ravel(), shown.ravel(), s=12, color=POINT, alpha=0.7, linewidths=0)
    low = float(min(fitted.min(), shown.min())) * 0.8
    high = float(max(fitted.max(), shown.max())) * 1.25
    left.plot([low, high], [low, high], color="#222222", linewidth=1, label="observed = fitted")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlim(low, high)
    left.set_ylim(low, high)
    _plain_log_axes(left)
    left.set_xlabel("fitted admissions (no year shock)")
    left.set_ylabel("observed admissions")
    left.grid(alpha=0.3, which="both")
    left.legend(fontsize=8, loc="upper left")
    left.set_title("Observed against fitted, per county-year", fontsize=10)
    counties = residuals.shape[0]
    spread = np.linspace(-0.18, 0.18, counties) if counties > 1 else np.zeros(1)
    for row in range(counties):
        right.scatter(years + spread[row], residuals[row], s=10, color=POINT, alpha=0.6, linewidths=0)
    right.plot(years, residuals.mean(axis=0), color=YEAR_MEAN, marker="o", linewidth=1.4,
               label="mean over counties")
    sd = shock_sd(record)
    right.axhline(0.0, color="#222222", linewidth=1)
    for sign in (-1.0, 1.0):
        right.axhline(sign * Z95 * sd, color=BAND, linestyle="--", linewidth=1,
                      label="+-1.96 sd of the fitted shocks" if sign > 0 else None)
    right.set_xticks(record.years if len(record.years) <= 15 else record.years[::max(1, len(record.years) // 10)])
    right.set_xlabel("year")
    right.set_ylabel("log(observed / fitted)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    right.set_title("Residuals by year", fontsize=10)
    fig.tight_layout()
    return fig


@plain_text
def qq_figure(record: CalibrationRecord) -> Figure:
    """The fitted severity's quantiles against the claims' (each claim divided
    by its county-year's mean cost), log axes, with the 45-degree line."""
    severity = record.severity
    fitted = np.array(severity.qq_fitted, dtype=float)
    empirical = np.array(severity.qq_empirical, dtype=float)
    fig = Figure(figsize=(5.6, 5.0))
    ax = fig.subplots()
    probabilities = severity.qq_probabilities
    ax.scatter(fitted, empirical, s=14, color=POINT, linewidths=0,
               label=f"quantiles at {100 * probabilities[0]:g}%-{100 * probabilities[-1]:g}%")
    low = float(min(fitted.min(), empirical.min())) * 0.8
    high = float(max(fitted.max(), empirical.max())) * 1.25
    ax.plot([low, high], [low, high], color="#222222", linewidth=1, label="fitted = empirical")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    _plain_log_axes(ax)
    ax.set_xlabel(f"fitted {severity.family} quantile")
    ax.set_ylabel("claims' empirical quantile")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("Severity fit (claim / county-year mean cost)", fontsize=10)
    fig.tight_layout()
    return fig
