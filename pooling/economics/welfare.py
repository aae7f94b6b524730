"""What enrollees pay under a plan, per group (issue 25 item 4; docs/model.md §Welfare).

A group is the residents of one county, or its migrants living in one tier
of destination (same prefecture, same province, other province). Under a
plan each group's care is priced as its pool prices it (economics.care: the
pool's network, its contracts, the benefit schedule, and induced utilisation
at the pool's rate), and each record gives, for a year:

- expected out-of-pocket cost (OOP) per enrollee and per admission: the
  billed cost of all the group's care (unclaimed included, contracted care at
  its contract's price) minus r x what the fund pays per unit of rate; exact
  expectations, the same sums as the effective rates;
- the share of the bill the group pays, OOP / billed cost (1 minus its
  effective rate);
- catastrophic incidence: the probability that one enrollee's yearly OOP
  exceeds `catastrophic_share` x `income_per_capita`;
- with `travel_cost` > 0, the travel cost per enrollee (assumed figure x
  out-of-network admissions), kept apart from OOP and from catastrophic
  incidence (the definitions count medical spending only).

Catastrophic incidence. An enrollee's admissions are Poisson with the group's
expected admissions per person (not mixed by the year's common shocks: those
move a whole county together and are the fund's risk, not the spread between
its members), each going to a place with the flow's share. One admission's
OOP is an increasing piecewise-linear function of its list cost X: billed bX
less r x the schedule's payment l min(max(eX - d, 0), c) (b the billed
factor, e the eligible one: 1 and 1 in network, the price factor for both
under a contract, 1 and phi out of network), and bX when an out-of-network
admission is not claimed (probability 1 - q). Its law is the severity's cdf
at the inverse, so the yearly OOP is a compound Poisson whose law on
[0, threshold] is computed on a lattice by FFT, twice: costs rounded up to the
lattice (an upper bound of the incidence) and down (a lower bound, less the
FFT's wrap-around bound). The midpoint is reported; the lattice is refined
until the bracket is narrower than CATASTROPHIC_TOLERANCE. A migrant lives at
one destination, so a tier's incidence is the people-weighted mean over its
destinations, each a compound Poisson of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from pooling.data.instance import OUTSIDE, County, Instance
from pooling.data.welfare import WelfareTerms
from pooling.economics.behaviour import multipliers as rate_multipliers
from pooling.economics.care import (
    MIGRANT,
    RESIDENT,
    CareFlow,
    contract_fill,
    contracted_places,
    scaled_care,
    tier,
)
from pooling.errors import NumericsError

CATASTROPHIC_TOLERANCE = 1e-4
"""Widest accepted bracket [lower, upper] of a group's catastrophic incidence
(absolute probability): incidences are reported to 0.01 %, far finer than
any survey measures them (CALIBRATION.md: 10.9-18.4 %)."""
ALIAS_TOLERANCE = 1e-13
"""Bound on P(N > k) for the admissions count N that sets the FFT's length
(k + 1 lattices): the mass wrapped around onto [0, threshold] is at most
this, and is taken off the lower bound."""
START_CELLS, MAX_CELLS = 1024, 2 ** 16
"""Lattice cells on [0, threshold]: the first try, and the finest before
giving up with a NumericsError (measured: 1024 suffices for 2011 costs)."""
GROUPS = ("residents", "migrants_same_prefecture", "migrants_same_province", "migrants_other_province")
"""A record's `group`, in the order records are listed within a county."""
RECORD_FIELDS = ("pool", "county", "group", "people", "admissions", "billed_cost", "out_of_pocket",
                 "out_of_pocket_per_enrollee", "out_of_pocket_per_admission", "share_of_bill_paid",
                 "catastrophic_incidence", "catastrophic_bracket", "travel_cost_per_enrollee")
"""Fields of one welfare record, in order (result.json / evaluation.json `welfare`)."""


@dataclass(frozen=True)
class Piece:
    """Admissions of one flow priced one way: their OOP is b X less r l
    min(max(e X - d, 0), c) with probability `claimed`, else b X."""

    admissions: float
    flow: CareFlow
    billed: float
    eligible: float
    claimed: float

    def oop_cdf(self, y: np.ndarray, rate: float) -> np.ndarray:
        """P(OOP of one admission <= y), y >= 0."""
        cdf = self.flow.severity.cdf
        b, e = self.billed, self.eligible
        unclaimed = np.asarray(cdf(y / b), dtype=float)
        if self.claimed == 0.0:
            return unclaimed
        terms = self.flow.benefit
        d, cap, level = (0.0, None, 1.0) if terms is None else (terms.deductible, terms.cap, terms.level_factor)
        slope = b - rate * level * e       # >= 0: r, l <= 1 and e <= b
        if e <= 0.0 or rate * level == 0.0:
            x = y / b
        else:
            x1 = d / e
            x2 = math.inf if cap is None else (d + cap) / e
            y1 = b * x1
            y2 = math.inf if cap is None else b * x2 - rate * level * cap
            with np.errstate(invalid="ignore"):   # inf - inf in branches np.where does not take
                middle = x1 + (y - y1) / slope if slope > 0.0 else np.full_like(y, x2)
                x = np.where(y < y1, y / b, np.where(y < y2, middle, x2 + (y - y2) / b))
        finite = np.isfinite(x)
        claimed = np.ones_like(y)
        claimed[finite] = np.asarray(cdf(x[finite]), dtype=float)
        return self.claimed * claimed + (1.0 - self.claimed) * unclaimed


