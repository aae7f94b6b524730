"""Effective rates of groups of enrollees, and the equity measures over them
(issue 25 item 5).

A group is the residents, or the migrants, of one county. In a column (a pool
and the contracts it takes) group g of county c has the effective share
e_g = E[Y_g] / T_g (its expected claims per unit of rate over the expected
cost of all its care at the prices it is billed, unclaimed included:
economics.care), so at the pool's rate r its effective rate is x_g = r e_g.
Every county lies in exactly one chosen column, so x_g is the value of the
one column covering it: any function of x_g is linear in the column choices
(sum over the columns covering c of f(r_j e_g,j) y_j). The equity objectives
below are therefore exact MILPs, with no approximation of their concave parts.

Measures over a plan's groups, each group weighted by its people:
- residents' / migrants' effective rate: the people-weighted mean of x_g over
  the residents' (migrants') groups;
- the worst-off group's rate: min x_g over groups with people and care;
- Atkinson's equally distributed equivalent rate with aversion eps >= 0:
  (sum w_g x_g^(1-eps) / W)^(1/(1-eps)), the geometric mean at eps = 1; it is
  the mean at eps = 0 and tends to the minimum as eps grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pooling.data.instance import Instance
from pooling.data.spec import EQUITY_WEIGHTED_RATE, MAX_AVERSION, MAX_MIN_GROUP_RATE
from pooling.economics.care import MIGRANT, RESIDENT, CountyCare, portability

__all__ = ["MAX_AVERSION", "GroupShare", "atkinson_inverse", "atkinson_mean", "atkinson_utility", "county_groups",
           "group_figures", "group_mean", "group_objective", "plan_groups", "worst_group_rate"]


@dataclass(frozen=True)
class GroupShare:
    """One group's people and effective share e_g in one column."""

    county: str
    who: str          # RESIDENT or MIGRANT
    people: float     # enrollees in the group
    share: float      # e_g = E[Y_g] / T_g (billed prices)

    @property
    def key(self) -> tuple[str, str]:
        return (self.county, self.who)


def county_groups(instance: Instance, care: CountyCare) -> tuple[GroupShare, ...]:
    """The groups of one county in one column: residents, then migrants; a
    group without people or without care is left out (it has no rate)."""
    county = instance.county(care.county)
    out = []
    for who, people, eligible, total in (
            (RESIDENT, county.enrollees * (1.0 - county.migrant_share), care.resident_eligible, care.resident_total),
            (MIGRANT, county.enrollees * county.migrant_share, care.migrant_eligible, care.migrant_total)):
        if people > 0.0 and total > 0.0:
            out.append(GroupShare(care.county, who, people, eligible / total))
    return tuple(out)


def plan_groups(instance: Instance, cares_and_rates) -> list[tuple[GroupShare, float]]:
    """(group, effective rate x_g = r e_g) of every group of a plan, given as
    (CountyCare, rate) pairs; in county order, residents first."""
    out = [(g, rate * g.share) for care, rate in cares_and_rates for g in county_groups(instance, care)]
    return sorted(out, key=lambda item: (item[0].county, item[0].who != RESIDENT))


def group_mean(groups: list[tuple[GroupShare, float]], who: str) -> float | None:
    """People-weighted mean effective rate of the residents' (who = RESIDENT)
    or migrants' groups; None where there are none."""
    chosen = [(g.people, x) for g, x in groups if g.who == who]
    people = math.fsum(p for p, _ in chosen)
    return None if people <= 0.0 else math.fsum(p * x for p, x in chosen) / people


def atkinson_utility(x: float, aversion: float) -> float:
    """u(x) = x^(1-eps) / (1-eps), log x at eps = 1: Atkinson's mean is
    u^-1(sum w_g u(x_g) / W). -inf at x = 0 for eps >= 1."""
    if aversion == 1.0:
        return math.log(x) if x > 0.0 else -math.inf
    if x <= 0.0:
        return 0.0 if aversion < 1.0 else -math.inf
    return x ** (1.0 - aversion) / (1.0 - aversion)


def atkinson_inverse(u: float, aversion: float) -> float:
    """x with atkinson_utility(x) = u (0 for an unreachable u)."""
    if aversion == 1.0:
        return math.exp(u) if u > -math.inf else 0.0
    scaled = u * (1.0 - aversion)
    return scaled ** (1.0 / (1.0 - aversion)) if scaled > 0.0 else 0.0


def atkinson_mean(groups: list[tuple[GroupShare, float]], aversion: float) -> float | None:
    """Atkinson's equally distributed equivalent effective rate of the groups."""
    people = math.fsum(g.people for g, _ in groups)
    if people <= 0.0:
        return None
    if any(x <= 0.0 for _, x in groups) and aversion >= 1.0:
        return 0.0
    return atkinson_inverse(math.fsum(g.people * atkinson_utility(x, aversion) for g, x in groups) / people,
                            aversion)


def worst_group_rate(groups: list[tuple[GroupShare, float]]) -> float | None:
    """The lowest effective rate of any group (None without groups)."""
    return min((x for _, x in groups), default=None)


def group_objective(kind: str, aversion: float | None, groups: list[tuple[GroupShare, float]]) -> float | None:
    """A spec's group objective (data.spec.GROUP_OBJECTIVES) of a plan's
    groups: the worst-off group's rate, or Atkinson's mean at `aversion`."""
    if kind == MAX_MIN_GROUP_RATE:
        return worst_group_rate(groups)
    if kind == EQUITY_WEIGHTED_RATE:
        return atkinson_mean(groups, aversion)
    raise ValueError(f"not a group objective: {kind!r}")


def group_figures(instance: Instance, cares_and_rates) -> dict[str, float | None]:
    """A plan's groups in four figures (result.json `group_rates`): the
    people-weighted mean effective rate of the residents' and of the migrants'
    groups (as in frontier.csv), the plan's mean effective rate (as in
    `portability`) and the worst-off group's rate; None where there is no such
    group."""
    pairs = list(cares_and_rates)
    groups = plan_groups(instance, pairs)
    return {"resident_effective_rate": group_mean(groups, RESIDENT),
            "migrant_effective_rate": group_mean(groups, MIGRANT),
            "mean_effective_rate": portability(pairs)["mean_effective_rate"] if pairs else None,
            "worst_group_rate": worst_group_rate(groups)}
