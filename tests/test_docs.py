"""The docs run as written: every fenced block in README.md and docs/*.md is
executed or checked.

Each fence carries a language tag saying what it is:
- ``sh``: commands, run one line at a time with bash in a fresh copy of the
  repository; a line ending in ``# exit N`` must exit N, any other must exit 0.
  A line installing an optional extra (``report``, ``distributed``) is not
  run: the test extra already holds what the commands after it need.
  The README's two set-up lines create a venv and install: the test suite is
  itself their second line (`.ci/run` runs it verbatim, checked here), and the
  first line's command after the install runs against this environment.
- ``python``: run with this interpreter in the same kind of copy.
- ``json`` / ``toml``: parsed; an instance or spec example is loaded and validated.
- ``text``: synopses, diagrams and printed output; not run.
A fence without a tag fails the test, so every block is classified on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pooling import instance_from_dict, spec_from_dict

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TAGS = {"sh", "python", "json", "toml", "text"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)
SETUP_PREFIX = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install (-e \.|-e \"\.\[test\]\")( && )?")
EXTRA_INSTALL = re.compile(r'^\.venv/bin/pip install -e "\.\[(report|distributed)\]"$')
"""Installing an optional extra into the README's venv: the test extra holds what
the commands after it need, so in the tests the line is recognised, not run (running it would
re-point the test environment's editable install at the temporary copy)."""
EXIT_NOTE = re.compile(r"#\s*exit\s+(\d+)\s*$")
COMMAND_TIMEOUT = 600
"""Seconds for one documented command; the slowest (a stress test) takes well under a minute."""


def _blocks():
    for path in DOCS:
        for match in FENCE.finditer(path.read_text(encoding="utf-8")):
            line = path.read_text(encoding="utf-8")[:match.start()].count("\n") + 1
            yield pytest.param(path, line, match.group(1).strip(), match.group(2),
                               id=f"{path.relative_to(ROOT)}:{line}")


BLOCKS = list(_blocks())


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A copy of the repository's tracked files (so commands write only there),
    with `.venv` pointing at the environment running the tests."""
    target = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=False)
    files = ([f for f in listed.stdout.decode().split("\0") if f] if listed.returncode == 0
             else [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts
                   and ".git" not in p.parts])
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return target


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def test_every_fence_is_tagged():
    untagged = [p.id for p in BLOCKS if p.values[2].split(" ")[0] not in TAGS]
    assert not untagged, f"fences without one of the tags {sorted(TAGS)}: {untagged}"


def test_readme_opens_with_the_two_setup_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = FENCE.search(readme)
    lines = [line for line in first.group(2).splitlines() if line.strip()]
    assert len(lines) == 2 and all(SETUP_PREFIX.match(line) for line in lines), lines
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert lines[1] in ci, ".ci/run must run the README's test command verbatim"


@pytest.mark.parametrize(("path", "line", "tag", "body"), BLOCKS)
def test_block_runs_as_written(path, line, tag, body, sandbox):
    kind = tag.split(" ")[0]
    if kind == "text":
        return
    if kind == "json":
        data = json.loads(body)
        if isinstance(data, dict) and "counties" in data:
            instance_from_dict(data, source=f"{path.name}:{line}")
        return
    if kind == "toml":
        data = tomllib.loads(body)
        if "solvency" in data:
            spec_from_dict(data, source=f"{path.name}:{line}")
        return
    if kind == "python":
        done = subprocess.run([sys.executable, "-c", body], cwd=sandbox, env=_environment(),
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        assert done.returncode == 0, f"{path.name}:{line}\n{done.stdout}\n{done.stderr}"
        return
    for command in body.splitlines():
        command = command.strip()
        if not command or command.startswith("#"):
            continue
        setup = SETUP_PREFIX.match(command)
        if setup:
            command = command[setup.end():]
            if not command or command.startswith(".venv/bin/pytest"):
                continue  # the test suite itself, run by .ci/run
        if EXTRA_INSTALL.match(command):
            continue
        note = EXIT_NOTE.search(command)
        expected = int(note.group(1)) if note else 0
        done = subprocess.run(["bash", "-c", command], cwd=sandbox, env=_environment(), capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, check=False)
        assert done.returncode == expected, (f"{path.name}:{line}: `{command}` exited {done.returncode}, "
                                             f"expected {expected}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        assert "Traceback" not in done.stderr, done.stderr
