"""Pool economics: claim streams, budget and maximum solvent rate (DESIGN §A pool,
§Solvency), and a memoising pricer shared by every solver and baseline.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pooling.data.benefits import BenefitSchedule, with_benefits
from pooling.data.instance import County, Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import (
    Behaviour,
    behaviour_on,
    multiplier,
    multipliers,
    observed_rate,
    solvent_fixed_point,
)
from pooling.economics.care import CountyCare, care_in_pool, contract_fill, contracted_places, county_streams
from pooling.errors import NumericsError
from pooling.risk.claims import (
    AggregateResult,
    ClaimStream,
    CompoundModel,
    aggregate,
    merge_streams,
)
from pooling.risk.ruin import Trend, ruin_max_rate
from pooling.risk.scaled import ScaledClaims

NO_SOLVENT_RATE = -1.0
"""max_rate of a pool whose risk is 0 and whose budget is negative: no rate is
solvent (its fixed costs exceed revenue and reserves even with no claim paid).
Finite, so that result files hold it, and below every rates.min (>= 0)."""


def solvent_rate(budget: float, risk: float, cap: float) -> float:
    """r* = min(cap, B / rho), the largest rate with rate x rho <= B.

    rho = 0 happens for VaR when no claim is at least as likely as the level
    (P(N = 0) >= level: 10 enrollees at 0.05 admissions each and level 0.5):
    claims paid at that level are 0 whatever the rate, so every rate is solvent
    when B >= 0 (r* = cap) and none is when B < 0 (NO_SOLVENT_RATE). CVaR is
    E[Y] / (1 - level) > 0 there, so only VaR meets this."""
    if risk > 0.0:
        return min(cap, budget / risk)
    return cap if budget >= 0.0 else NO_SOLVENT_RATE


def solvency_trend(spec: Spec) -> Trend:
    """The ruin horizon's growth rates from the spec's [solvency] (all 0 by default)."""
    solvency = spec.solvency
    return Trend(solvency.admissions_trend, solvency.cost_trend, solvency.revenue_growth)


def _scaled(streams, weight: float) -> tuple[ClaimStream, ...]:
    """The streams merged, then their rates scaled by `weight` (merging first:
    one new stream per distinct severity, not per flow)."""
    return tuple(ClaimStream(rate=st.rate * weight, severity=st.severity, factor=st.factor)
                 for st in merge_streams(streams))


def pool_model(instance: Instance, members: frozenset[str],
               networks: dict[str, frozenset[str]] | None = None, contracts=(),
               multipliers: dict[str, float] | None = None) -> CompoundModel:
    """The compound mixed-Poisson model of a pool's eligible cost Y_P.

    Every admission rate of county c is scaled by M_c = w_N Theta_N + w_P
    Theta_P(c) + w_C Theta_C(c) (independent gamma multipliers): Poisson
    splitting makes Y_P a sum of independent parts, the national one (all
    members) and one per prefecture and per county of the pool, each mixed
    over its own multiplier, so the pool's transform is their product.
    `networks` (county -> the members whose network its enrollees use; default
    the pool) prices counterfactuals such as each member keeping its own
    network inside a shared fund (economics.explain); `contracts`
    (ContractOptions) add places to the pool's network for its migrants;
    `multipliers` (county id -> m_c, economics.behaviour) scale each member's
    admissions (None: as observed)."""
    params = instance.parameters
    networks = networks or {}
    contracted = contracted_places(contracts)
    by_county = {cid: county_streams(instance, instance.county(cid), networks.get(cid, members), contracted,
                                     multipliers)
                 for cid in sorted(members)}
    everything = [st for streams in by_county.values() for st in streams]
    national, prefecture, county = params.national_shock, params.prefecture_shock, params.county_shock
    if prefecture.weight == 0.0 and county.weight == 0.0:
        return CompoundModel(merge_streams(everything), params.frequency_shock_cv)
    parts: list[CompoundModel] = []
    poisson: list[ClaimStream] = []
    by_prefecture: dict[str, list[ClaimStream]] = {}
    for cid, streams in by_county.items():
        by_prefecture.setdefault(instance.county(cid).prefecture, []).extend(streams)
    for level, groups in ((prefecture, [by_prefecture[p] for p in sorted(by_prefecture)]),
                          (county, list(by_county.values()))):
        if level.weight == 0.0:
            continue
        for streams in groups:   # one independent part per prefecture / county of the pool
            scaled = _scaled(streams, level.weight)
            if level.cv > 0.0:
                parts.append(CompoundModel(scaled, level.cv))
            else:
                poisson.extend(scaled)
    main = list(_scaled(everything, national.weight))
    if national.cv == 0.0:
        main.extend(poisson)
    elif poisson:
        parts.append(CompoundModel(merge_streams(poisson), 0.0))
    return CompoundModel(merge_streams(main), national.cv, parts=tuple(p for p in parts if p.streams))


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
    max_rate: float             # r*_P = min(r_max, B_P / rho) (solvent_rate); may be < r_min or negative
    usable: bool                # r*_P >= r_min
    county_expected_cost: tuple[tuple[str, float], ...]
    care: tuple[CountyCare, ...]       # per member: eligible and total cost, migrants in network
    numerics: AggregateResult   # risk figures and self-checks; the lattice itself is dropped
                                # (a pricer may hold thousands of pools)
    contracts: tuple[str, ...] = ()    # contract options taken (their annual costs are in fixed_costs)
    # Under [uncertainty] (economics.uncertain): the max rate priced on each
    # scenario's instance alone, (name, rate), the base first; and under
    # "robust" the scenario whose rate is max_rate (the first such), whose
    # revenue, fixed costs, budget, VaR, CVaR and risk the fields above are.
    scenario_rates: tuple[tuple[str, float], ...] = ()
    binding_scenario: str | None = None
    # With induced utilisation (economics.behaviour): the members' observed
    # rates and admissions, so the multiplier can be given at any rate of the
    # pool. Every figure above is then at the fixed point max_rate (admissions
    # scaled by each member's m_c(max_rate)).
    behaviour: Behaviour | None = None
    # Under a [benefits] menu (data.benefits.BenefitMenu): the schedule this
    # pool was priced under (its column's); None for a fixed schedule or none.
    benefits: BenefitSchedule | None = None

    @property
    def admission_multiplier(self) -> float | None:
        """The members' multipliers at max_rate, admission-weighted (None without behaviour)."""
        return None if self.behaviour is None else self.behaviour.admission_multiplier(self.max_rate)


