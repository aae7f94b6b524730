"""Where a county's enrollees buy care, and what its pool reimburses
(DESIGN §Care geography and what enrollees receive).

A county's care is a list of flows: its residents' admissions at the places
they use (its own hospitals, referrals to a prefecture city or province) and
its migrants' admissions where they live. Each flow is priced by its place
(the same whichever instance file holds the county) and is in network for a
pool that approves the place: a county's own hospitals always, another
county's when that county is a member, a city's or province's when the pool
holds every county in the place's `approved_by`. Out of network, the tier of
the place (same prefecture, same province, other province) sets the claimed
share q and the eligible-cost factor phi.

`CountyCare` sums a county's flows in one pool: the expected eligible cost
E[Y_c,P] (what the pool pays per unit of rate), the expected cost of all its
care T_c (unclaimed included, the denominator of every effective rate), and
the migrants' and residents' parts of both.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pooling.data.instance import OUTSIDE, County, Instance, OutOfNetworkTerms
from pooling.errors import InputError
from pooling.risk.claims import ClaimStream
from pooling.risk.severity import Severity

RESIDENT, MIGRANT = "resident", "migrant"

Contracted = dict[str, float] | None
"""Places a pool has contracted, with their price factors (issue 14)."""


def contracted_places(options) -> dict[str, float]:
    """{destination: price factor} of the contract options a pool takes (the
    lowest factor where two options reach one place)."""
    out: dict[str, float] = {}
    for option in options:
        out[option.destination] = min(option.price_factor, out.get(option.destination, option.price_factor))
    return out


@dataclass(frozen=True)
class CareFlow:
    """Expected admissions of one group of a county's enrollees at one place."""

    who: str                          # RESIDENT or MIGRANT
    place: str                        # county id, place id or OUTSIDE
    admissions: float                 # expected admissions a year (all multipliers at 1)
    severity: Severity
    approved_by: frozenset[str]       # in network iff non-empty and inside the pool
    out_of_network: OutOfNetworkTerms

    def contract_price(self, members: frozenset[str], contracted: Contracted) -> float | None:
        """The price factor of a contract covering this flow (migrants at a
        contracted place not already in network), else None."""
        if self.who != MIGRANT or not contracted or (self.approved_by and self.approved_by <= members):
            return None
        return contracted.get(self.place)

    def cost(self) -> float:
        """Expected cost of all these admissions, claimed or not, at the place's
        list price (a contract's negotiated price changes what the fund pays,
        not this yardstick: every effective rate and coverage's denominator
        D stay plan-independent, and a discount shows as a lower effective rate)."""
        return self.admissions * self.severity.expected_value

    def in_network(self, members: frozenset[str], contracted: Contracted = None) -> bool:
        if self.approved_by and self.approved_by <= members:
            return True
        return self.contract_price(members, contracted) is not None

    def stream(self, members: frozenset[str], contracted: Contracted = None) -> ClaimStream:
        """The claims the pool pays per unit of rate: all of them in network (at
        a contract's price factor); a share q at phi times their cost out of network."""
        price = self.contract_price(members, contracted)
        if price is not None:
            return ClaimStream(self.admissions, self.severity, price)
        if self.in_network(members):
            return ClaimStream(self.admissions, self.severity, 1.0)
        terms = self.out_of_network
        return ClaimStream(self.admissions * terms.claim_share, self.severity, terms.factor)


def tier(county: County, prefecture: str | None, province: str | None) -> str:
    """Where a place lies relative to the county (instance.TIERS)."""
    if prefecture is not None and prefecture == county.prefecture:
        return "same_prefecture"
    if province is not None and county.province is not None and province == county.province:
        return "same_province"
    return "other_province"


def _flow(instance: Instance, county: County, who: str, key: str, admissions: float) -> CareFlow:
    params = instance.parameters
    if key == OUTSIDE:
        return CareFlow(who, key, admissions, params.outside_severity, frozenset(),
                        params.terms("other_province"))
    if instance.has_place(key):
        place = instance.place(key)
        return CareFlow(who, key, admissions, place.severity, place.approved_by,
                        params.terms(tier(county, place.prefecture, place.province)))
    other = instance.county(key)
    return CareFlow(who, key, admissions, other.severity, frozenset((key,)),
                    params.terms(tier(county, other.prefecture, other.province)))


def county_care(instance: Instance, county: County) -> tuple[CareFlow, ...]:
    """Every care flow of one county's enrollees, memoised on the instance (a
    pure function of the county and the places and parameters it references)."""
    cache = instance.__dict__.get("_care")
    if cache is None:
        cache = {}
        object.__setattr__(instance, "_care", cache)
    flows = cache.get(county.id)
    if flows is None:
        params = instance.parameters
        residents = county.enrollees * (1.0 - county.migrant_share) * county.admission_rate
        migrants = (county.enrollees * county.migrant_share * params.migrant_admission_factor
                    * county.admission_rate)
        flows = tuple([_flow(instance, county, RESIDENT, key, residents * w) for key, w in county.care_at_home]
                      + [_flow(instance, county, MIGRANT, key, migrants * w)
                         for key, w in county.migrant_destinations])
        cache[county.id] = flows
    return flows


@dataclass(frozen=True)
class CountyCare:
    """One county's care in one pool: expected costs a year, multipliers at 1."""

    county: str
    enrollees: int
    eligible: float                   # E[Y_c,P]: claims paid per unit of rate
    total: float                      # T_c: all inpatient care, unclaimed included
    resident_eligible: float
    resident_total: float
    migrant_eligible: float
    migrant_total: float
    migrant_admissions: float
    migrant_in_network_admissions: float

    @property
    def effective_share(self) -> float:
        """e_c,P = E[Y_c,P] / T_c: the effective rate is r e_c,P (1 with no penalty)."""
        return self.eligible / self.total if self.total > 0 else 1.0


