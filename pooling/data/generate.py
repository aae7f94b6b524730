"""Synthetic instances drawn from the distributions of China's county funds.

`generate_instance(counties, prefectures, seed)` returns an instance dict (valid
for `pooling.instance_from_dict`) for scale benchmarks: county sizes, units per
prefecture, absence (migrant) shares, ageing and migrant reception drawn from
distributions fitted once to the 2010 census county table
(../shared/data/china_counties_census.csv, the 2,565 fund-running units selected
by instances/build.py: counties, county-level cities and districts with an
agricultural-hukou share >= 32.5%). Fitted on 2026-11-23; the numbers are
hard-coded below so that the package does not need the table.

Per-county figures follow instances/build.py (policy year 2012): contribution,
outpatient and admin costs, reserves, severity and the admission-rate ageing
adjustment use the same constants; see instances/README.md for their sources.

Dependence: (log size, absence, ageing, log reception rate) are drawn through
a Gaussian copula with the normal-score correlation matrix of the census units
(larger units are older and lose more people; units that lose people receive
fewer). The geography is synthetic: prefecture centres are uniform in a square,
county seats scatter around their centre, adjacency is the Delaunay graph of
all seats, with each prefecture made connected by its shortest seat-to-seat
links. Deterministic per seed (numpy PCG64).

Care geography (schema of issue 13, docs/model.md "Where care is bought"), in
the spirit of the rebuilt real instances: every prefecture has a city place
`city:<prefecture>` (its urban districts' hospitals, approved by every county
of the prefecture) and the synthetic province a place `province:P0` (approved by
every county); their severities are the county mean times the sourced ratios of
cost per admission (prefecture 8,000, provincial 15,000, county 3,500 CNY).
Residents buy care at home, in their city and in the province (RESIDENT_CARE_*);
migrants go outside the province (43%), to their own prefecture city (the
urban districts' share of intra-provincial in-migrants) and to other counties.
Parameters carry the out-of-network tiers, regional shocks and budget-paid
running costs of the real instances (assumed defaults, instances/README.md).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import Delaunay
from scipy.stats import norm

from pooling.data.formats import FORMAT_FIELD, format_tag
from pooling.data.instance import MAX_ENROLLEES

# ---------------------------------------------------------------- fitted (census 2010, fitted 2026-11-23)
# Enrollees = agricultural-hukou registered population x 98.3% participation:
# log-normal fit (mean and sd of log enrollees over 2,565 units), truncated to the
# observed range.
SIZE_LOG_MEAN = 12.442129
SIZE_LOG_SD = 0.979130
SIZE_MIN = 2_162
SIZE_MAX = 1_995_940

# Net absence (registered - resident) / registered: 21 quantiles (0%, 5%, ..., 100%);
# migrant_share = max(0, absence), as in the builder.
ABSENCE_QUANTILES = (
    -7.8426, -0.458, -0.2159, -0.1042, -0.0497, -0.0233, -0.0037, 0.0101, 0.0234, 0.0371,
    0.0503, 0.0644, 0.0789, 0.095, 0.1109, 0.1286, 0.1516, 0.1766, 0.2121, 0.255, 0.4504)
# Share of residents aged 65+: 21 quantiles.
AGED_QUANTILES = (
    0.0102, 0.0502, 0.0595, 0.0648, 0.0688, 0.072, 0.0751, 0.0777, 0.0802, 0.0827,
    0.0851, 0.0879, 0.0908, 0.0944, 0.0975, 0.1011, 0.1049, 0.1091, 0.1146, 0.1234, 0.19)
# In-migrants from other counties of the province per resident: log-normal.
RECEPTION_LOG_MEAN = -3.853000
RECEPTION_LOG_SD = 1.302574
# Normal-score correlations of (log size, absence, ageing, log reception).
COPULA_CORRELATION = (
    (1.0, 0.360, 0.379, -0.423),
    (0.360, 1.0, 0.506, -0.584),
    (0.379, 0.506, 1.0, -0.173),
    (-0.423, -0.584, -0.173, 1.0),
)
# Fund-running units per prefecture: (units, number of prefectures) over 341 prefectures.
UNITS_PER_PREFECTURE = (
    (1, 5), (2, 13), (3, 23), (4, 37), (5, 39), (6, 35), (7, 36), (8, 37), (9, 23), (10, 20),
    (11, 22), (12, 22), (13, 9), (14, 4), (15, 2), (16, 4), (17, 5), (18, 3), (21, 1), (24, 1))

# ---------------------------------------------------------------- calibration (as instances/build.py)
CONTRIBUTION = 308.5                 # S, 2012 national financing per enrollee
OUTPATIENT = 52.05                   # D, 2012 spending x non-inpatient share
ADMIN_PER_CAPITA = 2.0               # A
ADMIN_FIXED_PER_FUND = 1_000_000.0   # A
RESERVE_RATIO = 0.10                 # A
ADMISSION_RATE_NAT = 0.13694         # D, as instances/build.py (compensated admissions 2011-12)
AGED_RELATIVE_ADMISSION = 3.0        # A
AGED_NAT = 0.089777                  # D, resident-weighted national 65+ share (census 2010)
SEVERITY_MEAN = 2520.82              # D, county-level price (instances/README.md, calibration)
OUTSIDE_SEVERITY_MEAN = 5761.88      # D, the prefecture-city price, as the builders
SEVERITY_CV = 1.0                    # A
INTER_PROVINCIAL_SHARE = 0.43        # S, NBS 2019: migrants leaving the instance ("outside")
MIN_DESTINATION_WEIGHT = 1e-3        # A, as the builder
WEIGHT_SCALE = 10 ** 6
PARAMETERS = {
    "out_of_network_factor": 0.6, "out_of_network_claim_share": 0.5,
    "migrant_admission_factor": 1.0,
    # assumed; same defaults as the real instances, instances/README.md
    "frequency_shock_cv": 0.05,
}

# ---------------------------------------------------------------- care geography (issue 13)
# Cost per admission by hospital level (S, CALIBRATION): county 3,500, prefecture 8,000,
# provincial 15,000 CNY; places are priced at the county mean times these ratios.
COUNTY_COST_PER_ADMISSION = 3_500.0            # S
PREFECTURE_COST_PER_ADMISSION = 8_000.0        # S
PROVINCIAL_COST_PER_ADMISSION = 15_000.0       # S
CITY_SEVERITY_MEAN = round(SEVERITY_MEAN * PREFECTURE_COST_PER_ADMISSION / COUNTY_COST_PER_ADMISSION, 2)
PROVINCE_SEVERITY_MEAN = round(SEVERITY_MEAN * PROVINCIAL_COST_PER_ADMISSION / COUNTY_COST_PER_ADMISSION, 2)
PROVINCE = "P0"                      # the generator's single synthetic province
# Where residents' admissions are bought: own county's hospitals, own prefecture city's,
# the province's. Assumed; same defaults as the real instances, instances/README.md.
RESIDENT_CARE_HOME = 0.80            # A
RESIDENT_CARE_CITY = 0.14            # A
RESIDENT_CARE_PROVINCE = 0.06        # A
# Share of intra-provincial in-migrants (from other counties of the province) living in
# urban districts that run no fund (prefecture cities): 25.66% (D, census 2010 table,
# districts with agricultural-hukou share < 32.5%, as instances/build.py). The generator
# sends that share of each county's intra-provincial migrants to its own prefecture
# city (A: the census has no origin-destination table; migrants to a city mostly go
# to their own prefecture's).
CITY_MIGRANT_SHARE = 0.2566          # D
# Out-of-network terms by tier (claim share q, eligible-cost factor phi).
# Assumed; same defaults as the real instances, instances/README.md.
OUT_OF_NETWORK_TIERS = {
    "same_prefecture": {"claim_share": 0.95, "factor": 0.85},
    "same_province": {"claim_share": 0.8, "factor": 0.75},
    "other_province": {"claim_share": 0.5, "factor": 0.6},
}
# Prefecture and county admission-rate shocks (docs/model.md, regional shocks).
# Assumed; same defaults as the real instances, instances/README.md.
REGIONAL_SHOCKS = {"prefecture": {"weight": 0.3, "cv": 0.10}, "county": {"weight": 0.3, "cv": 0.16}}
# Running costs are paid by the county budget, as NRCMS rules required.
# Assumed; same defaults as the real instances, instances/README.md.
ADMIN_FINANCING = "county_budget"
# Synthetic geography (km): prefectures' centres in a square of side
# sqrt(prefectures) x PREFECTURE_SPACING, seats N(centre, COUNTY_SPREAD) around them.
PREFECTURE_SPACING = 150.0           # A: ~ the spacing of Henan's 18 prefecture seats
COUNTY_SPREAD = 40.0                 # A


def _quantile(table, u: np.ndarray) -> np.ndarray:
    grid = np.linspace(0.0, 1.0, len(table))
    return np.interp(u, grid, np.asarray(table, dtype=float))


def size_cdf(x) -> np.ndarray:
    """CDF of the fitted (truncated log-normal) enrollee distribution; for tests."""
    x = np.asarray(x, dtype=float)
    lo, hi = norm.cdf([(math.log(SIZE_MIN) - SIZE_LOG_MEAN) / SIZE_LOG_SD,
                       (math.log(SIZE_MAX) - SIZE_LOG_MEAN) / SIZE_LOG_SD])
    z = norm.cdf((np.log(np.clip(x, SIZE_MIN, SIZE_MAX)) - SIZE_LOG_MEAN) / SIZE_LOG_SD)
    return (z - lo) / (hi - lo)


def _prefecture_sizes(rng: np.random.Generator, counties: int, prefectures: int) -> list[int]:
    """Units per prefecture: draws from the census distribution, scaled to sum to `counties`."""
    values = np.array([v for v, _ in UNITS_PER_PREFECTURE], dtype=float)
    weights = np.array([w for _, w in UNITS_PER_PREFECTURE], dtype=float)
    draw = rng.choice(values, size=prefectures, p=weights / weights.sum())
    spare = counties - prefectures                  # every prefecture gets one unit first
    share = (draw - 1.0) if (draw - 1.0).sum() > 0 else np.ones(prefectures)
    exact = spare * share / share.sum()
    sizes = np.floor(exact).astype(int)
    order = np.lexsort((np.arange(prefectures), -(exact - sizes)))   # largest remainders, then index
    sizes[order[:spare - int(sizes.sum())]] += 1
    return [int(s) + 1 for s in sizes]


def _within_instance_limit(enrollees: np.ndarray) -> np.ndarray:
    """The drawn sizes, scaled down in proportion (each at least 1) when they
    sum past MAX_ENROLLEES, the most an instance may hold: from about 4,900
    counties (mean size ~410,000) the census distribution would exceed it, and
    every count `pooling generate` accepts (up to 100,000) must give a valid file."""
    total = int(enrollees.sum())
    if total <= MAX_ENROLLEES:
        return enrollees
    scaled = np.floor(enrollees * (MAX_ENROLLEES / total)).astype(np.int64)
    return np.maximum(scaled, 1)


ALL_PAIRS_UP_TO = 500
"""Seats of one prefecture up to which every pair is a candidate link when
the prefecture is made connected; above it, only its own Delaunay edges (the
shortest link across any split of the seats is one of them, so the links
chosen are the same): all pairs of a 50,000-county prefecture took 11 GB."""


def _candidate_links(xy: np.ndarray, idx: list[int]):
    """Pairs (a, b), a < b in `idx` order, among which a prefecture's shortest
    connecting links are chosen."""
    if len(idx) <= ALL_PAIRS_UP_TO:
        return [(a, b) for k, a in enumerate(idx) for b in idx[k + 1:]]
    links = set()
    for simplex in Delaunay(xy[idx]).simplices:
        for i in range(3):
            a, b = sorted((int(simplex[i]), int(simplex[(i + 1) % 3])))
            links.add((idx[a], idx[b]))
    return sorted(links)


def _adjacency(xy: np.ndarray, pref_of: list[int]) -> list[set]:
    n = len(xy)
    nbr = [set() for _ in range(n)]
    if n >= 3:
        tri = Delaunay(xy)
        for simplex in tri.simplices:
            for i in range(3):
                a, b = int(simplex[i]), int(simplex[(i + 1) % 3])
                nbr[a].add(b)
                nbr[b].add(a)
    elif n == 2:
        nbr[0].add(1)
        nbr[1].add(0)
    members: dict[int, list[int]] = {}
    for i, p in enumerate(pref_of):
        members.setdefault(p, []).append(i)
    for idx in members.values():
        parent = {i: i for i in idx}

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        iset = set(idx)
        for a in idx:
            for b in nbr[a]:
                if b in iset:
                    parent[find(a)] = find(b)
        if len({find(i) for i in idx}) == 1:
            continue
        pairs = sorted((float(np.hypot(*(xy[a] - xy[b]))), a, b) for a, b in _candidate_links(xy, idx))
        for _, a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
                nbr[a].add(b)
                nbr[b].add(a)
    return nbr


def generate_instance(counties: int, prefectures: int, seed: int) -> dict:
    """A synthetic instance with `counties` units in `prefectures` prefectures.

    Deterministic per (counties, prefectures, seed). Raises ValueError unless
    1 <= prefectures <= counties.
    """
    if isinstance(counties, bool) or isinstance(prefectures, bool) or isinstance(seed, bool):
        raise ValueError("counties, prefectures and seed must be integers")
    counties, prefectures, seed = int(counties), int(prefectures), int(seed)
    if prefectures < 1 or counties < prefectures:
        raise ValueError(f"need 1 <= prefectures <= counties, got counties={counties}, "
                         f"prefectures={prefectures}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng(seed)
    sizes = _prefecture_sizes(rng, counties, prefectures)
    pref_of = [p for p, s in enumerate(sizes) for _ in range(s)]

    # Copula draws.
    corr = np.array(COPULA_CORRELATION)
    z = rng.standard_normal((counties, 4)) @ np.linalg.cholesky(corr).T
    u = norm.cdf(z)
    lo, hi = norm.cdf([(math.log(SIZE_MIN) - SIZE_LOG_MEAN) / SIZE_LOG_SD,
                       (math.log(SIZE_MAX) - SIZE_LOG_MEAN) / SIZE_LOG_SD])
    size_z = norm.ppf(lo + u[:, 0] * (hi - lo))
    enrollees = np.clip(np.rint(np.exp(SIZE_LOG_MEAN + SIZE_LOG_SD * size_z)), SIZE_MIN, SIZE_MAX).astype(int)
    enrollees = _within_instance_limit(enrollees)
    migrant = np.clip(_quantile(ABSENCE_QUANTILES, u[:, 1]), 0.0, None)
    aged = _quantile(AGED_QUANTILES, u[:, 2])
    reception = np.exp(RECEPTION_LOG_MEAN + RECEPTION_LOG_SD * z[:, 3])
    received = reception * enrollees * (1.0 - migrant)          # in-migrants hosted

    # Geography.
    side = math.sqrt(prefectures) * PREFECTURE_SPACING
    centres = rng.uniform(0.0, side, size=(prefectures, 2))
    xy = centres[pref_of] + rng.normal(0.0, COUNTY_SPREAD, size=(counties, 2))
    nbr = _adjacency(xy, pref_of)

    width = max(4, len(str(counties)))
    pwidth = max(3, len(str(prefectures)))
    ids = [f"G{i + 1:0{width}d}" for i in range(counties)]
    pids = [f"P{p + 1:0{pwidth}d}" for p in range(prefectures)]
    city_ids = [f"city:{pid}" for pid in pids]
    province_id = f"province:{PROVINCE}"
    intra = 1.0 - INTER_PROVINCIAL_SHARE                    # migrants staying in the province
    to_city = int(round(intra * CITY_MIGRANT_SHARE * WEIGHT_SCALE))
    to_counties = intra - to_city / WEIGHT_SCALE
    resident_care_int = {"home": int(round(RESIDENT_CARE_HOME * WEIGHT_SCALE)),
                         "city": int(round(RESIDENT_CARE_CITY * WEIGHT_SCALE))}
    resident_care_int["province"] = WEIGHT_SCALE - sum(resident_care_int.values())
    total_received = float(received.sum())
    out = []
    for i in range(counties):
        n = int(enrollees[i])
        mu = round(float(migrant[i]), 6)
        lam = round(ADMISSION_RATE_NAT * (1.0 + (AGED_RELATIVE_ADMISSION - 1.0) * float(aged[i]))
                    / (1.0 + (AGED_RELATIVE_ADMISSION - 1.0) * AGED_NAT), 6)
        others = total_received - float(received[i])
        dest_int: dict[str, int] = {}
        if others > 0:
            raw = to_counties * received / others
            raw[i] = 0.0
            keep = np.flatnonzero(raw >= MIN_DESTINATION_WEIGHT)
            if keep.size:
                scale = to_counties / float(raw[keep].sum())
                for k in keep:
                    v = int(round(float(raw[k]) * scale * WEIGHT_SCALE))
                    if v > 0:
                        dest_int[ids[k]] = v
        city = city_ids[pref_of[i]]
        dest_int[city] = to_city
        dest = {k: v / WEIGHT_SCALE for k, v in dest_int.items()}
        dest["outside"] = (WEIGHT_SCALE - sum(dest_int.values())) / WEIGHT_SCALE   # takes the rounding
        resident_care = {ids[i]: resident_care_int["home"] / WEIGHT_SCALE,
                         city: resident_care_int["city"] / WEIGHT_SCALE,
                         province_id: resident_care_int["province"] / WEIGHT_SCALE}
        revenue = n * CONTRIBUTION
        out.append({
            "id": ids[i], "name": f"Synthetic county {i + 1}", "prefecture": pids[pref_of[i]],
            "province": PROVINCE, "enrollees": n, "contribution_per_capita": CONTRIBUTION,
            "reserves": round(RESERVE_RATIO * revenue, 2), "admin_per_capita": ADMIN_PER_CAPITA,
            "outpatient_per_capita": OUTPATIENT, "admission_rate": lam,
            "severity": {"dist": "lognormal", "mean": SEVERITY_MEAN, "cv": SEVERITY_CV},
            "migrant_share": mu, "migrant_destinations": dest, "resident_care": resident_care,
            "adjacent": sorted(ids[j] for j in nbr[i]),
        })
    members: list[list[str]] = [[] for _ in range(prefectures)]
    for i, p in enumerate(pref_of):
        members[p].append(ids[i])
    places = [{
        "id": city_ids[p], "name": f"Synthetic prefecture city {pids[p]} hospitals", "level": "prefecture",
        "prefecture": pids[p], "province": PROVINCE,
        "severity": {"dist": "lognormal", "mean": CITY_SEVERITY_MEAN, "cv": SEVERITY_CV},
        "approved_by": sorted(members[p]),
    } for p in range(prefectures)]
    places.append({
        "id": province_id, "name": f"Synthetic province {PROVINCE} hospitals", "level": "province",
        "prefecture": None, "province": PROVINCE,
        "severity": {"dist": "lognormal", "mean": PROVINCE_SEVERITY_MEAN, "cv": SEVERITY_CV},
        "approved_by": list(ids),
    })
    return {
        FORMAT_FIELD: format_tag("instance"),
        "name": f"synthetic-{counties}-{prefectures}-{seed}",
        "year": 2012,
        "currency": "CNY",
        "description": (f"Synthetic instance: {counties} counties in {prefectures} prefectures, seed {seed}; "
                        "distributions fitted to the 2010 census county table (pooling.data.generate)."),
        "parameters": {
            "admin_fixed_per_fund": ADMIN_FIXED_PER_FUND,
            "out_of_network_factor": PARAMETERS["out_of_network_factor"],
            "out_of_network_claim_share": PARAMETERS["out_of_network_claim_share"],
            "migrant_admission_factor": PARAMETERS["migrant_admission_factor"],
            "outside_severity": {"dist": "lognormal", "mean": OUTSIDE_SEVERITY_MEAN, "cv": SEVERITY_CV},
            "frequency_shock_cv": PARAMETERS["frequency_shock_cv"],
            "out_of_network_tiers": {tier: dict(terms) for tier, terms in OUT_OF_NETWORK_TIERS.items()},
            "regional_shocks": {level: dict(terms) for level, terms in REGIONAL_SHOCKS.items()},
            "admin_financing": ADMIN_FINANCING,
        },
        "places": places,
        "counties": out,
    }
