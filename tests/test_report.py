"""Reports and frames as a person would see them: `pooling report` on the
Tongliao plan gives a page that opens offline (checked in headless Chromium
when it is installed), whose figures show what they claim (one colour per
pool, the budget and CVaR where the numbers say), and result files read back
exactly."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("pandas", reason="the optional extra pooling[report] (pandas)")
pytest.importorskip("matplotlib", reason="the optional extra pooling[report] (matplotlib)")

import tomllib

import numpy as np
from matplotlib.image import imread
from matplotlib.patches import Polygon

import pooling
from pooling.cli import main
from pooling.data.report_inputs import read_result_record, read_stress_record
from pooling.optimise.result import Evaluation, Result
from pooling.outputs import figures
from pooling.outputs.frames import county_frame, price_alone, spec_from_result
from pooling.simulation.stress_test import StressReport
from tests.factories import INSTANCES, MODELS, county, instance_dict
from tests.tolerances import ROUNDING

TONGLIAO = INSTANCES / "tongliao.json"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND"]


def _run(argv: list[str]) -> int:
    return main(argv)


@pytest.fixture(scope="module", autouse=True)
def without_maps_extra():
    """These tests check the report without the extra pooling[maps] (the layout map), whether or not
    it is installed here; tests/test_maps.py checks the report with it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pooling.outputs.maps.maps_available", lambda: False)
        yield


def _pools(path: Path, instance) -> tuple:
    """The pools of a result.json as the report reads them."""
    return read_result_record(json.loads(path.read_text(encoding="utf-8")), instance, str(path)).pools


@pytest.fixture(scope="module")
def tongliao(tmp_path_factory) -> Path:
    """Tongliao solved (with the baselines), stress-tested and its status quo
    evaluated with the price of equalisation, then the report: as a user would."""
    out = tmp_path_factory.mktemp("tongliao")
    assert _run(["solve", str(TONGLIAO), "--spec", str(MODELS / "default.toml"), "--out", str(out),
                 "--compare", "--workers", "1", "--quiet"]) == 0
    assert _run(["simulate", str(TONGLIAO), "--spec", str(MODELS / "default.toml"), "--result",
                 str(out / "result.json"), "--years", "3", "--scenarios", "2000", "--out", str(out)]) in (0, 3)
    # T City's rule read strictly (no county below its rate alone, tolerance 0): with induced
    # utilisation the rates alone are close enough that the 0.01 tolerance of models/equalised.toml
    # lets the status quo keep the 2-point gap; strictly it cannot (P01 0.5858 vs P07 0.6104).
    strict = out / "equalised_strict.toml"
    strict.write_text((MODELS / "equalised.toml").read_text().replace("tolerance = 0.01", "tolerance = 0.0"))
    assert _run(["evaluate", str(TONGLIAO), "--spec", str(strict), "--plan",
                 str(Path(__file__).resolve().parent.parent / "docs" / "examples" / "status_quo_plan.json"),
                 "--subsidy", "--out", str(out)]) == 3
    assert _run(["report", str(out / "result.json"), "--stress", str(out / "stress.json"),
                 "--evaluation", str(out / "evaluation.json")]) == 0
    return out


@pytest.fixture(scope="module")
def status_quo(tmp_path_factory) -> Path:
    """Every Tongliao county alone: eight pools, eight colours."""
    out = tmp_path_factory.mktemp("status_quo")
    assert _run(["solve", str(TONGLIAO), "--spec", str(MODELS / "status_quo.toml"), "--out", str(out),
                 "--workers", "1", "--quiet"]) == 0
    return out


def _partial_instance() -> dict:
    """Two prefectures; the second cannot pay any rate (tiny revenue)."""
    counties = [county("900101", "9001", adjacent=["900102"]), county("900102", "9001", adjacent=["900101"]),
                county("900201", "9002", contribution_per_capita=20.0, adjacent=["900202"]),
                county("900202", "9002", contribution_per_capita=20.0, adjacent=["900201"])]
    return instance_dict(counties)


WITHIN_PREFECTURE = ('[pooling]\nscope = "optimise"\nwithin = "prefecture"\n[solvency]\nmeasure = "cvar"\n'
                     'level = 0.99\nreserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n')


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> Path:
    """A decomposed result with status `partial`: one block has no plan."""
    out = tmp_path_factory.mktemp("partial")
    (out / "instance.json").write_text(json.dumps(_partial_instance()))
    (out / "spec.toml").write_text(WITHIN_PREFECTURE)
    assert _run(["solve", str(out / "instance.json"), "--spec", str(out / "spec.toml"), "--out", str(out),
                 "--workers", "1", "--quiet"]) == 3
    data = json.loads((out / "result.json").read_text())
    assert data["status"] == "partial" and len(data["groups"]) == 2
    return out


