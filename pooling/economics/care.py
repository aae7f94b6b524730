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

A contract (issue 25) serves the pool's migrants at its destination up to
its capacity (expected admissions a year): a share min(1, capacity / their
admissions there) of each of their flows is in network, costing price_factor
x the place's list price to the fund (per unit of rate) and to the enrollee
alike; the rest stays out of network at list price. Several contracts at one
place fill cheapest first.

`CountyCare` sums a county's flows in one column (a pool and the contracts it
takes): the expected eligible cost E[Y_c,P] (what the pool pays per unit of
rate), the expected cost of all its care T_c,P at the prices its enrollees
are billed (unclaimed included, contracted care at the contract's price: the
denominator of its effective rates, so that 1 - effective rate is the share
of the bill the enrollee pays), the same care at list prices (plan-free: the
denominator of coverage, which must not depend on the plan for the objective
to stay linear), and the migrants' and residents' parts.

With induced utilisation (economics.behaviour) a pool prices each member's
flows with its admissions scaled by a multiplier m_c (`multipliers`, county id
-> m_c; None or absent: 1): every flow of the county, its claims, its care
and the demand its migrants bring to a contract.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

from pooling.data.benefits import OUTSIDE_LEVEL, LevelTerms
from pooling.data.instance import OUTSIDE, County, Instance, OutOfNetworkTerms
from pooling.errors import InputError
from pooling.risk.benefit_severity import benefit_stream
from pooling.risk.claims import ClaimStream
from pooling.risk.severity import Severity

RESIDENT, MIGRANT = "resident", "migrant"

Contracted = dict[str, tuple[tuple[float, float], ...]] | None
"""Places a pool has contracted: destination -> the (price factor, capacity)
of each contract taken there, cheapest first (issues 14, 25)."""

Multipliers = dict[str, float] | None
"""county id -> the factor its admissions are scaled by (induced utilisation,
economics.behaviour); None (or a county absent) means 1."""

Fill = dict[str, tuple[tuple[tuple[float, float], ...], float]]
"""destination -> (((price factor, share served), ...), share left out of
network): how a pool's migrants' admissions at a contracted place are split."""


def contracted_places(options) -> dict[str, tuple[tuple[float, float], ...]]:
    """{destination: ((price factor, capacity), ...)} of the contract options a
    pool takes, cheapest first (they fill in that order)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for option in options:
        out.setdefault(option.destination, []).append((option.price_factor, option.capacity))
    return {place: tuple(sorted(layers)) for place, layers in out.items()}


class FlowPart(NamedTuple):
    """Part of a care flow priced one way in one column."""

    stream: ClaimStream               # claims the pool pays per unit of rate
    in_network: float                 # admissions in network (0 out of network)
    cost: float                       # expected cost of the care, at the price the enrollee is billed


@dataclass(frozen=True)
class CareFlow:
    """Expected admissions of one group of a county's enrollees at one place."""

    who: str                          # RESIDENT or MIGRANT
    place: str                        # county id, place id or OUTSIDE
    admissions: float                 # expected admissions a year (all multipliers at 1)
    severity: Severity
    approved_by: frozenset[str]       # in network iff non-empty and inside the pool
    out_of_network: OutOfNetworkTerms
    benefit: LevelTerms | None = None  # the spec's schedule at the place's level (None: pays eligible cost)

    def claims(self, admissions: float, factor: float) -> ClaimStream:
        """What the pool pays per unit of rate for `admissions` of these
        admissions whose eligible cost is `factor` x the list cost: that cost in
        full, or under the benefit schedule (risk.benefit_severity)."""
        terms = self.benefit
        if terms is None:
            return ClaimStream(admissions, self.severity, factor)
        return benefit_stream(admissions, self.severity, factor, terms.deductible, terms.cap, terms.level_factor)

    def cost(self) -> float:
        """Expected cost of all these admissions, claimed or not, at the place's
        list price (contracted care's cost at its contract price is per column:
        `parts`)."""
        return self.admissions * self.severity.expected_value

    def parts(self, members: frozenset[str], fill: Fill | None = None) -> tuple[FlowPart, ...]:
        """This flow in pool `members` as (claims per unit of rate, admissions in
        network, cost of the care) parts: all in network at list price when the
        pool approves the place; for migrants at a contracted place (`fill`,
        contract_fill) each contract's share at its price factor, in network,
        and the rest out of network; otherwise out of network (a share q
        claimed at phi times the list price)."""
        approved = self.approved_by
        if approved and approved <= members:
            return self.in_network_parts
        split = fill.get(self.place) if fill and self.who == MIGRANT else None
        if split is None:
            return self.out_of_network_parts
        served, rest = split
        out = [FlowPart(self.claims(self.admissions * share, factor), self.admissions * share,
                        self.cost() * share * factor) for factor, share in served if share > 0.0]
        if rest == 1.0:
            out.extend(self.out_of_network_parts)
        elif rest > 0.0:
            terms = self.out_of_network
            out.append(FlowPart(self.claims(self.admissions * rest * terms.claim_share, terms.factor),
                                0.0, self.cost() * rest))
        return tuple(out)

    def in_network(self, members: frozenset[str]) -> bool:
        """Whether pool `members` approves this flow's place (contracts aside)."""
        return bool(self.approved_by) and self.approved_by <= members

    def stream(self, members: frozenset[str]) -> ClaimStream:
        """The claims pool `members` pays per unit of rate for this flow (contracts aside)."""
        return self.parts(members)[0].stream

    # A flow's two streams without contracts, built once: pricing asks for them
    # for every pool the county is in (a frozen dataclass keeps them in __dict__).
    @functools.cached_property
    def in_network_stream(self) -> ClaimStream:
        return self.claims(self.admissions, 1.0)

    @functools.cached_property
    def out_of_network_stream(self) -> ClaimStream:
        terms = self.out_of_network
        return self.claims(self.admissions * terms.claim_share, terms.factor)

    @functools.cached_property
    def in_network_parts(self) -> tuple[FlowPart, ...]:
        return (FlowPart(self.in_network_stream, self.admissions, self.cost()),)

    @functools.cached_property
    def out_of_network_parts(self) -> tuple[FlowPart, ...]:
        return (FlowPart(self.out_of_network_stream, 0.0, self.cost()),)


