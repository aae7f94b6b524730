"""The exact law of an adjustment fund's demand (issue 27, docs/model.md
§Adjustment funds): the sum over member funds of their deficits beyond a
threshold, members' claims sharing the common (national and prefecture) shocks.

Member i's eligible cost Y_i has its admissions scaled by M_i = w_N Theta_N +
w_P Theta_P(i) + w_C Theta_C(i) (independent Gamma(1, cv) multipliers; the
pool model's shocks, economics.pools.pool_model). Given the common shocks
(Theta_N and every prefecture's Theta_P) the members' costs are independent:
each is a compound Poisson sum with rates scaled by w_N Theta_N + w_P Theta_P
plus its own county part (negative binomial count, exact through its
transform). So given the shocks each member's deficit D_i = (r Y_i - T_i)+ has
a law computed exactly on the lattice, the fund's demand S = sum D_i is their
convolution (FFT), and S's law is the mixture of these over the shocks:
prefecture by prefecture given Theta_N (members of one prefecture share its
Theta_P; prefectures are independent given Theta_N), then over Theta_N.
Mixing and convolving are both linear or multiplicative in the Fourier
domain, so the fund's transform is sum_a w_a prod_p (sum_b w_b prod_{i in p}
D_i^(a, b)) and one inverse FFT gives S's law.

Shocks are integrated by the quadrature of pooling.risk.shock_quadrature
(`gamma_nodes`): cells of given probability with an edge at the solvency
level, two nodes per cell keeping the shock's mean and variance exactly, as
many cells as the group's own spread asks for. Lattice: every member's Y_i on one span g over
[0, n g), n = LATTICE_POINTS, holding the whole group's window
(risk.windows); at rate r, S lives on span r g, so the laws of Y_i are
computed once and every rate reuses them (a rate search costs mappings and
FFTs, not severity lattices). A threshold off the lattice is met by splitting
each deficit's mass between its two neighbouring points, keeping its mean.

Self-checks (enforced, NumericsError): each member's law (mass and mean against
the closed form), the fund's law (mass, and mean against the sum of the
members' expected deficits: a convolution wrapping around its lattice shows
there), and pro-rata payments summing to E[min(S, F)] (`expected_payments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pooling.errors import NumericsError
from pooling.risk.compound import (
    ClaimStream,
    CompoundModel,
    _count_exponent,
    _expm1,
    merge_streams,
    no_claim_probability,
)
from pooling.risk.lattice import ATOM_SPLIT, _normalised_severity_lattice
from pooling.risk.law_checks import MASS_TOLERANCE, MEAN_TOLERANCE
from pooling.risk.measures import lattice_var_cvar
from pooling.risk.shock_quadrature import _body_cells, _conditional_spread, gamma_nodes, summed_nodes
from pooling.risk.windows import _window

LATTICE_POINTS = 2 ** 14
"""Most points of the members' common lattice across the group's window: the
limit tests price the unified and stand-alone limits of groups of 10^3 to
10^4 admissions within ADJUSTMENT_ACCURACY of the engine at it."""
CELLS_PER_CLAIM = 8
"""Fewer points where they would already give a mean claim this many cells
(small groups: a window of a few hundred claims), at least 2^11."""
TRIM = 1e-13
"""Mass below which a member's conditional law is cut at either end (added to
the last cell kept): it keeps stored laws and their mappings near their own
support. FFT round-off leaves ~1e-18 in every cell, so a cut much below this
would keep the whole lattice; the engine's window itself drops 1e-12, and
moving 1e-13 of mass across the lattice moves the mean by under 1e-13 of its
width, far below MEAN_TOLERANCE."""
PAYMENT_BALANCE_TOLERANCE = 1e-7
"""|sum of members' expected pro-rata payments - E[min(S, F)]| / F allowed.
The two are equal on the lattice point by point (sum_i D_i min(1, F/S) =
min(S, F)); only FFT round-off (~1e-13 of the mass per cell) separates them."""
FUND_MEAN_SCALE = "max(E[S], r sum E[Y_i])"
"""What the fund's mean check is relative to: the members' claims r sum E[Y_i]
when deficits are rare (E[S] tiny). FFT round-off (~1e-17 per cell, its
positive half kept when the law is clamped at 0) is measured against the
claims it comes from, as the engine's MEAN_TOLERANCE is against E[Y]."""
ADJUSTMENT_ACCURACY = 2e-3
"""Relative agreement of the adjustment fund's limits with the engine's pools
(tests): both laws are exact up to lattice resolution and, here, quadrature."""


