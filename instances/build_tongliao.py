#!/usr/bin/env python3
"""Build instances/tongliao.json, the bundled default instance of `pooling`.

Tongliao prefecture (Inner Mongolia, prefecture code 150500, 8 county-level
units), policy year 2012, calibrated from the 2010 census county table in
../shared/data/china_counties_census.csv and the national figures collected in
shared/CALIBRATION.md. Every constant below is tagged S (sourced), D (derived
from sourced data) or A (assumed); instances/README.md gives the sources and
the reasoning behind each assumption.

Usage (from the repository root):
    python instances/build_tongliao.py
    python instances/build_tongliao.py --census PATH --out PATH --adjacency borders|delaunay

Default paths are resolved against the repository root (the parent of this
file's directory); paths given on the command line are taken as given.
Standard library + numpy + scipy only. The output is deterministic.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay
from scipy.stats import norm

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CENSUS = REPO_ROOT / ".." / "shared" / "data" / "china_counties_census.csv"
DEFAULT_OUT = REPO_ROOT / "instances" / "tongliao.json"

PREFECTURE = "150500"
PROVINCE = "150000"
YEAR = 2012

# Romanised names (the census file carries Chinese names only).
NAMES = {
    "150502": "Horqin District",
    "150521": "Horqin Left Middle Banner",
    "150522": "Horqin Left Rear Banner",
    "150523": "Kailu County",
    "150524": "Hure Banner",
    "150525": "Naiman Banner",
    "150526": "Jarud Banner",
    "150581": "Huolinguole City",
}
NAMES_ZH = {
    "150502": "科尔沁区", "150521": "科尔沁左翼中旗", "150522": "科尔沁左翼后旗",
    "150523": "开鲁县", "150524": "库伦旗", "150525": "奈曼旗",
    "150526": "扎鲁特旗", "150581": "霍林郭勒市",
}

# ---------------------------------------------------------------- calibration
# National NRCMS aggregates, 2012 (S): 805M enrollees, participation 98.3%,
# financing 308.5 CNY per capita, expenditure 240.80 bn CNY.
PARTICIPATION = 0.983                     # S
CONTRIBUTION = 308.5                      # S, CNY/enrollee/yr, uniform across units
NAT_ENROLLEES = 805e6                     # S
NAT_EXPENDITURE = 240.80e9                # S, CNY
INPATIENT_SHARE = 0.826                   # S (2009 share of payouts to inpatient care)
EFFECTIVE_INPATIENT_REIMB = 0.55          # S (2009 ~55%; Sanming 58%; 14 counties >50%)

ADMISSION_RATE_NAT = 0.08                 # A, interpolated 2009 (0.046, D) .. 2013 (~0.10, S)
AGED_RELATIVE_ADMISSION = 3.0             # A: admission rate of 65+ relative to <65

SEVERITY_CV = 1.0                         # A (lognormal sigma = 0.833)
OUTSIDE_SEVERITY_RATIO = 2.0              # A, within sourced level ratios 2.2-2.7x (section 3)

INTER_PROVINCIAL_SHARE = 0.43             # S (NBS migrant worker survey 2019: 43.1%)

ADMIN_PER_CAPITA = 2.0                    # A (nothing found)
ADMIN_FIXED_PER_FUND = 1_000_000.0        # A (nothing found)
RESERVE_RATIO = 0.10                      # A: reserves = 10% of annual revenue

PARAMS = {
    "out_of_network_factor": 0.6,         # A (Luoyang schedule: provincial 50% vs county 63-83%)
    "out_of_network_claim_share": 0.6,    # A
    "migrant_admission_factor": 1.0,      # A (younger, but less access: assumed to cancel)
    "frequency_shock_cv": 0.03,           # A
}

# Sanity check settings (not written to the instance).
CHECK_RESERVE_SHARE = 0.5
CHECK_ALPHA = 0.99

# Land-border adjacency within Tongliao, read off textual border descriptions of
# each unit (wiki/encyclopedia-style pages, see instances/README.md). Two edges
# are uncertain (sources disagree): 150522-150525 is included (named in the
# Horqin Left Rear description), 150523-150524 is left out (contradicted by the
# Kailu and one Hure description).
BORDER_EDGES = [
    ("150502", "150521"), ("150502", "150522"), ("150502", "150523"),
    ("150521", "150523"), ("150521", "150526"),
    ("150522", "150523"), ("150522", "150524"), ("150522", "150525"),
    ("150523", "150525"), ("150523", "150526"),
    ("150524", "150525"),
    ("150526", "150581"),
]
DELAUNAY_MAX_RATIO = 1.5                  # drop Delaunay edges longer than 1.5 x median
EARTH_RADIUS_KM = 6371.0088


# ---------------------------------------------------------------- helpers
def read_census(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        sys.exit(f"error: cannot read census file {path}: {exc}")
    if not rows:
        sys.exit(f"error: census file {path} is empty")
    return rows


def num(row: dict, key: str, path: Path) -> float:
    val = row.get(key, "")
    if val is None or val.strip() == "":
        sys.exit(f"error: {path}: county {row.get('code')}: missing value in column {key!r}")
    try:
        return float(val)
    except ValueError:
        sys.exit(f"error: {path}: county {row.get('code')}: bad number {val!r} in column {key!r}")


def agri_hukou(row: dict, path: Path) -> float:
    return num(row, "pop_registered_2010", path) * (1.0 - num(row, "nonagri_hukou_pct_2010", path) / 100.0)


def net_absence(row: dict, path: Path) -> float:
    reg = num(row, "pop_registered_2010", path)
    res = num(row, "pop_resident_2010", path)
    return max(0.0, (reg - res) / reg)


def lognormal_second_moment(mean: float, cv: float) -> float:
    return mean * mean * (1.0 + cv * cv)


def project_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Equirectangular projection about the mean latitude, in km."""
    lat0 = math.radians(float(lat.mean()))
    x = EARTH_RADIUS_KM * np.radians(lon) * math.cos(lat0)
    y = EARTH_RADIUS_KM * np.radians(lat)
    return np.column_stack([x, y])


