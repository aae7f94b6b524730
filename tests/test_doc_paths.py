"""Every file and module the docs name exists (paths move when modules move).

Scanned: README.md, docs/*.md, instances/README.md, benchmarks/README.md.
- A path under pooling/, instances/, benchmarks/, tests/, docs/ or models/
  must exist; `tests/references.ExpCompound` (a module, then a name in it)
  needs tests/references.py defining ExpCompound.
- A dotted name `pooling.a.b...` must import: its longest module prefix is
  found and the rest are attributes of it. `pooling.name` with one dot is a
  public name or subpackage of `pooling`, or a key of a spec's [pooling] table
  (`pooling.scope`, `pooling.within`, ...).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re

import pytest

import pooling
from pooling.data.spec import PoolingRules
from tests.factories import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "instances" / "README.md",
        REPO / "benchmarks" / "README.md"]
PATH = re.compile(r"\b(?:pooling|instances|benchmarks|tests|docs|models)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
DOTTED = re.compile(r"(?<![\w./])pooling(?:\.[A-Za-z_]\w*)+(?![\w/])")
"""A dotted module name; not a format tag such as pooling.instance/2 (docs/formats.md)."""
SPEC_POOLING_KEYS = {f.name for f in dataclasses.fields(PoolingRules)}


def _mentions(pattern):
    for doc in DOCS:
        text = doc.read_text("utf-8")
        for match in pattern.finditer(text):
            line = text[:match.start()].count("\n") + 1
            yield pytest.param(match.group(0), id=f"{doc.relative_to(REPO)}:{line}:{match.group(0)}")


def _path_exists(named: str) -> bool:
    if (REPO / named).exists():
        return True
    module, _, attribute = named.rpartition(".")     # tests/references.ExpCompound
    source = REPO / f"{module}.py"
    return (bool(attribute) and source.is_file()
            and re.search(rf"^(class|def) {re.escape(attribute)}\b|^{re.escape(attribute)} =",
                          source.read_text("utf-8"), re.M) is not None)


@pytest.mark.parametrize("named", list(_mentions(PATH)))
def test_named_path_exists(named):
    assert _path_exists(named), f"{named} is named in the docs but does not exist"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    if len(parts) == 2 and parts[1] in SPEC_POOLING_KEYS:
        return True
    target, name = importlib.import_module(parts[0]), parts[0]
    for part in parts[1:]:
        name = f"{name}.{part}"
        if hasattr(target, "__path__") and importlib.util.find_spec(name) is not None:
            target = importlib.import_module(name)     # a subpackage or module
        elif hasattr(target, part):
            target = getattr(target, part)
        else:
            return False
    return True


@pytest.mark.parametrize("dotted", list(_mentions(DOTTED)))
def test_named_module_or_attribute_exists(dotted):
    assert _resolves(dotted), f"{dotted} is named in the docs but does not import"


def test_the_scan_finds_what_it_checks():
    """The patterns see both kinds of mention (an empty scan would pass vacuously)."""
    assert {"pooling/risk/claims.py", "pooling/optimise/bruteforce.py"} <= {p.values[0] for p in _mentions(PATH)}
    assert "pooling.risk.claims.aggregate" in {p.values[0] for p in _mentions(DOTTED)}
    assert not _resolves("pooling.claims.aggregate") and not _path_exists("pooling/claims.py")
    assert pooling.__name__ == "pooling"
