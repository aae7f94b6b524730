"""Pricing under the spec's ``[uncertainty]`` (issue 23): a pool's max solvent
rate over parameter scenarios (data.uncertainty), robust or predictive.

Every scenario's instance is priced as the instance as given is (pools.PoolPricer:
its budget, its claim law, its rate), the base first, in one call per pool, so
that a task pricing a pool prices it under every scenario (nothing is redone:
candidates, groups and blocks are the base's). Scenarios that give a pool the
same compound model share its law (a scenario changing one county's severity
leaves the other counties' pools alone).

- robust: r*_P = min_s r*_P(s), each r*_P(s) = min(r_max, B_s / rho(Y_s)) on
  scenario s's own budget and claims. The pricing's revenue, fixed costs,
  budget, VaR, CVaR and risk are those of the binding scenario (the first
  with the smallest rate), so that r*_P = B / rho holds in the fields shown.
- predictive: the year is scenario s with probability w_s, so the pool's net
  loss is the mixture of r Y_s - B_s. r*_P is the largest rate with
  rho(mixture) <= 0. When every scenario gives the pool the same budget B
  (scenarios of claims only), that is min(r_max, B / rho(mixture of Y_s)) by
  translation invariance and positive homogeneity; otherwise it is found by
  root finding in r (rho of the mixture is non-decreasing in r). VaR and CVaR
  of the mixture come from the scenarios' lattices (risk.mixture). The
  pricing's budget is then sum_s w_s B_s, its VaR/CVaR/risk the mixture's of
  Y (the claims alone).
- Scenarios that cannot bind (robust, CVaR): a scenario whose instance is the
  base's with some admission-shock cvs lowered and nothing else changed
  (`dominated_by_base`, judged by its changes) makes each shock Theta_L ~ Gamma(mean 1, cv) smaller in
  convex order, hence the mixed-Poisson counts, the compound claims and their
  independent sum Y (M_c = sum_L w_L Theta_L); CVaR is monotone in convex
  order, so CVaR_s(Y) <= CVaR_base(Y) on the same budget and r*_P(s) >=
  r*_P(base). Such a scenario is left out of the minimum (numerically it could
  only tie the base within the engine's accuracy) and its rate is reported
  only; a solve's candidate pricing skips it (PoolPricer(skip_dominated=True))
  and `complete_scenario_rates` prices it for the plan's pools alone. Not
  applied under VaR (not monotone in convex order) or "ruin". With induced
  utilisation the scenario has the base's e and r0 (it changes nothing
  else), so at any rate r both have the same multipliers and its claims there
  are smaller in convex order: h_s(r) >= h_base(r) for every r, and since
  r*_base <= h_base(r*_base) <= h_s(r*_base), r*_base is solvent in s, whose
  solvent rates form an interval ending at r*_s: r*_s >= r*_base.
- In both, the expected cost and the care figures (hence every objective's
  coefficients) are the base's: the plan is judged on the instance as given,
  and only solvency is asked to survive the scenarios.
- Induced utilisation (economics.behaviour, a scenario may set
  parameters.utilisation_elasticity or the observed rates): robust prices
  each scenario at its own fixed point, so the minimum is the largest rate
  solvent in every scenario with its own response. Predictive: the pool pays
  one rate r whichever scenario the year is, so at a trial r scenario s's
  claims Y_s(r) are at its own multipliers m_{s,c}(r) (1 where its e is 0),
  the mixture at r is the weighted mixture of those laws (budgets B_s as
  above, not moved by r), and h(r) is that mixture's max rate. With every
  e <= 0, each Y_s(r) grows in the usual stochastic order with r (Poisson
  rates scaled by non-decreasing m), so does the mixture (fixed weights: its
  CDF is the weighted sum of the scenarios'), VaR and CVaR do not fall and h
  is non-increasing: solvency at r (r <= h(r)) holds on an interval, and
  behaviour.solvent_fixed_point finds its end, r*_P = h(r*_P), as for one
  instance, from a start that needs no search (_InducedMixture.start), so
  that a solve's candidates skip the scenarios' own fixed points (reported
  only) and complete_scenario_rates searches them for the plan's pools, with
  the same rates. Scenarios with the same model and budget at r are one component;
  a mixture of one component is that law (the engine's figures, as without
  [uncertainty]). The pricing's figures are at r*_P: the mixture's VaR/CVaR
  of Y there, and the base's expected cost and care at its multipliers
  there.
- The solvency measure "ruin" is simulated, not exact: robust takes the
  smallest of the scenarios' simulated rates; predictive refuses it
  (InputError) since its mixture would be a simulation of a mixture.
"""

