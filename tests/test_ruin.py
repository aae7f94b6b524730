"""The ruin measure: critical rates against brute force, the one-year case
against VaR, monotonicity in the horizon, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pooling import instance_from_dict, solve, spec_from_dict
from pooling.economics.pools import PoolPricer, pool_model
from pooling.risk.claims import aggregate
from pooling.risk.ruin import critical_rates
from tests.factories import spec_dict, tiny_instance_dict


def test_critical_rates_match_bisection():
    """r_crit from the closed form equals bisection on the simulated reserve path."""
    rng = np.random.default_rng(0)
    costs = rng.gamma(2.0, 50.0, size=(6, 300))
    start, income = 150.0, 70.0
    r_crit = critical_rates(costs, start, income)

    def ruined(r, path):
        reserves = start + np.cumsum(income - r * path)
        return bool((reserves < 0).any())

    for j in range(0, 300, 17):
        lo, hi = 0.0, 10.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if ruined(mid, costs[:, j]) else (mid, hi)
        assert r_crit[j] == pytest.approx(lo, rel=1e-9)


def _ruin_spec(years, **extra):
    return spec_from_dict(spec_dict("county", solvency={"measure": "ruin", "level": 0.95,
                                                        "horizon_years": years, "reserve_share": 0.5},
                                    rates={"min": 0.0, "max": 1.0},
                                    simulation={"scenarios": 20_000, "seed": 4, **extra}))


def test_one_year_ruin_rate_is_the_var_rate():
    """With one year, ruin <=> r Y > u A + R - K = B, so r* = B / VaR(Y): the
    simulated rate must sit inside the order-statistic interval of VaR.
    Contributions are lowered so that no rate hits rates.max = 1."""
    data = tiny_instance_dict()
    for c in data["counties"]:
        c["contribution_per_capita"] = 250.0
    inst = instance_from_dict(data)
    ruin_pricer = PoolPricer(inst, _ruin_spec(1))
    var_spec = spec_from_dict(spec_dict("county", solvency={"measure": "var", "level": 0.95,
                                                            "reserve_share": 0.5},
                                        rates={"min": 0.0, "max": 1.0}))
    var_pricer = PoolPricer(inst, var_spec)
    n, level = 20_000, 0.95
    # 99.9% distribution-free interval of the 0.95 quantile, in probability terms
    half = 3.29 * math.sqrt(level * (1 - level) / n)
    for cid in inst.ids:
        exact = var_pricer.price([cid])
        simulated = ruin_pricer.price([cid]).max_rate
        law = aggregate(pool_model(inst, frozenset([cid])), level).law
        cdf = np.cumsum(law.pmf)
        q_lo = law.start + law.span * np.searchsorted(cdf, level - half)
        q_hi = law.start + law.span * np.searchsorted(cdf, level + half)
        assert exact.budget / q_hi <= simulated <= exact.budget / q_lo < 1.0


def test_longer_horizon_never_pays_more():
    inst = instance_from_dict(tiny_instance_dict())
    one = solve(inst, _ruin_spec(1))
    five = solve(inst, _ruin_spec(5))
    for a, b in zip(one.pools, five.pools):
        assert b.pricing.max_rate <= a.pricing.max_rate


def test_ruin_solve_is_deterministic():
    inst = instance_from_dict(tiny_instance_dict())
    a = solve(inst, _ruin_spec(3)).to_dict()
    b = solve(inst, _ruin_spec(3)).to_dict()
    for key in ("wall_seconds", "timings"):
        a.pop(key), b.pop(key)
    assert a == b
