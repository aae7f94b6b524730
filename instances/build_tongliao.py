#!/usr/bin/env python3
"""Build instances/tongliao.json, the bundled default instance of `pooling`.

Tongliao prefecture (Inner Mongolia, prefecture code 150500, 8 county-level
units), policy year 2012. The calibration constants shared by every instance
(each tagged S sourced, D derived from sourced data or A assumed;
instances/README.md gives the sources and the reasoning behind each
assumption) are in instances/builders/calibration.py. The per-county figures
and the places of care come from the national model (instances/builders/
national.py, computed from the whole 2010 census table in
../shared/data/china_counties_census.csv), so the Tongliao units are
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
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import calibration as cal
from builders.adjacency import delaunay_edges, is_connected
from builders.cases import CONTRIBUTION_UPLIFT, NAMES
from builders.census import DEFAULT_CENSUS, REPO_ROOT, dumps, fail, num, read_census, write_atomic
from builders.coordinates import project_km
from builders.national import assemble_counties, instance_parameters, instance_provenance, national_model
from builders.reports import (
    CHECK_ALPHA,
    CHECK_RESERVE_SHARE,
    calibration_report,
    case_report,
    cvar_normal_factor,
    pool_moments,
)

DEFAULT_OUT = REPO_ROOT / "instances" / "tongliao.json"

PREFECTURE = "150500"
PROVINCE = "150000"
REQUIRED_COLUMNS = ["code", "name_zh", "prefecture_code", "province_code", "lon", "lat", "pop_resident_2010",
                    "pop_registered_2010", "nonagri_hukou_pct_2010", "age65plus_pct_2010",
                    "inmigrants_other_county_same_province_2010", "inmigrants_other_province_2010"]
NAMES_ZH = {
    "150502": "科尔沁区", "150521": "科尔沁左翼中旗", "150522": "科尔沁左翼后旗",
    "150523": "开鲁县", "150524": "库伦旗", "150525": "奈曼旗",
    "150526": "扎鲁特旗", "150581": "霍林郭勒市",
}

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


# ---------------------------------------------------------------- build
def build(census_path: Path, adjacency: str) -> tuple[dict, dict]:
    rows = read_census(census_path, REQUIRED_COLUMNS)

    units = sorted((r for r in rows if r["prefecture_code"] == PREFECTURE), key=lambda r: r["code"])
    ids = [r["code"] for r in units]
    if ids != sorted(NAMES_ZH):
        fail(f"{census_path}: expected Tongliao units {sorted(NAMES_ZH)}, found {ids}")
    for r in units:
        if r["name_zh"] != NAMES_ZH[r["code"]]:
            fail(f"{census_path}: county {r['code']}: name {r['name_zh']!r}, "
                 f"expected {NAMES_ZH[r['code']]!r}")

    # Adjacency.
    lon = np.array([num(r, "lon", census_path) for r in units])
    lat = np.array([num(r, "lat", census_path) for r in units])
    xy = project_km(lon, lat)
    d_lengths, d_median, d_kept = delaunay_edges(ids, xy)
    border = {tuple(sorted(e)) for e in BORDER_EDGES}
    edges = border if adjacency == "borders" else d_kept
    if not is_connected(ids, edges):
        fail("adjacency graph is not connected")
    nbr = {cid: set() for cid in ids}
    for a, b in edges:
        nbr[a].add(b)
        nbr[b].add(a)

    # Every per-county figure and every place comes from the national model, so
    # the Tongliao units are identical to their records in china.json (only the
    # adjacency differs: land borders here, seat triangulation there).
    model = national_model(rows, census_path)
    counties, places = assemble_counties(model, ids, nbr, CONTRIBUTION_UPLIFT, NAMES)

    instance = {
        "format": "pooling.instance/3",  # pooling.data.formats: the current instance format
        "name": "tongliao",
        "year": cal.YEAR,
        "currency": "CNY",
        "description": (
            "Tongliao prefecture, Inner Mongolia (code 150500): 8 county-level NRCMS funds, "
            "policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing per enrollee by province (2011, scaled to 2012); admissions and cost per admission "
            "from national NRCMS aggregates (2011-12); "
            "residents' care at own-county, Tongliao city and Inner Mongolia provincial hospitals; "
            "migrants placed by a gravity model calibrated nationally; several parameters assumed. "
            "Sources and assumptions: instances/README.md."
        ),
        "parameters": instance_parameters(model),
        "places": places,
        "counties": counties,
        "provenance": instance_provenance(counties, "instances/build_tongliao.py", CONTRIBUTION_UPLIFT),
    }
    info = {"model": model,
            "d_lengths": d_lengths, "d_median": d_median, "d_kept": d_kept, "border": border}
    return instance, info



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
    write_atomic(args.out, dumps(instance))

    # ---- report (stdout only)
    print(f"wrote {args.out}")
    print("national calibration (shared with build.py; the same for every instance file):")
    print(calibration_report(info["model"]))
    print(case_report(info["model"]))
    print(f"Delaunay edges (median {info['d_median']:.1f} km, cut {cal.DELAUNAY_MAX_RATIO} x median):")
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
