"""`pooling calibrate` (issue 24): estimates cover a known truth, bad tables are
refused by table, row and column with nothing written, and the outputs are
instances and spec fragments the rest of the package reads."""

from __future__ import annotations

import functools
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.calibration import estimates as est
from pooling.calibration.calibrate import calibrate, shock_parameters
from pooling.calibration.severity_fit import fit_severity
from pooling.calibration.synthetic import simulate_panel
from pooling.calibration.tables import read_panel
from pooling.cli import main
from pooling.data.generate import generate_instance
from pooling.data.instance import instance_from_dict
from pooling.errors import InputError
from tests.tolerances import ROUNDING

ROOT = Path(__file__).resolve().parent.parent
COVERAGE_SEEDS = tuple(range(101, 121))
"""20 independent panels (the issue's "done when"), fixed so the test is deterministic."""
MIN_COVERAGE = 0.80
"""The issue's bar: 95% intervals cover the truth in at least 80% of 20 panels
(at a true 95%, 16 or more of 20 happen with probability 0.997)."""


@functools.cache
def _truth(counties: int, prefectures: int):
    return instance_from_dict(generate_instance(counties, prefectures, seed=7), source="truth")


def _estimate(counties: int, prefectures: int, years: int, seed: int):
    instance = _truth(counties, prefectures)
    panel_rows = simulate_panel(instance, years, seed, claims_per_year=0)
    panel = read_panel(panel_rows["funds"], panel_rows["history"])
    u, v = est.log_rates(panel)
    groups = est.prefecture_groups(panel)
    trend = est.fit_trend(u.mean(axis=0), panel.years)
    components = est.shock_components(u, v, groups)
    rates = est.credible_rates(u, v, groups, trend, components, panel.years, instance.year)
    return panel_rows["truth"], trend, components, rates


def _covers(interval, value) -> bool:
    return interval.low <= value <= interval.high


def test_intervals_cover_the_truth_in_20_synthetic_panels():
    """60 counties in 6 prefectures over 10 years: trend, the three shock
    variances and the admission rates are covered at roughly their nominal rate."""
    hits = {"trend": 0, "national": 0, "prefecture": 0, "county": 0}
    rate_hits = []
    for seed in COVERAGE_SEEDS:
        truth, trend, components, rates = _estimate(60, 6, 10, seed)
        hits["trend"] += _covers(trend.growth, truth["trend"]["admissions"])
        for part in ("national", "prefecture", "county"):
            hits[part] += _covers(getattr(components, part), truth["shock_variance"][part])
        rate_hits += [_covers(r.admission_rate, truth["counties"][cid]["admission_rate"])
                      for r, cid in zip(rates, truth["counties"])]
    shares = {k: v / len(COVERAGE_SEEDS) for k, v in hits.items()}
    assert all(share >= MIN_COVERAGE for share in shares.values()), shares
    assert 0.85 <= float(np.mean(rate_hits)) <= 1.0, np.mean(rate_hits)


def test_errors_shrink_as_years_and_counties_grow():
    """Mean absolute error of the trend and of the county variance over the
    same seeds: smaller with 60 counties over 10 years than 20 over 5."""
    def errors(counties, prefectures, years):
        trend_error, county_error = [], []
        for seed in COVERAGE_SEEDS[:8]:
            truth, trend, components, _ = _estimate(counties, prefectures, years, seed)
            trend_error.append(abs(trend.growth.estimate - truth["trend"]["admissions"]))
            county_error.append(abs(components.county.estimate - truth["shock_variance"]["county"]))
        return float(np.mean(trend_error)), float(np.mean(county_error))
    small, large = errors(20, 4, 5), errors(60, 6, 10)
    assert large[0] < small[0] / 2 and large[1] < small[1] / 2, (small, large)


def test_intervals_narrow_with_more_years():
    """A county with 3 years of data has a wider admission-rate interval than with 12."""
    def width(years):
        _, _, _, rates = _estimate(20, 4, years, 5)
        return np.mean([math.log(r.admission_rate.high / r.admission_rate.low) for r in rates])
    assert width(3) > 1.1 * width(12)   # measured 0.109 vs 0.088: the 12-year trend projects 6.5 years


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 0.02), st.floats(0.0, 0.02), st.floats(0.0, 0.02))
def test_shock_mapping_keeps_each_part_variance(national, prefecture, county):
    """(w x cv)^2 of the written parameters is the estimated variance of each
    part, whatever the convention (rounding to 6 digits aside)."""
    parts = est.Components(*(est.Interval(x, x, x) for x in (national, prefecture, county)), {})
    params, _ = shock_parameters(parts, None)
    regional = params["regional_shocks"]
    w_national = 1.0 - regional["prefecture"]["weight"] - regional["county"]["weight"]
    got = {"national": (w_national * params["frequency_shock_cv"]) ** 2,
           "prefecture": (regional["prefecture"]["weight"] * regional["prefecture"]["cv"]) ** 2,
           "county": (regional["county"]["weight"] * regional["county"]["cv"]) ** 2}
    for name, value in zip(got, (national, prefecture, county)):
        assert got[name] == pytest.approx(value, rel=1e-4, abs=ROUNDING), (name, got, params)


