"""Benefit menus (issue 25 item 3): a list in `[benefits]` makes each candidate
pool one column per schedule of the menu (the cross product), the optimiser
choosing one per pool; the plan records each pool's schedule and `evaluate`
takes it back."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pooling.cli import main
from pooling.data.benefits import MAX_MENU_SCHEDULES, BenefitMenu, BenefitSchedule
from pooling.data.instance import instance_from_dict
from pooling.data.spec import spec_from_dict
from pooling.errors import InputError
from pooling.optimise.result import Result
from pooling.optimise.solve import evaluate, solve
from tests.factories import random_instance_dict, spec_dict, tiny_instance_dict

AGREEMENT = 1e-9
"""The MILP (mip_rel_gap 1e-9) against optima computed otherwise."""

MENU = {"deductible": [0, 400, 1500], "cap": [20_000, "none"]}
"""Six schedules: three deductibles by two caps."""


def _spec(benefits, scope: str = "optimise", kind: str = "max_mean_effective_rate"):
    return spec_from_dict(spec_dict(scope, objective={"kind": kind},
                                    **({"benefits": benefits} if benefits is not None else {})))


def _members(spec):
    return [dataclasses.replace(spec, benefits=s) for s in spec.benefits.schedules]


def _comparable(result: Result) -> dict:
    """result.json without what differs between identical runs or spec files."""
    data = result.to_dict()
    for key in ("wall_seconds", "timings", "provenance"):
        data.pop(key)
    return data


def test_menus_read_as_the_cross_product_in_order():
    spec = _spec(MENU | {"level_factors": {"province": [0.8, 1.0]}})
    menu = spec.benefits
    assert isinstance(menu, BenefitMenu) and len(menu.schedules) == 12
    assert [(s.deductibles[0], s.cap, s.level_factors[2]) for s in menu.schedules[:4]] == \
        [(0.0, 20_000.0, 0.8), (0.0, 20_000.0, 1.0), (0.0, None, 0.8), (0.0, None, 1.0)]
    assert spec_from_dict(spec.to_dict()).benefits == menu           # the resolved spec reloads
    by_level = _spec({"deductible": {"county": [100, 400], "province": 2000}}).benefits
    assert [s.deductibles for s in by_level.schedules] == [(100.0, 0.0, 2000.0), (400.0, 0.0, 2000.0)]
    with pytest.raises(InputError, match=f"at most {MAX_MENU_SCHEDULES}"):
        _spec({"deductible": list(range(0, 900, 100)), "cap": [1000, 2000]})


def test_a_menu_of_one_value_is_the_fixed_schedule_bit_for_bit():
    instance = instance_from_dict(tiny_instance_dict())
    one = _spec({"deductible": [400], "cap": [20_000]})
    fixed = _spec({"deductible": 400, "cap": 20_000})
    assert isinstance(one.benefits, BenefitSchedule) and one.benefits == fixed.benefits
    assert one.to_dict() == fixed.to_dict()
    assert _comparable(solve(instance, one)) == _comparable(solve(instance, fixed))


@pytest.mark.parametrize("kind", ["max_mean_rate", "max_mean_effective_rate", "max_min_group_rate"])
def test_the_menu_optimum_is_at_least_every_fixed_members(kind):
    instance = instance_from_dict(random_instance_dict(7, 4))
    spec = _spec(MENU, kind=kind)
    best = solve(instance, spec)
    assert best.status == "optimal"
    members = [solve(instance, member).objective for member in _members(spec)]
    assert all(best.objective >= value - AGREEMENT for value in members)
    chosen = [p.pricing.benefits for p in best.pools]
    assert all(s in spec.benefits.schedules for s in chosen)


def test_one_pool_takes_the_best_schedule_of_the_menu():
    """Scope "prefecture" on one prefecture: one pool, so the menu's optimum is
    the best fixed member's, and its schedule that member's."""
    instance = instance_from_dict(random_instance_dict(7, 4))
    spec = _spec(MENU, scope="prefecture")
    best = solve(instance, spec)
    members = [solve(instance, member) for member in _members(spec)]
    top = max(range(len(members)), key=lambda k: members[k].objective)
    assert best.objective == pytest.approx(members[top].objective, abs=AGREEMENT)
    assert best.pools[0].pricing.benefits == spec.benefits.schedules[top]
    assert best.pools[0].rate == members[top].pools[0].rate


def test_independent_pools_each_take_their_own_best_schedule():
    """Scope "county": every county alone and nothing couples them, so the
    menu's optimum of the mean effective rate is sum_c N_c max_s v_c,s / N,
    v_c,s the county's effective rate alone under schedule s (brute force
    over the schedules, each county evaluated on its own). Here the counties
    choose differently (schedules 0, 0, 1, 1), so the menu beats every fixed
    schedule."""
    instance = instance_from_dict(random_instance_dict(7, 4))
    spec = _spec(MENU, scope="county")
    best = solve(instance, spec)
    alone = {cid: [evaluate(instance.restricted([cid]), member, [[cid]]).objective for member in _members(spec)]
             for cid in instance.ids}
    expected = sum(instance.county(cid).enrollees * max(values) for cid, values in alone.items()) \
        / instance.total_enrollees
    assert best.objective == pytest.approx(expected, abs=AGREEMENT)
    chosen = [spec.benefits.schedules.index(p.pricing.benefits) for p in best.pools]
    assert chosen == [max(range(len(alone[c])), key=alone[c].__getitem__) for c in sorted(instance.ids)]
    assert len(set(chosen)) > 1
    fixed = max(solve(instance, member).objective for member in _members(spec))
    assert best.objective > fixed + 1e-6


def test_the_chosen_schedules_survive_result_and_evaluate(tmp_path):
    instance = instance_from_dict(random_instance_dict(7, 4))
    spec = _spec(MENU)
    result = solve(instance, spec)
    data = json.loads(json.dumps(result.to_dict()))
    assert all("benefits" in p for p in data["pools"])
    assert Result.from_dict(data).to_dict() == data
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    again = evaluate(instance, spec, path)
    assert again.feasible and again.objective == result.objective
    assert [(p.pricing.counties, p.pricing.benefits, p.rate) for p in again.pools] == \
        [(p.pricing.counties, p.pricing.benefits, p.rate) for p in result.pools]
    frame = pytest.importorskip("pandas") and result.to_frame()
    assert list(frame["benefits"]) and all(text.startswith("deductible") for text in frame["benefits"])


def test_evaluate_under_a_menu_needs_each_pools_schedule_from_the_menu():
    instance = instance_from_dict(random_instance_dict(7, 4))
    spec = _spec(MENU)
    plan = [list(instance.ids)]
    with pytest.raises(InputError, match="must name each pool's schedule"):
        evaluate(instance, spec, plan)
    off_menu = {"deductible": 999}
    with pytest.raises(InputError, match="not on the spec's"):
        evaluate(instance, spec, plan, benefits=[{"pool": plan[0], "schedule": off_menu}])
    chosen = spec.benefits.schedules[3]
    found = evaluate(instance, spec, plan, benefits=[{"pool": plan[0], "schedule": chosen.to_dict()}])
    fixed = evaluate(instance, dataclasses.replace(spec, benefits=chosen), plan)
    assert found.objective == fixed.objective and found.pools[0].rate == fixed.pools[0].rate
    with pytest.raises(InputError, match="not a menu"):
        evaluate(instance, dataclasses.replace(spec, benefits=chosen), plan,
                 benefits=[{"pool": plan[0], "schedule": chosen.to_dict()}])


def _files(tmp_path, benefits: str):
    instance = tmp_path / "small.json"
    instance.write_text(json.dumps(random_instance_dict(7, 4)))
    spec = tmp_path / "menu.toml"
    spec.write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                    'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n[objective]\n'
                    'kind = "max_mean_effective_rate"\n[benefits]\n' + benefits)
    return str(instance), str(spec)


def test_command_line_solve_evaluate_report_with_a_menu(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    instance, spec = _files(tmp_path, 'deductible = [0, 400, 1500]\ncap = [20000, "none"]\n')
    out = tmp_path / "out"
    assert main(["solve", instance, "--spec", spec, "--out", str(out), "--quiet"]) == 0
    assert "benefits: deductible" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert main(["evaluate", instance, "--spec", spec, "--plan", str(out / "result.json"), "--out",
                 str(out)]) == 0
    assert json.loads((out / "evaluation.json").read_text())["objective"] == result["objective"]
    assert main(["report", str(out / "result.json"), "--out", str(out / "report")]) == 0
    assert "chosen from the spec's" in (out / "report" / "report.md").read_text()


@pytest.mark.parametrize("command", ["simulate", "compare", "explain", "plain plan"])
def test_commands_that_do_not_take_a_menu_exit_2_and_write_nothing(tmp_path, capsys, command):
    instance, spec = _files(tmp_path, "deductible = [0, 400]\n")
    out = tmp_path / "out"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"pools": [[c["id"]] for c in json.loads(open(instance).read())["counties"]]}))
    argv = {"simulate": ["simulate", instance, "--spec", spec, "--result", str(plan), "--out", str(out)],
            "compare": ["solve", instance, "--spec", spec, "--compare", "--out", str(out)],
            "explain": ["evaluate", instance, "--spec", spec, "--plan", str(plan), "--explain", "--out", str(out)],
            "plain plan": ["evaluate", instance, "--spec", spec, "--plan", str(plan), "--out", str(out)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "menu" in err and spec in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_a_menu_with_uncertainty_is_refused():
    with pytest.raises(InputError, match=r"benefits is a menu.*\[uncertainty\]"):
        spec_from_dict(spec_dict(benefits={"deductible": [0, 400]}, uncertainty={
            "method": "robust", "scenarios": [{"name": "x", "scale": {"parameters.frequency_shock_cv": 1.5}}]}))


def test_readme_menu_numbers():
    """README.md's figures for models/benefits_menu.toml on Tongliao pooled
    whole: the schedule chosen, and the 2012 entries' on their own."""
    from pooling.data.instance import load_instance
    from pooling.data.spec import load_spec
    from tests.factories import INSTANCES, MODELS, REPO
    instance = load_instance(INSTANCES / "tongliao.json")
    spec = load_spec(MODELS / "benefits_menu.toml")
    assert len(spec.benefits.schedules) == 8
    result = solve(instance, spec)
    chosen = result.pools[0].pricing.benefits
    assert (chosen.deductibles, chosen.cap, chosen.level_factors) == ((0.0,) * 3, None, (1.0,) * 3)
    henan = BenefitSchedule(deductibles=(400.0,) * 3, cap=60_000.0, level_factors=(1.0, 0.87, 0.81))
    assert henan in spec.benefits.schedules
    fixed = evaluate(instance, dataclasses.replace(spec, benefits=henan), [list(instance.ids)])
    assert fixed.objective < result.objective
    text = " ".join((REPO / "README.md").read_text().split())
    assert (f"(rate {result.pools[0].rate:.4f}, worst-off group {result.objective:.4f}); the 2012 entries "
            f"(deductible 400, a 60,000 cap, factors 0.87 and 0.81) would pay a rate of {fixed.pools[0].rate:.4f} "
            f"and leave that group at {fixed.objective:.4f}.") in text


