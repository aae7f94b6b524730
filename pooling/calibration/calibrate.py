"""`pooling calibrate`: county panels to a calibrated instance and calibration.json (issue 24).

`calibrate(funds, history, claims=None, base=None, year=None)` takes CSV or
Parquet paths or pandas DataFrames (calibration.tables), estimates (estimates,
severity_fit) and returns a `Calibration`: the instance as file data (read
back by the instance reader before it is returned, so it is valid), the
calibration record with every estimate and its 95% interval, and the
predictive/robust spec fragment of item 3 (`uncertainty_toml`).

What the tables do not carry comes from `base` (an instance holding the same
county ids: parameters, places, contracts, adjacency, migrant destinations,
residents' care) or, without it, from documented defaults (DEFAULTS_NOTE).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pooling.calibration import estimates as est
from pooling.calibration.severity_fit import MIN_CLAIMS, fit_severity
from pooling.calibration.tables import Panel, read_panel
from pooling.data import generate as defaults
from pooling.data.formats import FORMAT_FIELD, format_tag
from pooling.data.geography import MAX_REGIONAL_WEIGHT
from pooling.data.instance import Instance, instance_from_dict
from pooling.data.instance_dict import instance_to_dict, severity_to_dict
from pooling.data.laws import MAX_SHOCK_CV, MIN_SHOCK_CV, OUTSIDE, SEVERITY_CV_RANGE
from pooling.errors import InputError
from pooling.risk.severity import Severity

CALIBRATION_FORMAT = format_tag("calibration")
SIGNIFICANT = 6
"""Digits kept in the instance's calibrated numbers (the file's decimals)."""
MIN_WEIGHT = 1e-6
"""A shock part whose share of the multiplier's sd is below this is written as
weight 0 (the instance refuses non-zero shares below 1e-9; 1e-6 keeps its cv in range)."""
QQ_PROBABILITIES = tuple(k / 100 for k in range(1, 100)) + (0.995, 0.999)
"""Probabilities at which calibration.json keeps the claims' empirical
quantiles beside the fitted law's (the report's QQ plot): percentiles and two
tail points, compact whatever the number of claims."""
MIN_CLAIMS_BEYOND = 5
"""A quantile p is kept only when at least this many claims lie beyond it
(n (1 - p) >= 5): further out the empirical quantile is one or two claims."""
DEFAULTS_NOTE = ("no --base: parameters are pooling.data.generate's (the real instances' assumed defaults, "
                 "instances/README.md), adjacency joins every pair of counties in a prefecture, migrants live "
                 "'outside', residents buy care at home")


@dataclass(frozen=True)
class Calibration:
    instance: dict[str, Any]
    record: dict[str, Any]
    warnings: tuple[str, ...]

    def uncertainty_toml(self, method: str = "predictive") -> str:
        return uncertainty_fragment(self.record, method)


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def shock_parameters(components: est.Components, base: Instance | None) -> tuple[dict, str]:
    """(parameters' frequency_shock_cv and regional_shocks, the convention used).
    Variances fix w x cv only. With a base whose weights give cvs within
    range, its weights are kept; otherwise weights are proportional to the
    parts' standard deviations, so the three multipliers share one cv
    (sigma_N + sigma_P + sigma_C)."""
    sd = {name: math.sqrt(part.estimate) if part else 0.0
          for name, part in (("national", components.national), ("prefecture", components.prefecture),
                             ("county", components.county))}
    if base is not None:
        p = base.parameters
        weights = {"national": p.national_shock.weight, "prefecture": p.prefecture_shock.weight,
                   "county": p.county_shock.weight}
        cvs = {k: (sd[k] / weights[k] if weights[k] > 0 else math.inf if sd[k] > 0 else 0.0) for k in sd}
        if all(cv <= MAX_SHOCK_CV for cv in cvs.values()):
            return _shock_dict(weights, sd), "base weights kept, cv = sd / weight"
    total = sum(sd.values())
    if total > MAX_SHOCK_CV:
        raise InputError(f"calibrate: the fitted shocks' standard deviations sum to {total:.3g}, above the "
                         f"instance's largest shock cv {MAX_SHOCK_CV:g}: the panel's year-to-year variation is "
                         f"beyond what the model prices (check the tables for a break in a series)")
    if total == 0.0:
        return _shock_dict({"national": 1.0, "prefecture": 0.0, "county": 0.0}, sd), \
            "no shock variance found: all cvs 0"
    weights = {k: (s / total if s / total >= MIN_WEIGHT else 0.0) for k, s in sd.items()}
    regional = weights["prefecture"] + weights["county"]
    if regional > MAX_REGIONAL_WEIGHT:
        weights = {k: (w * MAX_REGIONAL_WEIGHT / regional if k != "national" else 1.0 - MAX_REGIONAL_WEIGHT)
                   for k, w in weights.items()}
    return _shock_dict(weights, sd), "weights proportional to the parts' sd (one common cv)"


def _shock_dict(weights: dict, sd: dict) -> dict:
    """The parameters' fields: regional weights rounded first, the national
    weight what they leave, and each cv = sd / its written weight, so that
    (w x cv)^2 is the estimate to the cv's rounding."""
    regional = {k: _round(weights[k]) for k in ("prefecture", "county")}
    written = dict(regional, national=1.0 - regional["prefecture"] - regional["county"])
    cvs = {k: (_round(sd[k] / w) if w > 0 and sd[k] / w >= MIN_SHOCK_CV else 0.0) for k, w in written.items()}
    return {"frequency_shock_cv": cvs["national"],
            "regional_shocks": {k: {"weight": regional[k], "cv": cvs[k]} for k in regional}}


def _default_instance(panel: Panel, mean_cost: float) -> dict[str, Any]:
    """The skeleton of an instance without --base (DEFAULTS_NOTE)."""
    ratio = defaults.PREFECTURE_COST_PER_ADMISSION / defaults.COUNTY_COST_PER_ADMISSION
    return {
        FORMAT_FIELD: format_tag("instance"), "name": "calibrated", "year": 0, "currency": "CNY",
        "parameters": {
            "admin_fixed_per_fund": defaults.ADMIN_FIXED_PER_FUND, "admin_financing": defaults.ADMIN_FINANCING,
            "out_of_network_factor": defaults.PARAMETERS["out_of_network_factor"],
            "out_of_network_claim_share": defaults.PARAMETERS["out_of_network_claim_share"],
            "out_of_network_tiers": {t: dict(v) for t, v in defaults.OUT_OF_NETWORK_TIERS.items()},
            "migrant_admission_factor": defaults.PARAMETERS["migrant_admission_factor"],
            "outside_severity": {"dist": "lognormal", "mean": _round(mean_cost * ratio),
                                 "cv": defaults.SEVERITY_CV}},
        "counties": [{"id": f.id, "adjacent": sorted(g.id for g in panel.funds
                                                     if g.prefecture == f.prefecture and g.id != f.id)}
                     for f in panel.funds],
    }


def _base_counties(base_data: dict, panel: Panel, base: Instance) -> dict[str, dict]:
    by_id = {c["id"]: c for c in base_data["counties"]}
    funds = {f.id for f in panel.funds}
    missing = sorted(funds - set(by_id))
    extra = sorted(set(by_id) - funds)
    if missing or extra:
        which = f"county {missing[0]} of {panel.names[0]} is not in it" if missing else \
            f"its county {extra[0]} is not in {panel.names[0]}"
        raise InputError(f"{base.source}: --base must hold the same counties as {panel.names[0]}: {which}")
    return by_id


def _current_rate(panel: Panel, index: int) -> tuple[float | None, str | None]:
    fund = panel.funds[index]
    if fund.current_rate is not None:
        return fund.current_rate, "S"
    if panel.paid is None or panel.inpatient_cost[index][-1] <= 0:
        return None, None
    rate = panel.paid[index][-1] / panel.inpatient_cost[index][-1]
    if rate > 1.0:
        raise InputError(f"{panel.names[1]}: county {fund.id} year {panel.years[-1]}, column paid: "
                         f"{panel.paid[index][-1]:g} is more than its inpatient_cost")
    return rate, "D"


def calibrate(funds: Any, history: Any, claims: Any = None, base: Instance | None = None,
              year: int | None = None) -> Calibration:
    """See the module docstring. Raises InputError for bad tables (table, row, column)."""
    panel = read_panel(funds, history, claims)
    funds_name, history_name, claims_name = panel.names
    year = panel.years[-1] + 1 if year is None else int(year)
    if year <= panel.years[0]:
        raise InputError(f"calibrate: --year {year} must be after the history's first year {panel.years[0]}")
    u, v = est.log_rates(panel)
    groups = est.prefecture_groups(panel)
    trend = est.fit_trend(u.mean(axis=0), panel.years)
    components = est.shock_components(u, v, groups)
    rates = est.credible_rates(u, v, groups, trend, components, panel.years, year)
    try:
        costs = est.cost_levels(panel, year)
    except ValueError as exc:
        raise InputError(f"{history_name}: {exc}: a cost per admission needs both") from None
    warnings: list[str] = []
    fit = qq = None
    if claims_name is not None:
        if len(panel.claims) < MIN_CLAIMS:
            warnings.append(f"{claims_name}: {len(panel.claims)} claims, fewer than {MIN_CLAIMS}: severity "
                            f"shape from {history_name} alone")
        else:
            index = {f.id: i for i, f in enumerate(panel.funds)}
            mean_of = np.asarray(panel.inpatient_cost) / np.asarray(panel.admissions, dtype=float)
            normalised = np.array([cost / mean_of[index[cid], panel.years.index(y)] for cid, y, cost in panel.claims])
            fit = fit_severity(normalised)
            qq = severity_quantiles(normalised, fit.shape)
            warnings.extend(f"{claims_name}: {w}" for w in fit.warnings)

    params, convention = shock_parameters(components, base)
    mean_cost = float(np.mean([m.estimate for m in costs.means]))
    if base is not None:
        data = instance_to_dict(base)
        by_id = _base_counties(data, panel, base)
        data["name"] = f"{base.name}-calibrated"
    else:
        data = _default_instance(panel, mean_cost)
        by_id = {c["id"]: c for c in data["counties"]}
    data["year"] = year
    data["parameters"]["frequency_shock_cv"] = params["frequency_shock_cv"]
    data["parameters"]["regional_shocks"] = params["regional_shocks"]
    severity_source = "CLAIMS (ML fit)" if fit else "HISTORY (lognormal, cv from year-to-year scatter: weaker)"
    counties_out, current_sources = [], set()
    for i, fund in enumerate(panel.funds):
        county = by_id[fund.id]
        mean = costs.means[i].estimate
        severity = fit.for_mean(mean) if fit else est_lognormal(mean, costs.history_cv.estimate)
        county.update(name=fund.name, prefecture=fund.prefecture, province=fund.province,
                      enrollees=fund.enrollees, contribution_per_capita=fund.contribution_per_capita,
                      reserves=fund.reserves, admin_per_capita=fund.admin_per_capita,
                      outpatient_per_capita=fund.outpatient_per_capita,
                      admission_rate=_round(rates[i].admission_rate.estimate),
                      severity={k: (_round(x) if isinstance(x, float) else x)
                                for k, x in severity_to_dict(severity).items()})
        if fund.migrant_share is not None:
            county["migrant_share"] = fund.migrant_share
        county.setdefault("migrant_share", 0.0)
        if county["migrant_share"] > 0 and not county.get("migrant_destinations"):
            county["migrant_destinations"] = {OUTSIDE: 1.0}
        county.setdefault("migrant_destinations", {})
        rate, source = _current_rate(panel, i)
        if rate is not None:
            county["current_rate"] = _round(rate)
            current_sources.add(source)
        counties_out.append(county)
    data["counties"] = counties_out

    record = _record(panel, year, trend, costs, components, rates, fit, convention, warnings)
    record["observed"]["fitted"] = fitted_admissions(panel, rates, trend, year)
    if qq is not None:
        record["severity"]["qq"] = qq
    fields = {
        "counties.*.admission_rate": {"source": "D", "from": history_name,
                                      "method": "Buhlmann-Straub credibility toward the prefecture, trend-projected"},
        "counties.*.severity.mean": {"source": "D", "from": history_name,
                                     "method": "county cost per admission, trend-projected"},
        "counties.*.severity (shape)": {"source": "D", "from": claims_name if fit else history_name,
                                        "method": severity_source},
        "parameters.frequency_shock_cv": {"source": "D", "from": history_name,
                                          "method": f"variance components; {convention}"},
        "parameters.regional_shocks": {"source": "D", "from": history_name,
                                       "method": f"variance components; {convention}"},
        "counties.*.finances": {"source": "S", "from": funds_name},
    }
    if current_sources:
        fields["counties.*.current_rate"] = {"source": "/".join(sorted(current_sources)),
                                            "from": funds_name if "S" in current_sources else history_name}
    data["description"] = (f"Calibrated by pooling calibrate from {funds_name} and {history_name}"
                           f"{' and ' + claims_name if claims_name else ''}, years {panel.years[0]}-"
                           f"{panel.years[-1]}, projected to {year}"
                           f"{'; base ' + base.source if base is not None else '; ' + DEFAULTS_NOTE}.")
    data["provenance"] = {"calibration": {"fields": fields, "estimates": record}}
    try:
        instance_from_dict(json.loads(json.dumps(data)), source="calibrated instance")
    except InputError as exc:
        raise InputError(f"calibrate: the calibrated instance is not valid ({exc}); check the tables") from None
    return Calibration(instance=data, record=record, warnings=tuple(warnings))


def est_lognormal(mean: float, cv: float) -> Severity:
    """The HISTORY-only severity: lognormal at the county's mean, the pooled cv (within range)."""
    return Severity("lognormal", mean, min(max(cv, SEVERITY_CV_RANGE[0]), SEVERITY_CV_RANGE[1]))


def _record(panel, year, trend, costs, components, rates, fit, convention, warnings) -> dict[str, Any]:
    def part(interval):
        return interval.to_dict() if interval is not None else None

    severity: dict[str, Any]
    if fit:
        severity = {"source": "claims", "family": fit.family, "claims": fit.claims,
                    "shape": severity_to_dict(fit.for_mean(1.0)),
                    "fits": fit.fits,
                    "intervals": {k: (v.to_dict() if isinstance(v, est.Interval) else v)
                                  for k, v in fit.intervals.items()}}
    else:
        severity = {"source": "history (weaker: lognormal assumed)", "family": "lognormal",
                    "cv": costs.history_cv.to_dict()}
    return {
        "format": CALIBRATION_FORMAT,
        "tables": {"funds": panel.names[0], "history": panel.names[1], "claims": panel.names[2]},
        "years": [panel.years[0], panel.years[-1]], "pricing_year": year,
        "trend": {"admissions": trend.growth.to_dict(), "cost": costs.trend.growth.to_dict()},
        "shock_variance": {"national": part(components.national), "prefecture": part(components.prefecture),
                           "county": part(components.county),
                           "degrees_of_freedom": components.degrees_of_freedom, "mapping": convention},
        "counties": {f.id: {"name": f.name, "prefecture": f.prefecture,
                            "admission_rate": r.admission_rate.to_dict(), "credibility": r.credibility,
                            "severity_mean": m.to_dict()}
                     for f, r, m in zip(panel.funds, rates, costs.means)},
        "severity": severity,
        "observed": {"years": list(panel.years),
                     "admissions": {f.id: list(a) for f, a in zip(panel.funds, panel.admissions)},
                     "enrollees": {f.id: list(e) for f, e in zip(panel.funds, panel.enrollees)},
                     "year_effects": list(trend.year_effects)},
        "warnings": list(warnings),
    }


def fitted_admissions(panel: Panel, rates: list[est.CountyRate], trend: est.Trend,
                      year: int) -> dict[str, list[float]]:
    """Expected admissions per county-year under the fit, without that year's
    shock: enrollees x the county's credible rate at the pricing year moved
    back along the trend, E_ct lambda_c (1 + g)^(t - Y) (the report's fitted
    against observed; the residual log(A / fitted) is then the year's shock
    multiplier plus Poisson noise)."""
    out = {}
    for fund, enrollees, rate in zip(panel.funds, panel.enrollees, rates):
        out[fund.id] = [_round(e * rate.admission_rate.estimate * math.exp(trend.log_slope * (t - year)))
                        for e, t in zip(enrollees, panel.years)]
    return out


def severity_quantiles(normalised: np.ndarray, shape: Severity) -> dict[str, list[float]]:
    """The claims' empirical quantiles (each divided by its county-year's mean
    cost, as fitted) and the fitted law's at QQ_PROBABILITIES, the law as
    priced (a clipped cv or tail index shows as a misfit)."""
    probabilities = [p for p in QQ_PROBABILITIES if len(normalised) * (1.0 - p) >= MIN_CLAIMS_BEYOND]
    empirical = np.quantile(normalised, probabilities)
    return {"probabilities": probabilities, "empirical": [_round(float(x)) for x in empirical],
            "fitted": [_round(shape.quantile(p)) for p in probabilities]}


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


SQRT3 = math.sqrt(3.0)
"""Three points at mean and +-sqrt(3) sd with weights 2/3, 1/6, 1/6 match a
normal law's first five moments (Gauss-Hermite): the predictive mixture."""


def uncertainty_fragment(record: dict[str, Any], method: str = "predictive") -> str:
    """The spec's [uncertainty] table from the estimates' intervals: every
    county's admission rate moved together by its own log-scale sd (a county
    with a wide interval moves more), "predictive" at +-sqrt(3) sd with weights
    1/6 each (base 2/3), "robust" at its interval's high end."""
    q = 1.959963984540054
    lines = ["[uncertainty]", f'method = "{method}"']
    if method == "predictive":
        lines.append("base_weight = 0.6666666666666667")
        points = (("admission rates high", SQRT3, 1 / 6), ("admission rates low", -SQRT3, 1 / 6))
    elif method == "robust":
        points = (("admission rates high", q, None),)
    else:
        raise InputError(f"--uncertainty must be predictive or robust, got {method!r}")
    for name, z, weight in points:
        lines += ["", "[[uncertainty.scenarios]]", f"name = {_toml_string(name)}"]
        if weight is not None:
            lines.append(f"weight = {weight!r}")
        lines.append("[uncertainty.scenarios.set]")
        for county_id, item in record["counties"].items():
            if "." in county_id:
                raise InputError(f"calibrate --uncertainty: county id {county_id!r} holds a dot, which a "
                                 f"scenario path cannot address")
            rate = item["admission_rate"]
            sd = (math.log(rate["high"]) - math.log(rate["low"])) / (2 * q)
            value = _round(rate["estimate"] * math.exp(z * sd))
            lines.append(f"{_toml_string(f'counties.{county_id}.admission_rate')} = {value!r}")
    return "\n".join(lines) + "\n"
