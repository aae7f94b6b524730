"""Price of equalisation: the government top-up that makes a plan acceptable.

For each pool P of a plan, the rate no member would refuse is
r_req = max(rates.min, max over members solvent alone of r*_c - tolerance)
(tolerance from [equalisation], 0 if unset). If the pool's own maximum
solvent rate r*_P is lower, the smallest top-up that keeps it solvent at
r_req is T_P = r_req * rho(Y_P) - B_P (rho = VaR or CVaR at the spec level:
positive homogeneity makes solvency at r_req exactly B_P + T_P >= r_req rho).

Per-county compensation is the expected benefit a county's enrollees lose
at the unsubsidised pool rate: (r*_c - r*_P) E[Y_c,P] for members whose
stand-alone rate is higher. The top-up is a solvency (capital) amount, the
compensation an expected yearly amount; a researcher costing full
prefecture pooling against the status quo reads both.
"""

from __future__ import annotations

import math

from pooling.data.spec import Spec
from pooling.economics.pools import PoolPricer, PoolPricing
from pooling.errors import InputError


def solvency_top_up(pricing: PoolPricing, rate: float) -> float:
    """The smallest capital (CNY) that keeps a pool solvent at `rate` under a
    VaR/CVaR measure: max(0, rate rho(Y_P) - B_P), exact by positive
    homogeneity (not defined for the ruin measure, whose rate is simulated)."""
    return max(0.0, rate * pricing.risk - pricing.budget)


def price_of_equalisation(spec: Spec, outcomes, pricer: PoolPricer) -> dict:
    """Top-ups and compensations for the pools of an evaluated plan."""
    if spec.solvency.measure == "ruin":
        raise InputError(f"{spec.source}: --subsidy needs measure \"cvar\" or \"var\" (a top-up under "
                         f"the ruin measure has no closed form)")
    if spec.uncertainty is not None:
        raise InputError(f"{spec.source}: --subsidy under [uncertainty] is not supported: a top-up would have to "
                         f"cover every scenario (robust) or the mixture (predictive), not one law")
    tolerance = spec.equalisation.tolerance
    pools, total_top_up, total_comp = [], 0.0, 0.0
    for outcome in outcomes:
        pricing = outcome.pricing
        alone = {cid: pricer.price([cid]) for cid in pricing.counties}
        claims = [a.max_rate - tolerance for a in alone.values() if a.usable]
        required = min(spec.rates.max, max([spec.rates.min] + claims))
        top_up = solvency_top_up(pricing, required)
        counties = []
        for cid, expected in pricing.county_expected_cost:
            own = alone[cid]
            loss = max(0.0, own.max_rate - pricing.max_rate) * expected if own.usable else 0.0
            counties.append({"id": cid, "rate_alone": own.max_rate, "solvent_alone": own.usable,
                             "expected_cost_in_pool": expected, "compensation": loss})
            total_comp += loss
        total_top_up += top_up
        pools.append({"id": outcome.id, "counties": list(pricing.counties),
                      "rate_without_subsidy": pricing.max_rate, "rate_required": required,
                      "top_up": top_up, "county_compensation": counties})
    return {"definition": "top_up = max(0, r_req * rho(Y_P) - B_P); compensation = "
                          "max(0, r*_c - r*_P) * E[Y_c,P] (docs/model.md)",
            "total_top_up": total_top_up, "total_compensation": math.fsum(
                c["compensation"] for p in pools for c in p["county_compensation"]),
            "pools": pools}
