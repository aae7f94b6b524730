"""Welfare metrics per group (issue 25 item 4): the spec's [welfare] table,
expected out-of-pocket cost against closed forms, catastrophic incidence
against a per-person Monte Carlo, records absent by default, and bad fields."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pooling.cli import main
from pooling.data.benefits import BenefitSchedule, with_benefits
from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import load_spec, spec_from_dict
from pooling.data.welfare import RURAL_INCOME_2011, WelfareTerms
from pooling.economics.welfare import (
    CATASTROPHIC_TOLERANCE,
    RECORD_FIELDS,
    plan_welfare,
    welfare_records,
)
from pooling.errors import InputError
from pooling.optimise.result import Evaluation, Result
from pooling.optimise.solve import evaluate, solve
from pooling.outputs.frames import welfare_frame
from tests.factories import INSTANCES, MODELS, county, instance_dict, spec_dict, tiny_instance_dict

EXIT_INPUT = 2
CLOSED_FORM_RTOL = 1e-12
"""Expected OOP is a sum of a few products of closed-form means: only rounding separates them."""
MC_Z = 4.5
"""Half-width, in standard errors, of the Monte Carlo intervals."""
MC_PEOPLE = 1_000_000
"""Simulated enrollees per group: incidences ~1-8 % get a standard error below 3e-4."""

RATE = 0.6
Q, PHI = 0.6, 0.6                      # tiny instance's out-of-network claim share and factor
OUTSIDE_MEAN, HOME_MEAN = 8000.0, 4000.0


def one_county(**overrides):
    """One county whose residents use their own hospitals (in network) and whose
    migrants all live outside the instance (out of network, other province)."""
    record = county("900101", enrollees=50_000, migrant_share=0.3, migrant_destinations={"outside": 1.0})
    record.update(overrides)
    return instance_from_dict(instance_dict([record]))


def records(instance, terms=None, rate=RATE):
    terms = WelfareTerms() if terms is None else terms
    pool = SimpleNamespace(id="P01", rate=rate, pricing=SimpleNamespace(counties=("900101",), contracts=()))
    return {w["group"]: w for w in welfare_records(instance, terms, [pool])}


def test_expected_out_of_pocket_matches_closed_forms():
    travel = 150.0
    found = records(one_county(), WelfareTerms(travel_cost=travel))
    assert list(found) == ["residents", "migrants_other_province"]
    res, mig = found["residents"], found["migrants_other_province"]
    assert res["people"] == pytest.approx(35_000) and mig["people"] == pytest.approx(15_000)
    # In network: the enrollee pays (1 - r) of every admission.
    assert res["out_of_pocket_per_admission"] == pytest.approx((1 - RATE) * HOME_MEAN, rel=CLOSED_FORM_RTOL)
    assert res["out_of_pocket_per_enrollee"] == pytest.approx(0.08 * (1 - RATE) * HOME_MEAN, rel=CLOSED_FORM_RTOL)
    assert res["share_of_bill_paid"] == pytest.approx(1 - RATE, rel=CLOSED_FORM_RTOL)
    assert res["travel_cost_per_enrollee"] == 0.0
    # Out of network: a share q is claimed at phi x the cost, paid at r.
    per_admission = OUTSIDE_MEAN * (1 - RATE * Q * PHI)
    assert mig["out_of_pocket_per_admission"] == pytest.approx(per_admission, rel=CLOSED_FORM_RTOL)
    assert mig["out_of_pocket_per_enrollee"] == pytest.approx(0.08 * per_admission, rel=CLOSED_FORM_RTOL)
    assert mig["share_of_bill_paid"] == pytest.approx(1 - RATE * Q * PHI, rel=CLOSED_FORM_RTOL)
    assert mig["travel_cost_per_enrollee"] == pytest.approx(0.08 * travel, rel=CLOSED_FORM_RTOL)
    for w in (res, mig):
        assert list(w) == list(RECORD_FIELDS)
        assert w["catastrophic_bracket"] <= CATASTROPHIC_TOLERANCE


def test_out_of_pocket_under_a_deductible_matches_its_closed_form():
    """With deductible d in network (lognormal costs), E[OOP] = E[X] - r E[(X - d)+]."""
    from scipy import stats
    d = 1000.0
    instance = with_benefits(one_county(migrant_share=0.0, migrant_destinations={}),
                             BenefitSchedule(deductibles=(d, d, d)))
    res = records(instance)["residents"]
    sigma = math.sqrt(math.log(2.0))
    law = stats.lognorm(s=sigma, scale=HOME_MEAN / math.exp(sigma ** 2 / 2))
    excess = law.expect(lambda x: x - d, lb=d)
    assert res["out_of_pocket_per_admission"] == pytest.approx(HOME_MEAN - RATE * excess, rel=1e-7)


def simulate(instance, rate, threshold, rng, deductible=0.0, cap=None):
    """Per-person Monte Carlo of the yearly OOP of residents (in network) and
    migrants (outside, claimed with probability q): the share above `threshold`."""
    out = {}
    for group, mean, inside in (("residents", HOME_MEAN, True), ("migrants_other_province", OUTSIDE_MEAN, False)):
        counts = rng.poisson(0.08, MC_PEOPLE)
        n = int(counts.sum())
        sigma = math.sqrt(math.log(2.0))
        cost = rng.lognormal(math.log(mean) - sigma ** 2 / 2, sigma, n)
        eligible = cost if inside else PHI * cost
        paid = np.minimum(np.maximum(eligible - deductible, 0.0), np.inf if cap is None else cap)
        if not inside:
            paid = np.where(rng.random(n) < Q, paid, 0.0)
        oop = cost - rate * paid
        yearly = np.zeros(MC_PEOPLE)
        np.add.at(yearly, np.repeat(np.arange(MC_PEOPLE), counts), oop)
        out[group] = float(np.mean(yearly > threshold))
    return out


@pytest.mark.parametrize("deductible, cap", [(0.0, None), (800.0, 6000.0)])
def test_catastrophic_incidence_agrees_with_a_per_person_monte_carlo(deductible, cap):
    instance = one_county()
    if deductible or cap:
        instance = with_benefits(instance, BenefitSchedule(deductibles=(deductible,) * 3, cap=cap))
    terms = WelfareTerms(income_per_capita=RURAL_INCOME_2011, catastrophic_share=0.4)
    found = records(instance, terms)
    sampled = simulate(instance, RATE, terms.threshold, np.random.default_rng(7), deductible, cap)
    for group, p in sampled.items():
        exact = found[group]["catastrophic_incidence"]
        se = math.sqrt(p * (1 - p) / MC_PEOPLE)
        assert 0.001 < exact < 0.2
        assert abs(exact - p) <= MC_Z * se + CATASTROPHIC_TOLERANCE, (group, exact, p, se)


def test_catastrophic_incidence_falls_as_income_rises_and_the_rate_rises():
    instance = one_county()
    by_income = [records(instance, WelfareTerms(income_per_capita=x))["residents"]["catastrophic_incidence"]
                 for x in (2000.0, 5000.0, 10000.0, 40000.0)]
    assert all(a >= b - CATASTROPHIC_TOLERANCE for a, b in itertools.pairwise(by_income))
    assert by_income[0] > by_income[-1]
    by_rate = [records(instance, rate=r)["migrants_other_province"]["catastrophic_incidence"]
               for r in (0.3, 0.6, 0.9)]
    assert by_rate[0] > by_rate[1] > by_rate[2]


@settings(max_examples=25, deadline=None)
@given(low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0), deductible=st.floats(0.0, 3000.0),
       cap=st.one_of(st.none(), st.floats(100.0, 50_000.0)))
@example(low=0.5, high=1.0, deductible=0.0, cap=None)
@example(low=0.5, high=1.0, deductible=800.0, cap=6000.0)
def test_a_higher_rate_never_raises_what_any_group_pays(low, high, deductible, cap):
    """OOP is non-increasing in r claim by claim (b X - r l min(...)), so its
    expectation and the incidence are too, at every rate up to 1 (where the
    in-network OOP map is flat: the inverse's flat branch)."""
    low, high = sorted((low, high))
    instance = with_benefits(one_county(), BenefitSchedule(deductibles=(deductible,) * 3, cap=cap))
    before, after = records(instance, rate=low), records(instance, rate=high)
    for group in before:
        a, b = before[group], after[group]
        assert b["out_of_pocket_per_enrollee"] <= a["out_of_pocket_per_enrollee"] * (1 + CLOSED_FORM_RTOL)
        assert b["catastrophic_incidence"] <= a["catastrophic_incidence"] + CATASTROPHIC_TOLERANCE
        assert 0.0 <= b["catastrophic_incidence"] <= 1.0 and 0.0 <= b["share_of_bill_paid"] <= 1.0
    if deductible == 0.0 and cap is None and high == 1.0:
        assert after["residents"]["catastrophic_incidence"] == pytest.approx(0.0, abs=CATASTROPHIC_TOLERANCE)


def test_plan_welfare_sums_and_weights_the_counties():
    rows = [{"group": "residents", "people": 100.0, "admissions": 10.0, "billed_cost": 1000.0,
             "out_of_pocket": 400.0, "catastrophic_incidence": 0.01, "travel_cost_per_enrollee": 0.0},
            {"group": "residents", "people": 300.0, "admissions": 20.0, "billed_cost": 3000.0,
             "out_of_pocket": 600.0, "catastrophic_incidence": 0.05, "travel_cost_per_enrollee": 4.0}]
    (total,) = plan_welfare(rows)
    assert total["out_of_pocket_per_enrollee"] == 1000.0 / 400.0
    assert total["out_of_pocket_per_admission"] == 1000.0 / 30.0
    assert total["share_of_bill_paid"] == 1000.0 / 4000.0
    assert total["catastrophic_incidence"] == pytest.approx(0.04)
    assert total["travel_cost_per_enrollee"] == pytest.approx(3.0)


def test_records_are_absent_without_the_table_and_leave_everything_else_unchanged():
    instance = instance_from_dict(tiny_instance_dict())
    plain = solve(instance, spec_from_dict(spec_dict()))
    with_table = solve(instance, spec_from_dict(spec_dict(welfare={"travel_cost": 100.0})))
    assert "welfare" not in plain.to_dict() and "welfare" not in plain.to_dict()["spec"]
    data = with_table.to_dict()
    assert data["spec"]["welfare"] == {"income_per_capita": RURAL_INCOME_2011, "catastrophic_share": 0.4,
                                       "travel_cost": 100.0}
    assert [p.to_dict() for p in plain.pools] == [p.to_dict() for p in with_table.pools]
    assert {w["county"] for w in data["welfare"]} == set(instance.ids)
    assert Result.from_dict(json.loads(json.dumps(data))).to_dict() == data
    plan = [list(p.pricing.counties) for p in with_table.pools]
    ev = evaluate(instance, spec_from_dict(spec_dict(welfare={"travel_cost": 100.0})), plan)
    assert ev.welfare == data["welfare"]
    explained = evaluate(instance, spec_from_dict(spec_dict(welfare={"travel_cost": 100.0})), plan, explain=True)
    assert explained.welfare == data["welfare"] and explained.explain is not None
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))).to_dict() == ev.to_dict()
    assert "welfare" not in evaluate(instance, spec_from_dict(spec_dict()), plan).to_dict()
    frame = welfare_frame(data)
    assert list(frame.columns) == list(RECORD_FIELDS) and len(frame) == len(data["welfare"])
    assert welfare_frame(plain) is None


