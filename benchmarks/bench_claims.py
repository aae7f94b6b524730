"""Benchmark: accuracy and speed of the exact aggregate-claims engine.

Everything is measured in the same run, against baselines computed in that run:

1. Accuracy. VaR and CVaR (levels 0.9, 0.99, 0.999) of compound Poisson /
   negative-binomial sums with exponential severity (mean 5000), expected
   admissions 1e2..1e6, shock cv theta 0 and 0.05, against the exact law
   (tests/references.ExpCompound). Methods: the engine
   (pooling.risk.claims.aggregate); a plain FFT of 2^20 points on [0, U] (U the
   engine's window end, pooling.risk.windows._window; severity by rounding or by
   local moment matching with tests/references' discretisers, cut where
   fewer than 1e-12 claims a year exceed it; no window shift, no extrapolation); and, if it is
   installed, the `aggregate` package (Mildenhall)
   on the same [0, U] range at 2^20 buckets and at the smallest log2 that met
   the 1e-3 target in a sweep (AGG_TUNED_LOG2).
2. Speed: time to price one pool (one VaR/CVaR level) by each method, for the
   same sizes, plus the headline case: 1e6 expected admissions, a two-stream
   lognormal mixture like pooling builds, theta 0.03 (errors there against a
   converged reference: the plain moment-matched FFT at 2^22..2^24 points with
   Richardson extrapolation).
3. Sampling: pool-year draws per second per core of
   pooling.risk.sampling.PoolYearSampler (construction, with the node laws its first draws
   reach, timed separately), against
   per-admission Monte Carlo (tests/references.simulate_years).
4. A plot of the loss distributions (benchmarks/results/loss_distributions.png).

Timings are the best of --repeat runs (single-threaded BLAS/OpenMP; numpy's
and scipy's FFTs are single-threaded); `aggregate` runs (~1 s) the best of
--agg-repeat, and once above 2^21 buckets (~25-40 s each).
Writes benchmarks/results/claims.{json,md}.

Run: python benchmarks/bench_claims.py [--repeat N] [--agg-repeat N] [--no-aggregate]
(with the benchmark venv: /tmp/aggvenv/bin/python benchmarks/bench_claims.py)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # "per core": keep every library single-threaded

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pooling.data.provenance import package_version  # noqa: E402
from pooling.risk.claims import (  # noqa: E402
    ClaimStream,
    CompoundModel,
    aggregate,
    lattice_law,
)
from pooling.risk.measures import lattice_var_cvar, sample_var_cvar  # noqa: E402
from pooling.risk.sampling import PoolYearSampler  # noqa: E402
from pooling.risk.severity import Severity  # noqa: E402
from pooling.risk.windows import _window  # noqa: E402
from tests import references as ref  # noqa: E402

try:
    from aggregate import build as agg_build
    logging.getLogger("aggregate").setLevel(logging.ERROR)
except ImportError:  # the third method is optional
    agg_build = None

SIZES = (1e2, 1e4, 1e5, 1e6)
THETAS = (0.0, 0.05)
LEVELS = (0.9, 0.99, 0.999)
PRICE_LEVEL = 0.99          # the level timed in the speed table
EXP_MEAN = 5000.0
PLAIN_POINTS = 2 ** 20
PLAIN_SEVERITY_CUT = 1e-12
"""Expected yearly number of claims above the plain baseline's severity cut."""
TARGET = 1e-3               # the engine's promised relative accuracy

