"""Figures quoted in prose are recomputed here and compared with the text.

- instances/README.md's generated block (docs/case_studies.py `instance_figures`:
  the named counties' rates alone, ranks, pools, optima) is current;
- its file table, price table and Gushi's quoted destinations match the
  committed files, and "same county, same data" holds on them;
- the national calibration figures it quotes match what the builders compute
  from the census table (skipped without ../shared/);
- README.md's Xinyang explanation figures match `pooling evaluate --explain`.

Only small instances are solved (Xinyang, Binzhou: seconds each).
"""

from __future__ import annotations

import json
import math
import re
import sys
from functools import cache

import pytest

import pooling
from pooling.economics.pools import PoolPricer
from tests.factories import INSTANCES, MODELS, REPO, SHARED

sys.path.insert(0, str(REPO / "docs"))
sys.path.insert(0, str(INSTANCES))

import case_studies

README = INSTANCES / "README.md"
FILES = ["tongliao", "xinyang", "binzhou", "henan", "china"]
CENSUS = SHARED / "data" / "china_counties_census.csv"


@cache
def _file(name: str) -> dict:
    return json.loads((INSTANCES / f"{name}.json").read_text("utf-8"))


def _readme() -> str:
    return README.read_text("utf-8")


def test_generated_figures_of_the_instances_readme_are_current():
    written = case_studies.written_figures(_readme())
    assert written, f"{README}: no generated figures between the markers"
    assert case_studies.instance_figures() == written, (
        "instances/README.md's figures are stale: run python docs/case_studies.py")


def _size(n_bytes: int) -> str:
    if n_bytes < 100_000:
        return f"{round(n_bytes / 1000)} kB"
    mb = n_bytes / 1e6
    return f"{mb:.{max(0, 1 - math.floor(math.log10(mb)))}f} MB"


