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
D_i^(a, b)) and one inverse FFT gives S's law. A prefecture with a single
member of the group needs no nodes of its own: given Theta_N its shock is
that member's alone and is folded into its law (a Gamma-mixed part, exact
through its transform, as the county part), so a group of members in
different prefectures is mixed over Theta_N alone (`FundLaws.folded`).

Shocks are integrated by the quadrature of pooling.risk.shock_quadrature
(`gamma_nodes`): cells of given probability with an edge at the solvency
level, two nodes per cell keeping the shock's mean and variance exactly, as
many cells as the group's own spread asks for. Lattice: every member's Y_i on one span g over
[0, n g), n = LATTICE_POINTS, holding the whole group's window
(risk.windows); at rate r, S lives on span r g, so the laws of Y_i are
computed once and every rate reuses them (a rate search costs mappings and
FFTs, not severity lattices). A member's law given the nodes is the exact
mass of each cell of span g where its transform vanishes at the lattice's
Nyquist frequency (`_band_phi`: the band engine's severity quadrature, so a
claim far below a cell costs nothing in accuracy); otherwise it is the
mean-preserving severity lattice, refined while that adds too much variance.
A threshold off the lattice is met by splitting
each deficit's mass between its two neighbouring points, keeping its mean.

Self-checks (enforced, NumericsError): each member's law (mass, mean and
variance against the closed form, and the variance the lattice adds), the
fund's law (mass, and mean against the sum of the members' expected
deficits: a convolution wrapping around its lattice shows there), and
pro-rata payments summing to E[min(S, F)] (`expected_payments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pooling.errors import NumericsError
from pooling.risk.band import BAND_MAX_ATOM, _cell_transform
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
from pooling.risk.member_lattice import _band_phi, _dot, _scaled_split, _trimmed
from pooling.risk.shock_quadrature import _body_cells, _conditional_spread, gamma_nodes, summed_nodes
from pooling.risk.windows import _window

LATTICE_POINTS = 2 ** 14
"""Most points of the members' common lattice across the group's window: the
limit tests price the unified and stand-alone limits of groups of 10^3 to
10^4 admissions within ADJUSTMENT_ACCURACY of the engine at it."""
MAX_LATTICE_POINTS = 2 ** 18
"""Most points the lattice is refined to (doubling from LATTICE_POINTS) while a
member is too narrow on it for exact cell masses (ALIAS_TOLERANCE) and its
severity lattice would add more than DISCRETISATION_VARIANCE_SHARE: a small
prefecture fund in a province of large ones (Wuhai in Inner Mongolia's 12
funds: 2^15). Beyond it the member's law is refused (NumericsError)."""
CELLS_PER_CLAIM = 8
"""Fewer points where they would already give a mean claim this many cells
(small groups: a window of a few hundred claims), at least 2^11."""
PAYMENT_BALANCE_TOLERANCE = 1e-7
"""|sum of members' expected pro-rata payments - E[min(S, F)]| / F allowed.
The two are equal on the lattice point by point (sum_i D_i min(1, F/S) =
min(S, F)); only FFT round-off (~1e-13 of the mass per cell) separates them."""
FUND_MEAN_SCALE = "max(E[S], r sum E[Y_i])"
"""What the fund's mean check is relative to: the members' claims r sum E[Y_i]
when deficits are rare (E[S] tiny). FFT round-off (~1e-17 per cell, its
positive half kept when the law is clamped at 0) is measured against the
claims it comes from, as the engine's MEAN_TOLERANCE is against E[Y]."""
DISCRETISATION_VARIANCE_SHARE = 1e-3
"""Most variance the lattice may add: for a member on the mean-preserving
severity lattice, lambda (E[X_d^2] - E[X^2]) as a share of Var Y_i; for the
members priced by exact cell masses (`_band_phi`), whose cells' centres add
Sheppard's g^2 / 12 each to the fund's demand, their sum as a share of the
group's Var sum Y_i. A share e moves a quantile z sd above the mean by about
z sd e / 2: 1e-3 keeps it far below ADJUSTMENT_ACCURACY. On the severity
lattice a prefecture fund of 2 x 10^5 admissions in its province's group
(claims 1/2,000 of a cell) gained 3.7 times its variance: such a law is
refused (NumericsError), never priced."""
ALIAS_TOLERANCE = 1e-12
"""Largest |transform| of a member's conditional law at the lattice's
Nyquist frequency (at its smallest shock node, where it decays least) for
exact cell masses (`_band_phi`): the cell masses' aliasing error is of that
order per cell, far below MASS_TOLERANCE. The band engine's own test (1e-15
over the upper half band) refused prefecture funds of 10^2 cells whose
Gamma-mixed shocks decay only polynomially; they pass this one at 1e-13."""
MIXTURE_VARIANCE_TOLERANCE = 1e-3
"""|variance of a member's mixed law - its closed form (plus what the
lattice adds)| / that, allowed. The quadrature keeps every shock's mean and
variance (shock_quadrature), so only a cell collapsed to its mean (a very
skewed shock), trimming and round-off remain: measured below 1e-6 on the
test cases and china2023's provinces. It is looser than the engine's
VARIANCE_TOLERANCE for that collapsed cell, and still 20x below what would
move a price by ADJUSTMENT_ACCURACY."""
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

    def __init__(self, members: list[Member], shocks: SharedShocks, level: float, points: int = LATTICE_POINTS,
                 fold: bool = True):
        """`fold` False keeps every prefecture's shock as quadrature nodes
        (the nested path; tests compare the two)."""
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
        # A prefecture with one member of several prefectures: its shock is that
        # member's own given Theta_N, folded into its law exactly (`folded`).
        alone = [sum(1 for q in self.region_of if q == p) == 1 for p in range(len(self.regions))]
        alone = [fold and single for single in alone]
        self.folded = [regional_spread > 0.0 and len(self.regions) > 1 and alone[p] for p in self.region_of]
        national_cells = _body_cells(national_spread, self._given_national_spread(group) if any(self.folded)
                                     else spread)
        self.national = gamma_nodes(shocks.national_cv if shocks.national_weight > 0.0 else 0.0, level,
                                    national_cells)
        regional = (np.ones(1), np.ones(1))
        if regional_spread > 0.0 and len(self.regions) == 1:   # one variable: M = w_N Theta_N + w_P Theta_P
            self.national = summed_nodes(
                [(shocks.national_weight, shocks.national_cv), (shocks.prefecture_weight, shocks.prefecture_cv)],
                level, _body_cells(math.hypot(national_spread, regional_spread), spread))
            self._weights = (1.0, 0.0)
        elif regional_spread > 0.0 and not all(self.folded):
            regional = gamma_nodes(shocks.prefecture_cv, level, _body_cells(regional_spread, spread))
        # Each prefecture's own nodes: a folded one has the single node 0 (its
        # shock is in its member's law), the others the prefecture quadrature.
        self.regional_of = [(np.zeros(1), np.ones(1)) if regional_spread > 0.0 and len(self.regions) > 1 and alone[p]
                            else regional for p in range(len(self.regions))]
        self.regional = regional
        high = _window(group)[1] if group.streams or group.parts else 1.0
        if group.expected_count > 0.0:
            claim = group.mean / group.expected_count
            wanted = 1 << max(11, int(math.ceil(math.log2(CELLS_PER_CLAIM * high / claim + 4))))
            points = min(points, wanted)
        while True:
            self.points = points
            self.span = max(high, 1e-300) / (points - 4)
            # laws[i][(a, b)] = (offset, pmf) of Y_i given national node a and its prefecture's node b.
            self.banded = [False] * len(members)          # priced by exact cell masses (`_band_phi`)
            self._second = [0.0] * len(members)           # E[X_d^2] of a member's severity lattice otherwise
            self.laws: list[dict[tuple[int, int], tuple[int, np.ndarray]]] = [
                self._member_laws(i, m) for i, m in enumerate(members)]
            coarse = [i for i in range(len(members)) if not self.banded[i] and self._added_variance(i)
                      > DISCRETISATION_VARIANCE_SHARE * (self._closed_variance(i) - self._added_variance(i))]
            if not coarse or points >= MAX_LATTICE_POINTS:
                break
            points *= 2     # a member too narrow for exact cell masses on this lattice
        self.unconditional = [self._mixed(i) for i in range(len(members))]
        self._check_cells(group)
        self._risk_cache: dict[tuple[int, float], tuple[float, float]] = {}
        self._suffix: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _given_national_spread(self, group: CompoundModel) -> float:
        """sd / mean of the group's total given Theta_N from its Poisson
        variance and its folded prefectures' shocks (`_conditional_spread`
        with the shocks that are no longer nodes: the laws the national
        quadrature steps across are that wide)."""
        mean = group.mean
        if mean <= 0.0:
            return 1.0
        w, cv = self.shocks.prefecture_weight, self.shocks.prefecture_cv
        poisson = math.fsum(s.second_moment_sum for part in (group, *group.parts) for s in part.streams)
        folded = math.fsum((w * cv * m.mean) ** 2 for m, f in zip(self.members, self.folded) if f)
        return math.sqrt(poisson + folded) / mean

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

    def _member_laws(self, i: int, member: Member) -> dict[tuple[int, int], tuple[int, np.ndarray]]:
        sh, n, g = self.shocks, self.points, self.span
        nodes = self.regional_of[self.region_of[i]][0]
        streams = merge_streams(member.streams)
        if not streams:
            return {(a, b): (0, np.ones(1)) for a in range(len(self.national[0])) for b in range(len(nodes))}
        lam = math.fsum(s.rate for s in streams)
        own_parts, poisson_weight = [], 0.0
        own_levels = [(sh.county_weight, sh.county_cv)]
        if self.folded[i]:
            own_levels.append((sh.prefecture_weight, sh.prefecture_cv))
        for weight, cv in own_levels:
            if weight > 0.0 and cv > 0.0:
                own_parts.append(CompoundModel(tuple(ClaimStream(s.rate * weight, s.severity, s.factor)
                                                     for s in streams), cv))
            elif weight > 0.0:
                poisson_weight += weight
        multipliers = {(a, b): self._weights[0] * theta_n + self._weights[1] * theta_p + poisson_weight
                       for a, theta_n in enumerate(self.national[0]) for b, theta_p in enumerate(nodes)}
        phi = _band_phi(streams, g, n)
        if phi is not None:
            own = sum((_count_exponent(part, phi) for part in own_parts), np.zeros(1))
            cell = _cell_transform(n)
            lowest = min(multipliers.values())
            edge = abs(np.exp(lam * lowest * (phi[-1] - 1.0) + (own[-1] if own.size > 1 else 0.0)))
            p0 = math.exp(-lam * lowest) * math.prod(no_claim_probability(part) for part in own_parts)
            if p0 < BAND_MAX_ATOM and edge <= ALIAS_TOLERANCE:
                self.banded[i] = True
                laws = {}
                for key, multiplier in multipliers.items():
                    pmf = np.fft.irfft(np.exp(lam * multiplier * (phi - 1.0) + own) * cell, n)
                    np.maximum(pmf, 0.0, out=pmf)
                    given = CompoundModel(tuple(ClaimStream(s.rate * multiplier, s.severity, s.factor)
                                                for s in streams), 0.0, parts=tuple(own_parts))
                    low, high = _window(given)
                    laws[key] = _trimmed(pmf, max(0, math.floor(low / g) - 1), min(n - 1, math.ceil(high / g) + 1))
                return laws
        sev, self._second[i], _ = _normalised_severity_lattice(streams, g, n)
        phi = np.fft.rfft(sev)
        phi[0] = 1.0
        own_full = sum((_count_exponent(part, phi) for part in own_parts), 0.0)
        own_free = sum((_count_exponent(part, phi, without_atom=True) for part in own_parts), 0.0)
        own_p0 = math.prod(no_claim_probability(part) for part in own_parts)
        laws = {}
        for key, multiplier in multipliers.items():
            p0 = math.exp(-lam * multiplier) * own_p0
            if p0 >= ATOM_SPLIT:
                pmf = np.fft.irfft(p0 * _expm1(lam * multiplier * phi + own_free), n)
                pmf[0] += p0
            else:
                pmf = np.fft.irfft(np.exp(lam * multiplier * (phi - 1.0) + own_full), n)
            np.maximum(pmf, 0.0, out=pmf)
            laws[key] = _trimmed(pmf)
        return laws

    def _check_cells(self, group: CompoundModel) -> None:
        """The cell centres of the members priced by exact cell masses add
        g^2 / 12 each to the fund's demand: their sum against
        DISCRETISATION_VARIANCE_SHARE of the group's variance."""
        added = sum(self.banded) * self.span * self.span / 12.0
        if added and not added <= DISCRETISATION_VARIANCE_SHARE * group.variance:
            raise NumericsError(f"adjustment fund of [{', '.join(m.name for m in self.members)}]: its lattice adds "
                                f"{added / group.variance:.3g} of the group's variance (at most "
                                f"{DISCRETISATION_VARIANCE_SHARE:g})")

    def _node_weight(self, i: int, a: int, b: int) -> float:
        """The weight of national node a and node b of member i's prefecture."""
        return self.national[1][a] * self.regional_of[self.region_of[i]][1][b]

    def _closed_variance(self, i: int) -> float:
        """Var Y_i in closed form (its streams' Poisson part and the three
        shock levels), plus what its lattice adds: Sheppard's g^2 / 12 for
        exact cell masses, lambda (E[X_d^2] - E[X^2]) on the severity lattice."""
        sh = self.shocks
        streams = merge_streams(self.members[i].streams)
        mean = math.fsum(s.mean for s in streams)
        shocks = math.fsum((w * cv * mean) ** 2 for w, cv in ((sh.national_weight, sh.national_cv),
                                                               (sh.prefecture_weight, sh.prefecture_cv),
                                                               (sh.county_weight, sh.county_cv)))
        return math.fsum(s.second_moment_sum for s in streams) + shocks + self._added_variance(i)

    def _added_variance(self, i: int) -> float:
        streams = merge_streams(self.members[i].streams)
        if self.banded[i]:
            return self.span * self.span / 12.0
        lam = math.fsum(s.rate for s in streams)
        return lam * self._second[i] - math.fsum(s.second_moment_sum for s in streams) if lam > 0.0 else 0.0

    def _mixed(self, i: int) -> np.ndarray:
        """Member i's unconditional law on [0, n g) (the shocks mixed),
        checked: mass, mean against the closed form, variance against the
        closed form plus what the lattice adds (MIXTURE_VARIANCE_TOLERANCE),
        and, on the severity lattice, that addition against
        DISCRETISATION_VARIANCE_SHARE (exact cell masses: `_check_cells`)."""
        out = np.zeros(self.points)
        for (a, b), (offset, pmf) in self.laws[i].items():
            out[offset:offset + len(pmf)] += self._node_weight(i, a, b) * pmf
        mass = float(out.sum())
        index = np.arange(self.points, dtype=float)
        mean = self.span * _dot(out, index)
        expected = self.members[i].mean
        failures = []
        if not abs(mass - 1.0) <= MASS_TOLERANCE:
            failures.append(f"mass off by {abs(mass - 1.0):.3g} (tolerance {MASS_TOLERANCE:g})")
        if expected > 0.0 and not abs(mean - expected) <= MEAN_TOLERANCE * expected:
            failures.append(f"mean off by {abs(mean - expected) / expected:.3g} relative "
                            f"(tolerance {MEAN_TOLERANCE:g})")
        if expected > 0.0:
            closed = self._closed_variance(i)
            added = self._added_variance(i)
            variance = self.span ** 2 * _dot(out, (index - mean / self.span) ** 2) / mass
            if not abs(variance - closed) <= MIXTURE_VARIANCE_TOLERANCE * closed:
                failures.append(f"variance off by {abs(variance - closed) / closed:.3g} relative "
                                f"(tolerance {MIXTURE_VARIANCE_TOLERANCE:g})")
            if not self.banded[i] and not added <= DISCRETISATION_VARIANCE_SHARE * (closed - added):
                failures.append(f"the lattice adds {added / (closed - added):.3g} of its variance (at most "
                                f"{DISCRETISATION_VARIANCE_SHARE:g}): its claims are too small for the group's "
                                "lattice")
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
            means[i].append(self._node_weight(i, a, b) * mean)
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
                for b, w_b in enumerate(self.regional_of[p][1]):
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
                for b, w_b in enumerate(self.regional_of[p][1]):
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
                for b, w_b in enumerate(self.regional_of[p_i][1]):
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