def test_severity_family_chosen_by_likelihood():
    rng = np.random.default_rng(3)
    lognormal = rng.lognormal(0.0, 0.8, 4000)
    assert fit_severity(lognormal / lognormal.mean()).family == "lognormal"
    threshold = math.exp(0.6 * 1.2)                    # a lognormal(0, 0.6) body cut there, Pareto index 3 above
    body = rng.lognormal(0.0, 0.6, 10_000)
    body = body[body <= threshold][:3800]
    tail = threshold * (1.0 - rng.random(200)) ** (-1.0 / 3.0)
    fit = fit_severity(np.concatenate([body, tail]))
    assert fit.family == "spliced"
    assert fit.intervals["tail_index"].low <= 3.0 <= fit.intervals["tail_index"].high


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    assert main(["generate", "--counties", "24", "--prefectures", "4", "--seed", "2", "--history", "6",
                 "--out", str(folder)]) == 0
    return folder


def test_generate_history_is_deterministic(synthetic, tmp_path):
    assert main(["generate", "--counties", "24", "--prefectures", "4", "--seed", "2", "--history", "6",
                 "--out", str(tmp_path)]) == 0
    for name in ("funds.csv", "history.csv", "claims.csv", "truth.json", "instance.json"):
        assert (tmp_path / name).read_bytes() == (synthetic / name).read_bytes(), name


