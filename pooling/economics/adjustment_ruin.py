"""Adjustment funds under the multi-year ruin measure (issue 27 item 2;
docs/model.md, "Multi-year ruin", "Adjustment funds").

Year t = 1..H of a group sharing an adjustment fund, on each simulated path:

- member i starts with A_i,0 = u A_i (the committed share of its reserves,
  as the one-year budget counts it), the fund with F_0 = 0 (the one-year
  fund has no reserves of its own);
- member i's revenue and fixed costs are R_i,t = R_i (1 + g_R)^t and K_i,t =
  K_i (1 + g_R)^t; it pays c R_i,t into the fund and its claims r_i Y_i,t, so
  before the fund it holds X_i,t = A_i,t-1 + R_i,t - K_i,t - c R_i,t - r_i Y_i,t;
- its deficit beyond its retention, D_i,t = (-X_i,t - rho R_i,t)+, is the
  fund's to pay; the fund's means are F_t-1 + c sum R_i,t; it pays in full
  when the demand S_t = sum D_i,t is within them and pro rata otherwise;
- what each keeps carries: A_i,t = X_i,t + paid_i,t, F_t = means - paid.

Ruin: member i is ruined in year t when A_i,t < 0 (its reserves after the
fund's payment); the fund when S_t > its means (paying every deficit in full
would take its reserves below 0). At H = 1 these are the one-year model's
VaR events: a member with retention rho > 0 is ruined exactly when r_i Y_i >
B_i - c R_i, the fund when S > F, so the rates agree with the one-year
adjustment-fund pricing under "var" within the Monte Carlo interval (tests).
With retention 0 a member is ruined only when the fund falls short. With
c = 0 there is no fund and each member is ruined alone, A_i,t < 0: priced
as the unified ruin measure prices a pool of one, on its draws (`alone`),
so a group at c = 0 gets exactly its members' rates alone (to the
bisection's tolerance) and a plan is never below no pooling by Monte Carlo
noise. The solvency rule: the fund and
every member each ruined with frequency at most 1 - level within H years.

What is exact and what is Monte Carlo: each Y_i,t is drawn from its exact
law given the year's common shocks (Theta_N, and Theta_P of its prefecture:
member i's main streams scaled by m_i = w_N Theta_N + w_P Theta_P, its own
county part mixed in, the trend applied as in risk.ruin), by interpolated
conditional quantiles (risk.sampling, nodes over m's range); the ruin
frequencies are Monte Carlo over `simulation.scenarios` paths. A critical
rate per path need not exist (the pro-rata payment couples the members), so
a group's rates are found by bisection (economics.adjustment_fund) on these
frequencies with common random numbers: every rate tried sees the same paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import county_streams
from pooling.economics.pools import pool_model, solvency_trend
from pooling.risk.compound import ClaimStream, CompoundModel, merge_streams, scaled_admissions
from pooling.risk.ruin import critical_rates, pool_key, yearly_costs
from pooling.risk.sampling import THETA_NODE_SCORES, PoolYearSampler

ADJUSTMENT_STREAM = 0xAD1F5
"""Random-number stream of the adjustment-fund ruin paths (distinct from the
unified solve's and the stress test's)."""
COUNT_SLACK = 1e-9
"""Added to (1 - level) x scenarios before the floor that gives the number of
ruined paths allowed, so that 0.01 x 10,000 is 100 and not 99 by rounding
(the same rule as risk.ruin)."""


@dataclass(frozen=True)
class GroupRuin:
    """Ruin frequencies within the horizon at given rates: the fund's and each member's (ids sorted)."""

    fund: float
    members: tuple[float, ...]


def _gamma(rng: np.random.Generator, cv: float, size: int) -> np.ndarray:
    if cv == 0.0:
        return np.ones(size)
    shape = 1.0 / cv ** 2
    return rng.gamma(shape, 1.0 / shape, size=size)


def _member_model(streams: tuple[ClaimStream, ...], common: float, county_weight: float,
                  county_cv: float) -> CompoundModel:
    """Member's Y with its main streams at rate x `common` (the common
    multiplier's value or, for node sampling, 1) and its own county part."""
    main = tuple(ClaimStream(rate=s.rate * common, severity=s.severity, factor=s.factor) for s in streams)
    parts = ()
    if county_weight > 0.0:
        parts = (CompoundModel(tuple(ClaimStream(rate=s.rate * county_weight, severity=s.severity,
                                                 factor=s.factor) for s in streams), county_cv),)
    return CompoundModel(merge_streams(main), 0.0, parts=parts)


