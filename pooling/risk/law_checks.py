"""What a computed aggregate law must pass before it reaches a price: the
accepted error estimate of the extrapolated VaR/CVaR and the enforced
self-checks against closed forms, with one retry on a wider window.

The mean of the result is checked against its closed form, and its variance
against the closed form of the discretised model, lambda E[X_d^2] + theta^2
E[Y]^2 (mean-preserving discretisation changes only E[X^2]), which isolates
FFT, window and aliasing errors; the variance the discretisation adds is
reported beside it.

Self-checks are enforced (`law_check_failures`, `_checked`): a lattice whose total mass, mean or
variance misses its closed form by more than MASS_TOLERANCE, MEAN_TOLERANCE
or VARIANCE_TOLERANCE is recomputed once on a window widened by WIDER_WINDOW
(the usual cause is mass wrapped around by a window too narrow for a heavy
tail); if that fails too, NumericsError names the drivers. A law failing its
checks never reaches a price.
"""

from __future__ import annotations

from pooling.errors import NumericsError
from pooling.risk.compound import AggregateResult, CompoundModel, LatticeLaw, describe_model

RESOLUTION_TOLERANCE = 1e-4
"""Accepted error estimate |R_h - R_2h| / (3 R) of the extrapolated VaR/CVaR:
10x tighter than the 1e-3 accuracy promised for pool pricing (the estimate
was within a factor 2 of the true error in the reference comparisons)."""
MASS_TOLERANCE = 1e-7
"""|total lattice mass - 1| allowed. The transform has mass exactly 1; clamping
its round-off to 0 adds a little, which grows with E[N] (phi's 1e-16 errors are
multiplied by E[N]): 7e-9 at 1.6e8 admissions, ~1e-13 for ordinary pools.
A miss of 1e-7 moves a 0.9999 quantile's tail mass by 0.1%; more means the
transform is wrong."""
MEAN_TOLERANCE = 1e-6
"""|lattice mean - E[Y]| / E[Y] allowed. Mean-preserving discretisation keeps
E[Y] exactly, so only mass beyond the window (< 1e-12) and round-off remain
(measured below 1e-9 over the validated input ranges). 1e-6 is a thousandth
of the 1e-3 promised for VaR/CVaR: a law passing it cannot move a price
visibly, a law failing it is wrong."""
VARIANCE_TOLERANCE = 1e-4
"""|lattice variance - closed form of the discretised model| / that, allowed.
It isolates FFT, window and aliasing errors (measured ~1e-9 normally). A
relative variance error e moves a quantile z sd above the mean by z sd e / 2,
well under e of the quantile: 1e-4 keeps the 1e-3 pricing promise 10x over."""
WIDER_WINDOW = 4.0
"""On a failed self-check the window is widened by this factor (each side
moved out by 1.5 widths, L kept >= 0) and the law recomputed once."""


def law_check_failures(law: LatticeLaw, model: CompoundModel) -> list[str]:
    """Self-checks a lattice law fails (empty when it passes): total mass, mean
    against E[Y], variance against the discretised model's closed form."""
    failures = []
    mass_error = abs(float(law.pmf.sum()) - 1.0)
    if not mass_error <= MASS_TOLERANCE:
        failures.append(f"total mass off by {mass_error:.3g} (tolerance {MASS_TOLERANCE:g})")
    mean_error = abs(law.mean + law.mean_beyond - model.mean) / model.mean
    if not mean_error <= MEAN_TOLERANCE:
        failures.append(f"mean off by {mean_error:.3g} relative (tolerance {MEAN_TOLERANCE:g})")
    variance_error = abs(law.variance - law.discretised_variance) / law.discretised_variance
    if not variance_error <= VARIANCE_TOLERANCE:
        failures.append(f"variance off by {variance_error:.3g} relative (tolerance {VARIANCE_TOLERANCE:g})")
    return failures


class _ChecksFailed(Exception):
    """A computed law failed its self-checks (internal: triggers the retry)."""


def _checked(compute, model: CompoundModel):
    """Run compute(widen) on the normal window, then once on a window widened
    by WIDER_WINDOW if the self-checks fail; NumericsError if both fail."""
    try:
        return compute(1.0)
    except _ChecksFailed:
        pass
    try:
        return compute(WIDER_WINDOW)
    except _ChecksFailed as exc:
        raise NumericsError(f"aggregate law failed its self-checks ({exc}), also on a window "
                            f"widened {WIDER_WINDOW:g}x; {describe_model(model)}") from None


def _result(law: LatticeLaw, level: float, var: float, cvar: float, model: CompoundModel,
            diff: float, points: int) -> AggregateResult:
    mean, variance = model.mean, model.variance
    return AggregateResult(
        law=law, level=level, var=var, cvar=cvar, mean=mean, variance=variance,
        mean_rel_error=abs(law.mean + law.mean_beyond - mean) / mean,
        variance_rel_error=abs(law.variance - law.discretised_variance) / law.discretised_variance,
        resolution_rel_diff=diff, points=points,
        discretisation_variance_share=(law.discretised_variance - variance) / variance,
        mass_error=abs(float(law.pmf.sum()) - 1.0))
