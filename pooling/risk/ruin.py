"""Maximum solvent rate under the multi-year ruin measure (spec measure "ruin").

Reserves evolve A_t = A_(t-1) + c - r Y_t from A_0 = u * sum A_c, with
c = R - K. On one simulated path the pool is ruined at rate r exactly when
r > r_crit = min over t of (A_0 + t c) / (Y_1 + ... + Y_t), so ruin is
monotone in r and, with common random numbers, the largest rate whose ruin
frequency is at most 1 - level is an order statistic of r_crit: no
bisection is needed. The estimate carries Monte Carlo error (it is a sample
quantile over `scenarios` paths); results say how many paths priced it.

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

import numpy as np

from pooling.risk.claims import CompoundModel
from pooling.risk.sampling import PoolYearSampler

SOLVE_STREAM = 0x5015E


def _pool_key(members) -> list[int]:
    digest = hashlib.sha256(",".join(sorted(members)).encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def theta_paths(shock_cv: float, years: int, scenarios: int, seed: int) -> np.ndarray:
    """Main-shock multipliers Theta ~ Gamma(1, shock_cv) per (year, scenario)."""
    shape = 1.0 / shock_cv ** 2 if shock_cv ** 2 > 0.0 else math.inf
    if not math.isfinite(shape):
        return np.ones((years, scenarios))
    rng = np.random.default_rng(np.random.SeedSequence([seed, SOLVE_STREAM, 0]))
    return rng.gamma(shape, 1.0 / shape, size=(years, scenarios))


def critical_rates(yearly_costs: np.ndarray, start_reserves: float, net_income: float) -> np.ndarray:
    """r_crit per path (columns): the rate above which the path is ruined."""
    years = yearly_costs.shape[0]
    cumulative = np.cumsum(yearly_costs, axis=0)
    capital = start_reserves + net_income * np.arange(1, years + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cumulative > 0, capital / cumulative,
                         np.where(capital >= 0, np.inf, -np.inf))
    return ratio.min(axis=0)


def ruin_max_rate(model: CompoundModel, members, *, start_reserves: float, net_income: float,
                  years: int, scenarios: int, level: float, seed: int) -> float:
    """Largest r with simulated P(ruin within `years`) <= 1 - level (may be < 0)."""
    thetas = theta_paths(model.shock_cv, years, scenarios, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, SOLVE_STREAM, 1, *_pool_key(members)]))
    sampler = PoolYearSampler(model)
    costs = np.vstack([sampler.sample(thetas[t], rng.random(scenarios)) for t in range(years)])
    r_crit = np.sort(critical_rates(costs, start_reserves, net_income))
    allowed = int(math.floor((1.0 - level) * scenarios + 1e-9))
    return float(r_crit[allowed]) if allowed < scenarios else math.inf
