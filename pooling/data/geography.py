"""Where care is bought and how it is paid for, as read from an instance file
(issues 13 and 14): places of care, out-of-network tiers, regional shock
levels, running-cost financing and contract options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pooling.data.fields import FieldReader, describe, encodable
from pooling.data.laws import MAX_MONEY, OUTSIDE, read_severity, read_shock_cv
from pooling.errors import InputError
from pooling.risk.severity import Severity

TIERS = ("same_prefecture", "same_province", "other_province")
"""Where out-of-network care is bought, relative to the enrollee's county: the
claim share and eligible-cost factor may differ by tier (referrals inside the
prefecture are claimed almost always; care in another province needs a trip home)."""
PLACE_LEVELS = ("county", "prefecture", "province")
ADMIN_FINANCING = ("county_budget", "risk_fund")
"""Who pays the running costs (admin_fixed_per_fund, admin_per_capita). NRCMS
rules put them on the county budget, never on the fund (instances/README.md)."""
DEFAULT_ADMIN_FINANCING = "county_budget"
MAX_REGIONAL_WEIGHT = 0.999
"""Prefecture + county shock weights: the national part keeps at least 0.1% so
the national multiplier (the one the samplers condition on) is never empty."""




@dataclass(frozen=True)
class OutOfNetworkTerms:
    """Out of network in one tier: a share `claim_share` of admissions is claimed
    and reimbursed at `factor` x r."""

    claim_share: float
    factor: float


@dataclass(frozen=True)
class ShockLevel:
    """One level of the admission-rate multiplier M_c = sum_L weight_L Theta_L:
    Theta_L ~ Gamma(mean 1, cv), independent across levels and units."""

    weight: float
    cv: float




NO_SHOCK = ShockLevel(0.0, 0.0)
"""A shock level that is off (weight 0)."""


@dataclass(frozen=True)
class Place:
    """Somewhere care is bought other than a fund county of the file: a county's
    hospitals (a county not in this file), a prefecture city's or a province's.
    In network for a pool holding every county of `approved_by` (never if empty)."""

    id: str
    name: str
    level: str
    prefecture: str | None
    province: str | None
    severity: Severity
    approved_by: frozenset[str]


DEFAULT_CONTRACT_CAPACITY = 3_000.0
"""Admissions a year a contract serves when its option gives no `capacity`
(assumed, A). The one contract the sources describe (Gushi's NRCMS bureau and
one Beijing hospital, CNY 50,000 prepaid; CALIBRATION.md) gives no volume. One
hospital, private and so most likely secondary (the source: contracted
hospitals were mostly private): assumed 300 beds at 85% occupancy and a
10-day mean stay serve about 9,300 admissions a year, of which about a third
could go to one origin's migrants without crowding out its other patients:
about 3,000 (plausible range 1,000-10,000). A contract for more care should
say so in its option."""
MAX_CONTRACT_CAPACITY = 1e11
"""The most admissions an instance's migrants can have (2e9 enrollees at 5
admissions a year, times a migrant admission factor of 10; data.instance's
limits): a capacity at or above every flow already serves them all, so a
larger figure is refused as a data error. Give this for "no limit"."""


@dataclass(frozen=True)
class ContractOption:
    """A bilateral contract a pool may take (issues 14, 25): the pool's
    members' migrants living at `destination` are in network there, up to
    `capacity` admissions a year over all of them (beyond it their care stays
    out of network), each contracted admission costing `price_factor` x the
    place's list price to the fund and to the enrollee alike; it costs the
    fund `annual_cost` a year. A pool may take it when it holds a county of
    `origin`."""

    id: str
    origin: frozenset[str]
    destination: str
    annual_cost: float
    price_factor: float
    capacity: float = DEFAULT_CONTRACT_CAPACITY
    sources: tuple[str, ...] = ()




def read_tiers(reader: FieldReader) -> tuple[tuple[str, OutOfNetworkTerms], ...]:
    table = reader.table("out_of_network_tiers", default={})
    tiers = []
    for tier in TIERS:
        if not table.has(tier):
            continue
        terms = table.table(tier)
        tiers.append((tier, OutOfNetworkTerms(claim_share=terms.share("claim_share"),
                                              factor=terms.share("factor"))))
        terms.finish()
    table.finish()
    return tuple(tiers)


def read_regional_shocks(reader: FieldReader) -> tuple[ShockLevel, ShockLevel]:
    table = reader.table("regional_shocks", default={})
    levels = []
    for level in ("prefecture", "county"):
        if not table.has(level):
            levels.append(ShockLevel(0.0, 0.0))
            continue
        part = table.table(level)
        levels.append(ShockLevel(weight=part.share("weight", high=MAX_REGIONAL_WEIGHT),
                                 cv=read_shock_cv(part, "cv")))
        part.finish()
    table.finish()
    if levels[0].weight + levels[1].weight > MAX_REGIONAL_WEIGHT:
        raise reader.fail("regional_shocks", f"weights must sum to at most {MAX_REGIONAL_WEIGHT:g} (the "
                                             f"national part keeps the rest), got "
                                             f"{levels[0].weight + levels[1].weight:g}")
    return levels[0], levels[1]




def read_places(raw: Any, source: str) -> tuple[Place, ...]:
    if not isinstance(raw, list):
        raise InputError(f"{source}: places must be a list of places, got {describe(raw)}")
    places, seen = [], set()
    for index, item in enumerate(raw):
        where = (f'{source}: place "{item["id"]}"' if isinstance(item, dict) and isinstance(item.get("id"), str)
                 and encodable(item["id"]) else f"{source}: place #{index + 1}")
        reader = FieldReader(item, where)
        place_id = reader.string("id")
        if place_id in seen:
            raise reader.fail("id", "appears more than once; place ids must be unique")
        if place_id == OUTSIDE:
            raise reader.fail("id", f'must not be the reserved key "{OUTSIDE}"')
        seen.add(place_id)
        prefecture = reader.raw("prefecture", None)
        province = reader.raw("province", None)
        for key, value in (("prefecture", prefecture), ("province", province)):
            if value is not None:
                reader.string(key)
        places.append(Place(
            id=place_id, name=reader.string("name"), level=reader.string("level", choices=PLACE_LEVELS),
            prefecture=prefecture, province=province, severity=read_severity(reader.table("severity")),
            approved_by=frozenset(reader.string_list("approved_by"))))
        reader.finish()
    return tuple(places)


MAX_PRICE_FACTOR = 1.0
"""A contract's negotiated price is at most the place's list price: above it no
county would sign (and effective rates could pass 1)."""
MIN_PRICE_FACTOR = 0.1
"""Below a tenth of the list price a price is not a negotiated discount but a data error."""


CONTRACTS_REPRICED = 3
"""The instance format version from which contracted care costs price_factor x
list price in enrollees' bills too and a contract has a capacity (data.formats.CHANGES)."""


