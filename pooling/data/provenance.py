"""Provenance of every output: what went in (file paths and hashes) and what
computed it (package, solver and library versions, seed), so a reader can
reproduce it.

Paths are recorded one way however they were named: a file inside the
working folder by its path relative to it (``instances/tongliao.json``,
typed or the CLI's default alike), any other file by its absolute path; the
folders are resolved first (``..``, symlinks), the file name kept. So the same
run from the same folder records the same bytes, on any machine.
"""

from __future__ import annotations

import functools
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pooling.data.instance import Instance
    from pooling.data.spec import Spec

LIBRARIES = ("numpy", "scipy", "pyomo", "highspy")
"""The libraries whose versions can change a result (`versions`)."""


@functools.cache   # a lookup scans the installed distributions (~1.5 ms); a run asks per block
def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    """pooling's, Python's and LIBRARIES' versions (`pooling --version`)."""
    return {"pooling": package_version("pooling"), "Python": platform.python_version()} | {
        name: package_version(name) for name in LIBRARIES}


def recorded_path(source: str) -> str:
    """How provenance records the file `source` (see the module docstring);
    a source that is not a file (an instance built from a dict: "<memory>")
    is kept as it is."""
    if not source or not os.path.isfile(source):
        return source
    path = Path(source)
    where = Path(os.path.realpath(path.parent)) / path.name
    here = Path(os.path.realpath(os.getcwd()))
    try:
        return where.relative_to(here).as_posix()
    except ValueError:
        return str(where)


def provenance(instance: Instance, spec: Spec, solver: str | None, solver_version: str | None) -> dict:
    return {
        "instance": recorded_path(instance.source),
        "instance_sha256": instance.sha256,
        "spec": recorded_path(spec.source),
        "spec_sha256": spec.sha256,
        "pooling_version": package_version("pooling"),
        "solver": solver,
        "solver_version": solver_version,
        "python": platform.python_version(),
        "numpy_version": package_version("numpy"),
        "scipy_version": package_version("scipy"),
        "pyomo_version": package_version("pyomo"),
        "seed": spec.simulation.seed,
    }
