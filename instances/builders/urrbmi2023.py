#!/usr/bin/env python3
"""Build the 2020s instances china2023.json and henan2023.json (issue 27, item 3).

Urban and rural residents' basic medical insurance (URRBMI, the NRCMS merged with
the urban residents' scheme) pooled by prefecture, as most of it is today. Each
unit of these files is a PREFECTURE fund, built by aggregating the county model
of instances/build.py (`national_model`: enrollees, ageing, care-seeking,
gravity migrant destinations) over the prefecture's counties, and rescaled to
the sourced 2023 national totals (NHSA statistical bulletin 2023): 962.94 M
enrollees, fund income CNY 1,056.97 bn, spending 1,045.77 bn, accumulated
balance 766.37 bn, admission rate 20.7 %, CNY 7,674 per admission; hospital
levels' costs (2021) and fund shares (2023); cross-province direct settlement.

Sub-national figures are not published: every unit's figures are the county
model's shape at national scale, so the files are hypothetical designs on
rescaled data (instances/README.md, "The 2020s files").

Aggregation, exactly in expectation (migrant_admission_factor h = 1): a
prefecture's enrollees are its counties' sum; its admission rate their
enrollee-weighted mean; its residents' care is its counties' residents' care
plus their migrants who live inside the prefecture (they are residents of the
prefecture fund); its migrants are those living elsewhere. Places: the unit's
own hospitals (the county level, one price per province), `city:<p>`
(approved by the unit of p), `province:<v>` (approved by every unit of v). The
four municipalities' county "prefectures" join their core (one unit each).

Every constant is tagged S (sourced), D (derived from sourced data) or A
(assumed); the instance's `provenance.sources` repeats them with titles.

Usage (from the repository root):
    python instances/builders/urrbmi2023.py --all-presets
    python instances/builders/urrbmi2023.py --preset henan2023 [--out PATH] [--census PATH]
    python instances/builders/urrbmi2023.py --province 410000 [--province ...] --name NAME --out PATH
Deterministic: the same census file gives byte-identical files, written atomically.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from builders import calibration as cal
from builders.adjacency import province_adjacency
from builders.cases import PREFECTURE_NAMES, PROVINCE_NAMES
from builders.census import DEFAULT_CENSUS, INSTANCES_DIR, dumps, fail, read_census, write_atomic
from builders.migration import integer_weights
from builders.national import national_model

YEAR = 2023
REQUIRED_COLUMNS = ["code", "name_zh", "level", "prefecture_code", "province_code", "lon", "lat",
                    "pop_resident_2010", "pop_registered_2010", "nonagri_hukou_pct_2010",
                    "age65plus_pct_2010", "inmigrants_other_county_same_province_2010",
                    "inmigrants_other_province_2010"]

# ---------------------------------------------------------------- 2023 national totals (S)
# NHSA, 2023 National Healthcare Security Statistical Bulletin (official, via press and mirror
# reproductions; CALIBRATION.md "The 2020s: URRBMI").
ENROLLEES = 962.94e6                      # S
FUND_INCOME = 1056.971e9                  # S: 10,569.71 yi CNY
FUND_SPENDING = 1045.765e9                # S: 10,457.65 yi CNY
FUND_BALANCE = 766.370e9                  # S: 7,663.70 yi CNY (NHSA: 8.5 months of spending)
ADMISSION_RATE = 0.207                    # S: admissions paid by the fund per enrollee
COST_PER_ADMISSION = 7674.0               # S: CNY per admission (all costs of the admission)
POLICY_FUND_SHARE = 0.681                 # S: policy-scope fund share of inpatient cost, 2023
LEVEL_FUND_SHARE = {"tertiary": 0.632, "secondary": 0.724, "primary": 0.808}          # S, 2023
LEVEL_COST_2021 = {"primary": 3623.0, "secondary": 6626.0, "tertiary": 13942.0}       # S, 2021 (CNY)
DIRECT_SETTLED_2020 = 0.586               # S: share of inter-provincial hospital expenses settled
                                          #   directly, July 2020 (NHSA via Chen 2023)
CROSS_PROVINCE_SETTLEMENTS_2023 = 11.25e6  # S: inpatient cross-province direct settlements, all schemes
CROSS_PROVINCE_FUND_PAID_2023 = 135.17e9   # S: CNY, fund paid on them
ANHUI_CROSS_PROVINCE_REIMBURSED = 0.510   # S: Anhui cross-province inpatients 2020, actually reimbursed
                                          #   (Song et al., Front Public Health 2023)

# ---------------------------------------------------------------- assumptions (A) and derived (D)
EFFECTIVE_FUND_SHARE = 0.58               # A: actual (effective) inpatient fund share; not published,
                                          #   CALIBRATION.md "about 55-60 %"; 68.1 % policy-scope less
                                          #   out-of-scope items
DIRECT_SETTLED_2023 = 0.70                # A: the 2025 target (>= 70 %, unverified); settlements
                                          #   doubled 2022-23 (S) from 58.6 % settled in 2020 (S)
UNSETTLED_CLAIMED = 0.5                   # A: as 2012/2020 rules: half of the rest is claimed at home
# Hospital levels of the model's places (A): a county's own hospitals are township centres
# (primary) and county hospitals (secondary), half each; a prefecture city's secondary and
# tertiary, half each; provincial hospitals tertiary.
LEVEL_MIX = {"county": {"primary": 0.5, "secondary": 0.5},
             "prefecture": {"secondary": 0.5, "tertiary": 0.5},
             "province": {"tertiary": 1.0}}
COST_PER_ADMISSION_2021 = 8023.0          # S: NHSA 2021
# Price of one admission by the model's level: the levels' 2021 costs, mixed (A), times the national
# change in cost per admission 2021-23, 7,674 / 8,023 (D). The residents' out-of-county share is then
# solved so the national cost per claimed admission is 7,674 (the 2012 split 80 / 14 / 6 gives less).
LEVEL_PRICE = {k: round(math.fsum(w * LEVEL_COST_2021[h] for h, w in mix.items())
                        * COST_PER_ADMISSION / COST_PER_ADMISSION_2021, 2) for k, mix in LEVEL_MIX.items()}  # D
CITY_SHARE_OF_OUT = 0.7                   # A: residents' care out of county, city : province = 14 : 6 (2012)
LEVEL_POLICY_SHARE = {k: math.fsum(w * LEVEL_FUND_SHARE[h] for h, w in mix.items())
                      for k, mix in LEVEL_MIX.items()}                                # D (on A mixes)
# Out of network, by tier. Within the prefecture nothing is: a prefecture fund approves its own
# hospitals and its city's. Within the province (provincial hospitals without a provincial pool):
# claimed 0.95 (the 2020 rule, A), eligible factor = tertiary over all fund share 63.2 / 68.1 (D).
# Across provinces: claimed 0.70 + 0.30 x 0.5 = 0.85 (D on A); eligible factor = Anhui's 51.0 %
# actually reimbursed over the assumed 58 % effective share (D on A).
OUT_OF_NETWORK_TIERS = {
    "same_prefecture": {"claim_share": 1.0, "factor": 0.85},                                   # A (unused)
    "same_province": {"claim_share": 0.95,
                      "factor": round(LEVEL_FUND_SHARE["tertiary"] / POLICY_FUND_SHARE, 4)},   # A / D
    "other_province": {"claim_share": round(DIRECT_SETTLED_2023 + (1.0 - DIRECT_SETTLED_2023)
                                            * UNSETTLED_CLAIMED, 4),                           # D on A
                       "factor": round(ANHUI_CROSS_PROVINCE_REIMBURSED / EFFECTIVE_FUND_SHARE, 4)},  # D on A
}
SHOCK_CV_DECIMALS = 4
# Induced utilisation: admissions' elasticity w.r.t. the out-of-pocket price, -0.407 (S: Liu, Peng &
# Xiang, J Popul Econ 38(2) 2025, NCMS claims, difference in differences on a cost-sharing cut),
# applied to 2023's URRBMI (A: the NCMS is the URRBMI's rural half since the 2016-19 merger and no
# URRBMI estimate was found; CHARLS around the merger gives -0.62 to -0.68, so -0.407 is the milder
# response). r0 is each unit's current_rate (the rate its admissions are observed at).
UTILISATION_ELASTICITY = -0.407                                                                    # S, applied A

PRESETS = {
    "china2023": {"provinces": [], "all": True,
                  "description": "All of China: URRBMI funds pooled by prefecture (337 units; the four "
                                 "municipalities one unit each)"},
    "henan2023": {"provinces": ["410000"], "all": False,
                  "description": "Henan province (code 410000): URRBMI funds pooled by prefecture"},
}
SOURCES = {
    "enrollees": "S: NHSA 2023 statistical bulletin, URRBMI 962.94 M enrollees; shared over prefectures "
                 "by the county model's 2010 agricultural-hukou enrollees (A: no prefecture figures published)",
    "contribution_per_capita": "D: fund income CNY 1,056.97 bn / 962.94 M (NHSA 2023 bulletin); uniform (A); "
                               "financing standard 640 + 380 = 1,020 CNY (2024 notice, S) plus other income",
    "reserves": "D: accumulated balance CNY 766.37 bn (NHSA 2023 bulletin) shared in proportion to revenue (A)",
    "admission_rate": "D: scaled so the claimed admissions of every prefecture fund alone are 20.7 % of "
                      "enrollees (S: NHSA 2023 bulletin); ageing (65+, census 2010) as in the county model",
    "severity": "D: county / prefecture / province hospitals {0[county]:,.2f} / {0[prefecture]:,.2f} / "
                "{0[province]:,.2f} CNY: the levels' 2021 costs per admission (primary 3,623, secondary 6,626, "
                "tertiary 13,942, S: NHSA 2021 via secondary) mixed half primary / half secondary, half "
                "secondary / half tertiary, tertiary (A), times 7,674 / 8,023 (D: national cost per admission "
                "2023 / 2021, S); Beijing x {2:.4f} (D, as 2012); cv 1.0 (A). Residents' care out of county "
                "{1:.2%} (D: solved so the cost per claimed admission is CNY 7,674, S)",
    "outpatient_per_capita": "D: spending CNY 1,045.77 bn / 962.94 M (S) less inpatient fund payments at "
                             "the assumed 58 % effective fund share (A; 68.1 % policy-scope, S)",
    "current_rate": "D on A: the rate at which the fund pays 58 % of the cost of claimed admissions",
    "resident_care": "D on A: residents' care out of county solved for the cost per admission (severity), "
                     "city : province 70 : 30 (A, the 2012 split 14 : 6), plus the migrants who live inside "
                     "their own prefecture (county model)",
    "migrant_share": "D: the county model's net absence (census 2010) less moves inside the prefecture",
    "out_of_network_tiers": "same_province factor D: tertiary 63.2 % / all 68.1 % policy-scope fund share "
                            "(NHSA 2023); claimed 0.95 A. other_province claimed D: 70 % settled directly "
                            "(A; 58.6 % in 2020, S; 11.25 M settlements in 2023, +98 %, S) + half the rest; "
                            "factor D: Anhui cross-province inpatients 51.0 % reimbursed (Song et al. 2023, "
                            "S) / 58 % (A)",
    "regional_shocks": "A: the county model's weights; the unit part's cv is the county cv 0.16 x the "
                       "square root of the enrollee-weighted mean Herfindahl index of a prefecture's counties "
                       "(D: independent county shocks averaged)",
    "admin": "A: as 2012 (agencies' running costs from government budgets; not charged to the fund)",
    "utilisation_elasticity": "S applied A: -0.407, admissions w.r.t. the out-of-pocket price on NCMS claims "
                              "(Liu, Peng & Xiang, J Popul Econ 38(2) 2025, doi:10.1007/s00148-025-01088-1); "
                              "applied to 2023's URRBMI, whose rural half the NCMS became (A: no URRBMI estimate "
                              "found; -0.62 to -0.68 around the merger, CHARLS, S); r0 = current_rate",
}


def unit_of(prefecture: str) -> str:
    """The prefecture fund a census prefecture belongs to (municipal county prefectures join the core)."""
    return cal.CITY_OF_PREFECTURE.get(prefecture, prefecture)


def unit_name(unit: str) -> str:
    province = PROVINCE_NAMES.get(unit[:2] + "0000", unit[:2] + "0000")
    if unit in PREFECTURE_NAMES:
        return f"{PREFECTURE_NAMES[unit]} prefecture fund ({province})"
    return f"Prefecture {unit} fund ({province})"


def unit_model(model: dict) -> dict:
    """Aggregate the county model to prefecture funds and calibrate to 2023 (module docstring)."""
    rows, unit_row, counties = model["rows"], model["unit_row"], model["counties"]
    members = defaultdict(list)
    for c in sorted(counties):
        members[unit_of(rows[unit_row[c]]["prefecture_code"])].append(c)
    units = sorted(members)
    province = {u: u[:2] + "0000" for u in units}
    prov_units = defaultdict(list)
    for u in units:
        prov_units[province[u]].append(u)

    def target(c: str, key: str) -> str:
        """A county model's place key as a unit-level key."""
        if key == c or key.startswith("county:"):
            code = c if key == c else key[7:]
            return unit_of(rows[unit_row[code]]["prefecture_code"])
        return key

    # Places at unit level: (level, prefecture, province, approved_by).
    places = {}
    for key, p in model["places"].items():
        if key.startswith("city:"):
            pref = key[5:]
            approved = [pref] if pref in members else []
            places[key] = ("prefecture", pref, p["province"], approved)
        elif key.startswith("province:"):
            places[key] = ("province", None, p["province"], list(prov_units.get(p["province"], [])))

    def place_of(key: str):
        if key in members:
            return "county", key, province[key], [key]
        return places[key]

    def unit_flows(share_out: float) -> dict:
        """Per unit: resident and migrant admissions by unit-level key (2012 admission rates), with
        residents' care out of their county at `share_out` (city : province as in the county model)."""
        split = {"own": 1.0 - share_out, "city": share_out * CITY_SHARE_OF_OUT,
                 "province": share_out * (1.0 - CITY_SHARE_OF_OUT)}
        out = {}
        for u in units:
            resident, migrant = defaultdict(float), defaultdict(float)
            for c in members[u]:
                lam_n = model["enrollees"][c] * counties[c]["admission_rate"]
                mu = counties[c]["migrant_share"]
                for key in counties[c]["resident_care"]:
                    part = "own" if key == c else key.partition(":")[0]
                    resident[target(c, key)] += lam_n * (1.0 - mu) * split[part]
                for key, w in counties[c]["migrant_destinations"].items():
                    k = target(c, key)
                    home = k == u or (k in places and places[k][0] == "prefecture" and places[k][3] == [u])
                    (resident if home else migrant)[k] += lam_n * mu * w
            out[u] = (resident, migrant)
        return out

    def terms(u: str, key: str) -> tuple[float, float]:
        """(claimed share, eligible factor) of care at `key` for unit u alone."""
        _, pp, pv, approved = place_of(key)
        if approved and set(approved) <= {u}:
            return 1.0, 1.0
        tier = ("same_prefecture" if pp == u else "same_province" if pv == province[u] else "other_province")
        t = OUT_OF_NETWORK_TIERS[tier]
        return t["claim_share"], t["factor"]

    def price(key: str) -> float:
        level, _, pv, _ = place_of(key)
        return round(LEVEL_PRICE[level] * cal.REGIONAL_PRICE_FACTOR.get(pv, 1.0), 2)

    def totals(fl: dict) -> tuple[float, float, float]:
        """Claimed admissions, their cost and their eligible cost, every prefecture fund alone."""
        items = [(u, k, a) for u in units for part in fl[u] for k, a in part.items()]
        return (math.fsum(a * terms(u, k)[0] for u, k, a in items),
                math.fsum(a * terms(u, k)[0] * price(k) for u, k, a in items),
                math.fsum(a * math.prod(terms(u, k)) * price(k) for u, k, a in items))

    # Calibration on the status quo (every prefecture fund alone). Claims and costs are linear in
    # the residents' out-of-county share: solve it for the sourced cost per claimed admission.
    (a0, c0, _), (a1, c1, _) = totals(unit_flows(0.0)), totals(unit_flows(1.0))
    share_out = (COST_PER_ADMISSION * a0 - c0) / ((c1 - c0) - COST_PER_ADMISSION * (a1 - a0))
    if not 0.0 <= share_out <= 1.0:
        fail(f"no residents' out-of-county share gives CNY {COST_PER_ADMISSION} per admission ({share_out})")
    share_out = round(share_out, 4)
    a12, c12, _ = totals(unit_flows(1.0 - cal.RESIDENT_CARE["own"]))
    fl = unit_flows(share_out)
    n_all = math.fsum(model["enrollees"][c] for c in counties)
    claimed, claimed_cost, eligible_cost = (x / n_all for x in totals(fl))
    scale = ADMISSION_RATE / claimed
    records = {}
    for u in units:
        resident, migrant = fl[u]
        res_total, mig_total = math.fsum(resident.values()), math.fsum(migrant.values())
        n = math.fsum(model["enrollees"][c] for c in members[u])
        records[u] = {"enrollees_2012": n, "admissions_2012": res_total + mig_total,
                      "herfindahl": math.fsum((model["enrollees"][c] / n) ** 2 for c in members[u]),
                      "resident": {k: v / res_total for k, v in resident.items()},
                      "migrant": {k: v / mig_total for k, v in migrant.items()} if mig_total > 0 else {},
                      "migrant_share": mig_total / (res_total + mig_total)}
    current_rate = EFFECTIVE_FUND_SHARE * claimed_cost / eligible_cost
    inpatient_pc = current_rate * eligible_cost * scale
    spending_pc = FUND_SPENDING / ENROLLEES
    h_mean = math.fsum(r["herfindahl"] * r["enrollees_2012"] for r in records.values()) / n_all
    county_shock = cal.REGIONAL_SHOCKS["county"]
    return {
        "units": units, "members": members, "records": records, "places": places, "province": province,
        "scale": scale, "share_out": share_out, "current_rate": round(current_rate, 6),
        "contribution": round(FUND_INCOME / ENROLLEES, 2),
        "outpatient": round(spending_pc - inpatient_pc, 2),
        "reserve_ratio": FUND_BALANCE / FUND_INCOME,
        "unit_shock_cv": round(county_shock["cv"] * math.sqrt(h_mean), SHOCK_CV_DECIMALS),
        "herfindahl_mean": h_mean, "price": price, "cost_at_2012_split": c12 / a12,
    }


