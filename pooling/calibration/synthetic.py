"""Synthetic county panels drawn from a known instance: truth to check calibration against (issue 24 item 4).

`simulate_panel(instance, years, seed)` draws FUNDS, HISTORY and CLAIMS rows for
the `years` years before the instance's year Y from the instance's own model:
county c's admissions in year t are Poisson(E_c lambda_c (1 + g)^(t - Y) M_ct)
with M_ct = w_N Theta_N(t) + w_P Theta_P(p, t) + w_C Theta_C(c, t) drawn from the
instance's shock parts (Gamma, mean 1), and each admission's cost is the
county's severity scaled by (1 + g_cost)^(t - Y). Enrollees stay at the
instance's. The truth (`truth`) is in calibration.json's shape.

A year's total cost of A admissions is drawn exactly for gamma severities
(a Gamma of shape A k) and for A <= EXACT_SUM_LIMIT (admission by admission);
above it by the normal law with the sum's mean and variance (the sum's
skewness is the severity's over sqrt(A), below 0.1 for cv 1 lognormal claims).
CLAIMS holds a sample of `claims_per_year` admissions per county-year, drawn
independently of the total (a sample, as the issue allows).
"""

from __future__ import annotations

import numpy as np

from pooling.data.instance import Instance
from pooling.risk.severity import Severity

DEFAULT_ADMISSION_GROWTH = 0.06
"""Synthetic truth: admission rates grow 6% a year (Henan's counties grew 7-46%
a year in 2011-13, CALIBRATION.md; a moderate value keeps rates in range over
long panels)."""
DEFAULT_COST_GROWTH = 0.05
"""Synthetic truth: cost per admission grows 5% a year."""
DEFAULT_CURRENT_RATE = 0.5
"""FUNDS current_rate of synthetic counties: the sourced actual reimbursement
of ~47-55% around 2011 (issue 24, CALIBRATION.md)."""
EXACT_SUM_LIMIT = 2_000
"""Admissions up to which a year's total cost is summed claim by claim."""


def _shock(rng: np.random.Generator, cv: float, size) -> np.ndarray:
    if cv == 0.0:
        return np.ones(size)
    shape = 1.0 / cv ** 2
    return rng.gamma(shape, 1.0 / shape, size)


def _total_cost(rng: np.random.Generator, severity: Severity, admissions: int) -> float:
    if admissions == 0:
        return 0.0
    if severity.dist == "gamma":
        shape = 1.0 / severity.cv ** 2
        return float(rng.gamma(shape * admissions, severity.mean / shape))
    if admissions <= EXACT_SUM_LIMIT:
        return float(severity.sample(rng, admissions).sum())
    mean = severity.expected_value * admissions
    sd = (admissions * (severity.second_moment - severity.expected_value ** 2)) ** 0.5
    return float(max(rng.normal(mean, sd), 0.0))


def _scaled(severity: Severity, factor: float) -> Severity:
    if severity.dist != "spliced":
        return Severity(severity.dist, severity.mean * factor, severity.cv)
    return Severity("spliced", severity.mean * factor, severity.cv, threshold=severity.threshold * factor,
                    tail_index=severity.tail_index, tail_probability=severity.tail_probability)


def simulate_panel(instance: Instance, years: int, seed: int, admission_growth: float = DEFAULT_ADMISSION_GROWTH,
                   cost_growth: float = DEFAULT_COST_GROWTH, claims_per_year: int = 20,
                   current_rate: float | None = DEFAULT_CURRENT_RATE) -> dict:
    """{"funds", "history", "claims": lists of row dicts, "truth": dict}.
    Deterministic per (instance, years, seed, options)."""
    if years < 3:
        raise ValueError(f"history needs at least 3 years, got {years}")
    rng = np.random.default_rng(seed)
    params = instance.parameters
    national, prefecture, county = params.national_shock, params.prefecture_shock, params.county_shock
    prefectures = instance.prefectures
    span = list(range(instance.year - years, instance.year))
    theta_n = _shock(rng, national.cv, years)
    theta_p = _shock(rng, prefecture.cv, (len(prefectures), years))
    theta_c = _shock(rng, county.cv, (len(instance.counties), years))
    pref_index = {p: i for i, p in enumerate(prefectures)}
    funds, history, claims = [], [], []
    for c, fund in enumerate(instance.counties):
        row = {"id": fund.id, "name": fund.name, "prefecture": fund.prefecture,
               "province": fund.province or "P0", "enrollees": fund.enrollees,
               "contribution_per_capita": fund.contribution_per_capita, "reserves": fund.reserves,
               "admin_per_capita": fund.admin_per_capita, "outpatient_per_capita": fund.outpatient_per_capita,
               "migrant_share": fund.migrant_share}
        if current_rate is not None:
            row["current_rate"] = current_rate
        funds.append(row)
        p = pref_index[fund.prefecture]
        for k, year in enumerate(span):
            multiplier = (national.weight * theta_n[k] + prefecture.weight * theta_p[p, k]
                          + county.weight * theta_c[c, k])
            mean = fund.enrollees * fund.admission_rate * (1.0 + admission_growth) ** (year - instance.year) \
                * multiplier
            admissions = int(rng.poisson(mean))
            severity = _scaled(fund.severity, (1.0 + cost_growth) ** (year - instance.year))
            cost = _total_cost(rng, severity, admissions)
            history.append({"id": fund.id, "year": year, "enrollees": fund.enrollees, "admissions": admissions,
                            "inpatient_cost": round(cost, 2)})
            if admissions and claims_per_year:
                for value in severity.sample(rng, min(claims_per_year, admissions)):
                    claims.append({"id": fund.id, "year": year, "cost": round(float(value), 2)})
    truth = {
        "trend": {"admissions": admission_growth, "cost": cost_growth},
        "shock_variance": {"national": (national.weight * national.cv) ** 2,
                           "prefecture": (prefecture.weight * prefecture.cv) ** 2,
                           "county": (county.weight * county.cv) ** 2},
        "counties": {f.id: {"admission_rate": f.admission_rate, "severity_mean": f.severity.expected_value}
                     for f in instance.counties},
        "pricing_year": instance.year, "years": span,
    }
    return {"funds": funds, "history": history, "claims": claims, "truth": truth}
