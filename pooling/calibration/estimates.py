"""Trend, shock variance components and credible admission rates from a county panel.

Model (docs/model.md "Calibration"): county c in prefecture p, year t, with E
enrollees and A admissions, A ~ Poisson(E lambda_c (1 + g)^(t - Y) M_ct) and
M_ct = w_N Theta_N(t) + w_P Theta_P(p, t) + w_C Theta_C(c, t) (the instance's
shock model). On the log scale, u_ct = log((A + 1/2) / E) is
    u_ct = log lambda_c + log(1 + g)(t - Y) + N_t + P_pt + C_ct + e_ct,
with variances sigma_N^2, sigma_P^2, sigma_C^2 (each (w x cv)^2 to first order)
and Poisson noise Var e_ct ~ 1 / (A + 1/2). Everything below is the method of
moments on balanced two-way layouts (each expectation exact for the linear
model; intervals from chi-square and t laws), with scipy.stats for the
quantiles: no REML (statsmodels is not a dependency).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pooling.calibration.tables import Panel

LEVEL = 0.95
"""Every interval is a two-sided 95% interval (the issue's calibration.json)."""
ZERO_COUNT_OFFSET = 0.5
"""log((A + 1/2) / E): a county-year with no admission still has a log rate;
the offset biases log E[A] by about 1 / (2 E[A]), below 1e-3 from 500 admissions."""


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95% interval."""

    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Trend:
    """Annual growth g (a rate multiplies by 1 + g a year) fitted to the year
    effects; `log_slope` = log(1 + g), its standard error and the centre year."""

    growth: Interval
    log_slope: float
    slope_se: float
    centre_year: float
    year_effects: tuple[float, ...]


@dataclass(frozen=True)
class Components:
    """Variances of the multiplier's parts; None where the panel cannot tell
    them apart (one prefecture: prefecture joins national; no prefecture with
    two counties: county joins prefecture)."""

    national: Interval
    prefecture: Interval | None
    county: Interval | None
    degrees_of_freedom: dict[str, int]


@dataclass(frozen=True)
class CountyRate:
    admission_rate: Interval
    credibility: float
    log_se: float


def log_rates(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): log admission rates [county, year] and their Poisson variances."""
    admissions = np.asarray(panel.admissions, dtype=float)
    enrollees = np.asarray(panel.enrollees, dtype=float)
    return (np.log((admissions + ZERO_COUNT_OFFSET) / enrollees), 1.0 / (admissions + ZERO_COUNT_OFFSET))


def fit_trend(year_means: np.ndarray, years: tuple[int, ...]) -> Trend:
    """OLS of the year effects on the year: slope log(1 + g), a t interval with
    T - 2 degrees of freedom (the residuals hold every shock, so the interval
    counts them)."""
    t = np.asarray(years, dtype=float)
    centre = float(t.mean())
    x = t - centre
    sxx = float(x @ x)
    slope = float(x @ (year_means - year_means.mean())) / sxx
    residuals = year_means - year_means.mean() - slope * x
    dof = len(years) - 2
    se = math.sqrt(float(residuals @ residuals) / dof / sxx)
    q = float(stats.t.ppf(0.5 + LEVEL / 2, dof))
    growth = Interval(math.expm1(slope), math.expm1(slope - q * se), math.expm1(slope + q * se))
    return Trend(growth, slope, se, centre, tuple(float(y) for y in year_means))


def _double_residuals(table: np.ndarray) -> np.ndarray:
    """Residuals of a two-way layout (rows, columns) with row and column effects."""
    return table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True) + table.mean()


def _chi2_interval(sum_squares: float, known: float, dof: int) -> Interval:
    """sigma^2 from E[SS] = dof sigma^2 + known: the estimate and a chi-square
    interval for (SS / dof) with `known` subtracted, each clipped at 0."""
    low_q, high_q = stats.chi2.ppf([0.5 + LEVEL / 2, 0.5 - LEVEL / 2], dof)
    estimate = (sum_squares - known) / dof
    return Interval(max(estimate, 0.0), max(sum_squares / low_q - known / dof, 0.0),
                    max(sum_squares / high_q - known / dof, 0.0))


def prefecture_groups(panel: Panel) -> list[np.ndarray]:
    """Row indices of each prefecture's counties, prefectures in sorted order."""
    names = sorted({f.prefecture for f in panel.funds})
    return [np.array([i for i, f in enumerate(panel.funds) if f.prefecture == name]) for name in names]


def shock_components(u: np.ndarray, v: np.ndarray, groups: list[np.ndarray]) -> Components:
    """Method-of-moments variance components (module docstring), from the
    inside out: county (within prefecture-years), prefecture (between
    prefectures within years), national (around the trend line)."""
    counties, years = u.shape
    keep = (1.0 - 1.0 / years)
    rss_c = noise_c = 0.0
    dof_c = 0
    for rows in groups:
        if len(rows) < 2:
            continue
        rss_c += float(np.sum(_double_residuals(u[rows]) ** 2))
        noise_c += (1.0 - 1.0 / len(rows)) * keep * float(v[rows].sum())
        dof_c += (len(rows) - 1) * (years - 1)
    county = _chi2_interval(rss_c, noise_c, dof_c) if dof_c else None
    sigma_c = county.estimate if county else 0.0

    k = len(groups)
    means = np.array([u[rows].mean(axis=0) for rows in groups])
    cell_var = np.array([sigma_c / len(rows) + v[rows].sum(axis=0) / len(rows) ** 2 for rows in groups])
    dof_p = (k - 1) * (years - 1)
    prefecture = None
    if k >= 2:
        known = (1.0 - 1.0 / k) * keep * float(cell_var.sum())
        prefecture = _chi2_interval(float(np.sum(_double_residuals(means) ** 2)), known, dof_p)
    sigma_p = prefecture.estimate if prefecture else 0.0

    year_means = u.mean(axis=0)
    t = np.arange(years, dtype=float) - (years - 1) / 2.0
    leverage = 1.0 / years + t ** 2 / float(t @ t)
    shares = np.array([len(rows) / counties for rows in groups])
    other = sigma_p * float(shares @ shares) + sigma_c / counties + v.sum(axis=0) / counties ** 2
    residuals = year_means - year_means.mean() - t * float(t @ (year_means - year_means.mean())) / float(t @ t)
    national = _chi2_interval(float(residuals @ residuals), float((1.0 - leverage) @ other), years - 2)
    return Components(national, prefecture, county, {"national": years - 2, "prefecture": dof_p if k >= 2 else 0,
                                                      "county": dof_c})