@dataclass(frozen=True)
class SharedShocks:
    """Weights and cvs of the national, prefecture and county shock levels
    (instance parameters; the national weight is 1 minus the others)."""

    national_weight: float = 1.0
    national_cv: float = 0.0
    prefecture_weight: float = 0.0
    prefecture_cv: float = 0.0
    county_weight: float = 0.0
    county_cv: float = 0.0


@dataclass(frozen=True)
class Member:
    """One member fund's claims: its streams (at multiplier 1, its own
    network) and the prefecture whose shock it shares."""

    name: str
    prefecture: str
    streams: tuple[ClaimStream, ...]

    @property
    def mean(self) -> float:
        return math.fsum(s.mean for s in self.streams)


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


@dataclass(frozen=True)
class FundFigures:
    """The fund's demand S at one rate and set of thresholds."""

    rate: float
    span: float                 # r g: S's lattice span
    pmf: np.ndarray
    var: float
    cvar: float
    mean: float                 # sum of the members' expected deficits
    member_deficits: tuple[float, ...]   # E[D_i]
    mass_error: float
    mean_rel_error: float


class FundLaws:
    """The members' conditional claim laws on one lattice, given every node
    of the common shocks, computed once (module docstring)."""

    def __init__(self, members: list[Member], shocks: SharedShocks, level: float, points: int = LATTICE_POINTS):
        if not members:
            raise ValueError("an adjustment fund needs members")
        self.members = tuple(members)
        self.shocks = shocks
        self.regions = sorted({m.prefecture for m in members})
        self.region_of = [self.regions.index(m.prefecture) for m in members]
        self.level = level
        group = self._group_model()
        spread = _conditional_spread(group)
        # Shock nodes and the weights that turn a node pair (a, b) into the
        # members' common multiplier w_N Theta_N + w_P Theta_P.
        self._weights = (shocks.national_weight, shocks.prefecture_weight)
        national_spread = shocks.national_weight * shocks.national_cv
        regional_spread = shocks.prefecture_weight * shocks.prefecture_cv
        self.national = gamma_nodes(shocks.national_cv if shocks.national_weight > 0.0 else 0.0, level,
                                    _body_cells(national_spread, spread))
        self.regional = (np.ones(1), np.ones(1))
        if regional_spread > 0.0 and len(self.regions) == 1:   # one variable: M = w_N Theta_N + w_P Theta_P
            self.national = summed_nodes(
                [(shocks.national_weight, shocks.national_cv), (shocks.prefecture_weight, shocks.prefecture_cv)],
                level, _body_cells(math.hypot(national_spread, regional_spread), spread))
            self._weights = (1.0, 0.0)
        elif regional_spread > 0.0:
            self.regional = gamma_nodes(shocks.prefecture_cv, level, _body_cells(regional_spread, spread))
        high = _window(group)[1] if group.streams or group.parts else 1.0
        if group.expected_count > 0.0:
            claim = group.mean / group.expected_count
            wanted = 1 << max(11, int(math.ceil(math.log2(CELLS_PER_CLAIM * high / claim + 4))))
            points = min(points, wanted)
        self.points = points
        self.span = max(high, 1e-300) / (points - 4)
        # laws[i][(a, b)] = (offset, pmf) of Y_i given national node a and its prefecture's node b.
        self.laws: list[dict[tuple[int, int], tuple[int, np.ndarray]]] = [self._member_laws(m) for m in members]
        self.unconditional = [self._mixed(i) for i in range(len(members))]
        self._risk_cache: dict[tuple[int, float], tuple[float, float]] = {}
        self._suffix: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _group_model(self) -> CompoundModel:
        """The group's total cost as one model (for its window): the shock
        structure of economics.pools.pool_model with every member's own streams."""
        sh = self.shocks
        def scaled(streams, w):
            return tuple(ClaimStream(s.rate * w, s.severity, s.factor) for s in merge_streams(streams))
        everything = [s for m in self.members for s in m.streams]
        parts = []
        if sh.prefecture_weight > 0.0:
            for region in self.regions:
                streams = [s for m in self.members if m.prefecture == region for s in m.streams]
                parts.append(CompoundModel(scaled(streams, sh.prefecture_weight), sh.prefecture_cv))
        if sh.county_weight > 0.0:
            parts += [CompoundModel(scaled(m.streams, sh.county_weight), sh.county_cv) for m in self.members]
        parts = tuple(p for p in parts if p.streams)
        return CompoundModel(scaled(everything, sh.national_weight), sh.national_cv, parts=parts)

    def _member_laws(self, member: Member) -> dict[tuple[int, int], tuple[int, np.ndarray]]:
        sh, n, g = self.shocks, self.points, self.span
        streams = merge_streams(member.streams)
        if not streams:
            return {(a, b): (0, np.ones(1)) for a in range(len(self.national[0]))
                    for b in range(len(self.regional[0]))}
        sev, _, _ = _normalised_severity_lattice(streams, g, n)
        phi = np.fft.rfft(sev)
        phi[0] = 1.0
        lam = math.fsum(s.rate for s in streams)
        own = None
        poisson_weight = 0.0
        if sh.county_weight > 0.0:
            if sh.county_cv > 0.0:
                own = CompoundModel(tuple(ClaimStream(s.rate * sh.county_weight, s.severity, s.factor)
                                          for s in streams), sh.county_cv)
            else:
                poisson_weight = sh.county_weight
        own_full = _count_exponent(own, phi) if own is not None else 0.0
        own_free = _count_exponent(own, phi, without_atom=True) if own is not None else 0.0
        own_p0 = no_claim_probability(own) if own is not None else 1.0
        laws = {}
        for a, theta_n in enumerate(self.national[0]):
            for b, theta_p in enumerate(self.regional[0]):
                multiplier = self._weights[0] * theta_n + self._weights[1] * theta_p + poisson_weight
                p0 = math.exp(-lam * multiplier) * own_p0
                if p0 >= ATOM_SPLIT:
                    pmf = np.fft.irfft(p0 * _expm1(lam * multiplier * phi + own_free), n)
                    pmf[0] += p0
                else:
                    pmf = np.fft.irfft(np.exp(lam * multiplier * (phi - 1.0) + own_full), n)
                np.maximum(pmf, 0.0, out=pmf)
                laws[(a, b)] = _trimmed(pmf)
        return laws

    def _mixed(self, i: int) -> np.ndarray:
        """Member i's unconditional law on [0, n g) (the shocks mixed), checked."""
        out = np.zeros(self.points)
        for (a, b), (offset, pmf) in self.laws[i].items():
            out[offset:offset + len(pmf)] += self.national[1][a] * self.regional[1][b] * pmf
        mass = float(out.sum())
        mean = self.span * _dot(out, np.arange(self.points, dtype=float))
        expected = self.members[i].mean
        failures = []
        if not abs(mass - 1.0) <= MASS_TOLERANCE:
            failures.append(f"mass off by {abs(mass - 1.0):.3g} (tolerance {MASS_TOLERANCE:g})")
        if expected > 0.0 and not abs(mean - expected) <= MEAN_TOLERANCE * expected:
            failures.append(f"mean off by {abs(mean - expected) / expected:.3g} relative "
                            f"(tolerance {MEAN_TOLERANCE:g})")
        if failures:
            raise NumericsError(f"member \"{self.members[i].name}\": its claims law on the adjustment fund's "
                                "lattice failed its self-checks: " + "; ".join(failures))
        return out

    def member_risk(self, i: int, rate: float, cap: float | None, level: float) -> tuple[float, float]:
        """(VaR, CVaR) at `level` of member i's own payments min(r Y_i, cap)
        (cap None: r Y_i, no cover), with the spread-lattice convention of
        risk.measures: VaR(min(X, T)) = min(VaR(X), T) and, when VaR(X) < T,
        CVaR(min(X, T)) = CVaR(X) - E[(X - T)+] / (1 - level). Both scale with
        r, so Y_i's figures on span g are computed once per level."""
        key = (i, level)
        if key not in self._risk_cache:
            self._risk_cache[key] = lattice_var_cvar(0.0, self.span, self.unconditional[i], level)
        var, cvar = (rate * x for x in self._risk_cache[key])
        if cap is None:
            return var, cvar
        if var >= cap:
            return cap, cap
        return var, cvar - rate * self._stop_loss(i, cap / rate) / (1.0 - level)

    def _stop_loss(self, i: int, t: float) -> float:
        """E[(Y_i - t)+] with atom j at j g spread uniformly over its cell
        [(j - 1/2) g, (j + 1/2) g] (risk.measures), from suffix sums."""
        if i not in self._suffix:
            pmf = self.unconditional[i]
            mass = np.concatenate((np.cumsum(pmf[::-1])[::-1], [0.0]))
            first = np.concatenate((np.cumsum((pmf * (self.span * np.arange(len(pmf))))[::-1])[::-1], [0.0]))
            self._suffix[i] = (mass, first)
        mass, first = self._suffix[i]
        g, pmf = self.span, self.unconditional[i]
        j = int(math.floor(t / g + 0.5))          # the cell holding t
        if j >= len(pmf):
            return 0.0
        if j < 0:
            return float(first[0]) - t * float(mass[0])
        whole = float(first[j + 1]) - t * float(mass[j + 1])
        return whole + float(pmf[j]) * ((j + 0.5) * g - t) ** 2 / (2.0 * g)

    def _scales(self, rate) -> tuple[float, list[float]]:
        """(reference rate, r_i / reference) for one rate or one per member:
        S lives on span (reference rate) g, the largest rate's."""
        rates = [float(rate)] * len(self.members) if np.ndim(rate) == 0 else [float(r) for r in rate]
        reference = max(rates)
        if not reference > 0.0:
            raise ValueError(f"rates must include one > 0, got {rates}")
        return reference, [r / reference for r in rates]

    def fund(self, rate, thresholds: list[float], level: float) -> FundFigures:
        """The law of S = sum (r_i Y_i - T_i)+ with its VaR and CVaR at `level`
        (spread-lattice convention, risk.measures); `rate` is every member's,
        or one per member (at least one > 0)."""
        reference, scales = self._scales(rate)
        h = reference * self.span
        shifts = [t / h for t in thresholds]
        size = self._fund_size(shifts, scales)
        transform, deficits = self._fund_transform(shifts, size, scales)
        pmf = np.fft.irfft(transform, size)
        np.maximum(pmf, 0.0, out=pmf)
        deficits = tuple(d * h for d in deficits)
        mean = math.fsum(deficits)
        mass = float(pmf.sum())
        lattice_mean = h * _dot(pmf, np.arange(size, dtype=float))
        scale = max(mean, reference * math.fsum(s * m.mean for s, m in zip(scales, self.members)), h)
        mass_error, mean_error = abs(mass - 1.0), abs(lattice_mean - mean) / scale
        failures = []
        if not mass_error <= MASS_TOLERANCE:
            failures.append(f"mass off by {mass_error:.3g} (tolerance {MASS_TOLERANCE:g})")
        if not mean_error <= MEAN_TOLERANCE:
            failures.append(f"mean off by {mean_error:.3g} relative (tolerance {MEAN_TOLERANCE:g})")
        if failures:
            names = ", ".join(m.name for m in self.members)
            raise NumericsError(f"adjustment fund of [{names}] at rate {reference:.6g}: its demand law failed its "
                                "self-checks: " + "; ".join(failures))
        pmf.setflags(write=False)
        var, cvar = lattice_var_cvar(0.0, h, pmf, level)
        return FundFigures(rate=reference, span=h, pmf=pmf, var=var, cvar=cvar, mean=mean, member_deficits=deficits,
                           mass_error=mass_error, mean_rel_error=mean_error)

    def _fund_size(self, shifts: list[float], scales: list[float]) -> int:
        """Points of S's lattice: a power of two above the largest S, the sum
        of the members' largest deficits (their laws' last points less the
        shifts), so that the convolution never wraps."""
        if not hasattr(self, "_tops"):
            self._tops = [max(offset + len(pmf) - 1 for offset, pmf in laws.values()) for laws in self.laws]
        reach = math.fsum(max(0.0, scale * top - math.floor(shift)) + 1.0
                          for top, shift, scale in zip(self._tops, shifts, scales))
        return 1 << max(4, int(math.ceil(math.log2(reach + 4))))

    def _deficit_transforms(self, i: int, a: int, b: int, shift: float, size: int, scale: float = 1.0,
                            means: list[list[float]] | None = None) -> np.ndarray:
        """The transform of D_i given nodes (a, b) on `size` points; with
        `means`, E[D_i | a, b] (lattice units) times the nodes' weight is
        appended to means[i]."""
        offset, pmf = self.laws[i][(a, b)]
        mapped = _scaled_split(pmf, offset, scale, shift, size)
        if means is not None:   # E[(scale X - shift)+]
            value = scale * (offset + np.arange(len(pmf), dtype=float)) - shift
            mean = _dot(pmf, np.maximum(value, 0.0))
            means[i].append(self.national[1][a] * self.regional[1][b] * mean)
        return np.fft.rfft(mapped)

    def _region_members(self, p: int) -> list[int]:
        return [i for i, q in enumerate(self.region_of) if q == p]

    def _fund_transform(self, shifts: list[float], size: int,
                        scales: list[float]) -> tuple[np.ndarray, list[float]]:
        """S's transform and each member's E[D_i] (lattice units)."""
        means: list[list[float]] = [[] for _ in self.members]
        total = np.zeros(size // 2 + 1, dtype=complex)
        for a, w_a in enumerate(self.national[1]):
            given_a = np.ones(size // 2 + 1, dtype=complex)
            for p in range(len(self.regions)):
                region = np.zeros(size // 2 + 1, dtype=complex)
                for b, w_b in enumerate(self.regional[1]):
                    product = np.ones(size // 2 + 1, dtype=complex)
                    for i in self._region_members(p):
                        product *= self._deficit_transforms(i, a, b, shifts[i], size, scales[i], means)
                    region += w_b * product
                given_a *= region
            total += w_a * given_a
        return total, [math.fsum(m) for m in means]

    def expected_payments(self, rate, thresholds: list[float], means: float,
                          fund: FundFigures) -> tuple[float, ...]:
        """E[D_i min(1, F / S)] for each member: the fund pays every deficit in
        full when it can and pro rata when S > F (`means` = F). Given the
        shocks D_i and S - D_i are independent, so E[D_i g(D_i + S_-i)], g(s)
        = min(1, F/s), is a correlation of g with S_-i's law (one FFT).
        Checked: they sum to E[min(S, F)] from the fund's law."""
        h = fund.span
        size = len(fund.pmf)
        shifts = [t / h for t in thresholds]
        scales = self._scales(rate)[1]
        big = 2 * size
        idx = np.arange(big, dtype=float)
        with np.errstate(divide="ignore"):
            share = np.where(idx > 0, np.minimum(1.0, means / (idx * h)), 1.0) if means > 0 else (idx == 0) * 1.0
        share_hat = np.fft.rfft(share)
        half = size // 2 + 1
        # Region transforms given each national node, for S_-i outside i's prefecture.
        region_mix: dict[tuple[int, int], np.ndarray] = {}
        for a in range(len(self.national[1])):
            for p in range(len(self.regions)):
                mix = np.zeros(half, dtype=complex)
                for b, w_b in enumerate(self.regional[1]):
                    product = np.ones(half, dtype=complex)
                    for j in self._region_members(p):
                        product *= self._deficit_transforms(j, a, b, shifts[j], size, scales[j])
                    mix += w_b * product
                region_mix[(a, p)] = mix
        payments = []
        for i in range(len(self.members)):
            p_i = self.region_of[i]
            terms = []
            for a, w_a in enumerate(self.national[1]):
                outside = np.ones(half, dtype=complex)
                for p in range(len(self.regions)):
                    if p != p_i:
                        outside *= region_mix[(a, p)]
                for b, w_b in enumerate(self.regional[1]):
                    others = outside.copy()
                    for j in self._region_members(p_i):
                        if j != i:
                            others *= self._deficit_transforms(j, a, b, shifts[j], size, scales[j])
                    rest = np.maximum(np.fft.irfft(others, size), 0.0)
                    # A(d) = sum_s P(S_-i = s) share(d + s): a correlation, no wrap for d, s < size.
                    corr = np.fft.irfft(share_hat * np.conj(np.fft.rfft(rest, big)), big)[:size]
                    offset, pmf = self.laws[i][(a, b)]
                    d = _scaled_split(pmf, offset, scales[i], shifts[i], size)
                    terms.append(w_a * w_b * h * _dot(d * np.arange(size), corr))
            payments.append(math.fsum(terms))
        paid = h * _dot(fund.pmf, np.minimum(np.arange(size, dtype=float), means / h)) if means > 0 else 0.0
        miss = abs(math.fsum(payments) - paid) / max(means, h)
        if not miss <= PAYMENT_BALANCE_TOLERANCE:
            raise NumericsError(f"adjustment fund of [{', '.join(m.name for m in self.members)}]: members' "
                                f"expected payments sum to {math.fsum(payments):.9g}, E[min(S, F)] is "
                                f"{paid:.9g} (relative miss {miss:.3g} > {PAYMENT_BALANCE_TOLERANCE:g})")
        return tuple(payments)


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """sum x y by numpy's pairwise sum: a BLAS dot may spread a short vector over
    threads, which on a loaded machine cost 20 ms for 16,384 terms."""
    return float(np.multiply(x, y).sum())


def _trimmed(pmf: np.ndarray) -> tuple[int, np.ndarray]:
    """(offset, pmf[offset:end]) without the ends holding under TRIM of mass,
    which is added to the first and last cells kept."""
    cdf = np.cumsum(pmf)
    total = float(cdf[-1])
    first = int(np.searchsorted(cdf, TRIM, side="right"))
    last = int(np.searchsorted(cdf, total - TRIM, side="left"))
    first = min(first, len(pmf) - 1)
    last = max(min(last, len(pmf) - 1), first)
    kept = pmf[first:last + 1].copy()
    kept[0] += float(pmf[:first].sum())
    kept[-1] += float(pmf[last + 1:].sum())
    return first, kept
