"""Sampled claim scenarios shared by the compact formulation and the
set-partitioning model (DESIGN §Formulations, 2).

The compact assignment model cannot use exact aggregate laws: a pool's loss
depends on which counties share it (migrants living in a fellow member are in
network). So it works on S sampled years, and to cross-check it the
set-partitioning model prices its columns on the very same years.

For scenario s, county c's Poisson rates are scaled by M_c,s = w_N Theta_s +
w_P Theta_P,s + w_C Theta_C,s (the national, prefecture and county gamma
multipliers of pools.pool_model; Theta_s alone without regional shocks). Per
county c, drawn one admission at a time, over its care flows (economics.care):
- `home[c, s]`: cost of c's residents' admissions at home (always in network);
- `in_network[c, k, s]`: full cost of the admissions of c's migrants living in
  county k of the instance (what the pool pays per unit rate if k is a member);
- `out_network[c, k, s]`: the eligible cost of the same admissions when k is
  not a member: each admission is claimed with probability q (one uniform
  draw per admission) and the claimed ones count phi times their cost. So
  `out_network <= in_network` scenario by scenario, and both describe one set
  of admissions;
- `outside[c, s]`: eligible cost of migrants living "outside" the instance
  (always out of network: thinned by q, scaled by phi).

A pool P's eligible cost in scenario s is then
    L_P[s] = sum_{c in P} ( home[c,s] + sum_{k in P} in_network[c,k,s]
                            + sum_{k not in P} out_network[c,k,s] + outside[c,s] ).

Determinism: `numpy.random.SeedSequence(seed)` spawns one child stream for
Theta and one per county (counties in sorted id order); within a county the
streams are drawn home first, then destinations in sorted order. Same
instance, S and seed give bit-identical arrays.

Pricing on scenarios mirrors pools.PoolPricer: r_P = min(r_max, B_P /
rho(L_P)) with rho the sample CVaR (Rockafellar-Uryasev: min_t t +
mean((L - t)+) / (1 - alpha), attained at the empirical alpha-quantile, which
is exactly the value the compact LP computes) or the sample VaR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import behaviour_on
from pooling.economics.care import county_care
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError
from pooling.risk.benefit_severity import paid_per_claim
from pooling.risk.measures import sample_var_cvar


@dataclass(frozen=True, eq=False)
class Scenarios:
    """S sampled claim years of an instance's counties (module docstring).

    Arrays are indexed by county position in `ids` (sorted ids) and scenario.
    """

    ids: tuple[str, ...]
    seed: int
    theta: np.ndarray          # (S,) frequency shock per scenario
    home: np.ndarray           # (n, S)
    in_network: np.ndarray     # (n, n, S): c's migrants living in k, in network
    out_network: np.ndarray    # (n, n, S): same admissions, out of network (q-thinned, x phi)
    outside: np.ndarray        # (n, S): migrants living outside the instance (q-thinned, x phi)

    @property
    def count(self) -> int:
        return int(self.theta.shape[0])

    def index(self, members) -> np.ndarray:
        """Positions of `members` (county ids) in `ids`, sorted."""
        pos = {cid: i for i, cid in enumerate(self.ids)}
        try:
            return np.array(sorted(pos[c] for c in members), dtype=int)
        except KeyError as exc:
            raise ValueError(f"county {exc.args[0]!r} is not in the scenarios") from None


def _multipliers(instance: Instance, ids, theta: np.ndarray, rng) -> np.ndarray:
    """(n, S) admission-rate multipliers M_c = w_N Theta_N + w_P Theta_P + w_C Theta_C
    (pools.pool_model): prefecture shocks drawn in sorted prefecture order, then
    county shocks in sorted id order, all from one stream."""
    p = instance.parameters
    S = theta.shape[0]

    def gamma(cv: float, size) -> np.ndarray:
        if cv == 0.0:
            return np.ones(size)
        shape = 1.0 / cv ** 2
        return rng.gamma(shape, 1.0 / shape, size=size)
    prefectures = sorted({instance.county(c).prefecture for c in ids})
    by_prefecture = dict(zip(prefectures, gamma(p.prefecture_shock.cv, (len(prefectures), S))))
    by_county = gamma(p.county_shock.cv, (len(ids), S))
    national = p.national_shock.weight * theta
    return np.array([national + p.prefecture_shock.weight * by_prefecture[instance.county(c).prefecture]
                     + p.county_shock.weight * by_county[i] for i, c in enumerate(ids)])


def sample_scenarios(instance: Instance, scenarios: int, seed: int) -> Scenarios:
    """Draw `scenarios` claim years per admission (module docstring)."""
    if scenarios < 1:
        raise ValueError(f"scenarios must be >= 1, got {scenarios}")
    p = instance.parameters
    ids = tuple(sorted(instance.ids))
    n, S = len(ids), scenarios
    pos = {cid: i for i, cid in enumerate(ids)}
    # Child i of a SeedSequence does not depend on how many are spawned: the
    # regional shocks' stream (n + 1) leaves the older streams as they were.
    children = np.random.SeedSequence(seed).spawn(2 + n)

    theta_rng = np.random.default_rng(children[0])
    if p.frequency_shock_cv > 0:
        shape = 1.0 / p.frequency_shock_cv ** 2
        theta = theta_rng.gamma(shape, 1.0 / shape, size=S)
    else:
        theta = np.ones(S)
    regional = p.prefecture_shock.weight > 0 or p.county_shock.weight > 0
    multiplier = (_multipliers(instance, ids, theta, np.random.default_rng(children[1 + n])) if regional
                  else np.broadcast_to(theta, (n, S)))

    home = np.zeros((n, S))
    in_network = np.zeros((n, n, S))
    out_network = np.zeros((n, n, S))
    outside = np.zeros((n, S))

    def draw(rng, rate, severity, scale, q, benefit=None, factor=1.0):
        """(full cost, claimed cost) per scenario of a Poisson(rate M_s) stream;
        under a benefit schedule's terms (`benefit`), what it pays per unit of
        rate in network and, out of network, for the claimed ones at `factor`
        (the factor then already applied)."""
        counts = rng.poisson(rate * scale)
        total = int(counts.sum())
        costs = severity.sample(rng, total) if total else np.zeros(0)
        claimed = rng.random(total) < q
        labels = np.repeat(np.arange(S), counts)
        if benefit is not None:
            terms = (benefit.deductible, benefit.cap, benefit.level_factor)
            full = np.bincount(labels, weights=paid_per_claim(costs, *terms), minlength=S)
            kept = np.bincount(labels, weights=np.where(claimed, paid_per_claim(factor * costs, *terms), 0.0),
                               minlength=S)
            return full, kept
        full = np.bincount(labels, weights=costs, minlength=S)
        kept = np.bincount(labels, weights=np.where(claimed, costs, 0.0), minlength=S)
        return full, kept

    for cid in ids:
        c = pos[cid]
        county = instance.county(cid)
        rng = np.random.default_rng(children[1 + c])
        for flow in county_care(instance, county):
            terms = flow.out_of_network
            full, kept = draw(rng, flow.admissions, flow.severity, multiplier[c], terms.claim_share,
                              flow.benefit, terms.factor)
            # Under a schedule `kept` is already what is paid (phi inside the transform).
            out_factor = terms.factor if flow.benefit is None else 1.0
            if flow.approved_by == frozenset((cid,)):
                home[c] += full
            elif len(flow.approved_by) == 1 and min(flow.approved_by) in pos:
                k = pos[min(flow.approved_by)]
                in_network[c, k] += full
                out_network[c, k] += out_factor * kept
            elif not flow.approved_by or not flow.approved_by <= pos.keys():
                outside[c] += out_factor * kept        # never in network within this instance
            else:
                raise InputError(f'{instance.source}: county "{cid}": care at "{flow.place}" is in network only '
                                 f"for a pool holding all of {sorted(flow.approved_by)}; the compact "
                                 f"formulation's scenarios cannot express that (use set partitioning)")
    return Scenarios(ids=ids, seed=seed, theta=theta, home=home, in_network=in_network,
                     out_network=out_network, outside=outside)


def pool_losses(scenarios: Scenarios, members) -> np.ndarray:
    """L_P[s], the pool's eligible cost (claims paid at rate 1) per scenario."""
    inside = scenarios.index(members)
    mask = np.zeros(len(scenarios.ids), dtype=bool)
    mask[inside] = True
    return (scenarios.home[mask].sum(axis=0)
            + scenarios.in_network[np.ix_(mask, mask)].sum(axis=(0, 1))
            + scenarios.out_network[np.ix_(mask, ~mask)].sum(axis=(0, 1))
            + scenarios.outside[mask].sum(axis=0))


