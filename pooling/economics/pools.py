"""Pool economics: claim streams, budget and maximum solvent rate (DESIGN §A pool,
§Solvency), and a memoising pricer shared by every solver and baseline.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pooling.data.instance import OUTSIDE, County, Instance
from pooling.data.spec import Spec
from pooling.errors import NumericsError
from pooling.risk.claims import (
    AggregateResult,
    ClaimStream,
    CompoundModel,
    aggregate,
    merge_streams,
)
from pooling.risk.ruin import ruin_max_rate


def county_streams(instance: Instance, county: County, members: frozenset[str]) -> list[ClaimStream]:
    """Claim streams of one county's enrollees when it belongs to pool `members`.

    Residents at home are in network. Migrants living in k claim with k's
    severity; in network if k is in the pool, else only a share q of their
    admissions is claimed and reimbursed at phi * r (eligible cost factor phi).
    """
    p = instance.parameters
    home_rate = county.enrollees * (1.0 - county.migrant_share) * county.admission_rate
    streams = [ClaimStream(home_rate, county.severity, 1.0)]
    migrant_rate = (county.enrollees * county.migrant_share
                    * p.migrant_admission_factor * county.admission_rate)
    for dest, weight in county.migrant_destinations:
        base = migrant_rate * weight
        if dest in members:
            streams.append(ClaimStream(base, instance.county(dest).severity, 1.0))
        else:
            severity = p.outside_severity if dest == OUTSIDE else instance.county(dest).severity
            streams.append(ClaimStream(base * p.out_of_network_claim_share, severity,
                                       p.out_of_network_factor))
    return streams


def pool_model(instance: Instance, members: frozenset[str]) -> CompoundModel:
    """The compound mixed-Poisson model of a pool's eligible cost Y_P."""
    streams = []
    for cid in sorted(members):
        streams.extend(county_streams(instance, instance.county(cid), members))
    return CompoundModel(merge_streams(streams), instance.parameters.frequency_shock_cv)


def _numerics_drivers(instance: Instance, spec: Spec, counties: list[County]) -> str:
    """The input fields that set a pool's numerics, with their values, so a
    NumericsError says which field to look at."""
    params = instance.parameters
    severities = [(f'county "{c.id}"', c.severity) for c in counties]
    severities.append(("parameters.outside_severity", params.outside_severity))
    worst_cv = max(severities, key=lambda item: item[1].cv)
    parts = [f"parameters.frequency_shock_cv = {params.frequency_shock_cv:g}",
             f"solvency.level = {spec.solvency.level:g} ({spec.source})",
             "enrollees x admission_rate = "
             + ", ".join(f'{c.enrollees * c.admission_rate:.6g} (county "{c.id}")' for c in counties),
             f"severity.cv up to {worst_cv[1].cv:g} ({worst_cv[0]})"]
    tails = [(owner, sev.tail_index) for owner, sev in severities if sev.tail_index is not None]
    if tails:
        owner, index = min(tails, key=lambda item: item[1])
        parts.append(f"severity.tail_index down to {index:g} ({owner})")
    return "Inputs driving it: " + "; ".join(parts)


@dataclass(frozen=True)
class PoolPricing:
    """Everything the optimiser and the reports need about one candidate pool."""

    counties: tuple[str, ...]
    enrollees: int
    revenue: float
    fixed_costs: float          # K_P = F + sum (a_c + o_c) N_c
    budget: float               # B_P = sum (R_c + u A_c) - K_P
    expected_cost: float        # E[Y_P]
    var: float                  # VaR_alpha(Y_P)
    cvar: float                 # CVaR_alpha(Y_P)
    risk: float                 # rho_alpha(Y_P) for var/cvar; CVaR for ruin (rate from simulation)
    max_rate: float             # r*_P = min(r_max, B_P / rho); may be < r_min or negative
    usable: bool                # r*_P >= r_min
    county_expected_cost: tuple[tuple[str, float], ...]
    numerics: AggregateResult   # risk figures and self-checks; the lattice itself is dropped
                                # (a pricer may hold thousands of pools)


class PoolPricer:
    """Prices pools under one (instance, spec), memoised by member set."""

    def __init__(self, instance: Instance, spec: Spec):
        self.instance = instance
        self.spec = spec
        self._cache: dict[frozenset[str], PoolPricing] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def price(self, members) -> PoolPricing:
        key = frozenset(members)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._price(key)
            self._cache[key] = hit
        return hit

    def _price(self, members: frozenset[str]) -> PoolPricing:
        inst, spec = self.instance, self.spec
        counties = [inst.county(cid) for cid in sorted(members)]
        u = spec.solvency.reserve_share
        revenue = math.fsum(c.revenue for c in counties)
        fixed = inst.parameters.admin_fixed_per_fund + math.fsum(c.per_capita_costs for c in counties)
        budget = revenue + u * math.fsum(c.reserves for c in counties) - fixed
        model = pool_model(inst, members)
        try:
            result = aggregate(model, spec.solvency.level)
            if spec.solvency.measure == "ruin":
                sim = spec.simulation
                ruin_rate = ruin_max_rate(
                    model, members, start_reserves=u * math.fsum(c.reserves for c in counties),
                    net_income=revenue - fixed, years=spec.solvency.horizon_years,
                    scenarios=sim.scenarios, level=spec.solvency.level, seed=sim.seed)
        except NumericsError as exc:
            raise NumericsError(f"{inst.source}: pool [{', '.join(sorted(members))}]: cannot price it: "
                                f"{exc}. {_numerics_drivers(inst, spec, counties)}") from None
        if spec.solvency.measure == "ruin":
            risk = result.cvar
            max_rate = min(spec.rates.max, ruin_rate)
        else:
            risk = result.cvar if spec.solvency.measure == "cvar" else result.var
            max_rate = min(spec.rates.max, budget / risk)
        per_county = tuple(
            (c.id, math.fsum(s.mean for s in county_streams(inst, c, members))) for c in counties)
        return PoolPricing(
            counties=tuple(c.id for c in counties), enrollees=sum(c.enrollees for c in counties),
            revenue=revenue, fixed_costs=fixed, budget=budget, expected_cost=result.mean,
            var=result.var, cvar=result.cvar, risk=risk, max_rate=max_rate,
            usable=max_rate >= spec.rates.min, county_expected_cost=per_county,
            numerics=dataclasses.replace(result, law=None))
