"""Adjustment funds with induced utilisation (issue 27 with issue 25 item 1;
docs/model.md, Adjustment funds): each member's admissions scale by
m_i(r_i) = ((1 - r_i) / (1 - r0_i))^e at its own rate. Checked: e = 0 gives
the figures of before bit for bit; the rates found are solvent with the
members' multipliers at those rates and insolvent a tolerance above, checked
directly on an instance whose admissions are scaled by hand (e = 0); the
limits (contribution 0: each member alone with behaviour, the unified
engine's pool of one; full contribution without retention: the unified pool
with behaviour); multipliers reported; the ruin measure; the command line."""

from __future__ import annotations

import json
import math

import pytest

from pooling.cli import main
from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.economics.adjustment_fund import RATE_TOLERANCE, AdjustmentFundPricer
from pooling.economics.behaviour import FIXED_POINT_TOLERANCE, multiplier
from pooling.economics.pools import PoolPricer
from pooling.optimise.adjustment import choose_contribution
from pooling.risk.excess import ADJUSTMENT_ACCURACY
from tests.factories import county, instance_dict, spec_dict

ELASTICITY = -0.407
R0 = {"1": 0.5, "2": 0.6, "3": 0.55}
"""Observed rates (current_rate): the members' multipliers differ at one rate."""
ABOVE = FIXED_POINT_TOLERANCE + 4 * RATE_TOLERANCE
"""A rate this far above a search's answer is past the fixed point (which is
within FIXED_POINT_TOLERANCE above it, each h to RATE_TOLERANCE)."""


def _records(scale=None, enrollees=(15_000, 40_000, 8_000)):
    """Three members, national and county shocks (the limits' instance of
    tests/test_adjustment_fund.py, with observed rates); `scale` multiplies
    each member's admission rate (the direct check)."""
    scale = scale or {}
    per_capita = {"1": 330.0, "2": 340.0, "3": 335.0}
    return [county(cid, prefecture="9001" if cid != "3" else "9002", enrollees=n, reserves=0.0,
                   contribution_per_capita=per_capita[cid], current_rate=R0[cid],
                   admission_rate=0.08 * scale.get(cid, 1.0))
            for cid, n in zip(("1", "2", "3"), enrollees)]


def _instance(elasticity=ELASTICITY, scale=None):
    return instance_from_dict(instance_dict(
        _records(scale), admin_fixed_per_fund=0.0, frequency_shock_cv=0.1,
        regional_shocks={"county": {"weight": 0.2, "cv": 0.3}}, utilisation_elasticity=elasticity))


def _spec(contribution=(0.0, 0.05), retention=0.0, **sections):
    sections.setdefault("solvency", {"reserve_share": 0.0})
    return spec_from_dict(spec_dict(pooling={"mode": "adjustment_fund"},
                                    adjustment_fund={"contribution": list(contribution), "retention": retention},
                                    **sections))


GROUP = ("1", "2", "3")
_PRICERS: dict = {}


def _pricer(retention=0.0) -> AdjustmentFundPricer:
    if retention not in _PRICERS:
        _PRICERS[retention] = AdjustmentFundPricer(_instance(), _spec(retention=retention))
    return _PRICERS[retention]


def _multipliers(rates):
    return {cid: multiplier(ELASTICITY, R0[cid], r) for cid, r in zip(GROUP, rates)}


# -- e = 0: as before --------------------------------------------------------------------------

def test_no_response_prices_as_before_bit_for_bit():
    """The figures of tests/test_adjustment_fund.py's small group as the code
    before induced utilisation gave them (recorded at b42b408), and no multiplier written."""
    small = [("a", "p1", 500, 200.0), ("b", "p1", 700, 190.0), ("c", "p2", 400, 210.0)]
    instance = instance_from_dict(instance_dict(
        [county(cid, prefecture=pref, enrollees=n, contribution_per_capita=p, reserves=0.0, admission_rate=0.05)
         for cid, pref, n, p in small], admin_fixed_per_fund=0.0, frequency_shock_cv=0.2,
        regional_shocks={"county": {"weight": 0.3, "cv": 0.4}}))
    spec = spec_from_dict(spec_dict(pooling={"mode": "adjustment_fund"},
                                    adjustment_fund={"contribution": [0.0, 0.1], "retention": 0.03}))
    pricer = AdjustmentFundPricer(instance, spec)
    group = ("a", "b", "c")
    assert pricer.max_common_rate(group, 0.1, 0.03) == 0.333641388892526
    assert pricer.max_scaled_rates(group, 0.1, 0.03) == (0.33233806648360625, 0.33364142019732945,
                                                         0.3348165969271022)
    outcome = pricer.price_group(group, 0.1, 0.03, [0.5, 0.6, 0.55])
    assert (outcome.fund_cvar, outcome.members[1].expected_transfer, outcome.members[2].own_risk) == (
        84710.6900296951, 1900.436731888276, 61320.0)
    assert all("admission_multiplier" not in m for m in outcome.to_dict()["members"])


