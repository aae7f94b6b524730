"""One pool's claims at admissions scaled by a common factor s (induced
utilisation, economics.behaviour): Y_s, every stream's rate times s.

Finding a pool's solvent rate with a behavioural response prices its law at a
few multipliers close to each other. Scaling every rate by s leaves each
part's mixture severity, and so the severity transforms on an output lattice,
unchanged: only the count exponents (lambda_u s (phi_u - 1), or the negative
binomial one) move. `ScaledClaims` therefore prices Y_s by the band engine
(pooling.risk.band) on a lattice shared by every s of one cell of a fixed
geometric grid in s (ratio 1 + SCALE_CELL): the window covers the windows at
both ends of the cell (they grow with s), the severity transforms are
computed once per (cell, number of cells) and each s costs an exponential,
one inverse FFT and the risk figures. A law is then a function of s alone
(its cell and the first number of output cells that passes the engine's
checks), not of the order the search asks for it.

Every law passes what the band engine's own does: the band-edge bound, the
H / 2H resolution control and the enforced self-checks against Y_s's closed
forms (pooling.risk.law_checks). Where one does not, or the band engine does
not apply (small pools), Y_s is priced by `aggregate` as any model is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from pooling.risk.band import (
    BAND_MAX_ATOM,
    BAND_MAX_POINTS,
    BAND_POINTS_PER_SD,
    BAND_TOLERANCE,
    SEVERITY_VARIANCE_SHARE,
    _band_severity,
    _BandSeverity,
    _cell_transform,
    _mixed_exponent,
    _severity_transform,
    _severity_transforms,
)
from pooling.risk.claims import aggregate
from pooling.risk.compound import (
    AggregateResult,
    ClaimStream,
    CompoundModel,
    LatticeLaw,
    _count_exponent,
    no_claim_probability,
    scaled_admissions,
    shock_shape,
)
from pooling.risk.law_checks import RESOLUTION_TOLERANCE, _result, law_check_failures
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.windows import _window

SCALE_CELL = 1.0 / 16.0
"""Ratio - 1 of the geometric grid of scales whose cells share a lattice. A
fixed-point search moves the multiplier by a few per cent from its first
guess to its answer, so most pools use one cell; a cell's window is at most
~6 % wider than the tightest for any s in it, which rarely doubles the
number of output cells."""


def _cell(scale: float) -> int:
    return math.floor(math.log(scale) / math.log1p(SCALE_CELL))


class ScaledClaims:
    """Prices Y_s, a pool's claims at admission factor s > 0 (module docstring):
    `base` with every rate times s, or, with `model_at`, the model it gives
    for s (a pool whose contracts' capacities make the in-network share move
    with s: the rates are then not proportional, but the (severity, factor)
    components, whose transforms are what is shared, stay the same)."""

    def __init__(self, base: CompoundModel, level: float,
                 model_at: Callable[[float], CompoundModel] | None = None,
                 same_form: Callable[[float, float], bool] | None = None):
        """`same_form(a, b)`, with `model_at`: whether every rate is affine in s
        over [a, b] (a contract's capacity binds at both ends or at neither);
        a cell whose ends have the same form interpolates its models between
        theirs, exactly, instead of building each."""
        self.model, self.level = base, level
        self._model_at, self._same_form = model_at, same_form
        self._ends: dict[int, tuple[CompoundModel, CompoundModel, bool]] = {}
        self._base: _BandSeverity | bool | None = None
        self._lattices: dict[int, tuple[float, float, int]] = {}   # cell -> (low, width, first n)
        self._spectra: dict[tuple, np.ndarray] = {}                 # (cell, n, components) -> transforms

    def model_at(self, scale: float) -> CompoundModel:
        if self._model_at is None:
            return scaled_admissions(self.model, scale)
        cell = _cell(scale)
        small, large, affine = self._cell_ends(cell)
        if not affine:
            return self._model_at(scale)
        a, b = (1.0 + SCALE_CELL) ** cell, (1.0 + SCALE_CELL) ** (cell + 1)
        return _between(small, large, (scale - a) / (b - a))

    def _cell_ends(self, cell: int) -> tuple[CompoundModel, CompoundModel, bool]:
        """The models at a cell's two ends, and whether those in it interpolate them."""
        ends = self._ends.get(cell)
        if ends is None:
            a, b = (1.0 + SCALE_CELL) ** cell, (1.0 + SCALE_CELL) ** (cell + 1)
            if self._model_at is None:
                small, large, affine = scaled_admissions(self.model, a), scaled_admissions(self.model, b), False
            else:   # the base is the model at s = 1 (built once already)
                small = self.model if a == 1.0 else self._model_at(a)
                large = self._model_at(b)
                affine = self._same_form is not None and self._same_form(a, b) and _alike(small, large)
            ends = self._ends[cell] = (small, large, affine)
        return ends

    def aggregate(self, scale: float) -> AggregateResult:
        """Y_s's VaR and CVaR at the level, with the engine's checks."""
        model = self.model_at(scale)
        result = self._band(model, scale) if scale > 0.0 else None
        return result if result is not None else aggregate(model, self.level)

    def _severity(self, model: CompoundModel, scale: float) -> tuple[_BandSeverity | None, tuple]:
        """The band engine's severity data of Y_s and the key of its components."""
        if self._model_at is not None:
            severity = _band_severity(model)
            keys = tuple(dict.fromkeys((s.severity, s.factor) for part in model.components for s in part.streams))
            return severity, keys
        if self._base is None:
            self._base = _band_severity(self.model) or False
        base = self._base
        if base is False:
            return None, ()
        shapes = base.shapes
        if base.owner is not None:
            shapes = np.array([math.nan if (k := shock_shape(p)) is None else k for p in model.components])
            if len(shapes) != len(base.shapes) or not np.array_equal(np.isnan(shapes), np.isnan(base.shapes)):
                return None, ()   # a part's shock negligible at one scale and not at the other
        return dataclasses.replace(
            base, second=scale * base.second, added=scale * base.added,
            shock_variance=scale * scale * base.shock_variance, shapes=shapes,
            rates=None if base.rates is None else scale * base.rates), ()

    def _band(self, model: CompoundModel, scale: float) -> AggregateResult | None:
        if not any(part.streams for part in model.components) or no_claim_probability(model) > BAND_MAX_ATOM:
            return None
        severity, keys = self._severity(model, scale)
        if severity is None:
            return None
        variance = model.variance
        if not severity.added <= SEVERITY_VARIANCE_SHARE * variance:
            return None
        cell = _cell(scale)
        low, width, n = self._lattice(cell, severity.overhang)
        while n <= BAND_MAX_POINTS:
            span = width / (n - 2)
            transform = np.exp(self._exponent(model, severity, (cell, n, keys), span, n))
            if np.all(np.abs(transform[n // 4:]) <= BAND_TOLERANCE):
                pmf, start = _cells(transform, low, span, n)
                fine = lattice_var_cvar(start, span, pmf, self.level)
                coarse = lattice_var_cvar(start + 0.5 * span, 2.0 * span, pmf[0::2] + pmf[1::2], self.level)
                extrapolated = [f + (f - c) / 3.0 for f, c in zip(fine, coarse)]
                diff = max(abs(f - c) / 3.0 / abs(e) for f, c, e in zip(fine, coarse, extrapolated))
                if diff <= RESOLUTION_TOLERANCE:
                    pmf.setflags(write=False)
                    discretised = severity.second + severity.shock_variance + span * span / 12.0
                    law = LatticeLaw(start=start, span=span, pmf=pmf, discretised_variance=discretised)
                    if law_check_failures(law, model):
                        return None
                    return _result(law, self.level, extrapolated[0], extrapolated[1], model, diff, n)
            n *= 2
        return None

    def _lattice(self, cell: int, overhang: float) -> tuple[float, float, int]:
        """(low, width, first number of cells) of a cell's lattice: the union of
        the windows at the cell's two ends (each end's grows with s), with the
        severity's overhang, and the band engine's first n for the smallest s."""
        lattice = self._lattices.get(cell)
        if lattice is None:
            small, large, _ = self._cell_ends(cell)
            (low_small, high_small), (low_large, high_large) = _window(small), _window(large)
            low, high = min(low_small, low_large), max(high_small, high_large) + overhang
            width = high - low
            n = max(1 << int(math.ceil(math.log2(width / (math.sqrt(small.variance) / BAND_POINTS_PER_SD) + 2))),
                    64)
            lattice = self._lattices[cell] = (low, width, n)
        return lattice

    def _exponent(self, model: CompoundModel, severity: _BandSeverity, key: tuple, span: float,
                  n: int) -> np.ndarray:
        """log of Y_s's transform on the lattice (band._band_exponent, the
        severity transforms memoised per (cell, n, components))."""
        if severity.owner is None:
            phi = self._spectra.get(key) if self._model_at is None else None
            if phi is None:     # one mixture: shared only when its weights are (rates proportional)
                phi = _severity_transform(severity.points, severity.quad, span, n)
                phi[0] = 1.0
                if self._model_at is None:
                    self._spectra[key] = phi
            return _count_exponent(model.components[0], phi)
        spectra = self._spectra.get(key)
        if spectra is None:
            spectra = self._spectra[key] = _severity_transforms(severity.points, severity.quad, severity.owner,
                                                                severity.components, span, n)
        return _mixed_exponent(severity, spectra)


def _alike(first: CompoundModel, second: CompoundModel) -> bool:
    """Same parts, shocks and (severity, factor) streams in the same order."""
    pairs = [(first, second), *zip(first.parts, second.parts)]
    return len(first.parts) == len(second.parts) and all(
        p.shock_cv == q.shock_cv and len(p.streams) == len(q.streams)
        and all(x.severity is y.severity and x.factor == y.factor for x, y in zip(p.streams, q.streams))
        for p, q in pairs)


def _between(first: CompoundModel, second: CompoundModel, t: float) -> CompoundModel:
    """The model whose rates are (1 - t) first's + t second's (models `_alike`)."""
    def streams(p, q):
        return tuple(ClaimStream(x.rate + (y.rate - x.rate) * t, x.severity, x.factor)
                     for x, y in zip(p.streams, q.streams))
    parts = tuple(CompoundModel(streams(p, q), p.shock_cv) for p, q in zip(first.parts, second.parts))
    return CompoundModel(streams(first, second), first.shock_cv, parts=parts)


def _cells(transform: np.ndarray, low: float, span: float, n: int) -> tuple[np.ndarray, float]:
    """Cell masses from Y's transform on the band (band._band_law's inverse
    step): times the cell transform, inverse rfft, unrolled, round-off below 0
    clamped. Returns (pmf, start)."""
    start_index = int(math.floor(low / span))
    transform = transform * _cell_transform(n)
    wrapped = np.fft.irfft(transform, n)
    shift = start_index % n
    pmf = np.empty(n)
    np.maximum(wrapped[shift:], 0.0, out=pmf[:n - shift])
    np.maximum(wrapped[:shift], 0.0, out=pmf[n - shift:])
    return pmf, start_index * span
