"""Group objectives and the residents-migrants frontier (issue 25 item 5):
the MILPs against brute force over every plan, the frontier's monotonicity
and end points, the Atkinson mean's limits, argument checks."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooling.data.instance import instance_from_dict
from pooling.data.options import FrontierOptions
from pooling.data.spec import spec_from_dict
from pooling.economics.care import MIGRANT, RESIDENT
from pooling.economics.group_rates import GroupShare, atkinson_mean
from pooling.errors import InputError
from pooling.optimise.equity import (
    EQUITY_WEIGHTED,
    MAX_MIN_GROUP,
    WEIGHTED,
    frontier,
    priced_columns,
    solve_groups,
)
from tests.factories import INSTANCES, county, instance_dict, random_instance_dict, spec_dict
from tests.test_contracts import _small
from tests.tolerances import ROUNDING

AGREEMENT = 1e-9
"""The MILP (mip_rel_gap 1e-9) against brute force over the same columns."""


def _instance(seed: int = 3, n: int = 4):
    data = random_instance_dict(seed, n)
    return instance_from_dict(data)


def _with_contract():
    """Five counties sending migrants to a far city, with contract options there."""
    return instance_from_dict(_small(41, 20_000.0, 0.7))


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _partitions(rest):
        for i in range(len(smaller)):
            yield smaller[:i] + [[first] + smaller[i]] + smaller[i + 1:]
        yield [[first]] + smaller


def _brute_force(instance, columns, value):
    """The best `value(groups)` over every plan: each partition of the
    counties, each pool any of its columns (contract variants)."""
    by_pool = {}
    for j, c in enumerate(columns.candidates):
        by_pool.setdefault(frozenset(c.pricing.counties), []).append(j)
    best = -math.inf
    for partition in _partitions(sorted(instance.ids)):
        choices = [by_pool.get(frozenset(p)) for p in partition]
        if any(c is None for c in choices):
            continue
        for pick in itertools.product(*choices):
            groups = [gx for j in pick for gx in columns.groups[j]]
            best = max(best, value(groups))
    return best


def _mean(groups, who):
    chosen = [(g.people, x) for g, x in groups if g.who == who]
    return math.fsum(p * x for p, x in chosen) / math.fsum(p for p, _ in chosen)


@pytest.fixture(scope="module")
def cases():
    spec = spec_from_dict(spec_dict(objective={"kind": "max_mean_effective_rate"}))
    out = []
    for instance in (_instance(3, 4), _with_contract()):
        out.append((instance, priced_columns(instance, spec), spec))
    return out


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_weighted_objective_matches_brute_force(cases, weight):
    for instance, columns, spec in cases:
        found = solve_groups(instance, spec, WEIGHTED, migrant_weight=weight, columns=columns)
        best = _brute_force(instance, columns, lambda gs: (1 - weight) * _mean(gs, RESIDENT)
                            + weight * _mean(gs, MIGRANT))
        assert found.status == "optimal"
        assert found.objective == pytest.approx(best, abs=AGREEMENT)


def test_max_min_group_rate_matches_brute_force(cases):
    for instance, columns, spec in cases:
        found = solve_groups(instance, spec, MAX_MIN_GROUP, columns=columns)
        best = _brute_force(instance, columns, lambda gs: min(x for _, x in gs))
        assert found.objective == pytest.approx(best, abs=AGREEMENT)
        assert found.bound == pytest.approx(best, abs=AGREEMENT)


@pytest.mark.parametrize("aversion", [0.0, 0.5, 1.0, 3.0])
def test_equity_weighted_rate_matches_brute_force(cases, aversion):
    for instance, columns, spec in cases:
        found = solve_groups(instance, spec, EQUITY_WEIGHTED, aversion=aversion, columns=columns)
        best = _brute_force(instance, columns, lambda gs: atkinson_mean(gs, aversion))
        assert found.objective == pytest.approx(best, abs=AGREEMENT)


def test_contract_is_taken_only_when_migrants_weigh(cases):
    """A contract raises the migrants' rate and costs the residents: taken at
    weight 1, not at weight 0 (the trade-off the frontier shows)."""
    instance, columns, spec = cases[1]
    assert solve_groups(instance, spec, WEIGHTED, migrant_weight=1.0, columns=columns).contracts
    assert not solve_groups(instance, spec, WEIGHTED, migrant_weight=0.0, columns=columns).contracts


def test_frontier_is_pareto_monotone_and_its_ends_are_the_single_objective_optima(cases):
    for instance, columns, spec in cases:
        rows = frontier(instance, spec, FrontierOptions(points=6))
        assert [r["weight"] for r in rows] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        for a, b in itertools.pairwise(rows):
            assert b["migrant_effective_rate"] >= a["migrant_effective_rate"] - AGREEMENT
            assert b["resident_effective_rate"] <= a["resident_effective_rate"] + AGREEMENT
        assert rows[0]["resident_effective_rate"] == pytest.approx(
            _brute_force(instance, columns, lambda gs: _mean(gs, RESIDENT)), abs=AGREEMENT)
        assert rows[-1]["migrant_effective_rate"] == pytest.approx(
            _brute_force(instance, columns, lambda gs: _mean(gs, MIGRANT)), abs=AGREEMENT)


rates = st.lists(st.tuples(st.floats(1.0, 1e5), st.floats(0.01, 0.95)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(rates, st.floats(0.0, 20.0))
def test_atkinson_lies_between_the_minimum_and_the_mean(pairs, aversion):
    groups = [(GroupShare(str(i), RESIDENT, p, 1.0), x) for i, (p, x) in enumerate(pairs)]
    mean = math.fsum(p * x for p, x in pairs) / math.fsum(p for p, _ in pairs)
    value = atkinson_mean(groups, aversion)
    assert min(x for _, x in pairs) * (1 - 1e-9) <= value <= mean * (1 + 1e-9)
    assert atkinson_mean(groups, 0.0) == pytest.approx(mean, rel=ROUNDING)


def test_arguments_are_checked(cases):
    instance, columns, spec = cases[0]
    with pytest.raises(InputError, match="migrant_weight"):
        solve_groups(instance, spec, WEIGHTED, migrant_weight=1.5, columns=columns)
    with pytest.raises(InputError, match="aversion"):
        solve_groups(instance, spec, EQUITY_WEIGHTED, aversion=-1.0, columns=columns)
    with pytest.raises(InputError, match="points"):
        FrontierOptions(points=1)
    gap = spec_from_dict(spec_dict(equalisation={"max_rate_gap": 0.05}))
    with pytest.raises(InputError, match="max_rate_gap"):
        priced_columns(instance, gap)
    alone = instance_from_dict(instance_dict([county("900101"), county("900102")]))
    with pytest.raises(InputError, match="no county has migrants"):
        frontier(alone, spec)


def test_frontier_command_writes_its_table_and_plot(tmp_path):
    """`pooling frontier` on a small instance with a contract: exit 0, the
    CSV's columns in order, one row per weight, the plot written."""
    import csv
    import json

    from pooling.cli import main
    instance = tmp_path / "small.json"
    instance.write_text(json.dumps(_small(41, 20_000.0, 0.7)))
    spec = tmp_path / "spec.toml"
    spec.write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                    'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')
    out = tmp_path / "out"
    assert main(["frontier", str(instance), "--spec", str(spec), "--points", "3", "--out", str(out),
                 "--quiet"]) == 0
    with open(out / "frontier.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["weight", "resident_effective_rate", "migrant_effective_rate", "mean_effective_rate",
                             "contracts", "pools"]
    assert [float(r["weight"]) for r in rows] == [0.0, 0.5, 1.0]
    assert (out / "frontier.png").stat().st_size > 0


