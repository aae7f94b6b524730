"""Members' laws on an adjustment fund's lattice (pooling.risk.excess): the
severity's transform at the lattice's frequencies from the band engine's
fine quadrature (exact cell masses), a conditional law cut to its window,
and a deficit (scale X - shift)+ mapped onto the lattice with its mean kept."""

from __future__ import annotations

import math

import numpy as np

from pooling.risk.band import _key_quadrature, _severity_transform

TRIM = 1e-13
"""Mass below which a member's conditional law is cut at either end (added to
the last cell kept): it keeps stored laws and their mappings near their own
support. FFT round-off leaves ~1e-18 in every cell, so a cut much below this
would keep the whole lattice; the engine's window itself drops 1e-12, and
moving 1e-13 of mass across the lattice moves the mean by under 1e-13 of its
width, far below MEAN_TOLERANCE."""


def _cell_split(pmf: np.ndarray, offset: int, shift: float, size: int) -> np.ndarray:
    """The law of (X - shift)+ on a lattice of `size` points, X with mass
    pmf[j] at offset + j (lattice units): points at or below `shift` go to 0,
    the others' mass split between the two points around X - shift so that
    its mean is kept."""
    out = np.zeros(size)
    base = math.floor(shift)
    frac = shift - base                     # X - shift = (k - base - 1) + (1 - frac)
    first = max(0, base + 1 - offset)        # pmf[first:] lies above the shift
    out[0] += float(pmf[:first].sum())
    if first < len(pmf):
        mass = pmf[first:]
        low = offset + first - base - 1
        out[low:low + len(mass)] += mass * frac
        out[low + 1:low + 1 + len(mass)] += mass * (1.0 - frac)
    return out


def _scaled_split(pmf: np.ndarray, offset: int, scale: float, shift: float, size: int) -> np.ndarray:
    """The law of (scale X - shift)+ (X as in `_cell_split`), each point's mass
    split between the two lattice points around its value (mean kept): a
    member whose rate is `scale` times the lattice's reference rate."""
    if scale == 1.0:
        return _cell_split(pmf, offset, shift, size)
    value = scale * (offset + np.arange(len(pmf), dtype=float)) - shift
    above = value > 0.0
    out = np.zeros(size)
    out[0] = float(pmf[~above].sum())
    base = np.floor(value[above])
    frac = value[above] - base
    mass = pmf[above]
    index = base.astype(np.int64)
    out += np.bincount(index, weights=mass * (1.0 - frac), minlength=size)[:size]
    out += np.bincount(index + 1, weights=mass * frac, minlength=size)[:size]
    return out


def _band_phi(streams, span: float, n: int) -> np.ndarray | None:
    """The mixture severity's transform at the n/2 + 1 frequencies of a
    lattice of span `span` from the band engine's fine quadratures
    (risk.band: each (severity, factor) on its own grid, Richardson-combined,
    the within-cell phase by a Taylor series), not from the severity on the
    lattice itself: with the cell transform its inverse gives exact cell
    masses, whatever the claims' size against a cell. None when a
    component's grid is too large (band.MAX_QUADRATURE_POINTS)."""
    lam = math.fsum(s.rate for s in streams)
    points, weights = [], []
    for s in streams:
        quadrature = _key_quadrature((s.severity, s.factor))
        if quadrature is None:
            return None
        points.append(quadrature[0])
        weights.append(quadrature[1] * (s.rate / lam))
    x, q = np.concatenate(points), np.concatenate(weights)
    order = np.argsort(x, kind="stable")
    phi = _severity_transform(x[order], q[order], span, n)
    phi[0] = 1.0
    return phi


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """sum x y by numpy's pairwise sum: a BLAS dot may spread a short vector over
    threads, which on a loaded machine cost 20 ms for 16,384 terms."""
    return float(np.multiply(x, y).sum())


def _trimmed(pmf: np.ndarray, low: int = 0, high: int | None = None) -> tuple[int, np.ndarray]:
    """(offset, pmf[offset:end]) without the ends holding under TRIM of mass,
    which is added to the first and last cells kept; with `low` and `high`,
    nothing outside the cells [low, high] is kept either (a conditional law's
    window, risk.windows: exact cell masses carry FFT round-off of ~1e-14 a
    cell, 6e-11 over a 2^14-cell lattice, more than TRIM, in cells where the
    law holds under 1e-12 in all)."""
    cdf = np.cumsum(pmf)
    total = float(cdf[-1])
    first = int(np.searchsorted(cdf, TRIM, side="right"))
    last = int(np.searchsorted(cdf, total - TRIM, side="left"))
    first = min(max(first, low), len(pmf) - 1)
    last = max(min(last, len(pmf) - 1, len(pmf) - 1 if high is None else high), first)
    kept = pmf[first:last + 1].copy()
    kept[0] += float(pmf[:first].sum())
    kept[-1] += float(pmf[last + 1:].sum())
    return first, kept
