"""Severity families (lognormal, gamma, spliced lognormal-Pareto) against
independent references.

References are built here from textbook definitions with scipy.stats objects
(lognorm, gamma, pareto) and scipy.integrate.quad, never from
`pooling.risk.severity`'s own formulas: moments and tail functions by numerical
integration of the density, limited means by integration of the survival
function, sampling against the reference CDF, and a compound Poisson priced by
`pooling.risk.claims.aggregate` against a per-claim Monte Carlo.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from pooling.data.fields import FieldReader
from pooling.data.instance import instance_from_dict, read_severity
from pooling.errors import InputError
from pooling.risk.claims import ClaimStream, CompoundModel, aggregate, merge_streams
from pooling.risk.measures import sample_var_cvar
from pooling.risk.severity import Severity
from tests.factories import county, instance_dict
from tests.tolerances import ROUNDING, UNIT_ROUNDOFF

QUAD_RTOL = 1e-11
"""Closed forms vs quad of the density or survival function (quad is run at
epsrel 1e-12 on log-scale pieces; the worst error measured is 2e-14)."""
SCIPY_RTOL = 1e-11
"""lognormal/gamma tails vs scipy.stats survival functions (same special
functions, different code paths)."""
CLOSED_FORM_RTOL = 1e-12
"""Spliced far-tail values vs the scipy.stats Pareto survival function."""
ROUND_TRIP_ULPS = 16.0
"""quantile(F(x)) and upper_quantile(S(x)) give back x up to F's or S's own
error times the condition |d ln x / d ln S| = S / (x f(x)) (F / (x f) through
F), plus the inverse's own error (INVERSE_RTOL). F and S are a few ulps off,
and numpy's log (lognormal and spliced laws) takes other SIMD loops on other
CPUs, up to 4 ulps apart: allowed, this many ulps times the condition. The
probes reach S = 1 - 1e-4, where the condition is up to 4e4 (gamma cv 2: 7e-11
allowed, 4.4e-13 measured); measured at most 1.9 ulps times the condition
wherever it exceeds 100 (the closest: 3.5e-13 against 3.1e-12, spliced low u)."""
INVERSE_RTOL = 1e-13
"""The inverses' own relative error (closed forms, and scipy's gammainccinv, an
iteration): measured at most 4.8e-15 (gamma cv 2 in its bulk). In the round
trip q -> quantile -> F it is multiplied by x f / F (at most 6 at the levels
probed), and F adds its own ROUND_TRIP_ULPS."""
SAMPLE_Z = 5.0
"""Half-width, in standard errors, of the sampling confidence intervals."""
SAMPLE_SIZE = 1_000_000
MC_Z = 4.0
"""Half-width, in standard errors, of the Monte Carlo VaR/CVaR intervals."""
ENGINE_RTOL = 1e-4
"""The engine's own stated discretisation accuracy (RESOLUTION_TOLERANCE)."""
LATTICE_MEAN_RTOL = 1e-8
"""Lattice mean of the aggregate vs rate * expected_value. The engine cuts the
severity at its 1e-12 quantile x*, losing E[X - x*; X > x*] = 1e-12 x* / (a - 1)
of the mean: 2.6e-9 relative for MC_SEVERITY (a = 3.5), 9.5e-9 at a = 3 and
above this tolerance for heavier tails (2.5e-7 at a = 2.2)."""

SEVERITIES = {
    "lognormal cv1": Severity("lognormal", 5000.0, 1.0),
    "lognormal cv3": Severity("lognormal", 5000.0, 3.0),
    "gamma cv0.5": Severity("gamma", 5000.0, 0.5),
    "gamma cv2": Severity("gamma", 5000.0, 2.0),
    "spliced a3": Severity("spliced", 5000.0, 1.0, threshold=50_000.0, tail_index=3.0, tail_probability=0.01),
    "spliced a2.2": Severity("spliced", 5000.0, 1.5, threshold=20_000.0, tail_index=2.2, tail_probability=0.05),
    "spliced low u": Severity("spliced", 8000.0, 0.8, threshold=4000.0, tail_index=4.0, tail_probability=0.3),
    "spliced rare": Severity("spliced", 5000.0, 1.0, threshold=200_000.0, tail_index=2.5, tail_probability=1e-4),
}
SPLICED = [k for k in SEVERITIES if k.startswith("spliced")]
CLASSIC = [k for k in SEVERITIES if not k.startswith("spliced")]


