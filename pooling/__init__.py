"""pooling: choose county health-insurance pooling plans and reimbursement rates
that stay solvent at a stated risk level, priced with exact aggregate claim
distributions and solved as a set-partitioning MILP (Pyomo + HiGHS).

Python API::

    import pooling
    instance = pooling.load_instance("instances/tongliao.json")
    spec = pooling.load_spec("models/default.toml")
    result = pooling.solve(instance, spec, time_limit=60)   # paths work too
    result.to_dict()
    pooling.evaluate(instance, spec, [[c.id] for c in instance.counties]).to_dict()

The names below load on first use (PEP 562), so `import pooling` is cheap and
the command line can handle Ctrl-C while numpy, scipy and Pyomo load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Evaluation": "pooling.optimise.result",
    "InputError": "pooling.errors",
    "Instance": "pooling.data.instance",
    "NumericsError": "pooling.errors",
    "PoolingError": "pooling.errors",
    "Result": "pooling.optimise.result",
    "SolveOptions": "pooling.data.options",
    "Spec": "pooling.data.spec",
    "StressReport": "pooling.simulation.stress_test",
    "calibrate": "pooling.calibration.calibrate",
    "evaluate": "pooling.optimise.solve",
    "instance_from_dict": "pooling.data.instance",
    "load_instance": "pooling.data.instance",
    "load_plan": "pooling.data.plan",
    "load_spec": "pooling.data.spec",
    "read_result": "pooling.outputs.files",
    "simulate": "pooling.simulation.stress_test",
    "solve": "pooling.optimise.solve",
    "spec_from_dict": "pooling.data.spec",
}
__all__ = [
    "Evaluation",
    "InputError",
    "Instance",
    "NumericsError",
    "PoolingError",
    "Result",
    "SolveOptions",
    "Spec",
    "StressReport",
    "calibrate",
    "evaluate",
    "instance_from_dict",
    "load_instance",
    "load_plan",
    "load_spec",
    "read_result",
    "simulate",
    "solve",
    "spec_from_dict",
]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pooling' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from pooling.calibration.calibrate import calibrate
    from pooling.data.instance import Instance, instance_from_dict, load_instance
    from pooling.data.options import SolveOptions
    from pooling.data.plan import load_plan
    from pooling.data.spec import Spec, load_spec, spec_from_dict
    from pooling.errors import InputError, NumericsError, PoolingError
    from pooling.optimise.result import Evaluation, Result
    from pooling.optimise.solve import evaluate, solve
    from pooling.outputs.files import read_result
    from pooling.simulation.stress_test import StressReport, simulate