# ---------------------------------------------------------------- the page

def test_report_writes_a_page_a_markdown_twin_and_its_figures(tongliao, capsys):
    page, markdown = tongliao / "report.html", tongliao / "report.md"
    assert page.is_file() and markdown.is_file()
    text = markdown.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(linked) == {"report-map.png", "report-rates.png", "report-losses.png", "report-stress.png",
                           "report-subsidy.png"}
    for name in linked:
        assert imread(tongliao / name).shape[0] > 100, name
    for words in ("Proven optimal", "approximate layout, not county boundaries", "Who gains, who loses",
                  "Stress test", "Price of equalisation", "max_rate_gap", "instance_sha256", "CVaR at level 0.99"):
        assert words.lower() in text.lower(), words
    html_text = page.read_text(encoding="utf-8")
    assert html_text.count("<img ") == len(linked)


def test_the_page_is_self_contained(tongliao):
    html_text = (tongliao / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html_text, re.I)
    sources = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", html_text, re.I)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources), sources[:3]
    assert "<script" not in html_text.lower() and "<link" not in html_text.lower()
    assert "@import" not in html_text and "url(" not in html_text


def test_without_out_the_report_goes_beside_the_result_and_instance_comes_from_provenance(tongliao, tmp_path):
    shutil.copy(tongliao / "result.json", tmp_path / "result.json")
    assert _run(["report", str(tmp_path / "result.json")]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"result.json", "report.html", "report.md", "report-map.png",
                                                      "report-rates.png", "report-losses.png", "page.html"}