def test_check_shows_the_best_rate_alone_and_sweep_refuses_a_menu(tmp_path, capsys):
    instance, spec = _files(tmp_path, "deductible = [0, 400]\n")
    assert main(["check", instance, "--spec", spec]) == 0
    assert "the best of its 2 [benefits] schedules" in capsys.readouterr().out
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'instances = ["{instance}"]\nspec = "{spec}"\n[grid]\n"solvency.level" = [0.99]\n')
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "out")]) == 2
    assert "`pooling sweep`" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_decomposed_menu_solve_resumes_from_its_verified_blocks(tmp_path):
    """Two prefectures, two blocks: each block's checkpoint names its pools'
    schedules, and --resume reuses both once they verify (re-priced under
    those schedules), giving the same result."""
    instance = instance_from_dict(random_instance_dict(5, 6, n_prefectures=2))
    spec = _spec(MENU)
    first = solve(instance, spec, checkpoint=tmp_path / "blocks")
    assert len(first.groups) == 2 and all(p.pricing.benefits is not None for p in first.pools)
    again = solve(instance, spec, checkpoint=tmp_path / "blocks", resume=True)
    assert again.timings["resumed_blocks"] == 2
    assert _comparable(again) == _comparable(first)


def test_contracts_and_welfare_are_figured_under_each_pools_schedule():
    """A pool's contract records and welfare records under a menu are those of
    the same plan under its chosen schedule fixed (they price care under it:
    result.pool_instance)."""
    from tests.test_contracts import _small
    instance = instance_from_dict(_small(41, 20_000.0, 0.7))
    spec = spec_from_dict(spec_dict("prefecture", objective={"kind": "max_min_group_rate"}, welfare={},
                                    benefits={"deductible": [400, 1500], "cap": [5000, 20_000]}))
    result = solve(instance, spec)
    chosen = result.pools[0].pricing.benefits
    assert chosen is not None and result.contracts and result.welfare
    fixed = solve(instance, dataclasses.replace(spec, benefits=chosen))
    assert result.contracts == fixed.contracts
    assert result.welfare == fixed.welfare
    assert not chosen.trivial   # else the plan's figures would not depend on the pool's schedule