def credible_rates(u: np.ndarray, v: np.ndarray, groups: list[np.ndarray], trend: Trend,
                   components: Components, years: tuple[int, ...], year: int) -> list[CountyRate]:
    """Each county's admission rate at `year` by Buhlmann-Straub credibility
    toward its prefecture (module docstring and docs/model.md), with a normal
    95% interval on the log scale."""
    counties, count = u.shape
    sigma = {name: (getattr(components, name).estimate if getattr(components, name) else 0.0)
             for name in ("national", "prefecture", "county")}
    total = sum(sigma.values())
    within = (sigma["county"] + v.mean(axis=1)) / count          # Var of a county's mean level, given the level
    deviation = np.zeros(counties)
    prefecture_level = np.zeros(counties)
    for rows in groups:
        level = u[rows].mean(axis=0).mean()
        prefecture_level[rows] = level
        deviation[rows] = u[rows].mean(axis=1) - level
    spread_dof = sum(len(rows) - 1 for rows in groups)
    between = 0.0
    if spread_dof:
        between = (sum(float(np.sum(deviation[rows] ** 2)) for rows in groups)
                   - sum((1.0 - 1.0 / len(rows)) * float(within[rows].sum()) for rows in groups)) / spread_dof
    between = max(between, 0.0)
    credibility = between / (between + within) if between > 0 else np.zeros(counties)
    q = float(stats.norm.ppf(0.5 + LEVEL / 2))
    horizon = year - trend.centre_year
    out = []
    for rows in groups:
        weights = credibility[rows]
        collective = float(weights @ deviation[rows] / weights.sum()) if weights.sum() > 0 else 0.0
        for i in rows:
            z = float(credibility[i])
            level = prefecture_level[i] + z * deviation[i] + (1.0 - z) * collective
            log_rate = level + trend.log_slope * horizon + total / 2.0    # E[M] = 1: log E = E log + var / 2
            shared = (sigma["national"] + sigma["prefecture"]) / count
            variance = (1.0 - z) * between + shared + (horizon * trend.slope_se) ** 2
            se = math.sqrt(variance)
            out.append((int(i), CountyRate(Interval(math.exp(log_rate), math.exp(log_rate - q * se),
                                                    math.exp(log_rate + q * se)), z, se)))
    return [rate for _, rate in sorted(out)]


@dataclass(frozen=True)
class CostLevels:
    """Cost per admission: its trend and each county's mean projected to the
    pricing year, and the cv of one admission's cost implied by the
    year-to-year scatter of the yearly means (the weaker, HISTORY-only cv)."""

    trend: Trend
    means: tuple[Interval, ...]
    history_cv: Interval


def cost_levels(panel: Panel, year: int) -> CostLevels:
    """Log cost per admission k_ct = log(cost / admissions), its year effects'
    trend, each county's level (mean over years, t interval with T - 1
    degrees of freedom from its own residuals) and the cv from
    E[A_ct r_ct^2] = (1 - 1/T)(1 - 1/n) cv^2 (r: two-way residuals of k)."""
    admissions = np.asarray(panel.admissions, dtype=float)
    cost = np.asarray(panel.inpatient_cost, dtype=float)
    if np.any(admissions <= 0) or np.any(cost <= 0):
        row = np.argwhere((admissions <= 0) | (cost <= 0))[0]
        fund = panel.funds[int(row[0])]
        raise ValueError(f"county {fund.id} year {panel.years[int(row[1])]}: no admission or no cost")
    k = np.log(cost / admissions)
    counties, count = k.shape
    trend = fit_trend(k.mean(axis=0), panel.years)
    residuals = _double_residuals(k)
    q = float(stats.t.ppf(0.5 + LEVEL / 2, count - 1))
    horizon = year - trend.centre_year
    means = []
    for c in range(counties):
        se = math.sqrt(float(residuals[c] @ residuals[c]) / (count - 1) / count + (horizon * trend.slope_se) ** 2)
        centre = float(k[c].mean()) + trend.log_slope * horizon
        means.append(Interval(math.exp(centre), math.exp(centre - q * se), math.exp(centre + q * se)))
    factor = (1.0 - 1.0 / count) * (1.0 - 1.0 / counties) if counties > 1 else (1.0 - 1.0 / count)
    dof = (counties - 1) * (count - 1) if counties > 1 else count - 1
    scaled = float(np.sum(admissions * residuals ** 2))
    low_q, high_q = stats.chi2.ppf([0.5 + LEVEL / 2, 0.5 - LEVEL / 2], dof)
    cv2 = scaled / (factor * counties * count)
    history_cv = Interval(math.sqrt(cv2), math.sqrt(cv2 * dof / low_q), math.sqrt(cv2 * dof / high_q))
    return CostLevels(trend, tuple(means), history_cv)
