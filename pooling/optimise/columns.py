"""From priced candidate pools to MILP columns: rate bounds, menus, gap groups.

A candidate is admissible when its rate interval [L_P, r*_P] is non-empty
(and, with a rate menu, holds a menu rate). Only admissible candidates become
columns; the others are kept for diagnosis.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import contract_variants
from pooling.economics.objectives import MEAN_RATE, pool_weight
from pooling.economics.pools import PoolPricer, PoolPricing
from pooling.economics.rules import RateBound, binding_bound, lower_bounds
from pooling.errors import InputError
from pooling.optimise.formulations.set_partition import (
    Column,
    PartitionRules,
    menu_steps,
)


@dataclass(frozen=True)
class Candidate:
    pricing: PoolPricing
    bounds: tuple[RateBound, ...]
    column: Column
    on_menu: bool = True  # a menu rate lies in [L_P, r*_P] (always true without a menu)

    @property
    def lower(self) -> RateBound:
        return binding_bound(list(self.bounds))

    @property
    def admissible(self) -> bool:
        return self.column.min_rate <= self.column.max_rate and self.on_menu


def gap_groups(instance: Instance, spec: Spec, members) -> tuple[str, ...]:
    """The rate-gap groups a pool belongs to (every prefecture/province it touches)."""
    scope = spec.equalisation.gap_scope
    if spec.equalisation.max_rate_gap is None:
        return ()
    if scope == "instance":
        return ("instance",)
    values = set()
    for cid in members:
        value = getattr(instance.county(cid), scope)
        if value is None:
            raise InputError(f'{instance.source}: county "{cid}": province is missing, but the spec '
                             f'sets equalisation.gap_scope = "province"')
        values.add(value)
    return tuple(sorted(values))


def partition_rules(spec: Spec) -> PartitionRules:
    return PartitionRules(objective=spec.objective.kind, min_rate=spec.rates.min,
                          max_rate=spec.rates.max, max_rate_gap=spec.equalisation.max_rate_gap,
                          rate_step=spec.rates.step)


class CandidateMaker:
    """Turns pools into candidates under one (instance, spec): prices them with
    the given pricer and attaches rate bounds, gap groups and the menu check.
    Each county's stand-alone pricing (for no_county_worse_off) is computed once."""

    def __init__(self, instance: Instance, spec: Spec, pricer: PoolPricer):
        self.instance, self.spec, self.pricer = instance, spec, pricer
        self._alone: dict[str, PoolPricing] | None = None

    def _alone_pricings(self) -> dict[str, PoolPricing]:
        if self._alone is None:
            self._alone = {}
            if self.spec.equalisation.no_county_worse_off:
                self._alone = {cid: self.pricer.price([cid]) for cid in self.instance.ids}
        return self._alone

    def make(self, members, contracts=()) -> Candidate:
        instance, spec = self.instance, self.spec
        pricing = self.pricer.price(members, contracts)
        bounds = tuple(lower_bounds(instance, spec, pricing, self._alone_pricings()))
        low = binding_bound(list(bounds)).value
        col = Column(members=pricing.counties, enrollees=pricing.enrollees, max_rate=pricing.max_rate,
                     min_rate=max(low, 0.0), gap_groups=gap_groups(instance, spec, members),
                     weight=None if spec.objective.kind == MEAN_RATE else pool_weight(spec.objective.kind, pricing),
                     contracts=pricing.contracts)
        on_menu = True
        if spec.rates.step is not None:
            k_lo, k_hi = menu_steps(col, spec.rates.min, spec.rates.step)
            on_menu = k_lo <= k_hi
        return Candidate(pricing=pricing, bounds=bounds, column=col, on_menu=on_menu)


class MenuMaker:
    """Candidates under every schedule of the spec's benefit menu: one
    CandidateMaker per schedule (its spec paying that schedule: rules, rates
    alone and all), each candidate's pricing naming its schedule. Without a
    menu, the spec's own CandidateMaker and untagged candidates, as always."""

    def __init__(self, instance: Instance, spec: Spec, pricer=PoolPricer):
        """`pricer(instance, spec)` builds each schedule's PoolPricer."""
        self.makers = [(schedule, CandidateMaker(instance, member, pricer(instance, member)))
                       for schedule, member in spec.schedule_specs()]

    def __len__(self) -> int:
        return len(self.makers)

    def make(self, members, contracts=(), schedule: int = 0) -> Candidate:
        """The pool under the menu's schedule number `schedule` (0 without a menu)."""
        chosen, maker = self.makers[schedule]
        candidate = maker.make(members, contracts)
        if chosen is None:
            return candidate
        return dataclasses.replace(candidate, pricing=dataclasses.replace(candidate.pricing, benefits=chosen))

    def make_all(self, members, contracts=()) -> list[Candidate]:
        """The pool under each schedule, in the menu's order."""
        return [self.make(members, contracts, k) for k in range(len(self.makers))]

    def index(self, schedule) -> int:
        """The menu's number of `schedule` (a BenefitSchedule; None without a menu)."""
        for k, (chosen, _) in enumerate(self.makers):
            if chosen == schedule:
                return k
        raise KeyError(schedule)


def top_rate(candidate: Candidate, spec: Spec) -> float:
    """The highest rate an admissible candidate can pay: r*_P, or the highest
    menu rate not above it."""
    if spec.rates.step is None:
        return candidate.column.max_rate
    _, k_hi = menu_steps(candidate.column, spec.rates.min, spec.rates.step)
    return spec.rates.min + k_hi * spec.rates.step


def build_candidates(instance: Instance, spec: Spec, pools, pricer: PoolPricer) -> list[Candidate]:
    """Price every pool and attach its rate bounds and gap groups."""
    maker = CandidateMaker(instance, spec, pricer)
    return [maker.make(members) for members in pools]


def pool_variants(instance: Instance, pools) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    """Every (pool, contract options taken) column of these pools: the pool
    alone when the instance has no contract options (issue 14)."""
    if not instance.contract_options:
        return [(frozenset(p), ()) for p in pools]
    return [(frozenset(p), c) for p in pools for c in contract_variants(instance, frozenset(p))]