AGG_TUNED_LOG2 = {1e2: 12, 1e4: 18, 1e5: 20, 1e6: 24}
"""`aggregate` buckets (2^log2, bs = U / 2^log2, same [0, U] as the plain FFT):
the smallest log2 whose worst VaR/CVaR error (levels 0.9-0.999, theta 0 and
0.05) was below TARGET in a sweep on this machine. Worst errors measured:
1e2: 4.5e-4 (12), 9.8e-5 (14); 1e4: 2.6e-3 (16), 1.6e-4 (18);
1e5: 1.8e-1 (16), 1.3e-2 (18), 8.2e-4 (20), 5.1e-5 (22);
1e6: 3.8e-2 (20), 4.8e-3 (22), 1.2e-3 (23), 3.0e-4 (24).
Its default discretisation is rounding (sev_calc='discrete'; 'moment' raises
NotImplementedError in 0.30.1), whose mean bias ~ h^2/24 per claim for an
exponential sets the needed span, and its lattice starts at 0, so the
buckets must span [0, U] rather than the aggregate's spread."""
AGG_SINGLE_RUN_LOG2 = 21
"""`aggregate` runs with more buckets than this are timed once (10-30 s each)."""

SEV_HOME = Severity("lognormal", 5780.43, 1.0)     # Tongliao NRCMS mean inpatient cost (instances/tongliao.json)
SEV_OUTSIDE = Severity("lognormal", 11560.86, 1.0)  # outside-severity of the same instance
OUT_OF_NETWORK_FACTOR = 0.6
OUT_SHARE = 0.1                                     # share of admissions out of network
HEADLINE = {"admissions": 1e6, "theta": 0.03}
SAMPLE_DRAWS = 1_000_000
SAMPLE_SIZES = (1e2, 1e6)
MC_YEARS = {1e2: 200_000, 1e6: 10}
PLOT_SMALL, PLOT_LARGE, PLOT_THETA = 50.0, 1e5, 0.03


# ----------------------------------------------------------------------------
# Models: the engine's and the reference's descriptions of the same pool
# ----------------------------------------------------------------------------

def exp_model(lam: float, theta: float) -> CompoundModel:
    return CompoundModel((ClaimStream(lam, Severity("gamma", EXP_MEAN, 1.0)),), theta)


def exp_streams(lam: float) -> list:
    return [ref.Stream(lam, "gamma", EXP_MEAN, 1.0)]


def mixture_model(lam: float, theta: float) -> CompoundModel:
    """Residents/in-network admissions at the home severity, plus out-of-network
    admissions at the outside severity counted at factor phi: two streams, as
    pooling.economics.pools.pool_model builds them."""
    return CompoundModel((ClaimStream((1 - OUT_SHARE) * lam, SEV_HOME, 1.0),
                          ClaimStream(OUT_SHARE * lam, SEV_OUTSIDE, OUT_OF_NETWORK_FACTOR)), theta)


def mixture_streams(lam: float) -> list:
    return [ref.Stream((1 - OUT_SHARE) * lam, "lognormal", SEV_HOME.mean, SEV_HOME.cv),
            ref.Stream(OUT_SHARE * lam, "lognormal", SEV_OUTSIDE.mean, SEV_OUTSIDE.cv, OUT_OF_NETWORK_FACTOR)]


def agg_program(kind: str, lam: float, theta: float) -> str:
    """DecL for `aggregate`. `mixed gamma c`: Gamma mixing with mean 1 and cv c
    (distributions.py: variance c^2, shape 1/c^2, scale c^2), i.e. the engine's
    theta. phi * X for X lognormal(m, cv) is lognormal(phi m, cv)."""
    freq = f"mixed gamma {theta}" if theta > 0 else "poisson"
    if kind == "exp":
        return f"agg Exp {lam:.0f} claims sev {EXP_MEAN} * expon {freq}"
    return (f"agg Mix {lam:.0f} claims sev lognorm [{SEV_HOME.mean} "
            f"{OUT_OF_NETWORK_FACTOR * SEV_OUTSIDE.mean}] cv [{SEV_HOME.cv} {SEV_OUTSIDE.cv}] "
            f"wts [{1 - OUT_SHARE} {OUT_SHARE}] {freq}")


# ----------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------