def _scaled_claims(instance: Instance, spec: Spec, members: frozenset[str], options,
                   counties: list[County]) -> ScaledClaims | None:
    """The pool's claims as a family in one admission factor s (risk.scaled)
    when its members' multipliers are one and the same function of the rate
    (one observed rate r0): its model at s = 1 scaled, or, with contracts
    (whose capacities make the in-network share move with s), built at each
    s. None otherwise, without behaviour, and under the ruin measure (priced
    by simulation)."""
    if not behaviour_on(instance) or spec.solvency.measure == "ruin":
        return None
    if len({observed_rate(instance, c) for c in counties}) != 1:
        return None
    base = pool_model(instance, members, contracts=options)
    if not options:
        return ScaledClaims(base, spec.solvency.level)
    contracted = contracted_places(options)

    def form(scale: float) -> tuple:
        """Which contract layers serve some of the pool's migrants and whether
        some are left out of network: within one form every rate is affine in s."""
        fill = contract_fill(instance, members, contracted, dict.fromkeys(sorted(members), scale))
        return tuple((place, tuple(share > 0.0 for _, share in served), left > 0.0)
                     for place, (served, left) in sorted(fill.items()))
    return ScaledClaims(base, spec.solvency.level, model_at=lambda s: pool_model(
        instance, members, contracts=options, multipliers=dict.fromkeys(sorted(members), s)),
        same_form=lambda a, b: form(a) == form(b))


def _search_start(instance: Instance, spec: Spec, members: frozenset[str], counties: list[County],
                  budget: float, family: ScaledClaims | None) -> float:
    """Where the fixed-point search starts: with a family, the fixed point of
    the normal approximation of the risk (mean + z sd at the multiplier, its
    Poisson variance linear and its shock variance quadratic in it), a few
    per cent from r* for the pools in scope at no pricing; else the members'
    mean observed rate (where the multipliers are 1)."""
    r0s = [observed_rate(instance, c) for c in counties]
    if family is None or budget <= 0.0:
        return math.fsum(r0s) / len(r0s)
    from statistics import NormalDist  # here: only a behavioural solve needs it (imports decimal, fractions)
    model, level = family.model, spec.solvency.level
    normal = NormalDist()
    z = normal.pdf(normal.inv_cdf(level)) / (1.0 - level) if spec.solvency.measure == "cvar" \
        else normal.inv_cdf(level)
    poisson = math.fsum(s.second_moment_sum for part in (model, *model.parts) for s in part.streams)
    shock = max(0.0, model.variance - poisson)
    e, r0 = instance.parameters.utilisation_elasticity, r0s[0]

    def approximate(rate: float) -> float:
        m = multiplier(e, r0, rate)
        return solvent_rate(budget, m * model.mean + z * math.sqrt(m * poisson + m * m * shock), spec.rates.max)
    return solvent_fixed_point(approximate, spec.rates.max, "start", elasticity=e, start=r0)[0]


