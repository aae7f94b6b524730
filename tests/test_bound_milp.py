"""The pool-bound MILP's shortcuts keep its answers: Dinkelbach's iteration
started at a floor (a band that cannot beat it costs one MILP), the objective
cutoff row, and an exact check cut short by the time limit (its bound stays
valid, only looser)."""

from __future__ import annotations

import itertools
import math
from unittest import mock

import numpy as np
import pytest

from pooling import instance_from_dict, spec_from_dict
from pooling.economics import bound_milp
from pooling.economics.group_economics import BOUND_PRICING_SLACK
from pooling.economics.pool_bounds import (
    BandedProgram,
    BoundTimeLimit,
    GroupEconomics,
    GroupProgram,
    shock_cvar,
)
from pooling.economics.pools import PoolPricer
from pooling.optimise import group_search
from pooling.optimise.candidates import pool_groups
from pooling.optimise.columns import CandidateMaker
from tests.factories import random_instance_dict, spec_dict
from tests.tolerances import ROUNDING

CV, LEVEL = 0.08, 0.99
SMALL_RATES = (250.0, 420.0)
"""Contributions per head that make some pools gain from pooling (as in test_generation)."""
TIGHTNESS = 1e-6
"""The MILP's answer against brute force over its own relaxation (HiGHS's gaps
and feasibility tolerances in scaled money units)."""


def _case(seed: int = 5, counties: int = 7):
    data = random_instance_dict(seed, counties, contribution_range=SMALL_RATES)
    data["parameters"]["frequency_shock_cv"] = CV
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict(pooling={"within": "none", "contiguous": False},
                                    solvency={"measure": "cvar", "level": LEVEL}))
    group = pool_groups(inst, spec)[0]
    return inst, spec, group, GroupEconomics(inst, spec, group)


def _relaxed_best(econ: GroupEconomics, rho: np.ndarray, kappa: float) -> float:
    """Brute force: the largest (1 + slack) B_P / (kappa sum e) - avg rho over
    pools of two or more counties with B_P >= 0 (the cap `top` out of reach)."""
    best = -math.inf
    for size in range(2, len(econ.ids) + 1):
        for pos in itertools.combinations(range(len(econ.ids)), size):
            members = [econ.ids[i] for i in pos]
            budget = econ.budget(members)
            if budget < 0:
                continue
            people = econ.enrollees[list(pos)]
            ratio = (1.0 + BOUND_PRICING_SLACK) * budget / (kappa * econ.alone_mean[list(pos)].sum())
            best = max(best, ratio - float(people @ rho[list(pos)]) / people.sum())
    return best


@pytest.mark.parametrize("trial", range(3))
def test_maximise_from_a_floor_is_the_maximum_above_it(trial):
    """Above the floor: the maximum itself and a pool attaining it; at or
    below it: a value <= the floor and no pool. Never below the maximum."""
    _, _, _, econ = _case()
    kappa = shock_cvar(CV, LEVEL)
    rho = np.random.default_rng(400 + trial).uniform(0.3, 0.9, len(econ.ids))
    best = _relaxed_best(econ, rho, kappa)
    assert best > 0.0   # the cases have a pool to find
    for floor in (0.0, 0.5 * best, best - 1e-4, best + 1e-4, best + 0.05):
        program = GroupProgram.build(econ, rho, kappa=kappa, top=10.0, max_counties=None, min_enrollees=0)
        value, x = program.maximise(floor)
        assert value >= best - TIGHTNESS
        if best > floor + TIGHTNESS:
            assert value == pytest.approx(best, abs=TIGHTNESS)
            assert min(program.g1(x), program.g2(x)) == pytest.approx(best, abs=TIGHTNESS)
        else:
            assert value <= floor + TIGHTNESS
            assert x is None


def test_banded_maximum_reuses_a_band_until_it_is_cut():
    """A band's maximum from a lower floor still bounds it at a higher one, so
    it is not solved again; cutting its maximiser re-solves only that band."""
    _, _, _, econ = _case()
    kappa = shock_cvar(CV, LEVEL)
    rho = np.random.default_rng(401).uniform(0.3, 0.9, len(econ.ids))
    program = BandedProgram.build(econ, rho, bands=[(2, 3, kappa * 1.01), (4, 7, kappa)], top=10.0,
                                  min_enrollees=0)
    calls = []
    original = GroupProgram._solve

    def counted(self, t):
        calls.append(self.size_range)
        return original(self, t)

    with mock.patch.object(GroupProgram, "_solve", counted):
        first, x = program.maximise(0.0)
        solved = len(calls)
        assert program.maximise(first / 2)[0] == first and len(calls) == solved
        program.cut(x)
        size = int((x > 0.5).sum())
        second, _ = program.maximise(first / 2)
    assert second <= first + TIGHTNESS
    assert {band for band in calls[solved:]} == {p.size_range for p in program.programs
                                                 if p.size_range[0] <= size <= p.size_range[1]}