def tier(county: County, prefecture: str | None, province: str | None) -> str:
    """Where a place lies relative to the county (instance.TIERS)."""
    if prefecture is not None and prefecture == county.prefecture:
        return "same_prefecture"
    if province is not None and county.province is not None and province == county.province:
        return "same_province"
    return "other_province"


def _flow(instance: Instance, county: County, who: str, key: str, admissions: float) -> CareFlow:
    params = instance.parameters

    def benefit(level: str) -> LevelTerms | None:
        """The schedule's terms at `level`, None where it pays the eligible cost."""
        if params.benefits is None:
            return None
        terms = params.benefits.terms(level)
        return None if terms.trivial else terms
    if key == OUTSIDE:
        return CareFlow(who, key, admissions, params.outside_severity, frozenset(),
                        params.terms("other_province"), benefit(OUTSIDE_LEVEL))
    if instance.has_place(key):
        place = instance.place(key)
        return CareFlow(who, key, admissions, place.severity, place.approved_by,
                        params.terms(tier(county, place.prefecture, place.province)), benefit(place.level))
    other = instance.county(key)   # another fund county's own hospitals
    return CareFlow(who, key, admissions, other.severity, frozenset((key,)),
                    params.terms(tier(county, other.prefecture, other.province)), benefit("county"))


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


def scaled_care(instance: Instance, county: County, multiplier: float = 1.0) -> tuple[CareFlow, ...]:
    """county_care with every flow's admissions scaled by `multiplier` (the
    memoised flows themselves at 1)."""
    flows = county_care(instance, county)
    if multiplier == 1.0:
        return flows
    return tuple(dataclasses.replace(f, admissions=f.admissions * multiplier) for f in flows)


def _multiplier(multipliers: Multipliers, cid: str) -> float:
    return 1.0 if not multipliers else multipliers.get(cid, 1.0)


