"""Where each fund unit's migrants live: a gravity model calibrated nationally.

Migrants (census net absence) split between other provinces (by region, S/D)
and the home province. Intra-provincial destinations: every other unit of the
province, weight pull x distance^-beta (pull: intra-provincial in-migrants);
inter-provincial: the prefectures ("cities") of the other provinces (pull:
inter-provincial in-migrants). Both decays are calibrated by bisection to a
national target on the pruned weights; destinations below
MIN_DESTINATION_SHARE are pruned; a sourced share (SOURCED_DESTINATION_SHARES)
overrides the model where chain migration defeats it. instances/README.md,
"Migrants: how many, and where".
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from builders import calibration as cal
from builders.cases import SOURCED_DESTINATION_SHARES
from builders.census import num
from builders.coordinates import haversine_km, seat_arrays


def city_key(prefecture: str) -> str:
    return "city:" + cal.CITY_OF_PREFECTURE.get(prefecture, prefecture)


def province_key(province: str) -> str:
    return "province:" + province


def county_key(code: str) -> str:
    return "county:" + code



def bisect_increasing(f, target: float, lo: float, hi: float, iters: int = 24) -> float:
    """x in [lo, hi] with f(x) = target, f increasing (clamped to the bracket)."""
    if f(lo) >= target:
        return lo
    if f(hi) <= target:
        return hi
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)



def integer_weights(weights: dict) -> dict:
    """Weights in millionths summing exactly to 1; the rounding remainder goes to
    the largest weight."""
    scale = 10 ** cal.WEIGHT_DECIMALS
    ints = {k: int(round(w * scale)) for k, w in weights.items()}
    top = min(weights, key=lambda k: (-weights[k], k))
    ints[top] += scale - sum(ints.values())
    return {k: v / scale for k, v in sorted(ints.items()) if v > 0}


def gravity_destinations(rows: list[dict], path: Path, fund: list[bool], enrollees: dict, mu: dict) -> dict:
    """Migrant destinations per fund unit (weights in millionths summing to 1, keys
    county:<code> or city:<prefecture>) and the calibration: both decays and the
    functions giving their fits (for the builders' reports)."""
    n_rows = len(rows)
    code = [r["code"] for r in rows]
    pref = [r["prefecture_code"] for r in rows]
    prov = [r["province_code"] for r in rows]
    lon, lat = seat_arrays(rows, path)
    pull_in = np.array([num(r, "inmigrants_other_county_same_province_2010", path) for r in rows])
    pull_out = np.array([num(r, "inmigrants_other_province_2010", path) for r in rows])
    origins = [i for i in range(n_rows) if fund[i]]
    unit_row_all = {"county:" + code[i]: i for i in range(n_rows)}
    mig = {i: enrollees[code[i]] * mu[code[i]] for i in origins}
    mig_total = math.fsum(mig.values())

    # ---- inter-provincial share per origin (S central, D others)
    central = set(cal.CENTRAL_PROVINCES)
    f_central = math.fsum(mig[i] for i in origins if prov[i] in central) / mig_total
    other_share = round((cal.INTER_PROVINCIAL_SHARE_NAT - f_central * cal.INTER_PROVINCIAL_SHARE_CENTRAL)
                        / (1.0 - f_central), 4)
    inter_share = {i: cal.INTER_PROVINCIAL_SHARE_CENTRAL if prov[i] in central else other_share
                   for i in origins}

    # ---- intra-provincial gravity: pull_j d_ij^-beta over the other units of the
    # province, aggregated to places (a fund unit -> county:<code>, a district
    # without a fund -> its prefecture's city:<p>), then pruned.
    thr = cal.MIN_DESTINATION_SHARE
    row_of = {i: r for r, i in enumerate(origins)}
    part_in = np.array([mig[i] for i in origins])      # migrants per origin (weights of the targets)
    s_out = np.array([inter_share[i] for i in origins])
    by_prov = defaultdict(list)
    for i in range(n_rows):
        by_prov[prov[i]].append(i)
    blocks = []
    for _prov, members in sorted(by_prov.items()):
        m = np.array(members)
        o = np.array([i for i in members if fund[i]])
        if len(o) == 0:
            continue
        logd = np.log(np.maximum(haversine_km(lon[o][:, None], lat[o][:, None], lon[m][None, :],
                                              lat[m][None, :]), cal.MIN_DISTANCE_KM))
        self_mask = o[:, None] == m[None, :]
        keys = sorted({county_key(code[j]) if fund[j] else city_key(pref[j]) for j in members})
        kidx = {k: n for n, k in enumerate(keys)}
        agg = np.zeros((len(members), len(keys)))
        for a, j in enumerate(members):
            agg[a, kidx[county_key(code[j]) if fund[j] else city_key(pref[j])]] = 1.0
        key_pref = [pref[unit_row_all[k]] if k.startswith("county:") else k[5:] for k in keys]
        same = np.array([[pref[i] == kp for kp in key_pref] for i in o])
        rows_o = np.array([row_of[int(i)] for i in o])
        blocks.append((o, m, logd, self_mask, agg, keys, same, rows_o))

    def pruned(part: np.ndarray, totals: np.ndarray) -> np.ndarray:
        """Rows of `part` (shares of all migrants) pruned below thr, the largest kept,
        rescaled to `totals`."""
        keep = part >= thr
        if part.shape[1]:
            keep[np.arange(part.shape[0]), np.argmax(part, axis=1)] = True
        kept = np.where(keep & (part > 0), part, 0.0)
        s = kept.sum(axis=1, keepdims=True)
        return np.divide(kept * totals[:, None], s, out=np.zeros_like(kept), where=s > 0)

    def intra_block(block, beta):
        """Intra-provincial shares of all migrants by key after pruning (one row per
        origin of the block), and each origin's intra-provincial total."""
        _o, m, logd, self_mask, agg, _keys, _same, rows_o = block
        w = pull_in[m][None, :] * np.exp(-beta * logd)
        w[self_mask] = 0.0
        tot = w.sum(axis=1, keepdims=True)
        w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0) @ agg
        share = np.where(tot[:, 0] > 0, 1.0 - s_out[rows_o], 0.0)
        return pruned(w * share[:, None], share), share

    def own_prefecture_share(beta):
        num = den = 0.0
        for block in blocks:
            rows_o, same = block[7], block[6]
            w, share = intra_block(block, beta)
            num += float(part_in[rows_o] @ (w * same).sum(axis=1))
            den += float(part_in[rows_o] @ share)
        return num / den

    beta_intra = round(bisect_increasing(own_prefecture_share, cal.OWN_PREFECTURE_SHARE_TARGET,
                                         *cal.BETA_RANGE), cal.BETA_DECIMALS)

    # ---- inter-provincial gravity over the cities (prefectures) of other provinces
    cities = sorted({city_key(p) for p in pref})
    cidx = {c: k for k, c in enumerate(cities)}
    c_pull = np.zeros(len(cities))
    c_lon = np.zeros(len(cities))
    c_lat = np.zeros(len(cities))
    c_n = np.zeros(len(cities))
    c_lon0 = np.zeros(len(cities))
    c_lat0 = np.zeros(len(cities))
    for i in range(n_rows):
        k = cidx[city_key(pref[i])]
        c_pull[k] += pull_out[i]
        c_lon[k] += pull_out[i] * lon[i]
        c_lat[k] += pull_out[i] * lat[i]
        c_n[k] += 1
        c_lon0[k] += lon[i]
        c_lat0[k] += lat[i]
    # centre of a city: its units' seats weighted by their inter-provincial in-migrants (D)
    c_lon = np.where(c_pull > 0, c_lon / np.where(c_pull > 0, c_pull, 1), c_lon0 / c_n)
    c_lat = np.where(c_pull > 0, c_lat / np.where(c_pull > 0, c_pull, 1), c_lat0 / c_n)
    c_prov = np.array([c[5:7] + "0000" for c in cities])
    o_all = np.array(origins)
    logd_c = np.log(np.maximum(haversine_km(lon[o_all][:, None], lat[o_all][:, None],
                                            c_lon[None, :], c_lat[None, :]), cal.MIN_DISTANCE_KM))
    other_prov = np.array([[prov[i] != cp for cp in c_prov] for i in origins])
    east = np.isin(c_prov, cal.EAST_PROVINCES)
    central_rows = np.array([prov[i] in central for i in origins])

    def inter_weights(beta):
        w = c_pull[None, :] * np.exp(-beta * logd_c) * other_prov
        w = w / w.sum(axis=1, keepdims=True)
        return pruned(w * s_out[:, None], s_out)

    def central_east_share(beta):
        w = inter_weights(beta)[central_rows]
        m = part_in[central_rows]
        return float(m @ w[:, east].sum(axis=1) / (m @ w.sum(axis=1)))

    # decreasing in beta (nearer, non-eastern provinces gain); bisection on -share
    beta_inter = round(bisect_increasing(lambda b: -central_east_share(b), -cal.CENTRAL_TO_EAST_TARGET,
                                         *cal.BETA_RANGE), cal.BETA_DECIMALS)

    # ---- destinations per fund origin (canonical keys: county:<code>, city:<p>)
    w_inter = inter_weights(beta_inter)
    destinations = {}
    intra_final = {}
    for block in blocks:
        w, _share = intra_block(block, beta_intra)
        for a, i in enumerate(block[0]):
            intra_final[int(i)] = {block[5][k]: float(w[a, k]) for k in np.nonzero(w[a])[0]}
    for i in origins:
        c = code[i]
        if mu[c] <= 0:
            destinations[c] = {}
            continue
        kept = dict(intra_final.get(i, {}))
        r = row_of[i]
        kept.update({cities[k]: float(w_inter[r, k]) for k in np.nonzero(w_inter[r])[0]})
        destinations[c] = integer_weights(kept)

    # ---- sourced destination shares that the gravity model cannot reproduce (chain
    # migration): set the share, scale the county's other destinations to the rest.
    gravity_only = {c: destinations[c] for c in sorted(SOURCED_DESTINATION_SHARES) if c in destinations}
    for c, shares in sorted(SOURCED_DESTINATION_SHARES.items()):
        if c not in destinations:
            continue
        rest = {k: w for k, w in destinations[c].items() if k not in shares}
        scale = (1.0 - math.fsum(shares.values())) / math.fsum(rest.values())
        destinations[c] = integer_weights({**{k: w * scale for k, w in rest.items()}, **shares})

    return {"destinations": destinations, "cities": cities, "beta_intra": beta_intra,
            "beta_inter": beta_inter, "inter_share_other": other_share, "f_central": f_central,
            "own_prefecture_share": own_prefecture_share, "central_east_share": central_east_share,
            "inter_share": {code[i]: inter_share[i] for i in origins}, "gravity_only": gravity_only}