def test_frontier_command_refuses_bad_arguments(tmp_path, capsys):
    from pooling.cli import main
    spec = tmp_path / "gap.toml"
    spec.write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                    'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n[equalisation]\nmax_rate_gap = 0.05\n')
    out = tmp_path / "out"
    assert main(["frontier", str(INSTANCES / "xinyang.json"), "--spec", str(spec), "--out", str(out)]) == 2
    assert "max_rate_gap" in capsys.readouterr().err
    assert main(["frontier", str(INSTANCES / "xinyang.json"), "--spec", str(spec), "--points", "1",
                 "--out", str(out)]) == 2
    assert not (out / "frontier.csv").exists()


def test_readme_frontier_numbers():
    """README.md's frontier figures on Xinyang pooled whole."""
    from pooling.data.instance import load_instance
    from pooling.data.spec import load_spec
    from tests.factories import MODELS
    rows = frontier(load_instance(INSTANCES / "xinyang.json"), load_spec(MODELS / "prefecture.toml"),
                    FrontierOptions(points=3))
    shown = [(round(r["resident_effective_rate"], 4), round(r["migrant_effective_rate"], 4), r["contracts"])
             for r in rows]
    assert shown == [(0.5673, 0.2277, ""), (0.5615, 0.2421, "gushi-beijing;xinyang-beijing"),
                     (0.5615, 0.2421, "gushi-beijing;xinyang-beijing")]