def care_in_pool(instance: Instance, county: County, members: frozenset[str],
                 contracted: Contracted = None) -> CountyCare:
    flows = county_care(instance, county)
    sums = {(who, part): [] for who in (RESIDENT, MIGRANT) for part in ("eligible", "total", "adm", "in")}
    for flow in flows:
        stream = flow.stream(members, contracted)
        sums[flow.who, "eligible"].append(stream.mean)
        sums[flow.who, "total"].append(flow.cost())     # at list prices: T_c is plan-independent
        sums[flow.who, "adm"].append(flow.admissions)
        if flow.in_network(members, contracted):
            sums[flow.who, "in"].append(flow.admissions)
    total = {key: math.fsum(values) for key, values in sums.items()}
    return CountyCare(
        county=county.id, enrollees=county.enrollees,
        eligible=total[RESIDENT, "eligible"] + total[MIGRANT, "eligible"],
        total=total[RESIDENT, "total"] + total[MIGRANT, "total"],
        resident_eligible=total[RESIDENT, "eligible"], resident_total=total[RESIDENT, "total"],
        migrant_eligible=total[MIGRANT, "eligible"], migrant_total=total[MIGRANT, "total"],
        migrant_admissions=total[MIGRANT, "adm"], migrant_in_network_admissions=total[MIGRANT, "in"])


def county_streams(instance: Instance, county: County, members: frozenset[str],
                   contracted: Contracted = None) -> list[ClaimStream]:
    """Claim streams of one county's enrollees when it belongs to pool `members`."""
    return [flow.stream(members, contracted) for flow in county_care(instance, county)]


CARE_FIELDS = ("county", "enrollees", "eligible", "total", "resident_eligible", "resident_total",
               "migrant_eligible", "migrant_total", "migrant_admissions", "migrant_in_network_admissions")
"""A CountyCare's fields, in result.json's order."""


def _share(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else min(1.0, max(0.0, numerator / denominator))


def portability(cares_and_rates) -> dict[str, float | None]:
    """What enrollees receive under rates: each figure over (CountyCare, rate) pairs
    (one pool's members, or a whole plan). Effective rates are expected
    reimbursement over the expected cost of all care, unclaimed included;
    in-network share counts admissions. None where there is nothing to share
    (no migrants)."""
    pairs = list(cares_and_rates)

    def paid(part: str) -> float:
        return math.fsum(rate * getattr(care, part) for care, rate in pairs)

    def cost(part: str) -> float:
        return math.fsum(getattr(care, part) for care, _ in pairs)
    people = sum(care.enrollees for care, _ in pairs)
    return {
        "migrant_in_network_share": _share(cost("migrant_in_network_admissions"), cost("migrant_admissions")),
        "migrant_effective_rate": _share(paid("migrant_eligible"), cost("migrant_total")),
        "resident_effective_rate": _share(paid("resident_eligible"), cost("resident_total")),
        "effective_coverage": _share(paid("eligible"), cost("total")),
        "mean_effective_rate": (None if people == 0 else math.fsum(
            care.enrollees * rate * care.effective_share for care, rate in pairs) / people),
    }


MAX_OPTIONS_PER_POOL = 4
"""Contract options one pool may weigh: every subset of them is a column (16 at
most), so the choice stays exact without blowing up the candidate list."""


def applicable_options(instance: Instance, members: frozenset[str]) -> list:
    """Contract options a pool may take: it holds a county of the origin, some
    member has migrants at the destination, and the destination is not in the
    pool's network already (a contract there would buy nothing)."""
    out = []
    for option in instance.contract_options:
        if not option.origin & members:
            continue
        flows = [f for cid in sorted(members) for f in county_care(instance, instance.county(cid))
                 if f.who == MIGRANT and f.place == option.destination and f.admissions > 0]
        if flows and not flows[0].in_network(members):
            out.append(option)
    return out


def contract_variants(instance: Instance, members: frozenset[str]) -> list[tuple[str, ...]]:
    """Every subset of the options a pool may take (the empty one first)."""
    options = applicable_options(instance, members)
    if len(options) > MAX_OPTIONS_PER_POOL:
        raise InputError(f"{instance.source}: pool [{', '.join(sorted(members))}] may take "
                         f"{len(options)} contract options ({', '.join(o.id for o in options)}); at most "
                         f"{MAX_OPTIONS_PER_POOL} per pool are weighed exactly")
    ids = [o.id for o in options]
    return [tuple(c) for k in range(len(ids) + 1) for c in itertools.combinations(ids, k)]


def contract_served(instance: Instance, members: frozenset[str], option, rate: float) -> dict:
    """What one contract option does for a pool at `rate`: the migrants and
    expected admissions it brings in network, and those migrants' effective
    rate on that care without and with it (unclaimed care included)."""
    people = admissions = cost = paid_without = paid_with = 0.0
    contracted = {option.destination: option.price_factor}
    for cid in sorted(members):
        county = instance.county(cid)
        weight = dict(county.migrant_destinations).get(option.destination, 0.0)
        people += county.enrollees * county.migrant_share * weight
        for flow in county_care(instance, county):
            if flow.who == MIGRANT and flow.place == option.destination:
                admissions += flow.admissions
                cost += flow.cost()
                paid_without += rate * flow.stream(members).mean
                paid_with += rate * flow.stream(members, contracted).mean
    return {"option": option.id, "destination": option.destination, "annual_cost": option.annual_cost,
            "price_factor": option.price_factor, "migrants": people, "admissions": admissions,
            "effective_rate_without": paid_without / cost if cost > 0 else None,
            "effective_rate_with": paid_with / cost if cost > 0 else None}