# ----------------------------------------------------------------------------
# Independent reference: scipy.stats objects and quad on a log scale
# ----------------------------------------------------------------------------

class Reference:
    """pdf / sf / cdf of a severity from its definition (scipy.stats objects)."""

    def __init__(self, sev: Severity):
        self.sev = sev
        sigma = math.sqrt(math.log(1.0 + sev.cv ** 2))
        if sev.dist == "gamma":
            k = 1.0 / sev.cv ** 2
            self.base = stats.gamma(a=k, scale=sev.mean / k)
        else:
            self.base = stats.lognorm(s=sigma, scale=sev.mean / math.sqrt(1.0 + sev.cv ** 2))
        if sev.dist == "spliced":
            self.u, self.a, self.p = sev.threshold, sev.tail_index, sev.tail_probability
            self.tail = stats.pareto(b=self.a, scale=self.u)
            self.body_mass = float(self.base.cdf(self.u))

    def pdf(self, x: float) -> float:
        if self.sev.dist != "spliced":
            return float(self.base.pdf(x))
        if x <= self.u:
            return (1.0 - self.p) * float(self.base.pdf(x)) / self.body_mass
        return self.p * float(self.tail.pdf(x))

    def sf(self, x: float) -> float:
        if self.sev.dist != "spliced":
            return float(self.base.sf(x))
        if x <= self.u:
            return self.p + (1.0 - self.p) * (self.body_mass - float(self.base.cdf(x))) / self.body_mass
        return self.p * float(self.tail.sf(x))

    def cdf(self, x: float) -> float:
        if self.sev.dist != "spliced":
            return float(self.base.cdf(x))
        if x <= self.u:
            return (1.0 - self.p) * float(self.base.cdf(x)) / self.body_mass
        return 1.0 - self.p * float(self.tail.sf(x))

    def breaks(self) -> list[float]:
        """Points where the integrand changes character (pieces for quad)."""
        pts = [float(self.base.ppf(q)) for q in (1e-6, 0.01, 0.5, 0.99)]
        if self.sev.dist == "spliced":
            pts = [x for x in pts if x < self.u] + [self.u, 10.0 * self.u]
        return pts

    def integrate(self, g, lo: float, hi: float) -> float:
        """int_lo^hi g(x) dx, as int g(e^y) e^y dy over log-scale pieces."""
        pts = [lo] + [b for b in self.breaks() if lo < b < hi] + [hi]
        total = 0.0
        for a, b in itertools.pairwise(pts):
            if b - a <= 1e-6 * a:  # a sliver (a probe point next to a break): midpoint rule
                total += g(0.5 * (a + b)) * (b - a)
                continue
            ya = math.log(a) if a > 0 else -math.inf
            yb = math.log(b) if math.isfinite(b) else math.inf
            val, _ = integrate.quad(self._log_scale(g), ya, yb, epsabs=0.0, epsrel=1e-12, limit=400)
            total += val
        return total

    @staticmethod
    def _log_scale(g):
        """y -> g(e^y) e^y, cut off where x = e^y is 0 or above e^300 (beyond
        it, even x^2 f(x) of the heaviest tail here, a = 2.2, holds a share
        below 1e-20 of its integral)."""
        def h(y):
            x = math.exp(y) if y < 300.0 else 0.0
            return g(x) * x if x > 0.0 else 0.0
        return h

    def moment(self, k: int, lo: float = 0.0) -> float:
        return self.integrate(lambda x: x ** k * self.pdf(x), lo, math.inf)


def _rel(a, b) -> float:
    return abs(a - b) / abs(b)