def best_time(fn, repeat: int):
    """(best wall time, last result) of `repeat` calls."""
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def plain_fft(streams, theta: float, model: CompoundModel, method: str, points: int = PLAIN_POINTS):
    """Baseline: one FFT of `points` points on [0, U] (U the engine's window end),
    no window shift, no extrapolation, no error control. The mixture severity is
    discretised on span U / points by rounding or by local moment matching
    (tests/references.rounded_severity / moment_matched_severity) up to where
    fewer than PLAIN_SEVERITY_CUT claims a year exceed it (or up to U), then
    the count's PGF is applied pointwise. (Evaluating the severity on all 2^20
    points would only add special-function time; a cut at a fixed 1e-12
    quantile would drop ~1e-12 lambda of Y's mass, a relative CVaR error
    ~1e-12 lambda / (1 - level), 1e-4 at 1e5 admissions and level 0.999.)
    Returns (span, pmf) with pmf[i] at i * span."""
    _, high = _window(model)
    span = high / points
    lam = math.fsum(s.rate for s in streams)
    tail = PLAIN_SEVERITY_CUT / max(lam, 1.0)
    top = max(s.factor * ref.severity_isf(s.dist, s.mean, s.cv, tail) for s in streams)
    m = min(points, int(math.ceil(top / span)) + 2)
    discretise = ref.rounded_severity if method == "round" else ref.moment_matched_severity
    sev = np.zeros(points)
    sev[:m] = discretise(streams, span, m)
    phi = np.fft.rfft(sev)
    if theta > 0:
        transform = np.exp(-np.log1p(-lam * theta ** 2 * (phi - 1.0)) / theta ** 2)
    else:
        transform = np.exp(lam * (phi - 1.0))
    return span, np.maximum(np.fft.irfft(transform, points), 0.0)


def plain_price(streams, theta, model, method, level):
    span, pmf = plain_fft(streams, theta, model, method)
    return lattice_var_cvar(0.0, span, pmf, level)


def agg_run(program: str, model: CompoundModel, log2: int, levels):
    """Build with `aggregate` on [0, U] (U the engine's window end) and read
    VaR (lower quantile, a.q) and TVaR (a.tvar). Timings: the build (FFT) and
    the first q + tvar (which builds its density_df)."""
    _, high = _window(model)
    bs = high / 2 ** log2
    start = time.perf_counter()
    a = agg_build(program, log2=log2, bs=bs)
    built = time.perf_counter()
    risks = {}
    first = None
    for level in levels:
        risks[level] = (float(a.q(level)), float(a.tvar(level)))
        if first is None:
            first = time.perf_counter()
    out = {"log2": log2, "bs": bs, "build_seconds": built - start, "price_seconds": first - start,
           "risks": risks, "mean_rel_error": abs(a.est_m - a.agg_m) / a.agg_m}
    del a
    gc.collect()
    return out


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


# ----------------------------------------------------------------------------
# 1. Accuracy (and the timings of single `aggregate` runs, reused in 2.)
# ----------------------------------------------------------------------------

