"""Equalisation and fairness rules that bound a pool's rate from below
(DESIGN §Decisions and constraints, [equalisation]).

For a pool P the admissible rates are [L_P, r*_P], with L_P the largest of:
- rates.min;
- no_county_worse_off: r*_{c} - tolerance for each member c that is solvent
  alone (r*_{c} >= rates.min); a county that cannot be solvent alone imposes
  no bound;
- max_cross_subsidy tau: R_c - K_c - r E[Y_c,P] <= tau R_c for each member,
  i.e. r >= (R_c - K_c - tau R_c) / E[Y_c,P], with K_c = (a_c + o_c) N_c +
  F N_c / N_P and E[Y_c,P] the expected eligible cost of c's enrollees in P;
- max_expected_surplus s: R_P - K_P - r E[Y_P] <= s R_P, i.e.
  r >= (R_P - K_P - s R_P) / E[Y_P].
The rate gap couples pools and lives in the MILP. Each bound keeps the rule
and county that set it, for diagnosis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.pools import PoolPricing


@dataclass(frozen=True)
class RateBound:
    value: float
    rule: str          # "rates.min", "no_county_worse_off", "max_cross_subsidy", "max_expected_surplus"
    county: str | None  # the member that sets it, where the rule is per county


def lower_bounds(instance: Instance, spec: Spec, pool: PoolPricing,
                 alone: dict[str, PoolPricing]) -> list[RateBound]:
    """Every lower bound on the pool's rate (rates.min first)."""
    eq = spec.equalisation
    bounds = [RateBound(spec.rates.min, "rates.min", None)]
    if eq.no_county_worse_off:
        for cid in pool.counties:
            own = alone[cid]
            if own.usable:
                bounds.append(RateBound(own.max_rate - eq.tolerance, "no_county_worse_off", cid))
    if eq.max_cross_subsidy is not None:
        # The pool's shared costs (F and any contract's annual cost) split by enrollees.
        shared = pool.fixed_costs - math.fsum(instance.county(c).per_capita_costs for c in pool.counties)
        fixed_share = shared / pool.enrollees
        for cid, expected in pool.county_expected_cost:
            c = instance.county(cid)
            costs = c.per_capita_costs + fixed_share * c.enrollees
            need = c.revenue - costs - eq.max_cross_subsidy * c.revenue
            bounds.append(RateBound(_ratio(need, expected), "max_cross_subsidy", cid))
    if eq.max_expected_surplus is not None:
        need = pool.revenue - pool.fixed_costs - eq.max_expected_surplus * pool.revenue
        bounds.append(RateBound(_ratio(need, pool.expected_cost), "max_expected_surplus", None))
    return bounds


def _ratio(need: float, expected: float) -> float:
    if expected > 0:
        return need / expected
    return -math.inf if need <= 0 else math.inf


def binding_bound(bounds: list[RateBound]) -> RateBound:
    return max(bounds, key=lambda b: b.value)


def describe_bound(bound: RateBound) -> str:
    who = f" (county {bound.county})" if bound.county else ""
    if bound.value == math.inf:   # no expected claim: the rate cannot move what the rule bounds
        return f"{bound.rule}{who} cannot be met at any rate (no claim is expected)"
    return f"{bound.rule}{who} requires a rate >= {bound.value:.4f}"
