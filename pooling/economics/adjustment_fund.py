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

Induced utilisation (economics.behaviour, e != 0): member i's admissions
scale by m_i(r_i) at its own rate. Under either rule the rates are one
increasing function of a scalar x (the common rate; the factor's lowest
member's rate), so with e <= 0 raising x raises every member's claims in the
usual stochastic order and every constraint's excess rises with x: the
largest solvent x is the fixed point x = h(x) of h, the largest solvent x
with admissions frozen at the multipliers of x (behaviour.solvent_fixed_point;
docs/model.md, Adjustment funds). With e = 0 nothing of this is used.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from pooling.data.benefits import with_benefits
from pooling.data.instance import Instance
from pooling.data.spec import Spec
from pooling.economics.behaviour import behaviour_on, multiplier, observed_rate, solvent_fixed_point
from pooling.economics.care import county_streams
from pooling.economics.pools import NO_SOLVENT_RATE
from pooling.errors import NumericsError
from pooling.risk.excess import FundLaws, Member, SharedShocks

RATE_TOLERANCE = 1e-7
"""Width of the bracket (absolute, in rate) at which the search for the
largest solvent common rate stops; the lower end (solvent) is returned. Far
below the pricing accuracy (~1e-4 of r)."""
LAWS_KEPT = 3
"""Multiplier vectors whose laws a pricer keeps per group (induced
utilisation): a fixed-point search prices 2-4, and the group's figures are
then priced at its answer, one of the last few tried; each set of a large
group's laws holds hundreds of MB."""

Multipliers = tuple[float, ...] | None
"""Per member (ids sorted), the factor m_i(r_i) of its observed admissions
(economics.behaviour); None: observed admissions (no behavioural response)."""


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
    admission_multiplier: float | None = None   # m_i(rate) with induced utilisation (None: no response)

    @property
    def solvent(self) -> bool:
        return self.own_risk <= self.budget - self.contribution

    def to_dict(self) -> dict:
        """result.json's member entry; admission_multiplier only with a response (files as before without)."""
        row = self.__dict__.copy()
        if row["admission_multiplier"] is None:
            del row["admission_multiplier"]
        return row


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
                "members": [m.to_dict() for m in self.members]} | (
                    {} if self.ruin is None else {"ruin_probability": self.ruin})


def shared_shocks(instance: Instance) -> SharedShocks:
    params = instance.parameters
    national = params.national_shock
    return SharedShocks(national.weight, national.cv, params.prefecture_shock.weight, params.prefecture_shock.cv,
                        params.county_shock.weight, params.county_shock.cv)


def _largest_solvent(excess, top: float, near: float | None = None) -> float | None:
    """The largest x in [0, top] with excess(x) <= 0, excess increasing; None
    when excess(0) > 0. Brent's method, its root accepted where it is the
    crossing to RATE_TOLERANCE, else bisection. With `near` (a guess of the
    answer: induced utilisation's fixed-point search, whose every rate tried
    lies close to its h) the bracket is found by stepping out from it and
    closed by `_close_bracket` instead (about half the pricings)."""
    if near is not None:
        bracket = _bracket_near(excess, top, near)
        return _close_bracket(excess, *bracket) if isinstance(bracket, tuple) else bracket
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


NEAR_STEP = 2e-3
"""First step (rate units) away from a guess when `_largest_solvent`
brackets around it; it doubles until the sign changes. A fixed-point search
prices rates within ~1e-3 of their h after its first pricing, where one step
brackets; the first pricing, from the members' observed rates, is a few
steps off."""


def _bracket_near(excess, top: float, near: float):
    """(low, excess(low), high, excess(high)), low solvent and high not,
    around `near`, stepping out by NEAR_STEP doubling; or the answer itself
    when it is an end: top (solvent there), None (not solvent at 0)."""
    x = min(max(near, 0.0), top)
    step = NEAR_STEP
    fx = excess(x)
    if fx <= 0.0:
        while True:
            if x >= top:
                return top
            y = min(top, x + step)
            fy = excess(y)
            if fy > 0.0:
                return x, fx, y, fy
            x, fx, step = y, fy, 2.0 * step
    while True:
        if x <= 0.0:
            return None
        y = max(0.0, x - step)
        fy = excess(y)
        if fy <= 0.0:
            return y, fy, x, fx
        x, fx, step = y, fy, 2.0 * step