def _probe_points(sev: Severity) -> np.ndarray:
    """Points from the bulk to the 1e-12 tail (and around the splice)."""
    qs = [1e-4, 0.05, 0.3, 0.5, 0.8, 0.95, 0.99]
    pts = [sev.quantile(q) for q in qs] + [sev.upper_quantile(t) for t in (1e-4, 1e-6, 1e-9, 1e-12)]
    if sev.dist == "spliced":
        u = sev.threshold
        pts += [0.5 * u, u * (1 - 1e-9), u, u * (1 + 1e-9), 2.0 * u]
    return np.array(sorted(pts))


# ----------------------------------------------------------------------------
# Moments, tails, limited means
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEVERITIES))
def test_moments_match_quad_of_density(name):
    sev = SEVERITIES[name]
    ref = Reference(sev)
    assert _rel(ref.integrate(ref.pdf, 0.0, math.inf), 1.0) <= QUAD_RTOL  # the reference is a density
    assert _rel(sev.expected_value, ref.moment(1)) <= QUAD_RTOL
    assert _rel(sev.second_moment, ref.moment(2)) <= QUAD_RTOL
    # ... and E[X] is also the integral of the survival function.
    assert _rel(sev.expected_value, ref.integrate(ref.sf, 0.0, math.inf)) <= QUAD_RTOL


def test_spliced_expected_value_is_not_the_body_parameter():
    sev = SEVERITIES["spliced a3"]
    assert sev.expected_value > 1.1 * sev.mean


@pytest.mark.parametrize("name", list(SEVERITIES))
def test_tails_match_quad_including_far_tail(name):
    sev = SEVERITIES[name]
    ref = Reference(sev)
    mean = ref.moment(1)
    xs = _probe_points(sev)
    surv, surv1 = sev.tails(xs)
    for x, s, s1 in zip(xs, surv, surv1):
        assert _rel(s, ref.integrate(ref.pdf, x, math.inf)) <= QUAD_RTOL, x
        assert _rel(s1, ref.moment(1, lo=x) / mean) <= QUAD_RTOL, x
    s0, s10 = sev.tails(np.array([0.0]))
    assert s0[0] == 1.0 and s10[0] == 1.0


@pytest.mark.parametrize("name", CLASSIC)
def test_lognormal_gamma_tails_match_scipy_stats(name):
    """S from scipy's sf; S1 from the size-biased law: lognormal(mu + sigma^2,
    sigma) and gamma(k + 1, scale), also from scipy."""
    sev = SEVERITIES[name]
    xs = _probe_points(sev)
    surv, surv1 = sev.tails(xs)
    if sev.dist == "lognormal":
        sigma = math.sqrt(math.log(1.0 + sev.cv ** 2))
        base = stats.lognorm(s=sigma, scale=sev.mean / math.sqrt(1.0 + sev.cv ** 2))
        biased = stats.lognorm(s=sigma, scale=base.kwds["scale"] * math.exp(sigma ** 2))
    else:
        k = 1.0 / sev.cv ** 2
        base = stats.gamma(a=k, scale=sev.mean / k)
        biased = stats.gamma(a=k + 1.0, scale=sev.mean / k)
    np.testing.assert_allclose(surv, base.sf(xs), rtol=SCIPY_RTOL, atol=0)
    np.testing.assert_allclose(surv1, biased.sf(xs), rtol=SCIPY_RTOL, atol=0)
    np.testing.assert_allclose(sev.cdf(xs), base.cdf(xs), rtol=SCIPY_RTOL, atol=0)


@pytest.mark.parametrize("name", SPLICED)
def test_spliced_far_tail_keeps_relative_precision(name):
    """Above u, S = p * Pareto sf and S1 = p (u/x)^a a x / ((a - 1) E[X]) to
    full precision, down to 1e-15 (no 1 - F cancellation)."""
    sev = SEVERITIES[name]
    ref = Reference(sev)
    ts = np.array([1e-6, 1e-9, 1e-12, 1e-15]) * sev.tail_probability
    xs = np.array([sev.upper_quantile(t) for t in ts])
    surv, surv1 = sev.tails(xs)
    np.testing.assert_allclose(surv, ts, rtol=CLOSED_FORM_RTOL, atol=0)
    np.testing.assert_allclose(surv, [ref.sf(x) for x in xs], rtol=CLOSED_FORM_RTOL, atol=0)
    a, mean = sev.tail_index, ref.moment(1)
    np.testing.assert_allclose(surv1, ts * a * xs / ((a - 1.0) * mean), rtol=QUAD_RTOL, atol=0)