from __future__ import annotations

import dataclasses
import math

from pooling.data.instance import OUTSIDE, Instance, instance_from_dict
from pooling.data.instance_dict import instance_to_dict
from pooling.data.scenarios import apply_changes
from pooling.data.spec import Spec
from pooling.data.uncertainty import scenario_instances
from pooling.economics.behaviour import behaviour_on, solvent_fixed_point
from pooling.economics.pools import NO_SOLVENT_RATE, PoolClaims, PoolPricer, PoolPricing, solvent_rate
from pooling.errors import InputError, NumericsError
from pooling.risk.claims import AggregateResult
from pooling.risk.mixture import Component, mixture_risk

RATE_ROOT_TOLERANCE = 1e-12
"""Absolute tolerance of the predictive rate found by root finding (scenarios
with different budgets): far below the engine's 1e-4 relative accuracy."""
ROOT_FLOOR = 1e-9
"""The smallest rate tried, as a share of r_max: a pool not solvent there has
no solvent rate (NO_SOLVENT_RATE), as a pool with a negative budget has none."""


SCENARIO_MEMO_SIZE = 4
"""(instance, uncertainty) pairs whose scenario instances are kept: a
decomposed solve builds a pricer per block on the same instance, and building
the scenarios (a round trip through file data) of a national instance costs
about a second each; four covers a solve and its baselines."""

_scenario_memo: list[tuple[Instance, object, tuple]] = []


def _scenario_instances(instance: Instance, uncertainty) -> tuple:
    """data.uncertainty.scenario_instances, memoised by the instance's identity
    (the memo holds the instance, so its id cannot be reused meanwhile)."""
    for held, held_uncertainty, pairs in _scenario_memo:
        if held is instance and held_uncertainty == uncertainty:
            return pairs
    ids = {c.id for c in instance.counties}
    whole = not instance.context and all(k in ids for c in instance.counties for k in c.adjacent)
    pairs = scenario_instances(instance, uncertainty) if whole else _restricted_scenarios(instance, uncertainty)
    _scenario_memo.append((instance, uncertainty, pairs))
    del _scenario_memo[:-SCENARIO_MEMO_SIZE]
    return pairs


def _restricted_scenarios(block: Instance, uncertainty) -> tuple:
    """Scenario instances of a block (Instance.restricted: its counties and, as
    context, those its migrants go to; a baseline's pool or a block without
    context still names neighbours outside it). A block is not a file of its own, so
    its counties and context are written as one (adjacency to counties outside
    dropped: it never enters a price), changed, read, and restricted again:
    every county priced gets the changes it gets in the whole instance."""
    ids = {c.id for c in block.counties} | {c.id for c in block.context}
    flat = dataclasses.replace(block, counties=block.counties + block.context, context=())
    data = instance_to_dict(flat, all_fields=True)
    known = ids | {p.id for p in block.places}
    context = {c.id for c in block.context}
    for county in data["counties"]:
        county["adjacent"] = [k for k in county.get("adjacent", []) if k in ids]
        if county["id"] in context:
            # A context county is only a place of care: its own residents' and
            # migrants' flows are never priced, and may name counties not here.
            county.pop("resident_care", None)
            destinations = county["migrant_destinations"]
            outside = sum(w for k, w in destinations.items() if k not in known and k != OUTSIDE)
            if outside:
                county["migrant_destinations"] = {k: w for k, w in destinations.items() if k in known}
                county["migrant_destinations"][OUTSIDE] = destinations.get(OUTSIDE, 0.0) + outside
    for option in data.get("contract_options", []):
        option["origin"] = [k for k in option["origin"] if k in ids]
    members = [c.id for c in block.counties]
    pairs = []
    for scenario in uncertainty.all_scenarios:
        if not scenario.changes:
            pairs.append((scenario, block))
            continue
        label = f'{block.source}: scenario "{scenario.name}"'
        changed = instance_from_dict(apply_changes(data, scenario.changes, label),
                                     source=f'{block.source} under scenario "{scenario.name}"')
        pairs.append((scenario, changed.restricted(members)))
    return tuple(pairs)