@pytest.mark.parametrize("name", FILES)
def test_file_table_row_matches_the_file(name):
    data = _file(name)
    counties = data["counties"]
    row = next(line for line in _readme().splitlines() if line.startswith(f"| {name}.json"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{len(counties):,}"
    assert cells[2].split(" ")[0] == f"{len({c['prefecture'] for c in counties}):,}"
    assert cells[3] == f"{sum(c['enrollees'] for c in counties):,}"
    assert cells[4] == f"{len(data['places']):,}"
    assert cells[5] == _size((INSTANCES / f"{name}.json").stat().st_size)


def test_price_table_matches_the_national_file():
    china = _file("china")
    beijing = {"110000"}
    mean = {}
    for place in china["places"]:
        mean[(place["level"], place["province"] in beijing)] = place["severity"]["mean"]
    for county in china["counties"]:
        mean[("county", county["province"] in beijing)] = county["severity"]["mean"]
    text = _readme()
    for level, label in (("county", "county's own hospitals, `county:<code>`"), ("prefecture", "`city:<p>`"),
                         ("province", "`province:<v>`")):
        assert f"| {label} | {mean[(level, False)]:,.2f} | {mean[(level, True)]:,.2f} |" in text, level
    outside = china["parameters"]["outside_severity"]["mean"]
    assert outside == mean[("prefecture", False)]
    assert f"prefecture-level price, {outside:,.2f}." in text
    assert (f"prefecture-level price {mean[('prefecture', True)]:,.0f} and provincial price "
            f"{mean[('province', True)]:,.0f} CNY") in text


def test_gushis_quoted_destinations_match_the_file():
    gushi = next(c for c in _file("xinyang")["counties"] if c["id"] == "411525")
    weights = gushi["migrant_destinations"]
    text = " ".join(_readme().split())
    assert f"Beijing is set to {weights['city:110100']:.2f}" in text
    assert (f"Shanghai {weights['city:310100']:.1%}, Zhengzhou's Jinshui District {weights['county:410105']:.1%}, "
            f"Suzhou {weights['city:320500']:.1%}") in text
    top = sorted(weights.items(), key=lambda kv: -kv[1])[:4]
    assert [k for k, _ in top] == ["city:110100", "city:310100", "county:410105", "city:320500"]


def _normalised(county: dict, ids: set[str]) -> dict:
    """A county record as every file holding it must agree on it: no adjacency, and a
    fund county as `county:<code>` whether or not it is in the file."""
    def key(k):
        return f"county:{k}" if k in ids else k
    record = {k: v for k, v in county.items() if k != "adjacent"}
    for table in ("resident_care", "migrant_destinations"):
        record[table] = {key(k): w for k, w in county.get(table, {}).items()}
    return record


def test_same_county_same_data_on_the_committed_files():
    """instances/README.md, "Same county, same data", with the counts it quotes."""
    seen: dict[str, list[dict]] = {}
    places: dict[str, list[dict]] = {}
    counties_anywhere: dict[str, dict] = {}
    for name in FILES:
        data = _file(name)
        ids = {c["id"] for c in data["counties"]}
        for county in data["counties"]:
            seen.setdefault(county["id"], []).append(_normalised(county, ids))
            counties_anywhere[county["id"]] = county
        for place in data["places"]:
            places.setdefault(place["id"], []).append(place)
    pairs = sum(len(v) * (len(v) - 1) // 2 for v in seen.values())
    assert all(r == v[0] for v in seen.values() for r in v)
    assert all(p == v[0] for v in places.values() for p in v)
    for pid, (place, *_rest) in places.items():
        if pid.startswith("county:") and pid[7:] in counties_anywhere:
            assert place["severity"] == counties_anywhere[pid[7:]]["severity"]
            assert place["approved_by"] == [pid[7:]]
    text = " ".join(_readme().split())
    assert f"{pairs} county pairs" in text and f"{len(places)} distinct place ids" in text


def _printed(pattern: str, printed: str) -> list[float]:
    match = re.search(pattern, printed)
    assert match, pattern
    return [float(g) for g in match.groups()]


@pytest.mark.skipif(not CENSUS.exists(), reason=f"{CENSUS} not present (../shared/ ships only with CI)")
def test_national_calibration_figures_match_the_builders():
    """The figures instances/README.md quotes from the builders' national model and
    printed calibration (build.py prints the same report)."""
    from builders.census import read_census
    from builders.national import national_model
    from builders.reports import calibration_report, case_report, four_tier

    model = national_model(read_census(CENSUS), CENSUS)
    printed = calibration_report(model) + "\n" + case_report(model)
    number = r"(-?[0-9.]+)"
    absence, = _printed(rf"migrant-weighted net absence {number}%", printed)
    adm = _printed(rf"share of admissions out of county: mean {number}, median {number}, p90 {number}, "
                   rf"max {number}; units above 40%: {number}", printed)
    fund = _printed(rf"paid out of county \(status quo, enrollee-weighted\): mean {number}, p10 {number}, "
                    rf"median {number}, p90 {number}, max {number}", printed)
    dest = _printed(rf"destinations per migrant-sending unit: mean {number}, max {number}", printed)
    lo, hi = _printed(rf"claimed admission rate by province: min {number}, max {number}", printed)
    fit_intra = model["own_prefecture_share"](model["beta_intra"])
    fit_inter = model["central_east_share"](model["beta_inter"])
    quoted = [
        f"mean over fund units is {absence / 100:.2%}",
        f"{adm[0]:.0%} on average (median {adm[1]:.0%}, p90 {adm[2]:.0%}, max {adm[3]:.0%}), "
        f"and {adm[4]:.0f} units exceed 40%",
        f"{fund[0]:.1%} on average (p10 {fund[1]:.0%}, median {fund[2]:.0%}, p90 {fund[3]:.0%}, max {fund[4]:.0%})",
        f"keep {dest[0]:.0f} destinations on average (max {dest[1]:.0f})",
        f"Claimed admissions are {lo * 100:.1f}\u2013{hi:.1%} in every province",   # an en dash
        f"| {model['beta_intra']:.3f} | {fit_intra:.2%} |",
        f"| {model['beta_inter']:.3f} | {fit_inter:.2%} |",
        f"met at β = {model['beta_inter']:.2f}",
        f"{model['central_east_share'](0.0):.0%} at β = 0",
        f"one value, {model['inter_share_other']:.3f}",
        f"hold {model['f_central']:.1%} of the net absentees",
        f"Gravity alone places {model['gravity_only']['411525']['city:110100']:.1%} of them in Beijing",
        f"Gravity places {model['gravity_only']['411525']['city:110100']:.1%} of Gushi's migrants in Beijing",
    ]
    for label, code in (("Jincheng, Shanxi", "140500"), ("Yichun, Heilongjiang", "230700"),
                        ("Inner Mongolia", "150000"), ("Tongliao", "150500")):
        shares = " / ".join(f"{x:.2f}" for x in four_tier(model, code))
        quoted.append(f"| {label} ({code}) | {shares} |")
    text = " ".join(_readme().split())
    missing = [line for line in quoted if line not in text]
    assert not missing, f"instances/README.md does not quote these builder figures: {missing}"


def test_readme_xinyang_explanation_matches_evaluate():
    """README.md: diversification +0.0235, network and contract -0.0003, the response
    -0.0004, 0.4189 -> 0.4415."""
    instance = pooling.load_instance(INSTANCES / "xinyang.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    plan = json.loads((REPO / "docs" / "examples" / "xinyang_prefecture_contract.json").read_text("utf-8"))
    out = pooling.evaluate(instance, spec, plan["pools"], explain=True, contracts=plan.get("contracts", []))
    explain, served = out.explain, out.contracts[0]
    text = " ".join((REPO / "README.md").read_text("utf-8").split())
    assert (f"serves {served['admissions_served']:,.0f} of the pool's {served['admissions']:,.0f} Beijing "
            f"admissions a year") in text
    assert f"diversification adds {explain['parts']['diversification']:+.4f}" in text
    assert f"take {-explain['parts']['network']:.4f} back" in text
    assert f"higher rate takes {-explain['parts']['behaviour']:.4f} back" in text
    assert f"{explain['status_quo']:.4f} -> {explain['plan']:.4f} in all" in text


def test_model_md_shock_precision_figure():
    """docs/model.md: county 150502's r* does not move for tiny national shock cvs."""
    data = _file("tongliao")
    spec = pooling.load_spec(MODELS / "default.toml")
    quoted = ["0", "1e-12", "1e-10", "1e-8", "1e-6", "1e-5"]
    rates = set()
    for theta in quoted:
        changed = {**data, "parameters": {**data["parameters"], "frequency_shock_cv": float(theta)}}
        instance = pooling.instance_from_dict(changed)
        rates.add(f"{PoolPricer(instance, spec).price(['150502']).max_rate:.8f}")
    assert len(rates) == 1
    text = " ".join((REPO / "docs" / "model.md").read_text("utf-8").split())
    assert f"150502's r* is {rates.pop()} for theta = {', '.join(quoted[:-1])} and {quoted[-1]}" in text


def test_readme_stress_test_figures_match_simulate():
    """README.md's Tongliao stress test (4,000 scenarios, seed 0, as its command): the
    plan's rate, the committed reserves, ruin without stress after 1 and 5 years, and
    the epidemic's first year (every path ruined; the year's mean result), for which
    one simulated year suffices."""
    instance = pooling.load_instance(INSTANCES / "tongliao.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    result = pooling.solve(instance, spec)
    calm, epidemic = (pooling.simulate(instance, spec, result, years=years, scenarios=4000, seed=0, stress=stress)
                      .to_dict()["pools"][0] for years, stress in ((5, ()), (1, ["epidemic"])))
    text = " ".join((REPO / "README.md").read_text("utf-8").split())
    assert f"The plan's rate, {result.pools[0].rate:.4f}," in text
    assert f"half its reserves committed ({calm['initial_reserves'] / 1e6:.1f}M CNY;" in text
    assert epidemic["ruin_probability_by_year"][0] == 1.0
    assert f"every path is ruined in year 1 (mean result {epidemic['mean_surplus'] / 1e6:.0f}M CNY)" in text
    by_year = calm["ruin_probability_by_year"]
    assert f"one year passes (ruin {by_year[0]:.2%} against the 1% target)" in text
    assert f"five years at the same rate ({by_year[4]:.2%})" in text


def test_readme_sweep_figures_match_solves():
    """README.md's design sweep: the mean rate per allowed gap at CVaR 0.99 and 0.995
    (models/sweeps/tongliao_gap.toml, each cell solved as `pooling sweep` does)."""
    from pooling.studies.sweep import load_sweep

    sweep = load_sweep(REPO / "models" / "sweeps" / "tongliao_gap.toml")
    rate = {}
    for cell in sweep.cells:
        result = pooling.solve(pooling.load_instance(cell.instance), pooling.spec_from_dict(cell.spec),
                               options=pooling.SolveOptions(**cell.options))
        values = dict(cell.values)
        rate[(values["solvency.level"], values["equalisation.max_rate_gap"])] = f"{result.mean_rate:.4f}"
    text = " ".join((REPO / "README.md").read_text("utf-8").split())
    low = [rate[(0.99, gap)] for gap in (0.0, 0.01, 0.02, 0.05)]
    high = ", ".join(rate[(0.995, gap)] for gap in (0.0, 0.01, 0.02, 0.05))
    assert low[2] == low[3]   # with the response a gap of 0.02 already binds nothing
    assert (f"the mean rate is {low[0]} with no gap allowed, {low[1]} at 0.01, {low[2]} at 0.02 and 0.05 "
            f"(CVaR 0.99; {high} at 0.995)") in text


def _place_counts(name: str) -> dict[str, int]:
    """Places of a file by kind: county:, province:, and city: inside / outside its provinces."""
    data = _file(name)
    provinces = {c["province"] for c in data["counties"]}
    counts: dict[str, int] = {}
    for place in data["places"]:
        kind = place["id"].split(":")[0]
        if kind == "city":
            kind += "_in" if place["province"] in provinces else "_out"
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_quoted_place_counts_and_gushis_figures_match_the_files():
    text = " ".join(_readme().split())
    xinyang, henan, china = (_place_counts(name) for name in ("xinyang", "henan", "china"))
    assert (xinyang["province"], xinyang["city_in"]) == (1, 5)      # city:411500 and 4 other Henan cities
    assert (f"`city:411500`, `province:410000`, {xinyang['county']} `county:` places elsewhere in Henan and "
            f"{xinyang['city_in'] - 1 + xinyang['city_out']} `city:` places") in text
    assert (f"henan.json's places are the {henan['city_in']} Henan cities, `province:410000` and "
            f"{henan['city_out']} other-province cities") in text
    assert f"china.json's are the {china['city_in']} cities" in text and china["province"] == 31
    gushi = next(c for c in _file("xinyang")["counties"] if c["id"] == "411525")
    quoted = f"net absence {gushi['migrant_share']:.2%}, the `migrant_share`, and {gushi['enrollees']:,} enrollees"
    assert quoted in text


def test_case_studies_uncertainty_tongliao_is_current():
    """docs/case-studies.md, 'What we do not know': Tongliao's tables (plain, robust and
    predictive under the default and equalised specs, its pool's rate per scenario, the
    plans stress-tested at shock cvs x1.5) and its summary line are what
    docs/case_studies.py computes now. Xinyang's and Henan's parts take minutes (Henan
    solved three times, Xinyang's equalised solves) and are checked by regenerating:
    python docs/case_studies.py --only uncertainty."""
    page = (REPO / "docs" / "case-studies.md").read_text("utf-8")
    _head, begin, rest = page.partition(case_studies.UNCERTAINTY_BEGIN + "\n")
    section, end, _tail = rest.partition(case_studies.UNCERTAINTY_END)
    assert begin and end, "docs/case-studies.md has no uncertainty section: run python docs/case_studies.py"
    written = section.splitlines()
    intro = case_studies.uncertainty_intro()
    assert written[:len(intro)] == intro, "docs/case-studies.md's uncertainty section has a stale introduction"
    lines, figures = case_studies.uncertainty_case("Tongliao", "tongliao.json")
    start = written.index(lines[0])
    assert written[start:start + len(lines)] == lines, (
        "docs/case-studies.md's Tongliao uncertainty figures are stale: run python docs/case_studies.py "
        "--only uncertainty")
    assert case_studies.uncertainty_summary("Tongliao", figures) in written
    # What the figures say, whatever the page: the plain plan's promise is broken at x1.5, the
    # robust plan's is kept, and robustness costs rate.
    assert figures["exhaustion", "plain"]["truth"] > figures["exhaustion", "plain"]["target"]
    assert figures["exhaustion", "robust"]["truth"] <= figures["exhaustion", "robust"]["target"]
    assert figures["default", "robust"]["rate_lost"] > figures["default", "predictive"]["rate_lost"] > 0.0


def test_case_studies_behaviour_tongliao_and_gushi_are_current():
    """docs/case-studies.md, 'Behaviour on and off': its introduction, Tongliao's table and
    summary line and the Gushi table are what docs/case_studies.py computes now (seconds).
    Xinyang's, Henan's and China's tables take minutes and are checked by regenerating:
    python docs/case_studies.py --only behaviour."""
    page = (REPO / "docs" / "case-studies.md").read_text("utf-8")
    _head, begin, rest = page.partition(case_studies.BEHAVIOUR_BEGIN + "\n")
    section, end, _tail = rest.partition(case_studies.BEHAVIOUR_END)
    assert begin and end, "docs/case-studies.md has no behaviour section: run python docs/case_studies.py"
    written = section.splitlines()
    intro = case_studies.behaviour_intro()
    assert written[:len(intro)] == intro, "docs/case-studies.md's behaviour section has a stale introduction"
    lines, figures = case_studies.behaviour_case("Tongliao", "tongliao.json", True)
    start = written.index(lines[0])
    assert written[start:start + len(lines)] == lines, (
        "docs/case-studies.md's Tongliao behaviour figures are stale: run python docs/case_studies.py --only behaviour")
    assert case_studies.behaviour_summary("Tongliao", figures) in written
    gushi = case_studies.gushi_behaviour_lines()
    start = written.index(gushi[0])
    assert written[start:start + len(gushi)] == gushi
    # Whatever the page says: Tongliao's pooled rate lies below the bundled r0 = 0.609015 (one
    # county alone, 150526, lies above it), so with the response each plan buys less care than
    # observed at a higher mean rate, and pooling still gains.
    for plan in ("status quo", "prefecture pools", "optimum"):
        off, on = figures["off", plan], figures["on", plan]
        assert plan == "status quo" or all(p.rate < 0.609015 for p in on.pools)
        assert on.mean_rate > off.mean_rate
        assert case_studies._admissions_multiplier(on) < 1.0 == case_studies._admissions_multiplier(off)
    assert case_studies._gain(figures, "on", "prefecture pools") > 0.0