def apportion(total: int, weights: dict) -> dict:
    """Integers proportional to `weights` summing exactly to `total` (largest remainders, ties by key)."""
    s = math.fsum(weights.values())
    exact = {k: total * w / s for k, w in weights.items()}
    out = {k: int(math.floor(v)) for k, v in exact.items()}
    rest = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[:rest]:
        out[k] += 1
    return out


def build(census_path: Path, name: str, description: str, provinces=(), everything: bool = False,
          county_model: dict | None = None, units_model: dict | None = None):
    rows = read_census(census_path, REQUIRED_COLUMNS)
    if county_model is None:
        county_model = national_model(rows, census_path)
    um = units_model or unit_model(county_model)
    known = {r["province_code"] for r in rows}
    for v in sorted(set(provinces) - known):
        fail(f"{census_path}: no province with code {v}")
    chosen = [u for u in um["units"] if everything or um["province"][u] in set(provinces)]
    if not chosen:
        fail("the selection contains no prefecture fund")
    in_file = set(chosen)
    enrollees = apportion(int(round(ENROLLEES)), {u: um["records"][u]["enrollees_2012"] for u in um["units"]})

    # Adjacency: two prefecture funds border when two of their counties do (Delaunay within provinces).
    unit_row, rows_by_prov = county_model["unit_row"], defaultdict(list)
    for c in county_model["counties"]:
        rows_by_prov[rows[unit_row[c]]["province_code"]].append(rows[unit_row[c]])
    nbr = defaultdict(set)
    for v in sorted({um["province"][u] for u in chosen}):
        edges, _ = province_adjacency(sorted(rows_by_prov[v], key=lambda r: r["code"]), census_path)
        for a, b in edges:
            ua, ub = unit_of(rows[unit_row[a]]["prefecture_code"]), unit_of(rows[unit_row[b]]["prefecture_code"])
            if ua != ub and ua in in_file and ub in in_file:
                nbr[ua].add(ub)
                nbr[ub].add(ua)

    counties, referenced = [], set()
    for u in chosen:
        rec = um["records"][u]
        n = enrollees[u]
        revenue = n * um["contribution"]
        for key in list(rec["resident"]) + list(rec["migrant"]):
            if key not in um["places"] and key not in in_file:
                fail(f"unit {u}: destination {key} is outside the selection (select whole provinces)")
            if key in um["places"]:
                referenced.add(key)
        counties.append({
            "id": u, "name": unit_name(u), "prefecture": u, "province": um["province"][u],
            "enrollees": n,
            "contribution_per_capita": um["contribution"],
            "reserves": round(um["reserve_ratio"] * revenue, 2),
            "admin_per_capita": cal.ADMIN_PER_CAPITA,
            "outpatient_per_capita": um["outpatient"],
            "admission_rate": round(um["scale"] * rec["admissions_2012"] / rec["enrollees_2012"], 6),
            "severity": {"dist": "lognormal", "mean": um["price"](u), "cv": cal.SEVERITY_CV},
            "resident_care": integer_weights(rec["resident"]),
            "migrant_share": round(rec["migrant_share"], 6),
            "migrant_destinations": integer_weights(rec["migrant"]) if rec["migrant"] else {},
            "adjacent": sorted(nbr.get(u, ())),
            "current_rate": um["current_rate"],
        })
    places = []
    for key in sorted(referenced):
        level, pref, prov, approved = um["places"][key]
        label = (f"{PREFECTURE_NAMES.get(pref, 'Prefecture ' + pref)} city hospitals "
                 f"({PROVINCE_NAMES.get(prov, prov)})" if level == "prefecture"
                 else f"{PROVINCE_NAMES.get(prov, prov)} provincial hospitals")
        places.append({"id": key, "name": label, "level": level, "prefecture": pref, "province": prov,
                       "severity": {"dist": "lognormal", "mean": um["price"](key), "cv": cal.SEVERITY_CV},
                       "approved_by": approved})
    other = OUT_OF_NETWORK_TIERS["other_province"]
    instance = {
        "format": "pooling.instance/3",
        "name": name,
        "year": YEAR,
        "currency": "CNY",
        "description": (
            f"{description}. Policy year 2023, URRBMI. HYPOTHETICAL DESIGN ON RESCALED DATA: no sub-national "
            "URRBMI figures are published, so the county model of instances/build.py (census 2010) is "
            "aggregated to prefecture funds and rescaled to the 2023 national totals (NHSA bulletin). "
            "Built by instances/builders/urrbmi2023.py; sources: provenance.sources and instances/README.md."
        ),
        "parameters": {
            "admin_fixed_per_fund": cal.ADMIN_FIXED_PER_FUND,
            "admin_financing": cal.ADMIN_FINANCING,
            "out_of_network_factor": other["factor"],
            "out_of_network_claim_share": other["claim_share"],
            "out_of_network_tiers": {k: dict(v) for k, v in OUT_OF_NETWORK_TIERS.items()},
            "migrant_admission_factor": cal.PARAMS["migrant_admission_factor"],
            "utilisation_elasticity": UTILISATION_ELASTICITY,
            "outside_severity": {"dist": "lognormal", "mean": LEVEL_PRICE["prefecture"],
                                 "cv": cal.SEVERITY_CV},
            "frequency_shock_cv": cal.PARAMS["frequency_shock_cv"],
            "regional_shocks": {"prefecture": dict(cal.REGIONAL_SHOCKS["prefecture"]),
                                "county": {"weight": cal.REGIONAL_SHOCKS["county"]["weight"],
                                           "cv": um["unit_shock_cv"]}},
        },
        "places": places,
        "counties": counties,
        "provenance": {"sources": {**SOURCES, "severity": SOURCES["severity"].format(
            LEVEL_PRICE, um["share_out"], cal.REGIONAL_PRICE_FACTOR["110000"])}},
    }
    return instance, county_model, um