class UncertainPricing:
    """Prices pools under every scenario of `spec.uncertainty` (module docstring)."""

    def __init__(self, instance: Instance, spec: Spec, *, skip_dominated: bool = False):
        uncertainty = spec.uncertainty
        if uncertainty.method == "predictive" and spec.solvency.measure == "ruin":
            raise InputError(f'{spec.source}: uncertainty.method "predictive" needs solvency.measure "var" or '
                             f'"cvar": "ruin" is simulated, and a mixture of simulated rates is not a rate '
                             f'(use method "robust", or measure "cvar")')
        self.method = uncertainty.method
        self.spec = spec
        plain = dataclasses.replace(spec, uncertainty=None)
        pairs = _scenario_instances(instance, uncertainty)
        self.induced = any(behaviour_on(inst) for _, inst in pairs)
        """Whether some scenario has a behavioural response (predictive: one fixed point of the mixture)."""
        self.names = tuple(scenario.name for scenario, _ in pairs)
        self.weights = tuple(scenario.weight for scenario, _ in pairs)
        self.pricers = tuple(PoolPricer(scenario_instance, plain) for _, scenario_instance in pairs)
        robust_cvar = uncertainty.method == "robust" and spec.solvency.measure == "cvar"
        self.dominated = frozenset(i for i, (scenario, _) in enumerate(pairs)
                                   if i > 0 and robust_cvar and dominated_by_base(instance, scenario))
        """Scenarios that cannot bind (module docstring): out of the robust minimum."""
        self.skipped = self.dominated if skip_dominated else frozenset()
        self.skip_own_rates = skip_dominated and self.method == "predictive" and self.induced
        """Predictive with a response, in a solve's candidate pricing: the
        scenarios' own fixed points are reported only, and searched for the
        plan's pools alone (complete_scenario_rates)."""

    def price(self, members: frozenset[str], contracts: tuple[str, ...]) -> PoolPricing:
        aggregates: dict = {}
        if self.method == "predictive" and self.induced:
            try:
                return self._predictive_induced(members, contracts, aggregates)
            except NumericsError as exc:
                raise NumericsError(f"{self.pricers[0].instance.source}: pool [{', '.join(sorted(members))}]: "
                                    f"cannot price its predictive mixture: {exc}") from None
        keep = self.method == "predictive"
        priced = [None if i in self.skipped else p._price(members, contracts, keep_law=keep, aggregates=aggregates)
                  for i, p in enumerate(self.pricers)]
        rates = tuple((name, p.max_rate) for name, p in zip(self.names, priced) if p is not None)
        if self.method == "robust":
            return self._robust(priced, rates)
        try:
            return self._predictive(priced, rates)
        except NumericsError as exc:
            raise NumericsError(f"{self.pricers[0].instance.source}: pool [{', '.join(sorted(members))}]: "
                                f"cannot price its predictive mixture: {exc}") from None

    def _robust(self, priced: list[PoolPricing | None], rates) -> PoolPricing:
        taken = [i for i in range(len(priced)) if i not in self.dominated]
        k = min(taken, key=lambda i: (priced[i].max_rate, i))
        bind = priced[k]
        return dataclasses.replace(
            priced[0], revenue=bind.revenue, fixed_costs=bind.fixed_costs, budget=bind.budget, var=bind.var,
            cvar=bind.cvar, risk=bind.risk, max_rate=bind.max_rate, usable=bind.usable,
            numerics=_worst(bind.numerics, [p.numerics for p in priced if p is not None]), scenario_rates=rates,
            binding_scenario=self.names[k])

    def _predictive(self, priced: list[PoolPricing], rates) -> PoolPricing:
        spec, base = self.spec, priced[0]
        level, measure, cap = spec.solvency.level, spec.solvency.measure, spec.rates.max
        budgets = [p.budget for p in priced]
        same_budget = all(b == budgets[0] for b in budgets)
        if same_budget and all(p.numerics is base.numerics for p in priced):
            # Every scenario gives the pool the same law and budget: the mixture is that law.
            return dataclasses.replace(base, numerics=dataclasses.replace(base.numerics, law=None),
                                       scenario_rates=rates)
        components = [Component(w, p.numerics.law, p.numerics.mean) for w, p in zip(self.weights, priced)]
        mixed = mixture_risk(components, level)
        risk = mixed.cvar if measure == "cvar" else mixed.var
        if same_budget:
            max_rate = solvent_rate(budgets[0], risk, cap)
        else:
            max_rate = _net_loss_rate(components, budgets, level, measure, cap)
        numerics = dataclasses.replace(
            _worst(base.numerics, [p.numerics for p in priced]), var=mixed.var, cvar=mixed.cvar,
            resolution_rel_diff=max(mixed.resolution_rel_diff, *(p.numerics.resolution_rel_diff for p in priced)))
        budget = math.fsum(w * b for w, b in zip(self.weights, budgets))
        return dataclasses.replace(
            base, budget=budget, var=mixed.var, cvar=mixed.cvar, risk=risk, max_rate=max_rate,
            usable=max_rate >= spec.rates.min, numerics=numerics, scenario_rates=rates,
            revenue=math.fsum(w * p.revenue for w, p in zip(self.weights, priced)),
            fixed_costs=math.fsum(w * p.fixed_costs for w, p in zip(self.weights, priced)))

    def _predictive_induced(self, members: frozenset[str], contracts: tuple[str, ...],
                            aggregates: dict) -> PoolPricing:
        """The predictive rate with induced utilisation in some scenario: the
        fixed point of h(r), the mixture's max rate with every scenario's
        admissions at its own m_c(r) (module docstring). Every other figure is
        as in `_predictive`, at that rate: the mixture's VaR/CVaR of Y, the
        weighted budget, and the base's expected cost and care at its
        multipliers there."""
        spec = self.spec
        claims = [p.claims(members, contracts, aggregates=aggregates) for p in self.pricers]
        mixture = _InducedMixture(claims, self.weights, spec)
        elasticity = math.fsum(w * c.instance.parameters.utilisation_elasticity for w, c in zip(self.weights, claims))
        max_rate, _ = solvent_fixed_point(mixture.max_rate, spec.rates.max, claims[0].where,
                                          elasticity=elasticity, start=mixture.start())
        at = mixture.at(max_rate)
        own = () if self.skip_own_rates else tuple(
            (name, pricer._price(members, contracts, claims=c).max_rate)
            for name, pricer, c in zip(self.names, self.pricers, claims))
        base_scale = claims[0].scale_at(max_rate)
        base = claims[0].pricing(at.laws[0], at.risk, max_rate, base_scale)
        numerics = dataclasses.replace(_worst(base.numerics, list(at.laws)), var=at.var, cvar=at.cvar,
                                       resolution_rel_diff=max(at.resolution_rel_diff,
                                                               *(law.resolution_rel_diff for law in at.laws)))
        return dataclasses.replace(
            base, budget=math.fsum(w * c.budget for w, c in zip(self.weights, claims)), var=at.var, cvar=at.cvar,
            risk=at.risk, numerics=numerics, scenario_rates=own,
            revenue=math.fsum(w * c.revenue for w, c in zip(self.weights, claims)),
            fixed_costs=math.fsum(w * c.fixed for w, c in zip(self.weights, claims)))