@pytest.mark.parametrize("name", list(SEVERITIES))
def test_limited_mean_matches_quad_of_survival(name):
    sev = SEVERITIES[name]
    ref = Reference(sev)
    xs = _probe_points(sev)
    got = sev.limited_mean(xs)
    for x, lm in zip(xs, got):
        assert _rel(lm, ref.integrate(ref.sf, 0.0, x)) <= QUAD_RTOL, x
    assert sev.limited_mean(np.array([0.0]))[0] == 0.0
    assert _rel(sev.limited_mean(np.array([1e300]))[0], sev.expected_value) <= QUAD_RTOL


def _round_trip_tolerance(probability: float, x: float, density: float) -> float:
    """Allowed relative error of x back from `probability` (F(x) or S(x)): the
    inverse's own error plus ROUND_TRIP_ULPS ulps times the condition."""
    return INVERSE_RTOL + ROUND_TRIP_ULPS * UNIT_ROUNDOFF * probability / (x * density)


@pytest.mark.parametrize("name", list(SEVERITIES))
def test_quantile_round_trips(name):
    sev = SEVERITIES[name]
    ref = Reference(sev)
    xs = _probe_points(sev)
    for x in xs:
        f = float(sev.cdf(x))
        density = ref.pdf(x)
        if f < 0.999:  # below that, 1 - F has lost digits: go through S instead
            assert _rel(sev.quantile(f), x) <= _round_trip_tolerance(f, x, density), x
        s = float(sev.tails(np.array([x]))[0][0])
        assert _rel(sev.upper_quantile(s), x) <= _round_trip_tolerance(s, x, density), x
    for q in (1e-6, 0.1, 0.5, 0.9, 0.99):
        x = sev.quantile(q)
        condition = x * ref.pdf(x) / q                       # |d ln F / d ln x|
        assert _rel(float(sev.cdf(x)), q) <= ROUND_TRIP_ULPS * UNIT_ROUNDOFF + condition * INVERSE_RTOL
    assert sev.quantile(0.0) == 0.0
    assert sev.upper_quantile(0.0) == math.inf


@pytest.mark.parametrize("name", SPLICED)
def test_spliced_continuity_and_monotonicity(name):
    sev = SEVERITIES[name]
    u, p = sev.threshold, sev.tail_probability
    s_u, _s1_u = sev.tails(np.array([u]))
    assert _rel(s_u[0], p) <= ROUNDING
    assert _rel(float(sev.cdf(u)), 1.0 - p) <= ROUNDING
    assert _rel(sev.upper_quantile(p), u) <= ROUNDING
    # Both sides of u agree (S and S1 are continuous, the density is not).
    surv, surv1 = sev.tails(np.array([u * (1 - 1e-12), u * (1 + 1e-12)]))
    assert _rel(surv[0], surv[1]) <= 1e-9 and _rel(surv1[0], surv1[1]) <= 1e-9
    lm = sev.limited_mean(np.array([u * (1 - 1e-12), u, u * (1 + 1e-12)]))
    assert np.ptp(lm) / lm[1] <= 1e-9
    # Monotone on a dense grid through the body, the splice and the tail.
    xs = np.concatenate([np.geomspace(1.0, u, 4000), np.geomspace(u, 1e6 * u, 4000)[1:]])
    surv, surv1 = sev.tails(xs)
    assert np.all(np.diff(surv) <= 0) and np.all(np.diff(surv1) <= 0)
    assert np.all(np.diff(sev.cdf(xs)) >= 0)
    assert np.all(np.diff(sev.limited_mean(xs)) >= 0)
    assert np.all((surv >= 0) & (surv <= 1) & (surv1 >= 0) & (surv1 <= 1))


