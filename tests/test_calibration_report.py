"""`pooling report DIR/calibration.json` (issue 24 item 6): the calibration
report from a small synthetic panel shows the estimates with their intervals,
fitted against observed admissions and the severity's QQ plot; names from the
file are escaped; a tampered file exits 2 naming the field and writes nothing."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the optional extra pooling[report] (matplotlib)")

from pooling.cli import main
from pooling.data.formats import format_tag

HOSTILE = '<b>bold</b> | *em* [link](http://example.com) $x$'
"""A county name and id that would be markup in HTML or Markdown if not escaped."""


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Path:
    """The README's synthetic panel (12 counties, 2 prefectures, 8 years),
    calibrated with CLAIMS (cal/) and from HISTORY alone (history-only/)."""
    folder = tmp_path_factory.mktemp("calreport")
    tables = folder / "panel"
    assert main(["generate", "--counties", "12", "--prefectures", "2", "--seed", "4", "--history", "8",
                 "--out", str(tables)]) == 0
    assert main(["calibrate", str(tables / "funds.csv"), str(tables / "history.csv"), "--claims",
                 str(tables / "claims.csv"), "--base", str(tables / "instance.json"), "--out",
                 str(folder / "cal")]) == 0
    assert main(["calibrate", str(tables / "funds.csv"), str(tables / "history.csv"), "--out",
                 str(folder / "history-only")]) == 0
    return folder


def _load(panel: Path, name: str = "cal") -> dict:
    return json.loads((panel / name / "calibration.json").read_text())


def test_calibration_json_is_tagged_and_carries_what_the_figures_need(panel):
    record = _load(panel)
    assert record["format"] == format_tag("calibration") == "pooling.calibration/1"
    years = record["observed"]["years"]
    for county_id, fitted in record["observed"]["fitted"].items():
        observed = record["observed"]["admissions"][county_id]
        assert len(fitted) == len(observed) == len(years)
        ratio = sum(observed) / sum(fitted)
        assert 0.9 < ratio < 1.1, (county_id, ratio)   # the fit follows each county's own level
        assert record["counties"][county_id]["name"].startswith("Synthetic county")
    qq = record["severity"]["qq"]
    assert len(qq["probabilities"]) == len(qq["empirical"]) == len(qq["fitted"]) <= 101
    assert qq["probabilities"] == sorted(qq["probabilities"])
    # the synthetic claims are lognormal and the lognormal is chosen: the QQ points lie near the line
    central = [(e, f) for p, e, f in zip(qq["probabilities"], qq["empirical"], qq["fitted"]) if 0.05 <= p <= 0.95]
    assert max(abs(math.log(e / f)) for e, f in central) < 0.15
    assert "qq" not in _load(panel, "history-only")["severity"]


def test_report_shows_estimates_intervals_fit_and_qq(panel, capsys):
    out = panel / "report"
    assert main(["report", str(panel / "cal" / "calibration.json"), "--out", str(out)]) == 0
    assert "2 figures" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["calibration-fit.png", "calibration-severity-qq.png",
                                                     "report.html", "report.md"]
    for name in ("calibration-fit.png", "calibration-severity-qq.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    record = _load(panel)
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for text in (md, page):
        for item in (record["trend"]["admissions"], record["trend"]["cost"],
                     *(record["shock_variance"][p] for p in ("national", "prefecture", "county")),
                     record["severity"]["intervals"]["cv"]):
            row = " | ".join(f"{item[k]:.4g}" for k in ("estimate", "low", "high"))
            assert row in md, row
        for county_id, county in record["counties"].items():
            rate = county["admission_rate"]
            assert f"{county_id} | {county['name']} | {county['prefecture']} | {rate['estimate']:.4g} | " \
                   f"{rate['low']:.4g} | {rate['high']:.4g} | {county['credibility']:.3f}" in md
        assert "Fitted against observed admissions" in text and "Severity fit (QQ plot)" in text
        assert "<script" not in page
    assert page.count("data:image/png;base64,") == 2


def test_history_only_report_says_so_and_draws_no_qq(panel, capsys):
    out = panel / "report-history"
    assert main(["report", str(panel / "history-only" / "calibration.json"), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "Severity from HISTORY alone" in md and "no QQ plot" in md
    assert not (out / "calibration-severity-qq.png").exists()
    assert (out / "calibration-fit.png").exists()


def test_report_is_deterministic(panel, tmp_path):
    for name in ("a", "b"):
        assert main(["report", str(panel / "cal" / "calibration.json"), "--out", str(tmp_path / name)]) == 0
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_hostile_county_name_and_id_are_escaped(panel, tmp_path):
    record = _load(panel)
    first = next(iter(record["counties"]))
    record["counties"] = {(HOSTILE if k == first else k): v for k, v in record["counties"].items()}
    record["counties"][HOSTILE]["name"] = HOSTILE
    for key in ("admissions", "enrollees", "fitted"):
        series = record["observed"][key]
        record["observed"][key] = {(HOSTILE if k == first else k): v for k, v in series.items()}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(record))
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "<b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>" not in md and " [link](http" not in md
    assert "&lt;b&gt;bold&lt;/b&gt; \\| \\*em\\* \\[link\\](http://example.com) \\$x\\$" in md


def _tamper(record: dict, change: str) -> None:
    first = next(iter(record["counties"]))
    if change == "string for a number":
        record["counties"][first]["credibility"] = "0.84"
    elif change == "missing trend":
        del record["trend"]
    elif change == "missing interval end":
        del record["shock_variance"]["county"]["high"]
    elif change == "short series":
        record["observed"]["admissions"][first] = record["observed"]["admissions"][first][:-1]
    elif change == "interval without its estimate":
        record["trend"]["admissions"]["low"] = record["trend"]["admissions"]["high"] + 1.0
    elif change == "unknown county in observed":
        record["observed"]["enrollees"]["nowhere"] = [1] * len(record["observed"]["years"])
    elif change == "qq of another length":
        record["severity"]["qq"]["fitted"] = record["severity"]["qq"]["fitted"][:3]
    elif change == "newer version":
        record["format"] = format_tag("calibration", 2)


@pytest.mark.parametrize("change, expected", [
    ("string for a number", 'counties.{first}.credibility must be a number, got "0.84"'),
    ("missing trend", "trend is missing"),
    ("missing interval end", "shock_variance.county.high is missing"),
    ("short series", "observed.admissions.{first} must hold 8 numbers (one a year), got 7"),
    ("interval without its estimate", "trend.admissions must be an interval holding its estimate"),
    ("unknown county in observed", "observed.enrollees.nowhere is not a county of `counties`"),
    ("qq of another length", "severity.qq.fitted must hold"),
    ("newer version", '"pooling.calibration/2" is newer than this pooling reads'),
])
def test_tampered_calibration_json_exits_2_naming_the_field(panel, tmp_path, capsys, change, expected):
    record = _load(panel)
    first = next(iter(record["counties"]))
    _tamper(record, change)
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and expected.format(first=first) in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "nothing written"


def test_result_only_options_are_refused_with_a_calibration_json(panel, tmp_path, capsys):
    source = tmp_path / "calibration.json"
    shutil.copy(panel / "cal" / "calibration.json", source)
    assert main(["report", str(source), "--stress", "stress.json", "--out", str(tmp_path / "out")]) == 2
    assert "--stress goes with a result.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


DELETE = object()
"""A marker: delete the field instead of replacing it."""


def _leaves(data, path=()):
    """Every (path, value) of a parsed JSON tree, containers included."""
    yield path, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield from _leaves(value, (*path, key))


def test_any_edited_field_is_read_or_refused_as_input_error(panel):
    """The reader's law: a calibration.json with any one field replaced by any
    JSON value, or deleted, gives a record or an InputError, never another exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pooling.data.calibration_inputs import read_calibration_record
    from pooling.errors import InputError

    original = _load(panel)
    paths = [path for path, _ in _leaves(original) if path]
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
    values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=4), scalars,
                                                                               max_size=3))

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(st.sampled_from(paths), st.one_of(st.just(DELETE), values))
    def law(path, value):
        record = json.loads(json.dumps(original))
        target = record
        for step in path[:-1]:
            target = target[step]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        try:
            read_calibration_record(record, "calibration.json")
        except InputError as exc:
            assert str(exc).startswith("calibration.json: ")

    law()
