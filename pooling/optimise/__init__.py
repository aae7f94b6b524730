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
    """Drop Pyomo's import hook on scipy (only possible before scipy is
    imported; a Pyomo without that private hook is left as it is)."""
    if "scipy" in sys.modules:
        return
    from pyomo.common import dependencies
    callbacks = getattr(getattr(dependencies, "DeferredImportCallbackFinder", None), "_callbacks", None)
    if isinstance(callbacks, dict):
        callbacks.pop("scipy", None)


_skip_pyomo_scipy_preload()
