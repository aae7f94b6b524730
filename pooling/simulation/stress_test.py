"""Monte Carlo stress test of a pooling plan (DESIGN §Monte Carlo stress test).

Each simulated year draws one systemic multiplier Theta shared by every pool,
then each pool's eligible cost Y_P by inverse CDF from its exact law given
Theta (never one draw per admission). Given Theta = t, Y_P is compound
Poisson; its quantile function is computed exactly (FFT lattice) at Theta
nodes spaced evenly in normal score over Theta's +-7 sd range, and
interpolated linearly in t between them. Reserves then evolve
A_t = A_(t-1) + R - K - r Y_t from A_0 = u x the members' reserves, u the
reserve share pricing committed (solvency.reserve_share) unless the caller
gives another, and the
report gives, per pool: deficit probability (year-1 result < 0), ruin
probability (A_t < 0 at any year end within the horizon) with Wilson 95%
intervals, the surplus distribution, realised VaR/CVaR of year-1 claims paid
with 95% intervals next to their exact values, and whether the ruin
probability met the spec's target 1 - level.

Random numbers: numpy PCG64 streams from SeedSequence([seed, STRESS_STREAM, i]),
Theta on i = 0 and pool k on i = k + 1; a fixed seed gives identical output.
The key keeps the stress test out of sample: no optimiser stream uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pooling.data.formats import FORMAT_FIELD, format_tag
from pooling.data.inputs import as_problem
from pooling.data.instance import Instance
from pooling.data.options import check_int
from pooling.data.plan import refuse_adjustment_fund, validate_contracts, validate_plan
from pooling.data.provenance import provenance
from pooling.data.scenarios import Scenario, scenario_instance
from pooling.data.spec import GROWTH_FIELDS, MAX_SCENARIOS, MAX_SEED, Spec
from pooling.data.stress import StressScenario
from pooling.economics.behaviour import Behaviour, behaviour_on, multipliers
from pooling.economics.pools import pool_model
from pooling.errors import InputError
from pooling.risk.claims import aggregate
from pooling.risk.measures import empirical_quantile_index
from pooling.risk.sampling import PoolYearSampler
from pooling.simulation.stresses import resolve, stressed_instance
from pooling.simulation.truth import changes_to_dict, exhaustion_probability, truth_scenario

STRESS_STREAM = 0x57E55
EXHAUSTION_DEFINITION = ("year-1 claims paid r x Y above the committed budget revenue + reserve_share x the "
                         "members' reserves - fixed costs (year-1 ruin); exhaustion_probability_promised under the "
                         "law the plan was priced on, exhaustion_probability_truth under the year-1 law the years "
                         "are drawn from, both exact (FFT lattice); ruin_probability_by_year[0] is its simulated "
                         "estimate")
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int) -> list[float]:
    """Wilson score 95% interval for a binomial proportion (sound at 0 and 1)."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    denom = 1.0 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / denom
    # At p = 0 or 1 the exact interval ends at p, but centre +- half rounds to
    # 1 ulp inside it (0.9999999999999999 for p = 1): keep the estimate inside.
    return [min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)]


def var_cvar_with_intervals(samples: np.ndarray, level: float) -> dict[str, Any]:
    """Empirical VaR/CVaR with 95% intervals: order statistics for VaR, the
    delta-method standard error std((X - VaR)+) / ((1 - level) sqrt(n)) for CVaR."""
    ordered = np.sort(samples)
    n = len(ordered)
    at = empirical_quantile_index(n, level)
    var = float(ordered[at])
    excess = np.maximum(ordered - var, 0.0)
    cvar = var + float(excess.mean()) / (1.0 - level)
    spread = Z95 * math.sqrt(n * level * (1 - level))
    # The order-statistic ranks bracket the estimate's own rank (for few
    # samples the rounding of level * n could leave it outside).
    lo = min(int(max(math.floor(level * n - spread) - 1, 0)), at)
    hi = max(int(min(math.ceil(level * n + spread) - 1, n - 1)), at)
    se = float(excess.std()) / ((1.0 - level) * math.sqrt(n))
    return {"var": var, "var_ci": [float(ordered[lo]), float(ordered[hi])],
            "cvar": cvar, "cvar_ci": [min(cvar - Z95 * se, cvar), max(cvar + Z95 * se, cvar)]}


