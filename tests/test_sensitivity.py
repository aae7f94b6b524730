"""`evaluate --sensitivity [--resolve]` (studies.sensitivity): one-at-a-time
cases equal separate evaluations of scaled files, shock cvs move rates one way,
skipped cases say why, bad argument combinations exit 2."""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooling.cli import main
from pooling.data.instance import instance_from_dict, load_instance
from pooling.data.spec import spec_from_dict
from pooling.errors import InputError
from pooling.optimise.result import Evaluation
from pooling.optimise.solve import evaluate
from pooling.risk.law_checks import RESOLUTION_TOLERANCE
from pooling.studies.sensitivity import CARE_SPLIT, SHOCK_PATHS, sensitivity
from tests.factories import INSTANCES, MODELS, random_instance_dict, spec_dict

TONGLIAO = INSTANCES / "tongliao.json"
DEFAULT = MODELS / "default.toml"
TWO_POOLS = [["150502", "150521", "150522", "150523"], ["150524", "150525", "150526", "150581"]]


def _scaled_by_hand(data: dict, parameter: str, scale: float) -> dict:
    """The instance file a user would write for one case (independently of
    studies.sensitivity: the fields edited directly)."""
    data = copy.deepcopy(data)
    params = data["parameters"]
    if parameter == "parameters.frequency_shock_cv":
        params["frequency_shock_cv"] *= scale
    elif parameter.startswith("parameters.regional_shocks."):
        params["regional_shocks"][parameter.split(".")[2]]["cv"] *= scale
    elif parameter == "counties.*.severity.cv":
        for county in data["counties"]:
            county["severity"]["cv"] *= scale
    elif parameter == "counties.*.migrant_share":
        for county in data["counties"]:
            county["migrant_share"] *= scale
    elif parameter == "parameters.out_of_network_tiers.other_province.factor":
        params["out_of_network_tiers"]["other_province"]["factor"] *= scale
    elif parameter == CARE_SPLIT:   # away weights x s, home = 1 - s x away
        for county in data["counties"]:
            care = county.get("resident_care") or {}
            away = math.fsum(w for k, w in care.items() if k != county["id"])
            for key in care:
                if key != county["id"]:
                    care[key] *= scale
            if care:
                care[county["id"]] = max(0.0, 1.0 - math.fsum(w for k, w in care.items() if k != county["id"]))
            assert away * scale <= 1.0
    else:
        raise AssertionError(parameter)
    return data


CHECKED = [*SHOCK_PATHS, "counties.*.severity.cv", "counties.*.migrant_share",
           "parameters.out_of_network_tiers.other_province.factor", CARE_SPLIT]


def test_sensitivity_values_equal_separate_evaluations_of_scaled_files(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"pools": TWO_POOLS}))
    out = tmp_path / "out"
    assert main(["evaluate", str(TONGLIAO), "--spec", str(DEFAULT), "--plan", str(plan), "--sensitivity",
                 "--out", str(out)]) in (0, 3)
    written = json.loads((out / "evaluation.json").read_text())
    cases = {(c["parameter"], c["scale"]): c for c in written["sensitivity"]}
    assert {p for p, _ in cases} >= set(CHECKED)
    raw = json.loads(TONGLIAO.read_text())
    for parameter in CHECKED:
        for scale in (0.5, 1.5):
            case = cases[(parameter, scale)]
            path = tmp_path / f"{parameter.replace('*', 'all').replace(':', '-')}-{scale}.json"
            path.write_text(json.dumps(_scaled_by_hand(raw, parameter, scale)))
            alone = evaluate(load_instance(path), spec_from_file(), TWO_POOLS)
            assert case["objective"] == alone.objective, (parameter, scale)
            assert case["feasible"] == alone.feasible
            assert [p["rate"] for p in case["pools"]] == [p.pricing.max_rate for p in alone.pools]
            assert [p["plan_rate"] for p in case["pools"]] == [p.rate for p in alone.pools]
            assert [p["counties"] for p in case["pools"]] == [list(p.pricing.counties) for p in alone.pools]
    # every case moved the answer away from the plan as given (a case applied to nothing would not)
    moved = [c for c in written["sensitivity"] if c["parameter"] in CHECKED]
    assert all(c["pools"][0]["rate"] != written["pools"][0]["max_rate"] or
               c["pools"][1]["rate"] != written["pools"][1]["max_rate"] for c in moved)
    assert Evaluation.from_dict(written).to_dict() == written


def spec_from_file():
    from pooling.data.spec import load_spec
    return load_spec(DEFAULT)


def test_out_of_range_absent_and_replaced_parameters_are_skipped_with_their_reason():
    data = json.loads(TONGLIAO.read_text())
    data["parameters"]["frequency_shock_cv"] = 0.5          # at its limit: x1.5 is out of range
    data["parameters"]["regional_shocks"]["county"]["cv"] = 0.0
    instance = instance_from_dict(data, source="edge.json")
    spec = spec_from_dict(spec_dict(network={"settlement": "2012"}), source="s.toml")
    found = sensitivity(instance, spec, [list(instance.ids)])
    skipped = {(s["parameter"], s["scale"]): s["reason"] for s in found.summary["skipped"]}
    assert "must be in" in skipped[("parameters.frequency_shock_cv", 1.5)]
    assert ("parameters.frequency_shock_cv", 0.5) not in skipped
    assert "0 in the instance" in skipped[("parameters.regional_shocks.county.cv", 0.5)]
    assert 'settlement "2012"' in skipped[("parameters.out_of_network_tiers", 1.5)]
    done = {(c["parameter"], c["scale"]) for c in found.cases}
    assert not done & set(skipped)
    assert ("parameters.frequency_shock_cv", 0.5) in done