def pool_budget(instance: Instance, spec: Spec, members) -> float:
    """B_P = sum (R_c + u A_c) - F - sum (a_c + o_c) N_c, as in pools.PoolPricer."""
    counties = [instance.county(c) for c in sorted(members)]
    u = spec.solvency.reserve_share
    revenue = math.fsum(c.revenue for c in counties)
    fixed = instance.parameters.fund_fixed_cost + math.fsum(c.per_capita_costs for c in counties)
    return revenue + u * math.fsum(c.reserves for c in counties) - fixed


def sample_risk(losses: np.ndarray, spec: Spec) -> float:
    """rho_alpha of the sample: R-U CVaR (the compact LP's value) or empirical VaR."""
    measure = spec.solvency.measure
    if measure not in ("cvar", "var"):
        raise ValueError(f"scenario pricing supports measures cvar and var, not {measure!r}")
    var, cvar = sample_var_cvar(losses, spec.solvency.level)
    return cvar if measure == "cvar" else var


def scenario_max_rate(instance: Instance, spec: Spec, scenarios: Scenarios, members) -> float:
    """r*_P = min(r_max, B_P / rho(L_P)) on the sampled scenarios.

    With no loss in any scenario (rho = 0) the pool pays r_max if its budget
    is >= 0 and is unusable (-inf) otherwise, as the compact model would.
    """
    budget = pool_budget(instance, spec, members)
    return _max_rate(budget, sample_risk(pool_losses(scenarios, members), spec), spec.rates.max)