# ----------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEVERITIES))
def test_sample_mean_and_quantiles_within_confidence_interval(name):
    sev = SEVERITIES[name]
    ref = Reference(sev)
    rng = np.random.default_rng(20240611)
    draws = sev.sample(rng, SAMPLE_SIZE)
    assert draws.shape == (SAMPLE_SIZE,) and np.all(draws > 0) and np.all(np.isfinite(draws))
    mean, second = ref.moment(1), ref.moment(2)
    se = math.sqrt((second - mean ** 2) / SAMPLE_SIZE)
    assert abs(draws.mean() - mean) <= SAMPLE_Z * se
    for q in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
        x = float(np.quantile(draws, q))
        assert abs(ref.cdf(x) - q) <= SAMPLE_Z * math.sqrt(q * (1 - q) / SAMPLE_SIZE), q
    if sev.dist == "spliced":
        p = sev.tail_probability
        share = float(np.mean(draws > sev.threshold))
        assert abs(share - p) <= SAMPLE_Z * math.sqrt(p * (1 - p) / SAMPLE_SIZE)


def test_sample_is_reproducible_from_the_seed():
    for sev in SEVERITIES.values():
        a = sev.sample(np.random.default_rng(7), 1000)
        b = sev.sample(np.random.default_rng(7), 1000)
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------
# Identity, ordering, validation
# ----------------------------------------------------------------------------

def test_sort_key_orders_mixed_families_deterministically():
    sevs = list(SEVERITIES.values()) + [Severity("spliced", 5000.0, 1.0, 50_000.0, 3.5, 0.01)]
    keys = [s.sort_key for s in sevs]
    assert all(isinstance(k, tuple) and None not in k for k in keys)
    assert sorted(sevs, key=lambda s: s.sort_key) == sorted(reversed(sevs), key=lambda s: s.sort_key)
    assert len(set(keys)) == len(keys)
    streams = [ClaimStream(1.0, s) for s in reversed(sevs)] + [ClaimStream(2.0, sevs[4])]
    merged = merge_streams(streams)
    assert len(merged) == len(sevs)
    assert [m.severity for m in merged] == sorted(sevs, key=lambda s: s.sort_key)
    assert {m.severity: m.rate for m in merged}[sevs[4]] == 3.0


def _read(data: dict) -> Severity:
    return read_severity(FieldReader(data, "x.json", "severity."))


GOOD_SPLICED = {"dist": "spliced", "mean": 5000.0, "cv": 1.0, "threshold": 50_000.0,
                "tail_index": 3.0, "tail_probability": 0.01}


def test_read_spliced():
    sev = _read(dict(GOOD_SPLICED))
    assert sev == SEVERITIES["spliced a3"]
    assert _read({"dist": "gamma", "mean": 2.0, "cv": 0.5}) == Severity("gamma", 2.0, 0.5)


@pytest.mark.parametrize("changes,message", [
    ({"tail_index": 1.5}, "x.json: severity.tail_index must be in [2.5, 100] (> 2 for a finite variance; "
                          "near 2 the lattice outgrows its limit), got 1.5"),
    ({"tail_index": 2}, "x.json: severity.tail_index must be in [2.5, 100] (> 2 for a finite variance; "
                        "near 2 the lattice outgrows its limit), got 2"),
    ({"tail_index": "3"}, 'x.json: severity.tail_index must be a number, got "3"'),
    ({"tail_probability": 0.0}, "x.json: severity.tail_probability must be in (0, 1), got 0"),
    ({"tail_probability": 1.0}, "x.json: severity.tail_probability must be in (0, 1), got 1"),
    ({"threshold": 0.0}, "x.json: severity.threshold must be in (0, 1e+10], got 0"),
    ({"threshold": -5.0}, "x.json: severity.threshold must be in (0, 1e+10], got -5"),
    ({"threshold": 1e-3}, "x.json: severity.threshold must be >= "),
    ({"tail_index": KeyError}, "x.json: severity.tail_index is missing"),
    ({"threshold": KeyError}, "x.json: severity.threshold is missing"),
    ({"tail_probability": KeyError}, "x.json: severity.tail_probability is missing"),
    ({"scale": 1.0}, "x.json: severity.scale is not a known field"),
    ({"cv": 0.0}, "x.json: severity.cv must be in [0.01, 20], got 0"),
])
def test_spliced_validation_names_the_field(changes, message):
    data = dict(GOOD_SPLICED)
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(InputError) as err:
        _read(data)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("dist", ["lognormal", "gamma"])