# -- the fixed point, checked directly -----------------------------------------------------------

def _direct_excess(rates, share, retention=0.0):
    """The group's largest constraint shortfall at `rates` on an instance
    without behaviour whose admission rates are scaled by hand by each
    member's m_i at its rate: no multiplier passes through the pricer."""
    scaled = _instance(elasticity=0.0, scale=_multipliers(rates))
    return AdjustmentFundPricer(scaled, _spec(retention=retention))._excess(GROUP, share, retention, list(rates))


@pytest.mark.parametrize(("share", "rule"), [(0.05, "common"), (0.05, "proportional"), (0.0, "proportional")])
def test_rates_are_solvent_at_their_multipliers_and_not_a_tolerance_above(share, rule):
    pricer = _pricer()
    if rule == "common":
        rate = pricer.max_common_rate(GROUP, share, 0.0)
        rates, above = [rate] * 3, [rate + ABOVE] * 3
    else:
        rates = list(pricer.max_scaled_rates(GROUP, share, 0.0))
        lowest = min(rates)       # the search's variable: the lowest member's rate
        above = [r * (lowest + ABOVE) / lowest for r in rates]
    assert max(rates) < pricer.spec.rates.max   # the search ended where a constraint binds
    assert _direct_excess(rates, share) <= 0.0 < _direct_excess(above, share)
    # Without the response the same group pays more (every rate here is above its r0).
    plain = AdjustmentFundPricer(_instance(elasticity=0.0), _spec())
    without = [plain.max_common_rate(GROUP, share, 0.0)] * 3 if rule == "common" else plain.max_scaled_rates(
        GROUP, share, 0.0)
    assert all(r < w for r, w in zip(rates, without))


def test_reported_multipliers_are_each_members_at_its_rate():
    pricer = _pricer()
    rates = pricer.max_scaled_rates(GROUP, 0.05, 0.0)
    outcome = pricer.price_group(GROUP, 0.05, 0.0, rates)
    for member, rate in zip(outcome.members, rates):
        assert member.admission_multiplier == multiplier(ELASTICITY, R0[member.county], rate)
        assert member.to_dict()["admission_multiplier"] == member.admission_multiplier
    # The expected costs are those of the induced admissions.
    plain = AdjustmentFundPricer(_instance(elasticity=0.0), _spec()).price_group(GROUP, 0.05, 0.0, rates)
    for induced, observed in zip(outcome.members, plain.members):
        assert induced.expected_cost == pytest.approx(observed.expected_cost * induced.admission_multiplier,
                                                      rel=1e-9)


# -- the limits --------------------------------------------------------------------------------

def test_contribution_zero_is_each_member_alone_with_behaviour():
    instance = _instance()
    alone = PoolPricer(instance, _spec())
    rates = [alone.price({c}).max_rate for c in GROUP]
    pricer = _pricer()
    for c, rate in zip(GROUP, rates):   # a group of one: no fund
        assert pricer.max_common_rate((c,), 0.0, 0.0) == pytest.approx(rate, rel=ADJUSTMENT_ACCURACY)
    # The proportional rule at c = 0 gives every member its own rate alone.
    assert pricer.max_scaled_rates(GROUP, 0.0, 0.0) == pytest.approx(rates, rel=ADJUSTMENT_ACCURACY)
    assert pricer.max_common_rate(GROUP, 0.0, 0.0) == pytest.approx(min(rates), rel=ADJUSTMENT_ACCURACY)


