"""evaluate checks what solve checks: one implementation of the rules.

evaluate gives a plan's pools the rates the spec's MILP gives that fixed
partition, so evaluate(solve's plan) reproduces solve; every partition of a
small instance is judged feasible by evaluate exactly when the brute-force
oracle (its own copy of the rules) admits it, with the same objective.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from pooling import evaluate, instance_from_dict, load_instance, load_spec, solve, spec_from_dict
from pooling.economics.pools import PoolPricer
from pooling.optimise import bruteforce
from pooling.optimise.result import Violation
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict, tiny_instance_dict

POORER = (200.0, 330.0)
"""Contributions per head where rates land around 0.5-0.95 on these seeds, so
the rules bind instead of every pool sitting at rates.max."""

SAME = 1e-7
"""evaluate and solve run the same MILP on the same columns; HiGHS's
feasibility tolerance leaves ~1e-9 of noise."""

RULE_CASES = [
    ("gap_prefecture", {"equalisation": {"max_rate_gap": 0.01, "gap_scope": "prefecture"},
                        "pooling": {"within": "none"}}),
    ("gap_instance", {"equalisation": {"max_rate_gap": 0.005, "gap_scope": "instance"}}),
    ("worse_off", {"equalisation": {"no_county_worse_off": True, "tolerance": 0.005}}),
    ("cross_subsidy", {"equalisation": {"max_cross_subsidy": 0.15}}),
    ("surplus", {"equalisation": {"max_expected_surplus": 0.15}}),
    ("menu", {"rates": {"step": 0.05}}),
    ("max_min_gap", {"equalisation": {"max_rate_gap": 0.03}, "objective": {"kind": "max_min_rate"}}),
    ("dispersion", {"objective": {"kind": "min_rate_dispersion"}}),
    ("everything", {"equalisation": {"max_rate_gap": 0.06, "max_expected_surplus": 0.2},
                    "rates": {"step": 0.01},
                    "objective": {"kind": "max_min_rate"}}),
]
SEEDS = [41, 42, 43]


def _spec(sections):
    base = {"rates": {"min": 0.3, "max": 0.95}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return spec_from_dict(spec_dict(**base))


def _instance(seed, n=5):
    return instance_from_dict(random_instance_dict(seed, n_counties=n, n_prefectures=2,
                                                   contribution_range=POORER))


def test_status_quo_on_tongliao_breaks_the_equalised_gap():
    """T City's rule read strictly (tolerance 0): with induced utilisation the
    rates alone span 0.5858-0.6104, so the 0.01 tolerance of models/equalised.toml
    lets the status quo keep the 2-point gap; strictly it cannot."""
    inst = load_instance(INSTANCES / "tongliao.json")
    spec = load_spec(MODELS / "equalised.toml")
    spec = dataclasses.replace(spec, equalisation=dataclasses.replace(spec.equalisation, tolerance=0.0))
    assert evaluate(inst, load_spec(MODELS / "equalised.toml"), [[c] for c in inst.ids]).feasible
    ev = evaluate(inst, spec, [[c] for c in inst.ids])
    assert not ev.feasible
    gaps = [v for v in ev.violations if v.rule == "max_rate_gap"]
    assert gaps, [v.message for v in ev.violations]
    gap = gaps[0]
    assert gap.limit == pytest.approx(0.02)
    assert len(gap.pools) == 2 and all(p.startswith("P") for p in gap.pools)
    low, high = gap.rates
    assert high - low > 0.02
    by_id = {p.id: p for p in ev.pools}
    assert [list(by_id[p].pricing.counties) for p in gap.pools] == [list(c) for c in gap.counties]
    assert by_id[gap.pools[0]].pricing.max_rate == pytest.approx(low)
    assert "max_rate_gap" in gap.message and gap.pools[0] in gap.message
    data = json.loads(json.dumps(ev.to_dict()))
    assert data["status"] == "infeasible"
    entry = data["violations"][0]
    for key in ("rule", "pools", "counties", "rates", "limit", "message"):
        assert key in entry
    assert data["violation_messages"] == [v.message for v in ev.violations]


def test_readme_status_quo_spans_with_and_without_the_response():
    """README's first evaluation: the status quo's rates alone with the file's
    response and with the elasticity 0, and that only the latter is infeasible."""
    inst = load_instance(INSTANCES / "tongliao.json")
    plain = dataclasses.replace(inst, parameters=dataclasses.replace(inst.parameters, utilisation_elasticity=0.0))
    spec = load_spec(MODELS / "equalised.toml")
    readme = (INSTANCES.parent / "README.md").read_text(encoding="utf-8")
    spans = []
    for instance in (inst, plain):
        ev = evaluate(instance, spec, [[c] for c in instance.ids])
        rates = [p.pricing.max_rate for p in ev.pools]
        spans.append(f"{min(rates):.4f} to {max(rates):.4f}")
        assert ev.feasible == (instance is inst)
    assert f"alone can pay {spans[0]}" in readme and f"they span {spans[1]}" in " ".join(readme.split())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,sections", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_evaluate_reproduces_solve(name, sections, seed):
    inst = _instance(seed)
    spec = _spec(sections)
    result = solve(inst, spec)
    assert result.status == "optimal", result.diagnosis  # the cases are chosen to be feasible
    ev = evaluate(inst, spec, [list(p.pricing.counties) for p in result.pools])
    assert ev.feasible, [v.message for v in ev.violations]
    assert ev.rates_from == "solve"
    assert [p.pricing.counties for p in ev.pools] == [p.pricing.counties for p in result.pools]
    assert [p.rate for p in ev.pools] == pytest.approx([p.rate for p in result.pools], abs=SAME)
    assert ev.objective == pytest.approx(result.objective, abs=SAME)
    assert ev.mean_rate == pytest.approx(result.mean_rate, abs=SAME)


def _oracle(inst, spec, partition, pricer):
    """(primary, mean) of a partition under the brute-force oracle's own rules, or None."""
    alone = {cid: pricer.price([cid]) for cid in inst.ids}
    spans = []
    for block in partition:
        if not bruteforce.block_allowed(inst, spec, block):
            return None
        span = bruteforce._interval(inst, spec, pricer.price(block), alone)
        if span[0] > span[1]:
            return None
        spans.append(span)
    return bruteforce._best_rates(inst, spec, partition, spans)


