"""The interactive map page (page.html): built once for the nation (2,565 counties, a prefecture-pool
plan, solved in ~10 s) with the extra pooling[maps], else for Henan on the adjacency layout; checked
in headless Chromium (shapes with ids, the search finds 固始县 411525 and its tooltip shows its pool,
no errors, nothing fetched), by glyph (the embedded font has every CJK character of the names), for
size and for hostile names."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the optional extra pooling[report] (matplotlib)")

import pooling
from pooling.cli import main
from pooling.data.report_inputs import read_result_record
from pooling.outputs import fonts, maps, page
from pooling.outputs.frames import price_alone
from pooling.outputs.report import MAP_CAPTION, network_shares
from tests.factories import INSTANCES, MODELS
from tests.test_report import CHROMIUM, CHROMIUM_FLAGS

CHINA, HENAN = INSTANCES / "china.json", INSTANCES / "henan.json"
PAGE_LIMIT_BYTES = 10_000_000
"""The national page's size limit (issue 26: at most 10 MB, so it opens and mails easily)."""
GUSHI = "411525"
PROBE = (Path(__file__).parent / "data" / "page_probe.html").read_text(encoding="utf-8")


def _page(instance_path: Path, out: Path) -> tuple[str, pooling.Instance, list]:
    assert main(["solve", str(instance_path), "--spec", str(MODELS / "prefecture.toml"), "--out", str(out),
                 "--workers", "1", "--quiet"]) in (0, 3)
    data = json.loads((out / "result.json").read_text(encoding="utf-8"))
    instance = pooling.load_instance(instance_path)
    pools = read_result_record(data, instance, "result.json").pools
    alone = price_alone(instance, read_result_record(data, instance, "r").spec)
    html = page.build_page(instance, pools, alone, network_shares(data), "test page", MAP_CAPTION)
    return html, instance, pools


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The nation with the extra (boundaries), Henan on the layout without it."""
    out = tmp_path_factory.mktemp("page")
    html, instance, pools = _page(CHINA if maps.maps_available() else HENAN, out)
    (out / "page.html").write_text(html, encoding="utf-8")
    return out / "page.html", html, instance, pools


def _browse(path: Path, tmp_path: Path) -> dict[str, str]:
    """Open the page with the probe in headless Chromium; the probe's findings (data-* on <html>)."""
    probed = tmp_path / "probed.html"
    probed.write_text(path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    run = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=15000", "--window-size=1400,1000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    head = re.search(r"<html([^>]*)>", run.stdout).group(1)
    import html as html_module
    return {k: html_module.unescape(v) for k, v in re.findall(r'data-([a-z-]+)="([^"]*)"', head)}


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (chromium) is not installed; "
                                                   ".ci/run installs it with apt-get where it can")
def test_the_page_finds_gushi_and_shows_its_pool_in_chromium(built, tmp_path):
    path, _, instance, pools = built
    found = _browse(path, tmp_path)
    assert found.get("done") == "yes", found
    assert int(found["shapes"]) >= (2500 if maps.maps_available() else len(instance.counties))
    assert found["hit"] == GUSHI
    pool = next(p for p in pools if GUSHI in p.counties)
    assert "固始县" in found["tip"] and f"Pool {pool.id} ({len(pool.counties)} counties)" in found["tip"]
    assert found["tip-shown"] == "block"
    assert found["log"] == ""  # no error, no console error, no blocked fetch
    assert found["resources"] == "0"  # nothing fetched
    if maps.maps_available():
        assert found["font"] == "yes"
        whole = [float(v) for v in re.search(r'viewBox="([^"]+)"', path.read_text(encoding="utf-8")).group(1).split()]
        assert float(found["viewbox"].split()[2]) < whole[2] / 10  # zoomed to the county


