"""The group objectives as spec `[objective]` kinds (issue 25 item 5):
`pooling solve` with kind "max_min_group_rate" or "max_equity_weighted_rate"
equals `solve_groups` and brute force over every plan; `evaluate` of the
solve's plan gives its objective back; the spec's `aversion` and the
combinations the kinds do not support are refused by field (exit 2); the
resolved form of existing specs is unchanged."""

from __future__ import annotations

import hashlib
import itertools
import json
import math

import pytest

from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import GROUP_OBJECTIVES, load_spec, spec_from_dict
from pooling.economics.care import MIGRANT
from pooling.economics.group_rates import atkinson_mean, plan_groups
from pooling.errors import InputError
from pooling.optimise.baselines import compare
from pooling.optimise.equity import EQUITY_WEIGHTED, MAX_MIN_GROUP, priced_columns, solve_groups
from pooling.optimise.result import Result
from pooling.optimise.solve import evaluate, solve
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict
from tests.test_contracts import _small
from tests.test_equity import _brute_force, _partitions

AGREEMENT = 1e-9
"""The MILP (mip_rel_gap 1e-9) against brute force over the same columns."""


def _spec(kind: str, aversion: float | None = None, **sections):
    objective = {"kind": kind} | ({"aversion": aversion} if aversion is not None else {})
    return spec_from_dict(spec_dict(objective=objective, **sections))


@pytest.fixture(scope="module")
def instances():
    """A random four-county instance and five counties with contract options."""
    return [instance_from_dict(random_instance_dict(3, 4)), instance_from_dict(_small(41, 20_000.0, 0.7))]


@pytest.mark.parametrize("kind, aversion", [(MAX_MIN_GROUP, None), (EQUITY_WEIGHTED, 0.5),
                                            (EQUITY_WEIGHTED, 1.0), (EQUITY_WEIGHTED, 3.0)])
def test_solve_with_a_group_kind_equals_solve_groups_and_brute_force(instances, kind, aversion):
    for instance in instances:
        spec = _spec(kind, aversion)
        result = solve(instance, spec)
        columns = priced_columns(instance, spec)
        direct = solve_groups(instance, spec, kind, aversion=aversion if aversion is not None else 1.0,
                              columns=columns)
        assert result.status == "optimal"
        assert result.objective_kind == kind
        assert result.objective == direct.objective
        assert result.bound == direct.bound
        assert result.gap is not None and result.gap <= AGREEMENT
        assert [(p.pricing.counties, p.pricing.contracts, p.rate) for p in result.pools] == \
            [(p.pricing.counties, p.pricing.contracts, p.rate) for p in direct.pools]
        value = (lambda gs: min(x for _, x in gs)) if kind == MAX_MIN_GROUP else \
            (lambda gs: atkinson_mean(gs, aversion))
        assert result.objective == pytest.approx(_brute_force(instance, columns, value), abs=AGREEMENT)
        figures = result.group_rates
        assert figures["resident_effective_rate"] == direct.resident_effective_rate
        assert figures["migrant_effective_rate"] == direct.migrant_effective_rate
        assert figures["mean_effective_rate"] == direct.mean_effective_rate
        assert figures["worst_group_rate"] == direct.worst_group_rate


def _mean_effective(instance, columns, pick) -> float:
    people = sum(c.enrollees for c in instance.counties)
    return math.fsum(care.enrollees * columns.rates[j] * care.effective_share
                     for j in pick for care in columns.candidates[j].pricing.care) / people


def test_max_min_group_rate_breaks_ties_by_the_mean_effective_rate(instances):
    """Among the plans whose worst group is as good as the optimum's, none has
    a higher mean effective rate (brute force over every plan). Without the
    tie-break stage HiGHS returned, on the third instance, another plan at the
    same worst rate with mean effective rate 0.8493 instead of 0.8641."""
    for instance in [*instances, instance_from_dict(random_instance_dict(16, 4))]:
        spec = _spec(MAX_MIN_GROUP)
        columns = priced_columns(instance, spec)
        found = solve_groups(instance, spec, MAX_MIN_GROUP, columns=columns)
        by_pool = {}
        for j, c in enumerate(columns.candidates):
            by_pool.setdefault(frozenset(c.pricing.counties), []).append(j)
        best = -math.inf
        for partition in _partitions(sorted(instance.ids)):
            choices = [by_pool.get(frozenset(p)) for p in partition]
            if any(c is None for c in choices):
                continue
            for pick in itertools.product(*choices):
                worst = min(x for j in pick for _, x in columns.groups[j])
                if worst >= found.objective - AGREEMENT:
                    best = max(best, _mean_effective(instance, columns, pick))
        assert found.mean_effective_rate == pytest.approx(best, abs=AGREEMENT)


