"""The predictive mixture's VaR and CVaR (pooling.risk.mixture) against closed
forms, and the laws a mixture obeys."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from pooling.errors import NumericsError
from pooling.risk.claims import LatticeLaw
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.mixture import Component, mixture_risk
from tests.tolerances import ROUNDING


def _law(start: float, span: float, pmf) -> LatticeLaw:
    pmf = np.asarray(pmf, dtype=float)
    pmf.setflags(write=False)
    return LatticeLaw(start=start, span=span, pmf=pmf)


def _uniform(low: float, high: float, cells: int) -> Component:
    """Uniform on [low, high]: exact as a spread lattice law (its cells spread uniformly)."""
    span = (high - low) / cells
    return Component(1.0, _law(low + 0.5 * span, span, np.full(cells, 1.0 / cells)), 0.5 * (low + high))


def test_two_uniform_laws_give_the_closed_form_mixture():
    """w = 0.3 on U[0, 1] and 0.7 on U[0.5, 2.5]; level 0.9: the mixture's
    CDF above 1 is 0.3 + 0.7 (x - 0.5) / 2, so VaR = 0.5 + 2 (0.9 - 0.3) / 0.7,
    and its tail is uniform on [VaR, 2.5], CVaR its midpoint."""
    a = _uniform(0.0, 1.0, 64)
    b = _uniform(0.5, 2.5, 256)
    mix = mixture_risk([Component(0.3, a.law, a.mean), Component(0.7, b.law, b.mean)], 0.9)
    var = 0.5 + 2.0 * (0.9 - 0.3) / 0.7
    assert mix.var == pytest.approx(var, abs=ROUNDING)
    assert mix.cvar == pytest.approx(0.5 * (var + 2.5), abs=ROUNDING)
    assert mix.mean == pytest.approx(0.3 * 0.5 + 0.7 * 1.5, abs=ROUNDING)


def _exponential(mean: float, span: float, weight: float) -> Component:
    """Exponential of `mean`, each cell [x - h/2, x + h/2] given its exact mass."""
    edges = np.arange(0.0, 40.0 * mean + span, span)
    pmf = -np.diff(np.exp(-edges / mean))
    pmf[-1] += math.exp(-edges[-1] / mean)
    return Component(weight, _law(0.5 * span, span, pmf), mean)


@pytest.mark.parametrize("level", [0.9, 0.99, 0.999])
def test_two_exponential_laws_match_the_closed_form_mixture(level):
    """P(Y > x) = 0.6 e^(-x) + 0.4 e^(-x/3): VaR solves it equal to 1 - level,
    CVaR = VaR + sum w m e^(-VaR/m) / (1 - level). Lattices of 1/2000 and 1/1000
    of the means: the extrapolated figures are within 1e-7 relative."""
    parts = [(0.6, 1.0), (0.4, 3.0)]
    components = [_exponential(m, m / span, w) for (w, m), span in zip(parts, (2000, 1000))]
    mix = mixture_risk(components, level)

    def survival(x):
        return math.fsum(w * math.exp(-x / m) for w, m in parts)
    var = optimize.brentq(lambda x: survival(x) - (1.0 - level), 0.0, 100.0, xtol=1e-14)
    cvar = var + math.fsum(w * m * math.exp(-var / m) for w, m in parts) / (1.0 - level)
    assert mix.var == pytest.approx(var, rel=1e-7)
    assert mix.cvar == pytest.approx(cvar, rel=1e-7)
    assert mix.resolution_rel_diff < 1e-5


def test_a_mixture_of_one_law_is_the_lattice_law():
    """Weight 1 on one law: the figures of risk.measures at span h (before
    extrapolation, which pairs of cells of a smooth law barely move)."""
    comp = _exponential(2.0, 0.002, 1.0)
    var, cvar = lattice_var_cvar(comp.law.start, comp.law.span, np.asarray(comp.law.pmf), 0.99)
    mix = mixture_risk([comp], 0.99)
    assert mix.var == pytest.approx(var, rel=1e-5) and mix.cvar == pytest.approx(cvar, rel=1e-5)


def test_a_lost_component_fails_the_mass_check():
    a = _uniform(0.0, 1.0, 64)
    with pytest.raises(NumericsError, match="total mass"):
        mixture_risk([Component(0.5, a.law, a.mean)], 0.9)


def test_a_wrong_mean_fails_the_mean_check():
    a = _uniform(0.0, 1.0, 64)
    with pytest.raises(NumericsError, match="mean off"):
        mixture_risk([Component(1.0, a.law, 0.6)], 0.9)


laws = st.tuples(st.floats(0.0, 10.0), st.floats(0.01, 1.0),
                 st.lists(st.floats(0.0, 1.0), min_size=4, max_size=40).filter(lambda p: sum(p) > 0.1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(laws, st.floats(0.01, 1.0)), min_size=2, max_size=4), st.floats(0.5, 0.995))
def test_mixture_laws(items, level):
    """A mixture's VaR lies between its components' VaRs, and its CVaR is at
    least the weighted mean of theirs (CVaR is concave in the mixture: the
    fact the predictive column-generation bound rests on). Figures before
    extrapolation (on rough laws the Richardson step is no law)."""
    total = math.fsum(w for _, w in items)
    components = []
    for (start, span, pmf), w in items:
        pmf = np.asarray(pmf) / math.fsum(pmf)
        law = _law(start, span, pmf)
        components.append(Component(w / total, law, law.mean))
    from pooling.risk import mixture
    spreads = [mixture._spread(c, False) for c in components]
    var, cvar = mixture._risk(spreads, level)
    alone = [mixture._risk([mixture._spread(Component(1.0, c.law, c.mean), False)], level) for c in components]
    scale = max(1.0, max(abs(v) for v, _ in alone))
    assert min(v for v, _ in alone) - 1e-9 * scale <= var <= max(v for v, _ in alone) + 1e-9 * scale
    assert cvar >= math.fsum(c.weight * cv for c, (_, cv) in zip(components, alone)) - 1e-9 * scale
    for (v, cv), c in zip(alone, components):   # one law alone: risk.measures' figures
        assert (v, cv) == pytest.approx(lattice_var_cvar(c.law.start, c.law.span, np.asarray(c.law.pmf), level),
                                        rel=1e-9, abs=1e-9)