@pytest.mark.parametrize("key", ["threshold", "tail_index", "tail_probability"])
def test_spliced_fields_are_unknown_for_other_families(dist, key):
    with pytest.raises(InputError) as err:
        _read({"dist": dist, "mean": 5000.0, "cv": 1.0, key: GOOD_SPLICED[key]})
    assert str(err.value).startswith(f"x.json: severity.{key} is not a known field "
                                     "(known fields here: cv, dist, mean)")


def test_instance_accepts_spliced_county_and_outside_severity():
    data = instance_dict([county("1", severity=dict(GOOD_SPLICED))],
                         outside_severity=dict(GOOD_SPLICED, threshold=80_000.0))
    inst = instance_from_dict(data, source="x.json")
    assert inst.county("1").severity == SEVERITIES["spliced a3"]
    assert inst.parameters.outside_severity.threshold == 80_000.0
    data["parameters"]["outside_severity"]["tail_index"] = 1.5
    with pytest.raises(InputError, match=r"parameters\.outside_severity\.tail_index must be in \[2\.5, 100\] "
                                         r"\(> 2 for a finite variance; .*\), got 1\.5"):
        instance_from_dict(data, source="x.json")


# ----------------------------------------------------------------------------
# The FFT engine with a spliced severity vs per-claim Monte Carlo
# ----------------------------------------------------------------------------

MC_RATE = 100.0
MC_YEARS = 200_000
MC_LEVEL = 0.99
MC_SEVERITY = Severity("spliced", 5000.0, 1.0, threshold=50_000.0, tail_index=3.5, tail_probability=0.01)


def _simulate_years(sev: Severity, rate: float, years: int, rng: np.random.Generator,
                    chunk: int = 20_000) -> np.ndarray:
    """Yearly totals: N ~ Poisson(rate), then N independent draws of `sev`."""
    out = np.empty(years)
    for lo in range(0, years, chunk):
        m = min(chunk, years - lo)
        counts = rng.poisson(rate, m)
        costs = sev.sample(rng, int(counts.sum()))
        csum = np.concatenate([[0.0], np.cumsum(costs)])
        ends = np.cumsum(counts)
        out[lo:lo + m] = csum[ends] - csum[ends - counts]
    return out


def test_aggregate_with_spliced_severity_matches_monte_carlo():
    model = CompoundModel((ClaimStream(MC_RATE, MC_SEVERITY),))
    res = aggregate(model, MC_LEVEL)
    assert _rel(model.mean, MC_RATE * Reference(MC_SEVERITY).moment(1)) <= QUAD_RTOL
    assert _rel(res.law.mean, MC_RATE * MC_SEVERITY.expected_value) <= LATTICE_MEAN_RTOL

    totals = _simulate_years(MC_SEVERITY, MC_RATE, MC_YEARS, np.random.default_rng(4242))
    n, q = MC_YEARS, MC_LEVEL
    # VaR: distribution-free interval between order statistics.
    ordered = np.sort(totals)
    half = MC_Z * math.sqrt(n * q * (1 - q))
    lo, hi = ordered[int(math.floor(n * q - half))], ordered[int(math.ceil(n * q + half))]
    slack = ENGINE_RTOL * res.var
    assert lo - slack <= res.var <= hi + slack, (lo, res.var, hi)
    # CVaR: asymptotic standard error sd((Y - VaR)+) / ((1 - q) sqrt(n)).
    mc_var, mc_cvar = sample_var_cvar(totals, q)
    se = float(np.std(np.maximum(totals - mc_var, 0.0))) / ((1 - q) * math.sqrt(n))
    assert abs(res.cvar - mc_cvar) <= MC_Z * se + ENGINE_RTOL * res.cvar, (res.cvar, mc_cvar, se)
    # The Monte Carlo mean agrees with the closed form too.
    assert abs(totals.mean() - model.mean) <= MC_Z * math.sqrt(model.variance / n)