def _close_bracket(excess, low: float, f_low: float, high: float, f_high: float) -> float:
    """The solvent end of [low, high] (excess(low) <= 0 < excess(high)) once
    narrowed to RATE_TOLERANCE: regula falsi with the Illinois weighting
    (superlinear on a smooth excess), each step aimed a quarter of the
    tolerance on the solvent side of the secant's root so that the step after
    can close the bracket; bisection when a step would not move inside it
    or two steps did not halve the bracket."""
    side = 0
    widths = [high - low]
    while high - low > RATE_TOLERANCE:
        guess = high - f_high * (high - low) / (f_high - f_low) if f_high != f_low else 0.5 * (low + high)
        if len(widths) >= 3 and widths[-1] > 0.5 * widths[-3]:
            guess = 0.5 * (low + high)   # not halving (a step-shaped excess: measure "ruin"): bisect
        if side == 1:       # the last step moved low: aim a little past the secant's root
            guess = min(guess + 0.5 * RATE_TOLERANCE, high)
        x = guess - 0.25 * RATE_TOLERANCE
        if not low < x < high:
            x = 0.5 * (low + high)
        if x - low <= 0.5 * RATE_TOLERANCE and f_low != 0.0:
            x = min(low + 0.75 * RATE_TOLERANCE, 0.5 * (low + high))
        fx = excess(x)
        if fx <= 0.0:
            low, f_low = x, fx
            if side == 1:
                f_high *= 0.5          # Illinois: the end that stayed loses weight
            side = 1
        else:
            high, f_high = x, fx
            if side == -1:
                f_low *= 0.5
            side = -1
        widths.append(high - low)
    return low


