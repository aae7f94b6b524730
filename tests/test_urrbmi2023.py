"""The 2020s instances china2023.json and henan2023.json (issue 27, item 3).

URRBMI funds pooled by prefecture, built by instances/builders/urrbmi2023.py
from the county model of instances/build.py and rescaled to the sourced 2023
national totals. Checked here: both files load; china2023.json matches the
totals within NATIONAL_TOTALS_TOLERANCE, computed from the loaded file by the
model's own care flows (pooling.economics.care, every prefecture fund alone);
the aggregation keeps each province's expected admissions in proportion to
the county model's; henan2023.json's records are china2023.json's; the
builder reproduces both files byte for byte and refuses a bad selection
(skipped without ../shared/).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import defaultdict

import pytest

import pooling
from pooling.economics.care import county_care
from tests.factories import INSTANCES, SHARED

CENSUS = SHARED / "data" / "china_counties_census.csv"
BUILDER = INSTANCES / "builders" / "urrbmi2023.py"
needs_shared = pytest.mark.skipif(not CENSUS.exists(),
                                  reason=f"{CENSUS} not present (../shared/ ships only with CI)")

NATIONAL_TOTALS_TOLERANCE = 0.02
"""Issue 27: china2023.json must match the sourced 2023 national totals within 2 %."""
AGGREGATION_TOLERANCE = 2e-5
"""Relative spread allowed between provinces' ratios of expected admissions (prefecture
file over county file): admission rates are rounded to 6 decimals (~1e-6 of a rate near
0.2) and enrollees to whole people, so exact aggregation agrees far inside this."""

# NHSA, 2023 National Healthcare Security Statistical Bulletin (CALIBRATION.md, "The 2020s: URRBMI").
SOURCED_2023 = {
    "enrollees": 962.94e6,
    "income": 10_569.71e8,             # CNY (10,569.71 yi)
    "spending": 10_457.65e8,
    "balance": 7_663.70e8,
    "admission_rate": 0.207,           # admissions paid by the fund per enrollee
    "cost_per_admission": 7_674.0,     # CNY per admission
}


def _status_quo_totals(instance) -> dict:
    """National totals by the model's definitions, every unit its own pool: enrollees,
    revenue N p, reserves, claimed admissions (the claim streams' expected counts) and
    their cost at list prices, and spending = outpatient + current_rate x claims paid."""
    claims = cost = inpatient = 0.0
    for county in instance.counties:
        alone = frozenset({county.id})
        for flow in county_care(instance, county):
            for part in flow.parts(alone):
                claims += part.stream.rate
                cost += part.stream.rate * flow.severity.expected_value
                inpatient += county.current_rate * part.stream.mean
    n = instance.total_enrollees
    return {
        "enrollees": n,
        "income": math.fsum(c.enrollees * c.contribution_per_capita for c in instance.counties),
        "spending": inpatient + math.fsum(c.enrollees * c.outpatient_per_capita for c in instance.counties),
        "balance": math.fsum(c.reserves for c in instance.counties),
        "admission_rate": claims / n,
        "cost_per_admission": cost / claims,
    }


@pytest.mark.parametrize(("name", "units"), [("china2023", 337), ("henan2023", 18)])
def test_file_loads_as_prefecture_funds(name, units):
    inst = pooling.load_instance(INSTANCES / f"{name}.json")
    assert inst.year == 2023
    assert len(inst.counties) == units
    assert all(c.prefecture == c.id for c in inst.counties)       # each unit is its own prefecture fund
    assert all(c.current_rate is not None for c in inst.counties)
    assert "HYPOTHETICAL" in (inst.description or "")
    assert inst.provenance and "sources" in inst.provenance


def test_china2023_matches_sourced_national_totals():
    figures = _status_quo_totals(pooling.load_instance(INSTANCES / "china2023.json"))
    for key, sourced in SOURCED_2023.items():
        assert figures[key] == pytest.approx(sourced, rel=NATIONAL_TOTALS_TOLERANCE), key


def test_aggregation_keeps_each_provinces_expected_admissions():
    """A prefecture fund's expected admissions are its counties' (county model, 2012 file)
    times one national factor: the same ratio in every province."""
    def by_province(path):
        raw = json.loads(path.read_text(encoding="utf-8"))
        out = defaultdict(float)
        for c in raw["counties"]:
            out[c["province"]] += c["enrollees"] * c["admission_rate"]
        return out
    units, counties = by_province(INSTANCES / "china2023.json"), by_province(INSTANCES / "china.json")
    assert set(units) == set(counties)
    ratios = [units[v] / counties[v] for v in sorted(units)]
    assert max(ratios) / min(ratios) - 1.0 < AGGREGATION_TOLERANCE


def test_henan2023_records_are_china2023_records():
    china = {c["id"]: c for c in json.loads((INSTANCES / "china2023.json").read_text())["counties"]}
    henan = json.loads((INSTANCES / "henan2023.json").read_text())
    assert henan["counties"] and all(c == china[c["id"]] for c in henan["counties"])


@needs_shared
@pytest.mark.parametrize("name", ["china2023", "henan2023"])
def test_builder_reproduces_committed_file(name, tmp_path):
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, str(BUILDER), "--census", str(CENSUS), "--preset", name,
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (INSTANCES / f"{name}.json").read_bytes()


@needs_shared
def test_builder_refuses_unknown_province(tmp_path):
    out = tmp_path / "x.json"
    done = subprocess.run([sys.executable, str(BUILDER), "--census", str(CENSUS), "--province", "990000",
                           "--name", "x", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and "990000" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_readme_quotes_the_files_figures():
    """instances/README.md's table of the 2020s figures quotes china2023.json's values."""
    raw = json.loads((INSTANCES / "china2023.json").read_text(encoding="utf-8"))
    text = (INSTANCES / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The 2020s files"):]
    unit = next(c for c in raw["counties"] if c["province"] != "110000")   # Beijing's prices x 1.8884
    tiers = raw["parameters"]["out_of_network_tiers"]
    means = {p["level"]: p["severity"]["mean"] for p in raw["places"] if p["province"] != "110000"}
    quoted = [f"{unit['contribution_per_capita']:,.2f} CNY", f"{unit['outpatient_per_capita']:,.2f} CNY",
              f"| {unit['current_rate']}, every unit", f"county {unit['severity']['mean']:,.2f}",
              f"prefecture {means['prefecture']:,.2f}",
              f"province {means['province']:,.2f}",
              f"claimed {tiers['same_province']['claim_share']}, factor {tiers['same_province']['factor']}",
              f"claimed {tiers['other_province']['claim_share']}, factor {tiers['other_province']['factor']}",
              f"= {raw['parameters']['regional_shocks']['county']['cv']}",
              f"{sum(c['enrollees'] for c in raw['counties']):,}"]
    missing = [q for q in quoted if q not in section]
    assert not missing, missing
