"""pooling: choose county health-insurance pooling plans and reimbursement rates
that stay solvent at a stated risk level, priced with exact aggregate claim
distributions and solved as a set-partitioning MILP (Pyomo + HiGHS).

Python API::

    import pooling
    instance = pooling.load_instance("instances/tongliao.json")
    spec = pooling.load_spec("models/default.toml")
    result = pooling.solve(instance, spec, time_limit=60)
    result.to_dict()
    pooling.evaluate(instance, spec, [["150502", "150521"], ...]).to_dict()
"""

from pooling.data.instance import Instance, instance_from_dict, load_instance
from pooling.data.options import SolveOptions
from pooling.data.plan import load_plan
from pooling.data.spec import Spec, load_spec, spec_from_dict
from pooling.errors import InputError, NumericsError, PoolingError
from pooling.optimise.result import Evaluation, Result
from pooling.optimise.solve import evaluate, solve
from pooling.simulate.stress_test import StressReport, simulate

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
    "evaluate",
    "instance_from_dict",
    "load_instance",
    "load_plan",
    "load_spec",
    "simulate",
    "solve",
    "spec_from_dict",
]
