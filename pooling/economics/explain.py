"""Where a plan's gain over the status quo comes from (issue 13, `pooling
evaluate --explain`).

For a linear objective sum_c omega_c r_c / D (objectives.py), the change from
the status quo (every county alone, at the rates the spec gives it) to a plan
is split pool by pool along a path of counterfactual rates, so the parts sum
to the total exactly (a telescoping sum). For a pool P of members c, with B_c,
rho_c the stand-alone budget and risk and r^_c = B_c / rho_c the stand-alone
rate before caps and rules:
    r_A = sum B_c / sum rho_c           the funds merged with nothing else changed
    r_B = (sum B_c + (n-1) F) / sum rho_c   one fund's fixed cost instead of n
    r_C = B_P / rho(sum_c Y_c^alone)    the same claims, their risk measured jointly
    r_D = B_P / rho(Y_P)                migrants and referrals brought in network
    r_P                                 the plan's rate (caps, menus, rules)
and the parts are, summed over the members with their objective weights:
- composition: r_A - r^_c (averaging members' stand-alone rates into one);
- fixed_cost_saving: r_B - r_A (0 when the county budget pays running costs);
- diversification: r_C - r_B;
- network: r_D - r_C, plus, for the effective objectives, the reimbursement
  that care now in network adds at the plan's rate, r_P (e_c,P - e_c,alone);
- rules_and_caps: (r_P - r_D) - (r_c - r^_c): rates.max, menus and the
  equalisation rules in the plan, net of those in the status quo.
For the nominal mean rate omega_c = N_c; for the mean effective rate
omega_c = N_c e_c,alone; for coverage omega_c = E[Y_c,alone] (and D = sum T_c).

With induced utilisation (economics.behaviour) the path is priced at the
observed admissions (m_c = 1) up to r_D, then
    r_E = B_P / rho(Y_P(r*_P))          the members' admissions at the pool's fixed point
and a sixth part, behaviour: (r_E - r_D) - (r^_c - r^0_c), the response in
the pool net of the one the county already had alone (r^_c at its own fixed
point, r^0_c = B_c / rho_c at observed admissions, where composition starts);
rules_and_caps then runs from r_E. Each pool also reports its max rate with
and without the response and its admission multiplier at the plan's rate.
"""

from __future__ import annotations

import math

from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import behaviour_on
from pooling.economics.objectives import (
    EFFECTIVE_COVERAGE,
    LINEAR_OBJECTIVES,
    MEAN_EFFECTIVE_RATE,
    MEAN_RATE,
    county_weight,
    objective_denominator,
    plan_value,
)
from pooling.economics.pools import PoolPricer, pool_model, solvent_rate
from pooling.economics.status_quo import as_run, summary
from pooling.errors import InputError
from pooling.risk.claims import aggregate

PARTS = ("composition", "fixed_cost_saving", "diversification", "network", "rules_and_caps")
SUM_TOLERANCE = 1e-9
"""The parts must add up to the total within this (rate units): they telescope,
so only rounding separates them."""


def require_exact_measure(spec: Spec) -> None:
    """The decomposition prices counterfactual pools exactly: VaR or CVaR only."""
    if spec.solvency.measure not in ("var", "cvar"):
        raise InputError(f"{spec.source}: explain needs solvency.measure \"var\" or \"cvar\" (the risk of a "
                         f"counterfactual pool is computed exactly), got \"{spec.solvency.measure}\"")


def _require_positive_risk(spec: Spec, members, risks: list[float]) -> None:
    """The path divides budgets by risks (each county alone, the pool with and
    without a shared network): a risk of 0 (a VaR when no claim is at least as
    likely as the level, or a pool that pays no claim at all) makes those rates
    unbounded and the parts undefined."""
    if not all(risk > 0.0 for risk in risks):
        hint = '; solvency.measure "cvar" avoids it unless no claim is paid at all' \
            if spec.solvency.measure == "var" else ""
        raise InputError(f"{spec.source}: explain: a {spec.solvency.measure} of 0 at level "
                         f"{spec.solvency.level!r} in the pool of {', '.join(members)} (no claim is at least "
                         f"that likely, or none is paid) makes the decomposition's uncapped rates B / rho "
                         f"unbounded{hint}")


def _portability_gain(kind: str, care_alone, care_pooled, rate: float) -> float:
    if kind == MEAN_EFFECTIVE_RATE:
        return care_alone.enrollees * rate * (care_pooled.effective_share - care_alone.effective_share)
    if kind == EFFECTIVE_COVERAGE:
        return rate * (care_pooled.observed_eligible - care_alone.observed_eligible)
    return 0.0


def _observed_risk(instance: Instance, spec: Spec, members, contracts=()) -> float:
    """rho of a pool's claims at the observed admissions (no behavioural response)."""
    model = pool_model(instance, frozenset(members), contracts=[instance.contract(o) for o in contracts])
    result = aggregate(model, spec.solvency.level)
    return result.cvar if spec.solvency.measure == "cvar" else result.var