def test_full_contribution_without_retention_is_the_unified_pool_with_behaviour():
    instance = _instance()
    spec = _spec()
    pool = PoolPricer(instance, spec).price(set(GROUP))
    assert pool.max_rate < spec.rates.max and pool.admission_multiplier > 1.0
    assert _pricer().max_common_rate(GROUP, 1.0, 0.0) == pytest.approx(pool.max_rate, rel=ADJUSTMENT_ACCURACY)


def test_the_chosen_option_keeps_the_multipliers():
    choice = choose_contribution(_pricer(), GROUP)
    assert choice.usable and choice.contribution > 0.0
    outcome = _pricer().price_group(GROUP, choice.contribution, 0.0, choice.rates)
    assert outcome.solvent
    assert all(m.admission_multiplier > 1.0 for m in outcome.members)   # rates above every r0


# -- the ruin measure -------------------------------------------------------------------------

def test_ruin_rates_are_solvent_on_the_paths_at_their_multipliers():
    """Measure "ruin": the common rate found is solvent on the paths drawn at
    its members' multipliers and not a tolerance above (their own paths)."""
    small = (600, 800, 500)
    records = [r | {"admission_rate": 0.05} for r in _records(enrollees=small)]
    instance = instance_from_dict(instance_dict(
        records, admin_fixed_per_fund=0.0, frequency_shock_cv=0.1,
        regional_shocks={"county": {"weight": 0.2, "cv": 0.3}}, utilisation_elasticity=ELASTICITY))
    spec = _spec(solvency={"measure": "ruin", "level": 0.95, "reserve_share": 0.0, "horizon_years": 2},
                 simulation={"scenarios": 1_000, "seed": 5})
    pricer = AdjustmentFundPricer(instance, spec)
    rate = pricer.max_common_rate(GROUP, 0.05, 0.0)
    assert 0.0 < rate < spec.rates.max
    at, above = pricer.multipliers(GROUP, [rate] * 3), pricer.multipliers(GROUP, [rate + ABOVE] * 3)
    assert pricer.paths(GROUP, at).excess(0.05, 0.0, [rate] * 3) <= 0.0
    assert pricer.paths(GROUP, above).excess(0.05, 0.0, [rate + ABOVE] * 3) > 0.0
    outcome = pricer.price_group(GROUP, 0.05, 0.0, rate)
    assert outcome.ruin["fund"] <= 1.0 - spec.solvency.level
    assert all(m.admission_multiplier == at[k] for k, m in enumerate(outcome.members))


# -- the command line ---------------------------------------------------------------------------

def test_solve_and_evaluate_write_the_members_multipliers(tmp_path, capsys):
    data = instance_dict(_records(enrollees=(1_500, 4_000, 800)), admin_fixed_per_fund=0.0,
                         frequency_shock_cv=0.1, regional_shocks={"county": {"weight": 0.2, "cv": 0.3}},
                         utilisation_elasticity=ELASTICITY)
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(data))
    spec = tmp_path / "spec.toml"
    spec.write_text('format = "pooling.spec/1"\n[pooling]\nscope = "optimise"\nmode = "adjustment_fund"\n'
                    '[adjustment_fund]\ncontribution = [0.0, 0.05]\nretention = 0.0\n'
                    '[solvency]\nmeasure = "cvar"\nlevel = 0.99\nreserve_share = 0.0\n'
                    '[rates]\nmin = 0.3\nmax = 0.9\n')
    assert main(["solve", str(path), "--spec", str(spec), "--out", str(tmp_path / "solved"), "--compare"]) == 0
    result = json.loads((tmp_path / "solved" / "result.json").read_text())
    assert result["baselines"]["unified"] is not None and result["baselines"]["no_pooling"] is not None
    members = [m for g in result["groups"] for m in g["members"]]
    assert len(members) == 3
    for m in members:
        assert m["admission_multiplier"] == multiplier(ELASTICITY, R0[m["county"]], m["rate"])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"pools": [list(GROUP)]}))
    assert main(["evaluate", str(path), "--spec", str(spec), "--plan", str(plan),
                 "--out", str(tmp_path / "fixed")]) == 0
    evaluation = json.loads((tmp_path / "fixed" / "evaluation.json").read_text())
    assert all(math.isfinite(m["admission_multiplier"]) for m in evaluation["groups"][0]["members"])