def test_care_split_that_would_exceed_one_is_skipped_and_the_rest_keep_summing_to_one():
    data = json.loads(TONGLIAO.read_text())
    first = data["counties"][0]
    first["resident_care"] = {first["id"]: 0.2, "city:150500": 0.8}
    instance = instance_from_dict(data, source="far.json")
    found = sensitivity(instance, spec_from_file(), [list(instance.ids)])
    skipped = {(s["parameter"], s["scale"]): s["reason"] for s in found.summary["skipped"]}
    assert f'county "{first["id"]}"' in skipped[(CARE_SPLIT, 1.5)]
    assert (CARE_SPLIT, 0.5) in {(c["parameter"], c["scale"]) for c in found.cases}


def _shock_instance(seed: int, n: int, national: float, prefecture: float, county: float):
    data = random_instance_dict(seed, n)
    data["parameters"]["frequency_shock_cv"] = national
    data["parameters"]["regional_shocks"] = {"prefecture": {"weight": 0.3, "cv": prefecture},
                                             "county": {"weight": 0.3, "cv": county}}
    return instance_from_dict(data, source=f"random-{seed}.json")


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), which=st.sampled_from(SHOCK_PATHS),
       cvs=st.lists(st.one_of(st.just(0.0), st.floats(1e-4, 0.5)), min_size=5, max_size=5))
def test_raising_a_shock_cv_never_raises_a_pools_rate(seed, n, which, cvs):
    """A larger gamma cv (same mean) is larger in convex order, so is the mixed
    aggregate, and CVaR respects convex order: r* = B / CVaR cannot rise.
    (VaR need not: the law is tested under CVaR, the default measure.) Each
    rate may sit RESOLUTION_TOLERANCE (the engine's relative VaR/CVaR error
    target) from its exact value."""
    national, prefecture, county, low, high = cvs
    low, high = sorted((low, high))
    instance = _shock_instance(seed, n, national, prefecture, county)
    uncertainty = {"method": "robust", "scenarios": [{"name": "low", "set": {which: low}},
                                                     {"name": "high", "set": {which: high}}]}
    spec = spec_from_dict(spec_dict() | {"uncertainty": uncertainty}, source="u.toml")
    plan = [list(instance.ids)] if n == 1 else [list(instance.ids[:1]), list(instance.ids[1:])]
    found = sensitivity(instance, spec, plan)
    assert [c["parameter"] for c in found.cases] == ["low", "high"]
    for before, after in zip(found.cases[0]["pools"], found.cases[1]["pools"]):
        slack = RESOLUTION_TOLERANCE * abs(before["rate"])
        assert after["rate"] <= before["rate"] + slack, (which, low, high, before, after)


def test_resolve_reports_the_optimum_and_a_regret_of_zero_for_the_optimal_plan():
    # seed 8 at these contributions: pooled whole, but split at frequency_shock_cv x1.5
    instance = instance_from_dict(random_instance_dict(8, 3, contribution_range=(300.0, 380.0)), source="r.json")
    spec = spec_from_dict(spec_dict(), source="s.toml")
    from pooling.optimise.solve import solve
    best = [list(p.pricing.counties) for p in solve(instance, spec).pools]
    found = sensitivity(instance, spec, best, resolve=True)
    assert found.summary["base_optimum"]["pools"] == best
    for case in found.cases:
        assert case["optimum"]["status"] == "optimal"
        if case["feasible"]:
            assert case["regret"] >= -1e-7
        if case["plan_is_optimal"]:
            assert abs(case["regret"]) <= 1e-7
        assert case["optimum_changes"] == (
            {frozenset(p) for p in case["optimum"]["pools"]} != {frozenset(p) for p in best})
        if not case["plan_is_optimal"]:
            assert case["regret"] > 0
    assert any(case["optimum_changes"] for case in found.cases)
    worse = sensitivity(instance, spec, [[c] for c in instance.ids], resolve=True)
    assert all(c["regret"] > 0 and not c["plan_is_optimal"] for c in worse.cases)


def test_spec_scenarios_the_instance_cannot_take_are_input_errors_naming_them():
    instance = load_instance(TONGLIAO)
    uncertainty = {"method": "robust", "scenarios": [{"name": "wild", "scale": {"parameters.frequency_shock_cv": 20}}]}
    spec = spec_from_dict(spec_dict() | {"uncertainty": uncertainty}, source="u.toml")
    with pytest.raises(InputError, match='scenario "wild"'):
        sensitivity(instance, spec, [list(instance.ids)])


