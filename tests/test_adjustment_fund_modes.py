"""Adjustment funds across prefectures and as a fixed design (issue 27, the
three-mode comparison): a prefecture with one member has its shock folded
into that member's law (one-level quadrature) and prices as the nested
quadrature does; the limits across prefectures with prefecture shocks;
members far larger than a claim price as the engine does (exact cell
masses), and the severity lattice's variance inflation is refused; a given
partition of groups (`evaluate_adjustment_fund`, `pooling evaluate`)."""

from __future__ import annotations

import json
import math

import pytest

from pooling.cli import main
from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.economics.adjustment_fund import AdjustmentFundPricer, shared_shocks
from pooling.economics.care import county_streams
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError, NumericsError
from pooling.optimise.adjustment import choose_contribution, evaluate_adjustment_fund
from pooling.risk import excess
from pooling.risk.excess import ADJUSTMENT_ACCURACY, FundLaws, Member
from tests.factories import county, instance_dict, spec_dict
from tests.tolerances import ROUNDING

SHOCKS = {"frequency_shock_cv": 0.2,
          "regional_shocks": {"prefecture": {"weight": 0.3, "cv": 0.3}, "county": {"weight": 0.2, "cv": 0.4}}}


def _spec(contribution=(0.0, 0.05, 0.1), retention=0.0, **sections):
    return spec_from_dict(spec_dict(pooling={"mode": "adjustment_fund"},
                                    adjustment_fund={"contribution": list(contribution), "retention": retention},
                                    **sections))


def _three_prefectures():
    """25, 35 and 20 admissions a year, each county its own prefecture."""
    return instance_from_dict(instance_dict(
        [county(cid, prefecture=pref, enrollees=n, contribution_per_capita=p, reserves=0.0, admission_rate=0.05)
         for cid, pref, n, p in [("a", "p1", 500, 200.0), ("b", "p2", 700, 190.0), ("c", "p3", 400, 210.0)]],
        admin_fixed_per_fund=0.0, **SHOCKS))


def _laws(instance, spec, fold: bool) -> FundLaws:
    pricer = AdjustmentFundPricer(instance, spec)
    inst = pricer.instance
    members = [Member(c.id, c.prefecture, tuple(county_streams(inst, c, frozenset([c.id]))))
               for c in sorted(inst.counties, key=lambda c: c.id)]
    return FundLaws(members, shared_shocks(inst), spec.solvency.level, fold=fold)


def test_folded_prefectures_price_as_the_nested_quadrature():
    """Members in different prefectures: each prefecture shock folded into its
    member's law (national nodes only) against every prefecture's nodes nested
    in the national ones: the fund's law, its CVaR and VaR, each member's
    expected deficit and payment, and each member's own risk agree."""
    instance, spec = _three_prefectures(), _spec()
    fast, nested = _laws(instance, spec, True), _laws(instance, spec, False)
    assert fast.folded == [True, True, True] and not any(nested.folded)
    assert all(len(fast.regional_of[p][0]) == 1 for p in range(3))
    assert len(nested.regional_of[0][0]) > 1
    pricer = AdjustmentFundPricer(instance, spec)
    money = pricer.budgets(("a", "b", "c"))
    means = 0.1 * sum(r for r, _ in money)
    for rate in ([0.8, 0.7, 0.85],):   # members at their own rates (the lattice maps two)
        thresholds = [b - 0.1 * r for r, b in money]
        one, two = fast.fund(rate, thresholds, 0.99), nested.fund(rate, thresholds, 0.99)
        assert one.mean == pytest.approx(two.mean, rel=ADJUSTMENT_ACCURACY)
        assert one.cvar == pytest.approx(two.cvar, rel=ADJUSTMENT_ACCURACY)
        assert one.var == pytest.approx(two.var, rel=ADJUSTMENT_ACCURACY)
        for x, y in zip(one.member_deficits, two.member_deficits):
            assert x == pytest.approx(y, rel=ADJUSTMENT_ACCURACY)
        for x, y in zip(fast.expected_payments(rate, thresholds, means, one),
                        nested.expected_payments(rate, thresholds, means, two)):
            assert x == pytest.approx(y, rel=ADJUSTMENT_ACCURACY)
    for i in range(3):
        for cap in (None, money[i][1]):
            assert fast.member_risk(i, 0.8, cap, 0.99) == pytest.approx(nested.member_risk(i, 0.8, cap, 0.99),
                                                                        rel=ADJUSTMENT_ACCURACY)