def accuracy_rows(use_agg: bool):
    rows = []
    agg_runs, exact_at = {}, {}
    for lam in SIZES:
        for theta in THETAS:
            start = time.perf_counter()
            exact_law = ref.ExpCompound(lam, theta, EXP_MEAN)
            exact = {lv: exact_law.var_cvar(lv) for lv in LEVELS}
            exact_seconds = time.perf_counter() - start
            exact_at[(lam, theta)] = exact
            model, streams = exp_model(lam, theta), exp_streams(lam)

            def row(method, settings, risks, extra=None):
                r = {"method": method, "admissions": lam, "theta": theta, "settings": settings,
                     "var_rel_error": {str(lv): rel(risks[lv][0], exact[lv][0]) for lv in LEVELS},
                     "cvar_rel_error": {str(lv): rel(risks[lv][1], exact[lv][1]) for lv in LEVELS}}
                r["max_rel_error"] = max(max(r["var_rel_error"].values()), max(r["cvar_rel_error"].values()))
                r.update(extra or {})
                rows.append(r)
                return r

            results = {lv: aggregate(model, lv) for lv in LEVELS}
            row("engine", f"{max(x.points for x in results.values())} pts",
                {lv: (x.var, x.cvar) for lv, x in results.items()},
                {"error_estimate": max(x.resolution_rel_diff for x in results.values()),
                 "exact_reference_seconds": exact_seconds,
                 "exact": {str(lv): list(v) for lv, v in exact.items()}})
            for method in ("round", "moments"):
                span, pmf = plain_fft(streams, theta, model, method)
                row(f"plain 2^20 ({method})", f"h = {span:.4g}",
                    {lv: lattice_var_cvar(0.0, span, pmf, lv) for lv in LEVELS})
                del pmf
            if use_agg:
                tuned = AGG_TUNED_LOG2[lam]
                for log2 in sorted({20, tuned}):
                    # PRICE_LEVEL first: its q + tvar is the timed one.
                    run = agg_run(agg_program("exp", lam, theta), model, log2,
                                  (PRICE_LEVEL,) + tuple(lv for lv in LEVELS if lv != PRICE_LEVEL))
                    agg_runs[(lam, theta, log2)] = run
                    labels = (["aggregate 2^20"] if log2 == 20 else []) + (
                        ["aggregate tuned"] if log2 == tuned else [])
                    for label in labels:
                        row(label, f"log2 = {log2}, bs = {run['bs']:.4g}", run["risks"],
                            {"discretised_mean_rel_error": run["mean_rel_error"]})
            print(f"accuracy {lam:.0e} theta {theta}: " + ", ".join(
                f"{r['method']} {r['max_rel_error']:.1e}" for r in rows
                if r["admissions"] == lam and r["theta"] == theta), flush=True)
    return rows, agg_runs, exact_at


# ----------------------------------------------------------------------------
# 2. Speed
# ----------------------------------------------------------------------------

def headline_reference(streams, theta, model, level):
    """Plain moment-matched FFT on [0, U] at 2^22, 2^23, 2^24 points, Richardson
    extrapolated in pairs (O(h^2) leading error); the two extrapolations must agree."""
    raw = {}
    for p in (22, 23, 24):
        span, pmf = plain_fft(streams, theta, model, "moments", 2 ** p)
        raw[p] = lattice_var_cvar(0.0, span, pmf, level)
        del pmf
    rich = {p: [f + (f - c) / 3.0 for f, c in zip(raw[p], raw[p - 1])] for p in (23, 24)}
    self_diff = max(rel(a, b) for a, b in zip(rich[24], rich[23]))
    return rich[24], self_diff


