"""The instance files' names and the builders' structure (instances/builders/).

These run without ../shared/ (the census table): the committed files are read
as they are, and the builders are exercised on a table that is not there or
on a few rows written here. tests/test_instances_real.py and
tests/test_shared_data.py rebuild the files from the table when it exists.
"""

from __future__ import annotations

import ast
import gzip
import json
import subprocess
import sys

import pytest

from tests.factories import INSTANCES, REPO

sys.path.insert(0, str(INSTANCES))

from builders import census

BUNDLED = ["tongliao", "xinyang", "binzhou", "henan", "china"]
REFERENCE_COPIES = sorted((REPO / "benchmarks" / "reference_instances").glob("*.json.gz"))
MISREAD_CITY = "\u5dff"          # 巿, a look-alike of 市 (U+5E02)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _bundled(name: str) -> dict:
    return json.loads((INSTANCES / f"{name}.json").read_text("utf-8"))


def _names(data: dict) -> list[str]:
    return ([data["name"]] + [c[k] for c in data["counties"] for k in ("name", "name_en") if k in c]
            + [p["name"] for p in data.get("places", [])])


@pytest.mark.parametrize("name", BUNDLED)
def test_no_name_has_the_misread_city_character(name):
    bad = [n for n in _names(_bundled(name)) if MISREAD_CITY in n]
    assert not bad, f"{name}.json: {bad}"


@pytest.mark.parametrize("path", REFERENCE_COPIES, ids=lambda p: p.name)
def test_reference_copies_have_no_misread_city_character(path):
    data = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    assert not [n for n in _names(data) if MISREAD_CITY in n]


@pytest.mark.parametrize("name", BUNDLED)
def test_every_county_is_named_in_chinese_with_any_romanised_name_apart(name):
    """One convention in every file: `name` is the census's Chinese name; a romanised
    name, where the builder has one, is `name_en` (ASCII)."""
    for county in _bundled(name)["counties"]:
        assert any(_is_cjk(ch) for ch in county["name"]), (name, county["id"], county["name"])
        assert county.get("name_en", "x").isascii(), (name, county["id"], county["name_en"])


def test_a_county_has_the_same_names_in_every_file():
    seen: dict[str, tuple] = {}
    for name in BUNDLED:
        for county in _bundled(name)["counties"]:
            names = (county["name"], county.get("name_en"))
            assert seen.setdefault(county["id"], names) == names, (name, county["id"])
    assert seen["411525"] == ("固始县", "Gushi County")
    assert seen["411081"] == ("禹州市", None)


def test_builder_reads_the_misread_city_character_as_city(tmp_path):
    table = tmp_path / "census.csv"
    table.write_text("code,name_zh,level\n411081,禹州\u5dff,county\n370402,\u5dff中区,district\n",
                     encoding="utf-8")
    rows = census.read_census(table, ["code", "name_zh"])
    assert [r["name_zh"] for r in rows] == ["禹州市", "市中区"]


@pytest.mark.parametrize("script", ["build_tongliao.py", "build.py"])
def test_builders_without_the_census_table_exit_2_and_say_where_it_comes_from(script, tmp_path):
    missing = tmp_path / "nowhere" / "census.csv"
    out = tmp_path / "out.json"
    args = ["--out", str(out)] + (["--preset", "xinyang"] if script == "build.py" else [])
    done = subprocess.run([sys.executable, str(INSTANCES / script), "--census", str(missing), *args],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert str(missing) in done.stderr and "shared/data/china_counties_census.csv" in done.stderr
    assert "--census" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def _builder_imports(path) -> set[str]:
    """The builders modules a file imports (`from builders import x`, `from builders.x import ...`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "builders":
            found |= ({a.name for a in node.names} if node.module == "builders" else {node.module.split(".")[1]})
        if isinstance(node, ast.Import) and any(a.name.startswith("build") for a in node.names):
            found |= {a.name for a in node.names}
    return found


def test_builder_modules_import_only_modules_listed_before_them():
    """No import cycle: each builders module imports only those above it in the order
    of builders/__init__.py, and neither script imports the other."""
    order = ["calibration", "cases", "census", "coordinates", "adjacency", "migration", "national", "reports",
             "urrbmi2023"]
    modules = sorted(p.stem for p in (INSTANCES / "builders").glob("*.py") if p.stem != "__init__")
    assert sorted(order) == modules
    for position, module in enumerate(order):
        imported = _builder_imports(INSTANCES / "builders" / f"{module}.py")
        assert imported <= set(order[:position]), (module, imported - set(order[:position]))
    for script in ("build.py", "build_tongliao.py"):
        imported = _builder_imports(INSTANCES / script)
        assert imported <= set(order), (script, imported)


def test_loader_keeps_an_optional_romanised_name_and_checks_it():
    from pooling import InputError, instance_from_dict
    from tests.factories import tiny_instance_dict

    data = tiny_instance_dict()
    data["counties"][0]["name_en"] = "Gushi County"
    instance = instance_from_dict(data)
    first, second = instance.counties[0], instance.counties[1]
    assert (first.name_en, second.name_en) == ("Gushi County", None)
    data["counties"][0]["name_en"] = 7
    with pytest.raises(InputError, match=r'county "[^"]+": name_en'):
        instance_from_dict(data)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_county_pays_its_provinces_2011_figure_scaled_to_2012(name):
    """Regional financing (issue 25 item 6): a county's contribution is its province's
    2011 figure (the national one where the province has none) times 2012's national
    financing over 2011's, times its assumed uplift; the file's provenance says which
    provinces are sourced."""
    from builders import calibration as cal
    data = _bundled(name)
    provenance = data["provenance"]["contribution_per_capita"]
    uplift = provenance["uplift"]
    scale = 308.5 / 246.2
    for county in data["counties"]:
        figure = cal.CONTRIBUTION_2011.get(county["province"], 246.2)
        expected = round(round(figure * scale, 2) * uplift.get(county["id"], 1.0), 2)
        assert county["contribution_per_capita"] == expected, county["id"]
        assert county["reserves"] == round(cal.RESERVE_RATIO * county["enrollees"] * expected, 2), county["id"]
    provinces = {c["province"] for c in data["counties"]}
    assert set(provenance["provinces"]) == provinces
    for province, row in provenance["provinces"].items():
        assert row["label"] == ("S" if province in cal.CONTRIBUTION_2011 else "A")
        assert row["2012"] == cal.province_contribution(province)[0]
    assert set(uplift) <= {c["id"] for c in data["counties"]}


def test_provincial_financing_table_keeps_the_national_figure_where_it_has_none():
    from builders import calibration as cal
    assert cal.province_contribution("410000") == (cal.CONTRIBUTION, "A")
    assert cal.province_contribution("110000") == (798.44, "S")     # 637.2 x 308.5 / 246.2
    assert cal.province_contribution("520000") == (282.44, "S")     # Guizhou, below the national figure
    assert round(cal.NATIONAL_CONTRIBUTION_2011 * cal.CONTRIBUTION_SCALE, 2) == cal.CONTRIBUTION