def status_quo_figures(instance: dict) -> dict:
    """National figures of a file by the model's definitions, every unit its own pool: claimed
    admissions (in network, or out of network times the tier's claim share), their cost at the
    places' severity means, the fund's payments at `current_rate` (out of network times the
    tier's factor) plus outpatient, and the same split by hospital level and for care in
    other provinces. stdout and tests; the model (pooling.economics.care) defines the flows."""
    places = {p["id"]: p for p in instance["places"]}
    units = {c["id"]: c for c in instance["counties"]}
    tiers = instance["parameters"]["out_of_network_tiers"]
    claims = cost = paid = 0.0
    by_level, cross = defaultdict(lambda: [0.0, 0.0]), [0.0, 0.0]
    for c in instance["counties"]:
        lam_n = c["enrollees"] * c["admission_rate"]
        parts = [(k, lam_n * (1 - c["migrant_share"]) * w) for k, w in c["resident_care"].items()] + \
                [(k, lam_n * c["migrant_share"] * w) for k, w in c["migrant_destinations"].items()]
        for key, adm in parts:
            where = places.get(key) or {**units[key], "level": "county", "approved_by": [key]}
            if where["approved_by"] and set(where["approved_by"]) <= {c["id"]}:
                q, phi = 1.0, 1.0
            else:
                tier = ("same_prefecture" if where["prefecture"] == c["prefecture"] else
                        "same_province" if where["province"] == c["province"] else "other_province")
                q, phi = tiers[tier]["claim_share"], tiers[tier]["factor"]
            mean = where["severity"]["mean"]
            claims += adm * q
            cost += adm * q * mean
            paid += adm * q * phi * mean * c["current_rate"]
            by_level[where["level"]][0] += adm * q
            by_level[where["level"]][1] += adm * q * mean
            if where["province"] != c["province"]:
                cross[0] += adm * q
                cross[1] += adm * q * phi * mean * c["current_rate"]
    n = sum(c["enrollees"] for c in instance["counties"])
    outpatient = math.fsum(c["enrollees"] * c["outpatient_per_capita"] for c in instance["counties"])
    return {"enrollees": n,
            "income": math.fsum(c["enrollees"] * c["contribution_per_capita"] for c in instance["counties"]),
            "balance": math.fsum(c["reserves"] for c in instance["counties"]),
            "admission_rate": claims / n, "cost_per_admission": cost / claims,
            "spending": paid + outpatient, "inpatient_paid": paid, "effective_share": paid / cost,
            "level_admissions": {k: v[0] / claims for k, v in sorted(by_level.items())},
            "level_cost": {k: v[1] / cost for k, v in sorted(by_level.items())},
            "cross_province_admissions": cross[0], "cross_province_paid": cross[1]}


