"""The status quo as run (issue 24 item 5): each county alone at its `current_rate`.

The "status_quo" baseline prices each county alone at the rate the spec's
solvency rule allows it (r*_c). What the counties actually do is different:
NRCMS funds reimbursed ~47-55% around 2011 and many ran current-year deficits
(CALIBRATION.md). Counties that carry `current_rate` are priced alone at it:
expected surplus R_c - K_c - r E[Y_c] (the year's revenue less fixed costs and
expected claims; reserves are not income) and the probability of a
current-year deficit, P(r Y_c > R_c - K_c), read from Y_c's exact law (the
same lattice as every price; P(Y > x) counts the lattice points above x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import behaviour_on
from pooling.economics.pools import PoolPricer, pool_model
from pooling.risk.claims import aggregate


@dataclass(frozen=True)
class CountyAsRun:
    county: str
    current_rate: float
    max_rate: float
    """r*_c: the rate the spec's solvency rule allows the county alone."""
    expected_surplus: float
    deficit_probability: float

    @property
    def solvent(self) -> bool:
        return self.current_rate <= self.max_rate

    def to_dict(self) -> dict:
        return {"county": self.county, "current_rate": self.current_rate, "max_rate": self.max_rate,
                "solvent": self.solvent, "expected_surplus": self.expected_surplus,
                "deficit_probability": self.deficit_probability}


def survival(law, x: float) -> float:
    """P(Y > x) on a lattice law (mass at start + span i)."""
    points = law.start + law.span * np.arange(len(law.pmf))
    return float(min(max(law.pmf[points > x].sum(), 0.0), 1.0))


def as_run(instance: Instance, spec: Spec, pricer: PoolPricer | None = None) -> list[CountyAsRun]:
    """Every county with a current_rate, alone at it (module docstring); empty when none has one."""
    pricer = pricer if pricer is not None else PoolPricer(instance, spec)
    out = []
    for county in instance.counties:
        if county.current_rate is None:
            continue
        pricing = pricer.price([county.id])
        rate = county.current_rate
        income = pricing.revenue - pricing.fixed_costs
        # At its current rate a county's admissions are as observed (m_c = 1 with
        # induced utilisation: r0 is that rate), so the law is the observed one.
        run = aggregate(pool_model(instance, frozenset([county.id])), spec.solvency.level)
        law = run.law
        deficit = survival(law, income / rate) if rate > 0 else float(income < 0)
        expected = run.mean if behaviour_on(instance) else pricing.expected_cost
        out.append(CountyAsRun(county=county.id, current_rate=rate, max_rate=pricing.max_rate,
                               expected_surplus=income - rate * expected,
                               deficit_probability=deficit))
    return out


def summary(rows: list[CountyAsRun], instance: Instance) -> dict:
    """The whole status quo as run: enrollee-weighted mean rate, total expected
    surplus, the share of counties whose rate breaks the solvency rule, and the
    expected share of counties in current-year deficit."""
    enrollees = {c.id: c.enrollees for c in instance.counties}
    total = sum(enrollees[r.county] for r in rows)
    return {"counties": [r.to_dict() for r in rows],
            "mean_rate": math.fsum(enrollees[r.county] * r.current_rate for r in rows) / total,
            "expected_surplus": math.fsum(r.expected_surplus for r in rows),
            "insolvent_share": sum(not r.solvent for r in rows) / len(rows),
            "expected_deficit_share": math.fsum(r.deficit_probability for r in rows) / len(rows)}