@pytest.mark.parametrize("kind, aversion", [(MAX_MIN_GROUP, None), (EQUITY_WEIGHTED, 2.0)])
def test_evaluate_of_the_solved_plan_reproduces_its_objective(instances, kind, aversion):
    instance = instances[1]
    spec = _spec(kind, aversion)
    result = solve(instance, spec)
    plan = [list(p.pricing.counties) for p in result.pools]
    taken = [{"pool": list(p.pricing.counties), "option": o} for p in result.pools for o in p.pricing.contracts]
    evaluation = evaluate(instance, spec, plan, contracts=taken)
    assert evaluation.feasible
    assert evaluation.objective == result.objective
    assert [p.rate for p in evaluation.pools] == [p.rate for p in result.pools]
    assert evaluation.group_rates == result.group_rates
    assert evaluation.to_dict()["objective_kind"] == kind


def test_a_group_result_reads_back_and_other_results_carry_no_group_rates(instances):
    instance = instances[0]
    result = solve(instance, _spec(EQUITY_WEIGHTED, 2.0))
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["group_rates"]) == {"resident_effective_rate", "migrant_effective_rate",
                                        "mean_effective_rate", "worst_group_rate"}
    assert Result.from_dict(data).to_dict() == data
    assert "group_rates" not in solve(instance, _spec("max_mean_effective_rate")).to_dict()


def test_baselines_are_judged_by_the_group_objective(instances):
    """`solve --compare`: the status quo's objective is its evaluation's, and
    no baseline beats the optimum."""
    instance = instances[0]
    spec = _spec(MAX_MIN_GROUP)
    outcomes = {b.name: b for b in compare(instance, spec)}
    alone = evaluate(instance, spec, [[c] for c in instance.ids])
    assert outcomes["status_quo"].objective == pytest.approx(alone.objective, abs=AGREEMENT)
    best = outcomes["optimum"].objective
    assert all(b.objective <= best + AGREEMENT for b in outcomes.values() if b.objective is not None)


def test_aversion_is_read_for_the_atkinson_kind_only():
    assert _spec(EQUITY_WEIGHTED).objective.aversion == 1.0
    assert _spec(EQUITY_WEIGHTED, 0).to_dict()["objective"] == {"kind": EQUITY_WEIGHTED, "aversion": 0}
    assert _spec(MAX_MIN_GROUP).to_dict()["objective"] == {"kind": MAX_MIN_GROUP}
    resolved = _spec(EQUITY_WEIGHTED, 2.5).to_dict()
    assert spec_from_dict(resolved).to_dict() == resolved
    for bad, words in ((-0.5, "objective.aversion"), (50.5, "objective.aversion"), ("2", "objective.aversion"),
                       (True, "objective.aversion"), (math.nan, "objective.aversion")):
        with pytest.raises(InputError, match=words):
            _spec(EQUITY_WEIGHTED, bad)
    for kind in ("max_mean_rate", MAX_MIN_GROUP):
        with pytest.raises(InputError, match=r"objective\.aversion.*applies only"):
            _spec(kind, 1.0)


EXISTING_SPEC_DIGESTS = {"default.toml": "2c026e0d740bb05e", "equalised.toml": "ae99f934893136d8",
                         "benefits_henan2012.toml": "20133d9db879d489"}
"""sha256 (first 16 hex digits) of the resolved specs' JSON before the group
kinds existed (main at 98f280a): checkpoint and cell keys hash this form."""


def test_existing_specs_resolve_as_before():
    for name, digest in EXISTING_SPEC_DIGESTS.items():
        data = load_spec(MODELS / name).to_dict()
        assert hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16] == digest, name
    for path in sorted(MODELS.glob("*.toml")):
        objective = load_spec(path).to_dict()["objective"]
        expected = ["kind", "aversion"] if objective["kind"] == EQUITY_WEIGHTED else ["kind"]
        assert list(objective) == expected, path.name


