"""`pooling solve` in mode "adjustment_fund" as a user meets it: a bar of the
groups priced on stderr (--progress / --quiet, as the unified solve), the
same stdout and result.json with or without it, Ctrl-C ending the run with
exit 130 and nothing written, and the example spec docs/examples/adjustment_fund.toml
(run by the README on docs/examples/three_county_funds.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pooling.optimise.adjustment as adjustment
from pooling.cli import EXIT_INTERRUPTED, main
from pooling.data.instance import load_instance
from pooling.data.spec import load_spec
from pooling.optimise.candidates import candidate_pools

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
SPEC = EXAMPLES / "adjustment_fund.toml"
INSTANCE = EXAMPLES / "three_county_funds.json"
README = Path(__file__).resolve().parent.parent / "README.md"


def _spec_with_one_share(tmp_path) -> Path:
    """The example spec with a menu of one share: the same groups, a third of the work."""
    text = SPEC.read_text(encoding="utf-8").replace("contribution = [0.0, 0.03, 0.05, 0.10]", "contribution = [0.05]")
    assert "contribution = [0.05]" in text
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _without_timings(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("wall_seconds", "timings")}


def test_progress_counts_the_groups_priced_on_stderr_only(tmp_path, capsys):
    """--progress shows "groups priced" up to the number of candidate groups
    (before: no output at all for minutes); stdout and result.json are the
    same as with --quiet, which shows nothing on stderr."""
    spec = _spec_with_one_share(tmp_path)
    groups = len(candidate_pools(load_instance(INSTANCE), load_spec(spec)))
    assert groups == 6   # A, B, C, AB, BC, ABC: a path of three
    base = ["solve", str(INSTANCE), "--spec", str(spec)]
    assert main([*base, "--out", str(tmp_path / "shown"), "--progress"]) == 0
    shown = capsys.readouterr()
    assert "groups priced" in shown.err and f"{groups}/{groups}" in shown.err
    assert main([*base, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert shown.out.replace("shown", "quiet") == quiet.out
    written = [json.loads((tmp_path / name / "result.json").read_text()) for name in ("shown", "quiet")]
    assert _without_timings(written[0]) == _without_timings(written[1])


def test_ctrl_c_while_groups_are_priced_exits_130_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """A KeyboardInterrupt in the middle of the pricing (the second group):
    the project's exit code for Ctrl-C, one line on stderr, no traceback, no
    result.json."""
    real = adjustment.choose_contribution
    calls = []

    def interrupted(pricer, group):
        calls.append(group)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(pricer, group)
    monkeypatch.setattr(adjustment, "choose_contribution", interrupted)
    out = tmp_path / "out"
    code = main(["solve", str(INSTANCE), "--spec", str(_spec_with_one_share(tmp_path)), "--out", str(out),
                 "--progress"])
    err = capsys.readouterr().err
    assert code == EXIT_INTERRUPTED == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not (out / "result.json").exists()


def test_the_readme_runs_the_example_spec():
    """The example a user can copy is run by tests/test_docs.py through the README."""
    commands = [line for line in README.read_text(encoding="utf-8").splitlines()
                if line.startswith("pooling solve") and "docs/examples/adjustment_fund.toml" in line]
    assert commands and "docs/examples/three_county_funds.json" in commands[0]
    spec = load_spec(SPEC)
    assert spec.adjustment_fund is not None and spec.adjustment_fund.contribution == (0.0, 0.03, 0.05, 0.10)