def _pieces(flow: CareFlow, members: frozenset[str], fill) -> list[Piece]:
    """The flow's admissions as pieces, mirroring CareFlow.parts."""
    if flow.in_network(members):
        return [Piece(flow.admissions, flow, 1.0, 1.0, 1.0)]
    oon = flow.out_of_network
    split = fill.get(flow.place) if fill and flow.who == MIGRANT else None
    if split is None:
        return [Piece(flow.admissions, flow, 1.0, oon.factor, oon.claim_share)]
    served, rest = split
    out = [Piece(flow.admissions * share, flow, factor, factor, 1.0) for factor, share in served if share > 0.0]
    if rest > 0.0:
        out.append(Piece(flow.admissions * rest, flow, 1.0, oon.factor, oon.claim_share))
    return out


Cache = dict
"""Memo of one welfare_records call: a piece kind's OOP cdf on a lattice, and
a person type's incidence (many counties and destinations share them)."""


def _piece_key(piece: Piece) -> tuple:
    return (piece.flow.severity, piece.flow.benefit, piece.billed, piece.eligible, piece.claimed)


def _lattice(pieces: list[Piece], rate: float, threshold: float, cells: int,
             cache: Cache) -> tuple[np.ndarray, np.ndarray]:
    """One admission's OOP law on cells 0..cells of span threshold / cells,
    rounded up and rounded down (defective: mass beyond the last cell left off)."""
    total = math.fsum(p.admissions for p in pieces)
    y = np.arange(cells + 2) * (threshold / cells)
    cdf = np.zeros(cells + 2)
    for p in pieces:
        key = ("cdf", _piece_key(p), rate, threshold, cells)
        if key not in cache:
            cache[key] = p.oop_cdf(y, rate)
        cdf += (p.admissions / total) * cache[key]
    cdf = np.maximum.accumulate(np.clip(cdf, 0.0, 1.0))
    up = np.diff(cdf[:cells + 1], prepend=0.0)           # (y_{j-1}, y_j] -> j (mass at 0 stays at 0)
    down = np.diff(cdf[:cells + 2])                       # (y_j, y_{j+1}] -> j
    down[0] += cdf[0]
    return up, down


def _within(pmf: np.ndarray, lam: float) -> tuple[float, float]:
    """P(compound Poisson(lam, pmf) lands on cells 0..n) by FFT, and the bound
    on mass wrapped onto them from beyond the FFT's length."""
    n = len(pmf)
    k = 1
    while special.pdtrc(k, lam) > ALIAS_TOLERANCE:   # P(N > k); scipy.special, not scipy.stats (slow import)
        k += 1
    length = 1 << int(math.ceil(math.log2((k + 1) * n)))
    spectrum = np.fft.rfft(pmf, length)
    law = np.fft.irfft(np.exp(lam * (spectrum - 1.0)), length)[:n]
    return float(np.clip(math.fsum(law), 0.0, 1.0)), float(special.pdtrc(k, lam))


def catastrophic_incidence(pieces: list[Piece], people: float, rate: float, threshold: float,
                           cache: Cache | None = None) -> tuple[float, float]:
    """(incidence, bracket width) for one person type: P(a year's OOP > threshold)."""
    admissions = math.fsum(p.admissions for p in pieces)
    if people <= 0.0 or admissions <= 0.0:
        return 0.0, 0.0
    cache = {} if cache is None else cache
    lam = admissions / people
    key = ("type", lam, rate, threshold, tuple((_piece_key(p), p.admissions / admissions) for p in pieces))
    if key not in cache:
        cache[key] = _incidence(pieces, lam, rate, threshold, cache)
    return cache[key]


def _incidence(pieces: list[Piece], lam: float, rate: float, threshold: float, cache: Cache) -> tuple[float, float]:
    cells = START_CELLS
    while True:
        up, down = _lattice(pieces, rate, threshold, cells, cache)
        p_up, alias = _within(up, lam)
        p_down, _ = _within(down, lam)
        upper, lower = min(1.0, 1.0 - p_up + alias), max(0.0, 1.0 - p_down - alias)
        if upper - lower <= CATASTROPHIC_TOLERANCE:
            return 0.5 * (upper + lower), upper - lower
        if cells >= MAX_CELLS:
            raise NumericsError(f"catastrophic incidence: bracket [{lower:.6g}, {upper:.6g}] wider than "
                                f"{CATASTROPHIC_TOLERANCE:g} at {cells} lattice cells")
        cells *= 2