def speed_rows(repeat: int, agg_repeat: int, use_agg: bool, agg_runs, exact_at):
    rows = []
    cases = [(lam, theta, "exp") for lam in SIZES for theta in THETAS]
    cases.append((HEADLINE["admissions"], HEADLINE["theta"], "mix"))
    headline = None
    for lam, theta, kind in cases:
        if kind == "exp":
            model, streams = exp_model(lam, theta), exp_streams(lam)
            exact = exact_at[(lam, theta)][PRICE_LEVEL]
            reference_note = "exact"
        else:
            model, streams = mixture_model(lam, theta), mixture_streams(lam)
            start = time.perf_counter()
            exact, self_diff = headline_reference(streams, theta, model, PRICE_LEVEL)
            reference_note = f"plain FFT 2^22-2^24 Richardson (self-check {self_diff:.1e})"
            headline = {"reference": exact, "reference_self_diff": self_diff,
                        "reference_seconds": time.perf_counter() - start}

        def errors(risk):
            return rel(risk[0], exact[0]), rel(risk[1], exact[1])

        t_engine, res = best_time(lambda: aggregate(model, PRICE_LEVEL), repeat)
        t_mm, mm = best_time(lambda: plain_price(streams, theta, model, "moments", PRICE_LEVEL), repeat)
        t_rd, rd = best_time(lambda: plain_price(streams, theta, model, "round", PRICE_LEVEL), repeat)
        row = {"case": "headline" if kind == "mix" else "exponential", "admissions": lam, "theta": theta,
               "severity": "lognormal mixture (2 streams)" if kind == "mix" else f"exponential, mean {EXP_MEAN:g}",
               "level": PRICE_LEVEL, "reference": reference_note,
               "engine_seconds": t_engine, "engine_points": res.points,
               "engine_errors": errors((res.var, res.cvar)),
               "plain_moments_seconds": t_mm, "plain_moments_errors": errors(mm),
               "plain_round_seconds": t_rd, "plain_round_errors": errors(rd),
               "speedup_vs_plain_moments": t_mm / t_engine, "speedup_vs_plain_round": t_rd / t_engine,
               "aggregate": []}
        if use_agg:
            log2s = sorted({20, AGG_TUNED_LOG2.get(lam, 20)}) if kind == "exp" else [20, AGG_TUNED_LOG2[1e6]]
            program = agg_program(kind, lam, theta)
            for log2 in log2s:
                runs = [agg_runs[(lam, theta, log2)]] if (lam, theta, log2) in agg_runs and kind == "exp" else []
                n_more = (1 if log2 > AGG_SINGLE_RUN_LOG2 else agg_repeat) - len(runs)
                runs += [agg_run(program, model, log2, (PRICE_LEVEL,)) for _ in range(max(n_more, 0))]
                best = min(runs, key=lambda r: r["price_seconds"])
                row["aggregate"].append({
                    "log2": log2, "tuned": log2 == AGG_TUNED_LOG2.get(lam), "runs": len(runs),
                    "build_seconds": min(r["build_seconds"] for r in runs),
                    "price_seconds": best["price_seconds"],
                    "errors": errors(best["risks"][PRICE_LEVEL]),
                    "slowdown_vs_engine": best["price_seconds"] / t_engine,
                    "build_slowdown_vs_engine": min(r["build_seconds"] for r in runs) / t_engine})
        rows.append(row)
        print(f"speed {kind} {lam:.0e} theta {theta}: engine {t_engine * 1e3:.1f} ms, plain {t_mm * 1e3:.0f} ms"
              + "".join(f", aggregate 2^{a['log2']} {a['price_seconds']:.2f} s" for a in row["aggregate"]),
              flush=True)
    return rows, headline


# ----------------------------------------------------------------------------
# 3. Sampling
# ----------------------------------------------------------------------------

def _first_batch(sampler: PoolYearSampler, thetas: np.ndarray, u: np.ndarray) -> PoolYearSampler:
    sampler.sample(thetas, u)
    return sampler


def sampling_rows(repeat: int):
    rows = []
    rng = np.random.default_rng(20240611)
    for lam in SAMPLE_SIZES:
        for theta in THETAS:
            model = mixture_model(lam, theta)
            thetas = rng.gamma(1.0 / theta ** 2, theta ** 2, SAMPLE_DRAWS) if theta > 0 else np.ones(SAMPLE_DRAWS)
            u = rng.random(SAMPLE_DRAWS)
            # The node laws are made when draws first reach them: construction is
            # a new sampler's first batch of draws, sampling the batches after it.
            t_build, sampler = best_time(lambda: _first_batch(PoolYearSampler(model), thetas, u), repeat)
            t_sample, draws = best_time(lambda: sampler.sample(thetas, u), repeat)
            var_s, cvar_s = sample_var_cvar(draws, PRICE_LEVEL)
            priced = aggregate(model, PRICE_LEVEL)
            years = MC_YEARS[lam]
            mc_rng = np.random.default_rng(7)
            t_mc, _ = best_time(lambda: ref.simulate_years(mixture_streams(lam), theta, years, mc_rng),
                                repeat if lam * years <= 1e8 else 1)
            rows.append({
                "admissions": lam, "theta": theta, "draws": SAMPLE_DRAWS,
                "theta_nodes": sum(node is not None for node in sampler.samplers),
                "construction_seconds": t_build, "sample_seconds": t_sample,
                "draws_per_second": SAMPLE_DRAWS / t_sample,
                "sample_var_rel_diff": rel(var_s, priced.var), "sample_cvar_rel_diff": rel(cvar_s, priced.cvar),
                "per_claim_mc_years": years, "per_claim_mc_seconds": t_mc,
                "per_claim_mc_years_per_second": years / t_mc,
                "speedup_per_pool_year": (SAMPLE_DRAWS / t_sample) / (years / t_mc),
                "break_even_draws": t_build / (t_mc / years - t_sample / SAMPLE_DRAWS),
            })
            print(f"sampling {lam:.0e} theta {theta}: build {t_build:.3f} s, "
                  f"{SAMPLE_DRAWS / t_sample:.3g} draws/s, MC {years / t_mc:.3g} years/s", flush=True)
    return rows