def common_nodes(mean: float, sd: float) -> np.ndarray | None:
    """Nodes of the common multiplier m = w_N Theta_N + w_P Theta_P for the
    conditional samplers: a gamma of m's mean and sd at THETA_NODE_SCORES (a
    placement only: each node's law is exact and draws interpolate between
    them); None when m is constant or its nodes do not separate."""
    if sd == 0.0 or mean == 0.0:
        return None
    shape, scale = (mean / sd) ** 2, sd * sd / mean
    nodes = np.where(THETA_NODE_SCORES > 0,
                     stats.gamma.isf(special.ndtr(-THETA_NODE_SCORES), shape, scale=scale),
                     stats.gamma.ppf(special.ndtr(THETA_NODE_SCORES), shape, scale=scale))
    return nodes if np.all(np.diff(nodes) > 0) else None


class GroupPaths:
    """A group's members' eligible costs Y_i,t on common random numbers over
    the spec's horizon (trend applied), and its ruin frequencies at any
    contribution, retention and rates (module docstring)."""

    def __init__(self, instance: Instance, spec: Spec, group, multipliers: dict[str, float] | None = None):
        """`instance` with the spec's benefits applied (economics.adjustment_fund's
        pricer holds it); `multipliers` (county id -> m_i, induced utilisation)
        scale each member's admissions, on the same random numbers whatever
        they are. Draws are made when first needed: a group priced at c = 0
        only never draws the shared paths."""
        self.ids = tuple(sorted(group))
        self.spec = spec
        self.multipliers = multipliers
        self._instance = instance
        counties = [instance.county(c) for c in self.ids]
        params = instance.parameters
        u = spec.solvency.reserve_share
        self.revenue = np.array([c.revenue for c in counties])
        self.fixed = np.array([params.fund_fixed_cost + c.per_capita_costs for c in counties])
        self.start = np.array([u * c.reserves for c in counties])
        self.trend = solvency_trend(spec)
        self._costs: np.ndarray | None = None
        self._alone: np.ndarray | None = None

    @property
    def costs(self) -> np.ndarray:
        """Y_i,t per (member, year, path), the common shocks shared (module docstring)."""
        if self._costs is None:
            self._costs = self._draw()
        return self._costs

    @costs.setter
    def costs(self, value: np.ndarray) -> None:
        self._costs = value

    @property
    def alone(self) -> np.ndarray:
        """Each member's critical rate per path as a pool of one (risk.ruin,
        the unified measure's own draws): with c = 0 there is no fund, and
        member i is ruined at r_i exactly when r_i > this, so a group at c = 0
        prices each member as the unified measure prices it alone."""
        if self._alone is None:
            sol, sim = self.spec.solvency, self.spec.simulation
            rows = []
            for i, cid in enumerate(self.ids):
                costs = yearly_costs(pool_model(self._instance, frozenset([cid]), multipliers=self.multipliers), [cid],
                                     years=sol.horizon_years, scenarios=sim.scenarios, seed=sim.seed,
                                     trend=self.trend)
                rows.append(critical_rates(costs, float(self.start[i]), float(self.revenue[i] - self.fixed[i]),
                                           self.trend.revenue))
            self._alone = np.array(rows)
        return self._alone

    def _draw(self) -> np.ndarray:
        instance, spec = self._instance, self.spec
        counties = [instance.county(c) for c in self.ids]
        params = instance.parameters
        years, scenarios, seed = spec.solvency.horizon_years, spec.simulation.scenarios, spec.simulation.seed
        national, prefecture, county = params.national_shock, params.prefecture_shock, params.county_shock
        mean = national.weight + prefecture.weight
        sd = math.hypot(national.weight * national.cv, prefecture.weight * prefecture.cv)
        nodes = common_nodes(mean, sd)
        samplers = []
        for c in counties:
            streams = merge_streams(county_streams(instance, c, frozenset([c.id]), multipliers=self.multipliers))
            model = _member_model(streams, 1.0 if nodes is not None else mean, county.weight, county.cv)
            per_year = []
            for t in range(1, years + 1):
                if self.trend.admissions == 0.0 and per_year:
                    per_year.append(per_year[0])
                    continue
                scaled = model if self.trend.admissions == 0.0 else scaled_admissions(model, self.trend.frequency(t))
                per_year.append(PoolYearSampler(scaled, nodes=nodes) if nodes is not None
                                else PoolYearSampler(scaled))
            samplers.append(per_year)
        prefectures = sorted({c.prefecture for c in counties})
        rng = np.random.default_rng(np.random.SeedSequence([seed, ADJUSTMENT_STREAM, *pool_key(self.ids)]))
        costs = np.empty((len(counties), years, scenarios))
        for t in range(years):
            theta_n = _gamma(rng, national.cv if national.weight > 0.0 else 0.0, scenarios)
            theta_p = {p: _gamma(rng, prefecture.cv if prefecture.weight > 0.0 else 0.0, scenarios)
                       for p in prefectures}
            for i, c in enumerate(counties):
                m = national.weight * theta_n + prefecture.weight * theta_p[c.prefecture]
                draw = samplers[i][t].sample(m, rng.random(scenarios))
                costs[i, t] = draw if self.trend.cost == 0.0 else draw * self.trend.severity(t + 1)
        return costs

    def ruin(self, share: float, retention: float, rates) -> GroupRuin:
        """Ruin frequencies within the horizon with members at `rates` (ids sorted)."""
        fund_ruined, member_ruined = self._ruined(share, retention, rates)
        scenarios = self.spec.simulation.scenarios
        return GroupRuin(float(fund_ruined.sum()) / scenarios,
                         tuple(float(k) / scenarios for k in member_ruined.sum(axis=1)))

    def excess(self, share: float, retention: float, rates) -> float:
        """(most ruined paths of the fund or any member - those allowed) /
        scenarios: <= 0 exactly when the group is solvent under the measure."""
        fund_ruined, member_ruined = self._ruined(share, retention, rates)
        scenarios = self.spec.simulation.scenarios
        allowed = math.floor((1.0 - self.spec.solvency.level) * scenarios + COUNT_SLACK)
        worst = max(int(fund_ruined.sum()), int(member_ruined.sum(axis=1).max()))
        return (worst - allowed) / scenarios

    def _ruined(self, share: float, retention: float, rates) -> tuple[np.ndarray, np.ndarray]:
        if share == 0.0:   # no fund: each member alone, on the unified measure's draws
            member_ruined = np.asarray(rates, dtype=float)[:, None] > self.alone
            return np.zeros(member_ruined.shape[1], dtype=bool), member_ruined
        members, years, scenarios = self.costs.shape
        rates = np.asarray(rates, dtype=float)[:, None]
        reserves = np.repeat(self.start[:, None], scenarios, axis=1)
        fund = np.zeros(scenarios)
        fund_ruined = np.zeros(scenarios, dtype=bool)
        member_ruined = np.zeros((members, scenarios), dtype=bool)
        growth = self.trend.income(years)
        for t in range(years):
            revenue = self.revenue * growth[t]
            held = (reserves + (revenue - self.fixed * growth[t] - share * revenue)[:, None]
                    - rates * self.costs[:, t])
            deficit = np.maximum(-held - retention * revenue[:, None], 0.0)
            demand = deficit.sum(axis=0)
            means = fund + share * revenue.sum()
            short = demand > means
            paid = deficit * np.where(short, means / np.where(short, demand, 1.0), 1.0)
            fund = np.where(short, 0.0, means - demand)
            fund_ruined |= short
            reserves = held + paid
            member_ruined |= reserves < 0.0
        return fund_ruined, member_ruined
