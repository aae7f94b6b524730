"""Optimisation: candidate pools, MILP columns, column generation, Pyomo
formulations, HiGHS runs and the status map, the brute-force oracle,
baselines, and `solve` / `evaluate` with their result objects.

Importing this package first stops Pyomo from preloading scipy.stats,
scipy.integrate, scipy.sparse and scipy.spatial (about 0.5 s, more than the
rest of a prefecture's solve) whenever scipy is imported: Pyomo registers that
preload as an import hook, for its own optional features, none of which
`pooling` uses. Pyomo still runs it if one of those features asks for scipy.
"""

import sys


def _skip_pyomo_scipy_preload() -> None:
    """Drop Pyomo's import hook on scipy. Pyomo imports scipy.stats at once
    when scipy is already loaded as its dependency table is first read (the
    data layer loads scipy.special first whenever an instance is read before
    a solve: `pooling.load_instance(...)`, then `pooling.solve(...)`), so that
    table is read with scipy out of sys.modules for the moment, and scipy put
    back unchanged. A Pyomo without that private hook is left as it is."""
    if "pyomo.common.dependencies" in sys.modules:
        return
    scipy_modules = [name for name in sys.modules if name == "scipy" or name.startswith("scipy.")]
    hidden = {name: sys.modules.pop(name) for name in scipy_modules}
    try:
        from pyomo.common import dependencies
    finally:
        sys.modules.update(hidden)   # the very same module objects: nothing else saw them gone
    callbacks = getattr(getattr(dependencies, "DeferredImportCallbackFinder", None), "_callbacks", None)
    if isinstance(callbacks, dict):
        callbacks.pop("scipy", None)


_skip_pyomo_scipy_preload()
