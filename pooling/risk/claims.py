"""Aggregate claim distributions: compound mixed-Poisson sums, computed exactly by FFT.

`aggregate` computes a model's VaR and CVaR at a level, with error control and
enforced self-checks; `lattice_law` gives its whole law (for the samplers and
reports). The engine is split by responsibility, and this module re-exports
the public names of its parts, so `from pooling.risk.claims import X` serves
every caller:

- pooling.risk.compound: the model (ClaimStream, CompoundModel with its
  independent shock parts, merge_streams), the claim count's law and
  transform, LatticeLaw and AggregateResult.
- pooling.risk.windows: the window [L, U] holding all but ~1e-12 of Y's mass.
- pooling.risk.lattice: Y's whole law on one lattice of span h (the direct
  lattice): mean-preserving severity, span choice, FFT.
- pooling.risk.direct: the direct lattice engine (VaR/CVaR at h and 2h,
  Richardson-extrapolated) and the claim cap for small heavy-tailed pools.
- pooling.risk.band: the band engine, for pools of more than ~37 admissions
  (exact cell masses on a lattice sized by Y's spread).
- pooling.risk.law_checks: the error tolerance, the enforced self-checks (mass,
  mean, variance against closed forms) and the retry on a wider window.

A leading underscore marks a name internal to these modules (shared between
them, not part of the API); tests and benchmarks import such names from the
module that defines them, and patch them there.

`aggregate` prices by the band engine where it applies (P(N = 0) <=
BAND_MAX_ATOM) and its law passes the checks, else by the direct lattice; a
law failing its checks is recomputed once on a wider window, then refused
(NumericsError). Measured against exact compound sums, errors stay below 2e-4
from 10^2 to 10^6 admissions (benchmarks/bench_claims.py). Method: DESIGN
§Exact aggregate distributions; docs/model.md.
"""

from __future__ import annotations

import numpy as np

from pooling.risk.band import BAND_MAX_ATOM, _band_aggregate
from pooling.risk.compound import (
    AggregateResult,
    ClaimStream,
    CompoundModel,
    LatticeLaw,
    describe_model,
    merge_streams,
    no_claim_probability,
    shock_shape,
)
from pooling.risk.direct import _direct_aggregate, claim_cap
from pooling.risk.lattice import POINTS_PER_WINDOW, SAMPLING_SHIFT_BUDGET, _grid, _lattice_law
from pooling.risk.law_checks import _checked, _ChecksFailed, law_check_failures

__all__ = [
    "AggregateResult",
    "ClaimStream",
    "CompoundModel",
    "LatticeLaw",
    "aggregate",
    "claim_cap",
    "describe_model",
    "lattice_law",
    "law_check_failures",
    "merge_streams",
    "no_claim_probability",
    "shock_shape",
]


def aggregate(model: CompoundModel, level: float) -> AggregateResult:
    """Compute Y's law and its VaR/CVaR at `level`, with error control and
    enforced self-checks (module docstring). A model with no claim of positive
    cost (every admission out of network where nothing is claimed, say) is
    Y = 0: VaR = CVaR = 0, exactly."""
    if not any(part.streams for part in model.components):
        law = _no_claims_law()
        return AggregateResult(law=law, level=level, var=0.0, cvar=0.0, mean=0.0, variance=0.0,
                               mean_rel_error=0.0, variance_rel_error=0.0, resolution_rel_diff=0.0, points=1)
    return _checked(lambda widen: _aggregate(model, level, widen), model)


def _aggregate(model: CompoundModel, level: float, widen: float) -> AggregateResult:
    """The band engine where it applies and passes its checks, else the direct lattice."""
    if no_claim_probability(model) <= BAND_MAX_ATOM:
        result = _band_aggregate(model, level, widen)
        if result is not None:
            return result
    return _direct_aggregate(model, level, widen)


def _no_claims_law() -> LatticeLaw:
    """Y = 0 with probability 1 (a model without claims of positive cost)."""
    pmf = np.ones(1)
    pmf.setflags(write=False)
    return LatticeLaw(start=0.0, span=1.0, pmf=pmf, discretised_variance=0.0)


def lattice_law(model: CompoundModel) -> LatticeLaw:
    """Y's whole law at the sampling budget, for samplers and reports that need
    the distribution rather than two extrapolated risk figures (self-checks
    enforced as for `aggregate`)."""
    if not any(part.streams for part in model.components):
        return _no_claims_law()

    def compute(widen: float) -> LatticeLaw:
        low, span, n = _grid(model, POINTS_PER_WINDOW, SAMPLING_SHIFT_BUDGET, widen)
        law = _lattice_law(model, low, span / 2.0, n * 2)
        failures = law_check_failures(law, model)
        if failures:
            raise _ChecksFailed("; ".join(failures))
        return law
    return _checked(compute, model)
