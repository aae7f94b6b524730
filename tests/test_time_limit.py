"""--time-limit covers the whole run: one deadline, fixed when the run
starts, read by every stage (blocks not started past it, pricing, column
generation and its heuristic, the kappas and MILPs of its bound, each MILP
given the time left)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.data.options import SOLVE_OPTIONS
from pooling.economics import kappa_bounds
from pooling.economics.pool_bounds import BoundTimeLimit, shocks_cvar
from pooling.economics.pools import PoolPricer
from pooling.execution.deadline import Deadline
from pooling.optimise import generation, group_search, problem
from pooling.optimise.candidates import pool_groups
from pooling.optimise.columns import CandidateMaker
from pooling.optimise.problem import BLOCK_GRACE_SECONDS, LAST_MILP_SECONDS, MIN_MILP_SECONDS, milp_options
from tests.factories import INSTANCES, MODELS
from tests.tolerances import ROUNDING


@dataclass(frozen=True)
class _Left:
    """A deadline `left` seconds away, whenever asked."""

    left: float

    def remaining(self) -> float:
        return self.left


@settings(max_examples=200, deadline=None)
@given(left=st.floats(-10.0, 10.0), limit=st.one_of(st.none(), st.floats(0.01, 100.0)))
def test_a_milp_gets_the_time_left_and_never_runs_past_the_grace(left, limit):
    """A MILP started now runs until the deadline, or up to MIN_MILP_SECONDS
    past it when less is left; never later (except the instant
    LAST_MILP_SECONDS once the grace is over), and never longer than the
    run's own limit."""
    options = pooling.SolveOptions(time_limit=limit)
    got = milp_options(options, _Left(left)).time_limit
    assert got > 0
    assert got - left <= MIN_MILP_SECONDS + ROUNDING or got == LAST_MILP_SECONDS
    if limit is not None:
        assert got <= limit
    if left > 0 and (limit is None or limit >= left):
        assert got >= left                                     # all the time left
    if -MIN_MILP_SECONDS < left < MIN_MILP_SECONDS and (limit is None or limit >= MIN_MILP_SECONDS):
        assert got >= min(MIN_MILP_SECONDS, left + MIN_MILP_SECONDS) - ROUNDING   # the grace
    assert milp_options(options, None) is options


def test_the_help_says_what_the_limit_covers():
    """One truth: the option's help (CLI and API) says the limit covers the
    whole run; it used to say pricing and generation were not limited."""
    text = next(o.help for o in SOLVE_OPTIONS if o.name == "time_limit")
    assert "whole run" in text and "not limited" not in text


def test_a_kappa_stops_at_the_deadline():
    """One kappa of the pool bound takes up to a second (seconds on a busy
    machine); past the deadline it stops at its next evaluation."""
    terms = [(0.5, 0.05), (0.3, 0.08), (0.2, 0.1)]
    with pytest.raises(BoundTimeLimit):
        shocks_cvar(terms, 0.99, Deadline.after(0.0))
    assert shocks_cvar(terms, 0.99, Deadline.after(600.0)) == shocks_cvar(terms, 0.99)


def _henan_prefecture(code: str):
    inst = pooling.load_instance(INSTANCES / "henan.json")
    return inst.restricted([c.id for c in inst.counties if c.prefecture == code])


def test_generation_past_the_deadline_prices_nothing_and_computes_no_kappa():
    """A 13-county prefecture (columns generated) reached after the
    deadline: no pool priced, no kappa computed (each took seconds, with no
    look at the clock), the trivial bound, stopped by the time limit."""
    inst, spec = _henan_prefecture("411300"), pooling.load_spec(MODELS / "default.toml")
    plan = problem.candidate_plan(inst, spec, pooling.SolveOptions())
    assert plan is not None   # generated
    kappa_bounds._KAPPAS.clear()
    maker = CandidateMaker(inst, spec, PoolPricer(inst, spec))
    out = generation.generate_columns(inst, spec, plan, maker, Deadline.after(0.0))
    assert out.log.stopped == "time limit" and out.candidates == [] and out.bound == spec.rates.max
    assert not kappa_bounds._KAPPAS


def test_a_group_search_computes_its_kappas_only_when_needed():
    inst, spec = _henan_prefecture("411300"), pooling.load_spec(MODELS / "default.toml")
    group = pool_groups(inst, spec)[0]
    kappa_bounds._KAPPAS.clear()
    search = group_search.GroupSearch(inst, spec, group, CandidateMaker(inst, spec, PoolPricer(inst, spec)), {},
                                     Deadline.after(0.0))
    assert not kappa_bounds._KAPPAS
    with pytest.raises(BoundTimeLimit):
        search.kappa_bands   # noqa: B018  (the property computes them)


def test_a_decomposed_solve_stops_soon_after_its_limit():
    """Henan (18 prefectures, four with generated columns; minutes without a
    limit) at 3 s from the start of the call: every stage stops at the one
    deadline, so the call returns within about MIN_MILP_SECONDS of it (a
    loose check here; benchmarks/bench_overhead.py measures it)."""
    inst = pooling.load_instance(INSTANCES / "henan.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    start = time.monotonic()
    result = pooling.solve(inst, spec, time_limit=3.0, workers=2, started=start)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0 + BLOCK_GRACE_SECONDS + 3.0, elapsed
    assert result.status in ("time_limit", "partial")
    assert result.bound is None or result.bound <= spec.rates.max


def test_the_command_line_limit_counts_from_the_start_of_the_command(tmp_path):
    """`pooling solve instances/henan.json --time-limit 5` used to take 17 s
    (18.7 s at 10): the limit now covers loading the libraries and the
    instance, starting workers, pricing, generation and the MILPs."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pooling.cli", "solve", str(INSTANCES / "henan.json"),
                           "--time-limit", "5", "--out", str(tmp_path), "--quiet"],
                          capture_output=True, text=True, timeout=300, check=False)
    elapsed = time.monotonic() - start
    assert done.returncode in (3, 4), done.stderr
    assert elapsed < 5.0 + BLOCK_GRACE_SECONDS + 3.0, elapsed


def test_baselines_share_the_run_s_deadline():
    """`solve --compare --time-limit T` once gave each baseline solve T afresh
    and ran greedy merging without any limit (minutes on Henan): the baselines
    now count from the run's start like the optimum, and one cut short says so."""
    from pooling.data.options import SolveOptions
    from pooling.optimise.baselines import compare
    inst = pooling.load_instance(INSTANCES / "henan.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    start = time.monotonic()
    outcomes = compare(inst, spec, options=SolveOptions(time_limit=2.0), started=start)
    elapsed = time.monotonic() - start
    assert elapsed < 2.0 + BLOCK_GRACE_SECONDS + 3.0, elapsed
    by_name = {o.name: o for o in outcomes}
    assert by_name["greedy"].status == "time_limit"
    assert by_name["optimum"].status == "time_limit"