@pytest.mark.parametrize("seed", [51, 53])
@pytest.mark.parametrize("name,sections", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_every_partition_judged_as_the_oracle_judges_it(name, sections, seed):
    inst = _instance(seed, n=4)
    spec = _spec(sections)
    pricer = PoolPricer(inst, spec)
    agreed = 0
    for partition in bruteforce.set_partitions(sorted(inst.ids)):
        oracle = _oracle(inst, spec, partition, pricer)
        ev = evaluate(inst, spec, partition, pricer=pricer)
        assert ev.feasible == (oracle is not None), (partition, [v.message for v in ev.violations])
        if oracle is None:
            assert ev.violations and all(isinstance(v, Violation) and v.message for v in ev.violations)
            continue
        assert ev.objective == pytest.approx(oracle[0], abs=SAME), partition
        assert ev.mean_rate == pytest.approx(oracle[1], abs=1e-6), partition
        agreed += 1
    assert agreed > 0  # the cases are chosen so that some partitions pass


@pytest.mark.parametrize("seed", [42])
def test_feasible_rates_obey_every_rule(seed):
    """Whatever plan evaluate calls feasible, its reported rates keep the gap,
    stay in each pool's admissible interval and on the menu."""
    inst = _instance(seed)
    spec = _spec({"equalisation": {"max_rate_gap": 0.04, "max_expected_surplus": 0.2},
                   "rates": {"step": 0.02}})
    pricer = PoolPricer(inst, spec)
    alone = {cid: pricer.price([cid]) for cid in inst.ids}
    feasible = 0
    for partition in bruteforce.set_partitions(sorted(inst.ids)):
        ev = evaluate(inst, spec, partition, pricer=pricer)
        if not ev.feasible:
            continue
        feasible += 1
        rates = [p.rate for p in ev.pools]
        assert max(rates) - min(rates) <= 0.04 + 1e-9
        for p in ev.pools:
            low, high = bruteforce._interval(inst, spec, p.pricing, alone)
            assert low - 1e-9 <= p.rate <= high + 1e-9
            k = (p.rate - spec.rates.min) / 0.02
            assert abs(k - round(k)) < 1e-6
            assert spec.rates.min <= p.rate <= spec.rates.max
    assert feasible > 0


def test_per_pool_rule_violation_is_structured():
    inst = instance_from_dict(tiny_instance_dict())
    spec = spec_from_dict(spec_dict(equalisation={"max_expected_surplus": 0.0}))
    ev = evaluate(inst, spec, [[c] for c in inst.ids])
    surplus = [v for v in ev.violations if v.rule == "max_expected_surplus"]
    assert surplus and not ev.feasible
    for v in surplus:
        assert len(v.pools) == 1 and len(v.counties) == 1
        assert v.rates[0] < v.limit
        assert v.counties[0][0] in v.message and v.pools[0] in v.message


def test_pool_below_rates_min_is_a_violation():
    data = tiny_instance_dict()
    data["counties"][2]["contribution_per_capita"] = 120.0
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict())
    ev = evaluate(inst, spec, [[c] for c in inst.ids])
    low = [v for v in ev.violations if v.rule == "rates.min"]
    assert [v.counties for v in low] == [(("900103",),)]
    assert low[0].limit == pytest.approx(0.3) and low[0].rates[0] < 0.3
    assert ev.rates_from == "max_rate"