@dataclasses.dataclass(frozen=True)
class _MixtureAt:
    """A predictive mixture with every scenario's admissions at one rate's
    multipliers: each scenario's law (scenarios with the same model and
    budget share one), the mixture's max rate h, and VaR/CVaR/risk of Y."""

    laws: tuple[AggregateResult, ...]
    max_rate: float
    var: float
    cvar: float
    risk: float
    resolution_rel_diff: float


class _InducedMixture:
    """h(r) of a predictive mixture with induced utilisation (module
    docstring): scenario s's claims at its multipliers m_{s,c}(r) (1 where its
    elasticity is 0), mixed with the spec's weights. Scenarios giving the pool
    the same model and budget at r are one component (their weights summed);
    a mixture of one component is that law, priced by the engine's figures
    as a pool without [uncertainty] is."""

    def __init__(self, claims: list[PoolClaims], weights: tuple[float, ...], spec: Spec):
        self.claims, self.weights, self.spec = claims, weights, spec
        self._fixed_laws: dict[int, tuple] = {}    # scenarios without a response: ((model, budget), law)
        self._kept: dict[float, _MixtureAt] = {}   # the last rate priced and the highest solvent one

    def max_rate(self, rate: float) -> float:
        """h(rate): the mixture's max rate with admissions frozen at rate's multipliers."""
        return self.at(rate).max_rate

    def start(self) -> float:
        """Where the search starts, no search needed: the weighted mean of a
        guess at each scenario's own fixed point, with a response the normal
        approximation's (PoolClaims.search_start), without one its rate (its
        law, the same at every r, is one the search needs anyway)."""
        cap, measure = self.spec.rates.max, self.spec.solvency.measure
        guesses = []
        for i, claims in enumerate(self.claims):
            if behaviour_on(claims.instance):
                guesses.append(claims.search_start())
            else:
                law = self._fixed(i)[1]
                guesses.append(solvent_rate(claims.budget, law.cvar if measure == "cvar" else law.var, cap))
        return math.fsum(w * g for w, g in zip(self.weights, guesses))

    def _fixed(self, i: int) -> tuple:
        """((model, budget), law) of scenario i without a response (as observed at every r)."""
        hit = self._fixed_laws.get(i)
        if hit is None:
            claims = self.claims[i]
            hit = self._fixed_laws[i] = ((claims.model(None), claims.budget), claims.law(None))
        return hit

    def at(self, rate: float) -> _MixtureAt:
        """The mixture at `rate`'s multipliers; the search returns the highest
        rate it priced solvent, so that one and the last are kept."""
        hit = self._kept.get(rate)
        if hit is None:
            hit = self._mixture_at(rate)
            best = max((r for r, m in self._kept.items() if m.max_rate >= r), default=None)
            keep = {r: m for r, m in self._kept.items() if r == best}
            keep[rate] = hit
            self._kept = keep
        return hit

    def _mixture_at(self, rate: float) -> _MixtureAt:
        spec = self.spec
        level, measure, cap = spec.solvency.level, spec.solvency.measure, spec.rates.max
        laws: list[AggregateResult] = []
        parts: dict = {}    # (model, budget) -> ([weights], law)
        for i, (claims, weight) in enumerate(zip(self.claims, self.weights)):
            scale = claims.scale_at(rate)
            fixed = self._fixed(i) if scale is None else None
            key = fixed[0] if fixed is not None else (claims.model(scale), claims.budget)
            if key in parts:
                parts[key][0].append(weight)
                laws.append(parts[key][1])
                continue
            law = fixed[1] if fixed is not None else claims.law(scale)
            parts[key] = ([weight], law)
            laws.append(law)
        if len(parts) == 1:
            law = laws[0]
            risk = law.cvar if measure == "cvar" else law.var
            return _MixtureAt(tuple(laws), solvent_rate(self.claims[0].budget, risk, cap), law.var, law.cvar,
                              risk, law.resolution_rel_diff)
        components = [Component(math.fsum(w), law.law, law.mean) for w, law in parts.values()]
        budgets = [budget for _, budget in parts]
        mixed = mixture_risk(components, level)
        risk = mixed.cvar if measure == "cvar" else mixed.var
        if all(b == budgets[0] for b in budgets):
            h = solvent_rate(budgets[0], risk, cap)
        else:
            h = _net_loss_rate(components, budgets, level, measure, cap)
        return _MixtureAt(tuple(laws), h, mixed.var, mixed.cvar, risk, mixed.resolution_rel_diff)


