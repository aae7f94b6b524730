"""Blocks start largest first without a time limit (the run ends soonest);
under one, the workers - 1 largest first and then the smallest first (as many
blocks as possible have a plan if it strikes)."""

from __future__ import annotations

from unittest import mock

from pooling import SolveOptions, instance_from_dict, solve, spec_from_dict
from pooling.optimise import problem
from pooling.optimise.blocks import Block, run_order
from tests.factories import random_instance_dict, spec_dict


def _blocks(sizes: list[int]) -> list[Block]:
    return [Block(f"b{i}", tuple(f"{i}-{k}" for k in range(n)), 1000 * n) for i, n in enumerate(sizes)]


def test_order_is_largest_first_without_a_limit_and_smallest_first_under_one():
    blocks = _blocks([3, 20, 3, 10])
    assert run_order(blocks) == [1, 3, 0, 2]
    assert run_order(blocks, limited=True) == [0, 2, 3, 1]   # ties in block order either way
    assert run_order(blocks, limited=True, workers=2) == [1, 0, 2, 3]
    assert run_order(blocks, limited=True, workers=3) == [1, 3, 0, 2]
    assert run_order(blocks, limited=False, workers=2) == [1, 3, 0, 2]


def _sizes_in_start_order(time_limit):
    inst = instance_from_dict(random_instance_dict(3, 11, n_prefectures=2))
    spec = spec_from_dict(spec_dict(pooling={"within": "prefecture"}))
    seen = []
    original = problem.price_problem

    def recording(instance, *args, **kwargs):
        seen.append(len(instance.counties))
        return original(instance, *args, **kwargs)

    with mock.patch.object(problem, "price_problem", recording):
        result = solve(inst, spec, time_limit=time_limit, options=SolveOptions(candidates="generate"))
    assert result.status == "optimal"
    return seen


def test_a_decomposed_solve_starts_blocks_in_that_order():
    """Two prefectures of 6 and 5 counties solved in process (one worker):
    the larger first without a limit, the smaller first under one."""
    assert _sizes_in_start_order(None) == [6, 5]
    assert _sizes_in_start_order(300.0) == [5, 6]
