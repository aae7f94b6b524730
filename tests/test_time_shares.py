"""Under a time limit each block's column generation gets its share of the
time left when it starts (pooling.optimise.blocks.time_shares), so a large
block started first cannot hold its worker until the limit."""

from __future__ import annotations

import math
import time
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pooling import SolveOptions, instance_from_dict, solve, spec_from_dict
from pooling.optimise import problem
from pooling.optimise.blocks import BLOCK_COST_GROWTH, Block, own_deadline, run_order, time_shares
from tests.factories import random_instance_dict, spec_dict


def _blocks(sizes: list[int]) -> list[Block]:
    return [Block(f"b{i}", tuple(f"{i}-{k}" for k in range(n)), 1000 * n) for i, n in enumerate(sizes)]


@given(st.lists(st.integers(1, 80), min_size=1, max_size=40), st.integers(1, 8))
def test_shares_are_fractions_and_the_last_block_may_use_all_the_time_left(sizes, workers):
    blocks = _blocks(sizes)
    shares = time_shares(blocks, workers)
    assert all(0.0 < s <= 1.0 for s in shares)
    assert shares[run_order(blocks)[-1]] == 1.0


def test_a_block_gets_its_expected_cost_over_the_blocks_not_started_times_the_workers():
    blocks = _blocks([20, 10, 10])
    big, small = BLOCK_COST_GROWTH ** 20, BLOCK_COST_GROWTH ** 10
    shares = time_shares(blocks, 1)
    assert shares[0] == pytest.approx(big / (big + 2 * small))
    assert shares[1] == pytest.approx(0.5) and shares[2] == 1.0   # equal blocks: half, then the rest
    assert time_shares(blocks, 2)[0] == pytest.approx(min(1.0, 2 * big / (big + 2 * small)))


def test_own_deadline_is_a_share_of_the_time_left_and_never_past_the_run():
    assert own_deadline(None, 0.3) is None
    now = time.time()
    deadline = own_deadline(now + 100.0, 0.25)
    assert now + 24.0 < deadline < now + 26.0
    assert own_deadline(now + 100.0, 1.0) <= now + 100.0
    assert own_deadline(now - 5.0, 0.5) == now - 5.0   # past the run's deadline: the run's deadline


def test_generation_deadlines_follow_the_shares_in_a_decomposed_solve():
    """Two prefectures solved by column generation under a time limit, in
    process: the larger block (started first) generates until its share of
    the time, the last block until the run's deadline."""
    data = random_instance_dict(3, 10, n_prefectures=2)
    inst = instance_from_dict(data)
    spec = spec_from_dict(spec_dict(pooling={"within": "prefecture"}))
    seen = []
    original = problem.generate_columns

    def recording(instance, spec, groups, maker, deadline, plan):
        seen.append((len(instance.counties), deadline))
        return original(instance, spec, groups, maker, deadline, plan)

    limit = 300.0
    start = time.time()
    with mock.patch.object(problem, "generate_columns", recording):
        result = solve(inst, spec, time_limit=limit, options=SolveOptions(candidates="generate"))
    assert result.status == "optimal"
    assert len(seen) == 2 and seen[0][0] >= seen[1][0]   # the larger block first
    (first_size, first_deadline), (_, last_deadline) = seen
    share = time_shares(sorted(_blocks([first_size, len(inst.counties) - first_size]), key=lambda b: b.label),
                        1)[0]
    assert first_deadline - start == pytest.approx(share * limit, abs=5.0)
    assert first_deadline < start + limit - 1.0
    assert math.isclose(last_deadline, start + limit, abs_tol=5.0)
