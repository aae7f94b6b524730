"""What the builders print: the national calibration against its sources, the
case figures, a per-file summary and the Tongliao sanity check (a normal
approximation of each unit's maximum solvent rate). stdout only; nothing here
changes a file.
"""

from __future__ import annotations

import math
from collections import defaultdict

from scipy.stats import norm

from builders import calibration as cal

# Sanity check settings (not written to the instance).
CHECK_RESERVE_SHARE = 0.5
CHECK_ALPHA = 0.99


def calibration_report(model: dict) -> str:
    """The national calibration and the checks against the sources (stdout only)."""
    out = []
    cs, fl, en = model["counties"], model["flows"], model["enrollees"]
    n_all = math.fsum(en.values())
    mig = {c: en[c] * cs[c]["migrant_share"] for c in cs}
    out.append(f"national 65+ share {model['aged_nat']:.4%}; fund units {len(cs)}, enrollees {n_all:,.0f}, "
               f"migrant-weighted net absence {math.fsum(mig.values()) / n_all:.4%}")
    out.append(f"claimed admissions/enrollee {model['claimed_rate']:.5f} (D: 2012 payout x 0.826 / 1,894); "
               f"cost per claimed admission {model['cost_per_claim']:.2f}")
    out.append(f"admission rate at national ageing lambda_nat {model['lambda_nat']:.5f}; "
               f"county base cost m0 {model['m0']:.2f}")
    prices = sorted({(p['level'], p['severity']['mean']) for p in model['places'].values()})
    out.append("distinct place prices: " + ", ".join(f"{lv} {m:.2f}" for lv, m in prices))
    # realised figures from the rounded values
    claimed = cost = elig = allc = adm = 0.0
    fund_out, adm_out = {}, {}
    for c, flows in fl.items():
        lam = cs[c]["admission_rate"] * en[c]
        m0 = cs[c]["severity"]["mean"] / cal.REGIONAL_PRICE_FACTOR.get(model["rows"][model["unit_row"][c]]
                                                                      ["province_code"], 1.0)
        e_c = e_out = a_out = 0.0
        for _who, _key, w, rho, q, phi, away in flows:
            claimed += lam * w * q
            cost += lam * w * q * rho * m0
            elig += lam * w * q * phi * rho * m0
            allc += lam * w * rho * m0
            adm += lam * w
            e_c += w * q * phi * rho
            if away:
                e_out += w * q * phi * rho
                a_out += w
        fund_out[c] = e_out / e_c
        adm_out[c] = a_out / math.fsum(x[2] for x in flows)
    paid = (cal.NAT_EXPENDITURE / cal.NAT_ENROLLEES) * cal.INPATIENT_SHARE * n_all
    out.append(f"realised: claimed rate {claimed / n_all:.5f}, all admissions {adm / n_all:.5f}, cost per claimed "
               f"admission {cost / claimed:.2f}, mean cost per admission (all, unclaimed too) {allc / adm:.2f}, "
               f"status-quo rate implied by the 2012 payout {paid / elig:.4f}")
    w = [en[c] for c in cs]

    def q(vals, p):
        order = sorted(zip(vals, w))
        tot, acc = math.fsum(w), 0.0
        for v, wt in order:
            acc += wt
            if acc >= p * tot:
                return v
        return order[-1][0]
    fo = [fund_out[c] for c in cs]
    ao = [adm_out[c] for c in cs]
    out.append(f"share of the fund paid out of county (status quo, enrollee-weighted): mean "
               f"{math.fsum(a * b for a, b in zip(fo, w)) / math.fsum(w):.3f}, p10 {q(fo, .1):.3f}, "
               f"median {q(fo, .5):.3f}, p90 {q(fo, .9):.3f}, max {max(fo):.3f}")
    out.append(f"share of admissions out of county: mean {math.fsum(a * b for a, b in zip(ao, w)) / math.fsum(w):.3f}, "
               f"median {q(ao, .5):.3f}, p90 {q(ao, .9):.3f}, max {max(ao):.3f}; "
               f"units above 40%: {sum(1 for a in ao if a > 0.4)}")
    by_prov = defaultdict(lambda: [0.0, 0.0])
    for c, flows in fl.items():
        v = model["rows"][model["unit_row"][c]]["province_code"]
        by_prov[v][0] += cs[c]["admission_rate"] * en[c] * math.fsum(x[2] * x[4] for x in flows)
        by_prov[v][1] += en[c]
    rates = {v: a / b for v, (a, b) in by_prov.items()}
    above = sum(1 for r in rates.values() if r > 0.10)
    out.append(f"claimed admission rate by province: min {min(rates.values()):.4f}, max {max(rates.values()):.4f}; "
               f"provinces above 10%: {above} of {len(rates)}")
    out.append(f"intra-provincial decay beta {model['beta_intra']} (own-prefecture share target "
               f"{cal.OWN_PREFECTURE_SHARE_TARGET}, fit {model['own_prefecture_share'](model['beta_intra']):.4f})")
    out.append(f"inter-provincial decay beta {model['beta_inter']} (central -> east target "
               f"{cal.CENTRAL_TO_EAST_TARGET}, fit {model['central_east_share'](model['beta_inter']):.4f}; "
               f"at beta 0: {model['central_east_share'](0.0):.4f})")
    out.append(f"inter-provincial share: central {cal.INTER_PROVINCIAL_SHARE_CENTRAL}, others "
               f"{model['inter_share_other']} (central origins hold {model['f_central']:.3f} of migrants)")
    # after pruning: own-prefecture share of intra-provincial migrants, central -> east
    num = den = ce_num = ce_den = 0.0
    nkeys = []
    for c, m in cs.items():
        d = m["migrant_destinations"]
        if not d:
            continue
        nkeys.append(len(d))
        row = model["rows"][model["unit_row"][c]]
        p, v = row["prefecture_code"], row["province_code"]
        for key, wt in d.items():
            pp, pv = model["places"][key]["prefecture"], model["places"][key]["province"]
            if pv == v:
                den += mig[c] * wt
                if pp == p:
                    num += mig[c] * wt
            elif v in cal.CENTRAL_PROVINCES:
                ce_den += mig[c] * wt
                if pv in cal.EAST_PROVINCES:
                    ce_num += mig[c] * wt
    out.append(f"after pruning: own-prefecture share {num / den:.4f}, central -> east {ce_num / ce_den:.4f}; "
               f"destinations per migrant-sending unit: mean {sum(nkeys) / len(nkeys):.1f}, max {max(nkeys)}")
    return "\n".join("  " + line for line in out)