def _across_prefectures():
    """The limit instance of tests/test_adjustment_fund.py with a prefecture
    shock and each county its own prefecture (there: minutes on the nested
    quadrature, so those limits were left out)."""
    shocks = {"county": {"weight": 0.2, "cv": 0.3}, "prefecture": {"weight": 0.3, "cv": 0.2}}
    return instance_from_dict(instance_dict([
        county("1", prefecture="9001", enrollees=15000, contribution_per_capita=330.0, reserves=0.0),
        county("2", prefecture="9002", enrollees=40000, contribution_per_capita=340.0, reserves=0.0),
        county("3", prefecture="9003", enrollees=8000, contribution_per_capita=335.0, reserves=0.0)],
        admin_fixed_per_fund=0.0, frequency_shock_cv=0.1, regional_shocks=shocks))


def test_limits_across_prefectures_with_prefecture_shocks():
    """Contribution 0: each member alone; contribution 1, no retention: the
    unified pool of the three prefectures (engine)."""
    instance = _across_prefectures()
    spec = _spec(solvency={"reserve_share": 0.0})
    group = ("1", "2", "3")
    engine, fund = PoolPricer(instance, spec), AdjustmentFundPricer(instance, spec)
    assert all(fund.laws(group).folded)
    alone = {c: engine.price({c}).max_rate for c in group}
    assert fund.max_common_rate(group, 0.0, 0.0) == pytest.approx(min(alone.values()), rel=ADJUSTMENT_ACCURACY)
    pool = engine.price(set(group)).max_rate
    assert pool < spec.rates.max
    assert fund.max_common_rate(group, 1.0, 0.0) == pytest.approx(pool, rel=ADJUSTMENT_ACCURACY)


def _large_members():
    """Two funds of 0.7 and 3 million enrollees in two prefectures, shocks
    and claims as china2023.json's: claims 1/10^3 of the group's lattice cell."""
    shocks = {"prefecture": {"weight": 0.3, "cv": 0.1}, "county": {"weight": 0.3, "cv": 0.0645}}
    return instance_from_dict(instance_dict([
        county("1", prefecture="9001", enrollees=700_000, contribution_per_capita=1097.65, reserves=7e8,
               admission_rate=0.2, outpatient_per_capita=165.0, severity={"dist": "lognormal", "mean": 7674.0,
                                                                           "cv": 1.0}),
        county("2", prefecture="9002", enrollees=3_000_000, contribution_per_capita=1097.65, reserves=2.4e9,
               admission_rate=0.2, outpatient_per_capita=165.0, severity={"dist": "lognormal", "mean": 7674.0,
                                                                           "cv": 1.0})],
        admin_fixed_per_fund=1e6, frequency_shock_cv=0.05, regional_shocks=shocks))


def test_large_members_price_as_the_engine_on_the_groups_lattice():
    """Each member's rate alone read from the group's lattice equals the
    engine's. On the severity lattice (before exact cell masses) the
    discretisation inflated the variance 2-4x and these came out 0.25-1 %
    low; that lattice is now refused by its variance check."""
    instance = _large_members()
    spec = _spec(rates={"max": 1.0})
    engine, fund = PoolPricer(instance, spec), AdjustmentFundPricer(instance, spec)
    anchors = fund.anchors(("1", "2"))
    assert all(fund.laws(("1", "2")).banded)
    for cid, anchor in zip(("1", "2"), anchors):
        assert anchor == pytest.approx(engine.price({cid}).max_rate, rel=5e-4)


def test_the_severity_lattice_for_large_members_is_refused(monkeypatch):
    monkeypatch.setattr(excess, "_band_phi", lambda *args: None)
    fund = AdjustmentFundPricer(_large_members(), _spec())
    with pytest.raises(NumericsError, match="the lattice adds"):
        fund.laws(("1", "2"))


# -- a fixed design -------------------------------------------------------------------------------

def _two_provinces():
    rows = [("a", "p1", "910000", 500), ("b", "p2", "910000", 700), ("c", "p3", "920000", 400),
            ("d", "p4", "920000", 600)]
    return instance_from_dict(instance_dict(
        [county(cid, prefecture=pref, province=prov, enrollees=n, contribution_per_capita=200.0, reserves=0.0,
                admission_rate=0.05) for cid, pref, prov, n in rows],
        admin_fixed_per_fund=0.0, **SHOCKS))


