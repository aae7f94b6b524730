#!/usr/bin/env python3
"""Build real `pooling` instances from the 2010 census county table.

Selects county-level units of ../shared/data/china_counties_census.csv by
prefecture code(s), province code(s) or all of China. Policy year 2012.

Everything a county's record depends on is computed once, from the whole
census table, by `national_model` (so a county, and every place of care its
enrollees use, is byte-for-byte the same in every file that holds it, and
so is its price alone):

* places of care: its own hospitals (the county itself), `city:<prefecture>`
  (the prefecture city's hospitals), `province:<province>` (provincial
  hospitals) and `county:<code>` (a fund county not in the file), priced by
  hospital level (and a Beijing factor), approved by every fund unit of the
  prefecture / province;
* residents' care-seeking: own county / own city / own province shares;
* migrants (net absence) placed by a gravity model: the inter-provincial
  share by region, intra-provincial destinations over the province's other
  units (pull = intra-provincial in-migrants, distance decay calibrated to the
  share staying in their prefecture), inter-provincial destinations over the
  prefectures of other provinces (pull = inter-provincial in-migrants, decay
  calibrated to the central-to-east share), pruned below 0.5% of a unit's
  migrants;
* the admission rate and the county-level base cost, solved so the national
  compensated admission rate and cost per compensated admission match the
  2011-12 aggregates over that care mix.

The model lives in instances/builders/ (calibration.py: the constants;
census.py: reading the table; national.py and migration.py: the national
model; coordinates.py and adjacency.py: seats and adjacency; cases.py: the
named cases; reports.py: what is printed), shared with
instances/build_tongliao.py (which builds tongliao.json from the same model,
with border adjacency). Adjacency here comes from seat coordinates (Delaunay
triangulation within each province, long edges dropped, each prefecture made
connected; units without coordinates attached to their prefecture's central
units).

Every constant is tagged S (sourced), D (derived from sourced data) or A
(assumed); instances/README.md gives sources and reasoning.

Usage (from the repository root):
    python instances/build.py --preset xinyang            # writes instances/xinyang.json
    python instances/build.py --all-presets               # every committed file except tongliao.json
    python instances/build.py --prefecture 411500 --name xinyang --out PATH
    python instances/build.py --province 410000 --name henan --out PATH
    python instances/build.py --all --name china --out PATH
    options: --census PATH, --uplift CODE=FACTOR (contribution uplift for this file only, assumed),
             --districts threshold|all|none

Standard library + numpy + scipy only. Deterministic: the same census file
gives byte-identical output files, written atomically.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import calibration as cal
from builders.adjacency import province_adjacency
from builders.cases import CONTRIBUTION_UPLIFT, NAMES, contract_options
from builders.census import (
    DEFAULT_CENSUS,
    INSTANCES_DIR,
    agri_hukou,
    dumps,
    fail,
    read_census,
    runs_fund,
    write_atomic,
)
from builders.coordinates import RECOVERED_COORDS, coords
from builders.national import assemble_counties, instance_parameters, instance_provenance, national_model
from builders.reports import calibration_report, case_report, summary

REQUIRED_COLUMNS = ["code", "name_zh", "level", "prefecture_code", "province_code", "lon", "lat",
                    "pop_resident_2010", "pop_registered_2010", "nonagri_hukou_pct_2010",
                    "age65plus_pct_2010", "inmigrants_other_county_same_province_2010",
                    "inmigrants_other_province_2010"]

PRESETS = {
    "xinyang": {"prefectures": ["411500"], "provinces": [], "all": False, "uplift": {},
                "description": "Xinyang prefecture, Henan (code 411500): 10 county-level NRCMS funds "
                               "incl. Gushi County (411525, ~40% of its registered population absent)"},
    "binzhou": {"prefectures": ["371600"], "provinces": [], "all": False, "uplift": {},
                "description": "Binzhou prefecture, Shandong (code 371600): 7 county-level NRCMS funds, set "
                               "up as a 'Z City' case: Zouping County (371626) is the rich county, with an "
                               "ASSUMED contribution 30% above the others"},
    "henan": {"prefectures": [], "provinces": ["410000"], "all": False, "uplift": {},
              "description": "Henan province (code 410000): every county-level NRCMS fund"},
    "china": {"prefectures": [], "provinces": [], "all": True, "uplift": {},
              "description": "All of China: every county-level NRCMS fund of the 2010 census table"},
}



# ---------------------------------------------------------------- build
def select(rows: list[dict], path: Path, prefectures, provinces, everything: bool, districts: str):
    fund_rows = [r for r in rows if runs_fund(r, path, districts)]
    if everything:
        chosen = fund_rows
    else:
        pset, vset = set(prefectures), set(provinces)
        known_p = {r["prefecture_code"] for r in rows}
        known_v = {r["province_code"] for r in rows}
        for p in sorted(pset - known_p):
            fail(f"{path}: no prefecture with code {p}")
        for v in sorted(vset - known_v):
            fail(f"{path}: no province with code {v}")
        chosen = [r for r in fund_rows if r["prefecture_code"] in pset or r["province_code"] in vset]
    if not chosen:
        fail("the selection contains no fund-running unit")
    return fund_rows, sorted(chosen, key=lambda r: r["code"])


def build(census_path: Path, name: str, description: str, prefectures=(), provinces=(),
          everything: bool = False, uplift: dict | None = None, districts: str = "threshold",
          model: dict | None = None):
    rows = read_census(census_path, REQUIRED_COLUMNS)
    uplift = dict(uplift or {})
    fund_rows, units = select(rows, census_path, prefectures, provinces, everything, districts)
    in_instance = {r["code"] for r in units}
    for code in sorted(uplift):
        if code not in in_instance:
            fail(f"--uplift: county {code} is not in the instance")
    for r in units:
        if agri_hukou(r, census_path) * cal.PARTICIPATION < 0.5:
            fail(f"{census_path}: county {r['code']}: no agricultural-hukou population")
    if model is None:
        model = national_model(rows, census_path, districts)

    # Adjacency per province over all fund-running units, restricted to the
    # instance (whole prefectures/provinces are selected, so induced subgraphs
    # are the same in every instance).
    by_prov = defaultdict(list)
    for r in fund_rows:
        by_prov[r["province_code"]].append(r)
    nbr = defaultdict(set)
    adj_stats = defaultdict(int)
    for prov in sorted({r["province_code"] for r in units}):
        edges, stats = province_adjacency(by_prov[prov], census_path)
        for k, v in stats.items():
            adj_stats[k] += v
        for a, b in edges:
            if a in in_instance and b in in_instance:
                nbr[a].add(b)
                nbr[b].add(a)

    uplift = {**CONTRIBUTION_UPLIFT, **uplift}
    counties, places = assemble_counties(model, sorted(in_instance), nbr, uplift, NAMES)
    options = contract_options(counties, places)
    instance = {
        "format": "pooling.instance/3",  # pooling.data.formats: the current instance format
        "name": name,
        "year": cal.YEAR,
        "currency": "CNY",
        "description": (
            f"{description}. Policy year 2012. Enrollees, ageing and migration from the 2010 census; "
            "financing per enrollee by province (2011, scaled to 2012); admissions and cost per admission "
            "from national NRCMS aggregates (2011-12); "
            "residents' care at own-county, prefecture-city and provincial hospitals; migrants placed "
            "by a gravity model; adjacency from seat coordinates (Delaunay); several parameters "
            "assumed. Built by instances/build.py; sources and assumptions: instances/README.md."
        ),
        "parameters": instance_parameters(model),
        "places": places,
        "counties": counties,
        "provenance": instance_provenance(counties, "instances/build.py", uplift),
    }
    if options:
        instance["contract_options"] = options
    info = dict(adj_stats)
    info["model"] = model
    info["instance_recovered"] = sum(1 for r in units if r["code"] in RECOVERED_COORDS)
    info["instance_missing"] = sum(1 for r in units if coords(r, census_path) is None)
    return instance, info



def parse_uplift(items) -> dict:
    out = {}
    for item in items or []:
        code, _, factor = item.partition("=")
        try:
            out[code.strip()] = float(factor)
        except ValueError:
            fail(f"--uplift expects CODE=FACTOR, got {item!r}")
        if not out[code.strip()] > 0:
            fail(f"--uplift factor must be > 0, got {item!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--census", type=Path, default=DEFAULT_CENSUS,
                    help="2010 census county table (default: ../shared/data/china_counties_census.csv)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="one committed instance")
    ap.add_argument("--all-presets", action="store_true", help="every committed instance of this builder")
    ap.add_argument("--prefecture", action="append", default=[], help="prefecture code (repeatable)")
    ap.add_argument("--province", action="append", default=[], help="province code (repeatable)")
    ap.add_argument("--all", action="store_true", help="every fund-running unit of China")
    ap.add_argument("--name", help="instance name (custom selections)")
    ap.add_argument("--uplift", action="append", help="CODE=FACTOR contribution uplift (assumed)")
    ap.add_argument("--districts", choices=["threshold", "all", "none"], default="threshold",
                    help="urban districts: agricultural-hukou share >= 32.5%% (default), all or none")
    ap.add_argument("--out", type=Path, help="output file (presets: instances/NAME.json); "
                                             "with --all-presets, an output directory")
    args = ap.parse_args(argv)

    jobs = []
    if args.all_presets or args.preset:
        if args.prefecture or args.province or args.all or args.uplift or args.name:
            fail("--preset/--all-presets take no selection options")
        names = sorted(PRESETS) if args.all_presets else [args.preset]
        outdir = args.out if (args.all_presets and args.out) else INSTANCES_DIR
        for nm in names:
            pr = PRESETS[nm]
            out = args.out if (args.preset and args.out) else outdir / f"{nm}.json"
            jobs.append((out, dict(name=nm, description=pr["description"], prefectures=pr["prefectures"],
                                   provinces=pr["provinces"], everything=pr["all"], uplift=pr["uplift"],
                                   districts=args.districts)))
    else:
        if not (args.prefecture or args.province or args.all):
            fail("give --preset, --all-presets, or a selection (--prefecture, --province, --all)")
        if not args.name or not args.out:
            fail("custom selections need --name and --out")
        sel = (["prefectures " + ",".join(args.prefecture)] if args.prefecture else []) + \
              (["provinces " + ",".join(args.province)] if args.province else [])
        desc = "All of China" if args.all else "County-level NRCMS funds of " + "; ".join(sel)
        jobs.append((args.out, dict(name=args.name, description=desc, prefectures=args.prefecture,
                                    provinces=args.province, everything=args.all,
                                    uplift=parse_uplift(args.uplift), districts=args.districts)))
    model = None
    for out, kw in jobs:
        instance, info = build(args.census, model=model, **kw)
        model = info["model"]
        write_atomic(out, dumps(instance))
        print(f"wrote {out}")
        print("  " + summary(instance, info))
    print("national calibration (the same for every file):")
    print(calibration_report(model))
    print(case_report(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
