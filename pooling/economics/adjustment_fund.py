"""Partial pooling through an adjustment fund (issue 27 item 1; docs/model.md
§Adjustment funds).

Members of a group keep their own funds: budget B_i = R_i + u A_i - K_i (as
if alone: own fixed cost, own network) and rate r_i. Each pays c R_i into the
group's adjustment fund, whose means are F = c sum R_i; the fund pays each
member's deficit beyond its retention, D_i = (r_i Y_i - (B_i - c R_i) - rho
R_i)+, in full when it can (S = sum D_i <= F) and pro rata otherwise.

Solvency at the spec's level alpha, measure rho_alpha (cvar or var):
- the fund: rho_alpha(S) <= F (it can honour its cover at the level);
- each member, relying on that cover: rho_alpha(min(r_i Y_i, B_i - c R_i + rho R_i))
  <= B_i - c R_i (what it pays itself, its own budget net of its contribution;
  with retention 0 this always holds);
- c = 0 means no fund: each member must be solvent alone, rho_alpha(r_i Y_i) <= B_i.

Members' rates (the optimiser tries both): one common rate
(`max_common_rate`, the largest at which the fund and every member are
solvent; every constraint rises with the rate, so it is found by
bracketing), or each member's rate alone scaled by one factor
(`max_scaled_rates`: richer members keep higher rates); `price_group` prices
any rates.
Expected transfers: member i pays c R_i, receives E[pay_i] and its share
c R_i / F of the fund's expected year-end balance F - E[min(S, F)] (returned
pro rata to contributions), so the net transfers sum to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from pooling.data.benefits import with_benefits
from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.care import county_streams
from pooling.economics.pools import NO_SOLVENT_RATE
from pooling.errors import NumericsError
from pooling.risk.excess import FundLaws, Member, SharedShocks

RATE_TOLERANCE = 1e-7
"""Width of the bracket (absolute, in rate) at which the search for the
largest solvent common rate stops; the lower end (solvent) is returned. Far
below the pricing accuracy (~1e-4 of r)."""


@dataclass(frozen=True)
class MemberOutcome:
    """One member of an adjustment fund at its rate."""

    county: str
    rate: float
    revenue: float
    budget: float                  # B_i (alone)
    contribution: float            # c R_i
    threshold: float               # T_i = B_i - c R_i + rho R_i: deficits beyond it are the fund's
    expected_cost: float           # E[Y_i]
    own_risk: float                # rho_alpha of what it pays itself (min(r Y_i, T_i); r Y_i without a fund)
    expected_deficit: float        # E[D_i]
    expected_payment: float        # E[D_i min(1, F/S)]
    expected_transfer: float       # net expected receipt: payment - contribution + share of the fund's balance

    @property
    def solvent(self) -> bool:
        return self.own_risk <= self.budget - self.contribution


@dataclass(frozen=True)
class FundOutcome:
    """A group sharing one adjustment fund, at its members' rates."""

    counties: tuple[str, ...]
    contribution_share: float
    retention: float
    means: float                    # F = c sum R_i
    fund_var: float
    fund_cvar: float
    fund_risk: float                # rho_alpha(S)
    expected_demand: float          # E[S]
    expected_paid: float            # E[min(S, F)]
    members: tuple[MemberOutcome, ...]
    enrollees: int
    ruin: dict | None = None        # measure "ruin": simulated ruin frequencies {"fund", "members": {id: p}}

    @property
    def solvent(self) -> bool:
        return (self.means == 0.0 or self.fund_risk <= self.means) and all(m.solvent for m in self.members)

    def to_dict(self) -> dict:
        return {"counties": list(self.counties), "contribution": self.contribution_share,
                "retention": self.retention, "fund_means": self.means, "fund_var": self.fund_var,
                "fund_cvar": self.fund_cvar, "fund_expected_demand": self.expected_demand,
                "fund_expected_paid": self.expected_paid,
                "members": [m.__dict__.copy() for m in self.members]} | (
                    {} if self.ruin is None else {"ruin_probability": self.ruin})


def shared_shocks(instance: Instance) -> SharedShocks:
    params = instance.parameters
    national = params.national_shock
    return SharedShocks(national.weight, national.cv, params.prefecture_shock.weight, params.prefecture_shock.cv,
                        params.county_shock.weight, params.county_shock.cv)


def _largest_solvent(excess, top: float) -> float | None:
    """The largest x in [0, top] with excess(x) <= 0, excess increasing; None
    when excess(0) > 0. Brent's method, its root accepted where it is the
    crossing to RATE_TOLERANCE, else bisection."""
    if excess(top) <= 0.0:
        return top
    if excess(0.0) > 0.0:
        return None
    try:
        root = brentq(excess, 0.0, top, xtol=RATE_TOLERANCE / 4.0)
    except ValueError:
        root = None
    if root is not None:
        for candidate in (root, root - RATE_TOLERANCE / 2.0):
            if candidate >= 0.0 and excess(candidate) <= 0.0 < excess(candidate + RATE_TOLERANCE):
                return candidate
    low, high = 0.0, top
    while high - low > RATE_TOLERANCE:
        mid = 0.5 * (low + high)
        if excess(mid) <= 0.0:
            low = mid
        else:
            high = mid
    return low