@dataclass(frozen=True)
class PlanPool:
    counties: tuple[str, ...]
    rate: float
    contracts: tuple[str, ...] = ()
    """The contract options the pool takes (result.json's `contracts`): their
    places are in its network and their annual costs in its fixed costs, as priced."""


def plan_from_result(data: Any, instance: Instance, where: str = "result") -> list[PlanPool]:
    """Pools and rates from a result.json dict (or a `Result`)."""
    if hasattr(data, "to_dict"):
        data = data.to_dict()
    refuse_adjustment_fund(data, where, "`simulate`")
    if not isinstance(data, dict) or not isinstance(data.get("pools"), list):
        raise InputError(f"{where}: expected a result with a list of pools")
    if not data["pools"]:
        raise InputError(f"{where}: the result has no plan (status {data.get('status')!r}); "
                         f"nothing to simulate")
    pools = []
    for index, pool in enumerate(data["pools"]):
        if not isinstance(pool, dict) or "counties" not in pool or "rate" not in pool:
            raise InputError(f"{where}: pools[{index}] must have counties and rate")
        rate = pool["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise InputError(f"{where}: pools[{index}].rate must be a number in [0, 1], got {rate!r}")
        pools.append((pool["counties"], float(rate)))
    plan = validate_plan([p for p, _ in pools], instance, where)
    taken = validate_contracts(
        [{"pool": list(pool["counties"]), "option": option} for pool in data["pools"]
         for option in (pool.get("contracts") or [])], [list(p) for p in plan], instance, where)
    by_pool: dict[frozenset[str], list[str]] = {}
    for members, option in taken:
        by_pool.setdefault(members, []).append(option)
    return [PlanPool(tuple(sorted(members)), rate, tuple(sorted(by_pool.get(frozenset(members), ()))))
            for members, (_, rate) in zip(plan, pools)]


STRESS_INTERVALS = ("deficit_probability", "ruin_probability", "mean_surplus", "var", "cvar")
"""stress.json fields with a 95% interval (`_ci`), split into `_low`/`_high` columns by `to_frame`."""


@dataclass
class StressReport:
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_frame(self, instance: Instance | None = None):
        """One row per pool: counties (comma-separated ids; names too with an
        instance), rate, revenue, fixed costs, initial reserves, deficit and
        ruin probabilities, mean surplus, VaR and CVaR of year-1 claims paid
        (each with its 95% interval as `_low`/`_high`), the exact figures,
        `passed`, and `ruin_probability_year_T` for each year of the horizon.
        Needs pandas (``pip install 'pooling[report]'``)."""
        try:
            import pandas
        except ImportError:
            raise InputError("StressReport.to_frame() needs pandas, which is not installed: "
                             "pip install 'pooling[report]'") from None
        rows = []
        for pool in self.data.get("pools", []):
            counties = list(pool.get("counties", []))
            row: dict[str, Any] = {"counties": ",".join(counties)}
            if instance is not None:
                row["names"] = "; ".join(instance.county(c).name for c in counties)
            row.update(n_counties=len(counties), rate=pool.get("rate"), revenue=pool.get("revenue"),
                       fixed_costs=pool.get("fixed_costs"),
                       initial_reserves=pool.get("initial_reserves", pool.get("reserves_start")))
            for key in STRESS_INTERVALS:
                interval = pool.get(f"{key}_ci") or [None, None]
                row.update({key: pool.get(key), f"{key}_low": interval[0], f"{key}_high": interval[1]})
            row.update(exact_mean_surplus=pool.get("exact_mean_surplus"), exact_var=pool.get("exact_var"),
                       exact_cvar=pool.get("exact_cvar"), passed=pool.get("passed"))
            for year, value in enumerate(pool.get("ruin_probability_by_year", []), start=1):
                row[f"ruin_probability_year_{year}"] = value
            rows.append(row)
        return pandas.DataFrame(rows)

    def _repr_html_(self) -> str:
        import html
        data = self.data
        plan = data.get("plan", {})
        caption = (f"pooling stress test: {data.get('scenarios', 0):,} scenarios x {data.get('years')} years, "
                   f"stress {'+'.join(data.get('stress', [])) or 'none'}; ruin target "
                   f"{data.get('ruin_target', float('nan')):.4g}; plan "
                   f"{'passed' if plan.get('passed') else 'FAILED'}")
        head = "".join(f"<th>{h}</th>" for h in ("counties", "rate", "P(deficit)", "P(ruin)", "95% interval",
                                                   "mean surplus", "passed"))
        body = []
        for pool in data.get("pools", []):
            low, high = pool.get("ruin_probability_ci") or [math.nan, math.nan]
            body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in (
                html.escape(", ".join(pool.get("counties", []))), f"{pool.get('rate', math.nan):.4f}",
                f"{pool.get('deficit_probability', math.nan):.4f}", f"{pool.get('ruin_probability', math.nan):.4f}",
                f"[{low:.4f}, {high:.4f}]", f"{pool.get('mean_surplus', math.nan):,.0f}",
                "yes" if pool.get("passed") else "NO")) + "</tr>")
        return (f"<table><caption style=\"text-align:left\">{html.escape(caption)}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _quantiles(values: np.ndarray) -> dict[str, float]:
    probs = (0.01, 0.05, 0.5, 0.95, 0.99)
    q = np.quantile(values, probs)
    return {f"p{int(p * 100):02d}": float(v) for p, v in zip(probs, q)}


YEARS_RANGE = (1, 100)
"""simulation.years: the spec's and the CLI's range (pooling.data.spec reads it
with these bounds); memory and time grow with years x scenarios."""

SCENARIOS_RANGE = (100, MAX_SCENARIOS)
"""simulation.scenarios: fewer than 100 paths cannot estimate a 1% tail."""


def _stress_names(stress: Any) -> list[str]:
    """One scenario name or a list of them (a bare string is one name, not its letters)."""
    if isinstance(stress, str):
        return [stress]
    if stress is None:
        return []
    if isinstance(stress, (list, tuple)) and all(isinstance(name, str) for name in stress):
        return list(stress)
    raise InputError(f"simulate: stress must be a scenario name or a list of names, e.g. "
                     f"[\"epidemic\"], got {stress!r}")


def simulate(instance: Instance, spec: Spec, result: Any, *, years: int | None = None,
             scenarios: int | None = None, seed: int | None = None, stress: str | list[str] | tuple = (),
             reserve_share: float | None = None, truth: str | Scenario | None = None,
             progress: Callable[[float], None] | None = None) -> StressReport:
    """Stress-test a plan (a Result, a result.json dict) out of sample.

    Each pool starts from the share of its members' reserves that pricing
    committed (spec solvency.reserve_share), so the test checks the solvency
    the rates were priced for; `reserve_share` (0-1, e.g. 1.0 for all
    reserves) overrides it and stress.json records which was used. `instance`
    and `spec` may also be the paths of their files. `truth` (simulation.truth:
    a scenario name of the spec's [uncertainty] or inline `PATH=xS,...`) draws
    the years from that scenario instead of the instance the plan was priced
    on, and each pool reports the year-1 budget exhaustion probability promised
    against the truth's."""
    instance, spec = as_problem(instance, spec, "simulate")
    years = check_int("simulate: years", years if years is not None else spec.simulation.years, *YEARS_RANGE)
    scenarios = check_int("simulate: scenarios", scenarios if scenarios is not None else spec.simulation.scenarios,
                       *SCENARIOS_RANGE)
    seed = check_int("simulate: seed", seed if seed is not None else spec.simulation.seed, 0, MAX_SEED)
    stress = _stress_names(stress)
    if reserve_share is None:
        share, share_source = spec.solvency.reserve_share, "spec solvency.reserve_share (as priced)"
    elif isinstance(reserve_share, bool) or not isinstance(reserve_share, (int, float)) \
            or not 0.0 <= reserve_share <= 1.0:
        raise InputError(f"simulate: reserve_share must be a number in [0, 1], got {reserve_share!r}")
    else:
        share, share_source = float(reserve_share), "argument reserve_share"
    scenario = resolve(stress, spec.simulation.stress, spec.source)
    priced, truth_entry = instance, None
    if truth is not None:
        truth, origin = truth_scenario(truth, spec)
        instance = scenario_instance(priced, truth, where=f"--truth {truth.name!r}")
        truth_entry = {"scenario": truth.name, "from": origin, "changes": changes_to_dict(truth),
                       "exhaustion": EXHAUSTION_DEFINITION}
    plan = plan_from_result(result, instance)
    level = spec.solvency.level

    stressed = {t: stressed_instance(instance, scenario, t) for t in range(1, years + 1)}
    theta_cv = stressed[1].parameters.frequency_shock_cv
    theta_rng = np.random.default_rng(np.random.SeedSequence([seed, STRESS_STREAM, 0]))
    if theta_cv > 0:
        shape = 1.0 / theta_cv ** 2
        thetas = theta_rng.gamma(shape, 1.0 / shape, size=(years, scenarios))
    else:
        thetas = np.ones((years, scenarios))

    pools_out, any_ruin = [], np.zeros(scenarios, dtype=bool)
    for index, pool in enumerate(plan):
        members = frozenset(pool.counties)
        report, ruined = _simulate_pool(index, pool, members, stressed, scenario, thetas, seed, level, share,
                                        priced if truth_entry is not None else None)
        any_ruin |= ruined
        pools_out.append(report)
        if progress is not None:
            progress((index + 1) / len(plan))

    n_any = int(any_ruin.sum())
    data = {
        FORMAT_FIELD: format_tag("stress"),
        "scenarios": scenarios,
        "years": years,
        "seed": seed,
        "stress": list(stress),
        "stress_definition": scenario.to_dict(),
        "reserve_share": share,
        "reserve_share_source": share_source,
        "initial_reserves_rule": "initial_reserves = reserve_share x the members' reserves",
        "level": level,
        "ruin_target": 1.0 - level,
        "pools": pools_out,
        "plan": {"any_ruin_probability": n_any / scenarios,
                 "any_ruin_probability_ci": wilson_interval(n_any, scenarios),
                 "passed": all(p["passed"] for p in pools_out)},
        "method": "inverse CDF of exact conditional laws given a shared yearly Theta",
        "provenance": provenance(priced, spec, None, None) | {"seed": seed},
    }
    if truth_entry is not None:
        data["truth"] = truth_entry
    ignored = {name: getattr(spec.solvency, name) for name in GROWTH_FIELDS if getattr(spec.solvency, name) != 0.0}
    if ignored:   # said, not silent: the years are drawn at the instance's figures (docs/model.md)
        data["spec_growth_not_simulated"] = ignored
    return StressReport(data)


def _model_at_rate(instance: Instance, members, rate: float, contracts: tuple[str, ...] = ()):
    """The pool's claims model with its members' admissions at the plan's rate
    (induced utilisation, economics.behaviour; as observed without it) and
    its contracts' places in network."""
    return pool_model(instance, frozenset(members), contracts=[instance.contract(o) for o in contracts],
                      multipliers=multipliers(instance, members, rate))


def _contract_costs(instance: Instance, contracts: tuple[str, ...]) -> float:
    return math.fsum(instance.contract(o).annual_cost for o in contracts)


def _simulate_pool(index, pool, members, stressed, scenario: StressScenario, thetas, seed, level, share,
                   priced: Instance | None = None):
    """One pool's paths and report; with `priced` (the instance the plan was
    priced on, when the years are drawn from a --truth scenario) also the
    exact year-1 exhaustion probabilities, promised and true."""
    years, scenarios = thetas.shape
    first = stressed[1]
    counties = [first.county(c) for c in sorted(members)]
    revenue = math.fsum(c.revenue for c in counties)
    fixed = (first.parameters.fund_fixed_cost + math.fsum(c.per_capita_costs for c in counties)
             + _contract_costs(first, pool.contracts))
    reserves_total = math.fsum(c.reserves for c in counties)
    reserves0 = share * reserves_total
    rng = np.random.default_rng(np.random.SeedSequence([seed, STRESS_STREAM, index + 1]))
    uniforms = rng.random((years, scenarios))

    samplers: dict[float, PoolYearSampler] = {}
    reserves = np.full(scenarios, reserves0)
    ruined = np.zeros(scenarios, dtype=bool)
    ruin_by_year, first_claims, first_surplus = [], None, None
    for t in range(1, years + 1):
        key = scenario.frequency_in_year(t)
        if key not in samplers:
            samplers[key] = PoolYearSampler(_model_at_rate(stressed[t], members, pool.rate, pool.contracts))
        claims = pool.rate * scenario.severity_scale(t) * samplers[key].sample(thetas[t - 1], uniforms[t - 1])
        surplus = revenue - fixed - claims
        reserves = reserves + surplus
        ruined |= reserves < 0
        ruin_by_year.append(float(ruined.mean()))
        if t == 1:
            first_claims, first_surplus = claims, surplus

    deficits = int((first_surplus < 0).sum())
    n_ruin = int(ruined.sum())
    realised = var_cvar_with_intervals(first_claims, level)
    exact_model = _model_at_rate(stressed[1], members, pool.rate, pool.contracts)
    exact = aggregate(exact_model, level)
    scale = pool.rate * scenario.severity_scale(1)
    mean_se = float(first_surplus.std()) / math.sqrt(scenarios)
    ruin_probability = n_ruin / scenarios
    report = {
        "counties": list(pool.counties),
        "rate": pool.rate,
        "revenue": revenue,
        "fixed_costs": fixed,
        "initial_reserves": reserves0,
        "reserves_start": reserves0,
        "members_reserves": reserves_total,
        "deficit_probability": deficits / scenarios,
        "deficit_probability_ci": wilson_interval(deficits, scenarios),
        "ruin_probability": ruin_probability,
        "ruin_probability_ci": wilson_interval(n_ruin, scenarios),
        "ruin_probability_by_year": ruin_by_year,
        "mean_surplus": float(first_surplus.mean()),
        "mean_surplus_ci": [float(first_surplus.mean()) - Z95 * mean_se,
                            float(first_surplus.mean()) + Z95 * mean_se],
        "exact_mean_surplus": revenue - fixed - scale * exact.mean,
        "var": realised["var"], "var_ci": realised["var_ci"],
        "cvar": realised["cvar"], "cvar_ci": realised["cvar_ci"],
        "exact_var": scale * exact.var, "exact_cvar": scale * exact.cvar,
        "surplus_quantiles": _quantiles(first_surplus),
        "final_reserves_quantiles": _quantiles(reserves),
        "passed": ruin_probability <= 1.0 - level,
    }
    if pool.contracts:
        report["contracts"] = list(pool.contracts)
    if behaviour_on(first):
        report["admission_multiplier"] = Behaviour.of(first, members).admission_multiplier(pool.rate)
    if priced is not None:
        mine = [priced.county(c) for c in sorted(members)]
        budget = (math.fsum(c.revenue for c in mine) + share * math.fsum(c.reserves for c in mine)
                  - priced.parameters.fund_fixed_cost - math.fsum(c.per_capita_costs for c in mine)
                  - _contract_costs(priced, pool.contracts))
        promised = aggregate(_model_at_rate(priced, members, pool.rate, pool.contracts), level).law
        report["exhaustion_probability_promised"] = exhaustion_probability(promised, pool.rate, budget)
        report["exhaustion_probability_truth"] = exhaustion_probability(exact.law, scale,
                                                                        revenue - fixed + reserves0)
    return report, ruined