@pytest.mark.parametrize("extra, message", [
    (["--resolve"], "--resolve re-solves each sensitivity case: it needs --sensitivity"),
])
def test_bad_combinations_exit_2_before_any_work(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code = main(["evaluate", str(TONGLIAO), "--spec", str(DEFAULT), "--plan",
                 str(INSTANCES.parent / "docs" / "examples" / "status_quo_plan.json"), "--out", str(out), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "evaluation.json").exists()


def test_a_bad_scenario_in_the_spec_exits_2_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "u.toml"
    spec.write_text(DEFAULT.read_text() + '\n[uncertainty]\nmethod = "robust"\n[[uncertainty.scenarios]]\n'
                    'name = "typo"\nscale = { "parameters.frequency_shock" = 1.5 }\n')
    out = tmp_path / "out"
    code = main(["evaluate", str(TONGLIAO), "--spec", str(spec), "--plan",
                 str(INSTANCES.parent / "docs" / "examples" / "status_quo_plan.json"), "--sensitivity",
                 "--out", str(out)])
    assert code == 2
    assert not (out / "evaluation.json").exists()
    assert "u.toml" in capsys.readouterr().err


def test_the_report_draws_the_tornado_and_shows_promised_against_true_escaped(tmp_path):
    pytest.importorskip("matplotlib")
    from pooling.outputs.files import write_json_atomic
    data = random_instance_dict(8, 3, contribution_range=(300.0, 380.0))
    data["parameters"]["frequency_shock_cv"] = 0.05
    path = tmp_path / "small.json"
    path.write_text(json.dumps(data))
    spec_path = tmp_path / "s.toml"
    spec_path.write_text('[pooling]\nscope = "optimise"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                         'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n[objective]\nkind = "max_mean_rate"\n')
    out = tmp_path / "out"
    assert main(["solve", str(path), "--spec", str(spec_path), "--out", str(out), "--quiet"]) == 0
    instance = load_instance(path)
    plain = spec_from_file_at(spec_path)
    uncertainty = {"method": "robust", "scenarios": [
        {"name": "<b>shocks</b> x2", "scale": {"parameters.frequency_shock_cv": 2.0}},
        {"name": "calm", "set": {"parameters.frequency_shock_cv": 0.0}}]}
    spec = spec_from_dict(plain.to_dict() | {"uncertainty": uncertainty}, source="u.toml")
    plan = [list(instance.ids)]
    evaluation = sensitivity(instance, spec, plan, resolve=True).attach(evaluate(instance, plain, plan))
    write_json_atomic(out / "evaluation.json", evaluation.to_dict())
    assert main(["simulate", str(path), "--spec", str(spec_path), "--result", str(out / "result.json"),
                 "--years", "1", "--scenarios", "500", "--truth", "parameters.frequency_shock_cv=x2",
                 "--out", str(out)]) in (0, 3)
    assert main(["report", str(out / "result.json"), "--stress", str(out / "stress.json"),
                 "--evaluation", str(out / "evaluation.json")]) == 0
    page = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    assert (out / "report-sensitivity.png").exists()
    assert "&lt;b&gt;shocks&lt;/b&gt; x2" in page and "<b>shocks</b>" not in page
    assert "Sensitivity (tornado)" in markdown
    assert "parameters.frequency_shock_cv=x2" in markdown and "promised" in markdown


def spec_from_file_at(path):
    from pooling.data.spec import load_spec
    return load_spec(path)


README_FIGURES = {("counties.*.resident_care:away_share", 0.5): 0.5889,
                  ("counties.*.resident_care:away_share", 1.5): 0.4927,
                  ("parameters.regional_shocks.prefecture.cv", 0.5): 0.5446,
                  ("parameters.regional_shocks.prefecture.cv", 1.5): 0.5250}
"""README "Sensitivity and mis-specification": Tongliao pooled whole, default spec (4 decimals)."""


def test_the_readme_figures_and_their_order():
    instance = load_instance(TONGLIAO)
    spec = spec_from_file()
    base = evaluate(instance, spec, [list(instance.ids)])
    found = sensitivity(instance, spec, [list(instance.ids)])
    assert round(base.objective, 4) == 0.5364
    cases = {(c["parameter"], c["scale"]): c["objective"] for c in found.cases}
    assert {k: round(cases[k], 4) for k in README_FIGURES} == README_FIGURES
    from pooling.outputs.summaries import sensitivity_groups
    order = [p for p, _, _ in sensitivity_groups(list(found.cases), base.objective)]
    assert order[:2] == ["counties.*.resident_care:away_share", "parameters.regional_shocks.prefecture.cv"]
    from tests.factories import REPO
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    away = [README_FIGURES[("counties.*.resident_care:away_share", k)] for k in (0.5, 1.5)]
    shock = [README_FIGURES[("parameters.regional_shocks.prefecture.cv", k)] for k in (0.5, 1.5)]
    assert (f"moves most with the care split (mean effective rate {base.objective:.4f} as given; {away[0]:.4f} with "
            f"half as much care bought away from home, {away[1]:.4f} with half as much again) and then the "
            f"prefecture shock cv ({shock[0]:.4f} and {shock[1]:.4f}).") in text