def test_cap_none_alone_means_no_cap_as_in_a_menu():
    """`cap = "none"` was accepted as a menu's entry but refused alone."""
    alone = _spec({"deductible": 400, "cap": "none"}).benefits
    assert isinstance(alone, BenefitSchedule) and alone.cap is None
    assert alone == _spec({"deductible": 400}).benefits == _spec({"deductible": 400, "cap": ["none"]}).benefits
    assert _spec({"cap": "none"}).benefits == BenefitSchedule()   # pays what a spec without the table pays


@pytest.mark.parametrize(("benefits", "field", "value"), [
    ({"deductible": [0, 0, 400]}, "benefits.deductible[1]", "0"),
    ({"deductible": [400, {"county": 400, "prefecture": 400, "province": 400}]}, "benefits.deductible[1]", "400"),
    ({"cap": [60_000, "none", 60_000.0]}, "benefits.cap[2]", "60000"),
    ({"cap": ["none", "none"], "deductible": [0, 400]}, "benefits.cap[1]", '"none"'),
    ({"level_factors": {"prefecture": [0.8, 0.9, 0.8]}}, "benefits.level_factors.prefecture[2]", "0.8"),
    ({"level_factors": [{"province": 0.8}, {"county": 1.0, "province": 0.8}]}, "benefits.level_factors[1]",
     "{ county = 1, prefecture = 1, province = 0.8 }"),
])
def test_a_menu_entry_given_twice_is_refused_naming_field_and_value(benefits, field, value):
    """It collapsed silently into one schedule (a typo went unnoticed)."""
    with pytest.raises(InputError) as raised:
        _spec(benefits)
    message = str(raised.value)
    assert f"{field} repeats {value}," in message, message


