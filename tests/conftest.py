"""Test-process settings, applied before any test module imports numpy.

One BLAS thread per test process (OPENBLAS_NUM_THREADS, unless already set).
The suite runs one pytest-xdist worker per core, and OpenBLAS would start a
thread per core in each of them: a dot product over more than 10^4 entries
(a lattice law's mean and variance, its CVaR) is then split across threads
that spin while they wait, so two workers on two cores fight over four busy
threads. Measured on 2 shared cores: tests/test_ruin_adjustment.py's c = 0
test 43 s -> 20 s (user CPU 15.7 s -> 6.3 s), `pooling simulate` of the
README's Tongliao stress test 18.6 s -> 10.7 s, with result.json and
stress.json byte-identical but for their timings. Subprocesses the tests start
(the CLI, docs blocks, solve's workers) inherit the setting.

Figures do not depend on it beyond what the suite already allows for: a
threaded dot product may round its last bit differently from a single-threaded
one, as a machine with another core count or CPU would (docs/testing.md, "On
any machine"); no test compares such bits across processes with different
settings.
"""

from __future__ import annotations

import os
import sys

BLAS_THREADS = "1"
"""OpenBLAS threads per test process (see the module docstring)."""

NUMPY_LOADED_TOO_EARLY = "numpy" in sys.modules
"""True when a plugin imported numpy before this file set OPENBLAS_NUM_THREADS
(the setting then does not reach this process's BLAS; tests/test_blas_threads.py fails)."""

os.environ.setdefault("OPENBLAS_NUM_THREADS", BLAS_THREADS)