SHOCK_CV_PATHS = {
    "parameters.frequency_shock_cv": ("frequency_shock_cv",),
    "parameters.regional_shocks.prefecture.cv": ("prefecture_shock",),
    "parameters.regional_shocks.county.cv": ("county_shock",),
    "parameters.regional_shocks.*.cv": ("prefecture_shock", "county_shock"),
}
"""The paths of the admission-shock cvs (data.scenarios), and the levels each reaches."""


def dominated_by_base(base: Instance, scenario) -> bool:
    """True when every change of `scenario` lowers (or keeps) an admission-shock
    cv, national, prefecture or county (SHOCK_CV_PATHS, spelled exactly so),
    and changes nothing else: its claims are smaller in convex order than the
    base's (module docstring). Any other change, or a cv raised, is False."""
    params = base.parameters
    for change in scenario.changes:
        levels = SHOCK_CV_PATHS.get(change.path)
        if levels is None:
            return False
        if change.operation == "scale":
            if not 0.0 <= change.value <= 1.0:
                return False
            continue
        for level in levels:
            current = params.frequency_shock_cv if level == "frequency_shock_cv" else getattr(params, level).cv
            if not change.value <= current:
                return False
    return True


def complete_scenario_rates(instance: Instance, spec: Spec, pools: list) -> list:
    """The plan's pools (result PoolOutcomes) with every scenario's rate: a
    solve's candidate pricing skipped the scenarios that cannot bind
    (robust) or the scenarios' own fixed points (predictive with a response;
    module docstring); they are priced here for these pools alone, and each
    pool's numerics then cover every scenario's law. The pool's rate, binding
    scenario and every other figure are unchanged (the result's own numerics
    summary covers the laws its candidates were priced with)."""
    if spec.uncertainty is None:
        return pools
    names = [scenario.name for scenario in spec.uncertainty.all_scenarios]
    if all(len(p.pricing.scenario_rates) == len(names) for p in pools):
        return pools
    pricer = PoolPricer(instance, spec)
    out = []
    for pool in pools:
        if len(pool.pricing.scenario_rates) != len(names):
            full = pricer.price(pool.pricing.counties, pool.pricing.contracts)
            pool = dataclasses.replace(pool, pricing=dataclasses.replace(
                pool.pricing, scenario_rates=full.scenario_rates, numerics=full.numerics))
        out.append(pool)
    return out


