"""The compound mixed-Poisson model of a pool's eligible cost: claim streams,
independent shock parts, the law and transform of the claim count, and the
lattice laws and results the engines return (pooling.risk.claims).

A pool's eligible cost Y is a sum of independent compound Poisson parts (one
per claim stream: residents at home, migrants in and out of network), all
scaled by one systemic multiplier Theta ~ Gamma(mean 1, cv theta). Poisson
superposition makes Y | Theta one compound Poisson sum with a mixture
severity; mixing over Theta turns the count negative binomial (DESIGN §A pool).

Parts (shocks at several levels). With national, prefecture and county shocks
a county's rates are scaled by w_N Theta_N + w_P Theta_P + w_C Theta_C, and
Poisson splitting makes Y a sum of independent mixed compound Poisson parts,
each with its own streams and its own Gamma(1, theta_u) multiplier (theta_u
= 0: Poisson). `CompoundModel.parts` holds them beside the main part (the
model's own streams and shock_cv, Theta_N); a part has no parts of its own.
Y's transform is the product of the parts' transforms exp(lambda_u (phi_u -
1)) or exp(-k_u log1p(-(lambda_u / k_u)(phi_u - 1))), k_u = 1/theta_u^2, phi_u
the transform of part u's own mixture severity, so both engines sum the
parts' exponents; E[Y], Var Y (sum lambda_u E[(fX)^2] + theta_u^2 mean_u^2),
the discretised variance of the self-checks and P(N = 0) (a product) are summed
or multiplied over the parts, and the window combines the parts' (`_window`).
The band engine transforms each distinct (severity, factor) component once
per output lattice and mixes those linearly into each part's phi_u; the direct
lattice discretises each component once and mixes the lattices. Conditioning
on the main shock (`given_shock`, the samplers, the ruin measure) keeps the
other parts whole, so the conditional laws stay exact. A model without parts
runs exactly the code and arithmetic it ran before parts existed (same bits).

The negative-binomial transform exp(-k log(1 - lambda theta^2 (phi - 1))),
k = 1/theta^2, needs a complex log1p accurate for tiny arguments (`_log1p`):
numpy's complex log1p computes log(1 + z) and loses every digit of a tiny z,
which made a shock cv of 1e-8 price a pool at a fiftieth of its rate. When
theta^2 E[N] is below NEGLIGIBLE_SHOCK the count is Poisson to double
precision and is computed as such (the theta -> 0 limit).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pooling.risk.measures import lattice_var_cvar
from pooling.risk.severity import Severity

NEGLIGIBLE_SHOCK = 1e-16
"""The negative-binomial count transform is the Poisson one exp(w), w = E[N]
(phi - 1), times exp(theta^2 w^2 / 2 + O(theta^4 w^3)). Where exp(w) is not
negligible |w|^2 is at most ~100 E[N] (|w| <= 2 E[N] when E[N] < 1), so the
factor differs from 1 by at most ~50 theta^2 E[N]: below 1e-16 that is
rounding, and the Poisson limit (theta -> 0) is used. It also keeps 1/theta^2
from overflowing for theta below 1e-154."""


@dataclass(frozen=True)
class ClaimStream:
    """One Poisson stream of admissions: expected count (at Theta = 1),
    severity of one admission and the share of it that counts as eligible cost
    (1 in network, phi out of network)."""

    rate: float
    severity: Severity
    factor: float = 1.0

    @cached_property
    def mean(self) -> float:
        # cached: a county's streams are reused for every pool it is in (economics.care)
        return self.rate * self.factor * self.severity.expected_value

    @property
    def second_moment_sum(self) -> float:
        return self.rate * self.factor ** 2 * self.severity.second_moment


@dataclass(frozen=True)
class CompoundModel:
    """Y = sum of claim streams, all rates scaled by one Theta ~ Gamma(1, shock_cv),
    plus independent extra `parts` (module docstring, "Parts"): each part is
    its own streams scaled by its own independent Gamma(1, part.shock_cv)
    multiplier (0: plain Poisson) and has no parts of its own."""

    streams: tuple[ClaimStream, ...]
    shock_cv: float = 0.0
    parts: tuple[CompoundModel, ...] = ()

    def __post_init__(self):
        if not isinstance(self.parts, tuple):
            object.__setattr__(self, "parts", tuple(self.parts))
        for part in self.parts:
            if not isinstance(part, CompoundModel):
                raise TypeError(f"a part must be a CompoundModel, got {type(part).__name__}")
            if part.parts:
                raise ValueError("an extra part of a CompoundModel cannot have parts of its own")

    @cached_property
    def components(self) -> tuple[CompoundModel, ...]:
        """The independent parts the engines sum, each with parts == (): (self,)
        for a model without parts. Otherwise the main part (streams, shock_cv)
        and the extra parts that have streams, with those whose count is Poisson
        (shock_shape None: no shock, or a negligible one) merged into one
        Poisson part at the end: a sum of independent Poisson parts is one
        (superposition), so parts whose shocks are all 0 price exactly as the
        merged model, and each merged part saves a transform."""
        if not self.parts:
            return (self,)
        parts = ((CompoundModel(self.streams, self.shock_cv),) if self.streams else ()) + tuple(
            p for p in self.parts if p.streams)
        mixed = tuple(p for p in parts if shock_shape(p) is not None)
        poisson = merge_streams(s for p in parts if shock_shape(p) is None for s in p.streams)
        return mixed + ((CompoundModel(poisson, 0.0),) if poisson else ())

    def _all_streams(self):
        yield from self.streams
        for part in self.parts:
            yield from part.streams

    # Cached (the model is immutable): the engines ask a model with many parts
    # for its parts' moments hundreds of times a pricing.
    @cached_property
    def expected_count(self) -> float:
        return math.fsum(s.rate for s in self._all_streams())

    @cached_property
    def mean(self) -> float:
        return math.fsum(s.mean for s in self._all_streams())

    @cached_property
    def variance(self) -> float:
        """Var Y = E[Var(Y|Theta)] + Var(E[Y|Theta]) = sum lambda E[(fX)^2] + theta^2 mean^2,
        summed over the independent parts (theta_u^2 mean_u^2 for each)."""
        if not self.parts:
            return math.fsum(s.second_moment_sum for s in self.streams) + (self.shock_cv * self.mean) ** 2
        main_mean = math.fsum(s.mean for s in self.streams)
        return math.fsum([*(s.second_moment_sum for s in self._all_streams()), (self.shock_cv * main_mean) ** 2,
                          *((p.shock_cv * p.mean) ** 2 for p in self.parts)])

    def given_shock(self, theta_value: float) -> CompoundModel:
        """The law of Y given the main part's Theta = theta_value: the main
        streams' rates scaled by it (compound Poisson), the extra parts kept as
        they are (independent of Theta, so the conditional law stays exact)."""
        return CompoundModel(tuple(dataclasses.replace(s, rate=s.rate * theta_value) for s in self.streams),
                             0.0, parts=self.parts)


def scaled_admissions(model: CompoundModel, factor: float) -> CompoundModel:
    """`model` with every stream's rate, in every part, times `factor`, each
    shock kept: admissions scaled (induced utilisation's multiplier,
    risk.scaled; a ruin horizon's admissions trend, risk.ruin)."""
    def streams(part):
        return tuple(ClaimStream(s.rate * factor, s.severity, s.factor) for s in part.streams)
    return CompoundModel(streams(model), model.shock_cv,
                         parts=tuple(CompoundModel(streams(p), p.shock_cv) for p in model.parts))


def merge_streams(streams) -> tuple[ClaimStream, ...]:
    """Add the rates of streams with the same severity and factor (in stream
    order); drop zero-cost ones. A pool's hundreds of streams share a few
    severity objects, so each (severity object, factor) is matched to its
    (severity, factor) total once: comparing Severity values is the costly part."""
    totals: dict[tuple[Severity, float], int] = {}     # key -> index into keys/rates
    seen: dict[tuple[int, float], int] = {}             # (id(severity), factor) -> the same index
    held = []                                           # keeps those severities alive (ids stay theirs)
    keys: list[tuple[Severity, float]] = []
    rates: list[float] = []
    for s in streams:
        if s.rate <= 0.0 or s.factor <= 0.0:
            continue
        ident = (id(s.severity), s.factor)
        i = seen.get(ident)
        if i is None:
            key = (s.severity, s.factor)
            i = totals.get(key)
            if i is None:
                i = totals[key] = len(keys)
                keys.append(key)
                rates.append(0.0)
            seen[ident] = i
            held.append(s.severity)
        rates[i] += s.rate
    ordered = sorted(range(len(keys)), key=lambda i: (keys[i][0].sort_key, keys[i][1]))
    return tuple(ClaimStream(rate=rates[i], severity=keys[i][0], factor=keys[i][1]) for i in ordered)


@dataclass(frozen=True)
class LatticeLaw:
    """A distribution with mass pmf[i] at start + span * i (pmf read-only: the
    engines set it so, and its mean and variance are cached, the self-checks and
    the result both reading them)."""

    start: float
    span: float
    pmf: np.ndarray = field(repr=False)
    discretised_variance: float | None = None  # closed-form Var of the discretised model
    mean_beyond: float = 0.0   # E[Y] off the lattice: capped claims' mean beyond its last point (claim_cap)

    @cached_property
    def mean(self) -> float:
        return self.start * float(self.pmf.sum()) + self.span * float(self.pmf @ np.arange(len(self.pmf)))

    @cached_property
    def variance(self) -> float:
        idx = np.arange(len(self.pmf), dtype=float)
        mass = float(self.pmf.sum())
        m1 = float(self.pmf @ idx) / mass
        return self.span ** 2 * float(self.pmf @ (idx - m1) ** 2) / mass

    def var_cvar(self, level: float) -> tuple[float, float]:
        """VaR and CVaR; mean_beyond (claims above a cap, so above VaR) adds
        mean_beyond / (1 - level) to CVaR."""
        var, cvar = lattice_var_cvar(self.start, self.span, self.pmf, level)
        return var, (cvar + self.mean_beyond / (1.0 - level) if self.mean_beyond else cvar)


@dataclass(frozen=True)
class AggregateResult:
    """A computed aggregate law with its risk figures and self-checks."""

    law: LatticeLaw | None    # None once a pricer has dropped it to save memory
    level: float
    var: float
    cvar: float
    mean: float               # analytic
    variance: float           # analytic
    mean_rel_error: float     # |lattice mean - analytic| / analytic
    variance_rel_error: float # |lattice var - closed form of the discretised model| / that
    resolution_rel_diff: float  # error estimate |R_h - R_2h| / (3 R) of extrapolated VaR/CVaR
    points: int
    discretisation_variance_share: float = 0.0  # variance added by discretisation / Var Y
    mass_error: float = 0.0   # |total lattice mass - 1|


def shock_shape(model: CompoundModel) -> float | None:
    """Shape 1/theta^2 of the main part's Gamma shock, or None when its count is
    Poisson to double precision (no shock, or theta^2 E[N] <= NEGLIGIBLE_SHOCK,
    E[N] the main streams' own). Extra parts have their own: shock_shape(part)."""
    theta = model.shock_cv
    count = math.fsum(s.rate for s in model.streams)
    if theta == 0.0 or theta * theta * count <= NEGLIGIBLE_SHOCK:
        return None
    return 1.0 / (theta * theta)


def no_claim_probability(model: CompoundModel) -> float:
    """P(N = 0): exp(-E[N]) for Poisson, (1 + E[N] theta^2)^(-1/theta^2) with the
    shock; with parts, the product of the parts' (they are independent)."""
    if model.parts:
        return math.exp(math.fsum(_log_no_claim(part) for part in model.components))
    lam = model.expected_count
    shape = shock_shape(model)
    if shape is None:
        return math.exp(-lam)
    return math.exp(-shape * math.log1p(lam / shape))


def _log_no_claim(part: CompoundModel) -> float:
    """log P(N_u = 0) of one part (parts == ())."""
    lam = part.expected_count
    shape = shock_shape(part)
    return -lam if shape is None else -shape * math.log1p(lam / shape)


def _log1p(z: np.ndarray) -> np.ndarray:
    """log(1 + z) for complex z, accurate for tiny |z| (numpy's complex log1p
    is not): Re = log1p(2x + x^2 + y^2) / 2, Im = atan2(y, 1 + x). Callers keep
    |1 + z| away from 0 (Re z >= 0, or |z| <= 0.94), so nothing cancels."""
    x, y = z.real, z.imag
    # 0.5 log1p(2x + x^2 + y^2) + i atan2(y, 1 + x), the same operations in the
    # same order as that one expression, in two scratch arrays instead of ten.
    real = 2.0 * x
    scratch = x * x
    real += scratch
    real += np.multiply(y, y, out=scratch)
    np.log1p(real, out=real)
    real *= 0.5
    out = 1j * np.arctan2(y, np.add(x, 1.0, out=scratch), out=scratch)
    out += real
    return out


def _expm1(z: np.ndarray) -> np.ndarray:
    """exp(z) - 1 for complex z, accurate for tiny |z|:
    expm1(x) cos y - 2 sin^2(y / 2) + i e^x sin y."""
    x, y = z.real, z.imag
    half = np.sin(0.5 * y)
    return np.expm1(x) * np.cos(y) - 2.0 * half * half + 1j * np.exp(x) * np.sin(y)


def _count_exponent(part: CompoundModel, phi: np.ndarray, without_atom: bool = False,
                    phi_minus_one: np.ndarray | None = None) -> np.ndarray:
    """log of one part's transform given its severity transform phi (parts == ()):
    Poisson lam (phi - 1), negative binomial -k log1p(-(lam / k) (phi - 1)),
    k = 1/theta^2 (`phi_minus_one`, when given, is phi - 1 computed more
    precisely than the subtraction). `without_atom`: log of the transform over
    P(N_u = 0), i.e. lam phi and -k log1p(-c phi), c = lam theta^2 / (1 + lam theta^2)."""
    lam = part.expected_count
    shape = shock_shape(part)
    if without_atom:
        if shape is None:
            return lam * phi
        c = (lam / shape) / (1.0 + lam / shape)
        return -shape * _log1p(-c * phi)
    step = phi - 1.0 if phi_minus_one is None else phi_minus_one
    if shape is not None:
        # z = -lam theta^2 (phi - 1) has Re z >= 0 since |phi| <= 1.
        return -shape * _log1p(-(lam / shape) * step)
    return lam * step


def describe_model(model: CompoundModel) -> str:
    """The inputs that drive the engine's numerics, for error messages."""
    streams = [s for part in model.components for s in part.streams]
    tails = [s.severity.tail_index for s in streams if s.severity.tail_index is not None]
    largest_cv = max(s.severity.cv for s in streams)
    if model.parts:
        cvs = [p.shock_cv for p in model.parts]
        text = (f"expected admissions {model.expected_count:.6g} "
                f"({math.fsum(s.rate for s in model.streams):.6g} under shock cv {model.shock_cv:.6g}, "
                f"the rest in {len(cvs)} independent parts with shock cv {min(cvs):.6g} to {max(cvs):.6g}), "
                f"largest severity cv {largest_cv:.6g}")
    else:
        text = (f"expected admissions {model.expected_count:.6g}, shock cv {model.shock_cv:.6g}, "
                f"largest severity cv {largest_cv:.6g}")
    if tails:
        text += f", smallest tail index {min(tails):.6g}"
    return text