def test_a_fixed_design_prices_each_group_at_its_best_option():
    instance, spec = _two_provinces(), _spec(contribution=(0.05, 0.1), rates={"min": 0.0})
    groups = [["c", "d"], ["a", "b"]]
    pricer = AdjustmentFundPricer(instance, spec)
    plan = evaluate_adjustment_fund(instance, spec, groups, pricer)
    choices = [choose_contribution(pricer, g) for g in (("a", "b"), ("c", "d"))]
    assert plan.status == "feasible" and plan.candidates == 2
    assert [g.counties for g in plan.groups] == [("a", "b"), ("c", "d")]
    for group, choice in zip(plan.groups, choices):
        assert group.contribution_share == choice.contribution
        assert [m.rate for m in group.members] == list(choice.rates)
        assert abs(math.fsum(m.expected_transfer for m in group.members)) <= 1e-9 * group.means
    people = sum(c.enrollees for c in instance.counties)
    assert plan.objective == pytest.approx(sum(c.value for c in choices) / people, rel=ROUNDING)
    strict = _spec(contribution=(0.05,), rates={"min": 0.9})
    below = evaluate_adjustment_fund(instance, strict, groups)
    assert below.status == "infeasible" and below.to_dict()["below_min_rate"]


@pytest.mark.parametrize(("groups", "message"), [([["a", "b"], ["c"]], "in no group"),
                                                  ([["a", "b"], ["b", "c", "d"]], "in two groups"),
                                                  ([["a", "b", "x"], ["c", "d"]], "x is not in")])
def test_a_fixed_design_must_be_a_partition(groups, message):
    with pytest.raises(InputError, match=message):
        evaluate_adjustment_fund(_two_provinces(), _spec(), groups)


def test_evaluate_on_the_command_line_prices_the_groups(tmp_path, capsys):
    instance_path = tmp_path / "instance.json"
    instance_path.write_text(json.dumps(instance_dict(
        [county(cid, prefecture=pref, province="910000", enrollees=n, contribution_per_capita=330.0)
         for cid, pref, n in [("1", "p1", 9000), ("2", "p2", 20000)]], admin_fixed_per_fund=200000.0)))
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text('[pooling]\nscope = "optimise"\nmode = "adjustment_fund"\n[adjustment_fund]\n'
                         'contribution = [0.05]\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                         'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps({"pools": [["1", "2"]]}))
    out = tmp_path / "out"
    argv = ["evaluate", str(instance_path), "--spec", str(spec_path), "--plan", str(plan_path)]
    assert main([*argv, "--out", str(out)]) == 0
    data = json.loads((out / "evaluation.json").read_text())
    assert data["mode"] == "adjustment_fund" and data["status"] == "feasible"
    (group,) = data["groups"]
    assert group["contribution"] == 0.05 and group["counties"] == ["1", "2"]
    assert abs(math.fsum(m["expected_transfer"] for m in group["members"])) <= 1e-6 * group["fund_means"]
    said = capsys.readouterr().out   # what was chosen, on the terminal too
    assert "1 group\n" in said and "group 1 (2 members): contribution 0.05 of revenue, rate rule " in said
    bad = tmp_path / "bad"
    assert main([*argv, "--explain", "--out", str(bad)]) == 2
    assert "--explain is not taken" in capsys.readouterr().err
    assert not bad.exists() or not any(bad.iterdir())


# -- the case study (docs/case-studies.md, "Three modes for the 2020s") ----------------------------

def test_case_study_three_modes_gansu_is_current():
    """The section's introduction and Gansu's table and transfers line are what
    docs/case_studies.py computes now (about 20 s); Henan's, Zhejiang's and the
    nation's are checked by regenerating: python docs/case_studies.py --only threemodes."""
    import sys

    from pooling import load_instance
    from tests.factories import INSTANCES, REPO
    sys.path.insert(0, str(REPO / "docs"))
    import case_studies
    page = (REPO / "docs" / "case-studies.md").read_text("utf-8")
    _head, begin, rest = page.partition(case_studies.THREEMODES_BEGIN + "\n")
    section, end, _tail = rest.partition(case_studies.THREEMODES_END)
    assert begin and end, "docs/case-studies.md has no three-mode section: run python docs/case_studies.py"
    written = section.splitlines()
    intro = case_studies.threemode_intro()
    assert written[:len(intro)] == intro
    instance = load_instance(INSTANCES / "china2023.json")
    ids = sorted(c.id for c in instance.counties if c.province == "620000")
    figures = case_studies.threemode_region(instance, [ids])
    lines = case_studies.threemode_lines(f"Gansu ({len(ids)} prefecture funds)", instance, figures)
    start = written.index(lines[0])
    assert written[start:start + len(lines)] == lines, (
        "docs/case-studies.md's Gansu three-mode figures are stale: run python docs/case_studies.py --only threemodes")
    fund = figures["provincial adjustment fund"]
    assert fund["balance"] <= 1e-9 and len(fund["members"]) == len(ids)
    assert figures["unified provincial pool"]["spread"][3] == 0.0     # one pool, one rate