def _worst(shown: AggregateResult, results: list[AggregateResult]) -> AggregateResult:
    """`shown` without its lattice, with the worst self-check figures of all
    scenarios' laws (the result's numerics summary then covers every one)."""
    return dataclasses.replace(
        shown, law=None, mean_rel_error=max(r.mean_rel_error for r in results),
        variance_rel_error=max(r.variance_rel_error for r in results),
        resolution_rel_diff=max(r.resolution_rel_diff for r in results),
        mass_error=max(r.mass_error for r in results), points=max(r.points for r in results))


def _net_loss_rate(components: list[Component], budgets: list[float], level: float, measure: str,
                   cap: float) -> float:
    """The largest r <= cap with rho(mixture of r Y_s - B_s) <= 0 (scenarios
    with different budgets), NO_SOLVENT_RATE when none is."""
    def excess(rate: float) -> float:
        risk = mixture_risk([dataclasses.replace(c, scale=rate, shift=-b) for c, b in zip(components, budgets)],
                            level)
        return risk.cvar if measure == "cvar" else risk.var

    if excess(cap) <= 0.0:
        return cap
    floor = ROOT_FLOOR * cap
    if excess(floor) > 0.0:
        return NO_SOLVENT_RATE
    from scipy import optimize  # here, not at import: a solve without [uncertainty] never needs it

    return float(optimize.brentq(excess, floor, cap, xtol=RATE_ROOT_TOLERANCE))