def read_contract_options(raw: Any, source: str, counties: set[str], places: set[str], version: int):
    """The contract options of an instance file of format `version`: options
    in a file older than CONTRACTS_REPRICED meant something else and are refused
    (what changed and how to update is in the message)."""
    if version < CONTRACTS_REPRICED and raw != []:
        raise InputError(
            f'{source}: contract_options in pooling.instance/{version} meant contracted care billed to enrollees '
            f'at list price, with no limit on how much a contract serves; since '
            f'pooling.instance/{CONTRACTS_REPRICED} it costs price_factor x list price in the fund\'s claims and '
            f"in enrollees' bills alike, and a contract serves at most its `capacity` admissions a year "
            f"(default {DEFAULT_CONTRACT_CAPACITY:,.0f}). To update the file, check each option's price_factor "
            f'and capacity and set "format": "pooling.instance/{CONTRACTS_REPRICED}" (docs/formats.md, '
            f'"Format versions")')
    if not isinstance(raw, list):
        raise InputError(f"{source}: contract_options must be a list of contract options, got {describe(raw)}")
    options, seen = [], set()
    for index, item in enumerate(raw):
        where = (f'{source}: contract option "{item["id"]}"' if isinstance(item, dict)
                 and isinstance(item.get("id"), str) and encodable(item["id"])
                 else f"{source}: contract option #{index + 1}")
        reader = FieldReader(item, where)
        option_id = reader.string("id")
        if option_id in seen:
            raise reader.fail("id", "appears more than once; contract option ids must be unique")
        seen.add(option_id)
        origin_raw = reader.raw("origin")
        origin = [origin_raw] if isinstance(origin_raw, str) else origin_raw
        if not isinstance(origin, list) or not origin or not all(isinstance(o, str) for o in origin):
            raise reader.fail("origin", f"must be a county id or a non-empty list of county ids, "
                                        f"got {describe(origin_raw)}")
        unknown = [o for o in origin if o not in counties]
        if unknown:
            raise reader.fail("origin", f'names "{unknown[0]}", which is not a county id of this instance')
        destination = reader.string("destination")
        if destination not in places:
            raise reader.fail("destination", f'"{destination}" is not a place or county id of this instance')
        if destination in origin:
            raise reader.fail("destination", "is one of its origins; a contract buys care elsewhere")
        annual_cost = reader.number("annual_cost", low=0.0, high=MAX_MONEY)
        price_factor = reader.number("price_factor", low=MIN_PRICE_FACTOR, high=MAX_PRICE_FACTOR)
        capacity = reader.number("capacity", low=0.0, high=MAX_CONTRACT_CAPACITY,
                                 default=DEFAULT_CONTRACT_CAPACITY)
        sources = reader.string_list("sources") if reader.has("sources") else []
        reader.finish()
        options.append(ContractOption(id=option_id, origin=frozenset(origin), destination=destination,
                                      annual_cost=annual_cost, price_factor=price_factor, capacity=capacity,
                                      sources=tuple(sources)))
    return tuple(options)


