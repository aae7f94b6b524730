"""The test processes run BLAS on the threads tests/conftest.py sets (one, unless
OPENBLAS_NUM_THREADS says otherwise): set too late, after numpy loaded OpenBLAS,
it would silently cost the suite its speed-up, not its answers."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

from tests import conftest


def _numpy_openblas() -> ctypes.CDLL | None:
    """numpy's bundled OpenBLAS (the wheel's numpy.libs), or None for another build."""
    found = sorted((Path(np.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas*"))
    return ctypes.CDLL(str(found[0])) if found else None


def test_numpy_was_not_loaded_before_the_setting():
    assert os.environ.get("OPENBLAS_NUM_THREADS"), "tests/conftest.py did not set OPENBLAS_NUM_THREADS"
    assert not conftest.NUMPY_LOADED_TOO_EARLY, "a plugin imported numpy before tests/conftest.py ran"


def test_numpy_s_openblas_runs_the_set_number_of_threads():
    lib = _numpy_openblas()
    getter = next((getattr(lib, name) for name in ("scipy_openblas_get_num_threads64_",
                                                   "scipy_openblas_get_num_threads")
                   if lib is not None and hasattr(lib, name)), None)
    if getter is None:
        pytest.skip("numpy is not linked to the wheel's scipy-openblas")
    assert getter() == int(os.environ["OPENBLAS_NUM_THREADS"])