class PoolPricer:
    """Prices pools under one (instance, spec), memoised by member set."""

    def __init__(self, instance: Instance, spec: Spec, *, skip_dominated: bool = False):
        """`skip_dominated` (candidate pricing in a solve): under a robust
        [uncertainty], scenarios that can never bind (economics.uncertain) are
        not priced, and under a predictive one with induced utilisation the
        scenarios' own fixed points (reported only) are not searched; a pool's
        `scenario_rates` lack them until `uncertain.complete_scenario_rates`
        fills in the plan's pools."""
        self.instance = with_benefits(instance, spec.benefits)   # the spec's schedule, however it was given
        self.spec = spec
        self._cache: dict[frozenset[str], PoolPricing] = {}
        self._uncertain = None
        if spec.uncertainty is not None:
            from pooling.economics.uncertain import UncertainPricing
            self._uncertain = UncertainPricing(instance, spec, skip_dominated=skip_dominated)

    def __len__(self) -> int:
        return len(self._cache)

    def price(self, members, contracts=()) -> PoolPricing:
        """The pool `members` (ids), taking the contract options `contracts` (ids)."""
        key = frozenset(members)
        if contracts:
            key = (key, tuple(sorted(contracts)))
        hit = self._cache.get(key)
        if hit is None:
            if self._uncertain is not None:
                hit = self._uncertain.price(frozenset(members), tuple(sorted(contracts)))
            else:
                hit = self._price(frozenset(members), tuple(sorted(contracts)))
            self._cache[key] = hit
        return hit

    def claims(self, members: frozenset[str], contract_ids: tuple[str, ...] = (), *,
               aggregates: dict | None = None) -> PoolClaims:
        """The pool's budget terms and claims at any multipliers on this pricer's instance (PoolClaims)."""
        return PoolClaims(self.instance, self.spec, members, contract_ids, aggregates)

    def _price(self, members: frozenset[str], contract_ids: tuple[str, ...] = (), *,
               keep_law: bool = False, aggregates: dict | None = None,
               claims: PoolClaims | None = None) -> PoolPricing:
        """Prices one pool on this pricer's instance as given. `keep_law` keeps
        the lattice in `numerics` (the predictive mixture needs it);
        `aggregates` (model -> AggregateResult) shares laws between scenarios
        that give the pool the same model; `claims` (from `self.claims`) lets a
        caller that prices the pool's law at other rates share its lattices."""
        inst, spec = self.instance, self.spec
        claims = claims if claims is not None else self.claims(members, contract_ids, aggregates=aggregates)
        counties, budget = claims.counties, claims.budget
        u = spec.solvency.reserve_share
        tried: dict = {}   # the fixed point's own pricing is the search's last solvent one

        def priced_at(scale: dict[str, float] | None) -> tuple[AggregateResult, float, float]:
            """(the law's figures, risk, max rate) with admissions scaled by `scale`."""
            key = None if scale is None else tuple(sorted(scale.items()))
            if key not in tried:
                tried.clear()
                tried[key] = _priced_at(scale)
            return tried[key]

        def _priced_at(scale: dict[str, float] | None) -> tuple[AggregateResult, float, float]:
            result = claims.law(scale)
            if spec.solvency.measure == "ruin":
                sim = spec.simulation
                try:
                    ruin_rate = ruin_max_rate(
                        claims.model(scale), members, start_reserves=u * math.fsum(c.reserves for c in counties),
                        net_income=claims.revenue - claims.fixed, years=spec.solvency.horizon_years,
                        scenarios=sim.scenarios, level=spec.solvency.level, seed=sim.seed,
                        trend=solvency_trend(spec))
                except NumericsError as exc:
                    raise claims.failure(exc) from None
                return result, result.cvar, min(spec.rates.max, ruin_rate)
            risk = result.cvar if spec.solvency.measure == "cvar" else result.var
            return result, risk, solvent_rate(budget, risk, spec.rates.max)

        scale = None
        if behaviour_on(inst):
            # The fixed point r = h(r), h the max rate with admissions frozen at m_c(r).
            fixed_point, _ = solvent_fixed_point(
                lambda r: priced_at(claims.scale_at(r))[2], spec.rates.max, claims.where,
                elasticity=inst.parameters.utilisation_elasticity,
                start=claims.search_start())
            scale = claims.scale_at(fixed_point)
        result, risk, max_rate = priced_at(scale)
        if scale is not None:
            max_rate = fixed_point   # the solvent end of the bracket (h(r*) >= r*)
        return claims.pricing(result, risk, max_rate, scale, keep_law=keep_law)