class AdjustmentFundPricer:
    """Prices groups sharing an adjustment fund under one (instance, spec);
    each group's claim laws are computed once (risk.excess.FundLaws) and
    reused for every contribution and rate."""

    def __init__(self, instance: Instance, spec: Spec):
        self.instance = with_benefits(instance, spec.benefits)
        self.spec = spec
        self._laws: dict[frozenset[str], FundLaws] = {}
        self._paths: dict = {}   # group -> economics.adjustment_ruin.GroupPaths (measure "ruin")

    def laws(self, group) -> FundLaws:
        key = frozenset(group)
        if key not in self._laws:
            inst = self.instance
            members = [Member(cid, inst.county(cid).prefecture,
                              tuple(county_streams(inst, inst.county(cid), frozenset([cid]))))
                       for cid in sorted(key)]
            try:
                self._laws[key] = FundLaws(members, shared_shocks(inst), self.spec.solvency.level)
            except NumericsError as exc:
                raise NumericsError(f"{inst.source}: adjustment fund [{', '.join(sorted(key))}]: {exc}") from None
        return self._laws[key]

    def forget(self, group) -> None:
        """Drop a group's laws (a group of large counties holds hundreds of
        MB of conditional laws: a plan keeps only the groups it prices again)."""
        self._laws.pop(frozenset(group), None)
        self._paths.pop(frozenset(group), None)

    def paths(self, group):
        """The group's simulated years under measure "ruin" (economics.adjustment_ruin.GroupPaths)."""
        from pooling.economics.adjustment_ruin import GroupPaths
        key = frozenset(group)
        if key not in self._paths:
            self._paths[key] = GroupPaths(self.instance, self.spec, key)
        return self._paths[key]

    def budgets(self, group) -> list[tuple[float, float]]:
        """(R_i, B_i) of each member (sorted ids), B_i as if it were alone."""
        inst, u = self.instance, self.spec.solvency.reserve_share
        out = []
        for cid in sorted(group):
            c = inst.county(cid)
            out.append((c.revenue, c.revenue + u * c.reserves - inst.parameters.fund_fixed_cost
                        - c.per_capita_costs))
        return out

    def _risk(self, var: float, cvar: float) -> float:
        return cvar if self.spec.solvency.measure == "cvar" else var

    def _excess(self, group, share: float, retention: float, rates: list[float]) -> float:
        """The largest shortfall of the fund's and members' constraints at the
        members' rates (<= 0: solvent), relative to the group's revenue.
        Measure "ruin": simulated over the horizon (economics.adjustment_ruin)."""
        if self.spec.solvency.measure == "ruin":
            return self.paths(group).excess(share, retention, rates)
        laws, level = self.laws(group), self.spec.solvency.level
        money = self.budgets(group)
        scale = math.fsum(r for r, _ in money) or 1.0
        worst = -math.inf
        for i, (revenue, budget) in enumerate(money):
            own_budget = budget - share * revenue
            cap = None if share == 0.0 else own_budget + retention * revenue
            if cap is not None and cap <= own_budget:
                continue   # it never pays more than its own budget (retention 0): solvent at any rate
            if rates[i] == 0.0:
                own = min(0.0, cap) if cap is not None else 0.0
            else:
                own = self._risk(*laws.member_risk(i, rates[i], cap, level))
            worst = max(worst, (own - own_budget) / scale)
        if share > 0.0:
            means = share * scale
            thresholds = [b - share * r + retention * r for r, b in money]
            if max(rates) == 0.0:
                demand = math.fsum(max(0.0, -t) for t in thresholds)
            else:
                fund = laws.fund(rates, thresholds, level)
                demand = self._risk(fund.var, fund.cvar)
            worst = max(worst, (demand - means) / scale)
        return worst

    def max_common_rate(self, group, share: float, retention: float) -> float:
        """The largest r <= rates.max at which the fund and every member are
        solvent with all members at r; NO_SOLVENT_RATE when not even r = 0 is."""
        size = len(set(group))
        found = _largest_solvent(lambda r: self._excess(group, share, retention, [r] * size), self.spec.rates.max)
        return NO_SOLVENT_RATE if found is None else found

    def anchors(self, group) -> list[float]:
        """Each member's largest solvent rate alone, B_i / rho_alpha(Y_i), not
        capped (0 when its budget is negative)."""
        laws, level = self.laws(group), self.spec.solvency.level
        out = []
        for i, (_, budget) in enumerate(self.budgets(group)):
            risk = self._risk(*laws.member_risk(i, 1.0, None, level))
            out.append(max(0.0, budget) / risk if risk > 0.0 else self.spec.rates.max)
        return out

    def max_scaled_rates(self, group, share: float, retention: float) -> tuple[float, ...] | None:
        """Members' rates in proportion to their rates alone, r_i = min(r_max,
        t a_i) (`anchors`), at the largest t at which the fund and every member
        are solvent: members keep their own generosity, scaled together
        (None when no t > 0 is solvent)."""
        anchors = self.anchors(group)
        top_rate = self.spec.rates.max
        positive = [a for a in anchors if a > 0.0]
        if not positive:
            return None

        def rates(t: float) -> list[float]:
            return [min(top_rate, t * a) for a in anchors]
        found = _largest_solvent(lambda t: self._excess(group, share, retention, rates(t)), top_rate / min(positive))
        return None if not found else tuple(rates(found))

    def price_group(self, group, share: float, retention: float, rate) -> FundOutcome:
        """Every figure of a group's adjustment fund with all members at `rate`
        (> 0), or at rates[i] (ids sorted), expected transfers included."""
        inst, level = self.instance, self.spec.solvency.level
        ids = sorted(group)
        laws = self.laws(ids)
        money = self.budgets(ids)
        means = share * math.fsum(r for r, _ in money)
        thresholds = [b - share * r + retention * r for r, b in money]
        rates = [float(rate)] * len(ids) if isinstance(rate, int | float) else [float(r) for r in rate]
        if share > 0.0:
            fund = laws.fund(rates, thresholds, level)
            payments = laws.expected_payments(rates, thresholds, means, fund)
            deficits, paid = fund.member_deficits, math.fsum(payments)
            fund_var, fund_cvar, demand = fund.var, fund.cvar, fund.mean
        else:
            payments = deficits = tuple(0.0 for _ in ids)
            paid = fund_var = fund_cvar = demand = 0.0
        balance = means - paid
        members = []
        for i, cid in enumerate(ids):
            revenue, budget = money[i]
            contribution = share * revenue
            cap = None if share == 0.0 else thresholds[i]
            own = self._risk(*laws.member_risk(i, rates[i], cap, level)) if rates[i] > 0.0 else 0.0
            returned = balance * contribution / means if means > 0.0 else 0.0
            members.append(MemberOutcome(
                county=cid, rate=rates[i], revenue=revenue, budget=budget, contribution=contribution,
                threshold=thresholds[i], expected_cost=laws.members[i].mean, own_risk=own,
                expected_deficit=deficits[i], expected_payment=payments[i],
                expected_transfer=payments[i] - contribution + returned))
        ruin = None
        if self.spec.solvency.measure == "ruin":
            found = self.paths(ids).ruin(share, retention, rates)
            ruin = {"fund": found.fund, "members": dict(zip(ids, found.members))}
        return FundOutcome(ruin=ruin, counties=tuple(ids), contribution_share=share, retention=retention, means=means,
                           fund_var=fund_var, fund_cvar=fund_cvar, fund_risk=self._risk(fund_var, fund_cvar),
                           expected_demand=demand, expected_paid=paid, members=tuple(members),
                           enrollees=sum(inst.county(c).enrollees for c in ids))


