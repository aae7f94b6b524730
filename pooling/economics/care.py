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

import dataclasses
import functools
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

    def cost(self) -> float:
        """Expected cost of all these admissions, claimed or not, at the place's
        list price (a contract's negotiated price changes what the fund pays,
        not this yardstick: every effective rate and coverage's denominator
        D stay plan-independent, and a discount shows as a lower effective rate)."""
        return self.admissions * self.severity.expected_value

    def priced(self, members: frozenset[str], contracted: Contracted = None) -> tuple[ClaimStream, bool]:
        """The claims pool `members` pays per unit of rate for this flow, and
        whether the flow is in network: all of it in network (at a contract's
        price factor for migrants at a contracted place the pool does not
        already approve); a share q at phi times its cost out of network."""
        approved = self.approved_by
        if approved and approved <= members:
            return self.in_network_stream, True
        if contracted and self.who == MIGRANT:
            price = contracted.get(self.place)
            if price is not None:
                return ClaimStream(self.admissions, self.severity, price), True
        return self.out_of_network_stream, False

    def in_network(self, members: frozenset[str], contracted: Contracted = None) -> bool:
        return self.priced(members, contracted)[1]

    def stream(self, members: frozenset[str], contracted: Contracted = None) -> ClaimStream:
        return self.priced(members, contracted)[0]

    # A flow's two streams without contracts, built once: pricing asks for them
    # for every pool the county is in (a frozen dataclass keeps them in __dict__).
    @functools.cached_property
    def in_network_stream(self) -> ClaimStream:
        return ClaimStream(self.admissions, self.severity, 1.0)

    @functools.cached_property
    def out_of_network_stream(self) -> ClaimStream:
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
        # Equal severities (each county holds its own copy) as one object, so a
        # pool's streams merge by identity (risk.claims.merge_streams) instead of
        # by comparing severity values, the costly part of merging.
        shared = instance.__dict__.setdefault("_severities", {})
        flows = tuple(f if shared.setdefault(f.severity, f.severity) is f.severity
                      else dataclasses.replace(f, severity=shared[f.severity]) for f in flows)
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
    resident, migrant, migrant_in = [], [], []
    for flow in county_care(instance, county):
        stream, inside = flow.priced(members, contracted)
        if flow.who == RESIDENT:
            resident.append(stream.mean)
        else:
            migrant.append(stream.mean)
            if inside:
                migrant_in.append(flow.admissions)
    resident_eligible, migrant_eligible = math.fsum(resident), math.fsum(migrant)
    resident_total, migrant_total, migrant_admissions = _plan_free_totals(instance, county)
    return CountyCare(
        county=county.id, enrollees=county.enrollees,
        eligible=resident_eligible + migrant_eligible, total=resident_total + migrant_total,
        resident_eligible=resident_eligible, resident_total=resident_total,
        migrant_eligible=migrant_eligible, migrant_total=migrant_total,
        migrant_admissions=migrant_admissions, migrant_in_network_admissions=math.fsum(migrant_in))


def _plan_free_totals(instance: Instance, county: County) -> tuple[float, float, float]:
    """A county's residents' and migrants' cost of all care (at list prices: T_c
    does not depend on the plan) and its migrants' admissions, memoised."""
    cache = instance.__dict__.setdefault("_care_totals", {})
    totals = cache.get(county.id)
    if totals is None:
        flows = county_care(instance, county)
        totals = cache[county.id] = (math.fsum([f.cost() for f in flows if f.who == RESIDENT]),
                                     math.fsum([f.cost() for f in flows if f.who == MIGRANT]),
                                     math.fsum([f.admissions for f in flows if f.who == MIGRANT]))
    return totals


def county_streams(instance: Instance, county: County, members: frozenset[str],
                   contracted: Contracted = None) -> list[ClaimStream]:
    """Claim streams of one county's enrollees when it belongs to pool `members`."""
    return [flow.priced(members, contracted)[0] for flow in county_care(instance, county)]


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