def test_every_county_drawn_has_one_path_with_its_code(built):
    _, html, instance, _ = built
    ids = re.findall(r'<path data-id="([^"]+)"', html)
    assert len(ids) == len(set(ids)) and set(ids) <= set(instance.ids)
    if maps.maps_available():
        match = maps.match_boundaries(instance, page.PAGE_SIMPLIFY_FRACTION)
        assert len(ids) == len(match.shapes) == 2507  # README, "Maps": 2,255 by id + 252 on a successor
        assert (len(match.shapes) - len(match.successors), len(match.unmatched)) == (2255, 58)
        assert 'data-boundaries="yes"' in html
    else:
        assert len(ids) == len(instance.counties) and "Approximate layout" in html


def test_the_national_page_stays_under_its_size_limit(built):
    _, html, _, _ = built
    size = len(html.encode("utf-8"))
    assert size <= PAGE_LIMIT_BYTES, size
    print(f"page.html: {size:,} bytes")


def test_the_embedded_font_has_every_cjk_character_of_the_names(built):
    """By glyph: the @font-face font's character map holds each CJK character the page's names use."""
    pytest.importorskip(fonts.FONT_PACKAGE, reason="the CJK font of the extra pooling[maps]")
    import base64

    from fontTools.ttLib import TTFont
    _, html, instance, _ = built
    embedded = re.search(r'url\(data:font/(woff2?);base64,([A-Za-z0-9+/=]+)\)', html)
    assert embedded
    cmap = TTFont(io.BytesIO(base64.b64decode(embedded.group(2)))).getBestCmap()
    text = "".join(c.name + c.prefecture + c.province for c in instance.counties)
    needed = {ch for ch in text if fonts.has_cjk(ch)}
    assert needed and all(ord(ch) in cmap for ch in needed)
    assert len(cmap) <= len(needed) + 8  # a subset: the names' characters, little else


def test_hostile_names_are_text_in_the_page():
    """Names are escaped where they are attributes or text, and JSON in the script cannot end it."""
    from pooling.data.instance import instance_from_dict
    from pooling.data.report_inputs import PoolRecord
    from tests.factories import county, instance_dict
    evil = '</script><script>alert(1)</script>"&<b>'
    instance = instance_from_dict(instance_dict([county('a"><x', "p1", name=evil, province=evil, adjacent=["b"]),
                                                 county("b", "p1", name="b", adjacent=['a"><x'])]))
    pools = [PoolRecord(id=evil, counties=('a"><x', "b"), rate=0.5, max_rate=0.5, enrollees=1, budget=1.0,
                        expected_cost=1.0, var=1.0, cvar=1.0)]
    html = page.build_page(instance, pools, {'a"><x': 0.4, "b": 0.6}, {}, evil, MAP_CAPTION)
    assert evil not in html and "<b>" not in html and "<x" not in html
    assert html.count("</script>") == 2  # the data's and the code's own
    data = json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S).group(1))
    assert data["counties"][0][1] == evil and evil in data["pools"]


def test_without_the_extra_the_page_draws_the_layout_and_says_so(monkeypatch):
    from pooling.data.report_inputs import PoolRecord
    monkeypatch.setattr(maps, "maps_available", lambda: False)
    instance = pooling.load_instance(INSTANCES / "tongliao.json")
    pools = [PoolRecord(id="P01", counties=tuple(instance.ids), rate=0.5, max_rate=0.5, enrollees=1, budget=1.0,
                        expected_cost=1.0, var=1.0, cvar=1.0)]
    html = page.build_page(instance, pools, dict.fromkeys(instance.ids, 0.4), {}, "t", MAP_CAPTION)
    assert sorted(re.findall(r'<path data-id="([^"]+)"', html)) == sorted(instance.ids)
    assert 'data-boundaries="no"' in html and "Approximate layout" in html and "pooling[maps]" in html


def test_the_readme_states_the_national_page_size(built):
    """README, "Maps": the national page's size as measured here (within 10%)."""
    if not maps.maps_available():
        pytest.skip("the national page needs the extra pooling[maps]")
    _, html, _, _ = built
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    stated = float(re.search(r"page \(2,507 shapes, a prefecture-pool plan\) is about ([0-9.]+) MB", readme).group(1))
    assert abs(len(html.encode("utf-8")) / 1e6 - stated) <= 0.1 * stated
