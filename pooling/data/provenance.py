"""Provenance of every output: what went in (file hashes) and what computed it
(package, solver and library versions, seed), so a reader can reproduce it."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

from pooling.data.instance import Instance
from pooling.data.spec import Spec


@functools.cache   # a lookup scans the installed distributions (~1.5 ms); a run asks per block
def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance(instance: Instance, spec: Spec, solver: str | None, solver_version: str | None) -> dict:
    return {
        "instance": instance.source,
        "instance_sha256": instance.sha256,
        "spec": spec.source,
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