def gain_decomposition(instance: Instance, spec: Spec, pricer: PoolPricer,
                       plan: list[tuple[tuple[str, ...], float, tuple[str, ...]]],
                       status_quo: dict[str, float]) -> dict:
    """The change of the spec's objective (the mean rate for a non-linear one)
    from the status quo rates to the plan's pools, rates and contract options
    taken, split into PARTS (a contract's care and cost count in `network`)."""
    require_exact_measure(spec)
    if spec.uncertainty is not None:
        raise InputError(f"{spec.source}: --explain prices counterfactual pools on the instance as given; under "
                         f"[uncertainty] it would explain another plan's rates: remove the table to explain")
    kind = spec.objective.kind if spec.objective.kind in LINEAR_OBJECTIVES else MEAN_RATE
    denominator = objective_denominator(kind, instance, instance.ids)
    level = spec.solvency.level
    fixed = instance.parameters.fund_fixed_cost
    induced = behaviour_on(instance)
    names = PARTS + ("behaviour",) if induced else PARTS
    pools, totals = [], dict.fromkeys(names, 0.0)
    for members, rate, contracts in plan:
        alone = {c: pricer.price([c]) for c in members}
        pooled = pricer.price(members, contracts)
        care_pooled = {c.county: c for c in pooled.care}
        _require_positive_risk(spec, members, [*(alone[c].risk for c in members), pooled.risk])
        risks = {c: _observed_risk(instance, spec, [c]) if induced else alone[c].risk for c in members}
        pooled_risk = _observed_risk(instance, spec, members, contracts) if induced else pooled.risk
        _require_positive_risk(spec, members, [*risks.values(), pooled_risk])
        budgets = {c: alone[c].budget for c in members}
        r_hat = {c: budgets[c] / risks[c] for c in members}
        r_hat_response = {c: budgets[c] / alone[c].risk for c in members}
        r_a = math.fsum(budgets.values()) / math.fsum(risks.values())
        r_b = (math.fsum(budgets.values()) + (len(members) - 1) * fixed) / math.fsum(risks.values())
        own = pool_model(instance, frozenset(members), {c: frozenset((c,)) for c in members})
        joint = aggregate(own, level)
        joint_risk = joint.cvar if spec.solvency.measure == "cvar" else joint.var
        _require_positive_risk(spec, members, [joint_risk])
        r_c = pooled.budget / joint_risk
        r_d = pooled.budget / pooled_risk
        r_e = pooled.budget / pooled.risk
        parts = dict.fromkeys(names, 0.0)
        for c in members:
            care_alone = alone[c].care[0]
            w = county_weight(kind, care_alone)
            parts["composition"] += w * (r_a - r_hat[c])
            parts["fixed_cost_saving"] += w * (r_b - r_a)
            parts["diversification"] += w * (r_c - r_b)
            parts["network"] += w * (r_d - r_c) + _portability_gain(kind, care_alone, care_pooled[c], rate)
            if induced:
                parts["behaviour"] += w * ((r_e - r_d) - (r_hat_response[c] - r_hat[c]))
            parts["rules_and_caps"] += w * ((rate - r_e) - (status_quo[c] - r_hat_response[c]))
        parts = {k: v / denominator for k, v in parts.items()}
        for k in names:
            totals[k] += parts[k]
        entry = {"counties": list(members), "rate": rate, "contracts": list(contracts),
                 "rates": {"stand_alone_uncapped": {c: r_hat[c] for c in members}, "merged": r_a,
                           "one_fixed_cost": r_b, "diversified": r_c, "in_network": r_d},
                 "parts": parts, "total": math.fsum(parts.values())}
        if induced:
            entry["rates"]["with_response"] = r_e
            entry["behaviour"] = {
                "max_rate_without_response": solvent_rate(pooled.budget, pooled_risk, spec.rates.max),
                "max_rate_with_response": pooled.max_rate,
                "admission_multiplier": pooled.behaviour.admission_multiplier(rate),
                "stand_alone_uncapped_with_response": r_hat_response}
        pools.append(entry)
    before = plan_value(kind, [pricer.price([c]) for c in instance.ids], [status_quo[c] for c in instance.ids])
    after = plan_value(kind, [pricer.price(m, c) for m, _, c in plan], [rate for _, rate, _ in plan])
    total = after - before
    summed = math.fsum(totals.values())
    if abs(summed - total) > SUM_TOLERANCE:
        raise ArithmeticError(f"gain decomposition: parts sum to {summed!r}, total is {total!r}")
    explained = {"objective_kind": kind, "status_quo": before, "plan": after, "total": total,
                 "parts": totals, "pools": pools,
                 "method": "telescoping path status quo -> merged -> one fixed cost -> diversified -> "
                           "in network -> plan rates (docs/model.md, 'Where the gain comes from')"}
    if all(c.current_rate is not None for c in instance.counties):
        # Beside the decomposition, not in it: the counties as they run today (issue 24).
        rows = as_run(instance, spec, pricer)
        explained["status_quo_as_run"] = dict(
            summary(rows, instance), objective=plan_value(kind, [pricer.price([r.county]) for r in rows],
                                                          [r.current_rate for r in rows]),
            gain_of_plan=after - plan_value(kind, [pricer.price([r.county]) for r in rows],
                                            [r.current_rate for r in rows]))
    return explained
