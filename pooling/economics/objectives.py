"""The linear objectives: what one unit of a pool's rate is worth (DESIGN
§Care geography, effective rate; issue 13).

Each is sum_P w_P r_P / D over the plan's pools:
- max_mean_rate: w_P = N_P, D = enrollees (the nominal, enrollee-weighted rate);
- max_mean_effective_rate: w_P = sum_c N_c e_c,P with e_c,P = E[Y_c,P] / T_c,P,
  D = enrollees: the enrollee-weighted share of each person's own inpatient
  care that is reimbursed (the equity view); T_c,P is billed prices, so it
  depends on the column only through the contracts it takes (care.py);
- max_effective_coverage: w_P = E[Y_P], D = sum_c T_c at list prices: all
  expected reimbursement over all expected inpatient cost (the policy
  statistic). D is plan-free (fixed by the counties a plan covers), which
  keeps the objective linear: billed prices would put the plan's contracts
  into the denominator.
With no out-of-network penalty (q = phi = 1) e_c,P = 1: the mean effective rate
is the nominal mean rate, and coverage is the cost-weighted mean rate.
"""

from __future__ import annotations

import math

from pooling.economics.care import CountyCare, care_in_pool
from pooling.economics.pools import PoolPricing

MEAN_RATE = "max_mean_rate"
MEAN_EFFECTIVE_RATE = "max_mean_effective_rate"
EFFECTIVE_COVERAGE = "max_effective_coverage"
LINEAR_OBJECTIVES = (MEAN_RATE, MEAN_EFFECTIVE_RATE, EFFECTIVE_COVERAGE)
EFFECTIVE_OBJECTIVES = (MEAN_EFFECTIVE_RATE, EFFECTIVE_COVERAGE)


def county_weight(kind: str, care: CountyCare) -> float:
    """One county's share of its pool's weight w_P."""
    if kind == MEAN_EFFECTIVE_RATE:
        return care.enrollees * care.effective_share
    if kind == EFFECTIVE_COVERAGE:
        return care.observed_eligible   # = eligible without induced utilisation (care.py)
    return float(care.enrollees)


def county_denominator(kind: str, care: CountyCare) -> float:
    """One county's share of D (the same in every pool and column)."""
    return care.cost_at_list_prices if kind == EFFECTIVE_COVERAGE else float(care.enrollees)


def pool_weight(kind: str, pricing: PoolPricing) -> float:
    """w_P: the objective's numerator per unit of the pool's rate."""
    if kind == MEAN_RATE or not pricing.care:
        return float(pricing.enrollees)
    return math.fsum(county_weight(kind, c) for c in pricing.care)


def pool_denominator(kind: str, pricing: PoolPricing) -> float:
    if kind != EFFECTIVE_COVERAGE or not pricing.care:
        return float(pricing.enrollees)
    return math.fsum(county_denominator(kind, c) for c in pricing.care)


def objective_denominator(kind: str, instance, ids) -> float:
    """D over the counties `ids` (a block or the whole instance)."""
    if kind != EFFECTIVE_COVERAGE:
        return float(sum(instance.county(c).enrollees for c in ids))
    return math.fsum(care_in_pool(instance, instance.county(c), frozenset((c,))).cost_at_list_prices for c in ids)


def plan_value(kind: str, pricings, rates) -> float:
    """sum_P w_P r_P / D over a plan covering its counties once."""
    numerator = math.fsum(pool_weight(kind, p) * r for p, r in zip(pricings, rates))
    return numerator / math.fsum(pool_denominator(kind, p) for p in pricings)