def report(instance: dict, um: dict) -> str:
    """The file's totals by the model's definitions (stdout only)."""
    f = status_quo_figures(instance)
    policy = math.fsum(f["level_cost"][k] * LEVEL_POLICY_SHARE[k] for k in f["level_cost"])
    return "\n".join([
        f"  units {len(instance['counties'])}, places {len(instance['places'])}, enrollees {f['enrollees']:,}, "
        f"income {f['income'] / 1e9:,.2f} bn, spending {f['spending'] / 1e9:,.2f} bn, balance "
        f"{f['balance'] / 1e9:,.2f} bn; claimed admissions {f['admission_rate']:.4%} of enrollees at "
        f"CNY {f['cost_per_admission']:,.2f}; fund pays {f['effective_share']:.2%} of their cost",
        f"  admission scale {um['scale']:.5f} x 2012; residents out of county {um['share_out']} "
        f"(at 2012's {1.0 - cal.RESIDENT_CARE['own']:.2f}: CNY {um['cost_at_2012_split']:,.2f} per admission); "
        "level prices "
        + ", ".join(f"{k} {v:,.2f}" for k, v in LEVEL_PRICE.items()),
        "  claimed admissions by level " + ", ".join(f"{k} {v:.2%}" for k, v in f["level_admissions"].items())
        + "; cost by level " + ", ".join(f"{k} {v:.2%}" for k, v in f["level_cost"].items())
        + f"; policy-scope fund share on this mix {policy:.2%} (S: 68.1 %)",
        f"  current_rate {um['current_rate']}; outpatient_per_capita {um['outpatient']} "
        f"({f['enrollees'] * um['outpatient'] / f['spending']:.1%} of spending); contribution {um['contribution']}; "
        f"reserves {um['reserve_ratio']:.4f} x revenue; unit shock cv {um['unit_shock_cv']} "
        f"(mean Herfindahl {um['herfindahl_mean']:.4f})",
        f"  care in other provinces: {f['cross_province_admissions'] / 1e6:,.2f} M claimed admissions, fund paid "
        f"CNY {f['cross_province_paid'] / 1e9:,.2f} bn "
        f"({f['cross_province_paid'] / max(f['cross_province_admissions'], 1.0):,.0f} per admission); "
        f"2023 direct settlements, all schemes: {CROSS_PROVINCE_SETTLEMENTS_2023 / 1e6:.2f} M, "
        f"CNY {CROSS_PROVINCE_FUND_PAID_2023 / 1e9:.2f} bn "
        f"({CROSS_PROVINCE_FUND_PAID_2023 / CROSS_PROVINCE_SETTLEMENTS_2023:,.0f} per settlement)"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--census", type=Path, default=DEFAULT_CENSUS,
                    help="2010 census county table (default: ../shared/data/china_counties_census.csv)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="one committed instance")
    ap.add_argument("--all-presets", action="store_true", help="china2023.json and henan2023.json")
    ap.add_argument("--province", action="append", default=[], help="province code (repeatable)")
    ap.add_argument("--name", help="instance name (custom selections)")
    ap.add_argument("--out", type=Path, help="output file (presets: instances/NAME.json); "
                                             "with --all-presets, an output directory")
    args = ap.parse_args(argv)
    jobs = []
    if args.all_presets or args.preset:
        if args.province or args.name:
            fail("--preset/--all-presets take no selection options")
        names = sorted(PRESETS) if args.all_presets else [args.preset]
        outdir = args.out if (args.all_presets and args.out) else INSTANCES_DIR
        for nm in names:
            out = args.out if (args.preset and args.out) else outdir / f"{nm}.json"
            jobs.append((out, dict(name=nm, description=PRESETS[nm]["description"],
                                   provinces=PRESETS[nm]["provinces"], everything=PRESETS[nm]["all"])))
    else:
        if not args.province:
            fail("give --preset, --all-presets, or --province")
        if not args.name or not args.out:
            fail("custom selections need --name and --out")
        jobs.append((args.out, dict(name=args.name, provinces=args.province, everything=False,
                                    description="URRBMI prefecture funds of provinces " + ",".join(args.province))))
    county_model = um = None
    for out, kw in jobs:
        instance, county_model, um = build(args.census, county_model=county_model, units_model=um, **kw)
        write_atomic(out, dumps(instance))
        print(f"wrote {out}")
        print(report(instance, um))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