@dataclass(frozen=True)
class CountyCare:
    """One county's care in one column (a pool and the contracts it takes):
    expected costs a year, multipliers at 1."""

    county: str
    enrollees: int
    eligible: float                   # E[Y_c,P]: claims paid per unit of rate
    total: float                      # T_c,P: all inpatient care, unclaimed included, at billed prices
    resident_eligible: float
    resident_total: float
    migrant_eligible: float
    migrant_total: float              # at billed prices (contracted care at its contract's price)
    migrant_admissions: float
    migrant_in_network_admissions: float
    list_total: float | None = None   # T_c at list prices (plan-free); None: equal to `total`
    admission_multiplier: float = 1.0
    """m_c the figures above are scaled by (induced utilisation; not in result.json)."""

    @property
    def effective_share(self) -> float:
        """e_c,P = E[Y_c,P] / T_c,P: the effective rate is r e_c,P (1 with no penalty)."""
        return self.eligible / self.total if self.total > 0 else 1.0

    @property
    def observed_eligible(self) -> float:
        """E[Y_c,P] at the observed admissions (m_c = 1): the effective
        coverage objective's weight, so that each county's coverage r E / T
        (unchanged by m_c) is weighted by its observed, plan-free cost."""
        return self.eligible / self.admission_multiplier

    @property
    def cost_at_list_prices(self) -> float:
        """T_c at list prices and observed admissions, whatever the plan:
        coverage's denominator."""
        return (self.total if self.list_total is None else self.list_total) / self.admission_multiplier

    def out_of_pocket(self, rate: float) -> float:
        """Expected out-of-pocket cost a year at `rate`: T_c,P - r E[Y_c,P]
        (unclaimed care, the unpaid share of claimed care, and the share of
        contracted care at its contract's price the fund does not pay)."""
        return self.total - rate * self.eligible


def contract_fill(instance: Instance, members: frozenset[str], contracted: Contracted,
                  multipliers: Multipliers = None) -> Fill:
    """How pool `members`' migrants' admissions at each contracted place are
    split: contracts cheapest first, each serving up to its capacity, the rest
    out of network (module docstring). A share is exactly 1 when a contract's
    capacity covers what is left, and exactly 0 when nothing is left or the
    capacity is 0. Memoised per (pool, contracts, multipliers)."""
    if not contracted:
        return {}
    cache = instance.__dict__.setdefault("_contract_fill", {})
    key = (members, tuple(sorted(contracted.items())))
    if multipliers:
        key += (tuple(sorted(multipliers.items())),)
    fill = cache.get(key)
    if fill is None:
        fill = {}
        for place, layers in sorted(contracted.items()):
            demand = math.fsum([f.admissions * _multiplier(multipliers, cid) for cid in sorted(members)
                                for f in county_care(instance, instance.county(cid))
                                if f.who == MIGRANT and f.place == place and not f.in_network(members)])
            if demand <= 0.0:
                continue
            left, served = demand, []
            for factor, capacity in layers:
                taken = min(capacity, left)
                left -= taken
                served.append((factor, taken / demand))
            fill[place] = (tuple(served), left / demand)
        cache[key] = fill
    return fill


def care_in_pool(instance: Instance, county: County, members: frozenset[str],
                 contracted: Contracted = None, multipliers: Multipliers = None) -> CountyCare:
    """One county's care in pool `members` with the contracts `contracted`,
    its admissions scaled by its multiplier in `multipliers` (module docstring)."""
    fill = contract_fill(instance, members, contracted, multipliers)
    scale = _multiplier(multipliers, county.id)
    resident, migrant, migrant_in, migrant_cost = [], [], [], []
    for flow in county_care(instance, county):   # parts are linear in the admissions (county_streams)
        for part in flow.parts(members, fill):
            if flow.who == RESIDENT:
                resident.append(part.stream.mean * scale)
            else:
                migrant.append(part.stream.mean * scale)
                migrant_cost.append(part.cost * scale)
                if part.in_network > 0.0:
                    migrant_in.append(part.in_network * scale)
    resident_eligible, migrant_eligible = math.fsum(resident), math.fsum(migrant)
    resident_total, list_migrant_total, migrant_admissions = _plan_free_totals(instance, county)
    if scale != 1.0:
        resident_total, list_migrant_total, migrant_admissions = (
            resident_total * scale, list_migrant_total * scale, migrant_admissions * scale)
    # Residents' care is never contracted; migrants' is billed at list price
    # unless a contract serves some of it (then the sum has more terms).
    migrant_total = math.fsum(migrant_cost) if fill else list_migrant_total
    total, list_total = resident_total + migrant_total, resident_total + list_migrant_total
    return CountyCare(
        county=county.id, enrollees=county.enrollees,
        eligible=resident_eligible + migrant_eligible, total=total,
        resident_eligible=resident_eligible, resident_total=resident_total,
        migrant_eligible=migrant_eligible, migrant_total=migrant_total,
        migrant_admissions=migrant_admissions, migrant_in_network_admissions=math.fsum(migrant_in),
        list_total=None if list_total == total else list_total, admission_multiplier=scale)