def test_the_cli_writes_records_a_frame_and_a_report_table(tmp_path, capsys):
    spec = tmp_path / "w.toml"
    spec.write_text((MODELS / "prefecture.toml").read_text() + "\n[welfare]\ntravel_cost = 200\n")
    out = tmp_path / "out"
    assert main(["solve", str(INSTANCES / "tongliao.json"), "--spec", str(spec), "--out", str(out),
                 "--format", "csv"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["welfare"] and (out / "welfare.csv").exists()
    said = capsys.readouterr().out
    assert "residents pay" in said and "catastrophic incidence" in said and "(assumed)" in said
    assert main(["report", str(out / "result.json"), "--out", str(tmp_path / "rep")]) == 0
    assert "## What enrollees pay" in (tmp_path / "rep" / "report.md").read_text()


@pytest.mark.parametrize("table, field", [
    ("income_per_capita = -1", "welfare.income_per_capita"),
    ("income_per_capita = \"6977\"", "welfare.income_per_capita"),
    ("catastrophic_share = 0", "welfare.catastrophic_share"),
    ("catastrophic_share = 1.5", "welfare.catastrophic_share"),
    ("travel_cost = -5", "welfare.travel_cost"),
    ("threshold = 2000", "welfare.threshold"),
])
def test_bad_welfare_fields_exit_2_naming_the_field(tmp_path, capsys, table, field):
    spec = tmp_path / "bad.toml"
    spec.write_text((MODELS / "default.toml").read_text() + "\n[welfare]\n" + table + "\n")
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        load_spec(spec)
    assert main(["check", str(INSTANCES / "tongliao.json"), "--spec", str(spec)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert str(spec) in err and field in err and "Traceback" not in err


def test_an_empty_table_is_the_defaults():
    spec = spec_from_dict(spec_dict(welfare={}))
    assert spec.welfare == WelfareTerms()
    assert spec_from_dict(spec.to_dict()).welfare == spec.welfare


def test_records_agree_with_the_pools_care_under_contracts_and_behaviour():
    """On Xinyang's prefecture pool with the Gushi contract and induced
    utilisation (e = -0.41), each county's groups' OOP sums to its
    county_care's T - r E (the contract's price, capacity and the multipliers
    at the pool's rate all included); and as the contract's price factor falls
    (1.0, 0.6) Gushi's other-province migrants pay less and face catastrophic
    costs less often."""
    base = load_instance(INSTANCES / "xinyang.json")
    spec = dataclasses.replace(load_spec(MODELS / "default.toml"), welfare=WelfareTerms())
    whole = [list(base.ids)]
    found = []
    for factor in (1.0, 0.6):
        options = tuple(dataclasses.replace(o, price_factor=factor) for o in base.contract_options)
        inst = dataclasses.replace(base, contract_options=options, parameters=dataclasses.replace(
            base.parameters, utilisation_elasticity=-0.41))
        for memo in ("_care", "_care_totals", "_severities", "_contract_fill"):
            inst.__dict__.pop(memo, None)
        out = evaluate(inst, spec, whole, contracts=[{"pool": whole[0], "option": "gushi-beijing"}])
        (pool,) = out.pools
        assert pool.rate == pool.pricing.max_rate and pool.admission_multiplier != 1.0
        for care in pool.pricing.care:
            oop = math.fsum(w["out_of_pocket"] for w in out.welfare if w["county"] == care.county)
            assert oop == pytest.approx(care.out_of_pocket(pool.rate), rel=CLOSED_FORM_RTOL)
        found.append(next(w for w in out.welfare
                          if w["county"] == "411525" and w["group"] == "migrants_other_province"))
    assert found[1]["out_of_pocket_per_enrollee"] < found[0]["out_of_pocket_per_enrollee"]
    assert found[1]["catastrophic_incidence"] < found[0]["catastrophic_incidence"]