class AdjustmentFundPricer:
    """Prices groups sharing an adjustment fund under one (instance, spec);
    each group's claim laws are computed once per set of admission
    multipliers (risk.excess.FundLaws; one set, the observed admissions,
    without behaviour) and reused for every contribution and rate."""

    def __init__(self, instance: Instance, spec: Spec):
        self._given = instance
        self.instance = with_benefits(instance, spec.benefits)
        self.spec = spec
        self._laws: dict[frozenset[str], dict[Multipliers, FundLaws]] = {}
        self._paths: dict[frozenset[str], dict[Multipliers, object]] = {}   # measure "ruin": GroupPaths
        self._alone = None     # economics.pools.PoolPricer of members alone with behaviour (`anchors`)

    def laws(self, group, multipliers: Multipliers = None) -> FundLaws:
        """The group's laws with member i's admissions times multipliers[i]."""
        key = frozenset(group)
        kept = self._laws.setdefault(key, {})
        if multipliers not in kept:
            inst = self.instance
            members = [Member(cid, inst.county(cid).prefecture,
                              tuple(county_streams(inst, inst.county(cid), frozenset([cid]),
                                                   multipliers=_scale_of(cid, k, multipliers))))
                       for k, cid in enumerate(sorted(key))]
            try:
                laws = FundLaws(members, shared_shocks(inst), self.spec.solvency.level)
            except NumericsError as exc:
                raise NumericsError(f"{inst.source}: adjustment fund [{', '.join(sorted(key))}]: {exc}") from None
            _keep(kept, multipliers, laws)
        return kept[multipliers]

    def forget(self, group) -> None:
        """Drop a group's laws (a group of large counties holds hundreds of
        MB of conditional laws: a plan keeps only the groups it prices again)."""
        self._laws.pop(frozenset(group), None)
        self._paths.pop(frozenset(group), None)

    def paths(self, group, multipliers: Multipliers = None):
        """The group's simulated years under measure "ruin" (economics.adjustment_ruin.GroupPaths)."""
        from pooling.economics.adjustment_ruin import GroupPaths
        key = frozenset(group)
        kept = self._paths.setdefault(key, {})
        if multipliers not in kept:
            scale = None if multipliers is None else dict(zip(sorted(key), multipliers))
            _keep(kept, multipliers, GroupPaths(self.instance, self.spec, key, multipliers=scale))
        return kept[multipliers]

    def multipliers(self, group, rates) -> Multipliers:
        """m_i(r_i) per member (ids sorted) at its rate; None without behaviour."""
        inst = self.instance
        if not behaviour_on(inst):
            return None
        e = inst.parameters.utilisation_elasticity
        return tuple(multiplier(e, observed_rate(inst, inst.county(cid)), max(0.0, float(r)))
                     for cid, r in zip(sorted(group), rates))

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

    def _excess(self, group, share: float, retention: float, rates: list[float],
                multipliers: Multipliers = None) -> float:
        """The largest shortfall of the fund's and members' constraints at the
        members' rates (<= 0: solvent), relative to the group's revenue, with
        admissions at `multipliers`. Measure "ruin": simulated over the
        horizon (economics.adjustment_ruin)."""
        if self.spec.solvency.measure == "ruin":
            return self.paths(group, multipliers).excess(share, retention, rates)
        laws, level = self.laws(group, multipliers), self.spec.solvency.level
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

    def _largest_solvent_rates(self, group, share: float, retention: float, rates_of, top: float,
                               start: float) -> float | None:
        """The largest x in [0, top] at which the group is solvent with its
        members at rates_of(x) (each increasing in x); None when not even x =
        0 is. With induced utilisation the members' admissions are those of
        rates_of(x): the fixed point of h(x), the largest solvent x with
        admissions frozen at those of rates_of(x) (module docstring; h is
        non-increasing for e <= 0), searched from `start`."""
        if not behaviour_on(self.instance):
            return _largest_solvent(lambda x: self._excess(group, share, retention, rates_of(x)), top)

        def frozen(x: float) -> float:
            at = self.multipliers(group, rates_of(x))
            found = _largest_solvent(lambda y: self._excess(group, share, retention, rates_of(y), at), top, near=x)
            return NO_SOLVENT_RATE if found is None else found
        where = f"{self.instance.source}: adjustment fund [{', '.join(sorted(group))}] at contribution {share:g}"
        found, _ = solvent_fixed_point(frozen, top, where, elasticity=self.instance.parameters.utilisation_elasticity,
                                       start=start)
        return None if found < 0.0 else found

    def _common_start(self, group) -> float:
        """Where a common rate's fixed-point search starts: the members' rates
        alone (`anchors`), enrollee-weighted (a fund's common rate lies near
        them: at c = 0 their least, with a fund above it), else (no member
        solvent alone) and under measure "ruin" their mean observed rate,
        where the multipliers are 1."""
        inst, ids = self.instance, sorted(group)
        if self.spec.solvency.measure == "ruin":   # rates alone are simulated: not worth a start
            return math.fsum(observed_rate(inst, inst.county(c)) for c in ids) / len(ids)
        people = [inst.county(c).enrollees for c in ids]
        anchors = self.anchors(ids)
        if max(anchors) > 0.0 and sum(people) > 0:
            return math.fsum(n * a for n, a in zip(people, anchors)) / sum(people)
        return math.fsum(observed_rate(inst, inst.county(c)) for c in ids) / len(ids)

    def max_common_rate(self, group, share: float, retention: float) -> float:
        """The largest r <= rates.max at which the fund and every member are
        solvent with all members at r (admissions at m_i(r) with induced
        utilisation); NO_SOLVENT_RATE when not even r = 0 is."""
        size = len(set(group))
        start = self._common_start(group) if behaviour_on(self.instance) else 0.0
        found = self._largest_solvent_rates(group, share, retention, lambda r: [r] * size, self.spec.rates.max,
                                            start)
        return NO_SOLVENT_RATE if found is None else found

    def anchors(self, group) -> list[float]:
        """Each member's largest solvent rate alone, B_i / rho_alpha(Y_i), not
        capped (0 when its budget is negative). With induced utilisation, its
        rate alone at its own fixed point as the unified engine prices a pool
        of one (economics.pools: at most rates.max, its budget's sign below
        0 taken as 0), a direction only: a member's laws on a lattice of its
        own need a fine shock quadrature (its spread given the shocks is
        small), ten times the group's cost for no gain."""
        if behaviour_on(self.instance):
            if self._alone is None:
                from pooling.economics.pools import PoolPricer
                self._alone = PoolPricer(self._given, dataclasses.replace(self.spec, adjustment_fund=None))
            return [max(0.0, self._alone.price({cid}).max_rate) for cid in sorted(group)]
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
        (None when no t > 0 is solvent). With induced utilisation the search
        runs on x = t a_min, the rate of the member with the smallest positive
        anchor (below r_max until t reaches its top, where every member is at
        r_max), from t = 1, each member at its rate alone."""
        anchors = self.anchors(group)
        top_rate = self.spec.rates.max
        positive = [a for a in anchors if a > 0.0]
        if not positive:
            return None
        lowest = min(positive)
        if behaviour_on(self.instance):
            def rates(x: float) -> list[float]:
                return [min(top_rate, x / lowest * a) for a in anchors]
            found = self._largest_solvent_rates(group, share, retention, rates, top_rate, min(lowest, top_rate))
            return None if not found else tuple(rates(found))

        def rates(t: float) -> list[float]:
            return [min(top_rate, t * a) for a in anchors]
        found = _largest_solvent(lambda t: self._excess(group, share, retention, rates(t)), top_rate / lowest)
        return None if not found else tuple(rates(found))

    def price_group(self, group, share: float, retention: float, rate) -> FundOutcome:
        """Every figure of a group's adjustment fund with all members at `rate`
        (> 0), or at rates[i] (ids sorted), expected transfers included."""
        inst, level = self.instance, self.spec.solvency.level
        ids = sorted(group)
        rates = [float(rate)] * len(ids) if isinstance(rate, int | float) else [float(r) for r in rate]
        scale = self.multipliers(ids, rates)
        laws = self.laws(ids, scale)
        money = self.budgets(ids)
        means = share * math.fsum(r for r, _ in money)
        thresholds = [b - share * r + retention * r for r, b in money]
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
                expected_transfer=payments[i] - contribution + returned,
                admission_multiplier=None if scale is None else scale[i]))
        ruin = None
        if self.spec.solvency.measure == "ruin":
            found = self.paths(ids, scale).ruin(share, retention, rates)
            ruin = {"fund": found.fund, "members": dict(zip(ids, found.members))}
        return FundOutcome(ruin=ruin, counties=tuple(ids), contribution_share=share, retention=retention, means=means,
                           fund_var=fund_var, fund_cvar=fund_cvar, fund_risk=self._risk(fund_var, fund_cvar),
                           expected_demand=demand, expected_paid=paid, members=tuple(members),
                           enrollees=sum(inst.county(c).enrollees for c in ids))


def _scale_of(cid: str, k: int, multipliers: Multipliers) -> dict[str, float] | None:
    """county_streams' multipliers argument for member k (`cid`) of a group."""
    return None if multipliers is None else {cid: multipliers[k]}


def _keep(kept: dict, key, value) -> None:
    """Store `value` under `key`, keeping at most LAWS_KEPT entries (the oldest go first)."""
    while len(kept) >= LAWS_KEPT:
        del kept[next(iter(kept))]
    kept[key] = value


def call_probabilities(pricer: AdjustmentFundPricer, group, share: float, retention: float,
                       rates) -> tuple[float, tuple[float, ...]]:
    """(P(S > F): the fund cannot pay every deficit in full, P(r_i Y_i > T_i)
    for each member (ids sorted): it calls on the fund) for a group at its
    members' rates, exact on the fund's lattices (a point counts as above
    when it lies above the bound, as pooling.economics.status_quo.survival).
    Share 0 (no fund): (0, P(r_i Y_i > B_i)), each member's own deficit."""
    ids = sorted(group)
    rates = [float(rates)] * len(ids) if isinstance(rates, int | float) else [float(r) for r in rates]
    laws, money = pricer.laws(ids, pricer.multipliers(ids, rates)), pricer.budgets(ids)
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
