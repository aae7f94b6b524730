"""Registry of the benchmark harness (benchmarks/harness.py): instances x specs x methods.

Every case is one (instance, spec, method). Which methods apply where is decided
here, with the reason when a method is skipped, so the results list every
combination: nothing is dropped silently.

Instances: the bundled Tongliao instance and random instances from
tests.factories.random_instance_dict with contribution_range (220, 360), so
that most pools are solvent only below rates.max and optima are interior.
Random instances come in two series (for the compact model's scaling):
"one prefecture" (6-14 counties in one group) and "prefectures of 10"
(10-40 counties, 1-4 prefectures of 10; candidate pools never span a
prefecture, so non-contiguous enumeration stays at 1,023 subsets per group).

Specs (pooling.spec_from_dict): CVaR 99%, half the reserves committed, rates
in [0.3, 0.9], objective max_mean_rate, and
- contiguous: optimise contiguous pools within each prefecture (models/default.toml);
- any: optimise any subset of a prefecture (models/optimise_any.toml);
- equalised: contiguous, rates within 0.03 of each other per prefecture and no
  county worse off than alone (infeasible on the random instances, whose
  counties differ too much: a proof of infeasibility is the result there);
- gap: contiguous, rates within 0.03 of each other per prefecture only
  (feasible everywhere, and it binds).

Methods, by the problem they solve:
- exact pricing (pools priced by the exact aggregate laws): set_partitioning
  (pooling.optimise.solve), brute_force (every set partition, <= 9 counties), greedy,
  status_quo, prefecture (pooling.optimise.baselines);
- sampled scenarios (S years drawn once per instance, pooling.economics.loss_scenarios):
  set_partitioning_on_scenarios (columns priced by sample CVaR) and compact
  (pooling.optimise.formulations.compact), on the very same scenarios. The
  pair is skipped, with the reason recorded, on an instance whose sampled
  scenarios cannot express its network (scenario_pair_unsupported).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from pooling import Instance, Spec, instance_from_dict, load_instance, spec_from_dict
from pooling.economics.care import county_care

ROOT = Path(__file__).resolve().parent.parent

CONTRIBUTION_RANGE = (220.0, 360.0)
BRUTE_FORCE_MAX_COUNTIES = 9
COMPACT_SPECS = ("contiguous", "any")
"""The compact model refuses equalisation rules (ValueError), so it and its
set-partitioning twin on scenarios run only on these specs."""


@dataclass(frozen=True)
class InstanceEntry:
    name: str
    counties: int
    prefectures: int
    seed: int | None = None          # None: instances/<name>.json
    quick: tuple[str, ...] = ()      # specs run by --quick (none: not in --quick)
    scaling_only: bool = False       # only the scenario pair runs (compact scaling series)
    series: tuple[str, ...] = ()     # scaling series it belongs to

    def load(self) -> Instance:
        if self.seed is None:   # the formulations compared include the compact one, which samples
            # claims at observed admissions and cannot price induced utilisation: elasticity 0
            bundled = load_instance(ROOT / "instances" / f"{self.name}.json")
            return dataclasses.replace(bundled, parameters=dataclasses.replace(
                bundled.parameters, utilisation_elasticity=0.0))
        from tests.factories import random_instance_dict
        data = random_instance_dict(self.seed, self.counties, self.prefectures,
                                    contribution_range=CONTRIBUTION_RANGE)
        data["name"] = self.name
        return instance_from_dict(data, source=f"random_instance_dict(seed={self.seed}, "
                                               f"n={self.counties}, prefectures={self.prefectures})")

    @property
    def origin(self) -> str:
        if self.seed is None:
            return f"instances/{self.name}.json, utilisation_elasticity 0"
        return f"random_instance_dict(seed={self.seed}, {self.counties}, {self.prefectures}, {CONTRIBUTION_RANGE})"


ONE = "one prefecture"
TENS = "prefectures of 10"

INSTANCES = (
    InstanceEntry("tongliao", 8, 1, quick=("contiguous",)),
    InstanceEntry("r6", 6, 1, seed=106, quick=("contiguous", "any", "equalised", "gap"), series=(ONE,)),
    InstanceEntry("r8", 8, 1, seed=108, series=(ONE,)),
    InstanceEntry("r10", 10, 1, seed=110, series=(ONE, TENS)),
    InstanceEntry("r12", 12, 1, seed=112, scaling_only=True, series=(ONE,)),
    InstanceEntry("r14", 14, 1, seed=114, scaling_only=True, series=(ONE,)),
    InstanceEntry("r20", 20, 2, seed=120, series=(TENS,)),
    InstanceEntry("r30", 30, 3, seed=130, series=(TENS,)),
    InstanceEntry("r40", 40, 4, seed=140, scaling_only=True, series=(TENS,)),
)

_BASE = {
    "solvency": {"measure": "cvar", "level": 0.99, "reserve_share": 0.5},
    "rates": {"min": 0.3, "max": 0.9},
    "objective": {"kind": "max_mean_rate"},
}

SPEC_DICTS = {
    "contiguous": {**_BASE, "pooling": {"scope": "optimise", "within": "prefecture", "contiguous": True}},
    "any": {**_BASE, "pooling": {"scope": "optimise", "within": "prefecture", "contiguous": False}},
    "equalised": {**_BASE, "pooling": {"scope": "optimise", "within": "prefecture", "contiguous": True},
                  "equalisation": {"max_rate_gap": 0.03, "gap_scope": "prefecture",
                                   "no_county_worse_off": True}},
    "gap": {**_BASE, "pooling": {"scope": "optimise", "within": "prefecture", "contiguous": True},
            "equalisation": {"max_rate_gap": 0.03, "gap_scope": "prefecture"}},
}

SPEC_NOTES = {
    "contiguous": "optimise, contiguous pools within each prefecture",
    "any": "optimise, any subset of a prefecture",
    "equalised": "contiguous within prefecture, max_rate_gap 0.03 per prefecture, no county worse off",
    "gap": "contiguous within prefecture, max_rate_gap 0.03 per prefecture",
}


def build_spec(name: str) -> Spec:
    return spec_from_dict(SPEC_DICTS[name])


@dataclass(frozen=True)
class MethodEntry:
    name: str
    problem: str        # "exact" (exact aggregate laws) or "scenarios" (sampled years)
    proves: bool        # proves optimality (exact method) or is a heuristic / fixed plan
    description: str


METHODS = (
    MethodEntry("set_partitioning", "exact", True,
                "pooling.optimise.solve: enumerate, price exactly, set-partitioning MILP (HiGHS)"),
    MethodEntry("brute_force", "exact", True,
                "pooling.optimise.bruteforce.brute_force: every set partition (own pricer, pricing included)"),
    MethodEntry("column_generation", "exact", False,
                "pooling.optimise.solve with candidates=generate: generated columns (heuristic pricing), "
                "MILP over them, bound valid over every pool"),
    MethodEntry("greedy", "exact", False, "pooling.optimise.baselines.greedy + fixed_plan_value"),
    MethodEntry("status_quo", "exact", False, "every county alone (pooling.optimise.solve, scope county)"),
    MethodEntry("prefecture", "exact", False, "one pool per prefecture (pooling.optimise.solve, scope prefecture)"),
    MethodEntry("set_partitioning_on_scenarios", "scenarios", True,
                "set-partitioning MILP, columns priced by sample CVaR on the shared scenarios"),
    MethodEntry("compact", "scenarios", True,
                "compact assignment MILP (symmetry breaking) on the same scenarios"),
)
METHOD_BY_NAME = {m.name: m for m in METHODS}
SCENARIO_METHODS = ("set_partitioning_on_scenarios", "compact")


EXACT_POOL_BUDGET = 3_500
"""Exact pricing costs 20-70 ms per pool on this machine (3069 pools for the
30-county instance without contiguity: one to three minutes), so the exact
methods skip cases with more candidate pools unless --all-exact (none of the
registry's full-run cases exceed it; a guard for added instances)."""


def scenario_pair_unsupported(instance: Instance) -> str | None:
    """Why the scenario pair cannot run on `instance`, or None when it can.

    Sampled scenarios (pooling.economics.loss_scenarios.sample_scenarios) keep a
    county's care at a place as home, bilateral (one approving county) or never
    in network; a place approved by several counties of the instance (a city's
    hospitals approved by every fund of its prefecture, as in every bundled
    instance since issue 13) is in network only for a pool holding all of them,
    which neither they nor the compact model can express, so sample_scenarios
    refuses it. This is the same test, made before sampling so that the harness
    can record the skip instead of stopping.
    """
    ids = set(instance.ids)
    for county in instance.counties:
        for flow in county_care(instance, county):
            if len(flow.approved_by) > 1 and flow.approved_by <= ids:
                return (f'care at "{flow.place}" (county {county.id}) is in network only for a pool '
                        f"holding all {len(flow.approved_by)} of its approving counties; sampled "
                        "scenarios and the compact model cannot express that (exact methods only)")
    return None


def skip_reason(instance: InstanceEntry, spec: str, method: str, candidate_pools: int | None = None,
                all_exact: bool = False, scenarios_unsupported: str | None = None) -> str | None:
    """Why (instance, spec, method) is not run, or None when it is. `candidate_pools`
    is the number of pools the spec allows (None if enumeration is refused);
    `scenarios_unsupported` is scenario_pair_unsupported's reason for the instance."""
    if method in SCENARIO_METHODS and scenarios_unsupported is not None:
        return scenarios_unsupported
    if instance.scaling_only and method not in SCENARIO_METHODS:
        return "scaling-series instance: scenario pair only"
    if instance.scaling_only and spec not in COMPACT_SPECS:
        return "scaling-series instance: compact specs only"
    if method == "brute_force" and instance.counties > BRUTE_FORCE_MAX_COUNTIES:
        return f"brute force limited to <= {BRUTE_FORCE_MAX_COUNTIES} counties"
    if method in SCENARIO_METHODS and spec not in COMPACT_SPECS:
        return "compact model does not support equalisation rules (pair not run)"
    exact = METHOD_BY_NAME[method].problem == "exact"
    if (exact and method != "column_generation" and candidate_pools is not None
            and candidate_pools > EXACT_POOL_BUDGET and not all_exact):
        return (f"{candidate_pools:,} candidate pools > {EXACT_POOL_BUDGET:,}: exact pricing skipped "
                f"for time (--all-exact runs it)")
    return None


def selected_instances(quick: bool, names: list[str] | None = None) -> list[InstanceEntry]:
    chosen = [i for i in INSTANCES if (i.quick or not quick)]
    if names:
        chosen = [i for i in INSTANCES if i.name in names]
    return chosen


def specs_for(instance: InstanceEntry, quick: bool) -> tuple[str, ...]:
    return (instance.quick or tuple(SPEC_DICTS)) if quick else tuple(SPEC_DICTS)
