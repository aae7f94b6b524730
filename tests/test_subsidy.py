"""Price of equalisation: top-ups restore solvency exactly at the rate no county refuses."""

from __future__ import annotations

import pytest

from pooling import InputError, evaluate, instance_from_dict, spec_from_dict
from pooling.economics.pools import PoolPricer
from tests.factories import spec_dict, tiny_instance_dict
from tests.tolerances import ROUNDING


def test_top_up_makes_the_required_rate_exactly_solvent():
    data = tiny_instance_dict()
    for c in data["counties"]:
        c["contribution_per_capita"] = 260.0
    data["counties"][1]["contribution_per_capita"] = 380.0     # one much richer county
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict("prefecture", rates={"min": 0.0, "max": 1.0}))
    ev = evaluate(inst, spec, [list(inst.ids)], subsidy=True).to_dict()
    pool = ev["subsidy"]["pools"][0]
    pricer = PoolPricer(inst, spec)
    priced = pricer.price(inst.ids)
    rich = pricer.price(["900102"])
    assert rich.max_rate > priced.max_rate, "test instance must have a county that loses by pooling"
    assert pool["rate_required"] == pytest.approx(max(pricer.price([c]).max_rate for c in inst.ids))
    # With the top-up, CVaR of claims at the required rate equals the budget: solvent, no slack.
    assert pool["rate_required"] * priced.cvar == pytest.approx(priced.budget + pool["top_up"], rel=ROUNDING)
    comp = {c["id"]: c["compensation"] for c in pool["county_compensation"]}
    expected_rich = dict(priced.county_expected_cost)["900102"] * (rich.max_rate - priced.max_rate)
    assert comp["900102"] == pytest.approx(expected_rich, rel=ROUNDING)
    assert all(v >= 0 for v in comp.values())


def test_no_top_up_when_pooling_pays_everyone_more():
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict("county", rates={"min": 0.0, "max": 1.0}))
    ev = evaluate(inst, spec, [[c] for c in inst.ids], subsidy=True).to_dict()
    assert ev["subsidy"]["total_top_up"] == 0.0
    assert ev["subsidy"]["total_compensation"] == 0.0


def test_subsidy_refuses_ruin_measure():
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict("county", solvency={"measure": "ruin", "horizon_years": 2},
                                    simulation={"scenarios": 200}), source="r.toml")
    with pytest.raises(InputError, match="--subsidy needs measure"):
        evaluate(inst, spec, [[c] for c in inst.ids], subsidy=True)