def _plan_free_totals(instance: Instance, county: County) -> tuple[float, float, float]:
    """A county's residents' and migrants' cost of all care at list prices
    (plan-free) and its migrants' admissions, memoised."""
    cache = instance.__dict__.setdefault("_care_totals", {})
    totals = cache.get(county.id)
    if totals is None:
        flows = county_care(instance, county)
        totals = cache[county.id] = (math.fsum([f.cost() for f in flows if f.who == RESIDENT]),
                                     math.fsum([f.cost() for f in flows if f.who == MIGRANT]),
                                     math.fsum([f.admissions for f in flows if f.who == MIGRANT]))
    return totals


def county_streams(instance: Instance, county: County, members: frozenset[str],
                   contracted: Contracted = None, multipliers: Multipliers = None) -> list[ClaimStream]:
    """Claim streams of one county's enrollees when it belongs to pool
    `members`, its admissions scaled by its multiplier in `multipliers`."""
    fill = contract_fill(instance, members, contracted, multipliers)
    scale = _multiplier(multipliers, county.id)
    streams = [part.stream for flow in county_care(instance, county) for part in flow.parts(members, fill)]
    if scale == 1.0:
        return streams
    # A flow's parts are linear in its admissions (given the fill): scaling the
    # memoised flows' streams is scaling the flows, without rebuilding them.
    return [ClaimStream(s.rate * scale, s.severity, s.factor) for s in streams]


CARE_FIELDS = ("county", "enrollees", "eligible", "total", "resident_eligible", "resident_total",
               "migrant_eligible", "migrant_total", "migrant_admissions", "migrant_in_network_admissions")
"""A CountyCare's fields always in result.json, in its order; `list_total`
follows only where contracted care makes it differ from `total` (care_row),
so results without such contracts are written as before; so does
`admission_multiplier` where it is not 1 (induced utilisation)."""


def care_row(care: CountyCare) -> dict:
    """A CountyCare as result.json's county_care entry."""
    row = {f: getattr(care, f) for f in CARE_FIELDS}
    if care.list_total is not None:
        row["list_total"] = care.list_total
    if care.admission_multiplier != 1.0:
        row["admission_multiplier"] = care.admission_multiplier
    return row


def _share(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else min(1.0, max(0.0, numerator / denominator))


def portability(cares_and_rates) -> dict[str, float | None]:
    """What enrollees receive under rates: each figure over (CountyCare, rate) pairs
    (one pool's members, or a whole plan). Effective rates are expected
    reimbursement over the expected cost of all care, unclaimed included, at
    the prices enrollees are billed (contracted care at its contract's price);
    coverage is reimbursement over all care at list prices (the objective's
    plan-free D), both at observed admissions (induced care leaves each
    county's ratio unchanged; CountyCare.observed_eligible); in-network share counts admissions. None where there is
    nothing to share (no migrants)."""
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
        "effective_coverage": _share(paid("observed_eligible"), cost("cost_at_list_prices")),
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
    """What one contract option, taken alone, does for a pool at `rate`: the
    migrants at its destination and their expected admissions there, the
    admissions it serves in network (up to its capacity), and on that care
    (unclaimed included) those migrants' effective rate and expected
    out-of-pocket cost a year without and with it."""
    fill = contract_fill(instance, members, contracted_places([option]))
    people = 0.0
    admissions, served, cost_without, cost_with, paid_without, paid_with = [], [], [], [], [], []
    for cid in sorted(members):
        county = instance.county(cid)
        weight = dict(county.migrant_destinations).get(option.destination, 0.0)
        people += county.enrollees * county.migrant_share * weight
        for flow in county_care(instance, county):
            if flow.who == MIGRANT and flow.place == option.destination:
                admissions.append(flow.admissions)
                for part in flow.parts(members):
                    cost_without.append(part.cost)
                    paid_without.append(rate * part.stream.mean)
                for part in flow.parts(members, fill):
                    served.append(part.in_network)
                    cost_with.append(part.cost)
                    paid_with.append(rate * part.stream.mean)
    without, with_it = math.fsum(cost_without), math.fsum(cost_with)
    paid_0, paid_1 = math.fsum(paid_without), math.fsum(paid_with)
    return {"option": option.id, "destination": option.destination, "annual_cost": option.annual_cost,
            "price_factor": option.price_factor, "capacity": option.capacity, "migrants": people,
            "admissions": math.fsum(admissions), "admissions_served": math.fsum(served),
            "effective_rate_without": paid_0 / without if without > 0 else None,
            "effective_rate_with": paid_1 / with_it if with_it > 0 else None,
            "out_of_pocket_without": without - paid_0, "out_of_pocket_with": with_it - paid_1}