def call_probabilities(pricer: AdjustmentFundPricer, group, share: float, retention: float,
                       rates) -> tuple[float, tuple[float, ...]]:
    """(P(S > F): the fund cannot pay every deficit in full, P(r_i Y_i > T_i)
    for each member (ids sorted): it calls on the fund) for a group at its
    members' rates, exact on the fund's lattices (a point counts as above
    when it lies above the bound, as pooling.economics.status_quo.survival).
    Share 0 (no fund): (0, P(r_i Y_i > B_i)), each member's own deficit."""
    ids = sorted(group)
    laws, money = pricer.laws(ids), pricer.budgets(ids)
    rates = [float(rates)] * len(ids) if isinstance(rates, int | float) else [float(r) for r in rates]
    thresholds = [b - share * r + retention * r for r, b in money] if share > 0.0 else [b for _, b in money]
    points = laws.span * np.arange(laws.points)
    calls = tuple(float(laws.unconditional[i][rates[i] * points > thresholds[i]].sum()) if rates[i] > 0.0
                  else float(thresholds[i] < 0.0) for i in range(len(ids)))
    if share == 0.0 or max(rates) == 0.0:
        return 0.0, calls
    fund = laws.fund(rates, thresholds, pricer.spec.solvency.level)
    means = share * math.fsum(r for r, _ in money)
    above = fund.span * np.arange(len(fund.pmf)) > means
    return min(1.0, float(fund.pmf[above].sum())), calls