def test_a_different_instance_file_is_used_with_a_warning(tongliao, tmp_path, capsys):
    data = json.loads(TONGLIAO.read_text(encoding="utf-8"))
    data["description"] = "edited copy"
    (tmp_path / "t.json").write_text(json.dumps(data))
    assert _run(["report", str(tongliao / "result.json"), "--instance", str(tmp_path / "t.json"),
                 "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "different instance file" in err
    assert "Warning:" in (tmp_path / "r" / "report.md").read_text()


def test_bad_inputs_exit_2_and_write_nothing(tongliao, tmp_path, capsys):
    data = json.loads((tongliao / "result.json").read_text())
    data["provenance"]["instance"] = "nowhere/instance.json"
    (tmp_path / "result.json").write_text(json.dumps(data))
    assert _run(["report", str(tmp_path / "result.json")]) == 2
    assert "--instance" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert _run(["report", str(tongliao / "result.json"), "--out", str(tmp_path / "file" / "r")]) == 2
    assert "--out" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text(json.dumps({"status": "optimal"}))
    assert _run(["report", str(tmp_path / "bad.json"), "--instance", str(TONGLIAO)]) == 2
    assert "bad.json: spec is missing" in capsys.readouterr().err
    assert _run(["report", str(tongliao / "result.json"), "--stress", str(tongliao / "result.json"),
                 "--out", str(tmp_path / "s")]) == 2
    assert "not a stress.json" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "file", "result.json"]


def test_a_result_with_no_plan_still_gives_a_page(tmp_path):
    data = _partial_instance()
    for c in data["counties"]:
        c["contribution_per_capita"] = 20.0
    (tmp_path / "i.json").write_text(json.dumps(data))
    (tmp_path / "s.toml").write_text(WITHIN_PREFECTURE)
    assert _run(["solve", str(tmp_path / "i.json"), "--spec", str(tmp_path / "s.toml"), "--out", str(tmp_path),
                 "--workers", "1", "--quiet"]) == 3
    assert _run(["report", str(tmp_path / "result.json")]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "This result has no plan (status infeasible)" in text and "Infeasible" in text


def test_a_partial_result_gets_its_table_of_blocks(partial):
    assert _run(["report", str(partial / "result.json")]) == 0
    text = (partial / "report.md").read_text()
    assert "## Independent blocks" in text and "Partial:" in text
    blocks = [line for line in text.splitlines() if line.startswith("| prefecture 900")]
    assert len(blocks) == 2
    assert any("infeasible" in line for line in blocks) and any("optimal" in line for line in blocks)
    assert "no plan" in text  # the counties of the block without a plan


# ---------------------------------------------------------------- figures checked for content

def _county_patches(fig) -> list[Polygon]:
    return [p for ax in fig.axes for p in ax.patches if str(p.get_gid()).startswith("county:")]


def test_the_map_has_one_colour_per_pool(status_quo):
    instance = pooling.load_instance(TONGLIAO)
    pools = _pools(status_quo / "result.json", instance)
    assert len(pools) == 8
    fig = figures.pool_map(instance, pools)
    patches = _county_patches(fig)
    assert len(patches) == len(instance.counties)
    colour_of: dict[str, set] = {}
    for patch in patches:
        colour_of.setdefault(patch.get_label(), set()).add(tuple(np.round(patch.get_facecolor(), 6)))
    assert sorted(colour_of) == sorted(p.id for p in pools)
    assert all(len(c) == 1 for c in colour_of.values())
    assert len({next(iter(c)) for c in colour_of.values()}) == len(pools)
    # ... and the rendered picture shows each of those colours over a real area.
    image = imread(io.BytesIO(figures.png_bytes(fig)))
    pixels = (image[:, :, :3] * 255).round().astype(int).reshape(-1, 3)
    for colours in colour_of.values():
        rgb = np.round(np.array(next(iter(colours))[:3]) * 255).astype(int)
        assert (np.abs(pixels - rgb).max(axis=1) <= 2).sum() > 500


def test_the_tongliao_map_is_one_pool_and_a_partial_map_shows_the_counties_without_plan(tongliao, partial):
    instance = pooling.load_instance(TONGLIAO)
    patches = _county_patches(figures.pool_map(instance, _pools(tongliao / "result.json", instance)))
    assert len({tuple(p.get_facecolor()) for p in patches}) == 1
    assert {p.get_label() for p in patches} == {"P01"}
    inst = pooling.load_instance(partial / "instance.json")
    labels = {p.get_gid(): p.get_label()
              for p in _county_patches(figures.pool_map(inst, _pools(partial / "result.json", inst)))}
    assert labels["county:900201"] == labels["county:900202"] == "no plan"
    assert labels["county:900101"] != "no plan"


def test_many_pools_get_distinct_colours():
    for count in (1, 8, 10, 11, 20, 21, 150, 400):
        colours = figures.pool_colours(count)
        assert len({tuple(np.round(np.array(c) * 255).astype(int)) for c in colours}) == count


def test_the_layout_is_deterministic_and_keeps_neighbours_close():
    instance = pooling.load_instance(INSTANCES / "henan.json")
    first, second = figures.graph_layout(instance), figures.graph_layout(instance)
    assert all(np.array_equal(first[c], second[c]) for c in first)
    neighbours = [np.linalg.norm(first[c.id] - first[o]) for c in instance.counties for o in c.adjacent
                  if o in first]
    ids = list(first)
    rng = np.random.default_rng(0)
    pairs = [rng.choice(len(ids), 2, replace=False) for _ in range(2000)]
    anyone = [np.linalg.norm(first[ids[i]] - first[ids[j]]) for i, j in pairs]
    assert np.median(neighbours) < 0.25 * np.median(anyone)
    cells = figures.county_cells(first)
    assert all(len(cell) >= 3 for cell in cells.values())


def test_the_loss_figure_marks_budget_var_and_cvar_where_the_result_says(tongliao):
    instance = pooling.load_instance(TONGLIAO)
    pool = _pools(tongliao / "result.json", instance)[0]
    from pooling.economics.behaviour import FIXED_POINT_TOLERANCE, multipliers
    from pooling.economics.pools import pool_model
    from pooling.risk.claims import lattice_law
    law = lattice_law(pool_model(instance, frozenset(pool.counties),
                                 multipliers=multipliers(instance, pool.counties, pool.rate)))
    fig = figures.loss_distributions([(pool, law)], "CNY", "cvar", 0.99)
    ax = fig.axes[0]
    marks = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1}
    assert marks["budget"] == pytest.approx(pool.budget / 1e6)
    assert marks["CVaR 0.99"] == pytest.approx(pool.rate * pool.cvar / 1e6)
    assert marks["VaR 0.99"] == pytest.approx(pool.rate * pool.var / 1e6)
    # at the maximum solvent rate, rate x CVaR is the budget: with the bundled response the rate is
    # the fixed point's solvent end, below B / CVaR by at most twice its tolerance (relative to ~0.6)
    assert marks["budget"] * (1.0 - 4.0 * FIXED_POINT_TOLERANCE) <= marks["CVaR 0.99"] <= marks["budget"]
    curve = max(ax.get_lines(), key=lambda line: len(line.get_xdata()))
    x, y = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert x[np.argmax(y)] == pytest.approx(pool.rate * pool.expected_cost / 1e6, rel=0.02)


def test_the_rate_figure_has_one_line_per_county_coloured_by_gain_or_loss(tongliao):
    instance = pooling.load_instance(TONGLIAO)
    data = json.loads((tongliao / "result.json").read_text())
    alone = price_alone(instance, spec_from_result(data))
    plan = {c: p["rate"] for p in data["pools"] for c in p["counties"]}
    ax = figures.rate_change(instance, plan, alone).axes[0]
    segments = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    assert len(segments) == len(instance.counties)
    gains = sum(1 for c in plan if plan[c] > alone[c])
    assert sum(1 for s in segments if s.get_color() == figures.GAIN) == gains
    assert sum(1 for s in segments if s.get_color() == figures.LOSS) == len(plan) - gains


def test_the_stress_figure_draws_each_year_with_its_interval(tongliao):
    stress = read_stress_record(json.loads((tongliao / "stress.json").read_text()), pooling.load_instance(TONGLIAO),
                                "stress.json")
    fig = figures.stress_figure(stress, ["P01"])
    left = fig.axes[0]
    line = next(line for line in left.get_lines() if line.get_label() == "P01")
    assert list(line.get_ydata()) == list(stress.pools[0].ruin_by_year)
    assert len(left.collections) == 1  # the shaded interval


# ---------------------------------------------------------------- frames

def test_result_files_read_back_exactly(tongliao, status_quo, partial):
    for path in (tongliao / "result.json", status_quo / "result.json", partial / "result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        result = pooling.read_result(path)
        assert isinstance(result, Result)
        assert result.to_dict() == data
        assert pooling.read_result(path).to_dict() == data
    assert "baselines" in pooling.read_result(tongliao / "result.json").to_dict()
    evaluation = json.loads((tongliao / "evaluation.json").read_text())
    assert Evaluation.from_dict(evaluation).to_dict() == evaluation


def test_read_result_names_what_is_wrong(tongliao, tmp_path):
    data = json.loads((tongliao / "result.json").read_text())
    data["pools"][0]["rate"] = "high"
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(pooling.InputError, match=r"pools\[0\].*'rate'"):
        pooling.read_result(tmp_path / "r.json")
    data = json.loads((tongliao / "result.json").read_text())
    data["surprise"] = 1
    (tmp_path / "r.json").write_text(json.dumps(data))
    with pytest.raises(pooling.InputError, match="unknown field 'surprise'"):
        pooling.read_result(tmp_path / "r.json")


def test_frames_have_one_row_per_pool_or_county(tongliao, partial):
    instance = pooling.load_instance(TONGLIAO)
    result = pooling.read_result(tongliao / "result.json")
    frame = result.to_frame(instance)
    assert list(frame["id"]) == ["P01"] and frame.loc[0, "n_counties"] == 8
    assert frame.loc[0, "rate"] == result.pools[0].rate and "科尔沁区" in frame.loc[0, "names"]
    assert "names" not in result.to_frame().columns
    evaluation = Evaluation.from_dict(json.loads((tongliao / "evaluation.json").read_text()))
    ev = evaluation.to_frame()
    assert len(ev) == 8 and {"violations", "rate_required", "top_up", "compensation"} <= set(ev.columns)
    assert ev["violations"].sum() >= 1
    stress = StressReport(json.loads((tongliao / "stress.json").read_text())).to_frame(instance)
    assert len(stress) == 1 and list(stress.filter(like="ruin_probability_year_").columns) == [
        "ruin_probability_year_1", "ruin_probability_year_2", "ruin_probability_year_3"]
    assert stress.loc[0, "ruin_probability_low"] <= stress.loc[0, "ruin_probability"]
    counties = county_frame(result, instance, rates_alone=price_alone(instance, spec_from_result(result.to_dict())))
    assert list(counties["id"]) == list(instance.ids) and set(counties["pool"]) == {"P01"}
    assert (counties["change"] == counties["rate"] - counties["rate_alone"]).all()
    inst = pooling.load_instance(partial / "instance.json")
    part = county_frame(pooling.read_result(partial / "result.json"), inst)
    assert part["pool"].isna().sum() == 2 and "rate_alone" not in part.columns
    for obj in (result, evaluation, StressReport(json.loads((tongliao / "stress.json").read_text()))):
        shown = obj._repr_html_()
        assert shown.startswith("<table>") and "</table>" in shown


def test_format_csv_and_parquet_write_the_pool_frame_beside_the_json(tmp_path):
    pandas = pytest.importorskip("pandas")
    assert _run(["solve", str(TONGLIAO), "--spec", str(MODELS / "status_quo.toml"), "--out", str(tmp_path),
                 "--workers", "1", "--quiet", "--format", "csv"]) == 0
    frame = pandas.read_csv(tmp_path / "result.csv", dtype={"counties": str})
    data = json.loads((tmp_path / "result.json").read_text())
    assert list(frame["id"]) == [p["id"] for p in data["pools"]]
    assert list(frame["rate"]) == [p["rate"] for p in data["pools"]]
    assert list(frame["counties"]) == [",".join(p["counties"]) for p in data["pools"]]
    pytest.importorskip("pyarrow", reason="parquet needs pyarrow (pooling[report])")
    assert _run(["simulate", str(TONGLIAO), "--spec", str(MODELS / "status_quo.toml"), "--result",
                 str(tmp_path / "result.json"), "--scenarios", "200", "--out", str(tmp_path),
                 "--format", "parquet"]) in (0, 3)
    stress = pandas.read_parquet(tmp_path / "stress.parquet")
    assert len(stress) == 8 and "ruin_probability_year_1" in stress.columns


def test_parquet_without_pyarrow_exits_2_before_any_work(tmp_path, monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    assert _run(["solve", str(TONGLIAO), "--out", str(tmp_path / "out"), "--format", "parquet"]) == 2
    assert "pooling[report]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- in a browser

@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium (chromium) is not installed; "
                                                   ".ci/run installs it with apt-get where it can")
def test_the_page_renders_in_headless_chromium(tongliao, tmp_path):
    """Every figure decodes with a size, no error is raised, nothing is
    fetched (every host name is unresolvable), and the screenshot is a page."""
    probe = ('<script>window.addEventListener("error", e => { document.documentElement.dataset.errors = '
             '(document.documentElement.dataset.errors || "") + (e.message || ("failed to load " + '
             '(e.target && e.target.tagName))) + ";"; }, true);'
             'window.addEventListener("load", () => { document.body.dataset.images = [...document.images].map('
             'i => (i.complete && i.naturalWidth > 0) ? i.naturalWidth + "x" + i.naturalHeight : "0x0")'
             '.join(","); document.body.dataset.loaded = "yes"; });</script>')
    page = (tongliao / "report.html").read_text(encoding="utf-8").replace("<head>", "<head>" + probe, 1)
    (tmp_path / "probe.html").write_text(page, encoding="utf-8")
    dom = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=10000", "--dump-dom", (tmp_path / "probe.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body and 'data-loaded="yes"' in body.group(1), dom.stdout[:500]
    assert "data-errors" not in dom.stdout.split("<head>", 1)[0], dom.stdout[:500]
    sizes = re.search(r'data-images="([^"]*)"', body.group(1)).group(1).split(",")
    assert len(sizes) == 5 and all(int(s.split("x")[0]) > 100 and int(s.split("x")[1]) > 100 for s in sizes)
    shot = tmp_path / "shot.png"
    run = subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                          f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars",
                          (tongliao / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    image = imread(shot)
    assert image.shape[:2] == (2000, 1200)
    colours = np.unique((image[:, :, :3] * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, tables and the map's colours, not a blank page


# ---------------------------------------------------------------- hostile text

SCRIPT, IMG, LINK, MATH = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))", \
    "$\\frac{$"
HOSTILE_IDS = (SCRIPT, IMG, LINK, MATH + "|a")
"""County ids (the first two in one prefecture, the last two in another)."""
HOSTILE_TEXT = {
    "title": f"{SCRIPT} | {LINK} {MATH}", "currency": IMG, "prefecture 1": f"<b onmouseover=alert(2)>{MATH}",
    "prefecture 2": "[p](javascript:alert(3))|", "province": "![i](javascript:alert(4)) *x* _y_ `z` ~~s~~",
    "stress": "<svg onload=alert(5)>", "names": (f"=HYPERLINK(\"http://x\") {SCRIPT}", f"{MATH} County",
                                                 f"{LINK} | col", f"-{IMG}\n# heading\n- item"),
}
"""Every string of a hostile instance and spec that the report shows, by where it comes from."""
HOSTILE_SPEC = ('[pooling]\nscope = "optimise"\nwithin = "prefecture"\n[solvency]\nmeasure = "cvar"\nlevel = 0.99\n'
                'reserve_share = 0.5\n[rates]\nmin = 0.3\nmax = 0.9\n'
                f'[simulation.stress.{json.dumps(HOSTILE_TEXT["stress"])}]\nfrequency_multiplier = 1.1\n'
                '[equalisation]\nmax_rate_gap = 0.0\n')


def _hostile_instance() -> dict:
    prefectures = (HOSTILE_TEXT["prefecture 1"], HOSTILE_TEXT["prefecture 1"], HOSTILE_TEXT["prefecture 2"],
                   HOSTILE_TEXT["prefecture 2"])
    counties = []
    for k, (cid, name, prefecture) in enumerate(zip(HOSTILE_IDS, HOSTILE_TEXT["names"], prefectures)):
        partner = HOSTILE_IDS[k ^ 1]
        counties.append(county(cid, prefecture, name=name, province=HOSTILE_TEXT["province"], adjacent=[partner],
                               enrollees=10_000 * (k + 1), contribution_per_capita=(260.0, 420.0, 300.0, 520.0)[k]))
    data = instance_dict(counties)
    data.update(name=HOSTILE_TEXT["title"], currency=HOSTILE_TEXT["currency"])
    return data


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A plan of an instance whose every name, id, title and currency is
    markup, solved, stress-tested under a scenario named as markup, its
    status quo evaluated with the price of equalisation, and reported."""
    out = tmp_path_factory.mktemp("hostile")
    (out / "i.json").write_text(json.dumps(_hostile_instance()), encoding="utf-8")
    (out / "s.toml").write_text(HOSTILE_SPEC, encoding="utf-8")
    (out / "plan.json").write_text(json.dumps({"pools": [[cid] for cid in HOSTILE_IDS]}), encoding="utf-8")
    common = ["--spec", str(out / "s.toml"), "--out", str(out)]
    assert _run(["solve", str(out / "i.json"), *common, "--workers", "1", "--quiet", "--format", "csv"]) == 0
    assert _run(["simulate", str(out / "i.json"), *common, "--result", str(out / "result.json"), "--scenarios",
                 "300", "--years", "2", "--stress", HOSTILE_TEXT["stress"]]) in (0, 3)
    (out / "equalised.toml").write_text(HOSTILE_SPEC + "no_county_worse_off = true\n", encoding="utf-8")
    assert _run(["evaluate", str(out / "i.json"), "--spec", str(out / "equalised.toml"), "--out", str(out),
                 "--plan", str(out / "plan.json"), "--subsidy"]) == 3
    assert _run(["report", str(out / "result.json"), "--stress", str(out / "stress.json"), "--evaluation",
                 str(out / "evaluation.json")]) == 0
    return out


def _hostile_strings() -> list[str]:
    """What the report must show as text: every hostile string it shows, line breaks as spaces."""
    texts = [*HOSTILE_IDS, *HOSTILE_TEXT["names"]] + [v for k, v in HOSTILE_TEXT.items()
                                                      if k not in ("names", "province")]  # provinces are not shown
    return [" ".join(t.splitlines()) for t in texts]


class _Page(HTMLParser):
    """Every element with its attributes, and the text a reader sees."""

    def __init__(self, html_text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.texts: list[str] = []
        self.feed(html_text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.texts))


MARKDOWN_ELEMENTS = {"h1": set(), "h2": set(), "p": set(), "ul": set(), "li": set(), "em": set(), "table": set(),
                     "thead": set(), "tbody": set(), "tr": set(), "th": {"style"}, "td": {"style"},
                     "img": {"src", "alt"}}
"""What the Markdown renderer may make of report.md: the report's own structure, nothing from an input."""
PAGE_ELEMENTS = {"html": {"lang"}, "head": set(), "meta": {"charset", "name", "content"}, "title": set(),
                 "style": set(), "body": set(), "h1": set(), "h2": set(), "p": {"class"}, "ul": set(), "li": set(),
                 "table": set(), "thead": set(), "tbody": set(), "tr": set(), "th": set(), "td": {"class"},
                 "figure": {"id"}, "img": {"src", "alt"}, "figcaption": set()}
"""The elements and attributes report.html is built from."""


def _markdown_to_html(text: str) -> str:
    """report.md rendered as a permissive renderer would: raw HTML passed through, GFM tables."""
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (the test extra)")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(text)


def _only_the_report_structure(page: _Page, allowed: dict[str, set], images: set[str]) -> None:
    for tag, attrs in page.elements:
        assert tag in allowed, f"<{tag} {attrs}> is not part of the report"
        assert set(attrs) <= allowed[tag], f"<{tag} {attrs}>: attributes from an input"
        assert not any("javascript:" in (value or "").lower() for value in attrs.values()), (tag, attrs)
        if tag == "img":
            assert attrs["src"] in images or attrs["src"].startswith("data:image/png;base64,"), attrs["src"]


def test_hostile_names_are_text_in_the_markdown_twin(hostile):
    """Rendered by a Markdown renderer that passes raw HTML through, report.md
    makes no element, attribute or link from any input string, and shows
    each of them as written."""
    text = (hostile / "report.md").read_text(encoding="utf-8")
    page = _Page(_markdown_to_html(text))
    images = {p.name for p in hostile.glob("report-*.png")}
    assert len(images) == 5
    _only_the_report_structure(page, MARKDOWN_ELEMENTS, images)
    assert {attrs["src"] for tag, attrs in page.elements if tag == "img"} == images
    for shown in _hostile_strings():
        assert shown in page.text, shown
    assert sum(1 for tag, _ in page.elements if tag == "h2") == text.count("\n## ")  # no heading from a name
    assert sum(1 for tag, _ in page.elements if tag == "table") == text.count("\n|---")


def test_hostile_names_are_text_in_the_page(hostile):
    page = _Page((hostile / "report.html").read_text(encoding="utf-8"))
    _only_the_report_structure(page, PAGE_ELEMENTS, set())
    for shown in _hostile_strings():
        assert shown in page.text, shown


def test_hostile_names_are_drawn_as_written_in_the_figures(hostile):
    """Names holding mathtext (`$\\frac{$`) are drawn as written: the report's
    figures exist, and a county label is the name itself."""
    for name in ("report-map", "report-rates", "report-losses", "report-stress", "report-subsidy"):
        assert imread(hostile / f"{name}.png").shape[0] > 100, name
    instance = pooling.load_instance(hostile / "i.json")
    fig = figures.pool_map(instance, _pools(hostile / "result.json", instance))
    labels = [t for ax in fig.axes for t in ax.texts if "frac" in t.get_text()]
    assert labels and all(not t.get_parse_math() for t in labels)
    figures.png_bytes(fig)


def test_hostile_names_cannot_start_a_spreadsheet_formula(hostile):
    """result.csv (solve --format csv) has the names: none starts a formula."""
    rows = list(csv.reader(io.StringIO((hostile / "result.csv").read_text(encoding="utf-8"))))
    names = rows[0].index("names")
    assert any(row[names].startswith("'-<img") for row in rows[1:])
    for row in rows[1:]:
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                float(cell)  # only a negative number may start so


def test_escape_markdown_shows_any_text_as_written():
    """The law of `escape_markdown`: in every place the report puts text (a
    paragraph, a list item, a heading, emphasis, a table cell), any string
    renders as itself (line breaks as spaces, surrounding spaces dropped) and
    makes no element."""
    pytest.importorskip("markdown_it", reason="markdown-it-py (the test extra)")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pooling.outputs.escaping import escape_markdown

    pieces = st.sampled_from(list("ab1 _*-+=#>`~|[]()!$\\<&;:/.{}^\"'\t\n0\xa0")
                             + ["javascript:", "<script>", "&lt;", "```", "    ", "1.", "---", "http://x.y"])
    texts = st.one_of(st.text(max_size=20), st.lists(pieces, max_size=14).map("".join))

    def visible(text: str) -> str:
        return re.sub(r"[ \t]+", " ", " ".join(text.splitlines()).replace("\x00", "\ufffd")).strip()

    places = {"p": ("{}", True, {"p"}), "li": ("- {}", True, {"ul", "li"}), "h2": ("## {}", False, {"h2"}),
              "em": ("*{}*", False, {"p", "em"}),
              "td": ("| h |\n|---|\n| {} |", False, {"table", "thead", "tbody", "tr", "th", "td"})}

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(texts)
    def law(text):
        if not visible(text):
            return
        for place, (template, block_start, structure) in places.items():
            page = _Page(_markdown_to_html(template.format(escape_markdown(text, block_start=block_start))))
            assert {tag for tag, _ in page.elements} <= structure, (place, text)
            shown = visible("".join(page.texts))
            assert (shown[2:] if place == "td" else shown) == visible(text), (place, text)

    law()


# ---------------------------------------------------------------- files that are not what they should be

def _edit(path: list, value):
    """An edit setting the field at `path` (keys and indices) to `value`."""
    def apply(data):
        for step in path[:-1]:
            data = data[step]
        data[path[-1]] = value
    return apply


BAD_FILES = [
    ("result.json", ["numerics", "max_mean_rel_error"], "x", "numerics.max_mean_rel_error must be a number"),
    ("result.json", ["pools", 0, "max_rate"], 1.5, "pools[0].max_rate must be in [-1e+20, 1], got 1.5"),
    ("result.json", ["pools", 0, "counties"], ["outside"], 'pools[0]: county "outside" is not in instance'),
    ("result.json", ["pools", 0, "counties"], [], "pools[0] must be a non-empty list of county ids"),
    ("result.json", ["pools", 0, "budget"], 1e300, "pools[0].budget must be in [-1e+20, 1e+20]"),
    ("result.json", ["candidate_generation"], {"method": "column_generation", "rounds": "many"},
     'candidate_generation.rounds must be an integer, got "many"'),
    ("result.json", ["baselines", 0], 7, "baselines[0] must be a baseline object, got 7"),
    ("result.json", ["baselines", 0, "objective"], "high", 'baselines[0].objective must be a number, got "high"'),
    ("result.json", ["provenance", "instance"], "x" * 5000, "not found"),
    ("stress.json", ["pools", 0, "ruin_probability_ci"], [0.1], "pools[0].ruin_probability_ci must hold 2 numbers"),
    ("stress.json", ["pools", 0, "deficit_probability_ci"], [0.5, 0.6],
     "pools[0].deficit_probability_ci must be an interval [low, high] holding the estimate"),
    ("stress.json", ["pools", 0, "ruin_probability_by_year"], [0.0], "ruin_probability_by_year must hold 3 numbers"),
    ("stress.json", ["pools", 0, "ruin_probability_by_year", 1], "0", "ruin_probability_by_year[1] must be a number"),
    ("stress.json", ["scenarios"], 10**400, "scenarios must be in [1, 10000000], got an integer of 401 digits"),
    ("stress.json", ["pools", 0, "counties"], ["outside"], 'pools[0]: county "outside" is not in instance'),
    ("stress.json", ["plan", "any_ruin_probability"], 2, "plan.any_ruin_probability must be in [0, 1]"),
    ("stress.json", ["stress"], "epidemic", 'stress must be a list of strings, got "epidemic"'),
    ("evaluation.json", ["subsidy", "pools", 0, "counties"], ["outside"],
     'subsidy: pools[0]: county "outside" is not in instance'),
    ("evaluation.json", ["subsidy", "pools", 0, "county_compensation", 0, "id"], "150521",
     'subsidy.pools[0].county_compensation[0].id must be a county of this pool, got "150521"'),
    ("evaluation.json", ["subsidy", "total_top_up"], "lots", 'subsidy.total_top_up must be a number, got "lots"'),
    ("evaluation.json", ["violations", 0, "rates"], ["x"], 'violations[0].rates[0] must be a number, got "x"'),
    ("evaluation.json", ["violations", 0, "pools"], ["P99"], 'violations[0].pools name pools of this file'),
    ("evaluation.json", ["pools", 1, "id"], "P01", 'pools[1].id "P01" is also the id of pools[0]'),
]
"""(file, field, value, what the error says). Before the validating readers, 10 of these were a
traceback (ValueError, TypeError, OverflowError, KeyError, OSError), 10 a page that silently showed
them (a pool of no county, a budget of 1e300, "epidemic" as the scenarios e+p+i+...), and 3 exited 2
with a vaguer message."""


@pytest.mark.parametrize(("name", "field", "value", "message"), BAD_FILES,
                         ids=[f"{n}:{'.'.join(map(str, f))}" for n, f, _, _ in BAD_FILES])
def test_a_bad_result_stress_or_evaluation_file_exits_2_naming_the_field(tongliao, tmp_path, capsys, name, field,
                                                                          value, message):
    data = json.loads((tongliao / name).read_text(encoding="utf-8"))
    _edit(field, value)(data)
    files = {n: tongliao / n for n in ("result.json", "stress.json", "evaluation.json")}
    files[name] = tmp_path / name
    files[name].write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    code = _run(["report", str(files["result.json"]), "--stress", str(files["stress.json"]), "--evaluation",
                 str(files["evaluation.json"]), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and f"{tmp_path / name}: " in err and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "nested more than"),
    ('{"pools": ' + "1" * 5000 + "}", "a number with more digits than can be read"),
])
def test_json_python_cannot_parse_exits_2(tmp_path, capsys, text, message):
    """Python's JSON parser gives up on lists nested thousands deep
    (RecursionError) and integers of over 4,300 digits (ValueError): any file
    the CLI reads is refused with a message."""
    (tmp_path / "result.json").write_text(text)
    assert _run(["report", str(tmp_path / "result.json"), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_rates_alone_are_priced_under_the_spec_s_settlement_rules():
    """price_alone (the report's and frames' "rate alone") prices each county as
    the status quo's evaluation does, under the spec's [network] settlement (it read the
    instance's own out-of-network terms)."""
    instance = pooling.load_instance(INSTANCES / "xinyang.json")
    base = tomllib.loads((MODELS / "default.toml").read_text()) | {"pooling": {"scope": "county"}}
    spec = pooling.spec_from_dict(base | {"network": {"settlement": "2020"}})
    # each county alone without contract options (with the response a solve gives Gushi alone the
    # Beijing contracts, a different pool from the status quo's)
    alone_plan = pooling.evaluate(instance, spec, [[c] for c in instance.ids])
    solved = {p.pricing.counties[0]: p.pricing.max_rate for p in alone_plan.pools}
    alone = price_alone(instance, spec)
    assert alone == pytest.approx({cid: max(0.0, r) for cid, r in solved.items()}, rel=ROUNDING)
    plain = price_alone(instance, pooling.spec_from_dict(base))
    assert any(abs(alone[c] - plain[c]) > 1e-4 for c in alone)
