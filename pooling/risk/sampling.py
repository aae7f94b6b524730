"""Fast sampling of pool-year costs from exact aggregate laws.

Given Theta = t, a pool's eligible cost Y is compound Poisson; its quantile
function is computed exactly (FFT lattice, pooling.risk.claims) at Theta nodes
spaced evenly in normal score over Theta's +-7 sd range, and interpolated
linearly in t between them. A draw is then two binary searches, not one
draw per admission. Used by the stress test and by the ruin measure.

Theta is the main (national) shock of the model. A model with independent
extra parts (prefecture and county shocks, claims.CompoundModel.parts) is
conditioned on the main shock only: `given_shock` keeps the parts whole, so
each node's law is the exact law of Y given Theta = t, parts' own shocks mixed
in. A model whose main shock is 0 (or negligible) is sampled from its whole
law, parts included, whatever the parts' shocks; the Theta passed is ignored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from scipy import special

from pooling.risk.claims import CompoundModel, LatticeLaw, lattice_law, shock_shape

THETA_NODE_SCORES = np.linspace(-7.0, 7.0, 29)
"""Theta nodes at normal scores -7..7 (step 0.5): the quantile of Y given
Theta = t is smooth in t (mean linear, spread ~ sqrt(t)), so linear
interpolation over steps of 0.5 sd of Theta is far inside sampling error."""
TRIM = 1e-15
"""Lattice cells with CDF below TRIM or above 1 - TRIM are dropped from samplers."""
NODE_MEMO_BYTES = 256 * 2 ** 20
"""Most bytes of node samplers kept between PoolYearSamplers (`_node_sampler`: a
process-wide memo, least recently used dropped first): a pool stress-tested
again, or in several plans (docs/case_studies.py's uncertainty section draws one
Tongliao pool for three plans), reuses its node laws (~0.25 s and ~7 MB each
for that pool) instead of computing them again; the bound keeps a long run's
memory flat."""


class LatticeSampler:
    """Inverse CDF of a lattice law with atoms spread uniformly over their cells
    (the same convention as risk.lattice_var_cvar)."""

    def __init__(self, law: LatticeLaw):
        cdf = np.cumsum(law.pmf)
        lo = int(np.searchsorted(cdf, TRIM))
        hi = min(int(np.searchsorted(cdf, 1.0 - TRIM)) + 1, len(cdf))
        self.cdf = cdf[lo:hi]
        self.pmf = law.pmf[lo:hi]
        self.below = np.concatenate(([cdf[lo - 1] if lo > 0 else 0.0], self.cdf[:-1]))
        self.start = law.start + law.span * lo
        self.span = law.span
        for array in (self.cdf, self.below):   # shared between samplers (`_NodeMemo`): read only
            array.setflags(write=False)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        j = np.minimum(np.searchsorted(self.cdf, u, side="left"), len(self.cdf) - 1)
        mass = self.pmf[j]
        frac = np.where(mass > 0, (u - self.below[j]) / np.where(mass > 0, mass, 1.0), 0.5)
        frac = np.clip(frac, 0.0, 1.0)
        return np.maximum(self.start + self.span * (j - 0.5 + frac), 0.0)


def _footprint(array: np.ndarray) -> int:
    """Bytes an array keeps alive (a view keeps its base)."""
    return array.nbytes if array.base is None else max(array.nbytes, array.base.nbytes)


class _NodeMemo:
    """(model, node) -> the LatticeSampler of `model` given its main shock =
    node, least recently used dropped beyond NODE_MEMO_BYTES. A node's law is a
    pure function of its key (the same law whenever it is made), so draws are the
    same bits with the memo warm or cold."""

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self._held: OrderedDict[tuple[CompoundModel, float], tuple[LatticeSampler, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: CompoundModel, node: float) -> LatticeSampler:
        key = (model, node)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
                return held[0]
        sampler = LatticeSampler(lattice_law(model.given_shock(node)))
        size = _footprint(sampler.cdf) + _footprint(sampler.pmf) + _footprint(sampler.below)
        with self._lock:
            if key not in self._held and size <= self.budget:
                self._held[key] = (sampler, size)
                self.size += size
                while self.size > self.budget:
                    _, (_, dropped) = self._held.popitem(last=False)
                    self.size -= dropped
        return sampler

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
            self.size = 0


_node_memo = _NodeMemo(NODE_MEMO_BYTES)


class PoolYearSampler:
    """Draws Y_P given the main shock Theta: interpolated conditional quantiles
    (module docstring); the model's extra parts are inside each conditional law."""

    def __init__(self, model: CompoundModel, nodes: np.ndarray | None = None):
        """`nodes` (increasing multipliers of the main streams) replace the
        Theta nodes: a caller whose main multiplier is not Theta (an adjustment
        fund's members share w_N Theta_N + w_P Theta_P, economics.adjustment_ruin)
        places them over its own multiplier's range and passes its values to `sample`."""
        shape = shock_shape(model) if nodes is None else None
        if shape is not None:
            from scipy import stats  # here, not at the top: ~0.5 s to import, and solve never samples
            levels = special.ndtr(THETA_NODE_SCORES)
            nodes = np.where(THETA_NODE_SCORES > 0,
                             stats.gamma.isf(special.ndtr(-THETA_NODE_SCORES), shape, scale=1.0 / shape),
                             stats.gamma.ppf(levels, shape, scale=1.0 / shape))
        if nodes is None or not np.all(np.diff(nodes) > 0):
            # No shock, or one too small to separate the nodes in double
            # precision: Y given Theta is Y (the theta -> 0 limit).
            self.nodes = None
            self.samplers = [LatticeSampler(lattice_law(model))]
            return
        self.nodes = nodes
        self._model = model
        # A node's law is computed when a draw first needs it (`_sampler`): 4,000
        # draws of Theta reach about 15 of the 29 nodes, and each law is a full
        # lattice (~0.3 s for a prefecture), kept in a bounded memo shared by
        # the samplers of the process (`_NodeMemo`). The same law whenever it is
        # made, so draws do not depend on the order nodes are reached in.
        self.samplers: list[LatticeSampler | None] = [None] * len(nodes)

    def _sampler(self, k: int) -> LatticeSampler:
        sampler = self.samplers[k]
        if sampler is None:
            sampler = self.samplers[k] = _node_memo.get(self._model, float(self.nodes[k]))
        return sampler

    def sample(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        if self.nodes is None:
            return self.samplers[0].quantile(u)
        nodes = self.nodes
        k = np.clip(np.searchsorted(nodes, theta, side="right"), 1, len(nodes) - 1)
        weight = (theta - nodes[k - 1]) / (nodes[k] - nodes[k - 1])
        out = np.empty_like(u)
        for kk in np.unique(k):
            idx = np.nonzero(k == kk)[0]
            low = self._sampler(kk - 1).quantile(u[idx])
            high = self._sampler(kk).quantile(u[idx])
            out[idx] = np.maximum(low + weight[idx] * (high - low), 0.0)
        return out
