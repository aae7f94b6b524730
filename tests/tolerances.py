"""Tolerances several test files share, each with the bound it rests on
(docs/testing.md, "On any machine").

The same numpy and scipy round differently on different CPUs: numpy picks its
exp/log/power loops by CPU when it starts (AVX-512 machines get loops that
differ from the AVX2 ones by up to a few ulps), OpenBLAS picks its dot and
matrix-vector kernels by CPU (another summation order), and FFT builds differ.
So the suite asserts bit-identity only between two results of one process (the
same computation repeated, with other worker counts, with warm or cold memos);
a result compared with a closed form computed another way, or with a number
recorded on another machine, is allowed the rounding the arithmetic can
produce, and no more.
"""

from __future__ import annotations

import math

UNIT_ROUNDOFF = 2.0 ** -53
"""u: the largest relative error of one correctly rounded float64 operation."""

ROUNDING = 1e-12
"""Relative (or, for rates and shares of order 1, absolute) agreement of a
figure with its closed form computed another way, or recorded on another
machine: the same terms summed in another order, a few products and
quotients, a few library transcendentals.
Two orders of a sum of n terms of one sign differ by at most 2 (n - 1) u
relative, a transcendental by a few ulps from one CPU's loop to another's:
for the at most a few hundred terms compared this way, below 1e-13. A wrong or
missing weight, stream or term moves these figures by far more than 1e-12."""

STORED_PRICE = 1e-8
"""Relative agreement of a computed price (VaR, CVaR, a ruin rate, a lattice's
variance) with its value recorded on another machine (tests/test_shock_parts.py).
The engine builds a severity's lattice from differences of neighbouring tail
values (moment matching), so a tail value a few ulps off (numpy's SIMD log, exp
or power; an OpenBLAS kernel mixing streams) moves the severity's CDF by up to
(scale / cell width) ulps (16 to 32 in the band engine), the aggregate's CDF by
up to E[N] times that and its quantiles by that over the density: the bound
grows with the pool. Measured on the recorded models:
random 4-ulp noise on every tail value moves their prices by at most 6.2e-10
(the pool of 2.3e5 admissions), complex FFTs in place of numpy's real ones by
at most 3.0e-11, and an AVX-512 machine's prices differ from the recorded ones
(AVX2) by at most 1.2e-10. A real change to the engine (window, tail cut,
lattice or band resolution, severity grid) moves at least one recorded model
by 5.6e-7 or more, 56 times this tolerance."""

FFT_STAGE_ERROR = 7.0 * UNIT_ROUNDOFF
"""Relative 2-norm error one radix-2 stage of an FFT adds: eta = mu +
gamma_4 (sqrt 2 + mu) ~ 6.7 u with twiddle factors accurate to mu ~ u (the
standard error analysis of the Cooley-Tukey FFT, e.g. Higham, Accuracy and
Stability of Numerical Algorithms, 2nd ed., section 24.1). It holds for any
order of the butterflies, so for any FFT build."""


def fft_error_bound(n: int, norm: float) -> float:
    """Bound on the 2-norm error, and so on every entry's error, of an FFT of
    length n (a power of two) whose exact result has 2-norm `norm`:
    log2(n) eta / (1 - log2(n) eta) * norm, eta = FFT_STAGE_ERROR."""
    stages = math.log2(n) * FFT_STAGE_ERROR
    return stages / (1.0 - stages) * norm
