"""What the report (Markdown and HTML) and the terminal say about a result's
objective and gap: a proven optimum's rounding-sized gap reads 0, not
"1.4e-14%" or "-0.000000"; Atkinson's objective names its aversion wherever
the kind is shown."""

from __future__ import annotations

import json

import pytest

from pooling.cli import main
from pooling.data.instance import load_instance
from pooling.data.options import SolveOptions
from pooling.data.spec import spec_from_dict
from pooling.optimise.solve import solve
from pooling.outputs.summaries import GAP_SHOWN_AS_ZERO, result_summary, shown_gap
from tests.factories import random_instance_dict, spec_dict

pytest.importorskip("matplotlib", reason="the optional extra pooling[report] (matplotlib)")


def _written(tmp_path, objective: dict, gap: float | None = None):
    """(result.json's data, the instance, its path) of a small solve, its gap replaced by `gap` if given."""
    instance_path = tmp_path / "instance.json"
    instance_path.write_text(json.dumps(random_instance_dict(3, 4)))
    instance = load_instance(instance_path)
    data = solve(instance, spec_from_dict(spec_dict(objective=objective))).to_dict()
    if gap is not None:
        data["gap"] = gap
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    return data, instance, instance_path, path


def _report(tmp_path, instance_path, path) -> tuple[str, str]:
    out = tmp_path / "report"
    assert main(["report", str(path), "--instance", str(instance_path), "--out", str(out)]) == 0
    return (out / "report.md").read_text(encoding="utf-8"), (out / "report.html").read_text(encoding="utf-8")


def test_the_floor_is_the_default_relative_gap_asked_of_the_solver():
    assert GAP_SHOWN_AS_ZERO == SolveOptions().mip_rel_gap
    assert shown_gap(1.4e-16) == shown_gap(-3e-14) == 0.0 and shown_gap(None) is None
    assert shown_gap(0.02) == 0.02 and shown_gap(2 * GAP_SHOWN_AS_ZERO) == 2 * GAP_SHOWN_AS_ZERO


@pytest.mark.parametrize("gap", [1.4e-16, -2.2e-16])
def test_a_rounding_sized_gap_reads_0_in_the_report_and_the_terminal(tmp_path, capsys, gap):
    """Before: "(gap 1.4e-14%)" in report.md/HTML and "gap -0.000000" on the terminal."""
    data, instance, instance_path, path = _written(tmp_path, {"kind": "max_mean_rate"}, gap)
    markdown, html = _report(tmp_path, instance_path, path)
    for text in (markdown, html):
        assert "(gap 0%)" in text and "e-1" not in text.split("(gap")[1][:12]
    printed = result_summary(data, instance)
    assert "; gap 0.000000;" in printed and "-0.000000" not in printed


def test_a_real_gap_is_shown_as_it_is(tmp_path):
    data, instance, instance_path, path = _written(tmp_path, {"kind": "max_mean_rate"}, 0.0123)
    markdown, _ = _report(tmp_path, instance_path, path)
    assert "(gap 1.23%)" in markdown
    assert "; gap 0.012300;" in result_summary(data, instance)


def test_atkinsons_aversion_is_shown_wherever_the_objective_kind_is(tmp_path):
    """Before: the report said "the spec's aversion to inequality" without its value, the terminal the kind alone."""
    data, instance, instance_path, path = _written(tmp_path, {"kind": "max_equity_weighted_rate", "aversion": 2.5})
    markdown, html = _report(tmp_path, instance_path, path)
    for text in (markdown, html):
        assert text.count("aversion to inequality 2.5") >= 2   # the certificate(s) and the spec's objective
        assert "the spec's aversion" not in text
    assert "objective (max_equity_weighted_rate, aversion 2.5)" in result_summary(data, instance)
    (tmp_path / "plain").mkdir()
    plain, instance, _, _ = _written(tmp_path / "plain", {"kind": "max_mean_rate"})
    assert "objective (max_mean_rate) " in result_summary(plain, instance)