def _search(deadline=None):
    inst, spec, group, _ = _case(seed=11, counties=8)
    maker = CandidateMaker(inst, spec, PoolPricer(inst, spec))
    return group_search.GroupSearch(inst, spec, group, maker, {}, deadline), group


def test_exact_check_cut_short_by_the_time_limit_keeps_a_valid_bound():
    """The deadline striking after the first maximisation over every band: the
    check returns that maximum (a bound over every pool, no cut applied), at
    least the bound of the full check, and says it stopped early; striking
    before it, no bound is claimed."""
    rho_rng = np.random.default_rng(14)
    original = BandedProgram.maximise
    counter = {"calls": 0}

    def strikes_on(call):
        def maximise(self, floor=0.0):
            counter["calls"] += 1
            if counter["calls"] >= call:
                raise BoundTimeLimit
            return original(self, floor)
        return maximise

    with mock.patch.object(group_search, "SCREEN_LIMIT", 0):   # the MILP path, not the listing
        search, group = _search()
        rho = dict(zip(group.members, rho_rng.uniform(0.3, 0.9, len(group.members))))
        with mock.patch.object(BandedProgram, "maximise", strikes_on(math.inf)):
            full, _ = search.exact_check(rho, stop_at_improving=False)
        assert counter["calls"] >= 2 and not search.stopped_early   # the full check cut a pool
        counter["calls"] = 0
        with mock.patch.object(BandedProgram, "maximise", strikes_on(2)):
            short_search, _ = _search()
            short, _ = short_search.exact_check(rho, stop_at_improving=False)
        assert short_search.stopped_early
        assert short >= full - ROUNDING
        counter["calls"] = 0
        with mock.patch.object(BandedProgram, "maximise", strikes_on(1)), pytest.raises(BoundTimeLimit):
            _search()[0].exact_check(rho, stop_at_improving=False)


def test_cutoff_row_infeasibility_means_nothing_reaches_zero():
    """With every dual above every pool's cap nothing beats t = 0: the MILP with
    its cutoff row is infeasible and the answer is (0, None), as without it."""
    _, _, _, econ = _case()
    kappa = shock_cvar(CV, LEVEL)
    program = GroupProgram.build(econ, np.full(len(econ.ids), 5.0), kappa=kappa, top=10.0, max_counties=None,
                                 min_enrollees=0)
    assert program._solve(0.0) == (0.0, None)
    assert program.maximise() == (0.0, None)
    assert bound_milp.MILP_INFEASIBLE == 2


def test_the_programme_s_cap_numerator_is_the_budget_times_the_weighted_enrollees():
    """GroupProgram's cap C_P = Num / Den with Num = (1 + slack) (sum beta_c - F)
    sum N_c w_c / money: with budget weights below 1 and a fund fixed cost F > 0
    the fixed cost's term must carry the weights too (it carried N_c alone, a
    smaller numerator, so a cap below the pool's and a bound that could prune
    a better pool)."""
    from pooling.economics.group_economics import ObjectiveWeights
    _inst, _spec, _group, econ = _case()
    assert econ.fixed > 0.0
    n = len(econ.ids)
    weights = ObjectiveWeights(np.linspace(0.4, 0.9, n), np.ones(n))
    program = bound_milp.GroupProgram.build(econ, np.zeros(n), kappa=1.2, top=0.9, max_counties=None,
                                            min_enrollees=0, weights=weights)
    money = float(econ.alone_mean.sum())
    people = econ.enrollees / econ.enrollees.sum()
    for pos in ([0, 1], [1, 3, 4], list(range(n))):
        x = np.zeros(n)
        x[pos] = 1.0
        numerator = x @ program.cap_q @ x + program.cap_l @ x
        budget = float(econ.beta[pos].sum()) - econ.fixed
        expected = (1.0 + BOUND_PRICING_SLACK) * budget / money * float(people[pos] @ weights.budget[pos])
        assert numerator == pytest.approx(expected, rel=ROUNDING)