def _max_rate(budget: float, risk: float, top: float) -> float:
    if risk <= 0.0:
        return top if budget >= 0.0 else -math.inf
    return min(top, budget / risk)


@dataclass(frozen=True)
class ScenarioPricing:
    """The fields of pools.PoolPricing the MILP and brute force read."""

    counties: tuple[str, ...]
    enrollees: int
    budget: float
    risk: float
    max_rate: float
    usable: bool
    care: tuple = ()          # no per-county care figures: the nominal mean-rate objective only
    contracts: tuple = ()


class ScenarioPricer(PoolPricer):
    """Prices pools on sampled scenarios, memoised (the cache of
    pools.PoolPricer); a drop-in where only enrollees / max_rate / usable are
    read (bruteforce.brute_force without max_cross_subsidy or
    max_expected_surplus, which need per-county expected costs)."""

    def __init__(self, instance: Instance, spec: Spec, scenarios: Scenarios):
        if spec.uncertainty is not None:   # sampled losses of the base only: never a robust price
            raise InputError(f"{spec.source}: scenario pricing (the compact formulation's) ignores [uncertainty]")
        if behaviour_on(instance):   # sampled at observed admissions: no fixed point in r
            raise InputError(f"{instance.source}: scenario pricing (the compact formulation's) samples claims at "
                             f"observed admissions and cannot price induced utilisation "
                             f"(parameters.utilisation_elasticity "
                             f"{instance.parameters.utilisation_elasticity:g}); use the exact formulation")
        super().__init__(instance, spec)
        self.scenarios = scenarios

    def _price(self, key: frozenset[str], contracts: tuple[str, ...] = ()) -> ScenarioPricing:
        if contracts:
            raise InputError("scenario pricing (the compact formulation's) does not weigh contract options")
        budget = pool_budget(self.instance, self.spec, key)
        risk = sample_risk(pool_losses(self.scenarios, key), self.spec)
        rate = _max_rate(budget, risk, self.spec.rates.max)
        return ScenarioPricing(
            counties=tuple(sorted(key)),
            enrollees=sum(self.instance.county(c).enrollees for c in key),
            budget=budget, risk=risk, max_rate=rate, usable=rate >= self.spec.rates.min)
