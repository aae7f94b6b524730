#!/usr/bin/env python3
"""Build instances/tongliao.json, the bundled default instance of `pooling`.

Tongliao prefecture (Inner Mongolia, prefecture code 150500, 8 county-level
units), policy year 2012. This file holds the calibration constants shared by
every instance (each tagged S sourced, D derived from sourced data or A
assumed; instances/README.md gives the sources and the reasoning behind each
assumption). The per-county figures and the places of care come from the
national model in instances/build.py (computed from the whole 2010 census
table in ../shared/data/china_counties_census.csv), so the Tongliao units are
identical to their records in china.json; only the adjacency differs (land
borders here).

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
EFFECTIVE_INPATIENT_REIMB = 0.55          # S (2009 ~55%; Sanming 58%; 14 counties >50%):
                                          #   reimbursed / cost of the compensated admissions
BENEFIT_PER_ADMISSION = 1894.0            # S, CNY paid per compensated admission, 2011 (MoH);
                                          #   2009: 92.29 bn x 0.826 / 38.1 M = 2,000 (D)
# => claimed (compensated) admissions per enrollee = 299.13 x 0.826 / 1,894 = 0.1305 (D),
#    cost per claimed admission = 1,894 / 0.55 = 3,443.6 CNY (D); the admission rate and
#    the county-level base cost are solved from these two over the national care mix
#    (build.py: national_model).
AGED_RELATIVE_ADMISSION = 3.0             # A: admission rate of 65+ relative to <65

SEVERITY_CV = 1.0                         # A (lognormal sigma = 0.833), every place

# Places of care and their price levels. Cost per admission 2012, CALIBRATION.md
# "Suggested calibration": county 3,500 : prefecture 8,000 : provincial 15,000
# (levels A; ratios within the sourced 1 : 2.2-3 : 4.8-6.5 : 9.5-12 chain, S/D).
# Only the ratios are used; the level is solved from the national anchor.
LEVEL_COST = {"county": 3500.0, "prefecture": 8000.0, "province": 15000.0}    # A (levels)
PRICE_RATIO = {k: v / LEVEL_COST["county"] for k, v in LEVEL_COST.items()}  # D: 1 : 2.286 : 4.286
# Regional price factor, Beijing only (every place in province 110000): Beijing
# government tertiary hospitals 18,347.76 CNY per inpatient (2009, Beijing Public
# Health Information Center) / national tertiary ~9,716 (2010, derived from a Gansu
# report) = 1.89, level-matched (the 2.6x all-hospital ratio mixes Beijing's
# tertiary-heavy level mix into the price). No other province has a sourced factor.
REGIONAL_PRICE_FACTOR = {"110000": round(18347.76 / 9716.0, 4)}             # D

# Residents' care-seeking: share of residents' admissions at the county's own
# hospitals (THC + county hospitals) / the prefecture city's hospitals / the
# provincial hospitals. A: no national split of NRCMS admissions by level was
# found; 20% out of county is the suggested default (10-40%, one surveyed county
# >40%, S), and with the price ratios it puts ~35% of a county's inpatient fund
# out of county (suggested 35%, range 20-55%, S: one surveyed county >50%).
RESIDENT_CARE = {"own": 0.80, "city": 0.14, "province": 0.06}             # A

# Migrants (net absence, census 2010) split between other provinces and the home
# province: NBS migrant-worker monitoring report 2014: 46.8% of out-migrants
# cross-province nationally, 62.8% of those from central China (S). Central
# origins get 62.8%; the others one common share such that the national
# migrant-weighted mean is 46.8% (D, computed in build.py).
INTER_PROVINCIAL_SHARE_NAT = 0.468        # S (NBS 2014; 2013: 46.6%; 2019: 43.1%)
INTER_PROVINCIAL_SHARE_CENTRAL = 0.628    # S (NBS 2014; 2018: 60.6%; 2024: 51.8%)
CENTRAL_PROVINCES = ("140000", "340000", "360000", "410000", "420000", "430000")   # S (NBS regions)
EAST_PROVINCES = ("110000", "120000", "130000", "210000", "310000", "320000", "330000",
                  "350000", "370000", "440000", "460000")                          # S (NBS 2013 regions)
# Gravity model targets (build.py calibrates the distance decays to them):
# 2010 census, people away from their hukou place: 15% within their registration
# city, 52% across cities within the province, 33% across provinces (ISOCARP case
# study, SEC) -> 15 / 67 = 22.4% of intra-provincial movers stay in their prefecture (D).
OWN_PREFECTURE_SHARE_TARGET = round(15.0 / 67.0, 4)                          # D
# NBS 2013: 89.9% of central-region cross-province migrants work in the east (S).
CENTRAL_TO_EAST_TARGET = 0.899                                               # S
MIN_DISTANCE_KM = 10.0                    # A: seat-to-seat distances floored (same-city districts)

ADMIN_PER_CAPITA = 2.0                    # A (nothing found)
ADMIN_FIXED_PER_FUND = 1_000_000.0        # A (nothing found)
ADMIN_FINANCING = "county_budget"         # S: running costs from the county budget, never the
                                          #   fund (Changsha rule; national rule usually attributed
                                          #   to State Council General Office document 2003 no. 3)
RESERVE_RATIO = 0.10                      # A: reserves = 10% of annual revenue

# Out of network, by where the care is bought relative to the county (A, see README):
# referrals inside the prefecture are nearly all claimed, at a lower rate than at
# home (the Luoyang schedule, S (low quality), applied to these prices reimburses 61%
# of a county admission, 59% / 48% of a secondary / tertiary city admission and 47%
# of a provincial one: ratios 0.96 / 0.78 / 0.77, D); provincial hospitals need a
# referral and a higher deductible; care in another
# province needs a trip home to claim (15.3% of migrant inpatients went home for
# care, S) and is reimbursed at the lowest rates.
OUT_OF_NETWORK_TIERS = {
    "same_prefecture": {"claim_share": 0.95, "factor": 0.85},                # A
    "same_province": {"claim_share": 0.8, "factor": 0.75},                   # A
    "other_province": {"claim_share": 0.5, "factor": 0.6},                   # A
}
PARAMS = {
    # scalar fallbacks = the other-province tier (what "outside" would get)
    "out_of_network_factor": OUT_OF_NETWORK_TIERS["other_province"]["factor"],
    "out_of_network_claim_share": OUT_OF_NETWORK_TIERS["other_province"]["claim_share"],
    "migrant_admission_factor": 1.0,      # A (younger, but less access: assumed to cancel)
    # Admission-rate shocks M_c = 0.4 Theta_N + 0.3 Theta_P + 0.3 Theta_C (A): a
    # county's multiplier has sd sqrt(0.4^2 0.05^2 + 0.3^2 0.10^2 + 0.3^2 0.16^2) = 6.0%,
    # so a fund with a 2-3% expected surplus runs a deficit in ~30% of years
    # (suggested 30%, A; "most" of 14 surveyed counties in deficit 2012-13, S).
    "frequency_shock_cv": 0.05,           # A, national
}
REGIONAL_SHOCKS = {
    "prefecture": {"weight": 0.3, "cv": 0.10},                               # A
    "county": {"weight": 0.3, "cv": 0.16},                                   # A
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
    # build.py holds the national model (places, care-seeking, gravity migration,
    # calibration) and imports this module for its constants; imported here, late.
    import build as national

    rows = read_census(census_path)
    required = ["code", "prefecture_code", "province_code", "lon", "lat", "pop_resident_2010",
                "pop_registered_2010", "nonagri_hukou_pct_2010", "age65plus_pct_2010",
                "inmigrants_other_county_same_province_2010", "inmigrants_other_province_2010"]
    missing = [c for c in required if c not in rows[0]]
    if missing:
        sys.exit(f"error: census file {census_path}: missing columns {missing}")

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
    nbr = {cid: set() for cid in ids}
    for a, b in edges:
        nbr[a].add(b)
        nbr[b].add(a)

    # Every per-county figure and every place comes from the national model, so
    # the Tongliao units are identical to their records in china.json (only the
    # adjacency differs: land borders here, seat triangulation there).
    model = national.national_model(rows, census_path)
    counties, places = national.assemble_counties(model, ids, nbr, national.CONTRIBUTION_UPLIFT, NAMES)

    instance = {
        "format": "pooling.instance/2",  # pooling.data.formats: the current instance format
        "name": "tongliao",
        "year": YEAR,
        "currency": "CNY",
        "description": (
            "Tongliao prefecture, Inner Mongolia (code 150500): 8 county-level NRCMS funds, "
            "policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing, admissions and cost per admission from national NRCMS aggregates (2011-12); "
            "residents' care at own-county, Tongliao city and Inner Mongolia provincial hospitals; "
            "migrants placed by a gravity model calibrated nationally; several parameters assumed. "
            "Sources and assumptions: instances/README.md."
        ),
        "parameters": national.instance_parameters(model),
        "places": places,
        "counties": counties,
    }
    info = {"model": model, "national": national,
            "d_lengths": d_lengths, "d_median": d_median, "d_kept": d_kept, "border": border}
    return instance, info


# ---------------------------------------------------------------- sanity check
def _where(instance: dict, key: str) -> tuple[dict, str | None, str | None, set]:
    """(severity, prefecture, province, approved_by) of a county key or place id."""
    for c in instance["counties"]:
        if c["id"] == key:
            return c["severity"], c["prefecture"], c["province"], {key}
    for p in instance.get("places", []):
        if p["id"] == key:
            return p["severity"], p["prefecture"], p["province"], set(p["approved_by"])
    sev = instance["parameters"]["outside_severity"]
    return sev, None, None, set()


def pool_moments(instance: dict, members: set) -> tuple[float, float, float, float]:
    """Budget, mean and variance of Y_P for a pool (normal approximation inputs):
    every care flow in or out of network by its place's approved_by and tier; the
    variance adds the three-level admission-rate shock."""
    p = instance["parameters"]
    h = p["migrant_admission_factor"]
    tiers = p.get("out_of_network_tiers", {})
    in_fund = p.get("admin_financing", "risk_fund") == "risk_fund"
    shocks = p.get("regional_shocks", {})
    w_p, th_p = shocks.get("prefecture", {}).get("weight", 0.0), shocks.get("prefecture", {}).get("cv", 0.0)
    w_c, th_c = shocks.get("county", {}).get("weight", 0.0), shocks.get("county", {}).get("cv", 0.0)
    w_n, th_n = 1.0 - w_p - w_c, p["frequency_shock_cv"]
    budget = -p["admin_fixed_per_fund"] if in_fund else 0.0
    mean = var = 0.0
    by_county, by_pref = {}, {}
    for c in instance["counties"]:
        if c["id"] not in members:
            continue
        n, lam, mu = c["enrollees"], c["admission_rate"], c["migrant_share"]
        budget += n * c["contribution_per_capita"] + CHECK_RESERVE_SHARE * c["reserves"] \
            - ((c["admin_per_capita"] if in_fund else 0.0) + c["outpatient_per_capita"]) * n
        care = c.get("resident_care") or {c["id"]: 1.0}
        flows = [(n * (1.0 - mu) * lam * w, k) for k, w in care.items()] + \
                [(n * mu * h * lam * w, k) for k, w in c["migrant_destinations"].items()]
        m_c = 0.0
        for rate, key in flows:
            sev, pref, prov, approved = _where(instance, key)
            if approved and approved <= members:
                q = phi = 1.0
            else:
                t = ("same_prefecture" if pref is not None and pref == c["prefecture"] else
                     "same_province" if prov is not None and prov == c["province"] else "other_province")
                terms = tiers.get(t, {"claim_share": p["out_of_network_claim_share"],
                                      "factor": p["out_of_network_factor"]})
                q, phi = terms["claim_share"], terms["factor"]
            m_c += rate * q * phi * sev["mean"]
            var += rate * q * phi * phi * lognormal_second_moment(sev["mean"], sev["cv"])
        mean += m_c
        by_county[c["id"]] = m_c
        by_pref[c["prefecture"]] = by_pref.get(c["prefecture"], 0.0) + m_c
    shock = (w_n * th_n * mean) ** 2 + (w_p * th_p) ** 2 * sum(x * x for x in by_pref.values()) \
        + (w_c * th_c) ** 2 * sum(x * x for x in by_county.values())
    return budget, mean, var + shock, var


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
    national = info["national"]
    print("national calibration (shared with build.py; the same for every instance file):")
    print(national.calibration_report(info["model"]))
    print(national.case_report(info["model"]))
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
          f"reserve_share {CHECK_RESERVE_SHARE}; r*(th=0) without the admission-rate shocks):")
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
