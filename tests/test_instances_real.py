"""Real instances built from the 2010 census table (instances/build.py, issue 6).

Every committed instance loads and validates; the small ones solve under
models/default.toml; the national one prices status-quo pools; the builder
reproduces the committed files byte for byte (skipped without ../shared/).

The national status quo: all 2,565 single-county pools are priced (~24 s on
the development machine, 2026-11-23).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import pooling
from pooling.economics.pools import PoolPricer
from pooling.optimise.candidates import is_connected
from tests.factories import INSTANCES, MODELS, SHARED

CENSUS = SHARED / "data" / "china_counties_census.csv"
needs_shared = pytest.mark.skipif(not CENSUS.exists(),
                                  reason=f"{CENSUS} not present (../shared/ ships only with CI)")

BUILT = ["xinyang", "binzhou", "henan", "china"]
SMALL = ["xinyang", "binzhou"]          # tongliao solves in tests/test_bundled.py
EXPECTED_UNITS = {"tongliao": 8, "xinyang": 10, "binzhou": 7, "henan": 144, "china": 2565}


def _connected_within_prefectures(instance) -> list[str]:
    """Prefectures whose induced adjacency subgraph is not connected."""
    by_pref: dict[str, set[str]] = {}
    for c in instance.counties:
        by_pref.setdefault(c.prefecture, set()).add(c.id)
    return [pref for pref, members in by_pref.items() if not is_connected(instance, members)]


@pytest.mark.parametrize("name", ["tongliao", *BUILT])
def test_instance_loads_and_validates(name):
    started = time.perf_counter()
    inst = pooling.load_instance(INSTANCES / f"{name}.json")
    assert time.perf_counter() - started < 10.0
    assert len(inst.counties) == EXPECTED_UNITS[name]
    assert inst.year == 2012
    assert not _connected_within_prefectures(inst)


def test_national_file_is_reasonably_small():
    assert (INSTANCES / "china.json").stat().st_size < 10_000_000


def test_national_instance_shape():
    inst = pooling.load_instance(INSTANCES / "china.json")
    assert len(inst.prefectures) == 341
    assert len({c.province for c in inst.counties}) == 31
    assert 0.9e9 < inst.total_enrollees < 1.0e9


def test_case_study_figures():
    xinyang = pooling.load_instance(INSTANCES / "xinyang.json")
    gushi = xinyang.county("411525")
    assert (gushi.name, gushi.name_en) == ("固始县", "Gushi County")
    assert 0.39 < gushi.migrant_share < 0.41
    binzhou = pooling.load_instance(INSTANCES / "binzhou.json")
    rich = binzhou.county("371626")
    others = [c for c in binzhou.counties if c.id != "371626"]
    assert all(rich.contribution_per_capita > 1.25 * c.contribution_per_capita for c in others)


def test_case_units_match_national_instance():
    """Prefecture and province files are slices of the national one (same derivations)."""
    china = {c["id"]: c for c in json.loads((INSTANCES / "china.json").read_text("utf-8"))["counties"]}
    henan = json.loads((INSTANCES / "henan.json").read_text("utf-8"))["counties"]
    for c in henan:
        assert c == china[c["id"]]
    xinyang = json.loads((INSTANCES / "xinyang.json").read_text("utf-8"))["counties"]
    for c in xinyang:
        other = china[c["id"]]
        for key in ("enrollees", "migrant_share", "admission_rate", "severity", "reserves"):
            assert c[key] == other[key], (c["id"], key)
        same_pref = [j for j in other["adjacent"] if j[:4] == c["id"][:4]]
        assert c["adjacent"] == same_pref, c["id"]


def test_tongliao_calibration_shared_with_builder():
    tongliao = json.loads((INSTANCES / "tongliao.json").read_text("utf-8"))
    china = json.loads((INSTANCES / "china.json").read_text("utf-8"))
    assert tongliao["parameters"] == china["parameters"]
    by_id = {c["id"]: c for c in china["counties"]}
    for c in tongliao["counties"]:
        for key in ("enrollees", "migrant_share", "admission_rate", "severity", "contribution_per_capita",
                    "reserves", "outpatient_per_capita", "admin_per_capita"):
            assert by_id[c["id"]][key] == c[key], (c["id"], key)


@pytest.mark.parametrize("name", SMALL)
def test_small_instance_solves(name):
    inst = pooling.load_instance(INSTANCES / f"{name}.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    result = pooling.solve(inst, spec, time_limit=120).to_dict()
    assert result["status"] == "optimal"
    covered = sorted(c for p in result["pools"] for c in p["counties"])
    assert covered == sorted(inst.ids)


def test_binzhou_shows_the_rich_county_problem():
    """Zouping's rate alone is well above the prefecture pool's rate and every
    other unit's alone. The bundled induced utilisation pulls every rate
    towards the observed 0.609 and so shrinks the gap to the pool (0.6849
    against 0.5994) from what the same file gives with no response (e = 0:
    0.7478 against 0.5936)."""
    from tests.test_benefits import with_elasticity
    bundled = pooling.load_instance(INSTANCES / "binzhou.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    gaps = []
    for inst in (bundled, with_elasticity(bundled, 0.0)):
        pricer = PoolPricer(inst, spec)
        alone = pricer.price(["371626"]).max_rate
        others = max(pricer.price([c]).max_rate for c in inst.ids if c != "371626")
        pooled = pricer.price(inst.ids).max_rate
        assert alone > others + 0.1
        gaps.append(alone - pooled)
    assert gaps[0] > 0.08 and gaps[1] > 0.15
    assert gaps[0] < gaps[1]


def test_national_status_quo_prices():
    inst = pooling.load_instance(INSTANCES / "china.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    pricer = PoolPricer(inst, spec)
    for cid in sorted(inst.ids):  # every status-quo pool (~11 ms each)
        pricing = pricer.price([cid])
        assert pricing.counties == (cid,)
        assert pricing.expected_cost > 0 and pricing.cvar > pricing.expected_cost
        assert pricing.numerics.mean_rel_error < 1e-6


def test_every_beijing_unit_is_feasible_alone():
    """Issue 25: at the national premium (CNY 308.5) five of Beijing's nine units could not
    reach rates.min alone at Beijing's prices (0.2856-0.2995); at Beijing's own 2011
    financing (637.2, scaled to 798.44) every one can."""
    inst = pooling.load_instance(INSTANCES / "china.json")
    spec = pooling.load_spec(MODELS / "default.toml")
    pricer = PoolPricer(inst, spec)
    beijing = [c.id for c in inst.counties if c.province == "110000"]
    assert len(beijing) == 9
    for cid in beijing:
        assert pricer.price([cid]).max_rate >= spec.rates.min, cid


@needs_shared
@pytest.mark.parametrize("name", BUILT)
def test_builder_reproduces_committed_file(name, tmp_path):
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, str(INSTANCES / "build.py"), "--census", str(CENSUS),
                           "--preset", name, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (INSTANCES / f"{name}.json").read_bytes()


@needs_shared
def test_builder_custom_selection_and_errors(tmp_path):
    out = tmp_path / "two.json"
    done = subprocess.run([sys.executable, str(INSTANCES / "build.py"), "--census", str(CENSUS),
                           "--prefecture", "411500", "--prefecture", "371600", "--name", "two",
                           "--uplift", "371626=1.3", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    inst = pooling.load_instance(out)
    assert len(inst.counties) == 17
    bad = subprocess.run([sys.executable, str(INSTANCES / "build.py"), "--census", str(CENSUS),
                          "--prefecture", "999900", "--name", "x", "--out", str(tmp_path / "x.json")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "999900" in bad.stderr
    assert not (tmp_path / "x.json").exists()


def test_binzhou_equalised_rule_is_infeasible_because_of_zouping():
    """T City's rule (models/equalised.toml) cannot hold in Binzhou: Zouping will not join
    a pool paying less than it can alone, and no pool can match its rate within 2 points."""
    inst = pooling.load_instance(INSTANCES / "binzhou.json")
    result = pooling.solve(inst, pooling.load_spec(MODELS / "equalised.toml"), time_limit=60)
    assert result.status == "infeasible"
    assert any("371626" in line for line in result.diagnosis)