def test_calibrate_writes_an_instance_every_command_reads(synthetic, tmp_path, capsys):
    out = tmp_path / "cal"
    code = main(["calibrate", str(synthetic / "funds.csv"), str(synthetic / "history.csv"), "--claims",
                 str(synthetic / "claims.csv"), "--base", str(synthetic / "instance.json"), "--uncertainty",
                 "predictive", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    instance = pooling.load_instance(out / "instance.json")
    base = pooling.load_instance(synthetic / "instance.json")
    assert instance.year == base.year and instance.ids == base.ids
    assert all(c.current_rate == 0.5 for c in instance.counties)
    fields = instance.provenance["calibration"]["fields"]
    assert fields["counties.*.admission_rate"]["source"] == "D"
    assert fields["counties.*.admission_rate"]["from"].endswith("history.csv")
    record = pooling.load_instance(out / "instance.json").provenance["calibration"]["estimates"]
    assert set(record["trend"]) == {"admissions", "cost"}
    assert set(record["counties"]) == set(instance.ids)
    spec = tomllib.loads((ROOT / "models" / "default.toml").read_text())
    spec.update(tomllib.loads((out / "uncertainty.toml").read_text()))
    uncertainty = pooling.spec_from_dict(spec).uncertainty
    assert uncertainty.method == "predictive" and len(uncertainty.scenarios) == 2
    from pooling.data.uncertainty import scenario_instances
    assert len(scenario_instances(instance, uncertainty)) == 3   # each scenario a valid instance


def test_calibrate_api_takes_dataframes_and_has_defaults_without_base():
    pandas = pytest.importorskip("pandas")
    rows = simulate_panel(_truth(12, 3), 5, 1)
    result = pooling.calibrate(pandas.DataFrame(rows["funds"]), pandas.DataFrame(rows["history"]),
                               claims=pandas.DataFrame(rows["claims"]))
    instance = instance_from_dict(result.instance)
    assert instance.year == rows["truth"]["years"][-1] + 1
    by_id = {c.id: c for c in instance.counties}
    assert all(set(by_id[c].adjacent) == {d.id for d in instance.counties if d.prefecture == by_id[c].prefecture}
               - {c} for c in by_id)


GOOD_FUNDS = ("id,name,prefecture,province,enrollees,contribution_per_capita,reserves,admin_per_capita,"
              "outpatient_per_capita\nA,a,P,Q,1000,300,1000,2,50\nB,b,P,Q,2000,300,1000,2,50\n")


def _history(rows):
    return "id,year,enrollees,admissions,inpatient_cost\n" + "".join(f"{r}\n" for r in rows)


GOOD_HISTORY = [f"{c},{y},1000,{100 + y - 2000},{3000 * (100 + y - 2000)}" for c in "AB" for y in (2001, 2002, 2003)]


@pytest.mark.parametrize(("table", "content", "expected"), [
    ("funds", GOOD_FUNDS.replace(",reserves", ",reserve"), "column reserves is missing"),
    ("history", _history(GOOD_HISTORY).replace("A,2002,1000,102", "A,2002,1000,-102"),
     "row 2 (line 3), column admissions: must be a count >= 0"),
    ("history", _history(GOOD_HISTORY + ["B,2003,1000,5,500"]), "row 7 (line 8), column year: county B has year "
                                                                "2003 twice"),
    ("history", _history(GOOD_HISTORY).replace("A,2002,1000", "A,2002,0"),
     "row 2 (line 3), column enrollees: a year with no enrollees"),
    ("history", _history(GOOD_HISTORY + ["Z,2001,1000,5,500"]), "row 7 (line 8), column id: county Z is not in"),
    ("history", _history(GOOD_HISTORY).replace("A,2003,1000,103", "A,2003,1000,many"),
     "row 3 (line 4), column admissions: must be a number, got text 'many'"),
    ("funds", GOOD_FUNDS.replace("B,b,P,Q,2000", "B,b,P,Q,lots"), "row 2 (line 3), column enrollees: must be a "
                                                                  "number"),
    ("history", _history(GOOD_HISTORY[:-1]), "county B has no row for year 2003"),
    ("claims", "id,year,cost\nA,2001,100\nA,2001,-4\n", "row 2 (line 3), column cost: must be >= 0"),
])
def test_bad_tables_exit_2_naming_file_row_and_column(tmp_path, capsys, table, content, expected):
    files = {"funds": GOOD_FUNDS, "history": _history(GOOD_HISTORY), "claims": "id,year,cost\nA,2001,100\n"}
    files[table] = content
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text)
    out = tmp_path / "out"
    code = main(["calibrate", str(tmp_path / "funds.csv"), str(tmp_path / "history.csv"), "--claims",
                 str(tmp_path / "claims.csv"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{table}.csv: " in err and expected in err, err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_good_small_tables_calibrate(tmp_path):
    (tmp_path / "funds.csv").write_text(GOOD_FUNDS)
    (tmp_path / "history.csv").write_text(_history(GOOD_HISTORY))
    result = calibrate(tmp_path / "funds.csv", tmp_path / "history.csv")
    assert result.record["severity"]["source"].startswith("history")
    instance_from_dict(result.instance)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow is installed")
    except ImportError:
        pass
    (tmp_path / "funds.parquet").write_bytes(b"PAR1")
    (tmp_path / "history.csv").write_text(_history(GOOD_HISTORY))
    with pytest.raises(InputError, match=r"pip install 'pooling\[report\]'"):
        calibrate(tmp_path / "funds.parquet", tmp_path / "history.csv")


def test_current_rate_is_an_optional_county_field_in_0_1():
    data = generate_instance(3, 1, seed=0)
    data["counties"][0]["current_rate"] = 0.52
    instance = instance_from_dict(data)
    assert instance.counties[0].current_rate == 0.52 and instance.counties[1].current_rate is None
    from pooling.data.instance_dict import instance_to_dict
    assert instance_from_dict(instance_to_dict(instance)).counties == instance.counties
    data["counties"][0]["current_rate"] = 1.2
    with pytest.raises(InputError, match="current_rate must be"):
        instance_from_dict(data)


def test_status_quo_as_run_deficit_probability_and_surplus():
    """A county run at the rate whose claims reach its income exactly at VaR_0.99
    is in deficit with probability 0.01; at rate 0 never, with surplus R - K;
    above r*_c it is flagged; solve --compare lists the baseline."""
    from pooling.data.instance_dict import instance_to_dict
    from pooling.economics.pools import PoolPricer
    from pooling.economics.status_quo import as_run
    from pooling.optimise.baselines import status_quo_as_run
    spec = pooling.load_spec(ROOT / "models" / "default.toml")
    plain = instance_from_dict(generate_instance(3, 1, seed=1))
    pricer = PoolPricer(plain, spec)
    first = pricer.price([plain.ids[0]])
    var_rate = (first.revenue - first.fixed_costs) / first.var
    data = instance_to_dict(plain)
    for county, rate in zip(data["counties"], (var_rate, 0.0, 1.0)):
        county["current_rate"] = rate
    instance = instance_from_dict(data)
    rows = {r.county: r for r in as_run(instance, spec)}
    a, b, c = (rows[i] for i in instance.ids)
    assert a.deficit_probability == pytest.approx(1.0 - spec.solvency.level, abs=2e-3)
    assert b.deficit_probability == 0.0
    assert b.expected_surplus == pytest.approx(pricer.price([instance.ids[1]]).revenue
                                               - pricer.price([instance.ids[1]]).fixed_costs)
    assert not c.solvent and c.deficit_probability > 0.5
    outcome = status_quo_as_run(instance, spec, PoolPricer(instance, spec))
    assert outcome.name == "status_quo_as_run" and outcome.as_run["insolvent_share"] == pytest.approx(1 / 3)
    assert status_quo_as_run(plain, spec, pricer) is None


def test_evaluate_explain_reports_the_status_quo_as_run():
    from pooling.data.instance_dict import instance_to_dict
    spec = pooling.load_spec(ROOT / "models" / "default.toml")
    data = instance_to_dict(instance_from_dict(generate_instance(3, 1, seed=1)))
    for county in data["counties"]:
        county["current_rate"] = 0.5
    instance = instance_from_dict(data)
    explained = pooling.evaluate(instance, spec, [list(instance.ids)], explain=True).to_dict()["explain"]
    as_run = explained["status_quo_as_run"]
    assert as_run["mean_rate"] == pytest.approx(0.5)
    assert as_run["gain_of_plan"] == pytest.approx(explained["plan"] - as_run["objective"])
    assert len(as_run["counties"]) == 3
