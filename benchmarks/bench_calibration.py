"""Coverage study of `pooling calibrate`'s estimators (issue 24): over many
synthetic panels drawn from known instances (pooling.calibration.synthetic),
how often each 95% interval covers the truth, and how the errors shrink as
years and counties grow.

    python benchmarks/bench_calibration.py [--panels N]

Writes benchmarks/results/calibration.json and calibration.md. The test
tests/test_calibration.py runs the 20-panel version of the 60 x 6 x 10 row.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from pooling.calibration import estimates as est
from pooling.calibration.synthetic import simulate_panel
from pooling.calibration.tables import read_panel
from pooling.data.generate import generate_instance
from pooling.data.instance import instance_from_dict

RESULTS = Path(__file__).resolve().parent / "results"
DESIGNS = ((20, 4, 5), (20, 4, 10), (60, 6, 5), (60, 6, 10), (120, 12, 12))
"""(counties, prefectures, years) panels; 60 x 6 x 10 is the issue's."""
PARTS = ("trend", "cost_trend", "national", "prefecture", "county")


def study(counties: int, prefectures: int, years: int, panels: int) -> dict:
    truth_instance = instance_from_dict(generate_instance(counties, prefectures, seed=7), source="truth")
    hits = {k: 0 for k in PARTS}
    errors = {k: [] for k in PARTS}
    rate_hits, rate_errors = [], []
    for seed in range(1000, 1000 + panels):
        rows = simulate_panel(truth_instance, years, seed, claims_per_year=0)
        truth = rows["truth"]
        panel = read_panel(rows["funds"], rows["history"])
        u, v = est.log_rates(panel)
        groups = est.prefecture_groups(panel)
        trend = est.fit_trend(u.mean(axis=0), panel.years)
        parts = est.shock_components(u, v, groups)
        costs = est.cost_levels(panel, truth_instance.year)
        rates = est.credible_rates(u, v, groups, trend, parts, panel.years, truth_instance.year)
        found = {"trend": (trend.growth, truth["trend"]["admissions"]),
                 "cost_trend": (costs.trend.growth, truth["trend"]["cost"]),
                 "national": (parts.national, truth["shock_variance"]["national"]),
                 "prefecture": (parts.prefecture, truth["shock_variance"]["prefecture"]),
                 "county": (parts.county, truth["shock_variance"]["county"])}
        for name, (interval, value) in found.items():
            hits[name] += interval.low <= value <= interval.high
            errors[name].append(abs(interval.estimate - value))
        for rate, cid in zip(rates, truth["counties"]):
            value = truth["counties"][cid]["admission_rate"]
            rate_hits.append(rate.admission_rate.low <= value <= rate.admission_rate.high)
            rate_errors.append(abs(math.log(rate.admission_rate.estimate / value)))
    row = {"counties": counties, "prefectures": prefectures, "years": years, "panels": panels}
    for name in PARTS:
        row[f"{name}_coverage"] = hits[name] / panels
        row[f"{name}_mean_abs_error"] = float(np.mean(errors[name]))
    row["admission_rate_coverage"] = float(np.mean(rate_hits))
    row["admission_rate_mean_abs_log_error"] = float(np.mean(rate_errors))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [study(*design, args.panels) for design in DESIGNS]
    seconds = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "calibration.json").write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2) + "\n")
    header = ("| counties x prefectures x years | trend | cost trend | national | prefecture | county | "
              "county rates | trend error | county var. error | rate log error |")
    lines = ["# Calibration coverage (benchmarks/bench_calibration.py)", "",
             f"{args.panels} synthetic panels per row (truth: pooling.data.generate seed 7, growth 6% / 5%, "
             f"shock variances 0.0004 / 0.0009 / 0.0023); share of 95% intervals covering the truth, and mean "
             f"absolute errors. {seconds:.0f} s in all.", "", header, "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['counties']} x {r['prefectures']} x {r['years']} | {r['trend_coverage']:.3f} | "
                     f"{r['cost_trend_coverage']:.3f} | {r['national_coverage']:.3f} | "
                     f"{r['prefecture_coverage']:.3f} | {r['county_coverage']:.3f} | "
                     f"{r['admission_rate_coverage']:.3f} | {r['trend_mean_abs_error']:.2e} | "
                     f"{r['county_mean_abs_error']:.2e} | {r['admission_rate_mean_abs_log_error']:.2e} |")
    (RESULTS / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