class PoolClaims:
    """One pool on one (instance, spec) before its rate: its revenue, fixed
    costs and budget, and its claims' law at any admission multipliers, on
    lattices shared across calls where its members have one multiplier
    (risk.scaled). PoolPricer's fixed-point search and a predictive mixture
    with induced utilisation (economics.uncertain) both price from it."""

    def __init__(self, instance: Instance, spec: Spec, members: frozenset[str], contract_ids: tuple[str, ...] = (),
                 aggregates: dict | None = None):
        """`aggregates` (model -> AggregateResult) shares laws priced outside a family."""
        self.instance, self.spec, self.members, self.contract_ids = instance, spec, members, contract_ids
        self.counties = [instance.county(cid) for cid in sorted(members)]
        self.options = [instance.contract(o) for o in contract_ids]
        self.revenue = math.fsum(c.revenue for c in self.counties)
        self.fixed = (instance.parameters.fund_fixed_cost + math.fsum(c.per_capita_costs for c in self.counties)
                      + math.fsum(o.annual_cost for o in self.options))
        self.budget = (self.revenue + spec.solvency.reserve_share * math.fsum(c.reserves for c in self.counties)
                       - self.fixed)
        self.where = f"{instance.source}: pool [{', '.join(sorted(members))}]"
        # With a behavioural response and members alike (one r0, no contract
        # whose capacity the multiplier fills), admissions scale by one factor:
        # priced on lattices shared across the search (risk.scaled).
        self.family = _scaled_claims(instance, spec, members, self.options, self.counties)
        self._aggregates = aggregates

    def scale_at(self, rate: float) -> dict[str, float] | None:
        """The members' multipliers m_c(rate) (None without behaviour: as observed)."""
        return multipliers(self.instance, self.members, rate)

    def model(self, scale: dict[str, float] | None) -> CompoundModel:
        """The pool's compound model with admissions scaled by `scale`."""
        if self.family is not None and scale is not None:
            return self.family.model_at(next(iter(scale.values())))
        return pool_model(self.instance, self.members, contracts=self.options, multipliers=scale)

    def law(self, scale: dict[str, float] | None) -> AggregateResult:
        """The claims' law (lattice kept) with admissions scaled by `scale`."""
        try:
            if self.family is not None and scale is not None:
                return self.family.aggregate(next(iter(scale.values())))
            model = self.model(scale)
            result = self._aggregates.get(model) if self._aggregates is not None else None
            if result is None:
                result = aggregate(model, self.spec.solvency.level)
                if self._aggregates is not None:
                    self._aggregates[model] = result
            return result
        except NumericsError as exc:
            raise self.failure(exc) from None

    def search_start(self) -> float:
        """Where a fixed-point search for this pool starts (_search_start): no pricing."""
        return _search_start(self.instance, self.spec, self.members, self.counties, self.budget, self.family)

    def failure(self, exc: NumericsError) -> NumericsError:
        """`exc` naming the pool and the input fields that drive its numerics."""
        return NumericsError(f"{self.where}: cannot price it: {exc}. "
                             f"{_numerics_drivers(self.instance, self.spec, self.counties)}")

    def pricing(self, result: AggregateResult, risk: float, max_rate: float, scale: dict[str, float] | None, *,
                keep_law: bool = False) -> PoolPricing:
        """The pool's pricing at `max_rate`, its claims figures `result` and care at multipliers `scale`."""
        inst, counties = self.instance, self.counties
        contracted = contracted_places(self.options)
        care = tuple(care_in_pool(inst, c, self.members, contracted, scale) for c in counties)
        per_county = tuple((c.county, c.eligible) for c in care)
        return PoolPricing(
            counties=tuple(c.id for c in counties), enrollees=sum(c.enrollees for c in counties),
            revenue=self.revenue, fixed_costs=self.fixed, budget=self.budget, expected_cost=result.mean,
            var=result.var, cvar=result.cvar, risk=risk, max_rate=max_rate,
            usable=max_rate >= self.spec.rates.min, county_expected_cost=per_county, care=care,
            numerics=result if keep_law else dataclasses.replace(result, law=None), contracts=self.contract_ids,
            behaviour=None if scale is None else Behaviour.of(inst, self.members))
