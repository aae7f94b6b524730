"""The national model: every figure of a county's record, computed once from
the whole census table (never from a file's selection), so a county and the
places its enrollees use are the same in every file that holds it.

Places of care (own hospitals, `city:<prefecture>`, `province:<province>`,
`county:<code>`) priced by hospital level; residents' care-seeking; migrant
destinations (migration.py); the admission rate and county base cost solved
so the national claimed admission rate and cost per claimed admission match
the 2011-12 aggregates over that care mix. instances/README.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from builders import calibration as cal
from builders.cases import NAMES, PREFECTURE_NAMES, PROVINCE_NAMES
from builders.census import agri_hukou, net_absence, num, r6, runs_fund
from builders.migration import city_key, county_key, gravity_destinations, province_key


def national_model(rows: list[dict], path: Path, districts: str = "threshold") -> dict:
    """Places of care, care-seeking, gravity destinations and the national
    calibration (README: "Places of care, care-seeking and migration")."""
    n_rows = len(rows)
    code = [r["code"] for r in rows]
    pref = [r["prefecture_code"] for r in rows]
    prov = [r["province_code"] for r in rows]
    fund = [runs_fund(r, path, districts) for r in rows]
    fund_codes = {code[i] for i in range(n_rows) if fund[i]}
    enrollees = {code[i]: int(round(agri_hukou(rows[i], path) * cal.PARTICIPATION))
                 for i in range(n_rows) if fund[i]}
    mu = {code[i]: r6(net_absence(rows[i], path)) for i in range(n_rows) if fund[i]}
    origins = [i for i in range(n_rows) if fund[i]]
    gravity = gravity_destinations(rows, path, fund, enrollees, mu)
    destinations, cities = gravity["destinations"], gravity["cities"]

    # Approved-by sets (national: every fund unit of the prefecture / province).
    pref_funds, prov_funds = defaultdict(list), defaultdict(list)
    for i in origins:
        pref_funds[pref[i]].append(code[i])
        prov_funds[prov[i]].append(code[i])

    # ---- resident care (canonical: own id, city:<p>, province:<v>)
    resident = {}
    for i in origins:
        c = code[i]
        resident[c] = {c: cal.RESIDENT_CARE["own"], city_key(pref[i]): cal.RESIDENT_CARE["city"],
                       province_key(prov[i]): cal.RESIDENT_CARE["province"]}

    # ---- places: level, prefecture, province, approved_by (price set below)
    place_def = {}
    for ck in cities:
        p = ck[5:]
        place_def[ck] = {"level": "prefecture", "prefecture": p, "province": p[:2] + "0000",
                         "approved_by": sorted(pref_funds.get(p, []))}
    for v in sorted(set(prov)):
        place_def[province_key(v)] = {"level": "province", "prefecture": None, "province": v,
                                      "approved_by": sorted(prov_funds.get(v, []))}
    unit_row = {code[i]: i for i in range(n_rows)}
    for c in sorted(fund_codes):
        i = unit_row[c]
        place_def[county_key(c)] = {"level": "county", "prefecture": pref[i], "province": prov[i],
                                    "approved_by": [c]}

    def place_of(c, key):
        """(level, prefecture, province, approved_by) of a canonical key for county c."""
        if key == c:
            i = unit_row[c]
            return "county", pref[i], prov[i], [c]
        d = place_def[key]
        return d["level"], d["prefecture"], d["province"], d["approved_by"]

    def ratio(level, province):
        return cal.PRICE_RATIO[level] * cal.REGIONAL_PRICE_FACTOR.get(province, 1.0)

    def tier(i, prefecture, province):
        if prefecture is not None and prefecture == pref[i]:
            return "same_prefecture"
        if province is not None and province == prov[i]:
            return "same_province"
        return "other_province"

    # ---- calibration: status quo (every county its own pool), national fund units
    pop_all = sum(num(r, "pop_resident_2010", path) for r in rows)
    aged_nat = sum(num(r, "pop_resident_2010", path) * num(r, "age65plus_pct_2010", path)
                   for r in rows) / pop_all / 100.0
    k1 = cal.AGED_RELATIVE_ADMISSION - 1.0
    h = cal.PARAMS["migrant_admission_factor"]
    ageing = {}
    flows = {}
    for i in origins:
        c = code[i]
        aged = num(rows[i], "age65plus_pct_2010", path) / 100.0
        ageing[c] = (1.0 + k1 * aged) / (1.0 + k1 * aged_nat)
        out = []
        for who, share, table in (("resident", 1.0 - mu[c], resident[c]),
                                  ("migrant", mu[c] * h, destinations.get(c, {}))):
            for key, w in table.items():
                level, pp, pv, approved = place_of(c, key)
                in_net = bool(approved) and set(approved) <= {c}
                t = cal.OUT_OF_NETWORK_TIERS[tier(i, pp, pv)]
                q, phi = (1.0, 1.0) if in_net else (t["claim_share"], t["factor"])
                out.append((who, key, share * w, ratio(level, pv), q, phi, key != c))
        flows[c] = out

    def total(f):
        return math.fsum(enrollees[c] * ageing[c] * math.fsum(f(x) for x in flows[c]) for c in flows)
    n_all = math.fsum(enrollees.values())
    claimed = total(lambda x: x[2] * x[4]) / n_all                # per enrollee, at lambda_nat = 1
    claimed_cost = total(lambda x: x[2] * x[4] * x[3]) / n_all    # in units of m0
    eligible_cost = total(lambda x: x[2] * x[4] * x[5] * x[3]) / n_all   # claimed, at its factor
    spend_pc = cal.NAT_EXPENDITURE / cal.NAT_ENROLLEES
    paid_pc = spend_pc * cal.INPATIENT_SHARE
    claimed_rate = paid_pc / cal.BENEFIT_PER_ADMISSION              # D: compensated admissions/enrollee
    cost_per_claim = cal.BENEFIT_PER_ADMISSION / cal.EFFECTIVE_INPATIENT_REIMB
    lambda_nat = claimed_rate / claimed
    m0 = cost_per_claim * claimed / claimed_cost

    def price(level, province):
        return round(m0 * ratio(level, province), 2)

    places = {}
    for key, d in place_def.items():
        name = place_name(key, d, rows, unit_row)
        places[key] = {"id": key, "name": name, "level": d["level"], "prefecture": d["prefecture"],
                       "province": d["province"],
                       "severity": {"dist": "lognormal", "mean": price(d["level"], d["province"]),
                                    "cv": cal.SEVERITY_CV},
                       "approved_by": d["approved_by"]}
    counties = {}
    for i in origins:
        c = code[i]
        counties[c] = {
            "enrollees": enrollees[c],
            "admission_rate": r6(lambda_nat * ageing[c]),
            "severity": {"dist": "lognormal", "mean": price("county", prov[i]), "cv": cal.SEVERITY_CV},
            "resident_care": resident[c],
            "migrant_share": mu[c],
            "migrant_destinations": destinations.get(c, {}),
        }
    model = {
        "rows": rows, "unit_row": unit_row, "fund_codes": fund_codes, "counties": counties,
        "places": places, "flows": flows, "ageing": ageing, "enrollees": enrollees,
        "aged_nat": aged_nat, "lambda_nat": lambda_nat, "m0": m0,
        "claimed_rate": claimed_rate, "cost_per_claim": cost_per_claim,
        # D on S: the nominal rate at which the status quo (every county its own
        # fund) pays EFFECTIVE_INPATIENT_REIMB of the cost of claimed admissions,
        # the share the admissions were calibrated at: r0 of induced utilisation.
        "observed_rate": r6(cal.EFFECTIVE_INPATIENT_REIMB * claimed_cost / eligible_cost),
        "outpatient_pc": round(spend_pc * (1.0 - cal.INPATIENT_SHARE), 2),
        "outside_mean": price("prefecture", None),
        **{k: gravity[k] for k in ("beta_intra", "beta_inter", "inter_share_other", "f_central",
                                   "own_prefecture_share", "central_east_share", "inter_share",
                                   "gravity_only")},
    }
    return model




def place_name(key: str, d: dict, rows: list[dict], unit_row: dict) -> str:
    kind, _, ref = key.partition(":")
    if kind == "county":
        zh = rows[unit_row[ref]]["name_zh"]
        return f"{NAMES.get(ref, zh)} hospitals"
    if kind == "province":
        return f"{PROVINCE_NAMES.get(ref, ref)} provincial hospitals"
    prov = PROVINCE_NAMES.get(d["province"], d["province"])
    if ref in PREFECTURE_NAMES:
        return f"{PREFECTURE_NAMES[ref]} city hospitals ({prov})"
    return f"City hospitals of prefecture {ref} ({prov})"


def instance_parameters(model: dict) -> dict:
    """The instance-wide parameters (the same in every file)."""
    return {
        "admin_fixed_per_fund": cal.ADMIN_FIXED_PER_FUND,
        "admin_financing": cal.ADMIN_FINANCING,
        "out_of_network_factor": cal.PARAMS["out_of_network_factor"],
        "out_of_network_claim_share": cal.PARAMS["out_of_network_claim_share"],
        "out_of_network_tiers": {k: dict(v) for k, v in cal.OUT_OF_NETWORK_TIERS.items()},
        "migrant_admission_factor": cal.PARAMS["migrant_admission_factor"],
        "outside_severity": {"dist": "lognormal", "mean": model["outside_mean"], "cv": cal.SEVERITY_CV},
        "frequency_shock_cv": cal.PARAMS["frequency_shock_cv"],
        "regional_shocks": {k: dict(v) for k, v in cal.REGIONAL_SHOCKS.items()},
        "utilisation_elasticity": cal.UTILISATION_ELASTICITY,
        "observed_rate": model["observed_rate"],
    }


def assemble_counties(model: dict, ids: list[str], adjacency: dict, uplift: dict,
                      names: dict) -> tuple[list[dict], list[dict]]:
    """The county records of the units `ids` and the places they reference.
    A key county:<k> becomes k when k is in the file."""
    in_file = set(ids)
    rows, unit_row = model["rows"], model["unit_row"]

    def local(key):
        if key.startswith("county:") and key[7:] in in_file:
            return key[7:]
        return key
    counties, referenced = [], set()
    for cid in sorted(ids):
        r = rows[unit_row[cid]]
        m = model["counties"][cid]
        base, _label = cal.province_contribution(r["province_code"])
        contribution = round(base * uplift.get(cid, 1.0), 2)
        care = {local(k): w for k, w in m["resident_care"].items()}
        dest = {local(k): w for k, w in m["migrant_destinations"].items()}
        referenced |= {k for k in list(care) + list(dest) if k not in in_file}
        # One convention in every file: `name` is the census's Chinese name and
        # `name_en` the romanised name, where cases.NAMES has one.
        record = {"id": cid, "name": r["name_zh"]}
        if cid in names:
            record["name_en"] = names[cid]
        counties.append({
            **record,
            "prefecture": r["prefecture_code"],
            "province": r["province_code"],
            "enrollees": m["enrollees"],
            "contribution_per_capita": contribution,
            "reserves": round(cal.RESERVE_RATIO * m["enrollees"] * contribution, 2),
            "admin_per_capita": cal.ADMIN_PER_CAPITA,
            "outpatient_per_capita": model["outpatient_pc"],
            "admission_rate": m["admission_rate"],
            "severity": dict(m["severity"]),
            "resident_care": dict(sorted(care.items())),
            "migrant_share": m["migrant_share"],
            "migrant_destinations": dict(sorted(dest.items())),
            "adjacent": sorted(adjacency.get(cid, ())),
        })
    places = [model["places"][k] for k in sorted(referenced)]
    return counties, places


DATA_REVISION = ("2026-12-06 (issue 25): contribution_per_capita by province; induced utilisation "
                 "(utilisation_elasticity -0.407, S; observed_rate 0.609015, D)")
"""What changed last in the bundled data (CHANGELOG.md); every builder writes it."""


def instance_provenance(counties: list[dict], builder: str, uplift: dict) -> dict:
    """The file's `provenance` (never read by the model): the builder, the data
    revision and where each province's contribution_per_capita comes from (S:
    its 2011 figure; A: the national one stands in), both scaled to the policy
    year by the national series; a county's figure is its province's times its
    `uplift` (assumed) where the file sets one."""
    provinces = sorted({c["province"] for c in counties})
    rows = {}
    for province in provinces:
        value, label = cal.province_contribution(province)
        figure = cal.CONTRIBUTION_2011.get(province, cal.NATIONAL_CONTRIBUTION_2011)
        rows[province] = {"label": label, "2011": figure, str(cal.YEAR): value}
    return {
        "builder": builder,
        "data_revision": DATA_REVISION,
        "contribution_per_capita": {
            "source": cal.CONTRIBUTION_2011_SOURCE,
            "scaled_by": (f"{cal.CONTRIBUTION} / {cal.NATIONAL_CONTRIBUTION_2011} = "
                          f"{cal.CONTRIBUTION_SCALE:.4f}: national financing per enrollee {cal.YEAR} "
                          "over 2011"),
            "labels": {"S": "the province's 2011 figure, from the source",
                       "A": cal.CONTRIBUTION_2011_FALLBACK_REASON},
            "provinces": rows,
            "uplift": {cid: factor for cid, factor in sorted(uplift.items())
                       if cid in {c["id"] for c in counties}},
            "uplift_label": "A: a county top-up over its province's figure (instances/README.md)",
        },
    }
