"""Maximum solvent rate under the multi-year ruin measure (spec measure "ruin").

Reserves evolve A_t = A_(t-1) + c_t - r Y_t from A_0 = u * sum A_c, with
c_t = (R - K) (1 + g_R)^t. On one simulated path the pool is ruined at rate r
exactly when r > r_crit = min over t of (A_0 + c_1 + ... + c_t) / (Y_1 + ...
+ Y_t), so ruin is monotone in r and, with common random numbers, the largest
rate whose ruin frequency is at most 1 - level is an order statistic of
r_crit: no bisection is needed.

Trend (`Trend`; all 0: the draws and the arithmetic of before, bit for bit):
year t's cost is (1 + g_c)^t times a draw from the pool's exact law with
every admission rate (main streams and parts) times (1 + g_a)^t. A cost trend
scales each admission's cost, so it scales the year's total exactly; an
admissions trend scales the Poisson means under the same multipliers, so
year t has its own exact conditional laws (its own sampler). Both leave
revenue and claims deterministic in t given the path, so r_crit still exists.

The estimate carries Monte Carlo error (it is a sample quantile over
`scenarios` paths); results say how many paths priced it.

Random numbers: Theta paths from SeedSequence([seed, SOLVE_STREAM, 0]), shared
by every pool; a pool's uniforms from a key derived from its member ids, so a
pool gets the same draws whatever else is priced. The stress test uses a
different stream (out of sample).

Theta is the model's main (national) shock, common to every pool. A pool's
extra parts (prefecture and county shocks, claims.CompoundModel.parts) are
independent of it and not drawn as paths: each year's cost given Theta is
drawn from the exact conditional law, parts' shocks mixed in (sampling.py), so
they are independent across years and pools. (Pools sharing a prefecture
share its shock in reality; the per-pool ruin measure does not need that.)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from pooling.risk.claims import CompoundModel
from pooling.risk.compound import scaled_admissions
from pooling.risk.sampling import PoolYearSampler

SOLVE_STREAM = 0x5015E


@dataclass(frozen=True)
class Trend:
    """Annual growth over a ruin horizon, year t = 1, 2, ... after the
    instance's year: admissions per enrollee (g_a), cost per admission (g_c),
    revenue and fixed costs together (g_R)."""

    admissions: float = 0.0
    cost: float = 0.0
    revenue: float = 0.0

    def frequency(self, year: int) -> float:
        return (1.0 + self.admissions) ** year

    def severity(self, year: int) -> float:
        return (1.0 + self.cost) ** year

    def income(self, years: int) -> np.ndarray:
        """(1 + g_R)^t for t = 1..years."""
        return (1.0 + self.revenue) ** np.arange(1, years + 1)


NO_TREND = Trend()


def yearly_samplers(model: CompoundModel, years: int, trend: Trend) -> list[PoolYearSampler]:
    """Year t's sampler (index t - 1): one shared when admissions do not trend."""
    if trend.admissions == 0.0:
        return [PoolYearSampler(model)] * years
    return [PoolYearSampler(scaled_admissions(model, trend.frequency(t))) for t in range(1, years + 1)]


def pool_key(members) -> list[int]:
    digest = hashlib.sha256(",".join(sorted(members)).encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def theta_paths(shock_cv: float, years: int, scenarios: int, seed: int) -> np.ndarray:
    """Main-shock multipliers Theta ~ Gamma(1, shock_cv) per (year, scenario)."""
    shape = 1.0 / shock_cv ** 2 if shock_cv ** 2 > 0.0 else math.inf
    if not math.isfinite(shape):
        return np.ones((years, scenarios))
    rng = np.random.default_rng(np.random.SeedSequence([seed, SOLVE_STREAM, 0]))
    return rng.gamma(shape, 1.0 / shape, size=(years, scenarios))


def critical_rates(yearly_costs: np.ndarray, start_reserves: float, net_income: float,
                   income_growth: float = 0.0) -> np.ndarray:
    """r_crit per path (columns): the rate above which the path is ruined;
    year t's net income is net_income (1 + income_growth)^t."""
    years = yearly_costs.shape[0]
    cumulative = np.cumsum(yearly_costs, axis=0)
    if income_growth == 0.0:
        capital = start_reserves + net_income * np.arange(1, years + 1)[:, None]
    else:
        growth = Trend(revenue=income_growth).income(years)
        capital = start_reserves + np.cumsum(net_income * growth)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cumulative > 0, capital / cumulative,
                         np.where(capital >= 0, np.inf, -np.inf))
    return ratio.min(axis=0)


def yearly_costs(model: CompoundModel, members, *, years: int, scenarios: int, seed: int,
                 trend: Trend = NO_TREND) -> np.ndarray:
    """Y_t per (year, path) on the solve's common random numbers, trend included."""
    thetas = theta_paths(model.shock_cv, years, scenarios, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SOLVE_STREAM, 1, *pool_key(members)]))
    samplers = yearly_samplers(model, years, trend)
    rows = []
    for t in range(years):
        draw = samplers[t].sample(thetas[t], rng.random(scenarios))
        rows.append(draw if trend.cost == 0.0 else draw * trend.severity(t + 1))
    return np.vstack(rows)


def ruin_max_rate(model: CompoundModel, members, *, start_reserves: float, net_income: float,
                  years: int, scenarios: int, level: float, seed: int, trend: Trend = NO_TREND) -> float:
    """Largest r with simulated P(ruin within `years`) <= 1 - level (may be < 0)."""
    costs = yearly_costs(model, members, years=years, scenarios=scenarios, seed=seed, trend=trend)
    r_crit = np.sort(critical_rates(costs, start_reserves, net_income, trend.revenue))
    allowed = int(math.floor((1.0 - level) * scenarios + 1e-9))
    return float(r_crit[allowed]) if allowed < scenarios else math.inf