# ----------------------------------------------------------------------------
# 4. Plot
# ----------------------------------------------------------------------------

def plot(path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    info = {}
    for ax, lam in zip(axes, (PLOT_SMALL, PLOT_LARGE)):
        model = mixture_model(lam, PLOT_THETA)
        law = lattice_law(model)
        cdf = np.cumsum(law.pmf)
        keep = (cdf > 1e-6) & (cdf < 1 - 1e-6)
        x = (law.start + law.span * np.arange(len(law.pmf)))[keep] / 1e6
        ax.plot(x, law.pmf[keep] / (law.span / 1e6), color="C0", lw=1.5, label="engine lattice law")
        priced = aggregate(model, PRICE_LEVEL)
        entry = {"admissions": lam, "theta": PLOT_THETA, "var": priced.var, "cvar": priced.cvar,
                 "lattice_points": len(law.pmf), "span": law.span}
        if lam == PLOT_SMALL:
            years = 200_000
            sims = ref.simulate_years(mixture_streams(lam), PLOT_THETA, years, np.random.default_rng(11))
            ax.hist(sims / 1e6, bins=150, range=(x[0], x[-1]), density=True, color="C1", alpha=0.45,
                    label=f"per-claim Monte Carlo ({years:,} years)")
            mc_var, mc_cvar = sample_var_cvar(sims, PRICE_LEVEL)
            entry.update({"mc_years": years, "mc_var": mc_var, "mc_cvar": mc_cvar})
        ax.axvline(priced.var / 1e6, color="C3", ls="--", lw=1.2, label=f"VaR 0.99 = {priced.var / 1e6:,.3f}M")
        ax.axvline(priced.cvar / 1e6, color="C2", ls=":", lw=1.5, label=f"CVaR 0.99 = {priced.cvar / 1e6:,.3f}M")
        ax.set_title(f"{lam:,.0f} expected admissions, shock cv {PLOT_THETA}")
        ax.set_xlabel("annual eligible cost Y (CNY million)")
        ax.set_ylabel("density (per CNY million)")
        ax.legend(fontsize=8)
        info[f"{lam:g}"] = entry
    fig.suptitle("Pool-year loss Y: two-stream lognormal mixture severity (home 5780 cv 1; "
                 "10% out of network 11561 cv 1 at factor 0.6)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return info


# ----------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _e(x: float) -> str:
    return f"{x:.1e}"


def _t(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def markdown(data) -> str:
    meta = data["meta"]
    acc, speed, samp = data["accuracy"], data["speed"], data["sampling"]
    lines = [
        "# Claims engine benchmark", "",
        f"{meta['date']} on {meta['machine']} ({meta['cpu']}, {meta['cores']} cores), Python {meta['python']}, "
        f"pooling {meta['pooling']}, numpy {meta['numpy']}, scipy {meta['scipy']}, aggregate {meta['aggregate']}, "
        f"matplotlib {meta['matplotlib']}; timings best of {meta['repeat']} (aggregate: best of "
        f"{meta['agg_repeat']} up to 2^21 buckets, else 1), single-threaded, "
        f"total run {meta['run_seconds']:.0f} s, 1-minute load average {meta['load_average_1min'][0]:.1f} at "
        f"start and {meta['load_average_1min'][1]:.1f} at the end (other processes share the cores, so "
        "compare ratios within this run). Produced by `benchmarks/bench_claims.py`.", "",
        "## 1. Accuracy against exact compound sums", "",
        f"Exponential severity (mean {EXP_MEAN:g}); Poisson (theta 0) or negative binomial "
        "(Gamma(1, cv theta) shock) counts; reference tests/references.ExpCompound (exact). "
        "Relative errors of VaR and CVaR. Plain: one 2^20-point FFT on [0, U] (U = engine window end), "
        "severity by rounding or local moment matching (MM) up to where < 1e-12 claims a year exceed it, "
        "no window shift, "
        "no extrapolation. aggregate: same [0, U], "
        "default rounding discretisation, `a.q` / `a.tvar`; \"tuned\" is the smallest log2 that met the "
        f"{TARGET:g} target in a sweep (log2 by size: "
        + ", ".join(f"{k:.0e}: {v}" for k, v in AGG_TUNED_LOG2.items()) + ").", "",
        "Worst relative error over theta in {0, 0.05}, levels {0.9, 0.99, 0.999}, VaR and CVaR:", "",
        "| method | " + " | ".join(f"{lam:.0e}" for lam in SIZES) + " |",
        "|---|" + "---:|" * len(SIZES),
    ]
    methods = list(dict.fromkeys(r["method"] for r in acc))
    for m in methods:
        cells = []
        for lam in SIZES:
            errs = [r["max_rel_error"] for r in acc if r["method"] == m and r["admissions"] == lam]
            cells.append(_e(max(errs)) if errs else "-")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "Detail (engine's own error estimate |R_h - R_2h| / 3R in the last column):", "",
              "| method | admissions | theta | settings | VaR 0.9 | VaR 0.99 | VaR 0.999 | CVaR 0.9 | "
              "CVaR 0.99 | CVaR 0.999 | estimate |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in acc:
        v, c = r["var_rel_error"], r["cvar_rel_error"]
        est = _e(r["error_estimate"]) if "error_estimate" in r else ""
        lines.append(f"| {r['method']} | {r['admissions']:.0e} | {r['theta']:g} | {r['settings']} | "
                     + " | ".join(_e(v[str(lv)]) for lv in LEVELS) + " | "
                     + " | ".join(_e(c[str(lv)]) for lv in LEVELS) + f" | {est} |")

    lines += ["", "## 2. Time to price one pool", "",
              f"One VaR/CVaR pair at level {PRICE_LEVEL}. Speedup = baseline time / engine time. "
              "Errors are max(VaR, CVaR) relative errors at that level. aggregate: build (update) time "
              "and build + first `q`/`tvar` (which constructs its density_df), runs above 2^21 buckets "
              "timed once.", "",
              "| admissions | theta | engine | engine err | plain 2^20 (MM) | speedup | plain err | "
              "plain 2^20 (round) | round err | aggregate | agg build | agg build+q/tvar | agg err | "
              "agg / engine |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in speed:
        label = f"{r['admissions']:.0e}" + (" **headline** (lognormal mix)" if r["case"] == "headline" else "")
        base = (f"| {label} | {r['theta']:g} | {_t(r['engine_seconds'])} | {_e(max(r['engine_errors']))} | "
                f"{_t(r['plain_moments_seconds'])} | {r['speedup_vs_plain_moments']:.1f}x | "
                f"{_e(max(r['plain_moments_errors']))} | {_t(r['plain_round_seconds'])} | "
                f"{_e(max(r['plain_round_errors']))} |")
        aggs = r["aggregate"] or [None]
        for k, a in enumerate(aggs):
            prefix = base if k == 0 else "| | | | | | | | | |"
            if a is None:
                lines.append(prefix + " - | - | - | - | - |")
            else:
                lines.append(prefix + f" 2^{a['log2']}{' (tuned)' if a['tuned'] else ''} | "
                             f"{_t(a['build_seconds'])} | {_t(a['price_seconds'])} | {_e(max(a['errors']))} | "
                             f"{a['slowdown_vs_engine']:.0f}x |")
    h = data.get("headline")
    if h:
        lines += ["", f"Headline reference: {h['reference_note']}."]

    lines += ["", "## 3. Pool-year sampling", "",
              f"`PoolYearSampler(model).sample(thetas, uniforms)` for {SAMPLE_DRAWS:,} draws (theta ~ Gamma(1, cv) "
              "given, uniforms given), one core; construction (with the node laws the first draws reach) timed "
              "separately. Baseline: per-admission "
              "Monte Carlo (tests/references.simulate_years) of the same pool. Same two-stream lognormal "
              "mixture severity as the headline. Check: empirical VaR/CVaR 0.99 of the draws vs the engine's.",
              "", "| admissions | theta | theta nodes | construction | draws/s | per-claim MC years/s | "
              "speedup per pool-year | break-even draws | draws VaR diff | draws CVaR diff |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in samp:
        lines.append(f"| {r['admissions']:.0e} | {r['theta']:g} | {r['theta_nodes']} | "
                     f"{_t(r['construction_seconds'])} | {r['draws_per_second']:.3g} | "
                     f"{r['per_claim_mc_years_per_second']:.3g} | {r['speedup_per_pool_year']:.3g}x | "
                     f"{r['break_even_draws']:.3g} | {_e(r['sample_var_rel_diff'])} | "
                     f"{_e(r['sample_cvar_rel_diff'])} |")
    lines += ["", "## 4. Plot", "", "![loss distributions](loss_distributions.png)", "",
              "Engine lattice law (sampling budget) of a ~50-admission pool with a per-claim Monte Carlo "
              "histogram, and of a 1e5-admission pool, both theta 0.03; VaR/CVaR at 0.99 marked."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (best of)")
    parser.add_argument("--agg-repeat", type=int, default=2,
                        help="repeats of `aggregate` runs up to 2^21 buckets (larger ones run once)")
    parser.add_argument("--no-aggregate", action="store_true", help="skip the `aggregate` package")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    use_agg = agg_build is not None and not args.no_aggregate
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_start = time.perf_counter()
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    # Warm-up: imports, scipy special functions, aggregate's parser.
    aggregate(exp_model(100.0, 0.05), PRICE_LEVEL)
    plain_price(exp_streams(100.0), 0.05, exp_model(100.0, 0.05), "moments", PRICE_LEVEL)
    if use_agg:
        agg_run(agg_program("exp", 100.0, 0.05), exp_model(100.0, 0.05), 12, (PRICE_LEVEL,))
        agg_run(agg_program("mix", 100.0, 0.05), mixture_model(100.0, 0.05), 12, (PRICE_LEVEL,))

    accuracy, agg_runs, exact_at = accuracy_rows(use_agg)
    speed, headline = speed_rows(args.repeat, args.agg_repeat, use_agg, agg_runs, exact_at)
    headline["reference_note"] = next(r["reference"] for r in speed if r["case"] == "headline")
    sampling = sampling_rows(args.repeat)
    plot_info = plot(out / "loss_distributions.png")

    import scipy
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()} {platform.node()}",
            "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "pooling": package_version("pooling"), "numpy": np.__version__, "scipy": scipy.__version__,
            "aggregate": package_version("aggregate") if use_agg else "not used",
            "matplotlib": package_version("matplotlib"), "repeat": args.repeat, "agg_repeat": args.agg_repeat,
            "run_seconds": time.perf_counter() - run_start,
            "load_average_1min": [load_start, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")]}
    data = {"meta": meta, "accuracy": accuracy, "speed": speed, "headline": headline,
            "sampling": sampling, "plot": {"path": "loss_distributions.png", "pools": plot_info}}
    (out / "claims.json").write_text(json.dumps(data, indent=2, default=float) + "\n")
    md = markdown(data)
    (out / "claims.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