def test_a_repeated_menu_entry_exits_2_on_the_command_line(tmp_path, capsys):
    instance, spec = _files(tmp_path, "deductible = [0, 0, 400]\n")
    out = tmp_path / "out"
    assert main(["solve", instance, "--spec", spec, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert spec in err and "benefits.deductible[1] repeats 0" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_evaluate_errors_about_a_plans_schedules_name_the_plan_file_pool_and_field(tmp_path, capsys):
    """Before, these said "evaluate: benefits[0]..." or named only the spec."""
    instance, spec = _files(tmp_path, 'deductible = [0, 400, 1500]\ncap = [20000, "none"]\n')
    ids = [c["id"] for c in json.loads(open(instance).read())["counties"]]
    members = f"[{', '.join(ids)}]"
    out = tmp_path / "out"

    def refused(plan: dict) -> str:
        path = tmp_path / "plan.json"
        path.write_text(json.dumps(plan))
        assert main(["evaluate", instance, "--spec", spec, "--plan", str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and "Traceback" not in err, err
        return err
    assert f"benefits[0].schedule (pool {members}) is not on the spec's [benefits] menu" in refused(
        {"pools": [ids], "benefits": [{"pool": ids, "schedule": {"deductible": 999}}]})
    assert "benefits[0].schedule.deductible must be in" in refused(
        {"pools": [ids], "benefits": [{"pool": ids, "schedule": {"deductible": -5}}]})
    assert f"pool {members} names no benefit schedule" in refused({"pools": [ids]})
    assert main(["solve", instance, "--spec", spec, "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    result["pools"][0]["benefits"]["deductible"] = -5
    assert "pools[0].benefits.deductible must be in" in refused(result)
    assert not (out / "evaluation.json").exists()