def four_tier(model: dict, prefecture: str) -> tuple[float, float, float]:
    """Migrants of a prefecture's fund units: shares in the own prefecture / elsewhere
    in the province / other provinces (net absence weighted)."""
    cs, en = model["counties"], model["enrollees"]
    tot = [0.0, 0.0, 0.0]
    for c, m in cs.items():
        row = model["rows"][model["unit_row"][c]]
        if row["prefecture_code"] != prefecture and row["province_code"] != prefecture:
            continue
        for key, wt in m["migrant_destinations"].items():
            pl = model["places"][key]
            k = (0 if pl["prefecture"] == row["prefecture_code"] else
                 1 if pl["province"] == row["province_code"] else 2)
            tot[k] += en[c] * m["migrant_share"] * wt
    s = sum(tot)
    return tuple(t / s for t in tot)


def summary(instance: dict, info: dict) -> str:
    cs = instance["counties"]
    n = sum(c["enrollees"] for c in cs)
    prefs = {c["prefecture"] for c in cs}
    provs = {c["province"] for c in cs}
    ids = {c["id"] for c in cs}
    no_neighbour = sum(1 for c in cs if not c["adjacent"])
    mig = [(c["enrollees"] * c["migrant_share"], c["migrant_destinations"]) for c in cs]
    tot = math.fsum(m for m, _ in mig)
    in_file = math.fsum(m * w for m, d in mig for k, w in d.items() if k in ids)
    return (f"{instance['name']}: {len(cs)} units, {len(prefs)} prefectures, {len(provs)} provinces, "
            f"{n:,} enrollees, {len(instance['places'])} places; coordinates recovered "
            f"{info['instance_recovered']}, still missing {info['instance_missing']}; in the provinces' "
            f"graphs: Delaunay edges dropped {info['dropped']}, re-added {info['reconnected']}, prefecture "
            f"links added {info['prefecture_links']}; units without neighbours {no_neighbour}; migrants "
            f"living in a fund county of the file {in_file / tot if tot else 0.0:.4f}")


def case_report(model: dict) -> str:
    """Gravity placements against the sourced case figures (stdout only)."""
    out = []
    g = model["counties"].get("411525")
    if g:
        beijing = g["migrant_destinations"].get("city:110100", 0.0)
        top = sorted(g["migrant_destinations"].items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        out.append(f"Gushi 411525: migrant_share {g['migrant_share']}, inter-provincial "
                   f"{model['inter_share']['411525']}; Beijing (city:110100) {beijing:.4f} of its migrants "
                   f"(source: ~150,000 of ~500,000 = 0.30; gravity alone "
                   f"{model['gravity_only']['411525'].get('city:110100', 0.0):.4f}); top: "
                   + ", ".join(f"{k} {w:.3f}" for k, w in top))
    for label, code, src in (("Jincheng 140500", "140500", "0.76 / 0.15 / 0.09 (2006)"),
                             ("Yichun 230700", "230700", "0.10 / 0.34 / 0.56 (2006)"),
                             ("Inner Mongolia 150000", "150000", "region 0.69 / other 0.31 (2014)"),
                             ("Tongliao 150500", "150500", "-")):
        try:
            a, b, c = four_tier(model, code)
        except ZeroDivisionError:
            continue
        out.append(f"{label}: of county leavers, own prefecture {a:.3f} / rest of province {b:.3f} / "
                   f"other provinces {c:.3f} (source: {src})")
    return "\n".join("  " + line for line in out)


def lognormal_second_moment(mean: float, cv: float) -> float:
    return mean * mean * (1.0 + cv * cv)


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