@pytest.mark.parametrize("sections, field", [
    ({"equalisation": {"max_rate_gap": 0.05}}, "equalisation.max_rate_gap"),
    ({"uncertainty": {"method": "robust", "scenarios": [
        {"name": "x", "scale": {"parameters.frequency_shock_cv": 1.5}}]}}, "uncertainty"),
    ({"pooling": {"scope": "optimise", "mode": "adjustment_fund"}, "adjustment_fund": {"contribution": [0.0]}},
     "objective.kind"),
])
def test_unsupported_combinations_are_refused_by_field(sections, field):
    for kind in GROUP_OBJECTIVES:
        with pytest.raises(InputError, match=field.replace(".", r"\.")):
            _spec(kind, **sections)


def _write_spec(path, objective: str) -> str:
    path.write_text('[pooling]\nscope = "optimise"\ncontiguous = true\n[solvency]\nmeasure = "cvar"\n'
                    'level = 0.99\nreserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n[objective]\n' + objective)
    return str(path)


def test_command_line_solve_evaluate_report_on_tongliao(tmp_path, capsys):
    """`pooling solve`, `evaluate --plan result.json` and `report` with the
    Atkinson kind: exit 0, the objective and group figures on the terminal
    and in the files, the evaluation's objective the solve's."""
    pytest.importorskip("matplotlib")
    from pooling.cli import main
    spec = _write_spec(tmp_path / "atkinson.toml", f'kind = "{EQUITY_WEIGHTED}"\naversion = 2.0\n')
    out = tmp_path / "out"
    instance = str(INSTANCES / "tongliao.json")
    assert main(["solve", instance, "--spec", spec, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"objective ({EQUITY_WEIGHTED}, aversion 2)" in printed and "worst-off group" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "optimal" and result["spec"]["objective"] == {"kind": EQUITY_WEIGHTED,
                                                                             "aversion": 2.0}
    assert main(["evaluate", instance, "--spec", spec, "--plan", str(out / "result.json"), "--out", str(out)]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["objective"] == result["objective"]
    assert evaluation["group_rates"] == result["group_rates"]
    assert main(["report", str(out / "result.json"), "--out", str(out / "report")]) == 0
    assert "worst-off group" in (out / "report" / "report.md").read_text()
    assert load_instance(instance).name in (out / "report" / "report.md").read_text()


@pytest.mark.parametrize("objective, args, words", [
    ('kind = "max_equity_weighted_rate"\naversion = -1\n', [], "objective.aversion"),
    ('kind = "max_min_group_rate"\naversion = 1\n', [], "objective.aversion"),
    ('kind = "max_min_group_rate"\n', ["--candidates", "generate"], "--candidates generate"),
    ('kind = "max_min_group_rate"\n', ["--enumeration-limit", "2"], "enumeration-limit"),
])
def test_command_line_refusals_exit_2_and_write_nothing(tmp_path, capsys, objective, args, words):
    from pooling.cli import main
    spec = _write_spec(tmp_path / "spec.toml", objective)
    out = tmp_path / "out"
    assert main(["solve", str(INSTANCES / "tongliao.json"), "--spec", spec, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (out / "result.json").exists()


def test_residents_only_instance_has_no_migrant_rate():
    """Groups without people are left out: a county with no migrants has only
    its residents' group, and the figures say None for migrants."""
    data = random_instance_dict(5, 3)
    for county in data["counties"]:
        county["migrant_share"] = 0.0
    instance = instance_from_dict(data)
    result = solve(instance, _spec(MAX_MIN_GROUP))
    assert result.group_rates["migrant_effective_rate"] is None
    assert result.group_rates["worst_group_rate"] == result.objective


def test_readme_equity_numbers():
    """README.md's figures for models/equity.toml on Xinyang pooled whole: the
    pool without contracts (what the mean rate chooses) and the plan solved."""
    from tests.factories import REPO
    instance = load_instance(INSTANCES / "xinyang.json")
    spec = load_spec(MODELS / "equity.toml")
    whole = [list(instance.ids)]
    without = evaluate(instance, spec, whole)
    result = solve(instance, spec)
    assert sorted(c for p in result.pools for c in p.pricing.contracts) == ["gushi-beijing", "xinyang-beijing"]
    shown = [f"{x:.4f}" for x in (without.pools[0].rate, without.objective, without.group_rates["worst_group_rate"],
                                  result.pools[0].rate, result.objective, result.group_rates["worst_group_rate"])]
    for plan, county in ((without, "固始县"), (result, "淮滨县")):   # Gushi's migrants, then Huaibin's
        groups = plan_groups(instance, [(c, p.rate) for p in plan.pools for c in p.pricing.care])
        worst = min(groups, key=lambda item: item[1])[0]
        assert (instance.county(worst.county).name, worst.who) == (county, MIGRANT)
    text = " ".join((REPO / "README.md").read_text().split())
    assert (f"(rate {shown[0]}; Atkinson mean {shown[1]}; the worst-off group, Gushi's migrants, at {shown[2]}), "
            f"this objective takes both Beijing contracts: rate {shown[3]}, Atkinson mean {shown[4]}, the worst-off "
            f"group (now Huaibin's migrants) at {shown[5]}.") in text


def test_a_sweep_over_the_kinds_runs_and_reuses_its_verified_cells(tmp_path, monkeypatch):
    """A sweep over objective.kind: each cell's objective is its kind's (the
    group kinds' equal a solve's), and a second run reuses every cell once its
    plan and objective verify (studies.sweep.restore_cell)."""
    from pooling.execution.tasks import ExecutionPlan
    from pooling.studies import sweep as sweep_module
    from tests.factories import tiny_instance_dict
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_instance_dict()))
    _write_spec(tmp_path / "spec.toml", 'kind = "max_mean_effective_rate"\n')
    path = tmp_path / "sweep.toml"
    path.write_text('instances = ["tiny.json"]\nspec = "spec.toml"\n[grid]\n'
                    f'"objective.kind" = ["max_mean_effective_rate", "{MAX_MIN_GROUP}", "{EQUITY_WEIGHTED}"]\n')
    sweep = sweep_module.load_sweep(path)
    rows = sweep_module.run_sweep(sweep, tmp_path / "out", ExecutionPlan())
    assert [r["status"] for r in rows] == ["optimal"] * 3
    instance = instance_from_dict(tiny_instance_dict())
    for row, kind in zip(rows[1:], (MAX_MIN_GROUP, EQUITY_WEIGHTED)):
        assert row["objective"] == solve(instance, _write_and_load(tmp_path, kind)).objective
    monkeypatch.setattr(sweep_module, "solve_cell", lambda *_: pytest.fail("a finished cell was solved again"))
    assert sweep_module.run_sweep(sweep, tmp_path / "out", ExecutionPlan()) == rows


def _write_and_load(tmp_path, kind: str):
    return load_spec(_write_spec(tmp_path / f"{kind}.toml", f'kind = "{kind}"\n'))


def test_the_largest_aversion_solves_and_a_larger_utility_is_refused(monkeypatch):
    """At MAX_AVERSION Xinyang solves (at 38 HiGHS met utilities beyond its
    infinite cost and the solve ended in an internal error); above it the spec
    is refused; a utility beyond the solver's infinity is an InputError naming
    objective.aversion, never a failed solve."""
    import pooling.optimise.equity as equity
    from pooling.data.spec import MAX_AVERSION

    xinyang = load_instance(INSTANCES / "xinyang.json")
    base = load_spec(MODELS / "equity.toml").to_dict()
    base["objective"]["aversion"] = MAX_AVERSION
    result = solve(xinyang, spec_from_dict(base))
    assert result.status == "optimal" and 0.0 < result.objective < 1.0
    base["objective"]["aversion"] = MAX_AVERSION + 1.0
    with pytest.raises(InputError, match="aversion"):
        spec_from_dict(base)
    base["objective"]["aversion"] = 3.0
    monkeypatch.setattr(equity, "SOLVER_INFINITE_COST", 1.0)
    with pytest.raises(InputError, match=r"objective.aversion 3 is too large for these rates"):
        solve(xinyang, spec_from_dict(base))