def _group_of(instance: Instance, county: County, flow: CareFlow) -> str:
    if flow.who == RESIDENT:
        return GROUPS[0]
    if flow.place == OUTSIDE:
        return "migrants_other_province"
    place = instance.place(flow.place) if instance.has_place(flow.place) else instance.county(flow.place)
    return f"migrants_{tier(county, place.prefecture, place.province)}"


def county_welfare(instance: Instance, terms: WelfareTerms, pool_id: str, members: frozenset[str],
                   contracts: tuple[str, ...], rate: float, county: County, cache: Cache | None = None) -> list[dict]:
    """The welfare records of one county's groups in its pool at `rate`."""
    scales = rate_multipliers(instance, members, rate)
    fill = contract_fill(instance, members, contracted_places([instance.contract(o) for o in contracts]), scales)
    scale = (scales or {}).get(county.id, 1.0)
    destination_weight = dict(county.migrant_destinations)
    migrants = county.enrollees * county.migrant_share
    groups: dict[str, dict] = {}
    for flow in scaled_care(instance, county, scale):
        name = _group_of(instance, county, flow)
        g = groups.setdefault(name, {"billed": [], "paid": [], "in": [], "types": []})
        for part in flow.parts(members, fill):
            g["billed"].append(part.cost)
            g["paid"].append(rate * part.stream.mean)
            g["in"].append(part.in_network)
        pieces = _pieces(flow, members, fill)
        people = (county.enrollees * (1.0 - county.migrant_share) if flow.who == RESIDENT
                  else migrants * destination_weight[flow.place])
        if flow.who == RESIDENT and g["types"]:
            g["types"][0][0].extend(pieces)        # one person type: residents choose a place per admission
        else:
            g["types"].append((pieces, people))
    out = []
    for name in GROUPS:
        g = groups.get(name)
        if g is None:
            continue
        people = math.fsum(p for _, p in g["types"])
        if people <= 0.0:
            continue
        billed, paid = math.fsum(g["billed"]), math.fsum(g["paid"])
        admissions = math.fsum(p.admissions for pieces, _ in g["types"] for p in pieces)
        oop = billed - paid
        incidences = [(catastrophic_incidence(pieces, p, rate, terms.threshold, cache), p) for pieces, p in g["types"]]
        out.append({
            "pool": pool_id, "county": county.id, "group": name, "people": people, "admissions": admissions,
            "billed_cost": billed, "out_of_pocket": oop, "out_of_pocket_per_enrollee": oop / people,
            "out_of_pocket_per_admission": oop / admissions if admissions > 0.0 else None,
            "share_of_bill_paid": oop / billed if billed > 0.0 else None,
            "catastrophic_incidence": math.fsum(x * p for (x, _), p in incidences) / people,
            "catastrophic_bracket": max(w for (_, w), _ in incidences),
            "travel_cost_per_enrollee": terms.travel_cost * (admissions - math.fsum(g["in"])) / people})
    return out


def welfare_records(instance: Instance, terms: WelfareTerms, pools) -> list[dict]:
    """Every group's record under a plan (pools: PoolOutcome-like, with `id`,
    `rate` and `pricing.counties` / `pricing.contracts`), pools in order,
    counties by id, groups in GROUPS order."""
    out: list[dict] = []
    cache: Cache = {}
    for pool in pools:
        members = frozenset(pool.pricing.counties)
        for cid in sorted(members):
            out.extend(county_welfare(instance, terms, pool.id, members, tuple(pool.pricing.contracts),
                                      pool.rate, instance.county(cid), cache))
    return out


def plan_welfare(records: list[dict]) -> list[dict]:
    """The records summed over a plan's counties, one per group kind (GROUPS
    order, kinds without people left out): OOP per enrollee and per admission
    and share of the bill as ratios of sums; catastrophic incidence and travel
    cost per enrollee people-weighted."""
    out = []
    for name in GROUPS:
        rows = [w for w in records if w["group"] == name]
        people = math.fsum(w["people"] for w in rows)
        if people <= 0.0:
            continue
        oop, billed = math.fsum(w["out_of_pocket"] for w in rows), math.fsum(w["billed_cost"] for w in rows)
        admissions = math.fsum(w["admissions"] for w in rows)
        out.append({"group": name, "people": people, "admissions": admissions,
                    "out_of_pocket_per_enrollee": oop / people,
                    "out_of_pocket_per_admission": oop / admissions if admissions > 0.0 else None,
                    "share_of_bill_paid": oop / billed if billed > 0.0 else None,
                    "catastrophic_incidence": math.fsum(w["people"] * w["catastrophic_incidence"]
                                                        for w in rows) / people,
                    "travel_cost_per_enrollee": math.fsum(w["people"] * w["travel_cost_per_enrollee"]
                                                          for w in rows) / people})
    return out
