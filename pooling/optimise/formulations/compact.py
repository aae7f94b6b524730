"""Compact assignment MILP on sampled scenarios (DESIGN §Formulations, 2).

The reference formulation: it chooses the partition and the rates in one
model, without enumerating pools, so it cross-checks the set-partitioning
model priced on the same scenarios (pooling.economics.loss_scenarios) and serves as a
formulation benchmark. It supports scope "optimise", measure "cvar" and
objective "max_mean_rate", without equalisation rules or rate menus.

Data (pooling.economics.loss_scenarios, money divided by one scale M so rows are O(1)):
  a[c,s] = home + sum_k out_network[c,k] + outside   (c's loss when alone)
  d[c,k,s] = in_network[c,k] - out_network[c,k] >= 0 (extra loss when k joins c)
  b_c = R_c + u A_c - (a_c + o_c) N_c,  F the fixed cost per fund
so a pool's loss is L_P[s] = sum_{c in P} a[c,s] + sum_{c,k in P} d[c,k,s].

Slots. With symmetry breaking (default) slot g is "the pool whose smallest
county (in sorted id order) is g": x[c,g] exists only for c >= g (and c in
g's `within` group), x[c,g] <= x[g,g] and u[g] = x[g,g]. Every partition has
exactly one assignment, and the root of slot g is g itself (used by the
contiguity flows). Without it (`symmetry_breaking=False`, for benchmarking),
n interchangeable slots, ordered u[g] >= u[g+1], a group choice per slot and
a root choice per slot for the flows.

Variables and constraints:
  x[c,g] binary, sum_g x[c,g] = 1; x[c,g] <= u[g]; u[g] <= sum_c x[c,g]
  r[g] in [0, r_max]: r_min u[g] <= r[g] <= r_max u[g]
  z[c,g] = r[g] x[c,g]: z <= r, z <= r_max x, z >= r - r_max (1 - x), z >= 0
  v[c,k,g] = r[g] x[c,g] x[k,g] (pairs with d[c,k] != 0):
        v <= z[c,g], v <= z[k,g], v >= z[c,g] + z[k,g] - r[g], v >= 0
    (exact at binary x: both members gives v = r, otherwise v = 0; it needs
    no separate w = x[c,g] x[k,g], and z >= r - r_max (1 - x) makes it at
    least as tight as linearising w first and then r w)
  Rockafellar-Uryasev CVaR of slot g's claims r[g] L_g over the S scenarios:
    e[g,s] >= sum_c a[c,s] z[c,g] + sum_{c,k} d[c,k,s] v[c,k,g] - t[g],  e, t >= 0
    t[g] + sum_s e[g,s] / (S (1 - alpha)) <= sum_c b_c x[c,g] - F u[g]
    (t >= 0 loses nothing: losses are >= 0, so a minimising t is their
    alpha-quantile; min over t of the left side is r[g] CVaR_sample(L_g))
  max_counties: sum_c x[c,g] <= K u[g];  min_enrollees: sum_c N_c x[c,g] >= N_min u[g]
  contiguous: single-commodity flow from the slot's root, f[i,j,g] on
    adjacency arcs inside the slot, f <= cap x[i,g], f <= cap x[j,g] and each
    non-root member absorbs one unit: inflow - outflow = x[j,g].
Objective: max sum_{c,g} N_c z[c,g] / N (the enrollee-weighted mean rate).

Size with symmetry breaking, n counties in one group, S scenarios, p pairs
(c,k) with migrants from c living in k: n(n+1)/2 + n binaries (x, u);
continuous n(n+1)/2 (z) + at most n p (v) + 2n (r, t) + n S (e), plus the
flows; rows are dominated by the n S excess rows, each with up to n + p
terms. E.g. n = 8, S = 200: 44 binaries, ~1,700 variables, ~1,850 rows.
The builder never solves.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from pooling.data.instance import Instance
from pooling.data.spec import Equalisation, Spec
from pooling.economics.loss_scenarios import Scenarios


def _check_supported(instance: Instance, spec: Spec, scenarios: Scenarios) -> None:
    if spec.pooling.scope != "optimise":
        raise ValueError(f'the compact formulation needs pooling.scope "optimise", '
                         f'got {spec.pooling.scope!r}')
    if spec.solvency.measure != "cvar":
        raise ValueError(f'the compact formulation supports solvency.measure "cvar" only, '
                         f'got {spec.solvency.measure!r}')
    if spec.objective.kind != "max_mean_rate":
        raise ValueError(f'the compact formulation supports objective "max_mean_rate" only, '
                         f'got {spec.objective.kind!r}')
    if spec.equalisation != Equalisation():
        raise ValueError("the compact formulation does not support equalisation rules")
    if spec.rates.step is not None:
        raise ValueError("the compact formulation does not support a rate menu (rates.step)")
    if tuple(scenarios.ids) != tuple(sorted(instance.ids)):
        raise ValueError("scenarios were drawn for other counties than the instance's")


def _groups(instance: Instance, spec: Spec, ids: tuple[str, ...]) -> list[str]:
    within = spec.pooling.within
    if within == "none":
        return ["" for _ in ids]
    values = [getattr(instance.county(c), within) for c in ids]
    missing = [c for c, v in zip(ids, values) if v is None]
    if missing:
        raise ValueError(f"county {missing[0]!r}: {within} is missing, but the spec groups "
                         f"pools within {within}s")
    return values


def money_scale(scenarios: Scenarios) -> float:
    """Largest county mean loss with all its migrants in network: rows become O(1)."""
    full = (scenarios.home + scenarios.in_network.sum(axis=1) + scenarios.outside).mean(axis=1)
    top = float(full.max()) if full.size else 0.0
    return top if top > 0 else 1.0


def build_compact(instance: Instance, spec: Spec, scenarios: Scenarios,
                  symmetry_breaking: bool = True) -> pyo.ConcreteModel:
    """Pyomo model of the compact assignment formulation (module docstring).

    The model carries `ids` (county ids by position), `money_scale`, the
    `mean_rate` expression and `objective`; read the plan with `compact_plan`.
    """
    _check_supported(instance, spec, scenarios)
    ids = tuple(scenarios.ids)
    n, S = len(ids), scenarios.count
    rules, rates = spec.pooling, spec.rates
    top, bottom = rates.max, rates.min
    alpha, share = spec.solvency.level, spec.solvency.reserve_share
    counties = [instance.county(c) for c in ids]
    enrollees = [c.enrollees for c in counties]
    total = float(sum(enrollees))
    group = _groups(instance, spec, ids)
    pos = {cid: i for i, cid in enumerate(ids)}
    adjacent = [sorted(pos[o] for o in c.adjacent if o in pos) for c in counties]

    scale = money_scale(scenarios)
    alone = (scenarios.home + scenarios.out_network.sum(axis=1) + scenarios.outside) / scale
    extra = (scenarios.in_network - scenarios.out_network) / scale
    pairs = [(c, k) for c in range(n) for k in range(n) if c != k and np.any(extra[c, k] != 0.0)]
    budget = [(c.revenue + share * c.reserves - c.per_capita_costs) / scale for c in counties]
    fixed = instance.parameters.fund_fixed_cost / scale
    size_cap = min(n, rules.max_counties or n)

    slots = list(range(n))
    if symmetry_breaking:
        assign = [(c, g) for g in slots for c in range(g, n) if group[c] == group[g]]
    else:
        assign = [(c, g) for g in slots for c in range(n)]
    in_slot = {g: [c for c, h in assign if h == g] for g in slots}
    allowed = set(assign)
    slot_pairs = [(c, k, g) for g in slots for c, k in pairs if (c, g) in allowed and (k, g) in allowed]

    m = pyo.ConcreteModel(name="compact")
    m.ids = ids
    m.money_scale = scale
    m.symmetry_breaking = symmetry_breaking
    m.G = pyo.Set(initialize=slots, ordered=True)
    m.S = pyo.RangeSet(0, S - 1)
    m.A = pyo.Set(initialize=assign, dimen=2, ordered=True)
    m.V = pyo.Set(initialize=slot_pairs, dimen=3, ordered=True)

    m.x = pyo.Var(m.A, domain=pyo.Binary)
    m.u = pyo.Var(m.G, domain=pyo.Binary)
    m.r = pyo.Var(m.G, bounds=(0.0, top))
    m.z = pyo.Var(m.A, bounds=(0.0, top))
    m.v = pyo.Var(m.V, bounds=(0.0, top))
    m.t = pyo.Var(m.G, domain=pyo.NonNegativeReals)
    m.e = pyo.Var(m.G, m.S, domain=pyo.NonNegativeReals)

    slots_of = {c: [g for h, g in assign if h == c] for c in range(n)}
    m.one_slot = pyo.Constraint(range(n), rule=lambda _m, c: sum(_m.x[c, g] for g in slots_of[c]) == 1)
    m.used = pyo.Constraint(m.A, rule=lambda _m, c, g: _m.x[c, g] <= _m.u[g])
    if symmetry_breaking:
        m.root = pyo.Constraint(m.G, rule=lambda _m, g: _m.u[g] == _m.x[g, g])
    else:
        m.nonempty = pyo.Constraint(m.G, rule=lambda _m, g: _m.u[g] <= sum(_m.x[c, g] for c in in_slot[g]))
        m.order = pyo.Constraint([g for g in slots if g + 1 in slots],
                                 rule=lambda _m, g: _m.u[g] >= _m.u[g + 1])

    m.rate_cap = pyo.Constraint(m.G, rule=lambda _m, g: _m.r[g] <= top * _m.u[g])
    m.rate_floor = pyo.Constraint(m.G, rule=lambda _m, g: _m.r[g] >= bottom * _m.u[g])
    m.z_rate = pyo.Constraint(m.A, rule=lambda _m, c, g: _m.z[c, g] <= _m.r[g])
    m.z_on = pyo.Constraint(m.A, rule=lambda _m, c, g: _m.z[c, g] <= top * _m.x[c, g])
    m.z_off = pyo.Constraint(m.A, rule=lambda _m, c, g: _m.z[c, g] >= _m.r[g] - top * (1 - _m.x[c, g]))
    m.v_c = pyo.Constraint(m.V, rule=lambda _m, c, k, g: _m.v[c, k, g] <= _m.z[c, g])
    m.v_k = pyo.Constraint(m.V, rule=lambda _m, c, k, g: _m.v[c, k, g] <= _m.z[k, g])
    m.v_both = pyo.Constraint(m.V, rule=lambda _m, c, k, g:
                              _m.v[c, k, g] >= _m.z[c, g] + _m.z[k, g] - _m.r[g])

    pairs_in = {g: [(c, k) for c, k, h in slot_pairs if h == g] for g in slots}

    def excess_rule(_m, g, s):
        loss = (sum(float(alone[c, s]) * _m.z[c, g] for c in in_slot[g])
                + sum(float(extra[c, k, s]) * _m.v[c, k, g] for c, k in pairs_in[g]))
        return _m.e[g, s] >= loss - _m.t[g]
    m.excess = pyo.Constraint(m.G, m.S, rule=excess_rule)
    weight = 1.0 / (S * (1.0 - alpha))
    m.solvency = pyo.Constraint(m.G, rule=lambda _m, g: (
        _m.t[g] + weight * sum(_m.e[g, s] for s in _m.S)
        <= sum(budget[c] * _m.x[c, g] for c in in_slot[g]) - fixed * _m.u[g]))

    if rules.max_counties is not None and rules.max_counties < n:
        m.max_counties = pyo.Constraint(m.G, rule=lambda _m, g: (
            sum(_m.x[c, g] for c in in_slot[g]) <= rules.max_counties * _m.u[g]))
    if rules.min_enrollees > 0:
        m.min_enrollees = pyo.Constraint(m.G, rule=lambda _m, g: (
            sum(enrollees[c] * _m.x[c, g] for c in in_slot[g]) >= rules.min_enrollees * _m.u[g]))

    distinct = sorted(set(group))
    if not symmetry_breaking and len(distinct) > 1:
        m.y = pyo.Var(distinct, m.G, domain=pyo.Binary)
        m.one_group = pyo.Constraint(m.G, rule=lambda _m, g: sum(_m.y[p, g] for p in distinct) == _m.u[g])
        m.in_group = pyo.Constraint(m.A, rule=lambda _m, c, g: _m.x[c, g] <= _m.y[group[c], g])

    if rules.contiguous:
        _add_contiguity(m, slots, in_slot, adjacent, size_cap, symmetry_breaking)

    m.mean_rate = pyo.Expression(expr=sum((enrollees[c] / total) * m.z[c, g] for c, g in assign))
    m.objective = pyo.Objective(expr=m.mean_rate, sense=pyo.maximize)
    return m


def _add_contiguity(m, slots, in_slot, adjacent, cap, symmetry_breaking) -> None:
    """Single-commodity flows: each non-root member of a slot absorbs one unit
    sent from the slot's root along adjacency arcs between members."""
    members = {g: set(in_slot[g]) for g in slots}
    arcs = [(i, j, g) for g in slots for i in sorted(members[g]) for j in adjacent[i]
            if j in members[g] and not (symmetry_breaking and j == g)]
    m.F = pyo.Set(initialize=arcs, dimen=3, ordered=True)
    m.f = pyo.Var(m.F, bounds=(0.0, cap - 1))
    m.flow_tail = pyo.Constraint(m.F, rule=lambda _m, i, j, g: _m.f[i, j, g] <= (cap - 1) * _m.x[i, g])
    m.flow_head = pyo.Constraint(m.F, rule=lambda _m, i, j, g: _m.f[i, j, g] <= (cap - 1) * _m.x[j, g])
    into = {(j, g): [] for g in slots for j in members[g]}
    out = {(i, g): [] for g in slots for i in members[g]}
    for i, j, g in arcs:
        into[(j, g)].append((i, j, g))
        out[(i, g)].append((i, j, g))
    if symmetry_breaking:
        nodes = [(j, g) for g in slots for j in in_slot[g] if j != g]
        m.flow_balance = pyo.Constraint(nodes, rule=lambda _m, j, g: (
            sum(_m.f[a] for a in into[(j, g)]) - sum(_m.f[a] for a in out[(j, g)]) == _m.x[j, g]))
        return
    # Interchangeable slots: a root per used slot, fed by a super-source.
    nodes = [(j, g) for g in slots for j in in_slot[g]]
    m.root_of = pyo.Var(nodes, domain=pyo.Binary)
    m.root_member = pyo.Constraint(nodes, rule=lambda _m, j, g: _m.root_of[j, g] <= _m.x[j, g])
    m.one_root = pyo.Constraint(m.G, rule=lambda _m, g: sum(_m.root_of[j, g] for j in in_slot[g]) == _m.u[g])
    m.source = pyo.Var(nodes, bounds=(0.0, cap))
    m.source_cap = pyo.Constraint(nodes, rule=lambda _m, j, g: _m.source[j, g] <= cap * _m.root_of[j, g])
    m.flow_balance = pyo.Constraint(nodes, rule=lambda _m, j, g: (
        _m.source[j, g] + sum(_m.f[a] for a in into[(j, g)]) - sum(_m.f[a] for a in out[(j, g)])
        == _m.x[j, g]))


def compact_plan(m: pyo.ConcreteModel) -> list[tuple[tuple[str, ...], float]]:
    """The solved model's pools (sorted member ids) and their rates, sorted by members."""
    pools: dict[int, list[str]] = {}
    for c, g in m.A:
        value = m.x[c, g].value
        if value is not None and value > 0.5:
            pools.setdefault(g, []).append(m.ids[c])
    plan = [(tuple(sorted(members)), float(m.r[g].value)) for g, members in pools.items()]
    return sorted(plan)


def model_size(m: pyo.ConcreteModel) -> dict[str, int]:
    """Variables (binary / continuous) and constraints of a built model."""
    binaries = sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())
    variables = m.nvariables()
    return {"variables": variables, "binaries": binaries, "continuous": variables - binaries,
            "constraints": m.nconstraints()}


def plan_objective(plan, instance: Instance) -> float:
    """Enrollee-weighted mean rate of a plan [(members, rate), ...]."""
    total = instance.total_enrollees
    return math.fsum(sum(instance.county(c).enrollees for c in members) * rate
                     for members, rate in plan) / total