def delaunay_edges(ids: list[str], xy: np.ndarray) -> tuple[dict, float, set]:
    """All Delaunay edges with lengths, the median length, and the kept set."""
    tri = Delaunay(xy)
    lengths = {}
    for simplex in tri.simplices:
        for i in range(3):
            a, b = sorted((int(simplex[i]), int(simplex[(i + 1) % 3])))
            lengths[(ids[a], ids[b])] = float(np.hypot(*(xy[a] - xy[b])))
    median = float(np.median(list(lengths.values())))
    kept = {e for e, d in lengths.items() if d <= DELAUNAY_MAX_RATIO * median}
    # Reconnect if the length rule split the graph: add the shortest dropped
    # edges that join two components (Kruskal on the dropped edges).
    comp = {i: i for i in ids}

    def find(i):
        while comp[i] != i:
            comp[i] = comp[comp[i]]
            i = comp[i]
        return i

    for a, b in kept:
        comp[find(a)] = find(b)
    for e in sorted(set(lengths) - kept, key=lambda e: (lengths[e], e)):
        ra, rb = find(e[0]), find(e[1])
        if ra != rb:
            comp[ra] = rb
            kept.add(e)
    return lengths, median, kept


def is_connected(ids: list[str], edges: set) -> bool:
    nbr = {i: set() for i in ids}
    for a, b in edges:
        nbr[a].add(b)
        nbr[b].add(a)
    seen, stack = {ids[0]}, [ids[0]]
    while stack:
        for j in nbr[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(ids)


def r6(x: float) -> float:
    return round(float(x), 6)


# ---------------------------------------------------------------- build
def build(census_path: Path, adjacency: str) -> tuple[dict, dict]:
    rows = read_census(census_path)
    required = ["code", "prefecture_code", "province_code", "lon", "lat", "pop_resident_2010",
                "pop_registered_2010", "nonagri_hukou_pct_2010", "age65plus_pct_2010",
                "inmigrants_other_county_same_province_2010"]
    missing = [c for c in required if c not in rows[0]]
    if missing:
        sys.exit(f"error: census file {census_path}: missing columns {missing}")

    # National references from the same table (D).
    pop_all = sum(num(r, "pop_resident_2010", census_path) for r in rows)
    aged_nat = sum(num(r, "pop_resident_2010", census_path) * num(r, "age65plus_pct_2010", census_path)
                   for r in rows) / pop_all / 100.0
    agri_all = sum(agri_hukou(r, census_path) for r in rows)
    mu_nat = sum(agri_hukou(r, census_path) * net_absence(r, census_path) for r in rows) / agri_all

    # Severity calibration at the national-average county (D):
    # expected eligible inpatient cost per enrollee I = spend/enrollee x inpatient share / reimbursement,
    # and I = lambda * m * [(1 - mu) + mu * h * q * phi * outside_ratio]
    # (migrants of a county fund are out of network; their care is priced at the outside severity).
    spend_pc = NAT_EXPENDITURE / NAT_ENROLLEES
    inpatient_paid_pc = spend_pc * INPATIENT_SHARE
    eligible_pc = inpatient_paid_pc / EFFECTIVE_INPATIENT_REIMB
    h = PARAMS["migrant_admission_factor"]
    q = PARAMS["out_of_network_claim_share"]
    phi = PARAMS["out_of_network_factor"]
    mix = (1.0 - mu_nat) + mu_nat * h * q * phi * OUTSIDE_SEVERITY_RATIO
    sev_mean = eligible_pc / (ADMISSION_RATE_NAT * mix)
    sev_mean = round(sev_mean, 2)
    outside_mean = round(OUTSIDE_SEVERITY_RATIO * sev_mean, 2)
    outpatient_pc = round(spend_pc * (1.0 - INPATIENT_SHARE), 2)   # outpatient 13.2% + other 4.2%

    province_rows = [r for r in rows if r["province_code"] == PROVINCE]
    units = sorted((r for r in rows if r["prefecture_code"] == PREFECTURE), key=lambda r: r["code"])
    ids = [r["code"] for r in units]
    if ids != sorted(NAMES):
        sys.exit(f"error: {census_path}: expected Tongliao units {sorted(NAMES)}, found {ids}")
    for r in units:
        if r["name_zh"] != NAMES_ZH[r["code"]]:
            sys.exit(f"error: {census_path}: county {r['code']}: name {r['name_zh']!r}, "
                     f"expected {NAMES_ZH[r['code']]!r}")

    # Adjacency.
    lon = np.array([num(r, "lon", census_path) for r in units])
    lat = np.array([num(r, "lat", census_path) for r in units])
    xy = project_km(lon, lat)
    d_lengths, d_median, d_kept = delaunay_edges(ids, xy)
    border = {tuple(sorted(e)) for e in BORDER_EDGES}
    edges = border if adjacency == "borders" else d_kept
    if not is_connected(ids, edges):
        sys.exit("error: adjacency graph is not connected")

    counties = []
    diag = {}
    for r in units:
        cid = r["code"]
        reg = num(r, "pop_registered_2010", census_path)
        enrollees = int(round(agri_hukou(r, census_path) * PARTICIPATION))
        revenue = enrollees * CONTRIBUTION
        reserves = round(RESERVE_RATIO * revenue, 2)
        mu = r6(net_absence(r, census_path))
        aged = num(r, "age65plus_pct_2010", census_path) / 100.0
        lam = ADMISSION_RATE_NAT * (1.0 + (AGED_RELATIVE_ADMISSION - 1.0) * aged) / \
            (1.0 + (AGED_RELATIVE_ADMISSION - 1.0) * aged_nat)
        lam = r6(lam)

        # Destinations: 43% out of province; 57% over the other units of Inner
        # Mongolia pro rata to their intra-provincial in-migrants; units outside
        # Tongliao are folded into "outside".
        others = [p for p in province_rows if p["code"] != cid]
        w_tot = sum(num(p, "inmigrants_other_county_same_province_2010", census_path) for p in others)
        dest = {}
        for p in others:
            if p["prefecture_code"] == PREFECTURE:
                w = (1.0 - INTER_PROVINCIAL_SHARE) * \
                    num(p, "inmigrants_other_county_same_province_2010", census_path) / w_tot
                dest[p["code"]] = round(w, 8)
        dest = dict(sorted(dest.items()))
        dest["outside"] = round(1.0 - sum(dest.values()), 8)

        adj = sorted({b for a, b in edges if a == cid} | {a for a, b in edges if b == cid})
        counties.append({
            "id": cid,
            "name": NAMES[cid],
            "prefecture": PREFECTURE,
            "province": PROVINCE,
            "enrollees": enrollees,
            "contribution_per_capita": CONTRIBUTION,
            "reserves": reserves,
            "admin_per_capita": ADMIN_PER_CAPITA,
            "outpatient_per_capita": outpatient_pc,
            "admission_rate": lam,
            "severity": {"dist": "lognormal", "mean": sev_mean, "cv": SEVERITY_CV},
            "migrant_share": mu,
            "migrant_destinations": dest,
            "adjacent": adj,
        })
        diag[cid] = {"registered": reg, "aged": aged}

    instance = {
        "name": "tongliao",
        "year": YEAR,
        "currency": "CNY",
        "description": (
            "Tongliao prefecture, Inner Mongolia (code 150500): 8 county-level NRCMS funds, "
            "policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing and cost levels from 2012 national NRCMS aggregates; several "
            "parameters assumed. Sources and assumptions: instances/README.md."
        ),
        "parameters": {
            "admin_fixed_per_fund": ADMIN_FIXED_PER_FUND,
            "out_of_network_factor": PARAMS["out_of_network_factor"],
            "out_of_network_claim_share": PARAMS["out_of_network_claim_share"],
            "migrant_admission_factor": PARAMS["migrant_admission_factor"],
            "outside_severity": {"dist": "lognormal", "mean": outside_mean, "cv": SEVERITY_CV},
            "frequency_shock_cv": PARAMS["frequency_shock_cv"],
        },
        "counties": counties,
    }
    info = {
        "aged_nat": aged_nat, "mu_nat": mu_nat, "spend_pc": spend_pc,
        "inpatient_paid_pc": inpatient_paid_pc, "eligible_pc": eligible_pc, "mix": mix,
        "sev_mean": sev_mean, "outpatient_pc": outpatient_pc,
        "d_lengths": d_lengths, "d_median": d_median, "d_kept": d_kept, "border": border,
        "diag": diag,
    }
    return instance, info


# ---------------------------------------------------------------- sanity check
def pool_moments(instance: dict, members: set) -> tuple[float, float, float, float]:
    """Budget, mean and variance of Y_P for a pool (normal approximation inputs)."""
    p = instance["parameters"]
    h, q, phi, theta = (p["migrant_admission_factor"], p["out_of_network_claim_share"],
                        p["out_of_network_factor"], p["frequency_shock_cv"])
    sev = {c["id"]: (c["severity"]["mean"], c["severity"]["cv"]) for c in instance["counties"]}
    sev["outside"] = (p["outside_severity"]["mean"], p["outside_severity"]["cv"])
    budget = -p["admin_fixed_per_fund"]
    mean = var = 0.0
    for c in instance["counties"]:
        if c["id"] not in members:
            continue
        n, lam, mu = c["enrollees"], c["admission_rate"], c["migrant_share"]
        budget += n * c["contribution_per_capita"] + CHECK_RESERVE_SHARE * c["reserves"] \
            - (c["admin_per_capita"] + c["outpatient_per_capita"]) * n
        m, v = sev[c["id"]]
        rate = n * (1.0 - mu) * lam
        mean += rate * m
        var += rate * lognormal_second_moment(m, v)
        for k, w in c["migrant_destinations"].items():
            m, v = sev[k]
            base = n * mu * w * h * lam
            if k in members:
                mean += base * m
                var += base * lognormal_second_moment(m, v)
            else:
                mean += base * q * phi * m
                var += base * q * phi * phi * lognormal_second_moment(m, v)
    var_total = var + (theta * mean) ** 2     # mixed Poisson: add Var(E[Y | Theta])
    return budget, mean, var_total, var


def cvar_normal_factor(alpha: float) -> float:
    return float(norm.pdf(norm.ppf(alpha)) / (1.0 - alpha))


# ---------------------------------------------------------------- output
def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp creates 0600; use normal file permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--census", type=Path, default=DEFAULT_CENSUS,
                    help="2010 census county table (default: ../shared/data/china_counties_census.csv)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="output instance JSON (default: instances/tongliao.json)")
    ap.add_argument("--adjacency", choices=["borders", "delaunay"], default="borders",
                    help="land borders from unit descriptions (default) or Delaunay on seat coordinates")
    args = ap.parse_args(argv)

    instance, info = build(args.census, args.adjacency)
    text = json.dumps(instance, indent=2, ensure_ascii=False) + "\n"
    write_atomic(args.out, text)

    # ---- report (stdout only)
    print(f"wrote {args.out}")
    print(f"national 65+ share (resident-weighted, 2010): {info['aged_nat']:.4%}")
    print(f"national enrollee-weighted net absence share: {info['mu_nat']:.4%}")
    print(f"severity calibration: spend {info['spend_pc']:.2f}/enrollee, inpatient paid "
          f"{info['inpatient_paid_pc']:.2f}, eligible {info['eligible_pc']:.2f}, mix {info['mix']:.4f} "
          f"-> mean {info['sev_mean']:.2f} CNY/admission; outpatient {info['outpatient_pc']:.2f}/enrollee")
    print(f"Delaunay edges (median {info['d_median']:.1f} km, cut {DELAUNAY_MAX_RATIO} x median):")
    for e in sorted(info["d_lengths"], key=lambda e: (info["d_lengths"][e], e)):
        tag = "kept" if e in info["d_kept"] else "dropped"
        ref = "border" if e in info["border"] else "no border"
        print(f"  {e[0]}-{e[1]} {info['d_lengths'][e]:7.1f} km  {tag:8s} ({ref})")
    for e in sorted(info["border"] - set(info["d_lengths"])):
        print(f"  {e[0]}-{e[1]}   not a Delaunay edge (border)")
    print(f"adjacency used: {args.adjacency}")

    k = cvar_normal_factor(CHECK_ALPHA)
    print(f"\nrough max solvent rate alone (normal approx, CVaR_{CHECK_ALPHA} = mean + {k:.3f} sd, "
          f"reserve_share {CHECK_RESERVE_SHARE}):")
    print(f"{'id':7s} {'name':27s} {'enrollees':>9s} {'mu':>7s} {'lambda':>8s} {'sev':>8s} "
          f"{'E[Y]/N':>7s} {'B/N':>7s} {'r*(th=0)':>8s} {'r*':>6s}")
    for c in instance["counties"]:
        b, m, v, v0 = pool_moments(instance, {c["id"]})
        n = c["enrollees"]
        print(f"{c['id']:7s} {c['name']:27s} {n:9d} {c['migrant_share']:7.4f} {c['admission_rate']:8.5f} "
              f"{c['severity']['mean']:8.1f} {m / n:7.1f} {b / n:7.1f} {b / (m + k * math.sqrt(v0)):8.3f} "
              f"{b / (m + k * math.sqrt(v)):6.3f}")
    allm = {c["id"] for c in instance["counties"]}
    b, m, v, v0 = pool_moments(instance, allm)
    n = sum(c["enrollees"] for c in instance["counties"])
    print(f"{'all 8':35s} {n:9d} {'':7s} {'':8s} {'':8s} {m / n:7.1f} {b / n:7.1f} "
          f"{b / (m + k * math.sqrt(v0)):8.3f} {b / (m + k * math.sqrt(v)):6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
