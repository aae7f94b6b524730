"""Contracts priced right (issue 25 item 2): contracted care costs price_factor
x list price in the fund's claims and in enrollees' bills, and a contract
serves at most its capacity; older instance files with contract options are
refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooling.cli import main
from pooling.data.formats import FORMAT_FIELD
from pooling.data.geography import DEFAULT_CONTRACT_CAPACITY, MAX_CONTRACT_CAPACITY
from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import load_spec, spec_from_dict
from pooling.economics.care import MIGRANT, contract_served, county_care
from pooling.economics.pools import PoolPricer
from pooling.errors import InputError
from pooling.optimise.solve import evaluate
from tests.factories import spec_dict
from tests.test_benefits import with_elasticity
from tests.test_care_geography import geography_dict
from tests.test_contracts import OPTION, _small, with_options
from tests.tolerances import ROUNDING

ROOT = Path(__file__).resolve().parent.parent
PRICING_ACCURACY = 2e-4
"""Relative accuracy of a priced VaR/CVaR, and so of a maximum solvent rate
(docs/model.md: errors below 2e-4 at levels 0.9-0.999). Comparisons of two
exactly priced columns allow it on each side: the laws are monotone in the
price factor, their lattices are not bit-for-bit."""


def load(data):
    return instance_from_dict(data, source="contracts.json")


def with_option(**change):
    return load(with_options(geography_dict(), dict(OPTION, **change)))


def contracted_demand(inst, members, destination) -> float:
    """The pool's migrants' admissions a year at the destination."""
    return sum(f.admissions for cid in members for f in county_care(inst, inst.county(cid))
               if f.who == MIGRANT and f.place == destination)


def priced(inst, members, contracts=(), spec=None):
    return PoolPricer(inst, spec or spec_from_dict(spec_dict())).price(members, contracts)


# ------------------------------------------------------------------ the done-when on Xinyang
def _with_contract_price(instance, factor: float):
    """The instance with every contract option at price factor `factor`."""
    options = tuple(dataclasses.replace(o, price_factor=factor) for o in instance.contract_options)
    inst = dataclasses.replace(instance, contract_options=options)
    for memo in ("_care", "_care_totals", "_severities", "_contract_fill"):
        inst.__dict__.pop(memo, None)
    return inst


def test_gushi_contract_on_xinyang_prefecture_pool_helps_as_its_price_falls():
    """Issue 25: on Xinyang's prefecture pool with the Gushi contract, the
    objective never falls as the price factor falls (1.0, 0.8, 0.6), and the
    contracted migrants' out-of-pocket cost falls. Before contracted care was
    billed at its price, a discount lowered the objective's effective shares.
    With the bundled induced utilisation the contract beats the pool without
    it even at list price; with no response (e = 0) it does not."""
    base = load_instance(ROOT / "instances" / "xinyang.json")
    assert base.parameters.utilisation_elasticity != 0.0
    spec = load_spec(ROOT / "models" / "default.toml")
    whole = [list(base.ids)]
    gushi = [{"pool": whole[0], "option": "gushi-beijing"}]
    objectives, out_of_pocket, rates = [], [], []
    for factor in (1.0, 0.8, 0.6):
        out = evaluate(_with_contract_price(base, factor), spec, whole, contracts=gushi)
        record = out.contracts[0]
        assert record["admissions_served"] == pytest.approx(record["capacity"], rel=ROUNDING)
        objectives.append(out.objective)
        out_of_pocket.append(record["out_of_pocket_with"])
        rates.append(out.pools[0].rate)
    assert objectives[0] <= objectives[1] <= objectives[2], objectives
    assert out_of_pocket[0] > out_of_pocket[1] > out_of_pocket[2], out_of_pocket
    assert rates[0] <= rates[1] <= rates[2]
    # With the response (e -0.407) the contract beats the pool without it at
    # every factor (0.4415, 0.4419, 0.4422 against 0.4406): Beijing care
    # reimbursed in full lowers the pool's rate (0.6131 to 0.6100), but less
    # than with no response (0.6157 to 0.6106), where at list price the
    # contract loses (0.4420 against 0.4425) and wins from 0.8.
    assert evaluate(base, spec, whole).objective < objectives[0]
    static = with_elasticity(base, 0.0)
    listed = evaluate(_with_contract_price(static, 1.0), spec, whole, contracts=gushi)
    assert listed.objective < evaluate(static, spec, whole).objective


# ------------------------------------------------------------------ prices
@pytest.mark.parametrize("factor", [1.0, 0.8, 0.5])
def test_contracted_care_is_billed_at_its_price(factor):
    """With every contracted admission served, the care's cost in the column is
    factor x its list cost, the migrants' effective rate on it is the pool's
    rate whatever the factor (a discount is not a lower rate), and their
    out-of-pocket cost is (1 - r) x factor x list cost."""
    inst = with_option(price_factor=factor, capacity=MAX_CONTRACT_CAPACITY)
    members = frozenset({"A", "B"})
    pricing = priced(inst, members, ("A-far",))
    rate = 0.6
    listed = sum(f.cost() for cid in members for f in county_care(inst, inst.county(cid))
                 if f.who == MIGRANT and f.place == "city:8001")
    alone = priced(inst, members)
    for care, before in zip(pricing.care, alone.care):
        assert care.cost_at_list_prices == pytest.approx(before.total, rel=ROUNDING)
    assert sum(c.total for c in pricing.care) == pytest.approx(
        sum(c.cost_at_list_prices for c in pricing.care) - (1.0 - factor) * listed, rel=ROUNDING)
    record = contract_served(inst, members, inst.contract("A-far"), rate)
    assert record["effective_rate_with"] == pytest.approx(rate, rel=ROUNDING)
    assert record["out_of_pocket_with"] == pytest.approx((1.0 - rate) * factor * listed, rel=ROUNDING)
    assert record["out_of_pocket_with"] < record["out_of_pocket_without"]


def test_coverage_keeps_a_list_price_denominator():
    """Coverage's D is plan-free (the objective stays linear): the same with and
    without the contract, and written to result.json only where it differs."""
    inst = with_option(price_factor=0.5)
    pricing = priced(inst, ["A", "B"], ("A-far",))
    a = next(c for c in pricing.care if c.county == "A")
    assert a.list_total is not None and a.total < a.list_total
    c = priced(inst, ["C"]).care[0]
    assert c.list_total is None and c.cost_at_list_prices == c.total


# ------------------------------------------------------------------ capacity
def test_a_capacity_of_zero_is_no_contract_but_its_cost():
    inst = with_option(capacity=0.0)
    for members in (["A"], ["A", "B"]):
        without, with_it = priced(inst, members), priced(inst, members, ("A-far",))
        assert with_it.care == without.care
        assert (with_it.expected_cost, with_it.var, with_it.cvar) == (without.expected_cost, without.var,
                                                                       without.cvar)
        assert with_it.budget == pytest.approx(without.budget - OPTION["annual_cost"], rel=ROUNDING)


def test_a_capacity_above_the_flows_is_unlimited():
    members = ["A", "B"]
    demand = contracted_demand(with_option(), members, "city:8001")
    above = priced(with_option(capacity=2.0 * demand), members, ("A-far",))
    unlimited = priced(with_option(capacity=MAX_CONTRACT_CAPACITY), members, ("A-far",))
    assert above.care == unlimited.care
    assert (above.var, above.cvar, above.max_rate) == (unlimited.var, unlimited.cvar, unlimited.max_rate)
    without = priced(with_option(), members)
    brought = sum(c.migrant_in_network_admissions for c in above.care) - sum(
        c.migrant_in_network_admissions for c in without.care)
    assert brought == pytest.approx(demand, rel=ROUNDING)


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_between_the_ends_the_contract_serves_its_capacity(share):
    members = ["A", "B"]
    demand = contracted_demand(with_option(), members, "city:8001")
    inst = with_option(capacity=share * demand, price_factor=0.7)
    without, with_it = priced(inst, members), priced(inst, members, ("A-far",))
    brought = sum(c.migrant_in_network_admissions for c in with_it.care) - sum(
        c.migrant_in_network_admissions for c in without.care)
    assert brought == pytest.approx(share * demand, rel=ROUNDING)
    record = contract_served(inst, frozenset(members), inst.contract("A-far"), 0.5)
    assert record["admissions_served"] == pytest.approx(share * demand, rel=ROUNDING)
    assert record["admissions"] == pytest.approx(demand, rel=ROUNDING)
    full = priced(with_option(capacity=MAX_CONTRACT_CAPACITY, price_factor=0.7), members, ("A-far",))
    assert without.expected_cost < with_it.expected_cost < full.expected_cost


def test_two_contracts_at_one_place_fill_cheapest_first():
    members = ["A", "B"]
    demand = contracted_demand(with_option(), members, "city:8001")
    cheap = dict(OPTION, id="cheap", price_factor=0.5, capacity=0.25 * demand)
    dear = dict(OPTION, id="dear", price_factor=0.9, capacity=demand)
    inst = load(with_options(geography_dict(), cheap, dear))
    both = priced(inst, members, ("cheap", "dear"))
    assert sum(c.migrant_in_network_admissions for c in both.care) == pytest.approx(
        sum(c.migrant_in_network_admissions for c in priced(inst, members).care) + demand, rel=ROUNDING)
    listed = sum(f.cost() for cid in members for f in county_care(inst, inst.county(cid))
                 if f.who == MIGRANT and f.place == "city:8001")
    billed = sum(c.cost_at_list_prices - c.total for c in both.care)
    assert billed == pytest.approx(listed * (0.25 * 0.5 + 0.75 * 0.1), rel=1e-9)


# ------------------------------------------------------------------ the property
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), low=st.floats(0.1, 1.0), high=st.floats(0.1, 1.0),
       capacity=st.sampled_from([0.0, 50.0, 500.0, MAX_CONTRACT_CAPACITY]), pool=st.integers(0, 2),
       cap=st.sampled_from([0.9, 0.4]))
def test_a_lower_price_factor_helps_whoever_it_touches(seed, low, high, capacity, pool, cap):
    """In one column (a pool and its contract) a lower price factor never
    lowers the pool's rate, never raises any county's expected out-of-pocket
    cost at its column's rate, and never lowers the effective rate of a county
    with no contracted care. (A county whose care the contract serves can see
    its effective rate fall while its bill falls: its cheaper contracted care
    weighs less against its out-of-network care; docs/model.md.)"""
    low, high = sorted((low, high))
    spec = spec_from_dict(spec_dict(rates={"min": 0.0, "max": cap}, pooling={"within": "none"}))
    members = [["c0", "c1"], ["c0", "c1", "c2", "c3"], ["c0"]][pool]
    columns = {}
    for factor in (low, high):
        data = _small(seed, 10_000.0, factor)
        data["contract_options"][0]["capacity"] = capacity
        inst = load(data)
        ids = sorted(inst.ids)
        pool_ids = [ids[int(m[1:])] for m in members]
        columns[factor] = (inst, PoolPricer(inst, spec).price(pool_ids, ("deal",)))
    (inst, cheap), (_, dear) = columns[low], columns[high]
    assert cheap.max_rate >= dear.max_rate * (1.0 - 2.0 * PRICING_ACCURACY)
    slack = 2.0 * PRICING_ACCURACY * max(abs(cheap.max_rate), abs(dear.max_rate))
    touched = {c.county for c in cheap.care if c.list_total is not None}
    for a, b in zip(cheap.care, dear.care):
        bill = b.out_of_pocket(dear.max_rate) + slack * b.eligible + ROUNDING * b.total
        assert a.out_of_pocket(cheap.max_rate) <= bill
        if a.county not in touched:
            assert cheap.max_rate * a.effective_share >= dear.max_rate * b.effective_share - slack


# ------------------------------------------------------------------ the file format
def test_an_older_file_with_options_is_refused_saying_how_to_update():
    data = with_options(geography_dict(), OPTION)
    for version in (1, 2):
        data[FORMAT_FIELD] = f"pooling.instance/{version}"
        with pytest.raises(InputError) as err:
            load(data)
        message = str(err.value)
        assert message.startswith(f"contracts.json: contract_options in pooling.instance/{version} meant")
        assert "price_factor x list price" in message and "capacity" in message
        assert '"format": "pooling.instance/3"' in message
    del data[FORMAT_FIELD]
    with pytest.raises(InputError, match=r"contract_options in pooling\.instance/1"):
        load(data)


def test_an_older_file_without_options_reads_as_before():
    data = geography_dict()
    data[FORMAT_FIELD] = "pooling.instance/2"
    old = load(data)
    data[FORMAT_FIELD] = "pooling.instance/3"
    assert dataclasses.replace(load(data), sha256=old.sha256) == old


def test_capacity_has_a_documented_default_and_a_range():
    option = dict(OPTION)
    option.pop("capacity", None)
    assert load(with_options(geography_dict(), option)).contract("A-far").capacity == DEFAULT_CONTRACT_CAPACITY
    for bad in (-1.0, 2 * MAX_CONTRACT_CAPACITY, "many"):
        with pytest.raises(InputError, match=r'contract option "A-far": capacity must be'):
            with_option(capacity=bad)


def test_cli_refuses_an_older_file_with_options_with_exit_2(tmp_path, capsys):
    path = tmp_path / "old.json"
    data = with_options(geography_dict(), OPTION)
    data[FORMAT_FIELD] = "pooling.instance/2"
    path.write_text(json.dumps(data))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "contract_options in pooling.instance/2" in err and "Traceback" not in err


def test_a_capped_rate_shows_the_discount_in_the_bill_not_the_effective_rate():
    """docs/model.md: at a capped rate a discount cannot raise the rate, and the
    served county's cheaper contracted care (reimbursed at r) weighs less against
    its out-of-network care (at r q phi): its effective rate falls, its bill falls."""
    spec = spec_from_dict(spec_dict(rates={"min": 0.0, "max": 0.3}))
    members = ["A", "B"]
    dear, cheap = (priced(with_option(price_factor=f, capacity=MAX_CONTRACT_CAPACITY), members, ("A-far",), spec)
                   for f in (1.0, 0.5))
    assert dear.max_rate == cheap.max_rate == 0.3
    a_dear, a_cheap = (next(c for c in p.care if c.county == "A") for p in (dear, cheap))
    assert 0.3 * a_cheap.effective_share < 0.3 * a_dear.effective_share
    assert a_cheap.out_of_pocket(0.3) < a_dear.out_of_pocket(0.3)