# -- the column-generation bound under uncertainty ---------------------------------
#
# pool_bounds caps a pool's rate by U(P) = min(r_max, B_P / (kappa E[Y_P])) on
# one instance. Robust: r*_P = min_s r*_P(s) <= r*_P(s') <= U_s'(P) for any s',
# so one scenario's economics are valid (_robust_bound_instance picks one). Predictive (CVaR): solvency at r means
# CVaR(mixture of r Y_s - B_s) <= 0, and CVaR is concave in the mixture (a
# minimum over t of functions linear in the law), so
#     0 >= sum_s w_s CVaR(r Y_s - B_s) = r sum_s w_s CVaR(Y_s) - sum_s w_s B_s,
# and each CVaR(Y_s) >= kappa_s E_s[Y_P] >= kappa_min E_s[Y_P]; hence
#     r*_P <= (sum_s w_s B_s) / (kappa_min sum_s w_s E_s[Y_P]),
# U(P) on the weighted budget and expected cost (both still linear and
# quadratic in the members) with the smallest kappa over the scenarios. VaR has
# no cap below r_max (pool_bounds), under any method.


def _robust_bound_instance(instance: Instance, spec: Spec, group) -> Instance:
    """Under "robust" any one scenario's bound is valid (r*_P <= r*_P(s) <=
    U_s(P) for every s): the scenario whose U for the whole group is smallest,
    B_s(G) / (kappa_s E_s[Y_G]), is likely the tightest for its pools too."""
    from pooling.economics.pool_bounds import GroupEconomics, group_kappa
    best, best_cap = instance, math.inf
    for _, inst in _scenario_instances(instance, spec.uncertainty):
        econ = GroupEconomics(inst, spec, group)
        expected = econ.expected_cost(group.members)
        cap = econ.budget(group.members) / (group_kappa(inst, group.members, spec.solvency.level) * expected) \
            if expected > 0.0 else math.inf
        if cap < best_cap:
            best, best_cap = inst, cap
    return best


def bound_economics(instance: Instance, spec: Spec, group, deadline=None):
    """pool_bounds.GroupEconomics valid for the bound under `spec`'s method:
    the base's; under "robust" one scenario's (_robust_bound_instance); under
    "predictive" the scenarios' budgets and expected costs weighted (see above)."""
    from pooling.economics.pool_bounds import GroupEconomics
    if spec.uncertainty is not None and spec.uncertainty.method == "robust":
        instance = _robust_bound_instance(instance, spec, group)
    econ = GroupEconomics(instance, spec, group, deadline)
    if spec.uncertainty is None or spec.uncertainty.method != "predictive":
        return econ
    pairs = _scenario_instances(instance, spec.uncertainty)
    parts = [(s.weight, econ if not s.changes else GroupEconomics(inst, spec, group, deadline)) for s, inst in pairs]
    econ.beta = sum(w * e.beta for w, e in parts)
    econ.fixed = math.fsum(w * e.fixed for w, e in parts)
    econ.alone_mean = sum(w * e.alone_mean for w, e in parts)
    econ.extra = sum(w * e.extra for w, e in parts)
    return econ


def bound_instances(instance: Instance, spec: Spec, group) -> tuple[Instance, ...]:
    """The instances whose smallest kappa the bound takes: the base alone, under
    "robust" the scenario bound_economics takes, under "predictive" every scenario's."""
    if spec.uncertainty is None:
        return (instance,)
    if spec.uncertainty.method == "robust":
        return (_robust_bound_instance(instance, spec, group),)
    return tuple(inst for _, inst in _scenario_instances(instance, spec.uncertainty))
